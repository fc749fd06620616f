"""`deepracer-rl plot RUN`: PNGs of a run's training progress, best lap, rewards and actions."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from .logs import read_simtrace
from .simtrace import PREPARE
from .track import Track


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    out = {}
    for key in rows[0]:
        try:
            out[key] = np.array([float(r[key]) for r in rows])
        except (TypeError, ValueError):
            out[key] = np.array([r[key] for r in rows])
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _draw_track(ax, track: Track) -> None:
    for line, style in ((track.inner, "k-"), (track.outer, "k-"), (track.waypoints, "k:")):
        pts = np.vstack([line, line[:1]]) if track.closed else line
        ax.plot(pts[:, 0], pts[:, 1], style, linewidth=0.8 if style == "k:" else 1.2)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


def plot_training(progress_csv: Path, out: Path) -> Path:
    plt = _pyplot()
    data = _read_csv(progress_csv)
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    x = data.get("iteration", np.array([]))
    for ax, key, label in zip(
        axes,
        ("mean_reward", "mean_progress", "completion_rate"),
        ("mean episode reward", "mean progress (%)", "lap completion rate"),
    ):
        ax.plot(x, data.get(key, np.zeros_like(x)), "-", color="tab:blue")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("iteration (policy update)")
    fig.suptitle("Training progress")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_lap(track: Track, trajectory_csv: Path, out: Path) -> Path:
    plt = _pyplot()
    data = _read_csv(trajectory_csv)
    fig, ax = plt.subplots(figsize=(9, 6))
    _draw_track(ax, track)
    if data:
        laps = data["lap"].astype(int)
        statuses = data["status"]
        complete = [lap for lap in np.unique(laps) if "lap_complete" in statuses[laps == lap]]
        # The best lap: the fastest complete one, else the one that got furthest.
        if complete:
            best = min(complete, key=lambda lap: np.count_nonzero(laps == lap))
        else:
            best = max(np.unique(laps), key=lambda lap: data["progress"][laps == lap].max())
        sel = laps == best
        points = ax.scatter(data["x"][sel], data["y"][sel], c=data["speed"][sel], cmap="viridis", s=12)
        fig.colorbar(points, ax=ax, label="speed (m/s)")
        ax.set_title(
            f"Best evaluation lap {best + 1} on {track.name}: "
            f"{data['time_s'][sel].max():.2f} s, {data['progress'][sel].max():.0f} %"
        )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_raceline(track: Track, points: np.ndarray, speed: np.ndarray, title: str, out: Path) -> Path:
    """The track with a line (m, track frame) drawn in the colour of its speed (m/s)."""
    from matplotlib.collections import LineCollection

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6))
    _draw_track(ax, track)
    line = np.vstack([points, points[:1]]) if track.closed else points
    values = np.append(speed, speed[:1]) if track.closed else speed
    segments = np.stack([line[:-1], line[1:]], axis=1)
    lines = LineCollection(segments, cmap="plasma", linewidths=2.5)
    lines.set_array(0.5 * (values[:-1] + values[1:]))
    ax.add_collection(lines)
    fig.colorbar(lines, ax=ax, label="speed (m/s)")
    ax.plot(points[0, 0], points[0, 1], "o", color="tab:green", label="start line")
    ax.legend(loc="best")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def reward_grid(
    track: Track, simtraces: list[Path], max_rows: int = 400_000, bins: tuple[int, int] = (90, 60)
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Mean reward per step over the track from training simtrace files: x edges, y edges, the
    (x bins, y bins) grid of means (NaN where no step fell) and the steps used (the last `max_rows`)."""
    data = _read_csv_columns(simtraces, ("X", "Y", "reward"), max_rows)
    xs = np.concatenate([track.inner[:, 0], track.outer[:, 0]])
    ys = np.concatenate([track.inner[:, 1], track.outer[:, 1]])
    edges = (
        np.linspace(xs.min() - 0.3, xs.max() + 0.3, bins[0]),
        np.linspace(ys.min() - 0.3, ys.max() + 0.3, bins[1]),
    )
    total, xe, ye = np.histogram2d(data["X"], data["Y"], bins=edges, weights=data["reward"])
    count, _, _ = np.histogram2d(data["X"], data["Y"], bins=edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    return xe, ye, mean, len(data["X"])


def plot_reward_heatmap(track: Track, simtraces: list[Path], out: Path, max_rows: int = 400_000) -> Path:
    """Mean reward per step over the track, from the training simtrace files (in iteration order)."""
    plt = _pyplot()
    xe, ye, mean, steps = reward_grid(track, simtraces, max_rows)
    fig, ax = plt.subplots(figsize=(9, 6))
    _draw_track(ax, track)
    if steps:
        mesh = ax.pcolormesh(xe, ye, mean.T, cmap="magma", shading="auto")
        fig.colorbar(mesh, ax=ax, label="mean reward per step")
    ax.set_title(f"Reward over the track (last {steps} training steps)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def action_histogram(simtraces: list[Path], n_actions: int | None, max_rows: int = 400_000) -> dict:
    """How often each action was taken in the training simtrace files (the last `max_rows` steps):
    {"kind": "action", "counts": per action index} for a discrete space, else
    {"kind": "steering", "edges": 32 steering-angle bin edges (deg), "counts": 31 counts}."""
    data = _read_csv_columns(simtraces, ("steer", "throttle", "action"), max_rows, numeric=False)
    actions = data["action"]
    if n_actions and len(actions) and all(a.lstrip("-").isdigit() for a in actions[:100]):
        counts = np.bincount(actions.astype(int), minlength=n_actions)
        return {"kind": "action", "counts": counts.tolist()}
    steer = data["steer"].astype(float) if len(actions) else np.array([])
    counts, edges = np.histogram(steer, bins=31, range=(-30.0, 30.0) if not len(steer) else None)
    return {"kind": "steering", "edges": edges.tolist(), "counts": counts.tolist()}


def plot_actions(simtraces: list[Path], n_actions: int | None, out: Path, max_rows: int = 400_000) -> Path:
    """How often each action (or steering angle) was taken, from the training simtrace files."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    histogram = action_histogram(simtraces, n_actions, max_rows)
    counts = np.asarray(histogram["counts"])
    if histogram["kind"] == "action":
        ax.bar(np.arange(len(counts)), counts, color="tab:green")
        ax.set_xlabel("action index")
    else:
        edges = np.asarray(histogram["edges"])
        ax.stairs(counts, edges, fill=True, color="tab:green")
        ax.set_xlabel("steering angle (deg)")
    ax.set_ylabel("steps")
    ax.set_title("Actions taken in training")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _read_csv_columns(
    paths: list[Path], columns: tuple[str, ...], max_rows: int, numeric: bool = True
) -> dict[str, np.ndarray]:
    """Some columns of simtrace files' steps (not their `prepare` rows), keeping the last
    `max_rows` rows (the trained policy)."""
    values: dict[str, list] = {c: [] for c in columns}
    for row in read_simtrace(paths):
        if row["episode_status"] == PREPARE:
            continue
        for c in columns:
            values[c].append(row[c])
    out = {}
    for c in columns:
        kept = values[c][-max_rows:]
        out[c] = np.array(kept, dtype=float) if numeric else np.array(kept, dtype=str)
    return out


def plot_tracks(progress_tracks_csv: Path, out: Path, last: int = 10) -> Path:
    """Multi-track runs: each training track's completion rate and mean progress over the last
    `last` policy updates (episodes weighted), one bar pair per track."""
    import csv

    import matplotlib.pyplot as plt

    with open(progress_tracks_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    iterations = sorted({int(r["iteration"]) for r in rows})[-last:]
    totals: dict[str, list[float]] = {}
    for r in rows:
        if int(r["iteration"]) in iterations:
            n = float(r["episodes"])
            t = totals.setdefault(r["track"], [0.0, 0.0, 0.0])
            t[0] += n
            t[1] += n * float(r["completion_rate"])
            t[2] += n * float(r["mean_progress"])
    names = sorted(totals)
    completion = [100 * totals[n][1] / totals[n][0] for n in names]
    progress = [totals[n][2] / totals[n][0] for n in names]
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names) + 2), 4))
    x = np.arange(len(names))
    ax.bar(x - 0.2, progress, 0.4, label="mean progress %")
    ax.bar(x + 0.2, completion, 0.4, label="laps completed %")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_title(f"training tracks, last {len(iterations)} policy updates")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_run(run: str | os.PathLike) -> list[Path]:
    """All plots of a run directory into RUN/plots/."""
    from .action_space import ActionSpace
    from .run_tracks import track_path
    from .rundir import RunDir

    run_dir = RunDir(run).require()
    config = run_dir.load_config()
    track = Track.load(track_path(config.track, run_dir))
    plots = run_dir.plots_dir
    plots.mkdir(exist_ok=True)
    written = []
    if run_dir.progress_csv.exists():
        written.append(plot_training(run_dir.progress_csv, plots / "training_progress.png"))
    if run_dir.progress_tracks_csv.exists():
        written.append(plot_tracks(run_dir.progress_tracks_csv, plots / "training_tracks.png"))
    if run_dir.evaluation_trajectory.exists():
        written.append(plot_lap(track, run_dir.evaluation_trajectory, plots / "best_lap.png"))
    simtraces = [path for _, path in run_dir.training_simtraces()]
    if simtraces and not config.tracks:  # a multi-track simtrace's steps are on several tracks
        written.append(plot_reward_heatmap(track, simtraces, plots / "reward_heatmap.png"))
        space = ActionSpace.load(run_dir.metadata_path)
        n = len(space.actions) if space.kind == "discrete" else None
        written.append(plot_actions(simtraces, n, plots / "action_histogram.png"))
    return written
