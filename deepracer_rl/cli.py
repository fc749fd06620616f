"""The `deepracer-rl` command line: tracks, reward validation, simulation, training and more."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
from typing import TYPE_CHECKING

from .algorithms import ALGORITHMS
from .backend import available_backends
from .cli_envs import CliError, add_env_options, cmd_evaluate_env, cmd_plot_env, cmd_train_env, seed_env
from .config import SELECT_BY
from .networks import NETWORKS
from .reward import RewardFunctionError, validate_reward
from .reward_process import IsolatedReward
from .rundir import RunError
from .track import Track, TrackError, available_tracks

if TYPE_CHECKING:
    from .config import TrainConfig


def cmd_tracks(args: argparse.Namespace) -> int:
    names = args.paths or available_tracks()
    rows = [Track.load(name).summary() for name in names]
    if args.json:
        print(json.dumps(rows, indent=None))
        return 0
    print(f"{'name':<24} {'waypoints':>9} {'length_m':>9} {'width_m':>8} closed")
    for row in rows:
        print(f"{row['name']:<24} {row['waypoints']:>9} {row['length_m']:>9.2f} {row['width_m']:>8.3f} {row['closed']}")
    return 0


def cmd_validate_reward(args: argparse.Namespace) -> int:
    track = Track.load(args.track)
    objects = _world_config(args)
    params = None
    if objects is not None and objects.count:  # positions near the objects too, every objects_* key filled
        from .car import CarSpec
        from .world_objects import sample_params_with_objects

        params = sample_params_with_objects(track, objects, CarSpec.from_urdf(), count=args.samples)
    with IsolatedReward(args.file) as function:  # a reward that hangs or crashes is reported, not suffered
        summary = validate_reward(args.file, track, count=args.samples, function=function, params=params)
        along = _along_raceline(args, track, function) if args.along_raceline else None
    near = ""
    if params is not None:
        crashed = sum(p["is_crashed"] for p in params)
        near = f" (half of them 0.2-3 m behind one of {objects.count} objects, {crashed} touching one)"
    print(
        f"OK {summary['file']}: {summary['calls']} calls on {summary['track']}{near}, "
        f"reward min {summary['min']:.4g} mean {summary['mean']:.4g} max {summary['max']:.4g}"
    )
    if along is not None:
        for name, label in (("raceline", "the racing line "), ("centerline", "the centre line ")):
            row = along[name]
            print(
                f"  along {label}: {row['steps']:4d} steps ({row['lap_s']:.2f} s lap at its speed profile), "
                f"reward per step {row['mean_reward']:.4g}, per lap {row['lap_reward']:.4g}"
            )
        race, centre = along["raceline"], along["centerline"]
        per_step = "racing" if race["mean_reward"] > centre["mean_reward"] else "centre"
        per_lap = "racing" if race["lap_reward"] > centre["lap_reward"] else "centre"
        print(f"  the reward prefers the {per_step} line per step and the {per_lap} line per lap")
    return 0


def _along_raceline(args: argparse.Namespace, track: Track, function: IsolatedReward) -> dict:
    """validate-reward --along-raceline: the reward along the racing line and along the centre line."""
    from .raceline import compute_raceline
    from .racing import score_along_lines

    return score_along_lines(function, compute_raceline(track, margin=args.margin))


def cmd_raceline(args: argparse.Namespace) -> int:
    from .raceline import compute_raceline
    from .racing import verify_raceline, write_raceline, write_reward_file

    if args.laps < 1:
        raise CliError(f"--laps must be at least 1, got {args.laps}")
    if not 0.0 <= args.reward_speed_weight <= 1.0:  # also refuses NaN
        raise CliError(f"--reward-speed-weight must be within 0..1, got {args.reward_speed_weight}")
    line = compute_raceline(args.track, reverse=args.reverse, margin=args.margin)
    result = line.summary()
    result["files"] = {kind: str(path) for kind, path in write_raceline(line, args.out).items()}
    if args.reward_file:
        result["files"]["reward"] = str(
            write_reward_file(line, args.reward_file, args.reward_speed_weight, pace=args.reward_pace)
        )
    if args.verify:
        result.update(verify_raceline(line, laps=args.laps))
        driven = result["driven_lap_s"]
        result["driven_vs_predicted"] = None if driven is None else round(driven / line.predicted_lap_s, 4)
    if args.json:
        print(json.dumps(result))
        return 0
    flying = result["predicted_flying_lap_s"]
    print(
        f"racing line of {result['track']}: {result['length_m']:.2f} m, "
        f"predicted lap {result['predicted_lap_s']:.3f} s from standstill"
        + (f", {flying:.3f} s at speed" if flying is not None else "")
    )
    print(
        f"  centre line at its own speed profile: {result['centerline_lap_s']:.3f} s; minimum-curvature line: "
        f"{result['min_curvature_lap_s']:.3f} s; optimised in {result['optimisation_s']:.1f} s"
    )
    if args.verify:
        driven = result["driven_lap_s"]
        text = "did not complete a lap" if driven is None else f"{driven:.3f} s ({result['driven_vs_predicted']:.3f} x)"
        print(f"  driven in the simulator: {text}")
    for path in result["files"].values():
        print(f"wrote {path}")
    return 0


def cmd_actions(args: argparse.Namespace) -> int:
    from .raceline import compute_raceline
    from .racing import coverage_gaps, raceline_action_space, recipe_action_space, recipe_continuous_space

    if not args.continuous and args.n < 3:
        raise CliError(f"--n {args.n}: a discrete action space from a racing line needs at least 3 actions")
    if args.recovery_min_speed and args.continuous:
        raise CliError("--recovery-min-speed picks among the discrete recovery actions: not with --continuous")
    line = compute_raceline(args.from_raceline, reverse=args.reverse, margin=args.margin)
    if args.recovery_min_speed and not args.recovery:
        raise CliError("--recovery-min-speed selects among the recovery actions: it needs --recovery")
    if args.recovery and args.continuous:
        space = recipe_continuous_space(line)
    elif args.recovery:
        space = recipe_action_space(line, n=args.n, recovery_min_speed=args.recovery_min_speed)
    else:
        space = raceline_action_space(line, n=args.n, continuous=args.continuous)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    space.save(args.out)
    if space.kind == "discrete":
        listed = ", ".join(f"({s:g}°, {v:g} m/s)" for s, v in space.actions)
        steer_gap, speed_gap = coverage_gaps(space, line)
        print(f"wrote {args.out}: {len(space.actions)} discrete actions {listed}")
        print(f"  the need farthest from an action is {steer_gap:.1f}° and {speed_gap:.2f} m/s from it")
    else:
        print(
            f"wrote {args.out}: continuous steering {space.steering_range[0]:g}..{space.steering_range[1]:g}°, "
            f"speed {space.speed_range[0]:g}..{space.speed_range[1]:g} m/s"
        )
    return 0


def cmd_world(args: argparse.Namespace) -> int:
    from .world import write_world  # imports the renderer's colours: only when asked

    names = available_tracks() if args.all else args.tracks
    if not names:
        raise CliError("name at least one TRACK, or --all for every shipped track")
    race = _world_config(args)
    for name in names:
        paths = write_world(Track.load(name), args.out, race=race, seed=args.seed)
        print(f"wrote {paths[0]} (+{len(paths) - 1} mesh/material files)")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .camera import write_views

    for path in write_views(Track.load(args.track), args.out):
        print(f"wrote {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if seed_env(args):
        if args.video or args.video_in_run:
            raise CliError("--video draws the race track and the car: it does not apply to --env")
        return cmd_evaluate_env(args)
    if args.race_type == "head_to_head" or args.opponent is not None:
        return cmd_evaluate_head_to_head(args)
    from .camera import CameraPerturbation
    from .evaluate_runs import evaluate_target, format_evaluation

    options = {}
    if args.ros_timeout is not None:
        if args.backend != "ros":
            raise CliError("--ros-timeout needs --backend ros")
        options.update(timeout=args.ros_timeout, connect_timeout=args.ros_timeout)
    result = evaluate_target(
        args.model,
        track=args.track,
        laps=args.laps,
        driver=args.driver,
        backend=args.backend,
        off_track_penalty=args.off_track_penalty,
        trajectory_csv=args.trajectory,
        video=args.video,
        seed=args.seed,
        perturbation=CameraPerturbation.parse(args.perturb or []),
        randomize=args.randomize,
        workers=args.workers,
        ray_address=args.ray_address,
        world_config=_world_config(args),
        video_in_run=args.video_in_run,
        **options,
    )
    print(json.dumps(result.as_dict()) if args.json else format_evaluation(result))
    return 0


def cmd_evaluate_head_to_head(args: argparse.Namespace) -> int:
    """`evaluate MODEL --race-type head_to_head --opponent MODEL_B|baseline`: two drivers on one track."""
    if args.race_type != "head_to_head":
        raise CliError("--opponent races a second car on the track: it needs --race-type head_to_head")
    if not args.opponent:
        raise CliError("--race-type head_to_head races two cars: give --opponent MODEL or --opponent baseline")
    _world_config(args)  # no obstacle options beside the other car
    unsupported = (
        ("--video", args.video),
        ("--video-in-run", args.video_in_run),
        ("--trajectory", args.trajectory),
        ("--workers", args.workers),
        ("--perturb", args.perturb),
        ("--randomize", args.randomize),
        ("--backend " + str(args.backend), args.backend != "inprocess"),
        ("several --track", args.track and len(args.track) > 1),
    )
    for flag, given in unsupported:
        if given:
            raise CliError(f"--race-type head_to_head: {flag} is not offered (two cars, one in-process track)")
    from .head_to_head_runs import evaluate_head_to_head, format_head_to_head

    result = evaluate_head_to_head(
        args.model,
        args.opponent,
        driver=args.driver,
        track=args.track[0] if args.track else None,
        laps=args.laps,
        seed=args.seed,
        off_track_penalty=args.off_track_penalty,
    )
    print(json.dumps(result.as_dict()) if args.json else format_head_to_head(result))
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    from .robustness import robustness_table, write_heatmap

    table = robustness_table(
        args.model, tracks=args.track, laps=args.laps, driver=args.driver, seed=args.seed, log=_stderr
    )
    out = args.out
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "robustness.json"), "w", encoding="utf-8") as f:
        json.dump(table, f, indent=1)
    png = write_heatmap(table, os.path.join(out, "robustness.png"))
    print(json.dumps(table) if args.json else f"wrote {os.path.join(out, 'robustness.json')} and {png}")
    return 0


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_record(args: argparse.Namespace) -> int:
    from .bags import BagRecorder, BagTopics
    from .evaluate_runs import evaluate_target
    from .ros import contract  # the topic names only: nothing is published, no ROS daemon is needed

    size = _parse_size(args.size, "--size")
    topics = BagTopics(image=contract.IMAGE, cmd_vel=contract.CMD_VEL, odom=contract.ODOM)
    recorder = BagRecorder(args.bag, topics, size=size, storage=args.storage)  # BagError: before driving
    try:
        result = evaluate_target(
            args.model, track=args.track, laps=args.laps, driver=args.driver, simtrace=False, observer=recorder.observer
        )
    except BaseException:
        recorder.close()
        if recorder.frames == 0:  # nothing was driven (e.g. a bad model): leave no empty bag behind
            shutil.rmtree(args.bag, ignore_errors=True)
        raise
    recorder.close()
    report = result.report
    print(
        f"recorded {recorder.frames} frames ({report.completed_laps}/{report.laps} laps, {result.label} on "
        f"{result.track}) to {args.bag} ({args.storage}): {topics.image} sensor_msgs/msg/Image rgb8 "
        f"{size[0]}x{size[1]}, {topics.cmd_vel} geometry_msgs/msg/Twist, {topics.odom} nav_msgs/msg/Odometry"
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .bags import format_replay, replay_bag

    summary = replay_bag(
        args.bag,
        args.model,
        out_dir=args.out,
        image_topic=args.image_topic,
        command_topic=args.command_topic,
        track=args.track,
        runtime=args.runtime,
    )
    print(json.dumps(summary.as_dict()) if args.json else format_replay(summary))
    return 0


def _world_config(args: argparse.Namespace):
    """The race's obstacles and bot cars (`RaceObjects`; none in a time trial or a head-to-head race)
    from --race-type, --world-config FILE and the per-key options (which override the file), or None
    when none of them is given. Errors name the file or option and the key
    (`world_objects.race_objects_from`)."""
    from .opponents import HEAD_TO_HEAD
    from .world_objects import RaceObjects, race_objects_from

    race_type = getattr(args, "race_type", None)
    options = {}
    for field in dataclasses.fields(RaceObjects):
        value = getattr(args, "wc_" + field.name, None)
        if value is not None:
            options[RaceObjects.key(field.name)] = value
    if race_type == HEAD_TO_HEAD:
        if getattr(args, "world_config_file", None) is not None or options:
            raise CliError(
                "--race-type head_to_head: the other car is the only object; no --world-config or "
                "obstacle/bot-car options"
            )
        return None
    return race_objects_from(
        race_type,
        getattr(args, "world_config_file", None),
        options,
        label=lambda key: "--" + key.lower().replace("_", "-"),
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of `train`'s arguments (unset options keep the defaults)."""
    from .config import TrainConfig

    config = TrainConfig()
    if args.backend == "ros" and args.n_envs is None:
        config.n_envs = 1  # one car: the simulator's plain topics
    for field in dataclasses.fields(TrainConfig):
        value = getattr(args, field.name, None)
        if value is not None:
            setattr(config, field.name, value)
    if args.image_size:
        config.image_width, config.image_height = _parse_size(args.image_size)
    objects = _world_config(args)
    if objects is not None and objects.count:
        config.world_config = objects.to_mapping()
    config.head_to_head = getattr(args, "race_type", None) == "head_to_head"
    return config


def _parse_size(text: str, option: str = "--image-size") -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CliError(f"{option} {text!r}: expected WIDTHxHEIGHT, e.g. 80x60") from None
    return width, height


def cmd_train(args: argparse.Namespace) -> int:
    if seed_env(args):
        return cmd_train_env(args)
    from .train import TrainingError, train

    try:  # train() checks every setting before anything is loaded or written
        summary = train(config_from_args(args), args.out, resume=args.resume, force=args.force)
    except TrainingError as exc:
        raise CliError(str(exc)) from None
    print(
        f"trained {summary['timesteps']} steps ({summary['episodes']} episodes) in "
        f"{summary['minutes']} min -> {summary['out']}"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run

    formats = ("onnx", "openvino") if args.format == "openvino" else ("onnx",)
    out = export_run(args.run, args.out, formats=formats)
    ir = f", {out / 'model.xml'} + model.bin (OpenVINO IR, parity checked)" if args.format == "openvino" else ""
    print(f"exported {out / 'model.onnx'}{ir} and {out / 'model_metadata.json'}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    if seed_env(args):
        return cmd_plot_env(args)
    from .plots import plot_run

    for path in plot_run(args.run):
        print(f"wrote {path}")
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from .logs import rescore_run

    summary = rescore_run(args.run, args.reward, args.out)
    print(
        f"rescored {summary['rows']} steps of {summary['episodes']} episodes with {args.reward}: "
        f"mean episode reward {summary['old_mean']:.4g} -> {summary['new_mean']:.4g}; "
        f"wrote {summary['out']}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.out, minutes=args.minutes, steps=args.steps, seed=args.seed)


def cmd_console(args: argparse.Namespace) -> int:
    from .console import run_console

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port}: expected 0..65535")
    # the console checks forms with this module's parser and checks: it is handed over, not imported
    return run_console(args.runs, sys.modules[__name__], host=args.host, port=args.port, token=args.token)


def cmd_sim(args: argparse.Namespace) -> int:
    from .ros import sim_node
    from .world_objects import RaceObjects

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise CliError(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    overrides = {
        "track": args.track,
        "image_width": width,
        "image_height": height,
        "encoding": args.encoding,
        "lockstep": args.lockstep,
        "seed": args.seed,
        "randomize": args.randomize,
        "stale_command_timeout": args.stale_command_timeout,
        "cars": args.cars,
        "sensors": args.sensors,
    }
    given = [f.name for f in dataclasses.fields(RaceObjects) if getattr(args, "wc_" + f.name, None) is not None]
    for name in given:
        if name not in sim_node.RACE_PARAMETERS:
            raise CliError(
                f"--{name.replace('_', '-')}: a penalty is charged by the race (train, evaluate), not by the simulator"
            )
    _world_config(args)  # a bad value is named by its option here, before ROS starts
    if args.race_type is not None:
        overrides["race_type"] = args.race_type
    if args.world_config_file is not None:
        overrides["world_config"] = os.path.abspath(args.world_config_file)
    for name in given:
        value = getattr(args, "wc_" + name)
        overrides[name] = list(value) if isinstance(value, list) else value
    return sim_node.run(args=args.ros_args, overrides=overrides, parent_pid=args.parent_pid)


def _add_backend_options(p: argparse.ArgumentParser, action: str, default: str | None = "inprocess") -> None:
    """--backend NAME and --ros-timeout SECONDS."""
    p.add_argument(
        "--backend",
        choices=sorted(available_backends()),
        default=default,
        help=f"{action} on the in-process simulator (default) or over ROS topics (ros: a simulator behind the "
        "topic contract, e.g. deepracer-rl sim --lockstep, or Gazebo)",
    )
    p.add_argument(
        "--ros-timeout",
        dest="ros_timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="--backend ros: stop with an error naming the silent topics when no simulator "
        "answers within this long (default: 15 s to start answering, then 5 s per step)",
    )


_RACE_OPTION_UNITS = {
    "min_distance_between_obstacles": "%% of the track length; ",  # argparse expands % in help
    "bot_car_speed": "m/s; ",
    "lower_lane_change_time": "s; ",
    "upper_lane_change_time": "s; ",
    "lane_change_distance": "m; ",
    "min_distance_between_bot_cars": "m; ",
    "penalty_seconds": "s a bot car stands after hitting the car; ",
    "collision_penalty": "s added to the lap per collision; ",
    "reset_behind_dist": "m behind the object the car is put back; ",
}


def _add_race_options(p: argparse.ArgumentParser, world_config_help: str, head_to_head: str | None = None) -> None:
    """--race-type, --world-config FILE and one option per DeepRacer world-config key in kebab case
    (`--number-of-obstacles 3`, `--randomize-obstacle-locations`, ...): options override the file.
    `head_to_head`: the help of race type head_to_head, which this command then offers."""
    from .opponents import HEAD_TO_HEAD
    from .world_objects import OBSTACLE_TYPES, RACE_TYPES, RaceObjects

    group = p.add_argument_group(
        "race type (DeepRacer's world config; each option is DeepRacer's key in kebab case and overrides "
        "--world-config; docs/races.md)"
    )
    group.add_argument(
        "--race-type",
        dest="race_type",
        choices=RACE_TYPES + ((HEAD_TO_HEAD,) if head_to_head else ()),
        default=None,
        help="time_trial, object_avoidance (default 6 obstacles, as DRfC) or head_to_bot (default 3 bot cars)"
        + (f"; {HEAD_TO_HEAD}: {head_to_head}" if head_to_head else ""),
    )
    group.add_argument(
        "--world-config", dest="world_config_file", default=None, metavar="FILE.yaml|json", help=world_config_help
    )
    for field in dataclasses.fields(RaceObjects):
        flag = "--" + field.name.replace("_", "-")
        kwargs: dict = {"dest": "wc_" + field.name, "default": None}
        default = field.default
        if field.name == "object_positions":
            kwargs.update(
                action="append",
                metavar="PROGRESS,LANE",
                help="an obstacle at this fraction of the "
                "track length in lane 1 (inner) or -1 (outer), repeatable; overrides the number",
            )
        elif field.name == "obstacle_type":
            kwargs.update(choices=OBSTACLE_TYPES, help=f"default: {default}")
        elif isinstance(default, bool):
            kwargs.update(action=argparse.BooleanOptionalAction, help=f"default: {str(default).lower()}")
        elif isinstance(default, int):
            kwargs.update(type=int, metavar="N", help=f"default: {default}")
        else:
            shown = (
                "2 in evaluation, 0 in training"
                if field.name == "penalty_seconds"
                else ("5 in evaluation, 0 in training" if field.name == "collision_penalty" else f"{default:g}")
            )
            unit = _RACE_OPTION_UNITS.get(field.name, "")
            kwargs.update(type=float, metavar="X", help=f"{unit}default: {shown}")
        group.add_argument(flag, **kwargs)


def _add_margin_option(p: argparse.ArgumentParser) -> None:
    """--margin M: metres between the racing line and each border."""
    p.add_argument(
        "--margin",
        type=float,
        default=None,
        metavar="M",
        help="racing line: metres kept from each border (default: half the car's width from the URDF + 0.02)",
    )


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

    p = sub.add_parser("validate-reward", help="run a reward_function(params) file on many real positions")
    p.add_argument("file", help="a .py file defining reward_function(params)")
    p.add_argument("--track", default="reinvent_base", help="track name or .npy (default: %(default)s)")
    p.add_argument("--samples", type=int, default=200, help="positions to try (default: %(default)s)")
    p.add_argument(
        "--along-raceline",
        dest="along_raceline",
        action="store_true",
        help="also score the reward along the track's racing line and along its centre line (one lap each "
        "at its speed profile), to see which it prefers",
    )
    _add_margin_option(p)
    _add_race_options(
        p,
        "obstacles and bot cars: the reward is also called at positions near them, with every objects_* key "
        "filled (DeepRacer's world-config keys, YAML or JSON)",
    )
    p.set_defaults(func=cmd_validate_reward)

    p = sub.add_parser("raceline", help="the minimum-time racing line of a track: .npy, CSV, PNG, lap time")
    p.add_argument("track", metavar="TRACK", help="track name or .npy")
    p.add_argument("--reverse", action="store_true", help="the track driven the other way")
    _add_margin_option(p)
    p.add_argument("--out", default="runs/raceline", help="output directory (default: %(default)s)")
    p.add_argument("--verify", action="store_true", help="drive the line in the simulator and report the lap")
    p.add_argument("--laps", type=int, default=1, help="--verify: laps to drive (default: %(default)s)")
    p.add_argument(
        "--reward-file",
        dest="reward_file",
        default=None,
        metavar="FILE.py",
        help="also write a reward_function file with the line embedded (DeepRacer rewards cannot read files)",
    )
    p.add_argument(
        "--reward-speed-weight",
        dest="reward_speed_weight",
        type=float,
        default=0.5,
        metavar="W",
        help="--reward-file: share 0..1 of the reward for speed vs the line's profile (default: %(default)s)",
    )
    p.add_argument(
        "--reward-pace",
        dest="reward_pace",
        action="store_true",
        help="--reward-file: the training recipe's reward instead, (0.1 + nearness to the line) x speed per step "
        "(docs/racing.md; --reward-speed-weight does not apply)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_raceline)

    p = sub.add_parser("actions", help="write a model_metadata.json action space (from a racing line)")
    p.add_argument("--from-raceline", dest="from_raceline", required=True, metavar="TRACK", help="track name or .npy")
    p.add_argument("--reverse", action="store_true", help="the track driven the other way")
    _add_margin_option(p)
    p.add_argument("--n", type=int, default=10, help="discrete actions (default: %(default)s)")
    p.add_argument("--continuous", action="store_true", help="a continuous space whose bounds cover the line")
    p.add_argument(
        "--recovery",
        action="store_true",
        help="append the training recipe's three recovery actions, turned the way the line turns overall; "
        "with --continuous: widen the line's bounds by the recipe's room for corrections (docs/racing.md)",
    )
    p.add_argument(
        "--recovery-min-speed",
        dest="recovery_min_speed",
        type=float,
        default=0.0,
        metavar="M/S",
        help="--recovery: leave out the recovery actions slower than this (Bowtie_track's recipe: 2)",
    )
    p.add_argument("--out", default="model_metadata.json", help="file to write (default: %(default)s)")
    p.set_defaults(func=cmd_actions)

    p = sub.add_parser("world", help="generate Gazebo Harmonic worlds (SDF + meshes) from tracks")
    p.add_argument("tracks", nargs="*", metavar="TRACK", help="track names or .npy files")
    p.add_argument("--all", action="store_true", help="every shipped track")
    p.add_argument("--out", default="worlds", help="output directory (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="with objects: the seed of their layout (default: %(default)s)")
    _add_race_options(
        p,
        "a YAML/JSON world config with DeepRacer's keys: the world variant <track>_<race type>.sdf with the "
        "obstacles as static boxes and the bot cars at their start poses (bot_cars_node drives them)",
    )
    p.set_defaults(func=cmd_world)

    p = sub.add_parser("render", help="write PNG camera views and a top-down map of a track")
    p.add_argument("--track", default="reinvent_base", help="track name or .npy (default: %(default)s)")
    p.add_argument("--out", default="runs/render", help="output directory (default: %(default)s)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("evaluate", help="drive evaluation laps: lap times, completion, off-track count")
    p.add_argument(
        "model",
        nargs="?",
        metavar="RUN_OR_MODEL",
        help="a training run directory, a model .zip, or an export dir with model.onnx",
    )
    p.add_argument(
        "--driver",
        choices=["policy", "baseline"],
        default="policy",
        help="'baseline' drives the scripted pure-pursuit driver (no model needed)",
    )
    p.add_argument(
        "--track",
        action="append",
        default=None,
        help="track name or .npy, repeatable (default: the run's track, else reinvent_base)",
    )
    p.add_argument(
        "--laps",
        type=int,
        default=3,
        help="laps per track, from as many start poses spread round it (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="draws where the evenly spread starts begin (default: the first on the start line) and the "
        "--randomize/noise streams; with --env: the env's seed (default: 0)",
    )
    p.add_argument(
        "--perturb",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="a fixed camera change, repeatable: brightness, contrast (gains), blur_px (sigma, DeepRacer "
        "pixels), noise_std (gray levels), jpeg_quality (1-100), camera_pitch_rad (+ = down), "
        "camera_height_m, camera_yaw_rad (+ = left)",
    )
    p.add_argument(
        "--randomize",
        action="store_true",
        help="the training camera randomisation (off by default: evaluation measures the plain camera)",
    )
    p.add_argument(
        "--off-track-penalty",
        type=float,
        default=None,
        metavar="SECONDS",
        help="put the car back on track and add this many seconds instead of ending the lap",
    )
    p.add_argument("--trajectory", default=None, metavar="CSV", help="write the per-step trajectory here")
    p.add_argument(
        "--video",
        default=None,
        metavar="FILE.mp4",
        help="write an H.264 MP4 of the laps: the car's camera, a top-down map, speed, steering, reward, progress",
    )
    p.add_argument(
        "--video-in-run",
        dest="video_in_run",
        action="store_true",
        help="write the MP4 into the run, beside the evaluation's simtrace and result "
        "(RUN/evaluation-<stamp>/video.mp4), where deepracer-rl console shows it",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="drive the laps as Ray tasks, one per (track, start), N at once (docs/scaling.md)",
    )
    p.add_argument(
        "--ray-address",
        dest="ray_address",
        default=None,
        metavar="auto|HOST:PORT",
        help="with --workers: the Ray cluster to join; default: start a local Ray",
    )
    _add_backend_options(p, "drive the laps")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_env_options(p, "evaluate the policy in RUN_OR_MODEL (or only the baselines) on", env_arg=True)
    _add_race_options(
        p,
        "obstacles and bot cars on the track (default: the run's; none for the baseline); each collision costs "
        "COLLISION_PENALTY s (5) and puts the car back behind the object: a YAML or JSON file of DeepRacer's "
        "world-config keys",
        head_to_head="RUN_OR_MODEL (car 0) races --opponent (car 1) on one track, the leader of the staggered "
        "start alternating by lap; a collision costs each car 5 s",
    )
    p.add_argument(
        "--opponent",
        default=None,
        metavar="MODEL|baseline",
        help="--race-type head_to_head: the second car's driver, as RUN_OR_MODEL (a run, model .zip, export dir "
        "or shipped model name) or 'baseline' (the scripted driver)",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("robustness", help="evaluate on tracks x camera perturbations: a JSON table and a PNG heat map")
    p.add_argument("model", nargs="?", metavar="MODEL", help="a run directory, a model .zip or an export dir")
    p.add_argument("--driver", choices=["policy", "baseline"], default="policy", help="'baseline': no model needed")
    p.add_argument(
        "--track", action="append", default=None, help="track name or .npy, repeatable (default: reinvent_base)"
    )
    p.add_argument("--laps", type=int, default=3, help="laps per track and perturbation (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="start poses and noise (default: starts from the line)")
    p.add_argument("--out", default="runs/robustness", help="folder for robustness.json and robustness.png")
    p.add_argument("--json", action="store_true", help="print the table as one JSON object")
    p.set_defaults(func=cmd_robustness)

    p = sub.add_parser("train", help="train a policy (PPO or SAC) on camera frames")
    p.add_argument(
        "--track",
        dest="track_specs",
        action="append",
        default=None,
        metavar="TRACK",
        help="training track, repeatable: a name, a .npy, a glob (reInvent2019_*, maps/*.npy), @LIST_FILE, all, "
        "or random:N[:SEED] (N generated loops, saved in the run); several: each car draws one per episode "
        "(default: reinvent_base)",
    )
    p.add_argument(
        "--direction",
        choices=["as-is", "ccw", "cw", "both"],
        default=None,
        help="which way round the tracks are driven: as their files run (default), counter-clockwise, "
        "clockwise, or both (drawn per episode)",
    )
    p.add_argument(
        "--val-track",
        dest="val_track_specs",
        action="append",
        default=None,
        metavar="TRACK",
        help="validation track for model selection, repeatable (same forms as --track); default: with 5 or "
        "more training tracks, a seeded tenth of them (at least 2) is held out of training; else the training "
        "track(s)",
    )
    p.add_argument(
        "--val-perturb",
        dest="val_perturb",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="also validate under this camera perturbation (as evaluate --perturb), repeatable",
    )
    p.add_argument(
        "--reward", default=None, metavar="FILE", help="reward_function(params) file (default: follow the centre line)"
    )
    p.add_argument(
        "--metadata",
        default=None,
        metavar="JSON",
        help="model_metadata.json (default: the DeepRacer console's action space)",
    )
    p.add_argument("--algo", choices=sorted(ALGORITHMS), default=None, help="default: ppo")
    p.add_argument("--steps", type=int, default=None, help="env steps in all (default: 150000)")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/NAME")
    p.add_argument(
        "--n-envs",
        dest="n_envs",
        type=int,
        default=None,
        help="cars simulated together (default: 8; 1 with --backend ros, where N > 1 drives the "
        "simulator's cars /car0../car<N-1>: deepracer-rl sim --cars N)",
    )
    _add_backend_options(p, "train", default=None)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="collect PPO's rollouts on N Ray workers of --n-envs cars each (pip install 'deepracer_rl[ray]'; "
        "docs/scaling.md); default: the cars run in this process",
    )
    p.add_argument(
        "--ray-address",
        dest="ray_address",
        default=None,
        metavar="auto|HOST:PORT",
        help="with --workers: the Ray cluster to join (ray start --head ...); default: start a local Ray",
    )
    p.add_argument(
        "--ros-domain-base",
        dest="ros_domain_base",
        type=int,
        default=None,
        metavar="B",
        help="with --workers N --backend ros: worker i races in ROS_DOMAIN_ID B+i (0..101 in all); default: "
        "this process's ROS_DOMAIN_ID + 1",
    )
    p.add_argument(
        "--external-simulators",
        dest="external_simulators",
        action="store_const",
        const=True,
        default=None,
        help="with --workers N --backend ros: start no simulators; worker i races the one you started in "
        "ROS_DOMAIN_ID B+i on its node (e.g. Gazebo; docs/scaling.md)",
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument(
        "--force",
        action="store_true",
        help="with --resume: continue although the reward or track file changed since the run started",
    )
    p.add_argument("--image-size", default=None, metavar="WxH", help="policy input size (default: 80x60)")
    p.add_argument(
        "--network",
        choices=sorted(NETWORKS),
        default=None,
        help="CNN (default: shallow, DeepRacer's three-layer CNN)",
    )
    p.add_argument("--frame-stack", dest="frame_stack", type=int, default=None)
    p.add_argument(
        "--randomize",
        nargs="?",
        const="standard",
        default=None,
        choices=["none", "standard", "general"],
        help="domain randomisation of the camera for policies that must drive other cameras and tracks: "
        "standard (brightness, contrast, colour, noise, blur, camera pose, floor; the default of a bare "
        "--randomize) or general (wider, plus exposure, white balance, JPEG, motion blur, lens, floors, "
        "line styles, clutter: docs/randomisation.md)",
    )
    hp = p.add_argument_group("hyperparameters (DeepRacer console names)")
    hp.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="default: 256")
    hp.add_argument("--learning-rate", dest="learning_rate", type=float, default=None, help="default: 3e-4")
    hp.add_argument("--entropy", type=float, default=None, help="entropy bonus (default: 0.01)")
    hp.add_argument("--discount", type=float, default=None, help="discount factor (default: 0.99)")
    hp.add_argument("--epochs", type=int, default=None, help="passes over each batch (default: 3)")
    hp.add_argument(
        "--normalize-reward",
        dest="normalize_reward",
        action="store_true",
        default=None,
        help="PPO/SAC learn from rewards divided by the running std of the discounted return, so the critic "
        "fits whatever the reward function's scale (logs keep the function's own rewards; docs/racing.md)",
    )
    hp.add_argument(
        "--target-kl",
        dest="target_kl",
        type=float,
        default=None,
        help="PPO: stop an update's epochs once the approximate KL to the old policy passes 1.5 x this "
        "(guards against an update that wrecks the policy; default: no limit)",
    )
    hp.add_argument(
        "--episodes-between-updates",
        dest="episodes_between_updates",
        type=int,
        default=None,
        help="rollout size, as episodes of ~100 steps (default: 20)",
    )
    hp.add_argument(
        "--checkpoint-every",
        dest="checkpoint_every",
        type=int,
        default=None,
        help="env steps between checkpoints (default: 10000)",
    )
    hp.add_argument(
        "--eval-every",
        dest="eval_every",
        type=int,
        default=None,
        help="env steps between evaluation laps (default: 10000)",
    )
    hp.add_argument(
        "--eval-laps",
        dest="eval_laps",
        type=int,
        default=None,
        metavar="N",
        help="laps per validation track and camera at each evaluation, from N starts spread round the track "
        "(default: 1)",
    )
    hp.add_argument(
        "--select-by",
        dest="select_by",
        choices=SELECT_BY,
        default=None,
        help="what best_model.zip is chosen by once its evaluation completes as many laps: the fastest lap "
        "or the mean lap (with --eval-laps N: what evaluate --laps N reports); default: the mean in a race "
        "with objects or over several tracks, else the fastest lap",
    )
    hp.add_argument(
        "--threads",
        dest="torch_threads",
        type=int,
        default=None,
        help="CPU threads for the network (torch; default: 2)",
    )
    iso = p.add_argument_group("reward isolation (the reward function runs in a child process)")
    iso.add_argument(
        "--reward-timeout",
        dest="reward_timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time one reward_function call may take before the run stops with a message (default: 5)",
    )
    iso.add_argument(
        "--reward-memory",
        dest="reward_memory_mb",
        type=int,
        default=None,
        metavar="MIB",
        help="memory (address space) of the reward process (default: 2048)",
    )
    iso.add_argument(
        "--no-reward-isolation",
        dest="reward_isolation",
        action="store_const",
        const=False,
        default=None,
        help="run the reward function in the training process (a little faster; a hang or crash in it "
        "then hangs or ends the run)",
    )
    p.add_argument(
        "--camera-snapshot",
        dest="camera_snapshot",
        type=float,
        default=None,
        metavar="SECONDS",
        help="every SECONDS, write car 0's camera (as the policy sees it) to RUN/camera/latest.jpg, where "
        "deepracer-rl console shows it live (default: off)",
    )
    hp.add_argument(
        "--max-minutes",
        dest="max_minutes",
        type=float,
        default=None,
        help="stop (with a checkpoint) after this much wall time",
    )
    add_env_options(p, "train PPO on", env_arg=True)
    _add_race_options(
        p,
        "obstacles and bot cars on the track (object avoidance, head-to-bot), recorded in the run; a collision "
        "ends the episode as crashed: a YAML or JSON file of DeepRacer's world-config keys (NUMBER_OF_OBSTACLES, "
        "RANDOMIZE_OBSTACLE_LOCATIONS, OBJECT_POSITIONS, NUMBER_OF_BOT_CARS, BOT_CAR_SPEED, RACE_TYPE, ...)",
        head_to_head="each of the --n-envs cars races an opponent car (2 x N cars in the simulator) driven by "
        "--opponent or, with --self-play, by frozen snapshots of the policy; touching it ends the episode as crashed",
    )
    group = p.add_argument_group("head-to-head (--race-type head_to_head; docs/races.md)")
    group.add_argument(
        "--opponent",
        default=None,
        metavar="MODEL|baseline",
        help="train against this fixed driver: a run, model .zip, export dir or shipped model name (seeing "
        "through the same camera settings), or 'baseline' (the scripted driver)",
    )
    group.add_argument(
        "--self-play",
        dest="self_play",
        action="store_const",
        const=True,
        default=None,
        help="train against frozen earlier copies of the policy: the pool starts with the initial policy",
    )
    group.add_argument(
        "--opponent-pool",
        dest="opponent_pool",
        type=int,
        default=None,
        metavar="N",
        help="--self-play: each opponent episode draws its driver from the newest N snapshots (default: 5)",
    )
    group.add_argument(
        "--snapshot-every",
        dest="snapshot_every",
        type=int,
        default=None,
        metavar="STEPS",
        help="--self-play: env steps between snapshots of the policy, saved in RUN/opponents/ (default: 20000)",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="write model.onnx + model_metadata.json of a run")
    p.add_argument("run", metavar="RUN", help="a run directory (its best model) or a model .zip")
    p.add_argument("--out", default=None, help="output dir (default: RUN/export)")
    p.add_argument(
        "--format",
        choices=["onnx", "openvino"],
        default="onnx",
        help="openvino: also model.xml + model.bin, the OpenVINO IR of the ONNX graph, checked for parity "
        "(default: %(default)s)",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "record", help="drive laps in the simulator and record a ROS 2 bag (camera, /cmd_vel, /odom; no ROS needed)"
    )
    p.add_argument("model", nargs="?", metavar="RUN_OR_MODEL", help="a run directory, a model .zip or an export dir")
    p.add_argument("--bag", required=True, help="the bag to write (a new directory)")
    p.add_argument("--driver", choices=["policy", "baseline"], default="policy", help="'baseline': no model needed")
    p.add_argument("--track", default=None, help="track name or .npy (default: the run's track, else reinvent_base)")
    p.add_argument("--laps", type=int, default=1, help="laps to drive (default: %(default)s)")
    p.add_argument(
        "--size", default="160x120", metavar="WxH", help="recorded camera size (default: %(default)s, DeepRacer's)"
    )
    p.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap", help="rosbag2 storage (default: mcap)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "replay",
        help="run a policy on a bag's camera frames offline: its actions beside the car's, sim vs real frame stats",
    )
    p.add_argument("bag", metavar="BAG", help="a rosbag2 directory (mcap or sqlite3), e.g. recorded on the car")
    p.add_argument("--model", required=True, help="an export dir (model.onnx) or its model.xml (OpenVINO)")
    p.add_argument("--out", default=None, help="directory for actions.csv and summary.json (default: BAG-replay)")
    p.add_argument(
        "--image-topic",
        dest="image_topic",
        default=None,
        help="camera topic (default: the first Image, CompressedImage or DeepRacer CameraMsg topic)",
    )
    p.add_argument(
        "--command-topic",
        dest="command_topic",
        default=None,
        help="the car's commands (default: the first Twist or DeepRacer ServoCtrlMsg topic)",
    )
    p.add_argument(
        "--track", default="reinvent_base", help="track of the simulated frames compared with (default: %(default)s)"
    )
    p.add_argument("--runtime", choices=["auto", "onnxruntime", "openvino"], default="auto")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("plot", help="write PNG plots of a run into RUN/plots")
    p.add_argument("run", metavar="RUN")
    add_env_options(p, "plot equity curves or load vs capacity of RUN's policy and the baselines on", seed=True)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("rescore", help="recompute a run's logged rewards with another reward function")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--reward", required=True, metavar="FILE")
    p.add_argument("--out", default=None, help="CSV to write (default: RUN/rescore-<name>.csv)")
    p.set_defaults(func=cmd_rescore)

    p = sub.add_parser("sim", help="run the simulator node: the topic contract over ROS 2 (Ctrl-C stops it)")
    p.add_argument("--track", default="reinvent_base", help="track name or .npy (default: %(default)s)")
    p.add_argument("--size", default="640x480", metavar="WxH", help="camera image size (default: %(default)s)")
    p.add_argument("--encoding", choices=["rgb8", "mono8"], default="rgb8", help="image encoding (default: rgb8)")
    p.add_argument(
        "--lockstep",
        action="store_true",
        help="advance one control period (1/15 s) per /cmd_vel instead of running in real time",
    )
    p.add_argument("--seed", type=int, default=0, help="start noise and domain randomisation seed; -1 draws one")
    p.add_argument("--randomize", action="store_true", help="domain randomisation of the camera images")
    p.add_argument(
        "--cars",
        type=int,
        default=1,
        help="cars on the track (default: 1); with N > 1 each has the topic contract under /car0../car<N-1>",
    )
    p.add_argument(
        "--sensors",
        default="",
        metavar="NAME[,NAME]",
        help="DeepRacer's other sensors to publish beside the front camera: STEREO_CAMERAS (/stereo/left|right/"
        "image_raw) and/or a lidar (LIDAR, SECTOR_LIDAR, DISCRETIZED_SECTOR_LIDAR: /scan)",
    )
    _add_race_options(
        p,
        "a YAML/JSON world config with DeepRacer's keys (NUMBER_OF_OBSTACLES: 3, ...): the simulator spawns "
        "the obstacles and bot cars, publishes their poses on /objects; its cameras and /scan see them",
    )
    p.add_argument(
        "--stale-command-timeout",
        dest="stale_command_timeout",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="real time: stop the car this long after the last /cmd_vel (default: 0.5)",
    )
    p.add_argument(
        "--parent-pid",
        dest="parent_pid",
        type=int,
        default=None,
        metavar="PID",
        help="stop when process PID is no longer this simulator's parent (a Ray worker's simulator: "
        "it ends with its worker, even one killed by SIGKILL)",
    )
    p.add_argument(
        "ros_args",
        nargs=argparse.REMAINDER,
        metavar="--ros-args ...",
        help="ROS arguments passed on to rclpy (e.g. --ros-args -r __ns:=/car1)",
    )
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser(
        "console", help="a local web console: runs, live training curves and camera, evaluation videos, leaderboard"
    )
    p.add_argument("--runs", default="runs", metavar="DIR", help="the runs directory (default: %(default)s)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default: %(default)s; 0: any free port)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s, this machine only); any other needs a token",
    )
    p.add_argument(
        "--token",
        default=None,
        help="the token every request must carry (?token=, cookie or 'Authorization: Bearer'); default with a "
        "non-loopback --host: $DEEPRACER_CONSOLE_TOKEN or a generated one, printed with the URL",
    )
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("demo", help="the main job: train on reinvent_base, evaluate, export, plot")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--minutes", type=float, default=10.0, help="training time budget (default: %(default)s)")
    p.add_argument("--steps", type=int, default=300_000, help="training step budget (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    return parser


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads that sleep instead of spinning while they wait: on a busy 2-core machine a
    # training run took 17 s instead of 54 s. Set before torch loads (nothing above imports it).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, TrackError, RewardFunctionError, ValueError, FileNotFoundError, RunError, TimeoutError) as exc:
        # TimeoutError: a simulator behind a backend that stopped answering (the message names the topics)
        print(f"deepracer-rl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deepracer-rl {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `deepracer-rl tracks | head`: the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return 1
    except OSError as exc:  # a full disk, a file that cannot be written or read: say which
        where = f": {exc.filename}" if exc.filename else ""
        print(f"deepracer-rl {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
