"""Track geometry speed: points per second for project, contains and closest_waypoints.

Run: python benchmarks/geometry.py [--track reinvent_base] [--points 10000]
The points are uniform over the track's bounding box plus a margin (on and off the road).
Prints the best of a few repeats, then one JSON line. Target: >= 100k points/s each.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from deepracer_rl.track import Track


def best_seconds(fn, repeats: int = 7) -> float:
    """Best wall time of `repeats` calls after a warm-up (best-of hides other processes)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="reinvent_base")
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    track = Track.load(args.track)
    borders = np.vstack([track.inner, track.outer])
    rng = np.random.default_rng(args.seed)
    points = rng.uniform(borders.min(axis=0) - 0.5, borders.max(axis=0) + 0.5, (args.points, 2))

    queries = {
        "project": lambda: track.project(points),
        "contains": lambda: track.contains(points),
        "closest_waypoints": lambda: track.closest_waypoints(points),
    }
    print(
        f"{track.name}: {track.num_segments} centre-line segments, "
        f"{len(track._road_edges)} border edges, {args.points} points"
    )
    figures = {}
    for name, fn in queries.items():
        seconds = best_seconds(fn)
        rate = args.points / seconds
        figures[f"points_per_s_{name}"] = round(rate)
        print(f"  {name:<18} {seconds * 1e3:8.2f} ms   {rate:12,.0f} points/s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
