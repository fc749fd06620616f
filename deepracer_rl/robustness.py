"""`deepracer-rl robustness`: completed laps of a policy on tracks x camera perturbations.

Each perturbation is one fixed change of the camera (`camera.CameraPerturbation`) at the level
the generalisation issue names (issue 14: a policy that drives 3/3 laps flips to 0/3 under these);
every cell is `evaluate_runs.evaluate_target` with the model loaded once. The table is JSON, the
heat map a PNG (completion % per track and perturbation).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .camera import CameraPerturbation
from .evaluate_runs import evaluate_target, load_subject
from .track import Track

# Name -> the perturbation's fields. "none" is the plain camera, the reference row.
PERTURBATIONS: dict[str, dict[str, float]] = {
    "none": {},
    "brightness 0.6": {"brightness": 0.6},
    "brightness 1.5": {"brightness": 1.5},
    "blur 2 px": {"blur_px": 2.0},
    "noise 8": {"noise_std": 8.0},
    "jpeg 30": {"jpeg_quality": 30},
    "pitch +0.05 rad": {"camera_pitch_rad": 0.05},
    "pitch -0.05 rad": {"camera_pitch_rad": -0.05},
    "height +2 cm": {"camera_height_m": 0.02},
}


def robustness_table(
    model: str | os.PathLike | None,
    tracks: Sequence[str | os.PathLike] | None = None,
    laps: int = 3,
    driver: str = "policy",
    seed: int | None = None,
    perturbations: dict[str, dict[str, float]] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate `laps` laps per track under each perturbation (default `PERTURBATIONS`); returns
    {driver, laps, seed, tracks, perturbations, cells: [{perturbation, track, completed_laps,
    attempted_laps, off_track, lap_times_s}], by_perturbation: {name: {completed_laps, attempted_laps}},
    completed_laps, attempted_laps}. `log` is told of each finished perturbation."""
    chosen = PERTURBATIONS if perturbations is None else perturbations
    settings = {name: CameraPerturbation(**fields) for name, fields in chosen.items()}  # checked before driving
    loaded = [Track.load(t) for t in (tracks or ["reinvent_base"])]
    subject = load_subject(model, driver)
    cells: list[dict[str, Any]] = []
    by_perturbation: dict[str, dict[str, int]] = {}
    for name, perturbation in settings.items():
        result = evaluate_target(subject, loaded, laps=laps, seed=seed, perturbation=perturbation, simtrace=False)
        for row in result.results:
            report = row.report
            cells.append(
                {
                    "perturbation": name,
                    "track": row.track,
                    "completed_laps": report.completed_laps,
                    "attempted_laps": report.laps,
                    "off_track": report.off_track,
                    "lap_times_s": [round(t, 3) for t in report.lap_times_s],
                }
            )
        total = result.report
        by_perturbation[name] = {"completed_laps": total.completed_laps, "attempted_laps": total.laps}
        if log is not None:
            log(f"{name}: {total.completed_laps}/{total.laps} laps")
    return {
        "driver": subject.label,
        "laps": laps,
        "seed": seed,
        "tracks": [t.name for t in loaded],
        "perturbations": {name: p.changes() for name, p in settings.items()},
        "cells": cells,
        "by_perturbation": by_perturbation,
        "completed_laps": sum(c["completed_laps"] for c in cells),
        "attempted_laps": sum(c["attempted_laps"] for c in cells),
    }


def write_heatmap(table: dict[str, Any], path: str | os.PathLike) -> Path:
    """A PNG heat map of a `robustness_table`: completion % per track (rows) and perturbation (columns)."""
    from .plots import _pyplot

    plt = _pyplot()
    names, tracks = list(table["perturbations"]), table["tracks"]
    grid = [[0.0] * len(names) for _ in tracks]
    for cell in table["cells"]:
        share = cell["completed_laps"] / cell["attempted_laps"] if cell["attempted_laps"] else 0.0
        grid[tracks.index(cell["track"])][names.index(cell["perturbation"])] = 100.0 * share
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(names), 1.2 + 0.4 * len(tracks)))
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=40, ha="right")
    ax.set_yticks(range(len(tracks)), tracks)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="laps completed %")
    ax.set_title(f"{table['driver']}: {table['completed_laps']}/{table['attempted_laps']} laps", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
