"""Racing lines of the shipped tracks: predicted and driven lap times against the baseline.

Run: python benchmarks/raceline.py [--tracks reinvent_base ...] [--reverse]
For each track (and direction with --reverse): the racing line's predicted lap from standstill
(s), the lap the tracking driver drives on it in the in-process simulator (s), their ratio, the
centre line's own speed-profile lap, the scripted pure-pursuit baseline's evaluation lap (s) and
the optimisation's wall time (s). One line per track, then one JSON line of everything.
"""

from __future__ import annotations

import argparse
import json
import time

from deepracer_rl.evaluate import baseline_driver, run_laps
from deepracer_rl.race import RaceCore
from deepracer_rl.raceline import compute_raceline
from deepracer_rl.racing import verify_raceline
from deepracer_rl.track import Track, available_tracks


def baseline_lap(track: Track) -> float | None:
    """The pure-pursuit baseline's evaluation lap (s) on `track`, None if it does not complete one."""
    core = RaceCore.create(track=track, n_cars=1, sensors=False)
    try:
        return run_laps(core, baseline_driver(), laps=1).best_lap_s
    finally:
        core.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", nargs="*", default=None, help="default: every shipped track")
    parser.add_argument("--reverse", action="store_true", help="both directions of each track")
    args = parser.parse_args()
    rows = []
    started = time.perf_counter()
    for name in args.tracks or available_tracks():
        for reverse in (False, True) if args.reverse else (False,):
            line = compute_raceline(name, reverse=reverse)
            driven = verify_raceline(line)["driven_lap_s"]
            base = baseline_lap(line.track)
            row = {
                "track": line.track.name,
                "predicted_lap_s": round(line.predicted_lap_s, 3),
                "predicted_flying_lap_s": line.summary()["predicted_flying_lap_s"],
                "driven_lap_s": driven,
                "driven_vs_predicted": None if driven is None else round(driven / line.predicted_lap_s, 3),
                "centerline_lap_s": round(line.centerline.lap_s, 3),
                "baseline_lap_s": None if base is None else round(base, 3),
                "optimisation_s": round(line.seconds, 2),
            }
            rows.append(row)
            print(
                f"{row['track']:<32} predicted {row['predicted_lap_s']:6.3f} s  "
                f"driven {driven or float('nan'):6.3f} s  "
                f"({row['driven_vs_predicted']})  centre line {row['centerline_lap_s']:6.3f} s  "
                f"baseline {row['baseline_lap_s'] or float('nan'):6.3f} s  optimised in {row['optimisation_s']:5.2f} s",
                flush=True,
            )
    print(json.dumps({"tracks": rows, "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
