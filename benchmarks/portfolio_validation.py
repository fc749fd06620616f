"""Choose Portfolio-v0 settings without the test blocks: PPO trained on each fold's "fit" split,
scored on its "validation" split (the year before the test block) beside the baselines.

Run: python benchmarks/portfolio_validation.py [--seeds 0 1 2] [--steps 20000]
    [--env-arg KEY=JSON ...] [--gamma G] [--threads 1]
Per seed: the mean validation Sharpe over the folds (annualised, zero risk-free rate) and
on how many folds PPO is ahead of equal weight and of the best baseline on validation.
The last line is one JSON object with those figures (docs/portfolio.md, "How settings
were chosen").
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from deepracer_rl.envs import PORTFOLIO_ID, register_envs
from deepracer_rl.envs.compare import _run, fold_env, learn_ppo, ppo_policy
from deepracer_rl.envs.portfolio import portfolio_metrics
from deepracer_rl.envs.portfolio_baselines import baselines


def validation_sharpe(env: gym.Env, policy: Any, reset: Any = None) -> float:
    """Annualised Sharpe of one pass of ``policy`` through ``env``'s whole split."""
    infos = _run(env, policy, 0, reset)
    values = np.array([1.0] + [i["value"] for i in infos])
    return portfolio_metrics(values, env.periods_per_year)["sharpe"]


def train_fit(env_kwargs: dict[str, Any], fold: int, steps: int, seed: int, ppo: dict[str, Any] | None = None) -> Any:
    """PPO trained as `deepracer-rl train --env` trains a fold (``compare.learn_ppo``), on ``fold``'s
    "fit" split; the deterministic policy ``(obs, info) -> action``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fit.zip"
        learn_ppo(PORTFOLIO_ID, {**env_kwargs, "fold": fold}, steps, seed, None, path, split="fit", ppo=ppo)
        return ppo_policy(path)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=20_000, help="PPO steps per fold")
    parser.add_argument("--env-arg", action="append", default=[], help="KEY=JSON env constructor argument")
    parser.add_argument("--gamma", type=float, default=None, help="PPO discount instead of the env's setting")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    register_envs()
    env_kwargs: dict[str, Any] = {}
    for item in args.env_arg:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--env-arg {item!r}: expected KEY=JSON")
        env_kwargs[key] = json.loads(value)
    n_folds = len(fold_env(PORTFOLIO_ID, env_kwargs, 0, "validation").folds)
    base: dict[str, list[float]] = {}
    for fold in range(n_folds):
        env = fold_env(PORTFOLIO_ID, {**env_kwargs, "action_mode": "weights"}, fold, "validation")
        for name, policy in baselines(env).items():
            base.setdefault(name, []).append(validation_sharpe(env, policy, policy.reset))
    best = max(base, key=lambda n: np.mean(base[n]))
    print("baselines, mean validation Sharpe: " + ", ".join(f"{n} {np.mean(v):.3f}" for n, v in base.items()))
    per_seed = []
    for seed in args.seeds:
        started = time.monotonic()
        sharpe = []
        for fold in range(n_folds):
            ppo = {} if args.gamma is None else {"gamma": args.gamma}
            policy = train_fit(env_kwargs, fold, args.steps, seed, ppo)
            sharpe.append(validation_sharpe(fold_env(PORTFOLIO_ID, env_kwargs, fold, "validation"), policy))
        row = {
            "seed": seed,
            "mean_sharpe": round(float(np.mean(sharpe)), 3),
            "per_fold": [round(s, 3) for s in sharpe],
            "folds_ahead_of_equal_weight": int(sum(s > e for s, e in zip(sharpe, base["equal_weight"]))),
            f"folds_ahead_of_{best}": int(sum(s > b for s, b in zip(sharpe, base[best]))),
        }
        print(f"{json.dumps(row)} ({time.monotonic() - started:.0f} s)", flush=True)
        per_seed.append(row)
    means = [r["mean_sharpe"] for r in per_seed]
    print(
        json.dumps(
            {
                "env_kwargs": env_kwargs,
                "steps": args.steps,
                "gamma": args.gamma,
                "rl_mean_sharpe_per_seed": means,
                "rl_folds_ahead_of_equal_weight": [r["folds_ahead_of_equal_weight"] for r in per_seed],
                "equal_weight_sharpe": round(float(np.mean(base["equal_weight"])), 3),
                "equal_weight_per_fold": [round(s, 3) for s in base["equal_weight"]],
                "best_baseline": best,
                "best_baseline_sharpe": round(float(np.mean(base[best])), 3),
                "seeds_ahead_of_equal_weight": int(sum(m > np.mean(base["equal_weight"]) for m in means)),
            }
        )
    )


if __name__ == "__main__":
    main()
