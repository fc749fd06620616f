"""Evaluation laps like the DeepRacer console's: lap times, completion, off-track count.

Each lap starts on the start line (waypoint 0), or at given start poses (several starts round the
track make N laps N samples of a deterministic policy). Without an off-track penalty an off-track
ends the lap; with one (seconds, as in DeepRacer races) the car is put back on the centre
line where it left and the penalty is added to its lap time. Laps are driven through
`RaceCore`, so they work over any backend (in-process, or a simulator behind ROS topics).
Besides the report, the laps can be written as a per-step trajectory CSV and as DeepRacer's
evaluation simtrace (`simtrace.py`: one episode per lap, each opening with a `prepare` row), and
each step handed to `on_step` observers as a `LapStep` (the video and the bag recorder).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .episode import EpisodeStatus, start_line_pose
from .race import RaceCore
from .simtrace import SimtraceWriter, action_index, prepare_row, simtrace_row

# A driver maps the race core (its stacked observations; the poses for scripted
# drivers) to commands for its cars: (steering degrees, speed m/s), each shape (1,).
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


@dataclass(frozen=True)
class LapStep:
    """One step of an evaluation lap, for observers: the frame the driver decided on and what followed."""

    lap: int  # 0-based
    pose: np.ndarray  # (3,) x, y (m), yaw (rad) in the track frame when the driver decided (before the step)
    sim_time: float  # s of sim time at that moment
    speed_before: float  # m/s the car was doing then
    steering_deg: float  # the command: degrees, + = left
    speed: float  # the command: m/s
    reward: float  # of the step
    total_reward: float  # of the lap so far
    params: dict[str, Any]  # the reward params after the step (progress 0..100, steps, ...)
    status: str  # EpisodeStatus value after the step


StepObserver = Callable[[LapStep], None]


@dataclass
class LapReport:
    """Figures of an evaluation run."""

    laps: int
    completed_laps: int = 0
    lap_times_s: list[float] = field(default_factory=list)
    progress: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    off_track: int = 0
    collisions: int = 0  # steps a car touched an obstacle or bot car (races with objects)
    penalty_s: float = 0.0  # s of penalties added to the laps (off track, collisions)
    seconds: list[float] = field(default_factory=list)  # per lap: sim s driven, penalties included
    rewards: list[float] = field(default_factory=list)  # per lap: the summed reward
    score_lap_s: float | None = None  # the lap time model selection ranks by, where not the best lap (validation)

    @property
    def mean_progress(self) -> float:
        return float(np.mean(self.progress)) if self.progress else 0.0

    @property
    def best_lap_s(self) -> float | None:
        return min(self.lap_times_s) if self.lap_times_s else None

    @property
    def selection_key(self) -> list:
        """[mean progress %, lap s or None] for `rundir.is_better`: the best lap, or `score_lap_s`
        (several tracks: the mean lap, comparable only between reports of the same laps)."""
        return [self.mean_progress, self.score_lap_s if self.score_lap_s is not None else self.best_lap_s]

    def extend(self, other: LapReport) -> None:
        """Add the laps of `other` (another track or camera) to this report."""
        self.laps += other.laps
        self.completed_laps += other.completed_laps
        self.off_track += other.off_track
        self.collisions += other.collisions
        self.penalty_s += other.penalty_s
        for name in ("lap_times_s", "progress", "statuses", "seconds", "rewards"):
            getattr(self, name).extend(getattr(other, name))

    def as_dict(self) -> dict:
        return {
            "laps": self.laps,
            "completed_laps": self.completed_laps,
            "lap_times_s": [round(t, 3) for t in self.lap_times_s],
            "mean_progress": round(self.mean_progress, 2),
            "off_track": self.off_track,
            "collisions": self.collisions,
            "penalty_s": round(self.penalty_s, 3),
            "statuses": self.statuses,
        }


def policy_driver(model: Any, deterministic: bool = True) -> Driver:
    """A driver from anything with SB3's `predict(obs, deterministic)`."""

    def drive(core: RaceCore) -> tuple[np.ndarray, np.ndarray]:
        action, _ = model.predict(core.stack, deterministic=deterministic)
        return core.actions.to_commands(action)

    return drive


def baseline_driver(avoid_objects: bool = True) -> Driver:
    """The scripted driver (`baseline.PurePursuitDriver`): the centre line, round any objects."""
    from .baseline import PurePursuitDriver

    drivers: dict[int, PurePursuitDriver] = {}

    def drive(core: RaceCore) -> tuple[np.ndarray, np.ndarray]:
        driver = drivers.get(id(core))
        if driver is None or driver.core is not core:
            driver = drivers[id(core)] = PurePursuitDriver(core, avoid_objects=avoid_objects)
        return driver.act()

    return drive


def run_laps(
    core: RaceCore,
    driver: Driver,
    laps: int = 3,
    off_track_penalty: float | None = None,
    max_seconds: float = 120.0,
    trajectory_csv: str | os.PathLike | None = None,
    simtrace_csv: str | os.PathLike | None = None,
    on_step: StepObserver | None = None,
    starts: np.ndarray | None = None,
    collision_penalty: float | None = None,
) -> LapReport:
    """Drive `laps` laps with `driver` and report: from the start line, or lap k from `starts[k]`
    (x, y, yaw; `episode.evaluation_start_poses` spreads them round the track); optionally write the
    trajectory CSV and DeepRacer's evaluation simtrace (episode = lap, tstamp = sim clock in s
    plus the penalties so far, so its lap times are the report's), and call `on_step` every step.

    In a race with objects the laps are DeepRacer's evaluation: a car that touches an object gets
    `collision_penalty` s (None: the world config's COLLISION_PENALTY, 5 s in evaluation) and goes
    back RESET_BEHIND_DIST before it in the other lane (`RaceCore.crash_reset`); the lap goes on."""
    if core.n != 1:
        raise ValueError("evaluation drives one car")
    was_evaluation, core.evaluation = core.evaluation, True
    if collision_penalty is None:
        collision_penalty = core.penalties()[1]
    if starts is not None and len(starts) != laps:
        raise ValueError(f"{len(starts)} start poses for {laps} laps")
    report = LapReport(laps=laps)
    judge = core.judge
    writer = None
    handle = None
    simtrace = SimtraceWriter(simtrace_csv, append=False) if simtrace_csv is not None else None
    if trajectory_csv is not None:
        Path(trajectory_csv).parent.mkdir(parents=True, exist_ok=True)
        handle = open(trajectory_csv, "w", newline="", encoding="utf-8")
        writer = csv.writer(handle)
        writer.writerow(TRAJECTORY_COLUMNS)
    try:
        for lap in range(laps):
            pose0 = start_line_pose(core.track) if starts is None else np.asarray(starts[lap], dtype=np.float64)
            core.reset_cars(np.array([0]), pose=pose0, reverse=False)
            start = judge.start_params(0)
            started = core.backend.states().sim_time
            penalty = 0.0
            total_reward = 0.0
            status = EpisodeStatus.IN_PROGRESS
            for _ in range(int(max_seconds * core.control_hz)):
                if on_step is not None:  # copied now: a backend may update its state arrays in place
                    before = core.backend.states()
                    pose, sim_time, speed_before = (
                        before.poses[0].copy(),
                        float(before.sim_time),
                        float(before.speeds[0]),
                    )
                steer, speed = driver(core)
                rewards, statuses, all_params = core.drive(steer, speed)
                params, status, reward = all_params[0], statuses[0], float(rewards[0])
                total_reward += reward
                if on_step is not None:
                    on_step(
                        LapStep(
                            lap,
                            pose,
                            sim_time,
                            speed_before,
                            float(steer[0]),
                            float(speed[0]),
                            reward,
                            total_reward,
                            params,
                            status.value,
                        )
                    )
                # Sim time, not steps x period: a real-time simulator over ROS may tick between steps.
                tstamp = core.backend.states().sim_time + penalty
                logged = status
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
                        report.penalty_s += off_track_penalty
                        core.put_back_on_track(0)
                        status = EpisodeStatus.IN_PROGRESS
                elif status is EpisodeStatus.CRASHED:
                    report.collisions += 1
                    penalty += collision_penalty
                    report.penalty_s += collision_penalty
                    core.crash_reset(0)
                    status = EpisodeStatus.IN_PROGRESS
                if simtrace is not None:
                    action = action_index(core.actions, float(steer[0]), float(speed[0]))
                    if params["steps"] == 1:
                        simtrace.write(prepare_row(lap, start, params, action, started))
                    row = simtrace_row(lap, params, action, reward, status.done, logged.value, tstamp, penalty)
                    simtrace.write(row)
                if status.done:
                    break
                core.observe(np.array([0]))
            progress = float(min(100.0, judge.best[0] / judge.lap_length[0] * 100.0))
            seconds = float(core.backend.states().sim_time - started + penalty)
            report.progress.append(progress)
            report.statuses.append(status.value)
            report.seconds.append(seconds)
            report.rewards.append(total_reward)
            if status is EpisodeStatus.LAP_COMPLETE:
                report.completed_laps += 1
                report.lap_times_s.append(seconds)
    finally:
        core.evaluation = was_evaluation
        if handle is not None:
            handle.close()
        if simtrace is not None:
            simtrace.close()
    return report
