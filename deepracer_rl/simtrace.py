"""DeepRacer's simtrace format: the columns and rows of its `<N>-iteration.csv` logs.

One row per control step of a car, in DeepRacer's column order, so deepracer-utils and other
DeepRacer log tools read our training and evaluation logs as they read DeepRacer's. Every
episode opens with a `prepare` row: the car on its start pose (steps 0, reward 0) with the
first decision it takes there, as DeepRacer writes it. `tstamp` is the car's simulation clock
in seconds (lap time = `tstamp` of the last row − `tstamp` of the `prepare` row, which is how
deepracer-utils computes it); `pause_duration` is the penalty time added so far (s);
`wall_clock` the Unix time the row was taken.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .action_space import ActionSpace

SIMTRACE_COLUMNS = (
    "episode",
    "steps",
    "X",
    "Y",
    "yaw",
    "steer",
    "throttle",
    "action",
    "reward",
    "done",
    "all_wheels_on_track",
    "progress",
    "closest_waypoint",
    "track_len",
    "tstamp",
    "episode_status",
    "pause_duration",
    "obstacle_crash_counter",
    "wall_clock",
)

PREPARE = "prepare"  # the episode_status of an episode's first row


def simtrace_row(
    episode: int,
    params: dict[str, Any],
    action: Any,
    reward: float,
    done: bool,
    status: str,
    tstamp: float,
    pause_duration: float = 0.0,
    wall_clock: float | None = None,
) -> dict[str, Any]:
    """One row from a step's params dict (yaw and steer in degrees, throttle in m/s, tstamp in s)."""
    return {
        "episode": episode,
        "steps": params["steps"],
        "X": round(params["x"], 4),
        "Y": round(params["y"], 4),
        "yaw": round(params["heading"], 4),
        "steer": round(params["steering_angle"], 4),
        "throttle": round(params["speed"], 4),
        "action": action,
        "reward": round(float(reward), 6),
        "done": bool(done),
        "all_wheels_on_track": params["all_wheels_on_track"],
        "progress": round(params["progress"], 4),
        "closest_waypoint": params["closest_waypoints"][0],
        "track_len": round(params["track_length"], 4),
        "tstamp": round(float(tstamp), 4),
        "episode_status": status,
        "pause_duration": round(float(pause_duration), 4),
        "obstacle_crash_counter": 0,
        "wall_clock": round(time.time() if wall_clock is None else wall_clock, 3),
    }


def prepare_row(
    episode: int,
    start: dict[str, Any],
    first: dict[str, Any],
    action: Any,
    tstamp: float,
    wall_clock: float | None = None,
) -> dict[str, Any]:
    """The `prepare` row opening an episode: the car on its start pose (`start`, the params at
    steps 0) with the commands of its first step (`first`'s steer and throttle, `action`)."""
    row = simtrace_row(episode, start, action, 0.0, False, PREPARE, tstamp, 0.0, wall_clock)
    row["steer"] = round(first["steering_angle"], 4)
    row["throttle"] = round(first["speed"], 4)
    return row


def action_index(actions: ActionSpace, steering_deg: float, speed: float) -> int:
    """The index of the discrete action with exactly these commands (degrees, m/s), else -1 (as
    DeepRacer's logs write an action that has no index)."""
    if actions.kind != "discrete":
        return -1
    match = np.flatnonzero(
        (np.abs(actions.actions[:, 0] - steering_deg) < 1e-6) & (np.abs(actions.actions[:, 1] - speed) < 1e-6)
    )
    return int(match[0]) if len(match) else -1


class SimtraceWriter:
    """Writes simtrace rows to a CSV file (header once), flushing so a crash loses little."""

    def __init__(self, path: str | os.PathLike, append: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not append or not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a" if append else "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=SIMTRACE_COLUMNS)
        if new:
            self._writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow(row)

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        self._writer.writerows(rows)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SimtraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
