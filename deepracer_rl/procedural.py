"""Procedurally generated closed tracks with DeepRacer-like lengths, widths and curvature (`random:N`).

A track is a smooth random loop: control points round a circle at jittered angles and radii,
joined by a periodic cubic spline, resampled every ~0.25 m, scaled to a drawn centre-line length
and given a constant road width. A draw is kept only if it passes the shipped tracks' checks
(`Track.from_array`) and keeps DeepRacer's geometry: the tightest centre-line radius at least
`MIN_RADIUS_M` (the shipped tracks' tightest corners are 0.42-1.8 m, 10th percentile 0.62 m) and
at least 1.5 road widths between parts of the loop that are not neighbours along it (room for a
barrier). The same seed always gives the same tracks.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from .track import Track

LENGTH_RANGE_M = (17.0, 60.0)  # centre-line length: shipped loops are 17-77 m (median 50 m)
WIDTH_RANGE_M = (0.76, 1.07)  # road width: shipped loops 0.67-1.45 m, most 0.76 or 1.07 m
MIN_RADIUS_M = 0.6  # tightest centre-line radius
SPACING_M = 0.25  # metres between waypoints (shipped routes: 0.1-0.6 m)
MAX_TRIES = 200


def random_track(rng: np.random.Generator, name: str = "random") -> Track:
    """One random closed track drawn from `rng` (redrawn until it passes the checks)."""
    for _ in range(MAX_TRIES):
        rows = _draw(rng)
        if rows is None:
            continue
        try:
            return Track.from_array(rows, name=name, source=f"<procedural {name}>")
        except ValueError:
            continue
    raise RuntimeError(f"no valid random track in {MAX_TRIES} draws")  # pragma: no cover (never seen)


def random_tracks(n: int, seed: int, prefix: str = "random") -> list[tuple[str, np.ndarray]]:
    """`n` random tracks from `seed`: (name, (N+1, 6) route rows as a DeepRacer .npy holds them)."""
    if n < 1:
        raise ValueError(f"the number of random tracks must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        name = f"{prefix}_{seed}_{k:03d}"
        track = random_track(rng, name)
        rows = np.hstack([track.waypoints, track.inner, track.outer])
        out.append((name, np.vstack([rows, rows[:1]])))
    return out


def write_random_tracks(n: int, seed: int, folder: str | Path) -> list[Path]:
    """Write `n` random tracks from `seed` as `.npy` routes into `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in random_tracks(n, seed):
        path = folder / f"{name}.npy"
        if not path.exists():  # an existing file is the same draw (names carry the seed and index)
            np.save(path, rows)
        paths.append(path)
    return paths


def _draw(rng: np.random.Generator) -> np.ndarray | None:
    """Route rows (N, 6) of one draw, or None if its geometry is not DeepRacer-like."""
    k = int(rng.integers(6, 13))
    angles = np.sort((np.arange(k) + rng.uniform(-0.35, 0.35, k)) * 2 * math.pi / k)
    radii = 1.0 + rng.uniform(-0.45, 0.45, k)
    aspect = rng.uniform(1.0, 2.2)
    points = np.column_stack([aspect * radii * np.cos(angles), radii * np.sin(angles)])
    closed = np.vstack([points, points[:1]])
    t = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    spline = CubicSpline(t, closed, bc_type="periodic")
    dense = spline(np.linspace(0.0, t[-1], 2000, endpoint=False))
    length = float(np.linalg.norm(np.diff(np.vstack([dense, dense[:1]]), axis=0), axis=1).sum())
    target = rng.uniform(*LENGTH_RANGE_M)
    width = rng.uniform(*WIDTH_RANGE_M)
    scale = target / length
    n = max(40, int(round(target / SPACING_M)))
    # resample evenly by arc length
    seg = np.linalg.norm(np.diff(np.vstack([dense, dense[:1]]), axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    loop = np.vstack([dense, dense[:1]])
    s = np.linspace(0.0, arc[-1], n, endpoint=False)
    centre = np.column_stack([np.interp(s, arc, loop[:, 0]), np.interp(s, arc, loop[:, 1])]) * scale
    centre -= centre.mean(axis=0)
    if np.signbit(_signed_area(centre)):  # counter-clockwise, as most shipped loops
        centre = centre[::-1]
    ahead, behind = np.roll(centre, -1, axis=0), np.roll(centre, 1, axis=0)
    tangent = ahead - behind
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    if _min_radius(centre) < max(MIN_RADIUS_M, 0.75 * width):
        return None
    if not _clear_of_itself(centre, width):
        return None
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])  # left of the driving direction
    inner, outer = centre + 0.5 * width * normal, centre - 0.5 * width * normal  # ccw: inner is on the left
    return np.hstack([centre, inner, outer])


def _signed_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _min_radius(points: np.ndarray, step: int = 2) -> float:
    """The tightest radius of the loop (circumradius of points `step` apart)."""
    a, b, c = np.roll(points, step, axis=0), points, np.roll(points, -step, axis=0)
    ab, bc, ca = (np.linalg.norm(u - v, axis=1) for u, v in ((b, a), (c, b), (a, c)))
    cross = np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    return float(np.min(ab * bc * ca / np.maximum(2 * cross, 1e-12)))


def _clear_of_itself(points: np.ndarray, width: float) -> bool:
    """At least 1.5 road widths between points of the loop more than 3 road widths apart along it."""
    n = len(points)
    spacing = float(np.mean(np.linalg.norm(points - np.roll(points, 1, axis=0), axis=1)))
    gap = np.linalg.norm(points[:, None] - points[None], axis=2)
    index = np.arange(n)
    along = np.abs(index[:, None] - index[None])
    along = np.minimum(along, n - along) * spacing
    far = along > 3.0 * width + 1.5 * width  # beyond the neighbourhood where the loop curls back
    return bool(np.all(gap[far] >= 1.5 * width))
