"""`RunDir`: the one place that knows a run directory's layout, its lock and the best-model rule.

    config.json                 TrainConfig (every setting, plus the observation)
    reward_function.py          copy of the reward the run trains with
    model_metadata.json         copy of the action space
    checkpoints/latest.zip      the model, written atomically every checkpoint interval
    checkpoints/state.json      counters of the checkpoint (steps, episodes, best evaluation)
    best_model.zip              the best evaluated model (`is_better`: completion, then lap time)
    best_model.previous.zip     the best model before a resume changed the evaluation's laps
    progress.csv                per policy update: mean reward, progress, completion
    evaluations.csv             per evaluation: laps, lap times, statuses
    validation.csv              per evaluation, track and camera of the validation: laps, lap times
    progress_tracks.csv         per policy update and training track (multi-track runs): episodes, completion
    tracks/                     the generated tracks of `--track random:N` (the run's copies)
    evaluation/trajectory.csv   per-step trajectory of the demo's evaluation laps
    evaluation/evaluation.json  the demo's evaluation result; evaluation/video.mp4 its laps
    camera/latest.jpg           car 0's camera, written every few seconds by training (--camera-snapshot)
    tensorboard/                TensorBoard event files
    export/                     model.onnx + model_metadata.json + SHA256SUMS
    plots/                      PNG plots
    run.lock                    held by the process training into the run

and, so that DeepRacer's log tools (deepracer-utils: `DeepRacerLog(RUN)`) read a run as the
model folder of a local DeepRacer training (DRfC's single-worker layout):

    training-simtrace/<N>-iteration.csv   the simtrace of iteration (policy update) N
    evaluation-<YYYYmmddHHMMSS>/evaluation-simtrace/0-iteration.csv   one per `evaluate RUN` / demo
    (beside it, ours: evaluation-<...>/evaluation.json, the result, and video.mp4 with --video-in-run)
    model/model_metadata.json   copy of the action space, where DeepRacer keeps it
    ip/hyperparameters.json     the hyperparameters under DeepRacer's names
    metrics/TrainingMetrics.json   per episode: reward, completion, status, time (DeepRacer's JSON)

Every command (train, evaluate, export, plot, rescore, clone, demo) goes through it.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import json
import math
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .action_space import ActionSpace
from .config import ConfigError, TrainConfig

_ITERATION_FILE = re.compile(r"(\d+)-iteration\.csv")
_EVALUATION_PREFIX = "evaluation-"
EVALUATION_RESULT = "evaluation.json"  # in an evaluation's folder: its result (`evaluate_runs.Evaluation.as_dict`)
EVALUATION_VIDEO = "video.mp4"  # in an evaluation's folder: its laps (`evaluate RUN --video-in-run`, the demo)


class RunError(RuntimeError):
    """A run directory cannot be used as asked; the message says why and what to do."""


def write_atomic(path: Path, text: str) -> None:
    """Write `text` so that `path` is always either the old or the new file, whole (fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` so that `path` is always either the old or the new file, whole (rename; no fsync:
    for files rewritten every few seconds, such as the camera snapshot)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_model_atomic(model: Any, path: Path) -> None:
    """Save an SB3 model so that `path` is always either the old or the new file, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.zip")
    model.save(tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def is_better(candidate: list, best: list | None) -> bool:
    """The best-model rule on [mean progress %, best lap s or None]: completion first, then lap time."""
    if best is None:
        return True
    (progress, lap), (best_progress, best_lap) = candidate, best
    if progress != best_progress:
        return progress > best_progress
    return (lap if lap is not None else math.inf) < (best_lap if best_lap is not None else math.inf)


class RunDir:
    """A training run's directory (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ---- the layout ----------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def reward_path(self) -> Path:
        return self.path / "reward_function.py"

    @property
    def metadata_path(self) -> Path:
        return self.path / "model_metadata.json"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoints" / "latest.zip"

    @property
    def state_path(self) -> Path:
        return self.path / "checkpoints" / "state.json"

    @property
    def best_model(self) -> Path:
        return self.path / "best_model.zip"

    @property
    def previous_best_model(self) -> Path:
        """The best model of an earlier evaluation rule (a resume with another --eval-laps)."""
        return self.path / "best_model.previous.zip"

    @property
    def progress_csv(self) -> Path:
        return self.path / "progress.csv"

    @property
    def evaluations_csv(self) -> Path:
        return self.path / "evaluations.csv"

    @property
    def validation_csv(self) -> Path:
        return self.path / "validation.csv"

    @property
    def progress_tracks_csv(self) -> Path:
        return self.path / "progress_tracks.csv"

    @property
    def tracks_dir(self) -> Path:
        return self.path / "tracks"

    @property
    def training_simtrace_dir(self) -> Path:
        return self.path / "training-simtrace"

    def training_simtrace(self, iteration: int) -> Path:
        """The training simtrace of iteration (policy update) `iteration`."""
        return self.training_simtrace_dir / f"{int(iteration)}-iteration.csv"

    def training_simtraces(self, include_legacy: bool = True) -> list[tuple[int, Path]]:
        """(iteration, file) of every training simtrace, in iteration order. A run written before
        the per-iteration files kept one `simtrace/training-simtrace.csv`: it is given as iteration 0
        (unless `include_legacy` is False)."""
        found = []
        if self.training_simtrace_dir.is_dir():
            for path in self.training_simtrace_dir.iterdir():
                match = _ITERATION_FILE.fullmatch(path.name)
                if match:
                    found.append((int(match.group(1)), path))
        if not found and include_legacy and self.legacy_simtrace_csv.is_file():
            found.append((0, self.legacy_simtrace_csv))
        return sorted(found)

    @property
    def legacy_simtrace_csv(self) -> Path:
        return self.path / "simtrace" / "training-simtrace.csv"

    def evaluation_simtraces(self) -> list[Path]:
        """The evaluation simtraces of the run, oldest first."""
        return sorted(self.path.glob(f"{_EVALUATION_PREFIX}*/evaluation-simtrace/0-iteration.csv"))

    def new_evaluation_simtrace(self, when: float | None = None) -> Path:
        """The simtrace file of a new evaluation: `evaluation-<UTC YYYYmmddHHMMSS>/evaluation-simtrace/
        0-iteration.csv`, the folder made now (a later second when that one is taken)."""
        stamp = int(time.time() if when is None else when)
        self.path.mkdir(parents=True, exist_ok=True)
        while True:
            folder = self.path / (_EVALUATION_PREFIX + time.strftime("%Y%m%d%H%M%S", time.gmtime(stamp)))
            try:
                folder.mkdir()
            except FileExistsError:
                stamp += 1
                continue
            return folder / "evaluation-simtrace" / "0-iteration.csv"

    @staticmethod
    def evaluation_folder(simtrace: Path) -> Path:
        """The folder of the evaluation whose simtrace is `simtrace` (evaluation-<stamp>/)."""
        return simtrace.parent.parent

    def evaluation_folders(self) -> list[Path]:
        """The folders of the run's evaluations, oldest first: `evaluation-<stamp>/` ones, then the
        demo's `evaluation/` (when it holds a result). Each may hold EVALUATION_RESULT and EVALUATION_VIDEO."""
        found = sorted(p for p in self.path.glob(f"{_EVALUATION_PREFIX}*") if p.is_dir())
        if (self.evaluation_trajectory.parent / EVALUATION_RESULT).is_file():
            found.append(self.evaluation_trajectory.parent)
        return found

    @property
    def camera_snapshot(self) -> Path:
        """Car 0's camera as a JPEG, rewritten atomically by training (`--camera-snapshot SECONDS`)."""
        return self.path / "camera" / "latest.jpg"

    @property
    def deepracer_metadata_path(self) -> Path:
        """model_metadata.json where DeepRacer's model folder has it (a copy of `metadata_path`)."""
        return self.path / "model" / "model_metadata.json"

    @property
    def hyperparameters_path(self) -> Path:
        return self.path / "ip" / "hyperparameters.json"

    @property
    def training_metrics_path(self) -> Path:
        return self.path / "metrics" / "TrainingMetrics.json"

    @property
    def evaluation_trajectory(self) -> Path:
        """The per-step trajectory of the last `deepracer-rl demo` evaluation (plotted as the best lap)."""
        return self.path / "evaluation" / "trajectory.csv"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def export_dir(self) -> Path:
        return self.path / "export"

    @property
    def plots_dir(self) -> Path:
        return self.path / "plots"

    @property
    def lock_path(self) -> Path:
        return self.path / "run.lock"

    # ---- what is in it -------------------------------------------------------------------
    def is_run(self) -> bool:
        return self.config_path.is_file()

    def has_checkpoint(self) -> bool:
        return self.checkpoint.is_file()

    def require(self) -> RunDir:
        """This run, or a clear error when the directory is not one."""
        if not self.is_run():
            raise FileNotFoundError(f"{self.path}: no config.json (expected a run directory of deepracer-rl train)")
        return self

    def load_config(self) -> TrainConfig:
        self.require()
        try:
            return TrainConfig.from_json(self.config_path.read_text(encoding="utf-8"), self.config_path)
        except ConfigError as exc:
            raise RunError(str(exc)) from None

    def save_config(self, config: TrainConfig) -> None:
        write_atomic(self.config_path, config.to_json())

    def load_actions(self, config: TrainConfig) -> ActionSpace:
        """The run's model_metadata.json, checked against the actions the policy was built for.

        A reordered or edited action list would make the network's outputs drive the wrong
        actions (output i is action i); refused with RunError naming the file.
        """
        actions = ActionSpace.load(self.metadata_path)
        recorded = config.action_space_sha256
        if recorded is not None and actions.digest() != recorded:
            raise RunError(
                f"{self.metadata_path}: its action space is not the one the policy was trained with (reordered or "
                f"edited after training); the network's outputs would drive the wrong actions. Restore it from "
                f"{self.deepracer_metadata_path} or the original file"
            )
        return actions

    def load_state(self) -> dict[str, Any]:
        """The checkpoint's counters ({} before the first checkpoint)."""
        if not self.state_path.exists():
            return {}
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RunError(f"{self.state_path}: not valid JSON ({exc}); the checkpoint's counters are lost") from None
        if not isinstance(state, dict):
            raise RunError(f"{self.state_path}: expected a JSON object of counters")
        return state

    def save_state(self, state: dict[str, Any]) -> None:
        write_atomic(self.state_path, json.dumps(state) + "\n")

    def model_to_use(self) -> Path:
        """The model a command should use: the best evaluated one, else the latest checkpoint."""
        for path in (self.best_model, self.checkpoint):
            if path.is_file():
                return path
        raise FileNotFoundError(f"{self.path}: no model yet (neither best_model.zip nor {self.checkpoint.name})")

    def append_csv(self, path: Path, row: dict[str, Any]) -> None:
        """Append one row to a CSV of the run (header when the file is new)."""
        new = not path.exists() or path.stat().st_size == 0
        with open(path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock (an advisory flock on run.lock) while training writes into it."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_path, "a+", encoding="utf-8")
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunError(
                        f"{self.path}: another process is training into this run (it holds {self.lock_path.name}); "
                        f"wait for it or choose another --out"
                    ) from None
                raise
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            handle.close()  # closing releases the flock


def find_run(model_arg: str | os.PathLike) -> tuple[RunDir, Path]:
    """A run and the model to use from RUN (its best model) or a model .zip inside the run
    (RUN/best_model.zip, a checkpoint RUN/checkpoints/latest.zip, ...): the run is the .zip's folder
    or the one above it, whichever holds config.json (the model needs its run's settings)."""
    path = Path(model_arg)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run directory or model .zip")
    if path.is_dir():
        run = RunDir(path).require()
        return run, run.model_to_use()
    if path.suffix != ".zip":
        raise FileNotFoundError(f"{path}: not a run directory, a model .zip or an export dir")
    for folder in path.resolve().parents[:2]:
        if RunDir(folder).is_run():
            return RunDir(folder), path
    raise FileNotFoundError(
        f"{path}: a model .zip outside a run directory (no config.json beside it or one folder up); evaluate "
        "it inside its run, or export the run (deepracer-rl export RUN) and evaluate the export"
    )
