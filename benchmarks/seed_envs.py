"""PPO against practitioners' baselines on held-out data for the portfolio and auto-scaling envs.

Run: python benchmarks/seed_envs.py [--seconds 150] [--seed 0] [--out DIR] [--plots]
Trains PPO on each env's train split within a wall-time budget (split 40/60 between
portfolio and scaling), evaluates on the later test split beside the baselines and
prints their figures. The portfolio is walk-forward on the shipped monthly stock prices:
one PPO per fold (at most PORTFOLIO_STEPS steps each), Sharpe per fold and the mean.
The last line is one JSON object; the baseline figures there are the best baseline on
the held-out data (a conservative comparison for the policy).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from deepracer_rl.envs import AUTOSCALING_ID, PORTFOLIO_ID
from deepracer_rl.envs.compare import (
    config_path,
    evaluate_seed_env,
    format_table,
    format_verdict,
    plot_seed_env,
    train_seed_env,
    versus_baseline,
)

PORTFOLIO_STEPS = 20_000  # per walk-forward fold: what the settings were chosen with (docs/portfolio.md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="total training wall time for both envs")
    parser.add_argument("--steps", type=int, default=2_000_000, help="cap on training steps per env")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where models (and plots) go; a temp dir if unset")
    parser.add_argument("--plots", action="store_true", help="also write the PNG figures to --out")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="seed_envs_"))
    figures = {}
    for env_id, share in ((PORTFOLIO_ID, 0.4), (AUTOSCALING_ID, 0.6)):
        started = time.monotonic()
        steps = min(args.steps, PORTFOLIO_STEPS) if env_id == PORTFOLIO_ID else args.steps
        model = train_seed_env(env_id, steps, out, seed=args.seed, max_seconds=share * args.seconds)
        trained = json.loads(config_path(model).read_text())
        results = evaluate_seed_env(env_id, model, seed=args.seed)
        print(
            f"\ntrained {env_id}: {trained['steps_done']} steps in {trained['train_seconds']:.0f} s "
            f"(+{time.monotonic() - started - trained['train_seconds']:.0f} s evaluation)"
        )
        if "tuned_set_point" in results:
            print(f"target-tracking set point tuned on the train split: {results['tuned_set_point']:g}")
        print(f"\n{format_table(results)}")
        print(format_verdict(results))
        versus = versus_baseline(results)
        figures[results["kind"]] = (versus["policy"], versus["baseline"])
        if results["kind"] == "portfolio":
            portfolio = versus
        if args.plots:
            for path in plot_seed_env(results, out):
                print(f"wrote {path}")
    print(
        json.dumps(
            {
                "portfolio_rl_sharpe": round(portfolio["policy"], 3),
                "portfolio_best_baseline_sharpe": round(portfolio["baseline"], 3),
                "portfolio_best_baseline": portfolio["best_baseline"],
                "portfolio_folds_rl_ahead": portfolio["folds_policy_ahead"],
                "portfolio_folds": portfolio["folds"],
                "portfolio_rl_sharpe_per_fold": [round(x, 3) for x in portfolio["policy_per_fold"]],
                "portfolio_baseline_sharpe_per_fold": [round(x, 3) for x in portfolio["baseline_per_fold"]],
                "scaling_rl_reward": round(figures["scaling"][0], 2),
                "scaling_baseline_reward": round(figures["scaling"][1], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
