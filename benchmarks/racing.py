"""The racing recipe on four tracks: the learned lap of each shipped model against the racing line.

Run: python benchmarks/racing.py [--tracks reinvent_base ...] [--laps 3]
     python benchmarks/racing.py --record RUN [--model DIR]   # write DIR/training.json from a run

Per track (default: reinvent_base, Oval_track, Bowtie_track, reInvent2019_track): the racing
line's predicted lap and the lap its tracking driver drives (`deepracer-rl raceline TRACK --verify`),
the scripted baseline's evaluation lap (`deepracer-rl evaluate --driver baseline`), the learned lap
of the recipe's shipped model `models/racing_<track>/` (`deepracer-rl evaluate MODEL --laps 3`: the
mean of the completed laps), its training minutes (the model's `training.json`, written from the
run's records by `--record`: the whole run and until its best model), and the ratio learned /
driven optimum against the target of 1.15 (issue 19: met only when every lap completes; the
slowest lap's ratio is given too). Nothing is trained. One line per track on stderr,
then one JSON line on stdout. Used for docs/racing.md ("The recipe on four tracks").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from deepracer_rl.evaluate_runs import evaluate_target
from deepracer_rl.raceline import compute_raceline
from deepracer_rl.racing import TRAINING_RECORD, read_training_record, verify_raceline, write_training_record

MODELS = Path(__file__).resolve().parents[1] / "models"
TRACKS = ("reinvent_base", "Oval_track", "Bowtie_track", "reInvent2019_track")
TARGET = 1.15  # issue 19: a learned lap within 15 % of the driven optimum


def learned_laps(model: Path, track: str, laps: int) -> dict[str, Any]:
    """`deepracer-rl evaluate MODEL --track TRACK --laps LAPS` of a shipped export."""
    report = evaluate_target(str(model), track=track, laps=laps, simtrace=False).report
    times = [round(t, 3) for t in report.lap_times_s]
    return {
        "learned_lap_s": round(sum(times) / len(times), 3) if times else None,
        "learned_lap_times_s": times,
        "learned_completed_laps": report.completed_laps,
        "learned_attempted_laps": report.laps,
    }


def track_row(track: str, laps: int, models: Path = MODELS) -> dict[str, Any]:
    """The figures of one track (see the module docstring)."""
    line = compute_raceline(track)
    driven = verify_raceline(line)["driven_lap_s"]
    baseline = evaluate_target(None, track=track, laps=1, driver="baseline", simtrace=False).report.best_lap_s
    row: dict[str, Any] = {
        "track": track,
        "predicted_lap_s": round(line.predicted_lap_s, 3),
        "driven_lap_s": driven,
        "baseline_lap_s": None if baseline is None else round(baseline, 3),
    }
    model = models / f"racing_{track}"
    if not (model / "model.onnx").exists():
        row.update(model=None, learned_lap_s=None, ratio=None, within_target=False)
        return row
    row["model"] = str(model.relative_to(models.parent)) if model.is_relative_to(models.parent) else str(model)
    row.update(learned_laps(model, track, laps))
    record = read_training_record(model)
    row["training_minutes"] = record.get("minutes")
    row["best_model_minutes"] = record.get("best", {}).get("minutes")
    row["training_steps"] = record.get("timesteps")
    learned = row["learned_lap_s"]
    row["ratio"] = None if learned is None or not driven else round(learned / driven, 3)
    times = row["learned_lap_times_s"]
    row["ratio_slowest_lap"] = round(max(times) / driven, 3) if times and driven else None
    row["within_target"] = bool(
        row["ratio"] is not None and row["ratio"] <= TARGET and row["learned_completed_laps"] == laps
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", nargs="*", default=list(TRACKS))
    parser.add_argument("--laps", type=int, default=3, help="evaluation laps of each model (default: %(default)s)")
    parser.add_argument("--models", default=str(MODELS), help="folder of racing_<track>/ exports")
    parser.add_argument("--record", metavar="RUN", help=f"write {TRAINING_RECORD} of RUN into --model, then stop")
    parser.add_argument("--model", help="--record: the export dir (default: models/racing_<the run's track>)")
    args = parser.parse_args()
    if args.record:
        path = write_training_record(args.record, args.model)
        print(f"wrote {path}: {path.read_text(encoding='utf-8').strip()}")
        return
    started = time.perf_counter()
    rows = []
    for track in args.tracks:
        row = track_row(track, args.laps, Path(args.models))
        rows.append(row)
        print(
            f"{track:<20} predicted {row['predicted_lap_s']:.3f} s  driven {row['driven_lap_s']} s  "
            f"baseline {row['baseline_lap_s']} s  learned {row.get('learned_lap_s')} s "
            f"({row.get('learned_completed_laps')}/{args.laps} laps, {row.get('training_minutes')} min)  "
            f"ratio {row['ratio']}  within {TARGET}: {row['within_target']}",
            file=sys.stderr,
            flush=True,
        )
    summary = {
        "target_ratio": TARGET,
        "all_within_target": all(r["within_target"] for r in rows),
        "tracks": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
