"""The seed envs' side of the `deepracer-rl` CLI: `train|evaluate|plot --env ID` (portfolio, auto
scaling, reaction optimisation).

The car's subcommands take `--env ID` to work on deepracer_rl/Portfolio-v0,
deepracer_rl/AutoScaling-v0 or deepracer_rl/ReactionOptimization-v0 instead (trained and compared
with their baselines by `envs.compare`); car-only options given with it are refused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


class CliError(Exception):
    """A user error the CLI reports in one line and exits non-zero for."""


# Seed envs (`--env ID`): the portfolio and auto-scaling envs of deepracer_rl.envs, trained
# and compared with their baselines by deepracer_rl.envs.compare.
SEED_ENV_DESTS = frozenset(
    {
        "command",
        "func",
        "parser",
        "env_only",
        "env",
        "env_arg",
        "steps",
        "out",
        "seed",
        "max_minutes",
        "model",
        "run",
        "json",
    }
)


def seed_env(args: argparse.Namespace) -> bool:
    """True with --env ID (after refusing car-only options); False for the car, as before."""
    if args.env is None:
        given = [dest for dest in args.env_only if getattr(args, dest) is not None]
        if given:
            raise CliError(f"{', '.join('--' + dest.replace('_', '-') for dest in given)} needs --env ID")
        return False
    from .envs.compare import env_kind

    env_kind(args.env)  # a ValueError listing the known ids
    given = [
        dest
        for dest, value in vars(args).items()
        if dest not in SEED_ENV_DESTS and value != args.parser.get_default(dest)
    ]
    if given:
        options = ", ".join("--" + dest.replace("_", "-") for dest in given)
        raise CliError(f"{options}: for the car only, not with --env {args.env}")
    return True


def _env_kwargs(env_id: str, pairs: list[str] | None) -> dict:
    """--env-arg KEY=VALUE pairs; VALUE is read as JSON when it parses (numbers, true, null)."""
    import inspect

    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    known = inspect.signature(load_env_creator(gym.spec(env_id).entry_point)).parameters
    kwargs = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise CliError(f"--env-arg {pair!r}: expected KEY=VALUE, e.g. csv_path=prices.csv")
        if key not in known:
            raise CliError(f"--env-arg {key}: not an argument of {env_id} (it takes {', '.join(known)})")
        try:
            kwargs[key] = json.loads(text)
        except json.JSONDecodeError:
            kwargs[key] = text
    return kwargs


def _seed_model(env_id: str, path: str | None) -> Path | None:
    """The model zip for ``env_id`` given as a file or a `train --env` run directory."""
    from .envs.compare import config_path, model_file

    if path is None:
        return None
    given = Path(path)
    if given.is_dir():
        model = model_file(env_id, given)
        if not model.is_file():
            raise CliError(
                f"{given}: no {model.name}; train one with `deepracer-rl train --env {env_id} --steps N --out {given}`"
            )
        return model
    if not given.is_file():
        raise CliError(f"{given}: no such model .zip or run directory")
    if config_path(given).is_file():
        trained_on = json.loads(config_path(given).read_text()).get("env_id")
        if trained_on not in (None, env_id):
            raise CliError(f"{given} was trained on {trained_on}, not {env_id}")
    return given


def _evaluate_seed_env(env_id: str, model: Any, seed: int, env_kwargs: dict | None = None) -> tuple[dict, Path | None]:
    """Held-out results; saved (with their per-step series) beside the model when there is one."""
    from .envs.compare import evaluate_seed_env, evaluation_path

    results = evaluate_seed_env(env_id, model, seed=seed, env_kwargs=env_kwargs)
    if model is None:
        return results, None
    saved = evaluation_path(env_id, model.parent)
    saved.write_text(json.dumps(results) + "\n")
    return results, saved


def cmd_train_env(args: argparse.Namespace) -> int:
    from .envs.compare import config_path, train_seed_env

    if args.steps is None or args.steps <= 0:
        raise CliError("--steps N (a positive number of env steps) is required with --env")
    max_seconds = None if args.max_minutes is None else 60.0 * args.max_minutes
    model = train_seed_env(
        args.env,
        args.steps,
        args.out,
        seed=args.seed or 0,
        max_seconds=max_seconds,
        env_kwargs=_env_kwargs(args.env, args.env_arg),
    )
    trained = json.loads(config_path(model).read_text())
    print(
        f"trained {args.env}: {trained['steps_done']} steps in {trained['train_seconds']:.0f} s "
        f"-> {model} (config {config_path(model)})"
    )
    return 0


def cmd_evaluate_env(args: argparse.Namespace) -> int:
    from .envs.compare import format_table, format_verdict, metrics_only

    model = _seed_model(args.env, args.model)
    results, saved = _evaluate_seed_env(args.env, model, args.seed or 0, _env_kwargs(args.env, args.env_arg))
    if args.json:
        print(json.dumps({**metrics_only(results), "evaluation_json": str(saved) if saved else None}))
        return 0
    print(format_table(results))
    print(format_verdict(results))
    if "tuned_set_point" in results:
        print(f"target-tracking set point tuned on the train split: {results['tuned_set_point']:g}")
    if "tuned_settings" in results:
        tuned = ", ".join(f"{name} {value:g}" for name, value in results["tuned_settings"].items())
        print(f"baseline settings tuned on training surfaces: {tuned} (box units)")
    if saved:
        print(f"saved the full results (per-step series) to {saved}")
    return 0


def cmd_plot_env(args: argparse.Namespace) -> int:
    from .envs.compare import evaluation_path, plot_seed_env

    run = Path(args.run)
    if not run.is_dir():
        raise CliError(f"{run}: not a run directory (`deepracer-rl train --env {args.env} --out DIR`)")
    model = _seed_model(args.env, args.run)
    saved = evaluation_path(args.env, run)
    results = json.loads(saved.read_text()) if saved.is_file() else None
    fresh = (
        results is not None
        and Path(results.get("model_path") or "").resolve() == model.resolve()
        and (args.seed is None or results.get("seed") == args.seed)
        and saved.stat().st_mtime >= model.stat().st_mtime
    )
    if fresh:
        print(f"reusing {saved}")
    else:
        results, saved = _evaluate_seed_env(args.env, model, args.seed or 0)
        print(f"evaluated on the held-out split -> {saved}")
    for path in plot_seed_env(results, run / "plots"):
        print(f"wrote {path}")
    return 0


def add_env_options(p: argparse.ArgumentParser, action: str, *, seed: bool = False, env_arg: bool = False) -> None:
    """--env ID (and friends) on a car subcommand; the car options given with it are refused."""
    group = p.add_argument_group(
        "seed envs",
        "--env ID works on deepracer_rl/Portfolio-v0, deepracer_rl/AutoScaling-v0 or "
        "deepracer_rl/ReactionOptimization-v0 instead of the car (held-out data, beside the baselines)",
    )
    group.add_argument("--env", default=None, metavar="ID", help=f"{action} this seed env")
    env_only = []
    if seed:
        group.add_argument("--seed", type=int, default=None, help="with --env (default: 0)")
        env_only.append("seed")
    if env_arg:
        group.add_argument(
            "--env-arg",
            dest="env_arg",
            action="append",
            default=None,
            metavar="KEY=VALUE",
            help="env constructor argument, e.g. csv_path=prices.csv (repeatable)",
        )
        env_only.append("env_arg")
    p.set_defaults(parser=p, env_only=tuple(env_only))
