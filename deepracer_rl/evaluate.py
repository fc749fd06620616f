"""Evaluation laps like the DeepRacer console's: lap times, completion, off-track count.

Each lap starts on the start line (waypoint 0). Without an off-track penalty an off-track
ends the lap; with one (seconds, as in DeepRacer races) the car is put back on the centre
line where it left and the penalty is added to its lap time.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .env import RaceCore
from .episode import EpisodeStatus

# A driver maps the race core (its stacked observation; the simulator for scripted
# drivers) to commands for car 0: (steering degrees, speed m/s), each shape (1,).
Driver = Callable[[RaceCore], tuple[np.ndarray, np.ndarray]]

TRAJECTORY_COLUMNS = (
    "lap",
    "step",
    "time_s",
    "x",
    "y",
    "yaw_deg",
    "steering_deg",
    "speed",
    "progress",
    "reward",
    "all_wheels_on_track",
    "status",
)


@dataclass
class LapReport:
    """Figures of an evaluation run."""

    laps: int
    completed_laps: int = 0
    lap_times_s: list[float] = field(default_factory=list)
    progress: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    off_track: int = 0

    @property
    def mean_progress(self) -> float:
        return float(np.mean(self.progress)) if self.progress else 0.0

    @property
    def best_lap_s(self) -> float | None:
        return min(self.lap_times_s) if self.lap_times_s else None

    def as_dict(self) -> dict:
        return {
            "laps": self.laps,
            "completed_laps": self.completed_laps,
            "lap_times_s": [round(t, 3) for t in self.lap_times_s],
            "mean_progress": round(self.mean_progress, 2),
            "off_track": self.off_track,
            "statuses": self.statuses,
        }

    def rank_key(self) -> tuple[float, float]:
        """Better runs sort first: more completion, then a faster best lap."""
        return (-self.mean_progress, self.best_lap_s or math.inf)


def policy_driver(model, deterministic: bool = True) -> Driver:
    """A driver from anything with SB3's `predict(obs, deterministic)`."""

    def drive(core: RaceCore) -> tuple[np.ndarray, np.ndarray]:
        action, _ = model.predict(core.stack, deterministic=deterministic)
        return core.actions.to_commands(action)

    return drive


def baseline_driver() -> Driver:
    from .baseline import PurePursuitDriver

    drivers: dict[int, PurePursuitDriver] = {}

    def drive(core: RaceCore) -> tuple[np.ndarray, np.ndarray]:
        driver = drivers.setdefault(id(core.sim), PurePursuitDriver(core.sim))
        return driver.act()

    return drive


def run_laps(
    core: RaceCore,
    driver: Driver,
    laps: int = 3,
    off_track_penalty: float | None = None,
    max_seconds: float = 120.0,
    trajectory_csv: str | os.PathLike | None = None,
) -> LapReport:
    """Drive `laps` laps from the start line with `driver` and report."""
    if core.n != 1:
        raise ValueError("evaluation drives one car")
    report = LapReport(laps=laps)
    sim = core.sim
    writer = None
    handle = None
    if trajectory_csv is not None:
        Path(trajectory_csv).parent.mkdir(parents=True, exist_ok=True)
        handle = open(trajectory_csv, "w", newline="", encoding="utf-8")
        writer = csv.writer(handle)
        writer.writerow(TRAJECTORY_COLUMNS)
    try:
        for lap in range(laps):
            (point,), (heading,) = core.track.point_at(np.array([0.0]))
            core.reset_cars(np.array([0]), pose=np.array([point[0], point[1], heading]), reverse=False)
            penalty = 0.0
            status = EpisodeStatus.IN_PROGRESS
            for _ in range(int(max_seconds * sim.control_hz)):
                steer, speed = driver(core)
                result = sim.step(steer, speed, render=False)
                params = result.judge.params[0]
                status = result.status[0]
                reward = core.reward_fn(params)
                if writer is not None:
                    writer.writerow(
                        [
                            lap,
                            params["steps"],
                            round(params["sim_time"], 4),
                            round(params["x"], 4),
                            round(params["y"], 4),
                            round(params["heading"], 3),
                            round(params["steering_angle"], 3),
                            round(params["speed"], 3),
                            round(params["progress"], 3),
                            round(reward, 5),
                            params["all_wheels_on_track"],
                            status.value,
                        ]
                    )
                if status is EpisodeStatus.OFF_TRACK:
                    report.off_track += 1
                    if off_track_penalty is not None:
                        penalty += off_track_penalty
                        _put_back_on_track(core)
                        status = EpisodeStatus.IN_PROGRESS
                if status.done:
                    break
                core.observe(np.array([0]))
            progress = float(min(100.0, sim.judge.best[0] / sim.judge.lap_length[0] * 100.0))
            report.progress.append(progress)
            report.statuses.append(status.value)
            if status is EpisodeStatus.LAP_COMPLETE:
                report.completed_laps += 1
                report.lap_times_s.append(float(sim.judge.steps[0] * sim.dt + penalty))
    finally:
        if handle is not None:
            handle.close()
    return report


def _put_back_on_track(core: RaceCore) -> None:
    """Place car 0 on the centre line where it left the track, facing along it, stopped."""
    sim = core.sim
    direction = sim.judge.direction_track(0)
    arc = direction.project(sim.state.pose[:1, :2]).arc_length
    (point,), (heading,) = direction.point_at(arc)
    sim.state.pose[0] = (point[0], point[1], heading)
    sim.state.speed[0] = 0.0
    sim.state.steer[0] = 0.0
    sim.judge.last_arc[0] = core.track.project(point[None]).arc_length[0]


def evaluate_cli(args) -> dict:
    """`deepracer-rl evaluate`: the baseline driver now; trained models via `load_driver`."""
    track = args.track or "reinvent_base"
    if args.driver == "baseline":
        core = RaceCore(track=track, n_cars=1, observation=None)
        core.sim.renderer = None  # the scripted driver reads the pose, not the camera
        driver = baseline_driver()
        label = "baseline"
    else:
        if not args.model:
            raise ValueError("give RUN_OR_MODEL (a run directory, model .zip or export dir), or --driver baseline")
        from .policy import load_for_evaluation

        core, driver, label = load_for_evaluation(args.model, args.track)
    report = run_laps(core, driver, args.laps, args.off_track_penalty, trajectory_csv=args.trajectory)
    result = report.as_dict()
    if not args.json:
        print(
            f"{label} on {core.track.name}: {report.completed_laps}/{report.laps} laps completed, "
            f"mean progress {report.mean_progress:.1f} %, off track {report.off_track}x"
        )
        for i, (status, progress) in enumerate(zip(report.statuses, report.progress)):
            print(f"  lap {i + 1}: {status:<13} progress {progress:6.1f} %")
        if report.lap_times_s:
            times = ", ".join(f"{t:.2f}" for t in report.lap_times_s)
            print(f"  lap times s: {times} (best {report.best_lap_s:.2f})")
    return result
