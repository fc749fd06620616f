"""DeepRacer episode rules from poses: where episodes start, progress, wheel contact, params, status.

One `EpisodeJudge` serves N cars. `RaceCore` feeds it the poses its simulator backend reports
(the in-process simulator's state, or /odom over ROS), so identical poses give identical
params, rewards and episode ends whatever simulator is behind them. `start_pose` is the one
start schedule. Poses are (x, y, yaw) in the track frame (m, m, rad).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from .reward import build_params, build_params_batch
from .track import Projection, Track


class EpisodeStatus(str, Enum):
    """Episode status strings as in DeepRacer's simtrace logs."""

    IN_PROGRESS = "in_progress"
    LAP_COMPLETE = "lap_complete"
    OFF_TRACK = "off_track"
    CRASHED = "crashed"
    REVERSED = "reversed"
    IMMOBILIZED = "immobilized"
    TIME_UP = "time_up"

    @property
    def done(self) -> bool:
        return self is not EpisodeStatus.IN_PROGRESS


@dataclass(frozen=True)
class RaceRules:
    """Thresholds of the episode rules."""

    reversed_fraction: float = 0.02  # fraction of the track driven backwards from the best point
    immobilized_seconds: float = 2.0  # window over which the car must move ...
    immobilized_distance: float = 0.05  # ... at least this far (m)
    max_seconds: float = 180.0  # episode time limit (status time_up)


@dataclass(frozen=True)
class StartRules:
    """Where episodes start: advancing round the track, optionally alternating direction."""

    advance_fraction: float = 0.05  # each new episode of a car starts this much further on
    alternate_direction: bool = False  # every other episode drives the track reversed
    spread_cars: bool = True  # cars start spread evenly round the track
    lateral_noise: float = 0.0  # m, random offset from the centre line at the start
    heading_noise: float = 0.0  # rad, random heading offset at the start


def start_pose(
    track: Track,
    rules: StartRules,
    episode: int,
    car: int = 0,
    n_cars: int = 1,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, bool]:
    """Start pose (x, y, yaw) of car `car`'s episode number `episode` (from 0) and whether it drives reversed.

    The one start schedule: `RaceCore` resets every backend's cars to these poses. `rng` draws
    the start noise (if the rules have any).
    """
    reverse = bool(rules.alternate_direction and track.closed and episode % 2 == 1)
    spread = car / n_cars if rules.spread_cars and track.closed else 0.0
    fraction = (spread + episode * rules.advance_fraction) % 1.0
    if not track.closed:  # open track: start near the beginning of the route
        fraction = 0.0
    direction = track.reversed() if reverse else track
    (point,), (heading,) = direction.point_at(np.array([fraction * direction.length]))
    if (rules.lateral_noise or rules.heading_noise) and rng is None:
        rng = np.random.default_rng()
    lateral = rng.uniform(-1.0, 1.0) * rules.lateral_noise if rules.lateral_noise else 0.0
    heading += rng.uniform(-1.0, 1.0) * rules.heading_noise if rules.heading_noise else 0.0
    normal = np.array([-math.sin(heading), math.cos(heading)])
    x, y = point + lateral * normal
    return np.array([x, y, heading]), reverse


def start_line_pose(track: Track) -> np.ndarray:
    """x, y, yaw of the start line: waypoint 0 of the centre line, facing along the track.

    Evaluation laps start here, and Gazebo spawns the car here.
    """
    (point,), (heading,) = track.point_at(np.array([0.0]))
    return np.array([point[0], point[1], heading])


def evaluation_start_poses(track: Track, laps: int, seed: int | None = None) -> np.ndarray:
    """(laps, 3) x, y, yaw of evaluation laps' starts, spread evenly round a closed track.

    Lap k starts at the fraction (u + k / laps) of the centre line, facing along it: u = 0 without
    a seed (the first lap on the start line, as the console's evaluation), else drawn from `seed`,
    so each seed samples other starts reproducibly. An open track's laps all start on its start line.
    """
    if laps < 1:
        raise ValueError(f"laps must be at least 1, got {laps}")
    if not track.closed:
        return np.repeat(start_line_pose(track)[None], laps, axis=0)
    offset = 0.0 if seed is None else float(np.random.default_rng(seed).uniform())
    fractions = (offset + np.arange(laps) / laps) % 1.0
    points, headings = track.point_at(fractions * track.length)
    return np.column_stack([points, headings])


@dataclass
class JudgeResult:
    """What the judge says of one step for every car (arrays of shape (N,), params a list)."""

    progress: np.ndarray
    wheels_on_track: np.ndarray  # (N, 4)
    status: list[EpisodeStatus]
    params: list[dict[str, Any]]


class EpisodeJudge:
    """Tracks each car's episode: its track, start point, direction, progress and status.

    `track` is one track for every car, or several: car i is on `tracks[car_track[i]]`, chosen
    at each `start` (multi-track training draws a track per episode).
    """

    def __init__(
        self,
        track: Track | Sequence[Track],
        wheel_points: np.ndarray,
        n_cars: int,
        control_hz: float,
        rules: RaceRules | None = None,
    ):
        self.tracks: tuple[Track, ...] = (track,) if isinstance(track, Track) else tuple(track)
        if not self.tracks:
            raise ValueError("an EpisodeJudge needs at least one track")
        self.track = self.tracks[0]
        self.wheel_points = np.asarray(wheel_points, dtype=np.float64).reshape(4, 2)
        self.n = n_cars
        self.dt = 1.0 / control_hz
        self.rules = rules or RaceRules()
        self.window = max(1, int(round(self.rules.immobilized_seconds * control_hz)))
        self.car_track = np.zeros(n_cars, dtype=np.intp)  # index into `tracks` of each car's track
        self.reverse = np.zeros(n_cars, dtype=bool)
        self.steps = np.zeros(n_cars, dtype=np.int64)
        self.driven = np.zeros(n_cars)  # metres along the driving direction since the start
        self.best = np.zeros(n_cars)
        self.last_arc = np.zeros(n_cars)
        self.history = np.zeros((n_cars, self.window, 2))
        self.loop_length = np.full(n_cars, self.track.length)  # m, centre line of each car's track
        self.closed = np.full(n_cars, self.track.closed)
        self.lap_length = np.full(n_cars, self.track.length)
        self.start_poses = np.zeros((n_cars, 3))

    def track_of(self, i: int) -> Track:
        """The track car i is on (as its file runs)."""
        return self.tracks[int(self.car_track[i])]

    def direction_track(self, i: int) -> Track:
        """Car i's track the way it drives it."""
        track = self.track_of(i)
        return track.reversed() if self.reverse[i] else track

    def start(self, i: int, pose: np.ndarray, reverse: bool = False, track_index: int | None = None) -> None:
        """Begin car i's episode at `pose` (x, y, yaw), driving the track reversed or not, on
        `tracks[track_index]` (None: the track it is on)."""
        if track_index is not None:
            if not 0 <= track_index < len(self.tracks):
                raise IndexError(f"track index {track_index} outside 0..{len(self.tracks) - 1}")
            self.car_track[i] = track_index
        track = self.track_of(i)
        self.loop_length[i] = track.length
        self.closed[i] = track.closed
        self.reverse[i] = reverse
        self.start_poses[i] = np.asarray(pose, dtype=np.float64)[:3]
        self.steps[i] = 0
        self.driven[i] = 0.0
        self.best[i] = 0.0
        arc = float(track.project(np.asarray(pose[:2])[None]).arc_length[0])
        self.last_arc[i] = arc
        self.history[i] = np.asarray(pose[:2])
        if track.closed:
            self.lap_length[i] = track.length
        else:  # an open track: the lap ends at the far end of the route
            remaining = arc if reverse else track.length - arc
            self.lap_length[i] = max(remaining, 1e-6)

    def start_params(self, i: int) -> dict[str, Any]:
        """The params of car i on its episode's start pose: steps 0, progress 0, standing still."""
        x, y, yaw = self.start_poses[i]
        wheels = self.track_of(i).contains(self.wheel_positions(self.start_poses[i : i + 1])[0])
        return build_params(
            self.direction_track(i),
            x=float(x),
            y=float(y),
            yaw=float(yaw),
            speed=0.0,
            steering_angle=0.0,
            steps=0,
            progress=0.0,
            all_wheels_on_track=bool(wheels.all()),
            is_offtrack=not bool(wheels.any()),
            is_reversed=bool(self.reverse[i]),
            sim_time=0.0,
        )

    def wheel_positions(self, poses: np.ndarray) -> np.ndarray:
        """(N, 4, 2) world positions of the tyre contact points."""
        c, s = np.cos(poses[:, 2]), np.sin(poses[:, 2])
        wx, wy = self.wheel_points[:, 0], self.wheel_points[:, 1]
        x = poses[:, None, 0] + c[:, None] * wx - s[:, None] * wy
        y = poses[:, None, 1] + s[:, None] * wx + c[:, None] * wy
        return np.stack([x, y], axis=-1)

    def update(
        self,
        poses: np.ndarray,
        steering_deg: np.ndarray,
        speed_cmd: np.ndarray,
        active: np.ndarray | None = None,
        crashed: np.ndarray | None = None,
    ) -> JudgeResult:
        """Judge one control step of every car (or of the `active` ones) at `poses` (N, 3).

        `crashed` (N,) bool: the cars that touch an object (races with objects): status crashed
        after lap complete and before the others (DeepRacer's order), param `is_crashed`."""
        poses = np.asarray(poses, dtype=np.float64).reshape(self.n, 3)
        steering_deg = np.asarray(steering_deg, dtype=np.float64).reshape(self.n)
        speed_cmd = np.asarray(speed_cmd, dtype=np.float64).reshape(self.n)
        active = np.ones(self.n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        groups = [(k, np.flatnonzero(self.car_track == k)) for k in np.unique(self.car_track).tolist()]
        arc = np.zeros(self.n)
        wheels = np.zeros((self.n, 4), dtype=bool)
        projections: list[Projection] = []
        for k, idx in groups:
            track = self.tracks[k]
            proj = track.project(poses[idx, :2])
            projections.append(proj)
            arc[idx] = proj.arc_length
            wheels[idx] = track.contains(self.wheel_positions(poses[idx]).reshape(-1, 2)).reshape(len(idx), 4)
        delta = arc - self.last_arc
        length = self.loop_length
        delta = np.where(self.closed, (delta + 0.5 * length) % length - 0.5 * length, delta)
        delta = np.where(self.reverse, -delta, delta)
        self.driven = np.where(active, self.driven + delta, self.driven)
        self.best = np.maximum(self.best, self.driven)
        self.last_arc = np.where(active, arc, self.last_arc)
        self.steps = np.where(active, self.steps + 1, self.steps)
        slot = self.steps % self.window
        rows = np.flatnonzero(active)
        moved = np.linalg.norm(poses[rows, :2] - self.history[rows, slot[rows]], axis=1)
        self.history[rows, slot[rows]] = poses[rows, :2]

        progress = np.clip(100.0 * self.driven / self.lap_length, 0.0, 100.0)
        off_track = ~wheels.any(axis=1)
        moved_all = np.full(self.n, np.inf)
        moved_all[rows] = moved
        rules = self.rules
        # The first rule that holds decides, in this order (applied here from the last one up).
        codes = np.zeros(self.n, dtype=np.int8)
        crashed = np.zeros(self.n, dtype=bool) if crashed is None else np.asarray(crashed, dtype=bool).reshape(self.n)
        for code, holds in (
            (6, self.steps * self.dt >= rules.max_seconds),
            (5, (self.steps >= self.window) & (moved_all < rules.immobilized_distance)),
            (4, self.best - self.driven > rules.reversed_fraction * self.loop_length),
            (3, off_track),
            (2, crashed),
            (1, self.driven >= self.lap_length),
            (0, ~active),
        ):
            codes[holds] = code
        statuses = [_STATUS_BY_CODE[c] for c in codes.tolist()]
        params: list[dict[str, Any]] = [{} for _ in range(self.n)]
        for (k, idx), proj in zip(groups, projections):
            for reverse in (False, True):
                selected = active[idx] & (self.reverse[idx] == reverse)
                chosen = idx[selected]
                if len(chosen) == 0:
                    continue
                if reverse:
                    direction, projection = self.tracks[k].reversed(), None
                else:
                    direction, projection = self.tracks[k], _take(proj, np.flatnonzero(selected))
                batch = build_params_batch(
                    direction,
                    x=poses[chosen, 0],
                    y=poses[chosen, 1],
                    yaw=poses[chosen, 2],
                    speed=speed_cmd[chosen],
                    steering_angle=steering_deg[chosen],
                    steps=self.steps[chosen],
                    progress=progress[chosen],
                    all_wheels_on_track=wheels[chosen].all(axis=1),
                    is_offtrack=off_track[chosen],
                    is_reversed=reverse,
                    is_crashed=crashed[chosen],
                    sim_time=self.steps[chosen] * self.dt,
                    projection=projection,
                )
                for i, p in zip(chosen.tolist(), batch):
                    params[i] = p
        return JudgeResult(progress=progress, wheels_on_track=wheels, status=statuses, params=params)


_STATUS_BY_CODE = (
    EpisodeStatus.IN_PROGRESS,
    EpisodeStatus.LAP_COMPLETE,
    EpisodeStatus.CRASHED,
    EpisodeStatus.OFF_TRACK,
    EpisodeStatus.REVERSED,
    EpisodeStatus.IMMOBILIZED,
    EpisodeStatus.TIME_UP,
)


def _take(proj: Projection, rows: np.ndarray) -> Projection:
    """The projection of a subset of the points."""
    return Projection(
        segment=proj.segment[rows],
        t=proj.t[rows],
        distance=proj.distance[rows],
        is_left=proj.is_left[rows],
        arc_length=proj.arc_length[rows],
    )
