"""Read-only views of run directories as JSON-ready dicts: what `deepracer-rl console` serves.

Everything here reads the files the trainer, `evaluate` and `export` wrote (through `RunDir`, the
one place that knows their names); nothing writes into a run. A run's status comes from its lock:
`training` while a process holds run.lock (Linux: /proc/locks), else `done`, `stopped` (a checkpoint
short of its steps: resumable) or `new`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .rundir import EVALUATION_RESULT, EVALUATION_VIDEO, RunDir, RunError

if TYPE_CHECKING:
    from .config import TrainConfig

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # a run's folder name as the console accepts it
SIMTRACE_ITERATIONS = 20  # the histogram and heat map read the newest this many iterations (cheap, recent)
MAX_CSV_ROWS = 5000  # rows of a CSV served (the newest): the curves of the longest runs stay light


class RunViewError(ValueError):
    """A request names no run, or not a valid one; the message says which and what is expected."""


def run_names(runs: Path) -> list[str]:
    """The run directories directly inside `runs` (holding config.json), by name."""
    if not runs.is_dir():
        return []
    return sorted(p.name for p in runs.iterdir() if RUN_NAME.fullmatch(p.name) and RunDir(p).is_run())


def run_path(runs: Path, name: str) -> Path:
    """`runs/name` when `name` is a plain folder name inside `runs` (no separators, no `..`), else RunViewError."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or ".." in name:
        raise RunViewError(f"run name {name!r}: expected letters, digits, '.', '_' or '-' (a folder inside the runs)")
    root = runs.resolve()
    path = (root / name).resolve()
    if path.parent != root:  # a symlink out of the runs directory
        raise RunViewError(f"run {name!r}: not inside the runs directory")
    return path


def read_csv_rows(path: Path, limit: int = MAX_CSV_ROWS) -> list[dict[str, Any]]:
    """The rows of a run's CSV (the newest `limit`), numbers as numbers; [] when it does not exist yet.
    A last row being written (no newline yet) is left out."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.DictReader(io.StringIO(text)))[-limit:]
    return [{k: _number(v) for k, v in row.items() if k is not None} for row in rows]


def _number(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and re.fullmatch(r"-?\d+", text.strip()) else value


def _lap_times(text: Any) -> list[float]:
    if text is None:
        return []
    if isinstance(text, (int, float)):
        return [float(text)]
    return [float(t) for t in str(text).split()]


def training_pid(run: RunDir) -> int | None:
    """The process training into the run (holding its run.lock), or None."""
    try:
        stat = run.lock_path.stat()
    except FileNotFoundError:
        return None
    try:
        pid = int(run.lock_path.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        pid = None
    try:
        locks = Path("/proc/locks").read_text()
    except OSError:  # not Linux: the pid recorded in run.lock, if it is alive
        return pid if pid is not None and _alive(pid) else None
    inode = f":{stat.st_ino}"
    for line in locks.splitlines():  # e.g. "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
        parts = line.split()
        if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].endswith(inode):
            major_minor = parts[5][: -len(inode)].split(":")
            if (
                len(major_minor) == 2
                and int(major_minor[0], 16) == os.major(stat.st_dev)
                and (int(major_minor[1], 16) == os.minor(stat.st_dev))
            ):
                return int(parts[4])
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def evaluations(run: RunDir) -> list[dict[str, Any]]:
    """The run's evaluations that left a result (`evaluate RUN`, the demo), oldest first: {id (the
    folder's name), result, video (True when it has one)}."""
    found = []
    for folder in run.evaluation_folders():
        result_path = folder / EVALUATION_RESULT
        if not result_path.is_file():
            continue
        try:
            result = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(result, dict):
            found.append({"id": folder.name, "result": result, "video": (folder / EVALUATION_VIDEO).is_file()})
    return found


def evaluation_video(run: RunDir, evaluation_id: str) -> Path:
    """The MP4 of evaluation `evaluation_id` (a folder name of `evaluations`), or RunViewError."""
    for folder in run.evaluation_folders():
        if folder.name == evaluation_id and (folder / EVALUATION_VIDEO).is_file():
            return folder / EVALUATION_VIDEO
    raise RunViewError(f"evaluation {evaluation_id!r}: no such evaluation with a video in {run.path.name}")


def _result_laps(result: dict[str, Any]) -> list[tuple[str | None, list[float]]]:
    """(track, lap times) of an evaluation result, per track."""
    tracks = result.get("tracks")
    if isinstance(tracks, list) and tracks:
        return [(t.get("track"), [float(x) for x in t.get("lap_times_s") or []]) for t in tracks]
    return [(result.get("track"), [float(x) for x in result.get("lap_times_s") or []])]


def laps_by_track(run: RunDir, default_track: str) -> dict[str, list[float]]:
    """Every completed lap time the run's files record, per track: validation.csv (per track),
    evaluations.csv (the training track when there is one validation track) and evaluation results."""
    laps: dict[str, list[float]] = {}
    for row in read_csv_rows(run.validation_csv):
        if row.get("track"):
            laps.setdefault(str(row["track"]), []).extend(_lap_times(row.get("lap_times_s")))
    if not run.validation_csv.exists():
        for row in read_csv_rows(run.evaluations_csv):
            laps.setdefault(default_track, []).extend(_lap_times(row.get("lap_times_s")))
    for evaluation in evaluations(run):
        for track, times in _result_laps(evaluation["result"]):
            laps.setdefault(str(track or default_track), []).extend(times)
    return {track: times for track, times in laps.items() if times}


def run_summary(runs: Path, name: str) -> dict[str, Any]:
    """One row of the runs page: tracks, algorithm, sensors, steps, best validation, best lap, status."""
    run = RunDir(run_path(runs, name))
    if not run.is_run():
        raise RunViewError(f"run {name!r}: no such run (no config.json in {run.path.name})")
    try:
        config = run.load_config()
        state = run.load_state()
    except RunError as exc:
        return {"name": name, "status": "broken", "error": str(exc)}
    progress = read_csv_rows(run.progress_csv, limit=1)
    steps = int(state.get("timesteps", 0))
    if progress and isinstance(progress[-1].get("timesteps"), int):
        steps = max(steps, progress[-1]["timesteps"])
    tracks = [Path(t).stem if t.endswith(".npy") else t for t in config.training_tracks]
    laps = laps_by_track(run, tracks[0])
    best_lap, best_lap_track = min(((min(times), track) for track, times in laps.items()), default=(None, None))
    pid = training_pid(run)
    if pid is not None:
        status = "training"
    elif not run.has_checkpoint():
        status = "new"
    elif int(state.get("timesteps", 0)) >= config.steps:
        status = "done"
    else:
        status = "stopped"
    best = state.get("best")
    return {
        "name": name,
        "tracks": tracks,
        "algo": config.algo,
        "sensors": list(config.sensors),
        "steps": steps,
        "target_steps": config.steps,
        "best_validation": {"mean_progress": best[0], "best_lap_s": best[1]} if best else None,
        "best_lap_s": round(best_lap, 3) if best_lap is not None else None,
        "best_lap_track": best_lap_track,
        "status": status,
        "pid": pid,
        "resumable": run.has_checkpoint() and pid is None,
        "exported": (run.export_dir / "model.onnx").is_file(),
        "camera": run.camera_snapshot.is_file(),
        "evaluations": len(evaluations(run)),
    }


def run_details(runs: Path, name: str) -> dict[str, Any]:
    """The run page's header: its summary and its settings (config.json)."""
    run = RunDir(run_path(runs, name)).require()
    summary = run_summary(runs, name)
    try:
        summary["config"] = json.loads(run.config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        summary["config"] = None
    return summary


def curves(runs: Path, name: str) -> dict[str, list[dict[str, Any]]]:
    """The live curves: progress.csv (per policy update: mean reward, progress, completion),
    evaluations.csv (per evaluation, with its best lap) and validation.csv rows."""
    run = RunDir(run_path(runs, name)).require()
    evaluation_rows = read_csv_rows(run.evaluations_csv)
    for row in evaluation_rows:
        times = _lap_times(row.get("lap_times_s"))
        row["lap_times_s"] = times
        row["best_lap_s"] = min(times) if times else None
    validation_rows = read_csv_rows(run.validation_csv)
    for row in validation_rows:
        row["lap_times_s"] = _lap_times(row.get("lap_times_s"))
    return {"progress": read_csv_rows(run.progress_csv), "evaluations": evaluation_rows, "validation": validation_rows}


def _recent_simtraces(run: RunDir) -> list[Path]:
    return [path for _, path in run.training_simtraces()][-SIMTRACE_ITERATIONS:]


def actions(runs: Path, name: str) -> dict[str, Any]:
    """The action histogram of the newest training iterations (`plots.action_histogram`) with the actions."""
    from .action_space import ActionSpace
    from .plots import action_histogram

    run = RunDir(run_path(runs, name)).require()
    space = ActionSpace.load(run.metadata_path)
    n = len(space.actions) if space.kind == "discrete" else None
    simtraces = _recent_simtraces(run)
    histogram = action_histogram(simtraces, n) if simtraces else {"kind": "action", "counts": [0] * (n or 0)}
    if space.kind == "discrete":
        histogram["actions"] = [{"steering_angle": float(s), "speed": float(v)} for s, v in space.actions]
    histogram["iterations"] = len(simtraces)
    return histogram


def heatmap(runs: Path, name: str) -> dict[str, Any]:
    """The reward heat map of the newest training iterations (`plots.reward_grid`) and the track's
    borders, on the run's (first) track; multi-track runs have none (their steps are on several)."""
    from .plots import reward_grid
    from .run_tracks import track_path
    from .track import Track

    run = RunDir(run_path(runs, name)).require()
    config = run.load_config()
    track = Track.load(track_path(config.track, run))
    out: dict[str, Any] = {
        "track": track.name,
        "inner": track.inner.round(3).tolist(),
        "outer": track.outer.round(3).tolist(),
        "center": track.waypoints.round(3).tolist(),
        "closed": bool(track.closed),
    }
    simtraces = _recent_simtraces(run)
    if config.tracks or not simtraces:
        out.update(x_edges=[], y_edges=[], mean_reward=[], steps=0)
        return out
    xe, ye, mean, steps = reward_grid(track, simtraces)
    grid = [[None if math.isnan(v) else round(float(v), 4) for v in column] for column in mean]
    out.update(x_edges=xe.round(3).tolist(), y_edges=ye.round(3).tolist(), mean_reward=grid, steps=steps)
    return out


def _laps_of_runs(runs: Path) -> Iterator[tuple[str, TrainConfig, list[str], dict[str, list[float]]]]:
    """Each run with a readable config: its name, config, training tracks (names) and lap times (s) by track."""
    for name in run_names(runs):
        run = RunDir(runs / name)
        try:
            config = run.load_config()
        except RunError:
            continue
        tracks = [Path(t).stem if t.endswith(".npy") else t for t in config.training_tracks]
        yield name, config, tracks, laps_by_track(run, tracks[0])


def leaderboard(runs: Path, track: str) -> list[dict[str, Any]]:
    """The runs that completed laps on `track`, fastest first: their best lap, laps recorded, algorithm."""
    rows = []
    for name, config, tracks, laps in _laps_of_runs(runs):
        times = laps.get(track)
        if times:
            rows.append(
                {
                    "run": name,
                    "best_lap_s": round(min(times), 3),
                    "laps": len(times),
                    "algo": config.algo,
                    "trained_on": tracks,
                }
            )
    rows.sort(key=lambda r: r["best_lap_s"])
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def leaderboard_tracks(runs: Path) -> list[str]:
    """The tracks some run recorded a lap on."""
    found: set[str] = set()
    for _, _, _, laps in _laps_of_runs(runs):
        found.update(laps)
    return sorted(found)


def export_archive(runs: Path, name: str) -> bytes:
    """The run's export (model.onnx, model_metadata.json, SHA256SUMS, the OpenVINO IR when exported)
    as one zip, made in memory; RunViewError when the run has not been exported yet."""
    run = RunDir(run_path(runs, name)).require()
    folder = run.export_dir
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if not any(p.name.endswith(".onnx") for p in files):
        raise RunViewError(f"run {name!r} has no export yet: export it first (deepracer-rl export {run.path})")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, f"{name}/{path.name}")
    return buffer.getvalue()
