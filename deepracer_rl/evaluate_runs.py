"""`deepracer-rl evaluate`: laps of a run, a model .zip, an export or the baseline, over any backend.

What is driven is chosen here (a run's best model, an SB3 .zip of a run, an exported ONNX
policy, or the scripted pure-pursuit baseline); the laps themselves are `evaluate.run_laps`
over a `RaceCore` of the chosen backend (the in-process simulator, or a simulator behind
the ROS topic contract: `deepracer-rl sim` or Gazebo). Laps of a run's model are also written
into the run as DeepRacer's evaluation simtrace (`RunDir.new_evaluation_simtrace`), where
deepracer-utils' `DeepRacerLog(RUN).load_evaluation_trace()` finds them. `video` writes the laps
as an MP4 (`video.Dashboard`: camera, top-down map, speed, steering, reward, progress).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .algorithms import load_model
from .evaluate import Driver, LapReport, LapStep, StepObserver, baseline_driver, policy_driver, run_laps
from .inference import load_policy
from .policy import ONNX_NAME, OPENVINO_XML
from .race import RaceCore
from .rundir import RunDir, find_run
from .train import race_kwargs


@dataclass
class Evaluation:
    """What was driven where, and its laps."""

    label: str
    track: str
    backend: str
    report: LapReport
    simtrace: Path | None = None  # the evaluation simtrace written into the run
    video: Path | None = None  # the MP4 written

    def as_dict(self) -> dict[str, Any]:
        extra = {"simtrace": str(self.simtrace)} if self.simtrace is not None else {}
        if self.video is not None:
            extra["video"] = str(self.video)
        return {"driver": self.label, "track": self.track, "backend": self.backend, **self.report.as_dict(), **extra}


def _race_and_driver(
    target: str | os.PathLike | None, driver: str, track: str | None
) -> tuple[dict, Driver, str, RunDir | None]:
    """RaceCore.create arguments, the driver, its label and the run it comes from (if any)."""
    if driver == "baseline":
        return dict(track=track or "reinvent_base", sensors=False), baseline_driver(), "baseline", None
    if driver != "policy":
        raise ValueError(f"unknown driver {driver!r}; choose policy or baseline")
    if not target:
        raise ValueError("give RUN_OR_MODEL (a run directory, model .zip or export dir), or --driver baseline")
    path = Path(target)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run directory, model .zip or export dir")
    if (path / ONNX_NAME).exists() or (path / OPENVINO_XML).exists() or path.suffix in (".onnx", ".xml"):
        policy = load_policy(path)  # a model.xml runs on OpenVINO
        kwargs = dict(track=track or "reinvent_base", metadata=policy.actions, observation=policy.observation)
        return kwargs, policy_driver(policy), f"{policy.root} ({policy.runtime})", None
    run, model_path = find_run(path)
    config = run.load_config()
    kwargs = race_kwargs(config, run)
    kwargs["track"] = track or config.track
    return kwargs, policy_driver(load_model(model_path, algo=config.algo)), str(model_path), run


def evaluate_target(
    target: str | os.PathLike | None,
    track: str | None = None,
    laps: int = 3,
    driver: str = "policy",
    backend: str = "inprocess",
    off_track_penalty: float | None = None,
    trajectory_csv: str | os.PathLike | None = None,
    simtrace: bool = True,
    video: str | os.PathLike | None = None,
    observer: Callable[[RaceCore], StepObserver] | None = None,
    **backend_options: Any,
) -> Evaluation:
    """Drive `laps` evaluation laps from the start line and report (see the module docstring);
    `simtrace`: write the laps of a run's model into the run as an evaluation simtrace; `video`: an
    MP4 of the laps; `observer`: made with the race (its track, car, actions), then called with every
    `LapStep` (e.g. `bags.BagRecorder.observer`)."""
    if laps < 1:
        raise ValueError(f"--laps must be at least 1, got {laps}")
    writer = None
    if video is not None:
        from .video import Mp4Writer

        writer = Mp4Writer(video)  # VideoError (a ValueError) names a bad path before driving
    kwargs, drive, label, run = _race_and_driver(target, driver, track)
    core = RaceCore.create(n_cars=1, backend=backend, **kwargs, **backend_options)
    simtrace_csv = run.new_evaluation_simtrace() if simtrace and run is not None else None
    observers = [observer(core)] if observer is not None else []
    if writer is not None:
        observers.append(video_observer(core, writer))
    try:
        report = run_laps(
            core,
            drive,
            laps,
            off_track_penalty,
            trajectory_csv=trajectory_csv,
            simtrace_csv=simtrace_csv,
            on_step=(lambda step: [o(step) for o in observers]) if observers else None,
        )
    finally:
        core.close()
        if writer is not None:
            writer.close()
    return Evaluation(label, core.track.name, backend, report, simtrace_csv, Path(video) if video else None)


def video_observer(core: RaceCore, writer: Any) -> StepObserver:
    """An on_step observer drawing each step as a `video.Dashboard` frame into `writer` (an Mp4Writer)."""
    from .video import Dashboard

    dashboard = Dashboard(core.track, math.degrees(core.car.max_steer), core.actions.max_speed)

    def observe(step: LapStep) -> None:
        if step.params["steps"] == 1:
            dashboard.new_lap()
        frame = dashboard.frame(
            step.pose,
            step.steering_deg,
            step.speed,
            step.reward,
            float(step.params["progress"]),
            step.lap + 1,
            step.sim_time,
            step.status,
        )
        writer.write(frame)

    return observe


def format_evaluation(result: Evaluation) -> str:
    """The human-readable report of `deepracer-rl evaluate`."""
    report = result.report
    lines = [
        f"{result.label} on {result.track} ({result.backend}): {report.completed_laps}/{report.laps} laps completed, "
        f"mean progress {report.mean_progress:.1f} %, off track {report.off_track}x"
    ]
    for i, (status, progress) in enumerate(zip(report.statuses, report.progress)):
        lines.append(f"  lap {i + 1}: {status:<13} progress {progress:6.1f} %")
    if report.lap_times_s:
        times = ", ".join(f"{t:.2f}" for t in report.lap_times_s)
        lines.append(f"  lap times s: {times} (best {report.best_lap_s:.2f})")
    if result.simtrace is not None:
        lines.append(f"  evaluation simtrace: {result.simtrace}")
    return "\n".join(lines)
