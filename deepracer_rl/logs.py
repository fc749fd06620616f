"""Simtrace CSV logs in DeepRacer's column layout, so deepracer-utils style analysis works."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
)


def simtrace_row(
    episode: int,
    params: dict[str, Any],
    action: Any,
    reward: float,
    done: bool,
    status: str,
    tstamp: float,
) -> dict[str, Any]:
    """One simtrace row from a step's params dict (yaw and steer in degrees, as DeepRacer)."""
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
        "tstamp": round(tstamp, 4),
        "episode_status": status,
    }


class SimtraceWriter:
    """Appends simtrace rows to a CSV file (header once), flushing so a crash loses little."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=SIMTRACE_COLUMNS)
        if new:
            self._writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow(row)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SimtraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_simtrace(path: str | os.PathLike) -> Iterator[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def rescore_run(run: str | os.PathLike, reward_file: str | os.PathLike, out: str | os.PathLike | None = None) -> dict:
    """Recompute a run's training rewards with another reward function, step by step.

    Params are rebuilt from each simtrace row (pose, action, progress, wheels, status), as
    deepracer-utils does; the result CSV has the old and the new reward of every step.
    """
    import numpy as np

    from .car import CarSpec
    from .reward import RewardFunction, build_params
    from .rundir import RunDir
    from .track import Track

    run_dir = RunDir(run).require()
    simtrace = run_dir.simtrace_csv
    if not simtrace.exists():
        raise FileNotFoundError(f"{simtrace}: no simtrace to rescore")
    track = Track.load(run_dir.load_config().track)
    control_hz = CarSpec.from_urdf().control_hz
    function = RewardFunction(reward_file)
    out_path = Path(out) if out else run_dir.path / f"rescore-{Path(reward_file).stem}.csv"
    old_totals: dict[str, float] = {}
    new_totals: dict[str, float] = {}
    rows = 0
    with open(out_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["episode", "steps", "old_reward", "new_reward"])
        for row in read_simtrace(simtrace):
            params = build_params(
                track,
                x=float(row["X"]),
                y=float(row["Y"]),
                yaw=np.radians(float(row["yaw"])),
                speed=float(row["throttle"]),
                steering_angle=float(row["steer"]),
                steps=int(row["steps"]),
                progress=float(row["progress"]),
                all_wheels_on_track=row["all_wheels_on_track"] == "True",
                is_offtrack=row["episode_status"] == "off_track",
                is_reversed=False,
                sim_time=float(row["steps"]) / control_hz,
            )
            new = function(params)
            episode = row["episode"]
            old_totals[episode] = old_totals.get(episode, 0.0) + float(row["reward"])
            new_totals[episode] = new_totals.get(episode, 0.0) + new
            writer.writerow([episode, row["steps"], row["reward"], round(new, 6)])
            rows += 1
    episodes = max(1, len(old_totals))
    return {
        "rows": rows,
        "episodes": len(old_totals),
        "old_mean": sum(old_totals.values()) / episodes,
        "new_mean": sum(new_totals.values()) / episodes,
        "out": str(out_path),
    }
