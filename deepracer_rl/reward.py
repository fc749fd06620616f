"""DeepRacer reward functions: the `params` dict and user `reward_function(params)` files.

A reward file is a plain Python file defining `reward_function(params)`, exactly as the
DeepRacer console takes it (module-level imports such as `math` are allowed). Any failure
raises `RewardFunctionError` naming the file, the line where known, and the params.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .track import Projection, Track

REWARD_LIMIT = 1e5
EXAMPLES_DIR = Path(__file__).resolve().parent / "rewards"
DEFAULT_REWARD = EXAMPLES_DIR / "follow_centerline.py"

PARAM_KEYS = (
    "all_wheels_on_track",
    "x",
    "y",
    "heading",
    "distance_from_center",
    "is_left_of_center",
    "is_offtrack",
    "is_crashed",
    "is_reversed",
    "progress",
    "steps",
    "speed",
    "steering_angle",
    "track_width",
    "track_length",
    "waypoints",
    "closest_waypoints",
    "projection_distance",
    "sim_time",
    "closest_objects",
    "objects_distance",
    "objects_heading",
    "objects_left_of_center",
    "objects_location",
    "objects_speed",
    "objects_distance_from_center",
    "object_in_camera",
)


class RewardFunctionError(ValueError):
    """A reward file could not be loaded, or its function failed or returned a bad value."""


def _waypoint_list(track: Track) -> list[tuple[float, float]]:
    cached = getattr(track, "_params_waypoints", None)
    if cached is None:
        cached = [(float(x), float(y)) for x, y in track.waypoints]
        object.__setattr__(track, "_params_waypoints", cached)
    return cached


def _widths(track: Track) -> np.ndarray:
    cached = getattr(track, "_params_widths", None)
    if cached is None:
        cached = track.widths
        object.__setattr__(track, "_params_widths", cached)
    return cached


def build_params(
    track: Track,
    *,
    x: float,
    y: float,
    yaw: float,
    speed: float,
    steering_angle: float,
    steps: int,
    progress: float,
    all_wheels_on_track: bool,
    is_offtrack: bool,
    is_reversed: bool,
    sim_time: float,
    is_crashed: bool = False,
) -> dict[str, Any]:
    """The DeepRacer params dict for one car.

    `yaw` is in radians (world frame), `steering_angle` in degrees (+ = left), `speed`
    the commanded speed in m/s as DeepRacer reports it. `track` is the track in the
    episode's driving direction (reversed episodes pass `track.reversed()`).
    """
    (params,) = build_params_batch(
        track,
        x=[x],
        y=[y],
        yaw=[yaw],
        speed=[speed],
        steering_angle=[steering_angle],
        steps=[steps],
        progress=[progress],
        all_wheels_on_track=[all_wheels_on_track],
        is_offtrack=[is_offtrack],
        is_reversed=is_reversed,
        sim_time=[sim_time],
        is_crashed=[is_crashed],
    )
    return params


def build_params_batch(
    track: Track,
    *,
    x: np.ndarray,
    y: np.ndarray,
    yaw: np.ndarray,
    speed: np.ndarray,
    steering_angle: np.ndarray,
    steps: np.ndarray,
    progress: np.ndarray,
    all_wheels_on_track: np.ndarray,
    is_offtrack: np.ndarray,
    is_reversed: bool,
    sim_time: np.ndarray,
    is_crashed: np.ndarray | None = None,
    projection: Projection | None = None,
) -> list[dict[str, Any]]:
    """`build_params` for M cars driving `track` in one direction, equal value for value.

    Every argument but `track` and `is_reversed` has one entry per car. `projection`, if
    given, must be `track.project` of the (x, y) points (the caller often has it already).
    One projection for all cars and list conversions replace M separate calls.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if projection is None:
        projection = track.project(np.column_stack([x, y]))
    seg = projection.segment
    widths = _widths(track)
    w0 = widths[seg % len(widths)]
    w1 = widths[(seg + 1) % len(widths)]
    track_width = w0 + projection.t * (w1 - w0)  # as Track.width_at, element by element
    closest = track.closest_waypoints_from(projection).tolist()
    crashed = [False] * len(x) if is_crashed is None else np.asarray(is_crashed, dtype=bool).tolist()
    waypoints = _waypoint_list(track)
    length = track.length
    reversed_flag = bool(is_reversed)
    sin, cos, atan2, degrees = math.sin, math.cos, math.atan2, math.degrees
    out = []
    for xi, yi, yaw_i, dist, left, width, arc, wps, on, off, crash, prog, stp, spd, steer, t_sim in zip(
        x.tolist(),
        y.tolist(),
        np.asarray(yaw, dtype=np.float64).tolist(),
        projection.distance.tolist(),
        projection.is_left.tolist(),
        track_width.tolist(),
        projection.arc_length.tolist(),
        closest,
        np.asarray(all_wheels_on_track, dtype=bool).tolist(),
        np.asarray(is_offtrack, dtype=bool).tolist(),
        crashed,
        np.asarray(progress, dtype=np.float64).tolist(),
        np.asarray(steps).astype(np.int64).tolist(),
        np.asarray(speed, dtype=np.float64).tolist(),
        np.asarray(steering_angle, dtype=np.float64).tolist(),
        np.asarray(sim_time, dtype=np.float64).tolist(),
    ):
        out.append(
            {
                "all_wheels_on_track": on,
                "x": xi,
                "y": yi,
                "heading": degrees(atan2(sin(yaw_i), cos(yaw_i))),
                "distance_from_center": dist,
                "is_left_of_center": left,
                "is_offtrack": off,
                "is_crashed": crash,
                "is_reversed": reversed_flag,
                "progress": prog,
                "steps": stp,
                "speed": spd,
                "steering_angle": steer,
                "track_width": width,
                "track_length": length,
                "waypoints": waypoints,
                "closest_waypoints": wps,
                "projection_distance": arc,
                "sim_time": t_sim,
                "closest_objects": [0, 0],
                "objects_distance": [],
                "objects_heading": [],
                "objects_left_of_center": [],
                "objects_location": [],
                "objects_speed": [],
                "objects_distance_from_center": [],
                "object_in_camera": False,
            }
        )
    return out


def describe_params(params: dict[str, Any]) -> str:
    """The params of a call, for an error message (without the long waypoint list)."""
    shown = {k: v for k, v in params.items() if k != "waypoints"}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())


def fresh_params(params: dict[str, Any]) -> dict[str, Any]:
    """A copy of `params` that a reward function may change freely: its lists are copied too
    (the waypoint list is shared by every car and call; the caller logs the original)."""
    return {key: list(value) if isinstance(value, list) else value for key, value in params.items()}


def checked_reward(where: str, value: Any, params: dict[str, Any]) -> float:
    """A reward function's return value as a float, or RewardFunctionError saying what is wrong with it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RewardFunctionError(
            f"{where}: reward_function returned {value!r} ({type(value).__name__}); "
            f"expected a finite number\n  params: {describe_params(params)}"
        )
    reward = float(value)
    if not math.isfinite(reward) or abs(reward) > REWARD_LIMIT:
        raise RewardFunctionError(
            f"{where}: reward_function returned {reward!r}; expected a finite number within "
            f"±{REWARD_LIMIT:g}\n  params: {describe_params(params)}"
        )
    return reward


class RewardFunction:
    """A user's `reward_function(params)` loaded from a `.py` file and run in this process,
    checked on every call; each call gets its own copy of the params."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else DEFAULT_REWARD
        where = str(self.path)
        try:
            self.source = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RewardFunctionError(f"{where}: no such reward file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RewardFunctionError(f"{where}: cannot read reward file ({exc})") from exc
        try:
            code = compile(self.source, where, "exec")
        except SyntaxError as exc:
            raise RewardFunctionError(
                f"{where}, line {exc.lineno}: syntax error: {exc.msg}"
                + (f"\n    {exc.text.rstrip()}" if exc.text else "")
            ) from None
        namespace: dict[str, Any] = {"__name__": "reward_module", "__file__": where}
        try:
            exec(code, namespace)
        except (Exception, SystemExit) as exc:  # sys.exit() in the file must not end the caller
            raise RewardFunctionError(
                f"{where}, line {self.user_line(exc)}: error while loading the file: {type(exc).__name__}: {exc}"
            ) from exc
        function = namespace.get("reward_function")
        if function is None:
            raise RewardFunctionError(f"{where}: defines no function named reward_function(params)")
        if not callable(function):
            raise RewardFunctionError(f"{where}: reward_function is not a function")
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # e.g. a builtin without a signature: checked when called
            signature = None
        if signature is not None:
            try:
                signature.bind({})
            except TypeError:
                raise RewardFunctionError(
                    f"{where}: reward_function must take exactly one argument (params), "
                    f"its signature is reward_function{signature}"
                ) from None
        self.function: Callable[[dict], Any] = function  # the user's own, unchecked

    def user_line(self, exc: BaseException) -> str:
        """The line of the reward file where `exc` was raised ("?" when it was not in the file)."""
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(self.path)]
        return str(frames[-1].lineno) if frames else "?"

    def call_error(self, exc: BaseException, params: dict[str, Any]) -> RewardFunctionError:
        """The error for `exc` raised by reward_function on `params`: file, line, exception, params."""
        return RewardFunctionError(
            f"{self.path}, line {self.user_line(exc)}: reward_function raised "
            f"{type(exc).__name__}: {exc}\n  params: {describe_params(params)}"
        )

    def __call__(self, params: dict[str, Any]) -> float:
        try:
            value = self.function(fresh_params(params))
        except (Exception, SystemExit) as exc:
            raise self.call_error(exc, params) from exc
        return checked_reward(str(self.path), value, params)

    def batch(self, params: list[dict[str, Any]]) -> np.ndarray:
        """The rewards of one step of several cars, in their order (float64)."""
        return np.array([self(p) for p in params], dtype=np.float64)

    def close(self) -> None:
        """Nothing to release in this process (an `IsolatedReward` stops its child)."""

    def __enter__(self) -> RewardFunction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sample_params(track: Track, count: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """Params from many real positions: along the track, across its width, both directions."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        direction = track.reversed() if (track.closed and i % 4 == 3) else track
        s = rng.uniform(0.0, direction.length)
        lateral = rng.uniform(-0.7, 0.7) * direction.width
        out.append(params_at(track, direction, s, lateral, rng))
    return out


def params_at(track: Track, direction: Track, s: float, lateral: float, rng: np.random.Generator) -> dict[str, Any]:
    """The params of a car `s` m along `direction` (`track` or `track.reversed()`) and `lateral` m
    left of its centre line, heading along it give or take 0.3 rad, with speed, steering, steps
    and sim time drawn from `rng`."""
    (centre,), (heading,) = direction.point_at(np.array([s]))
    normal = np.array([-math.sin(heading), math.cos(heading)])
    x, y = centre + lateral * normal
    # The road's real borders decide (row widths overstate it where rows are skewed);
    # the wheels are taken as 0.1 m either side of the car's centre.
    on_track, *wheels_on = direction.contains(
        centre + np.array([lateral, lateral - 0.1, lateral + 0.1])[:, None] * normal
    )
    return build_params(
        direction,
        x=float(x),
        y=float(y),
        yaw=float(heading + rng.normal(0.0, 0.3)),
        speed=float(rng.uniform(0.5, 4.0)),
        steering_angle=float(rng.uniform(-30, 30)),
        steps=int(rng.integers(1, 500)),
        progress=float(100.0 * s / direction.length),
        all_wheels_on_track=bool(all(wheels_on)),
        is_offtrack=not bool(on_track),
        is_reversed=direction is not track,
        sim_time=float(rng.uniform(0, 60)),
    )


def validate_reward(
    path: str | os.PathLike,
    track: Track,
    count: int = 200,
    function: Callable[[dict[str, Any]], float] | None = None,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run a reward file on params from many real positions (the console's Validate).

    `function`: the loaded file to call (e.g. a `reward_process.IsolatedReward` of `path`);
    None loads `path` into this process. `params`: the calls to make (default: `sample_params`)."""
    if count < 1:
        raise ValueError(f"count must be at least 1 (positions to try), got {count}")
    function = function if function is not None else RewardFunction(path)
    rewards = np.array([function(p) for p in (params if params is not None else sample_params(track, count))])
    return {
        "file": str(path),
        "track": track.name,
        "calls": int(len(rewards)),
        "min": float(rewards.min()),
        "mean": float(rewards.mean()),
        "max": float(rewards.max()),
    }
