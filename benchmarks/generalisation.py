"""Generalisation: completed laps on shipped tracks a model never trained on, plain and under each
camera perturbation of `deepracer_rl.robustness.PERTURBATIONS` (brightness 0.6 / 1.5, blur 2 px,
noise 8, JPEG quality 30, pitch +-0.05 rad, height +2 cm).

Run: python benchmarks/generalisation.py [--model RUN_OR_EXPORT] [--laps 3] [--seed 0] [--track T ...]
The split (default `HELD_OUT`): shipped tracks outside the 8 that shipped first (the tracks models
of this project were trained on), of every family and size; a run's own training track is
dropped from it. The scripted baseline drives from poses, not the camera, so it is measured on the
plain camera only (the perturbations cannot change its laps); a model gets the whole table.
Prints one JSON line: {tracks, laps, seed, baseline: {...}, model: {...} | null, seconds}.
Issue 14's targets for a general model: >= 95 % of laps plain, >= 90 % under every perturbation.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from deepracer_rl.robustness import robustness_table
from deepracer_rl.rundir import RunDir

HELD_OUT = [
    "2022_april_open",
    "2022_may_pro",
    "2022_october_open_cw",
    "AWS_track",
    "Canada_Training",
    "Mexico_track",
    "Tokyo_Training_track",
    "caecer_loop",
    "dubai_open",
    "red_star_open",
]


def summary(table: dict) -> dict:
    """The table's totals: completed/attempted laps and the share, per perturbation and in all."""
    rows = {
        name: dict(counts, share=round(counts["completed_laps"] / counts["attempted_laps"], 3))
        for name, counts in table["by_perturbation"].items()
    }
    return {
        "driver": table["driver"],
        "completed_laps": table["completed_laps"],
        "attempted_laps": table["attempted_laps"],
        "by_perturbation": rows,
        "cells": table["cells"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a run directory, a model .zip in a run, or an export dir")
    parser.add_argument("--track", action="append", default=None, help=f"held-out tracks (default: {HELD_OUT})")
    parser.add_argument("--laps", type=int, default=3, help="laps per track and perturbation (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="where the spread starts begin (default: 0)")
    args = parser.parse_args()

    tracks = list(args.track or HELD_OUT)
    if args.model and RunDir(Path(args.model)).is_run():
        trained_on = RunDir(Path(args.model)).load_config().track
        tracks = [t for t in tracks if Path(t).stem != Path(trained_on).stem]
    start = time.perf_counter()
    baseline = robustness_table(
        None, tracks, laps=args.laps, driver="baseline", seed=args.seed, perturbations={"none": {}}
    )
    model = robustness_table(args.model, tracks, laps=args.laps, seed=args.seed) if args.model else None
    result = {
        "tracks": tracks,
        "laps": args.laps,
        "seed": args.seed,
        "baseline": summary(baseline),
        "model": summary(model) if model is not None else None,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
