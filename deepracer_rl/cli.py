"""The `deepracer-rl` command line: tracks, reward validation, simulation, training and more."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from .reward import RewardFunctionError, validate_reward
from .track import Track, TrackError, available_tracks


class CliError(Exception):
    """A user error the CLI reports in one line and exits non-zero for."""


def cmd_tracks(args: argparse.Namespace) -> int:
    names = args.paths or available_tracks()
    rows = [Track.load(name).summary() for name in names]
    if args.json:
        print(json.dumps(rows, indent=None))
        return 0
    print(f"{'name':<24} {'waypoints':>9} {'length_m':>9} {'width_m':>8} closed")
    for row in rows:
        print(
            f"{row['name']:<24} {row['waypoints']:>9} {row['length_m']:>9.2f} "
            f"{row['width_m']:>8.3f} {row['closed']}"
        )
    return 0


def cmd_validate_reward(args: argparse.Namespace) -> int:
    summary = validate_reward(args.file, Track.load(args.track), count=args.samples)
    print(
        f"OK {summary['file']}: {summary['calls']} calls on {summary['track']}, "
        f"reward min {summary['min']:.4g} mean {summary['mean']:.4g} max {summary['max']:.4g}"
    )
    return 0


def cmd_world(args: argparse.Namespace) -> int:
    from .world import write_world  # imports the renderer's colours: only when asked

    names = available_tracks() if args.all else args.tracks
    if not names:
        raise CliError("name at least one TRACK, or --all for every shipped track")
    for name in names:
        paths = write_world(Track.load(name), args.out)
        print(f"wrote {paths[0]} (+{len(paths) - 1} mesh/material files)")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .camera import write_views

    for path in write_views(Track.load(args.track), args.out):
        print(f"wrote {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_cli

    report = evaluate_cli(args)
    if args.json:
        print(json.dumps(report))
    return 0


def _config_from_args(args: argparse.Namespace):
    from .train import TrainConfig

    config = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        value = getattr(args, field.name, None)
        if value is not None:
            setattr(config, field.name, value)
    if args.image_size:
        config.image_width, config.image_height = _parse_size(args.image_size)
    return config


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CliError(f"--image-size {text!r}: expected WIDTHxHEIGHT, e.g. 80x60") from None
    if width < 36 or height < 36:
        raise CliError(f"--image-size {text!r}: the CNN needs at least 36x36 pixels")
    return width, height


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainingError, train

    try:
        summary = train(_config_from_args(args), args.out, resume=args.resume)
    except TrainingError as exc:
        raise CliError(str(exc)) from None
    print(f"trained {summary['timesteps']} steps ({summary['episodes']} episodes) in "
          f"{summary['minutes']} min -> {summary['out']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run

    out = export_run(args.run, args.out)
    print(f"exported {out / 'model.onnx'} and {out / 'model_metadata.json'}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .plots import plot_run

    for path in plot_run(args.run):
        print(f"wrote {path}")
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from .logs import rescore_run

    summary = rescore_run(args.run, args.reward, args.out)
    print(f"rescored {summary['rows']} steps of {summary['episodes']} episodes with {args.reward}: "
          f"mean episode reward {summary['old_mean']:.4g} -> {summary['new_mean']:.4g}; "
          f"wrote {summary['out']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.out, minutes=args.minutes, steps=args.steps, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepracer-rl",
        description="Train DeepRacer-style racing policies on a laptop, with ROS 2.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("tracks", help="list the shipped tracks (or the given .npy files)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="track names or .npy files")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=cmd_tracks)

    p = sub.add_parser(
        "validate-reward", help="run a reward_function(params) file on many real positions"
    )
    p.add_argument("file", help="a .py file defining reward_function(params)")
    p.add_argument("--track", default="reinvent_base", help="track name or .npy (default: %(default)s)")
    p.add_argument("--samples", type=int, default=200, help="positions to try (default: %(default)s)")
    p.set_defaults(func=cmd_validate_reward)

    p = sub.add_parser("world", help="generate Gazebo Harmonic worlds (SDF + meshes) from tracks")
    p.add_argument("tracks", nargs="*", metavar="TRACK", help="track names or .npy files")
    p.add_argument("--all", action="store_true", help="every shipped track")
    p.add_argument("--out", default="worlds", help="output directory (default: %(default)s)")
    p.set_defaults(func=cmd_world)

    p = sub.add_parser("render", help="write PNG camera views and a top-down map of a track")
    p.add_argument("--track", default="reinvent_base", help="track name or .npy (default: %(default)s)")
    p.add_argument("--out", default="runs/render", help="output directory (default: %(default)s)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser(
        "evaluate", help="drive evaluation laps: lap times, completion, off-track count"
    )
    p.add_argument("model", nargs="?", metavar="RUN_OR_MODEL",
                   help="a training run directory, a model .zip, or an export dir with model.onnx")
    p.add_argument("--driver", choices=["policy", "baseline"], default="policy",
                   help="'baseline' drives the scripted pure-pursuit driver (no model needed)")
    p.add_argument("--track", default=None, help="track name or .npy (default: the run's track, "
                   "else reinvent_base)")
    p.add_argument("--laps", type=int, default=3, help="laps to drive (default: %(default)s)")
    p.add_argument("--off-track-penalty", type=float, default=None, metavar="SECONDS",
                   help="put the car back on track and add this many seconds instead of ending the lap")
    p.add_argument("--trajectory", default=None, metavar="CSV", help="write the per-step trajectory here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a policy (PPO or SAC) on camera frames")
    p.add_argument("--track", default=None, help="track name or .npy (default: reinvent_base)")
    p.add_argument("--reward", default=None, metavar="FILE", help="reward_function(params) file "
                   "(default: follow the centre line)")
    p.add_argument("--metadata", default=None, metavar="JSON", help="model_metadata.json "
                   "(default: the DeepRacer console's action space)")
    p.add_argument("--algo", choices=["ppo", "sac"], default=None, help="default: ppo")
    p.add_argument("--steps", type=int, default=None, help="env steps in all (default: 150000)")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/NAME")
    p.add_argument("--n-envs", dest="n_envs", type=int, default=None, help="cars simulated together (default: 8)")
    p.add_argument("--backend", choices=["inprocess", "ros"], default=None,
                   help="inprocess simulator (default) or ROS topics via the Gym bridge")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--image-size", default=None, metavar="WxH", help="policy input size (default: 80x60)")
    p.add_argument("--network", choices=["shallow", "deep", "small"], default=None,
                   help="CNN (default: shallow, DeepRacer's three-layer CNN)")
    p.add_argument("--frame-stack", dest="frame_stack", type=int, default=None)
    hp = p.add_argument_group("hyperparameters (DeepRacer console names)")
    hp.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="default: 256")
    hp.add_argument("--learning-rate", dest="learning_rate", type=float, default=None, help="default: 3e-4")
    hp.add_argument("--entropy", type=float, default=None, help="entropy bonus (default: 0.01)")
    hp.add_argument("--discount", type=float, default=None, help="discount factor (default: 0.99)")
    hp.add_argument("--epochs", type=int, default=None, help="passes over each batch (default: 3)")
    hp.add_argument("--episodes-between-updates", dest="episodes_between_updates", type=int,
                    default=None, help="rollout size, as episodes of ~100 steps (default: 20)")
    hp.add_argument("--checkpoint-every", dest="checkpoint_every", type=int, default=None,
                    help="env steps between checkpoints (default: 10000)")
    hp.add_argument("--eval-every", dest="eval_every", type=int, default=None,
                    help="env steps between evaluation laps (default: 10000)")
    hp.add_argument("--max-minutes", dest="max_minutes", type=float, default=None,
                    help="stop (with a checkpoint) after this much wall time")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="write model.onnx + model_metadata.json of a run")
    p.add_argument("run", metavar="RUN", help="a run directory (its best model) or a model .zip")
    p.add_argument("--out", default=None, help="output dir (default: RUN/export)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("plot", help="write PNG plots of a run into RUN/plots")
    p.add_argument("run", metavar="RUN")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("rescore", help="recompute a run's logged rewards with another reward function")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--reward", required=True, metavar="FILE")
    p.add_argument("--out", default=None, help="CSV to write (default: RUN/rescore-<name>.csv)")
    p.set_defaults(func=cmd_rescore)

    p = sub.add_parser("demo", help="the main job: train on reinvent_base, evaluate, export, plot")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--minutes", type=float, default=11.0, help="training time budget (default: %(default)s)")
    p.add_argument("--steps", type=int, default=400_000, help="training step budget (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, TrackError, RewardFunctionError, ValueError, FileNotFoundError) as exc:
        print(f"deepracer-rl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deepracer-rl {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `deepracer-rl tracks | head`: the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return 1


if __name__ == "__main__":
    sys.exit(main())
