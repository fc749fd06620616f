"""`deepracer-rl evaluate`: laps of a run, a model .zip, an export or the baseline, over any backend.

A measurement: several tracks (shipped names or .npy files), N laps per track from N start poses
spread round it (seeded), the camera as the URDF has it unless perturbed (`CameraPerturbation`)
or randomised on request. The model and the reward function are loaded once for all tracks.

What is driven is chosen here (a run's best model, an SB3 .zip of a run, an exported ONNX
policy, or the scripted pure-pursuit baseline); the laps themselves are `evaluate.run_laps`
over a `RaceCore` of the chosen backend (the in-process simulator, or a simulator behind
the ROS topic contract: `deepracer-rl sim` or Gazebo). Laps of a run's model are also written
into the run as DeepRacer's evaluation simtrace (`RunDir.new_evaluation_simtrace`), where
deepracer-utils' `DeepRacerLog(RUN).load_evaluation_trace()` finds them. `video` writes the laps
as an MP4 (`video.Dashboard`: camera, top-down map, speed, steering, reward, progress).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .algorithms import load_model
from .camera import CameraPerturbation
from .episode import evaluation_start_poses
from .evaluate import Driver, LapReport, LapStep, StepObserver, baseline_driver, policy_driver, run_laps
from .inference import load_policy, resolve_model, shipped_models
from .policy import ONNX_NAME, OPENVINO_XML
from .race import RaceCore
from .reward_process import make_reward
from .run_tracks import validation_tracks
from .rundir import EVALUATION_RESULT, EVALUATION_VIDEO, RunDir, find_run, write_atomic
from .track import Track
from .train import race_kwargs


def merge_reports(reports: Sequence[LapReport]) -> LapReport:
    """Several reports' laps as one report, in order."""
    merged = LapReport(laps=sum(r.laps for r in reports))
    for part in reports:
        merged.completed_laps += part.completed_laps
        merged.off_track += part.off_track
        merged.collisions += part.collisions
        merged.penalty_s += part.penalty_s
        for name in ("lap_times_s", "progress", "statuses", "seconds", "rewards"):
            getattr(merged, name).extend(getattr(part, name))
    return merged


@dataclass
class TrackResult:
    """The laps on one track."""

    track: str
    report: LapReport

    def as_dict(self) -> dict[str, Any]:
        report = self.report
        return {
            "track": self.track,
            "completed_laps": report.completed_laps,
            "attempted_laps": report.laps,
            "lap_times_s": [round(t, 3) for t in report.lap_times_s],
            "off_track": report.off_track,
            "collisions": report.collisions,
            "penalty_s": round(report.penalty_s, 3),
            "mean_progress": round(report.mean_progress, 2),
            "statuses": report.statuses,
        }


@dataclass
class Evaluation:
    """What was driven where, under which camera, and its laps (one `TrackResult` per track)."""

    label: str
    backend: str
    results: list[TrackResult]
    simtrace: Path | None = None  # the evaluation simtrace written into the run (one track only)
    video: Path | None = None  # the MP4 written
    seed: int | None = None
    perturbation: CameraPerturbation = field(default_factory=CameraPerturbation)
    randomize: bool = False

    @property
    def track(self) -> str:
        """The (first) track's name."""
        return self.results[0].track

    @property
    def report(self) -> LapReport:
        """The laps of every track as one report (the one track's report when there is one)."""
        if len(self.results) == 1:
            return self.results[0].report
        return merge_reports([r.report for r in self.results])

    def as_dict(self) -> dict[str, Any]:
        """One JSON object: the summed laps (`completed_laps`, `attempted_laps`), the settings, and
        `tracks`, a list of {track, completed_laps, attempted_laps, lap_times_s, off_track, ...}.
        The flat fields of a one-track evaluation (`track`, `laps`, `lap_times_s`, ...) stay."""
        report = self.report
        out: dict[str, Any] = {"driver": self.label}
        if len(self.results) == 1:
            out["track"] = self.track
        out.update(
            backend=self.backend,
            completed_laps=report.completed_laps,
            attempted_laps=report.laps,
            laps=report.laps,
            lap_times_s=[round(t, 3) for t in report.lap_times_s],
            mean_progress=round(report.mean_progress, 2),
            off_track=report.off_track,
            collisions=report.collisions,
            penalty_s=round(report.penalty_s, 3),
            statuses=report.statuses,
            seed=self.seed,
            randomize=self.randomize,
            perturbation=self.perturbation.changes(),
            tracks=[result.as_dict() for result in self.results],
        )
        if self.simtrace is not None:
            out["simtrace"] = str(self.simtrace)
        if self.video is not None:
            out["video"] = str(self.video)
        return out


@dataclass
class Subject:
    """What is evaluated, loaded once: RaceCore.create arguments (with the default track), the
    driver, its label and the run it comes from (if any)."""

    race: dict[str, Any]
    drive: Driver
    label: str
    run: RunDir | None
    model: Any = None  # the policy (SB3's `predict`), None for the scripted driver


def load_subject(target: str | os.PathLike | None, driver: str = "policy") -> Subject:
    """The policy of a run directory, a model .zip in a run or an export dir, or the baseline driver."""
    return Subject(*_race_and_driver(target, driver))


def _race_and_driver(target: str | os.PathLike | None, driver: str) -> tuple[dict, Driver, str, RunDir | None, Any]:
    if driver == "baseline":
        return dict(track="reinvent_base", sensors=False), baseline_driver(), "baseline", None, None
    if driver != "policy":
        raise ValueError(f"unknown driver {driver!r}; choose policy or baseline")
    if not target:
        raise ValueError("give RUN_OR_MODEL (a run directory, model .zip or export dir), or --driver baseline")
    path = resolve_model(target)
    if not path.exists():
        shipped = ", ".join(shipped_models()) or "none"
        raise FileNotFoundError(f"{path}: no such run directory, model .zip, export dir or shipped model ({shipped})")
    if (path / ONNX_NAME).exists() or (path / OPENVINO_XML).exists() or path.suffix in (".onnx", ".xml"):
        policy = load_policy(path)  # a model.xml runs on OpenVINO
        kwargs = dict(track="reinvent_base", metadata=policy.actions, observation=policy.observation)
        return kwargs, policy_driver(policy), f"{policy.root} ({policy.runtime})", None, policy
    run, model_path = find_run(path)
    config = run.load_config()
    kwargs = race_kwargs(config, run)
    if config.tracks:  # a multi-track run is measured on its validation tracks unless --track says otherwise
        kwargs["track"] = validation_tracks(config, run)
    model = load_model(model_path, algo=config.algo)
    return kwargs, policy_driver(model), str(model_path), run, model


def evaluate_target(
    target: str | os.PathLike | Subject | None,
    track: str | os.PathLike | Track | Sequence[str | os.PathLike | Track] | None = None,
    laps: int = 3,
    driver: str = "policy",
    backend: str = "inprocess",
    off_track_penalty: float | None = None,
    trajectory_csv: str | os.PathLike | None = None,
    simtrace: bool = True,
    video: str | os.PathLike | None = None,
    observer: Callable[[RaceCore], StepObserver] | None = None,
    seed: int | None = None,
    perturbation: CameraPerturbation | None = None,
    randomize: bool = False,
    workers: int | None = None,
    ray_address: str | None = None,
    world_config: Any = None,
    video_in_run: bool = False,
    **backend_options: Any,
) -> Evaluation:
    """Drive `laps` evaluation laps of `target` (a path, or a `Subject` loaded once for many calls)
    on each track (names, .npy paths or Tracks; default: the run's track, else reinvent_base) and
    report (see the module docstring). The laps start at `laps` poses spread round the track
    (`episode.evaluation_start_poses`: the first on the start line without a `seed`). The camera is
    the URDF's unless `perturbation` (fixed changes) or `randomize` (the training randomisation,
    seeded by `seed`) is given. `simtrace`: write the laps of a run's model into the run as an
    evaluation simtrace (one track); `video`: an MP4 of the laps (one track); `observer`: made with
    each race (its track, car, actions), then called with every `LapStep`. `workers`: drive the
    laps as Ray tasks, one per (track, start), at most `workers` at once (`lap_tasks`), on the Ray
    at `ray_address` or a local one. `world_config`: obstacles and bot cars (`RaceObjects` or DeepRacer's
    world-config keys) instead of the run's; collisions cost COLLISION_PENALTY s (`run_laps`).
    Laps written into a run (its evaluation simtrace) also leave their result there
    (`rundir.EVALUATION_RESULT`); `video_in_run`: the MP4 goes there too (`rundir.EVALUATION_VIDEO`)."""
    if laps < 1:
        raise ValueError(f"--laps must be at least 1, got {laps}")
    if workers is not None:
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        if video is not None or trajectory_csv is not None or observer is not None or backend != "inprocess":
            raise ValueError(
                "--workers drives laps in-process on Ray workers: no --video, --trajectory or --backend ros"
            )
    elif ray_address is not None:
        raise ValueError("--ray-address names the Ray cluster of --workers N: give --workers too")
    tracks = [track] if track is None or isinstance(track, (str, os.PathLike, Track)) else list(track)
    if not tracks:
        raise ValueError("name at least one --track")
    if len(tracks) > 1 and (video is not None or trajectory_csv is not None):
        raise ValueError("--video and --trajectory record the laps of one --track; name one track")
    perturbation = perturbation or CameraPerturbation()
    if perturbation.enabled or randomize:
        if backend != "inprocess":
            raise ValueError("--perturb and --randomize change the in-process simulator's camera; not --backend ros")
        backend_options["perturbation"] = perturbation
        if randomize:
            from .camera import STANDARD_RANDOMIZATION

            backend_options["randomization"] = STANDARD_RANDOMIZATION
    if world_config is not None:  # checked before anything is loaded; passed on as the race's objects
        from .race import race_objects

        backend_options["objects"] = race_objects(world_config)
    subject = target if isinstance(target, Subject) else load_subject(target, driver)
    kwargs, drive, label, run = dict(subject.race), subject.drive, subject.label, subject.run
    default_track = kwargs.pop("track")
    if "objects" in backend_options:
        kwargs.pop("objects", None)
    # Every name is checked before driving; Track objects keep their cached ground textures.
    if tracks == [None]:
        tracks = list(default_track) if isinstance(default_track, list) else [default_track]
    loaded = [t if isinstance(t, Track) else Track.load(t) for t in tracks]
    if video_in_run:
        if video is not None:
            raise ValueError("--video-in-run writes the video into the run: give it without --video")
        if run is None or not simtrace or len(loaded) != 1 or workers is not None:
            raise ValueError("--video-in-run records the laps of a run's model on one --track (no --workers)")
    simtrace_csv = run.new_evaluation_simtrace() if simtrace and run is not None and len(loaded) == 1 else None
    if video_in_run and simtrace_csv is not None:
        video = RunDir.evaluation_folder(simtrace_csv) / EVALUATION_VIDEO
    writer = None
    if video is not None:
        from .video import Mp4Writer

        writer = Mp4Writer(video)  # VideoError (a ValueError) names a bad path before driving
    # The reward function is loaded once (a child process when isolated) and shared by the races.
    reward = make_reward(kwargs.pop("reward", None), kwargs.pop("reward_isolation", None))
    results = []
    if workers is not None:
        reward.close()  # each task loads the subject (and its reward) itself
        from .distributed import WorkerError, connect

        try:
            started = connect(ray_address, workers)
        except WorkerError as exc:  # Ray missing, a cluster that does not answer: one message
            raise ValueError(str(exc)) from None
        try:
            reports = lap_tasks(
                target, driver, loaded, laps, seed, off_track_penalty, workers, simtrace_csv, backend_options
            )
        finally:
            if started:
                import ray

                ray.shutdown()
        results = [TrackResult(one.name, report) for one, report in zip(loaded, reports)]
        return _kept(Evaluation(label, backend, results, simtrace_csv, None, seed, perturbation, randomize))
    try:
        for one in loaded:
            core = RaceCore.create(
                one, n_cars=1, backend=backend, reward=reward, seed=seed, **kwargs, **backend_options
            )
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
                    on_step=(lambda step, o=observers: [f(step) for f in o]) if observers else None,
                    starts=evaluation_start_poses(core.track, laps, seed),
                )
            finally:
                core.close()
            results.append(TrackResult(one.name, report))
    finally:
        reward.close()
        if writer is not None:
            writer.close()
    return _kept(
        Evaluation(
            label,
            backend,
            results,
            simtrace_csv,
            Path(video) if video else None,
            seed=seed,
            perturbation=perturbation,
            randomize=randomize,
        )
    )


def _kept(evaluation: Evaluation) -> Evaluation:
    """The evaluation, its result written beside its simtrace when it went into a run."""
    if evaluation.simtrace is not None:
        result = evaluation.as_dict()
        folder = RunDir.evaluation_folder(evaluation.simtrace)
        if evaluation.video is not None and evaluation.video.parent == folder:
            result["video"] = evaluation.video.name
        write_atomic(folder / EVALUATION_RESULT, json.dumps(result, indent=2) + "\n")
    return evaluation


def _one_lap(
    target: Any,
    driver: str,
    track: Track,
    start: np.ndarray,
    seed: int | None,
    penalty: float | None,
    simtrace: bool,
    backend_options: dict[str, Any],
) -> tuple[LapReport, str]:
    """One lap of `target` on `track` from `start` (a Ray task of `lap_tasks`); the report and the
    lap's evaluation simtrace text ("" unless `simtrace`)."""
    import tempfile

    subject = target if isinstance(target, Subject) else load_subject(target, driver)
    kwargs = dict(subject.race)
    kwargs.pop("track")
    if "objects" in backend_options:
        kwargs.pop("objects", None)
    reward = make_reward(kwargs.pop("reward", None), kwargs.pop("reward_isolation", None))
    with tempfile.TemporaryDirectory(prefix="deepracer_rl_lap_") as folder:
        csv_path = Path(folder) / "lap.csv" if simtrace else None
        core = RaceCore.create(track, n_cars=1, reward=reward, seed=seed, **kwargs, **backend_options)
        try:
            report = run_laps(core, subject.drive, 1, penalty, simtrace_csv=csv_path, starts=np.asarray([start]))
        finally:
            core.close()
            reward.close()
        return report, csv_path.read_text(encoding="utf-8") if csv_path is not None else ""


def lap_tasks(
    target: Any,
    driver: str,
    tracks: Sequence[Track],
    laps: int,
    seed: int | None,
    penalty: float | None,
    workers: int,
    simtrace_csv: Path | None,
    backend_options: dict[str, Any],
) -> list[LapReport]:
    """The laps of every track as Ray tasks, one per (track, start of `evaluation_start_poses`), at
    most `workers` running at once; one report per track, laps in start order. The laps' simtraces
    are merged into `simtrace_csv` (lap k = episode k, as `run_laps` numbers them)."""
    from .distributed import PACKAGE_ROOT, ray_module

    ray = ray_module()
    task = ray.remote(
        num_cpus=1, runtime_env={"env_vars": {"PYTHONPATH": f"{PACKAGE_ROOT}{os.pathsep}${{PYTHONPATH}}"}}
    )(_one_lap)
    jobs = [
        (t, k, start) for t, one in enumerate(tracks) for k, start in enumerate(evaluation_start_poses(one, laps, seed))
    ]
    target_arg = str(target) if isinstance(target, (str, os.PathLike)) else target
    want = simtrace_csv is not None
    done: dict[tuple[int, int], tuple[LapReport, str]] = {}
    running: dict[Any, tuple[int, int]] = {}
    queue = list(jobs)
    while queue or running:
        while queue and len(running) < workers:
            t, k, start = queue.pop(0)
            ref = task.remote(target_arg, driver, tracks[t], start, seed, penalty, want, backend_options)
            running[ref] = (t, k)
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            done[running.pop(ref)] = ray.get(ref)
    if want:
        _merge_lap_simtraces([done[(0, k)][1] for k in range(laps)], simtrace_csv)
    return [merge_reports([done[(t, k)][0] for k in range(laps)]) for t in range(len(tracks))]


def _merge_lap_simtraces(texts: Sequence[str], path: Path) -> None:
    """One evaluation simtrace from laps driven apart: lap k's rows as episode k."""
    import csv
    import io

    rows: list[dict[str, str]] = []
    columns: list[str] = []
    for k, text in enumerate(texts):
        reader = csv.DictReader(io.StringIO(text))
        columns = list(reader.fieldnames or columns)
        rows.extend({**row, "episode": str(k)} for row in reader)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


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
            objects=core.object_boxes(0),
        )
        writer.write(frame)

    return observe


def format_evaluation(result: Evaluation) -> str:
    """The human-readable report of `deepracer-rl evaluate`: per track, then the sum."""
    camera = ", ".join(f"{k}={v:g}" for k, v in result.perturbation.changes().items())
    camera += ("; " if camera else "") + ("randomised" if result.randomize else "")
    lines = []
    for one in result.results:
        report = one.report
        lines.append(
            f"{result.label} on {one.track} ({result.backend}{'; ' + camera if camera else ''}): "
            f"{report.completed_laps}/{report.laps} laps completed, "
            f"mean progress {report.mean_progress:.1f} %, off track {report.off_track}x"
        )
        for i, (status, progress) in enumerate(zip(report.statuses, report.progress)):
            lines.append(f"  lap {i + 1}: {status:<13} progress {progress:6.1f} %")
        if report.lap_times_s:
            times = ", ".join(f"{t:.2f}" for t in report.lap_times_s)
            lines.append(f"  lap times s: {times} (best {report.best_lap_s:.2f})")
    if len(result.results) > 1:
        total = result.report
        lines.append(f"all {len(result.results)} tracks: {total.completed_laps}/{total.laps} laps completed")
    if result.simtrace is not None:
        lines.append(f"  evaluation simtrace: {result.simtrace}")
    return "\n".join(lines)
