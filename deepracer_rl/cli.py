"""The `deepracer-rl` command line: tracks, reward validation, simulation, training and more."""

from __future__ import annotations

import argparse
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
