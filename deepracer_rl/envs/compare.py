"""Train PPO on a seed env, evaluate it beside practitioners' baselines on held-out data, plot.

The CLI calls these for ``deepracer-rl train/evaluate/plot --env ID``. Training uses the
``"train"`` split (earlier periods); evaluation runs once through the whole ``"test"``
split (later periods) for the policy and for every baseline. The portfolio is judged
walk-forward: one policy per fold, each trained on the periods before its test block
(:func:`~deepracer_rl.envs.portfolio.walk_forward_folds`), and the figures are per fold
and their mean.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from deepracer_rl.envs import AUTOSCALING_ID, PORTFOLIO_ID, REACTION_ID, register_envs
from deepracer_rl.envs.autoscaling import TargetTracking
from deepracer_rl.envs.portfolio import portfolio_metrics
from deepracer_rl.envs.portfolio_baselines import baselines

KINDS = {PORTFOLIO_ID: "portfolio", AUTOSCALING_ID: "scaling", REACTION_ID: "reaction"}
# Small, fast PPO settings per env (2 CPU cores, minutes of training).
PPO_SETTINGS: dict[str, dict[str, Any]] = {
    # A few dozen monthly periods per fold, rewards noisy and nearly independent: short rollouts
    # (many updates in a small budget), a short horizon, modest action noise (paid for in costs).
    PORTFOLIO_ID: dict(
        n_steps=256,
        batch_size=256,
        n_epochs=10,
        learning_rate=3e-4,
        gamma=0.9,
        gae_lambda=0.95,
        ent_coef=0.0,
        policy_kwargs=dict(net_arch=[64, 64], log_std_init=-1.0),
    ),
    AUTOSCALING_ID: dict(
        n_steps=256,
        batch_size=256,
        n_epochs=5,
        learning_rate=1e-3,
        gamma=0.95,
        gae_lambda=0.9,
        ent_coef=0.005,
        policy_kwargs=dict(net_arch=[64, 64]),
    ),
    # Reaction optimisation: 100-experiment episodes, minus the regret every experiment. The
    # untrained policy (mean ~0: the local model's proposal, std e^-2) already beats Nelder-Mead;
    # a small learning rate keeps training from drifting off it (docs/reaction.md).
    REACTION_ID: dict(
        n_steps=512,
        batch_size=256,
        n_epochs=10,
        learning_rate=1e-4,
        gamma=0.95,
        gae_lambda=0.95,
        ent_coef=0.0,
        policy_kwargs=dict(net_arch=[64, 64], log_std_init=-2.0),
    ),
}
N_ENVS = 4
SET_POINTS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)  # target-tracking grid tuned on the train split
POLICY_NAME = "ppo"
# Table columns per kind, and the one figure that decides which policy is ahead.
COLUMNS = {
    "portfolio": ("annual_return", "annual_volatility", "sharpe", "max_drawdown"),
    "scaling": ("total_reward", "served", "lost", "lost_fraction", "machine_hours", "mean_utilisation"),
}
SCORE = {"portfolio": "sharpe", "scaling": "total_reward"}
FOLD_SET = ("fold", "split")  # the portfolio evaluation sets these per fold
# The reaction kind's columns and score (fewer experiments is better): the reaction block below.
COLUMNS["reaction"] = ("median_experiments", "success_rate", "mean_final_regret")
SCORE["reaction"] = "median_experiments"
LOWER_IS_BETTER = frozenset({"reaction"})


def env_kind(env_id: str) -> str:
    """``"portfolio"``, ``"scaling"`` or ``"reaction"``; a ValueError naming the known ids for any other id."""
    if env_id not in KINDS:
        raise ValueError(f"unknown seed env {env_id!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[env_id]


def _slug(env_id: str) -> str:
    return env_id.split("/")[-1].lower()


def model_file(env_id: str, out_dir: str | Path) -> Path:
    """Where :func:`train_seed_env` saves the model of ``env_id`` in ``out_dir``."""
    return Path(out_dir) / f"{_slug(env_id)}_{POLICY_NAME}.zip"


def fold_model_file(model_path: str | Path, fold: int) -> Path:
    """The model of walk-forward fold ``fold`` saved beside ``model_path`` (the last fold's copy)."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}_fold{fold}{path.suffix}")


def config_path(model_path: str | Path) -> Path:
    """The JSON saved beside a model zip by :func:`train_seed_env`."""
    return Path(model_path).with_suffix(".json")


def evaluation_path(env_id: str, out_dir: str | Path) -> Path:
    """Where the CLI keeps the full held-out results (with per-step series) of ``env_id``."""
    return Path(out_dir) / f"{_slug(env_id)}_evaluation.json"


def train_seed_env(
    env_id: str,
    steps: int,
    out_dir: str | Path,
    seed: int = 0,
    *,
    max_seconds: float | None = None,
    env_kwargs: dict[str, Any] | None = None,
    threads: int = 1,
) -> Path:
    """Train SB3 PPO (MlpPolicy) on the train split; save ``<id>_ppo.zip`` and its config JSON.

    Stops after ``steps`` environment steps or ``max_seconds`` of wall time, whichever
    comes first. The portfolio trains one model per walk-forward fold, each for ``steps``
    and an equal share of ``max_seconds``, saved as ``<id>_ppo_fold<i>.zip``;
    ``<id>_ppo.zip`` is then a copy of the last fold's (trained on the most periods).
    Returns the model path.
    """
    import torch

    kind = env_kind(env_id)
    register_envs()
    torch.set_num_threads(threads)
    env_kwargs = dict(env_kwargs or {})
    out_dir = Path(out_dir)
    path = model_file(env_id, out_dir)
    if kind == "portfolio":
        _refuse_fold_settings(env_kwargs)
        n_folds = len(fold_env(env_id, env_kwargs, 0).folds)  # bad env arguments or data fail here
        share = None if max_seconds is None else max_seconds / n_folds
        runs = [
            learn_ppo(env_id, {**env_kwargs, "fold": i}, steps, seed, share, fold_model_file(path, i))
            for i in range(n_folds)
        ]
        shutil.copyfile(fold_model_file(path, n_folds - 1), path)
    else:
        runs = [learn_ppo(env_id, env_kwargs, steps, seed, max_seconds, path)]
    config = {
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "algorithm": "PPO",
        "policy": "MlpPolicy",
        "ppo": PPO_SETTINGS[env_id],
        "n_envs": N_ENVS,
        "seed": seed,
        "steps_requested": steps,
        "steps_done": sum(done for done, _ in runs),
        "max_seconds": max_seconds,
        "train_seconds": round(sum(seconds for _, seconds in runs), 2),
    }
    if kind == "portfolio":
        config["folds"] = [
            {"model": fold_model_file(path, i).name, "steps_done": done, "train_seconds": round(seconds, 2)}
            for i, (done, seconds) in enumerate(runs)
        ]
    config_path(path).write_text(json.dumps(config, indent=2) + "\n")
    return path


def learn_ppo(
    env_id: str,
    env_kwargs: dict[str, Any],
    steps: int,
    seed: int,
    max_seconds: float | None,
    path: Path,
    split: str = "train",
    ppo: dict[str, Any] | None = None,
) -> tuple[int, float]:
    """Train one PPO (``PPO_SETTINGS`` updated by ``ppo``) on ``split`` and save it to ``path``;
    (steps done, seconds)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class WallClock(BaseCallback):
        def _on_step(self) -> bool:
            return max_seconds is None or time.monotonic() - started < max_seconds

    vec_env = make_vec_env(  # bad env arguments or data fail here, before anything is written
        env_id, n_envs=N_ENVS, seed=seed, env_kwargs={**env_kwargs, "split": split, "render_mode": None}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    model = PPO("MlpPolicy", vec_env, seed=seed, verbose=0, device="cpu", **{**PPO_SETTINGS[env_id], **(ppo or {})})
    started = time.monotonic()
    model.learn(total_timesteps=steps, callback=WallClock())
    seconds = time.monotonic() - started
    model.save(path)
    vec_env.close()
    return int(model.num_timesteps), seconds


def _refuse_fold_settings(env_kwargs: dict[str, Any]) -> None:
    given = [k for k in FOLD_SET if k in env_kwargs]
    if given:
        raise ValueError(f"{', '.join(given)}: set per fold by the walk-forward training and evaluation")


def fold_env(env_id: str, env_kwargs: dict[str, Any], fold: int, split: str = "test") -> gym.Env:
    """The portfolio env over the whole of fold ``fold``'s ``split`` (its test block by default)."""
    return gym.make(env_id, **{**env_kwargs, "fold": fold, "split": split, "episode_length": None}).unwrapped


Policy = Callable[[np.ndarray, dict[str, Any]], Any]


def _run(env: gym.Env, policy: Policy, seed: int, reset: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """One pass through the env's whole split from its first period; the step infos."""
    if reset is not None:
        reset()
    obs, info = env.reset(seed=seed, options={"start": 0})
    infos = []
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs, info))
        info = dict(info, reward=float(reward))
        infos.append(info)
        done = terminated or truncated
    return infos


def _portfolio_result(infos: list[dict[str, Any]], start_date: str, periods_per_year: int) -> dict[str, Any]:
    values = np.array([1.0] + [i["value"] for i in infos])
    return {
        "metrics": {**portfolio_metrics(values, periods_per_year), "turnover": sum(i["turnover"] for i in infos)},
        "series": {
            "date": [start_date] + [i["date"] for i in infos],
            "value": values.tolist(),
            "log_return": [0.0] + [i["log_return"] for i in infos],
            "weights": [np.round(i["weights"], 6).tolist() for i in infos],
        },
    }


def _scaling_result(infos: list[dict[str, Any]], step_minutes: int) -> dict[str, Any]:
    col = {
        k: np.array([i[k] for i in infos], dtype=float)
        for k in ("load", "served", "lost", "capacity", "billed", "reward")
    }
    return {
        "metrics": {
            "served": float(col["served"].sum()),
            "lost": float(col["lost"].sum()),
            "lost_fraction": float(col["lost"].sum() / max(col["load"].sum(), 1e-9)),
            "machine_hours": float(col["billed"].sum() * step_minutes / 60.0),
            "mean_utilisation": float(col["served"].sum() / max(col["capacity"].sum(), 1e-9)),
            "total_reward": float(col["reward"].sum()),
        },
        "series": {"timestamp": [i["served_timestamp"] for i in infos], **{k: v.tolist() for k, v in col.items()}},
    }


def tune_set_point(env_kwargs: dict[str, Any] | None = None, seed: int = 0) -> float:
    """The target-tracking set point from :data:`SET_POINTS` with the most reward on the train split."""
    env = gym.make(AUTOSCALING_ID, **{**(env_kwargs or {}), "split": "train", "episode_days": None}).unwrapped
    totals = {}
    for sp in SET_POINTS:
        tracker = TargetTracking(env.capacity, sp)
        totals[sp] = sum(i["reward"] for i in _run(env, tracker, seed, tracker.reset))
    return max(totals, key=totals.get)


def evaluate_seed_env(
    env_id: str, model_path: str | Path | None = None, seed: int = 0, *, env_kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Figures and per-step series on the held-out (test) split for the policy and baselines.

    The env settings come from the model's config JSON when there is one, else
    ``env_kwargs``. Portfolio metrics: total return, annualised volatility, max drawdown,
    Sharpe, per walk-forward fold (``results["folds"]``) and their mean over folds
    (``results["policies"]``); scaling: served and lost transactions, machine hours,
    total reward.
    """
    kind = env_kind(env_id)
    register_envs()
    if model_path is not None and config_path(model_path).is_file():
        env_kwargs = json.loads(config_path(model_path).read_text()).get("env_kwargs", {}) | dict(env_kwargs or {})
    env_kwargs = dict(env_kwargs or {})
    if kind == "reaction":
        return evaluate_reaction(model_path, seed, env_kwargs)
    results: dict[str, Any] = {
        "env_id": env_id,
        "kind": kind,
        "seed": seed,
        "split": "test",
        "model_path": str(model_path) if model_path else None,
        "env_kwargs": env_kwargs,
    }
    if kind == "portfolio":
        return _evaluate_portfolio(env_id, model_path, seed, env_kwargs, results)
    test_kwargs = {**env_kwargs, "split": "test", "episode_days": None}
    policies: dict[str, tuple[gym.Env, Policy, Callable[[], None] | None]] = {}
    if model_path is not None:
        policies[POLICY_NAME] = (gym.make(env_id, **test_kwargs).unwrapped, ppo_policy(model_path), None)
    env = gym.make(env_id, **test_kwargs).unwrapped
    tuned = tune_set_point(env_kwargs, seed)
    default = TargetTracking(env.capacity, 0.7)
    policies["target_tracking_0.7"] = (env, default, default.reset)
    if tuned != 0.7:
        best = TargetTracking(env.capacity, tuned)
        policies[f"target_tracking_{tuned:g}"] = (env, best, best.reset)
    results["tuned_set_point"] = tuned
    results["policies"] = {
        name: _scaling_result(_run(e, p, seed, r), env.trace.step_minutes) for name, (e, p, r) in policies.items()
    }
    return results


def ppo_policy(model_path: str | Path) -> Policy:
    """The saved PPO's deterministic action for an observation."""
    from stable_baselines3 import PPO

    model = PPO.load(model_path, device="cpu")
    return lambda obs, info: model.predict(obs, deterministic=True)[0]


def _evaluate_portfolio(
    env_id: str, model_path: str | Path | None, seed: int, env_kwargs: dict[str, Any], results: dict[str, Any]
) -> dict[str, Any]:
    """Walk-forward: each fold's policy (its own model) and the baselines through the fold's test block."""
    _refuse_fold_settings(env_kwargs)
    n_folds = len(fold_env(env_id, env_kwargs, 0).folds)
    folds = []
    for fold in range(n_folds):
        env = fold_env(env_id, {**env_kwargs, "action_mode": "weights"}, fold)
        policies: dict[str, tuple[gym.Env, Policy, Callable[[], None] | None]] = {}
        if model_path is not None:
            fold_model = fold_model_file(model_path, fold)
            if not fold_model.is_file():
                raise ValueError(f"{model_path}: no {fold_model.name} beside it (the model of fold {fold})")
            policies[POLICY_NAME] = (fold_env(env_id, env_kwargs, fold), ppo_policy(fold_model), None)
        policies.update({name: (env, policy, policy.reset) for name, policy in baselines(env).items()})
        dates = env.data.dates
        train_first, test_first, test_last = env.folds[fold]
        folds.append(
            {
                "fold": fold,
                "train": [str(dates[train_first]), str(dates[test_first])],
                "test": [str(dates[test_first]), str(dates[test_last])],
                "policies": {
                    name: _portfolio_result(_run(e, p, seed, r), str(dates[test_first]), env.periods_per_year)
                    for name, (e, p, r) in policies.items()
                },
            }
        )
    results["split"] = "walk-forward test blocks"
    results["assets"] = list(env.data.assets)
    results["data"] = env.data.source
    results["folds"] = folds
    per_fold = {name: [f["policies"][name]["metrics"] for f in folds] for name in folds[0]["policies"]}
    results["policies"] = {
        name: {"metrics": {key: float(np.mean([m[key] for m in ms])) for key in ms[0]}} for name, ms in per_fold.items()
    }
    return results


def _sign(kind: str) -> float:
    """+1 where a higher score is better, -1 where a lower one is (`LOWER_IS_BETTER`)."""
    return -1.0 if kind in LOWER_IS_BETTER else 1.0


def best_baseline(results: dict[str, Any]) -> str:
    """Name of the strongest baseline on the held-out data (mean Sharpe over folds, total reward,
    or the fewest median experiments)."""
    key, sign = SCORE[results["kind"]], _sign(results["kind"])
    names = [n for n in results["policies"] if n != POLICY_NAME]
    return max(names, key=lambda n: sign * results["policies"][n]["metrics"][key])


def versus_baseline(results: dict[str, Any]) -> dict[str, Any]:
    """The policy's score beside the best baseline's and which is ahead (``None`` without a policy)."""
    key = SCORE[results["kind"]]
    policies = results["policies"]
    baseline = best_baseline(results)
    policy = policies[POLICY_NAME]["metrics"][key] if POLICY_NAME in policies else None
    base = policies[baseline]["metrics"][key]
    sign = _sign(results["kind"])
    ahead = None if policy is None else ("policy" if sign * policy > sign * base else "baseline")
    versus = {"score": key, "policy": policy, "best_baseline": baseline, "baseline": base, "ahead": ahead}
    if "folds" in results:  # per walk-forward fold: the policy against that same baseline
        scores = {n: [f["policies"][n]["metrics"][key] for f in results["folds"]] for n in policies}
        versus["baseline_per_fold"] = scores[baseline]
        if policy is not None:
            versus["policy_per_fold"] = scores[POLICY_NAME]
            pairs = zip(scores[POLICY_NAME], scores[baseline])
            versus["folds_policy_ahead"] = sum(sign * p > sign * b for p, b in pairs)
        versus["folds"] = len(results["folds"])
    return versus


def format_table(results: dict[str, Any]) -> str:
    """A title line and one row of held-out figures per policy (per walk-forward fold, then their mean)."""
    columns = COLUMNS[results["kind"]]
    header = f"{'policy':<22}" + "".join(f"{c:>18}" for c in columns)

    def rows(policies: dict[str, Any]) -> list[str]:
        return [f"{n:<22}" + "".join(f"{r['metrics'][c]:>18.4g}" for c in columns) for n, r in policies.items()]

    if "folds" not in results:
        lines = [f"{results['env_id']} (held-out test split, seed {results['seed']})", header]
        return "\n".join(lines + rows(results["policies"]))
    lines = [
        f"{results['env_id']} walk-forward on {results['data']} ({', '.join(results['assets'])}), "
        f"seed {results['seed']}; annualised figures, Sharpe with a zero risk-free rate"
    ]
    for f in results["folds"]:
        lines += ["", f"fold {f['fold']}: train {f['train'][0]}..{f['train'][1]}, test {f['test'][0]}..{f['test'][1]}"]
        lines += [header] + rows(f["policies"])
    lines += ["", f"mean over {len(results['folds'])} folds", header]
    return "\n".join(lines + rows(results["policies"]))


def format_verdict(results: dict[str, Any]) -> str:
    """One line: the policy's score against the best baseline's, and which is ahead."""
    v = versus_baseline(results)
    if v["policy"] is None:
        return f"best baseline {v['best_baseline']}: {v['score']} {v['baseline']:.4g} (no policy given)"
    folds = f" (mean over folds; ahead on {v['folds_policy_ahead']} of {v['folds']})" if "folds" in v else ""
    return (
        f"{POLICY_NAME} {v['score']} {v['policy']:.4g} vs best baseline {v['best_baseline']} "
        f"{v['baseline']:.4g}: {v['ahead']} ahead{folds}"
    )


def metrics_only(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` without the per-step series, plus :func:`versus_baseline`: one small JSON object."""
    summary = {k: v for k, v in results.items() if k not in ("policies", "folds")}
    summary["policies"] = {name: res["metrics"] for name, res in results["policies"].items()}
    if "folds" in results:
        summary["folds"] = [
            {**f, "policies": {name: res["metrics"] for name, res in f["policies"].items()}} for f in results["folds"]
        ]
    summary["versus_baseline"] = versus_baseline(results)
    return summary


def plot_seed_env(results: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """PNG figures: equity curves per walk-forward fold (portfolio), load against capacity (scaling)
    or regret against the number of experiments (reaction)."""
    if results["kind"] == "reaction":
        return plot_reaction(results, out_dir)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = _slug(results["env_id"])
    policies = results["policies"]
    paths = []
    if results["kind"] == "portfolio":
        folds = results["folds"]
        fig, axes = plt.subplots(2, len(folds), figsize=(4.5 * len(folds), 6), height_ratios=[3, 1], squeeze=False)
        for (ax, dd), f in zip(axes.T, folds):
            for name, res in f["policies"].items():
                dates = np.array(res["series"]["date"], dtype="datetime64[D]")
                values = np.array(res["series"]["value"])
                m = res["metrics"]
                ax.plot(dates, values, label=f"{name}: Sharpe {m['sharpe']:.2f}, ann. {m['annual_return']:+.0%}")
                dd.plot(dates, values / np.maximum.accumulate(values) - 1.0)
            ax.set_title(f"fold {f['fold']}: test {f['test'][0]}..{f['test'][1]}", fontsize=9)
            ax.legend(fontsize=7)
            dd.tick_params(axis="x", labelrotation=45, labelsize=7)
            ax.tick_params(axis="x", labelbottom=False)
        axes[0, 0].set_ylabel("portfolio value")
        axes[1, 0].set_ylabel("drawdown")
        fig.tight_layout()
        paths.append(out_dir / f"{slug}_equity.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
        return paths
    fig, axes = plt.subplots(len(policies), 1, figsize=(12, 2.6 * len(policies)), sharex=True, squeeze=False)
    for ax, (name, res) in zip(axes[:, 0], policies.items()):
        s = res["series"]
        times = np.array(s["timestamp"], dtype="datetime64[m]")
        ax.plot(times, s["load"], lw=0.8, label="load")
        ax.step(times, s["capacity"], where="post", lw=0.8, label="capacity")
        ax.fill_between(times, 0, s["lost"], color="red", alpha=0.6, label="lost")
        m = res["metrics"]
        ax.set_title(
            f"{name}: reward {m['total_reward']:.1f}, lost {m['lost_fraction']:.2%}, "
            f"{m['machine_hours']:.0f} machine-hours",
            fontsize=9,
        )
        ax.set_ylabel("transactions / period")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / f"{slug}_capacity.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(10, 4))
    for name, res in policies.items():
        times = np.array(res["series"]["timestamp"], dtype="datetime64[m]")
        ax.plot(times, np.cumsum(res["series"]["reward"]), label=name)
    ax.set_ylabel("cumulative reward")
    ax.set_title("Reward on held-out periods")
    ax.legend()
    fig.tight_layout()
    paths.append(out_dir / f"{slug}_reward.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


# --- deepracer_rl/ReactionOptimization-v0: the policy against random search, Nelder-Mead and
# CMA-ES on held-out surfaces (envs.reaction, envs.reaction_baselines; docs/reaction.md).

REACTION_STOCHASTIC = True  # the policy samples its conditions (the paper's exploring policy)
REACTION_TUNING_SURFACES = 20  # training surfaces the baselines' settings are tuned on (at most as many as test ones)


def evaluate_reaction(model_path: str | Path | None, seed: int, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Each method once on every test surface (``n_test_surfaces`` of them) with the env's budget:
    median experiments to within 5 % of the optimum, success rate, final regret, regret curves.

    Nelder-Mead's and CMA-ES's settings are tuned on training surfaces first (kept in
    ``tuned_settings``; the defaults with a ``surface_csv``, whose one surface is also the test).
    The policy samples its actions (:data:`REACTION_STOCHASTIC`), seeded by ``seed``.
    """
    from deepracer_rl.envs.reaction_baselines import DEFAULTS, METHODS, run_method, summarise, tune_baselines

    env = gym.make(REACTION_ID, **{**env_kwargs, "split": "test"}).unwrapped
    surfaces = [env.make_surface(i) for i in range(env.n_test_surfaces)]
    optima = np.array([s.optimum for s in surfaces])
    if env.fixed is None:
        train = gym.make(REACTION_ID, **{**env_kwargs, "split": "train"}).unwrapped
        n_tuning = min(REACTION_TUNING_SURFACES, len(surfaces))
        tuned = tune_baselines([train.make_surface(i) for i in range(n_tuning)], env.budget, seed)
    else:
        tuned = dict(DEFAULTS)
    curves: dict[str, np.ndarray] = {}
    if model_path is not None:
        import torch
        from stable_baselines3 import PPO

        model = PPO.load(model_path, device="cpu")
        torch.manual_seed(seed)
        rows = []
        for i in range(len(surfaces)):
            obs, info = env.reset(seed=seed + i, options={"surface": i})
            best = [info["best"]]
            for _ in range(env.budget - 1):
                obs, _, _, _, info = env.step(model.predict(obs, deterministic=not REACTION_STOCHASTIC)[0])
                best.append(info["best"])
            rows.append(best)
        curves[POLICY_NAME] = np.array(rows)
    for name, method in METHODS.items():
        setting = tuned.get(name)
        curves[name] = np.array([run_method(method, s, env.budget, seed + i, setting) for i, s in enumerate(surfaces)])
    return {
        "env_id": REACTION_ID,
        "kind": "reaction",
        "seed": seed,
        "split": "test",
        "model_path": str(model_path) if model_path else None,
        "env_kwargs": env_kwargs,
        "n_surfaces": len(surfaces),
        "budget": env.budget,
        "tuned_settings": tuned,
        "policies": {name: summarise(c, optima) for name, c in curves.items()},
    }


def plot_reaction(results: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """``<slug>_regret.png``: mean regret of the best result against the number of experiments,
    and the share of surfaces within 5 % of their optimum, per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, (ax, solved) = plt.subplots(1, 2, figsize=(12, 4.5))
    budget = results["budget"]
    steps = np.arange(1, budget + 1)
    for name, res in results["policies"].items():
        m = res["metrics"]
        label = f"{name}: median {m['median_experiments']:g}, {m['success_rate']:.0%} within budget"
        ax.plot(steps, np.maximum(res["series"]["mean_regret"], 1e-4), label=label)
        needed = np.array(res["series"]["experiments"])
        solved.plot(steps, [(needed <= t).mean() for t in steps], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("experiments")
    ax.set_ylabel("mean regret of the best result (fraction of the optimum)")
    ax.set_title(f"{results['n_surfaces']} held-out surfaces")
    ax.legend(fontsize=8)
    solved.set_xlabel("experiments")
    solved.set_ylabel("share of surfaces within 5 % of the optimum")
    solved.axhline(0.5, color="grey", lw=0.5)
    solved.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / f"{_slug(results['env_id'])}_regret.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]
