"""`deepracer-rl train`: a registered algorithm on the race's sensors, into a run directory.

The run directory (`rundir.RunDir`) holds everything needed to understand, resume and judge
a run; the work during training is done by the callbacks of `callbacks.run_callbacks`. A
broken reward or metadata file fails in seconds (a dry run) before anything is written; a
reward that fails later, a simulator that stops answering or Ctrl-C stop the run with a
checkpoint and say how to continue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .action_space import ActionSpace, MetadataError
from .algorithms import AlgorithmError, algorithm, build_model, load_model, scale_rewards
from .backend import available_backends, backend_class, check_backend_sensors
from .callbacks import TrainingProgress, run_callbacks
from .config import TrainConfig
from .episode import StartRules, evaluation_start_poses
from .evaluate import Driver, LapReport, policy_driver, run_laps
from .logs import MetricsLog, restore_training_logs, write_deepracer_files
from .networks import NETWORKS
from .race import RaceCore
from .resume import ADOPTED_WHEN_GIVEN, compare_for_resume, record_inputs
from .reward import RewardFunction, RewardFunctionError
from .reward_process import IsolatedReward
from .run_tracks import (
    TrackSetupError,
    keep_generated_tracks,
    resolve_run_tracks,
    track_path,
    training_track_set,
    validation_tracks,
)
from .rundir import RunDir, RunError, save_model_atomic
from .sensors import SensorError, check_sensor_names, metadata_sensors, observation_space
from .vec_env import RaceVecEnv


class TrainingError(RuntimeError):
    """Training cannot start or had to stop; the message says why and what was kept."""


# ---- the run directory --------------------------------------------------------------------
def check_config(config: TrainConfig) -> None:
    """Refuse settings no run can use, naming the option and what is expected."""
    try:
        config.validate()
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    try:
        algorithm(config.algo)
    except AlgorithmError as exc:
        raise TrainingError(str(exc)) from None
    if config.backend not in available_backends():
        raise TrainingError(f"unknown backend {config.backend!r}; choose one of {', '.join(available_backends())}")
    if config.network not in NETWORKS:
        raise TrainingError(f"unknown network {config.network!r}; choose one of {', '.join(NETWORKS)}")
    if config.ros_timeout is not None and not config.ros_timeout > 0:
        raise TrainingError(f"the ROS timeout must be a positive number of seconds, got {config.ros_timeout}")
    if config.target_kl is not None and config.algo != "ppo":
        raise TrainingError(
            f"--target-kl limits PPO's updates; {config.algo!r} has none: leave it out or use --algo ppo"
        )
    if config.workers:
        if config.normalize_reward:
            raise TrainingError(
                "--normalize-reward is not built for --workers yet (the workers' rollouts bypass the scaling): "
                "leave one of them out"
            )
        if config.algo != "ppo":
            raise TrainingError(
                f"--workers trains PPO only, not {config.algo!r} (docs/scaling.md says why SAC does not yet): "
                "use --algo ppo, or train SAC without --workers"
            )
        if config.backend == "ros":  # each worker races in a domain of its own (distributed.worker_domain_ids)
            from .distributed import worker_domain_ids

            try:
                worker_domain_ids(config.workers, config.ros_domain_base)
            except ValueError as exc:
                raise TrainingError(str(exc)) from None
        elif config.backend != "inprocess":
            raise TrainingError(
                f"--workers drives the in-process simulator or the ROS backend on each worker, not {config.backend!r}"
            )
        from importlib.util import find_spec

        if find_spec("ray") is None:
            raise TrainingError("--workers needs Ray: pip install 'deepracer_rl[ray]' (the pinned version)")
    elif config.ray_address is not None:
        raise TrainingError("--ray-address names the Ray cluster of --workers N: give --workers too")
    if config.world_config is not None and config.backend != "inprocess" and config.workers:
        raise TrainingError(
            "--world-config with --workers N --backend ros: the workers' simulators are started without the "
            "objects; train with objects over ROS without --workers (start deepracer-rl sim --lockstep "
            "--world-config FILE yourself) or with --backend inprocess"
        )
    if (config.ros_domain_base is not None or config.external_simulators) and not (
        config.workers and config.backend == "ros"
    ):
        option = "--ros-domain-base" if config.ros_domain_base is not None else "--external-simulators"
        raise TrainingError(
            f"{option} places the simulators of --workers N --backend ros; one simulator without workers "
            "races in this process's ROS_DOMAIN_ID"
        )
    try:
        randomization = training_randomization(config)
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"--randomize {config.randomize}: {exc}") from None
    if config.backend != "inprocess" and randomization is not None:
        raise TrainingError(
            "--randomize applies to the in-process simulator; over ROS the simulator randomises "
            "its camera (sim_node randomize:=true)"
        )


def as_run(run: RunDir | str | os.PathLike) -> RunDir:
    return run if isinstance(run, RunDir) else RunDir(run)


def refuse_foreign_directory(run: RunDir) -> None:
    """--out must be new, empty or a run: training would otherwise write among (and over) the user's files."""
    if not run.path.is_dir() or run.is_run():
        return
    others = sorted(p.name for p in run.path.iterdir() if p != run.lock_path)
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise TrainingError(
            f"{run.path} is not a run directory and not empty ({shown}); choose a new or empty --out "
            "(nothing was written)"
        )


def prepare_run(
    config: TrainConfig,
    run: RunDir | str | os.PathLike,
    resume: bool,
    force: bool = False,
    staging: Path | None = None,
) -> TrainConfig:
    """Create (or check, when resuming: `resume.compare_for_resume`) the run directory; returns
    the config to use. `staging`: where `resolve_run_tracks` drew generated tracks (kept in the run)."""
    run = as_run(run)
    if not resume:
        refuse_foreign_directory(run)
    run.path.mkdir(parents=True, exist_ok=True)
    if resume:
        if not run.is_run() or not run.has_checkpoint():
            raise TrainingError(f"{run.path}: nothing to resume (no config.json or {run.checkpoint.name})")
        try:
            saved = compare_for_resume(run.load_config(), config, run, force)
        except RunError as exc:
            raise TrainingError(str(exc)) from None
        saved.steps = config.steps
        saved.max_minutes = config.max_minutes
        saved.camera_snapshot = config.camera_snapshot
        if config.ros_timeout is not None:
            saved.ros_timeout = config.ros_timeout
        saved.ray_address = config.ray_address
        # how the reward runs is no part of what was trained: this invocation's settings hold
        saved.reward_isolation = config.reward_isolation
        saved.reward_timeout = config.reward_timeout
        saved.reward_memory_mb = config.reward_memory_mb
        default = TrainConfig()
        for name in ADOPTED_WHEN_GIVEN:
            if getattr(config, name) != getattr(default, name):
                setattr(saved, name, getattr(config, name))
        run.save_config(saved)
        write_deepracer_files(run, saved)
        return saved
    if run.has_checkpoint():
        raise TrainingError(f"{run.path} already holds a run; use --resume to continue it or choose another --out")
    if staging is not None:
        config = keep_generated_tracks(config, staging, run)
    randomization = training_randomization(config)
    if randomization is not None:  # the values, so that the run reproduces if the preset changes later
        config.randomization = dataclasses.asdict(randomization)
    reward_src = Path(config.reward) if config.reward else RewardFunction().path
    shutil.copyfile(reward_src, run.reward_path)
    actions = ActionSpace.load(config.metadata)
    actions.save(run.metadata_path)
    config.sensors = list(actions.sensor)
    config.action_space_sha256 = actions.digest()
    record_inputs(config, run)
    run.save_config(config)
    write_deepracer_files(run, config)
    return config


# ---- races --------------------------------------------------------------------------------
def race_kwargs(config: TrainConfig, run: RunDir | str | os.PathLike) -> dict[str, Any]:
    """The race arguments of a run (`RaceCore.create`). The reward is the user's file while it
    exists, so errors name the file they edit; the run's copy is the record (and the fallback)."""
    run = as_run(run)
    reward = Path(config.reward) if config.reward else None
    kwargs = dict(
        track=training_track_set(config, run),
        metadata=str(run.metadata_path),
        reward=str(reward if reward is not None and reward.exists() else run.reward_path),
        observation=config.observation(),
        reward_isolation=config.isolation(),
    )
    if config.world_config is not None:
        kwargs["objects"] = dict(config.world_config)
    return kwargs


MULTI_TRACK_SCENE_VARIANTS = 2  # randomised scene variants per track of a multi-track run


def training_randomization(config: TrainConfig) -> Any:
    """The camera randomisation a run trains with (`camera.DomainRandomization`), or None: the values
    the run recorded when it started (`config.randomization`), else the preset `--randomize` names
    (a multi-track run draws from MULTI_TRACK_SCENE_VARIANTS scene variants per track)."""
    from .camera import DomainRandomization, randomization_preset

    if not config.randomize or config.randomize == "none":
        return None
    if config.randomization:
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.randomization.items()}
        return DomainRandomization(**values)
    preset = randomization_preset("standard" if config.randomize is True else str(config.randomize))
    if config.tracks and preset.scene_variants > MULTI_TRACK_SCENE_VARIANTS:
        # the tracks bring the variety; a scene variant costs one texture build (~1 s, ~20 MB) per track
        return dataclasses.replace(preset, scene_variants=MULTI_TRACK_SCENE_VARIANTS)
    return preset


def backend_options(config: TrainConfig, training: bool = True) -> dict[str, Any]:
    """The backend's own options: camera randomisation (training in-process), the ROS timeouts."""
    options: dict[str, Any] = {}
    randomization = training_randomization(config) if training else None
    if randomization is not None:
        options["randomization"] = randomization
    if config.backend == "ros" and config.ros_timeout is not None:
        options.update(timeout=config.ros_timeout, connect_timeout=config.ros_timeout)
    return options


def make_env(config: TrainConfig, run: RunDir | str | os.PathLike) -> RaceVecEnv:
    """The training VecEnv: `n_envs` cars of the chosen backend (head-to-head: each racing an
    opponent car of the run's `self_play.opponent_pool`, 2 x n_envs cars in the simulator)."""
    run = as_run(run)
    if config.head_to_head:
        from .head_to_head import HeadToHeadVecEnv
        from .self_play import opponent_pool

        return HeadToHeadVecEnv(
            opponent_pool(config, run),
            n_envs=config.n_envs,
            seed=config.seed,
            backend=config.backend,
            **race_kwargs(config, run),
            **backend_options(config),
        )
    return RaceVecEnv(
        n_envs=config.n_envs,
        seed=config.seed,
        backend=config.backend,
        **race_kwargs(config, run),
        **backend_options(config),
    )


def make_worker_env(config: TrainConfig, run: RunDir) -> Any:
    """The training env of a run with Ray workers (`distributed.WorkerVecEnv`), on the Ray of this
    process (connected by `_train`). The workers race on the run's copies of the reward and metadata:
    a cluster's nodes may not see the user's files, the run's copies are sent along."""
    from .distributed import inline_files, make_pool_env

    kwargs = inline_files(dict(race_kwargs(config, run), reward=str(run.reward_path)))
    kwargs.update(backend=config.backend, **backend_options(config))
    return make_pool_env(config, kwargs, say=_say)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def dry_run(config: TrainConfig, kwargs: dict[str, Any], steps: int = 30) -> None:
    """A few in-process steps with random actions, so a broken reward or metadata fails in seconds."""
    core = RaceCore.create(n_cars=2, seed=config.seed, **kwargs)
    try:
        rng = np.random.default_rng(config.seed)
        space = core.actions.gym_space()
        space.seed(int(rng.integers(1 << 31)))
        core.reset_cars(np.arange(2))
        for _ in range(steps):
            _, status, _ = core.step(np.stack([space.sample() for _ in range(2)]))
            done = np.flatnonzero([s.done for s in status])
            if len(done):
                core.reset_cars(done)
    finally:
        core.close()


def evaluate_model(
    model: Any,
    config: TrainConfig,
    run: RunDir,
    laps: int = 1,
    track: str | None = None,
    trajectory_csv: Path | None = None,
    off_track_penalty: float | None = None,
    simtrace_csv: Path | None = None,
    observer: Callable[[RaceCore], Callable[[Any], None]] | None = None,
    spread_starts: bool = False,
) -> LapReport:
    """Evaluation laps of a model from the start line, on the plain camera (as DeepRacer evaluates);
    `observer`: made with the race, then called with every `evaluate.LapStep` (e.g. the video);
    `spread_starts`: lap k from the k-th of `laps` starts spread round the track, the first on the
    start line (as `deepracer-rl evaluate --laps N`)."""
    return evaluate_driver(
        policy_driver(model),
        config,
        run,
        laps,
        track,
        trajectory_csv,
        off_track_penalty,
        backend="inprocess",
        simtrace_csv=simtrace_csv,
        observer=observer,
        spread_starts=spread_starts,
    )


def validate_model(model: Any, config: TrainConfig, run: RunDir, say: Callable[[str], None] | None = None) -> LapReport:
    """The evaluation that selects the best model: `eval_laps` laps on each validation track (from
    starts spread round it, drawn from the run's seed, the same at every evaluation), on the plain
    camera and under each `val_perturb`; with Ray workers, one lap per (track, camera, start) on the
    workers. A one-track run without perturbations or workers drives a time trial's laps from N
    starts spread round the track, the first on the start line (as `deepracer-rl evaluate --laps N`);
    among objects or an opponent all from the start line, as before (each lap meets its own layout);
    `ranked_for_selection` says whether the fastest or the mean lap counts. The
    table goes to validation.csv and, in one line, to `say`."""
    tracks = validation_tracks(config, run)
    pool = getattr(getattr(model, "env", None), "pool", None)  # distributed.WorkerPool of --workers
    if pool is not None and not pool.actors:  # closed: the final validation runs here
        pool = None
    one_track = not config.val_perturb and not config.tracks and tracks == [track_path(config.track, run)]
    if pool is None and one_track:
        # A time trial's laps from one start would all be the same lap: spread them as evaluate --laps N does.
        time_trial = config.world_config is None and not config.head_to_head
        report = evaluate_model(model, config, run, laps=config.eval_laps, spread_starts=time_trial)
        return ranked_for_selection(report, config)
    seed = None if one_track else config.seed  # one track: the first lap from the start line, as always
    from .camera import CameraPerturbation

    cameras = [("plain", CameraPerturbation())]
    cameras += [(text, CameraPerturbation.parse([text])) for text in config.val_perturb]
    groups = [(_cached_track(ref), label, camera) for ref in tracks for label, camera in cameras]
    if pool is not None:
        reports = _validate_on_workers(model, pool, groups, config.eval_laps, seed)
    else:
        reports = _validate_here(model, config, run, groups, seed)
    merged = LapReport(laps=0)
    rows, cells = [], []
    for (track, label, _), report in zip(groups, reports):
        merged.extend(report)
        rows.append(
            {
                "timesteps": int(getattr(model, "num_timesteps", 0)),
                "track": track.name,
                "camera": label,
                "completed_laps": report.completed_laps,
                "laps": report.laps,
                "mean_progress": round(report.mean_progress, 2),
                "lap_times_s": " ".join(f"{t:.3f}" for t in report.lap_times_s),
            }
        )
        times = "/".join(f"{t:.1f}s" for t in report.lap_times_s)
        where = track.name if label == "plain" else f"{track.name} {label}"
        cells.append(f"{where} {report.completed_laps}/{report.laps} " + (times or f"{report.mean_progress:.0f}%"))
    # ranked after progress, which comes first (`is_better`); several tracks or cameras: the mean by default
    by_mean = config.selects_by_mean_lap if one_track else config.select_by != "best_lap"
    if merged.lap_times_s and by_mean:
        merged.score_lap_s = float(np.mean(merged.lap_times_s))
    for row in rows:
        run.append_csv(run.validation_csv, row)
    if say is not None:
        say(
            f"validation at {rows[0]['timesteps'] if rows else 0} steps: {merged.completed_laps}/{merged.laps} laps, "
            f"mean progress {merged.mean_progress:.1f}% | " + " | ".join(cells)
        )
    return merged


def ranked_for_selection(report: LapReport, config: TrainConfig) -> LapReport:
    """`report` of one track ranked as model selection ranks it: by its mean lap with `--select-by
    mean_lap` and by default in a race with objects (collision penalties included, as DeepRacer ranks
    object-avoidance laps; not the one clean lap of a lucky layout), else by its fastest lap."""
    if config.selects_by_mean_lap and report.lap_times_s:
        report.score_lap_s = float(np.mean(report.lap_times_s))
    return report


def _validate_here(
    model: Any, config: TrainConfig, run: RunDir, groups: list[tuple[Any, str, Any]], seed: int | None
) -> list[LapReport]:
    """Validation laps in this process: one race per (track, camera), `eval_laps` laps each."""
    from .reward_process import make_reward

    kwargs = race_kwargs(config, run)
    kwargs.pop("track")
    reward = make_reward(kwargs.pop("reward"), kwargs.pop("reward_isolation"))
    driver = policy_driver(model)
    reports = []
    try:
        for track, _, camera in groups:
            options = {"perturbation": camera} if camera.enabled else {}
            core = RaceCore.create(track, n_cars=1, reward=reward, seed=config.seed, **kwargs, **options)
            try:
                starts = evaluation_start_poses(core.track, config.eval_laps, seed)
                reports.append(run_laps(core, driver, config.eval_laps, starts=starts))
            finally:
                core.close()
    finally:
        reward.close()
    return reports


def _validate_on_workers(
    model: Any, pool: Any, groups: list[tuple[Any, str, Any]], laps: int, seed: int | None
) -> list[LapReport]:
    """Validation laps on the Ray workers, one per (track, camera, start); a report per (track, camera)."""
    from .distributed import PolicySpec, ValidationLap, policy_weights

    jobs, owners = [], []
    for g, (track, _, camera) in enumerate(groups):
        for start in evaluation_start_poses(track, laps, seed):
            jobs.append(ValidationLap(track, tuple(float(v) for v in start), camera.changes(), seed))
            owners.append(g)
    driven = pool.validate(PolicySpec.of(model), policy_weights(model.policy), jobs)
    reports = [LapReport(laps=0) for _ in groups]
    for g, lap in zip(owners, driven):
        reports[g].extend(lap)
    return reports


_TRACK_CACHE: dict[str, Any] = {}


def _cached_track(ref: str) -> Any:
    """A validation track loaded once per process (its ground texture is built once too)."""
    from .track import Track

    track = _TRACK_CACHE.get(ref)
    if track is None:
        track = _TRACK_CACHE[ref] = Track.load(ref)
    return track


def evaluate_driver(
    driver: Driver,
    config: TrainConfig,
    run: RunDir,
    laps: int = 1,
    track: str | None = None,
    trajectory_csv: Path | None = None,
    off_track_penalty: float | None = None,
    backend: str = "inprocess",
    simtrace_csv: Path | None = None,
    observer: Callable[[RaceCore], Callable[[Any], None]] | None = None,
    spread_starts: bool = False,
    **options: Any,
) -> LapReport:
    """Evaluation laps of a driver on a run's race (its track unless `track`), over `backend`;
    `simtrace_csv`: where to write DeepRacer's evaluation simtrace of the laps; `spread_starts`:
    lap k from the k-th start of `episode.evaluation_start_poses` (else every lap from the start line)."""
    kwargs = race_kwargs(config, run)
    if track is not None:
        kwargs["track"] = track
    core = RaceCore.create(n_cars=1, start=StartRules(), backend=backend, **kwargs, **options)
    try:
        return run_laps(
            core,
            driver,
            laps=laps,
            off_track_penalty=off_track_penalty,
            trajectory_csv=trajectory_csv,
            simtrace_csv=simtrace_csv,
            on_step=observer(core) if observer is not None else None,
            starts=evaluation_start_poses(core.track, laps) if spread_starts else None,
        )
    finally:
        core.close()


# ---- training -----------------------------------------------------------------------------
@contextlib.contextmanager
def _sigint_stops(progress: TrainingProgress) -> Iterator[None]:
    """Ctrl-C (SIGINT) asks the run to stop at the next step instead of raising inside SB3 or
    rclpy's C code; repeats (`ros2 launch` forwards its own after the terminal's) change nothing.
    Only the main thread can set signal handlers: elsewhere Ctrl-C stays a KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: object) -> None:
        progress.stop_requested = True

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def train(config: TrainConfig, out: str | os.PathLike, resume: bool = False, force: bool = False) -> dict[str, Any]:
    """Train (or resume) a run; returns a summary. Raises TrainingError with what was kept.
    `force`: resume although the reward or track file changed (`resume.compare_for_resume`)."""
    run = as_run(out)
    check_config(config)
    if not resume:
        check_metadata_sensors(config)  # a metadata file asking for sensors that cannot be: nothing is written
        if config.opponent is not None:  # a missing or mismatched opponent: nothing is written either
            check_fixed_opponent(config)
        refuse_foreign_directory(run)  # before the lock file is made in it
    try:
        with run.lock():
            return _train(config, run, resume, force)
    except RunError as exc:
        raise TrainingError(str(exc)) from None


def check_metadata_sensors(config: TrainConfig) -> None:
    """The metadata's sensors (`sensors.metadata_sensors`: names, one camera and at most one lidar,
    lidar_config) at the run's image settings, and that the backend delivers them (`--workers` or
    not); TrainingError names the file and the field or option."""
    if config.metadata is None:
        return
    try:
        sensors = metadata_sensors(ActionSpace.load(config.metadata), str(config.metadata))
        observation_space(sensors, config.observation())
    except (SensorError, MetadataError) as exc:
        raise TrainingError(str(exc)) from None
    try:  # a backend that cannot deliver them (--backend ros: the camera only), with or without --workers
        check_backend_sensors(config.backend, tuple(s.name for s in sensors))
    except ValueError as exc:
        raise TrainingError(f"{config.metadata}: {exc}") from None


def _start_workers(config: TrainConfig, run: RunDir) -> Any:
    """The run's Ray workers on the Ray this process is connected to (`_train`)."""
    from .distributed import WorkerError

    try:
        env = make_worker_env(config, run)
    except WorkerError as exc:
        raise TrainingError(str(exc)) from None
    _say(
        f"training with {config.workers} Ray workers x {config.n_envs} cars ({env.num_envs} in all): "
        f"{env.pool.describe()}"
    )
    return env


def _train(config: TrainConfig, run: RunDir, resume: bool, force: bool) -> dict[str, Any]:
    import torch

    torch.set_num_threads(config.torch_threads)
    with tempfile.TemporaryDirectory(prefix="deepracer_rl_tracks_") as staging:
        try:
            if not resume:  # a broken track, reward or metadata file fails before anything is written
                config, notes = resolve_run_tracks(config, Path(staging))
                if config.tracks and config.backend != "inprocess":
                    raise TrackSetupError(
                        f"--backend {config.backend} races on one track; a multi-track run "
                        f"({len(config.tracks)} tracks) trains on --backend inprocess"
                    )
                for note in notes:
                    _say(note)
                dry_run(
                    config,
                    dict(
                        track=training_track_set(config, None),
                        metadata=config.metadata,
                        reward=config.reward,
                        observation=config.observation(),
                        reward_isolation=config.isolation(),
                    ),
                )
        except (SensorError, TrackSetupError) as exc:
            raise TrainingError(str(exc)) from None
        stop_ray = _connect_ray(config) if config.workers else None  # before anything is written
        try:
            return _train_prepared(config, run, resume, force, None if resume else Path(staging))
        finally:
            if stop_ray is not None:
                stop_ray()


def check_fixed_opponent(config: TrainConfig) -> None:
    """Load `--opponent` once and refuse it when missing or when it sees through other camera settings."""
    from .self_play import check_opponent, load_opponent

    try:
        sensors = tuple(ActionSpace.load(config.metadata).sensor)
        check_opponent(load_opponent(str(config.opponent)), config.observation(), sensors)
    except (ValueError, FileNotFoundError) as exc:
        raise TrainingError(str(exc)) from None


def _connect_ray(config: TrainConfig) -> Callable[[], None] | None:
    """Join `--ray-address` or start a local Ray; what shuts down a Ray this call started."""
    from .distributed import WorkerError, connect

    try:
        started = connect(config.ray_address, config.workers)
    except WorkerError as exc:
        raise TrainingError(str(exc)) from None
    import ray

    return ray.shutdown if started else None


def _train_prepared(
    config: TrainConfig, run: RunDir, resume: bool, force: bool, staging: Path | None
) -> dict[str, Any]:
    try:
        config = prepare_run(config, run, resume, force, staging)
        check_sensor_names(config.sensors, str(run.config_path))
        if resume:
            dry_run(config, race_kwargs(config, run))
    except SensorError as exc:
        raise TrainingError(str(exc)) from None
    state = run.load_state() if resume else {}
    progress = TrainingProgress.from_state(state, config.total_cars)
    if resume:  # the DeepRacer logs go on from the checkpoint, without what a killed run wrote after it
        restore_training_logs(run, state)
        progress.metrics = MetricsLog.load(run.training_metrics_path, state.get("next_episode"))
    model_class = None
    if config.workers:
        env = _start_workers(config, run)
        from .distributed import DistributedPPO, WorkerError

        model_class = DistributedPPO
        simulator_gone = (*backend_class(config.backend).errors, WorkerError)
    else:
        env = make_env(config, run)
        if isinstance(env.core.reward_fn, IsolatedReward):  # Ctrl-C during a reward call that hangs stops at once
            env.core.reward_fn.should_stop = lambda: progress.stop_requested
        simulator_gone = backend_class(config.backend).errors
        if config.normalize_reward:
            env = scale_rewards(env, config.discount, state.get("reward_scale"))

    def close_env() -> None:
        env.close()

    try:
        if resume:
            model = load_model(run.checkpoint, env=env, algo=config.algo, model_class=model_class)
            model.tensorboard_log = str(run.tensorboard)
        else:
            model = build_model(config, env, run.tensorboard, model_class=model_class)
    except AlgorithmError as exc:
        close_env()
        raise TrainingError(str(exc)) from None
    parts = run_callbacks(config, run, progress, lambda m: validate_model(m, config, run, say=parts.bar.say))
    callbacks = parts.callbacks
    if config.self_play:  # the pool starts with the initial policy; snapshots join it as training goes
        from stable_baselines3.common.callbacks import CallbackList

        from .self_play import SelfPlaySnapshots

        snapshots = SelfPlaySnapshots(config, run, env.opponents, progress.timesteps)
        snapshots.start(model)
        callbacks = CallbackList([parts.callbacks, snapshots])
    if config.workers:  # a worker's death drops its cars' open episodes; its line goes above the bar
        env.on_restart = parts.abandon
        env.pool.say = parts.bar.say
    remaining = config.steps - progress.timesteps
    started = time.time()

    def keep() -> str:
        parts.checkpoint.save(model)
        return f"checkpoint saved at step {model.num_timesteps}: continue with --resume"

    try:
        with _sigint_stops(progress):
            if remaining > 0:
                model.learn(remaining, callback=callbacks, reset_num_timesteps=not resume, tb_log_name="run")
            if progress.stop_requested:
                raise TrainingError(f"interrupted; {keep()}")
    except RewardFunctionError as exc:
        parts.checkpoint.save(model)
        raise TrainingError(
            f"the reward function failed at step {model.num_timesteps}; the run stopped and its "
            f"checkpoint is saved in {run.checkpoint} (fix the file, then --resume):\n{exc}"
        ) from exc
    except simulator_gone as exc:
        kept = "nothing was trained"
        if model.num_timesteps > progress.timesteps:
            kept = keep()
        raise TrainingError(f"the simulator did not answer ({kept}): {exc}") from exc
    except KeyboardInterrupt:  # not in the main thread: no handler of ours
        raise TrainingError(f"interrupted; {keep()}") from None
    finally:
        close_env()
        parts.bar.close()  # also when learn() stopped on an error
    parts.checkpoint.save(model)
    final = validate_model(model, config, run, say=_say)
    if progress.consider(final, run, say=_say):
        save_model_atomic(model, run.best_model)
        parts.checkpoint.save(model)
    return {
        "out": str(run.path),
        "timesteps": int(model.num_timesteps),
        "episodes": progress.episodes,
        "minutes": round((time.time() - started) / 60.0, 2),
        "best": progress.best,
    }
