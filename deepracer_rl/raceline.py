"""The minimum-time racing line of the simulator's own car model, and its speed profile.

Everything is in the track frame (x, y in metres); the line is the path of `base_link` (the
rear axle, where the simulator's poses are). The method (docs/racing.md has the figures):

1. Reference: the centre line resampled every `spacing` m; at each point its left normal and
   how far the road reaches along it on either side (rays cast against both borders), less
   `margin` (by default half the car's width from `car.CarSpec` plus `CLEARANCE`).
2. Minimum curvature: the lateral offsets (m, + = left) within those bounds that minimise
   sum |P''|^2 of the line's points P: a box-constrained quadratic programme (a projected
   active-set method, `_box_least_squares`).
3. Toward minimum time: blends sum |P''|^2 / ds^4 + lambda sum |P'|^2 / ds^2 (curvature against
   length) for a grid of lambda, each timed by the speed profile; the fastest one is then
   improved by L-BFGS-B (`scipy.optimize`) on the lap time itself over smooth bumps of the
   offsets (finite-difference gradients; the offsets are clipped to the bounds).
4. The speed profile of the car model (`sim.Dynamics`, `CarSpec`): v <= sqrt(grip g / |k|)
   (the simulator limits lateral acceleration only; it has no friction circle, so braking and
   cornering do not share grip), v <= the top speed; a forward pass accelerating at
   min(max_accel, (top speed - v) / speed lag) (a command never exceeds the top speed, and the
   speed follows the command with a first-order lag) and a backward pass braking at max_brake.

`predicted_lap_s` is a lap as evaluation laps drive it: from standstill on the start line
(the cross-section of centre-line waypoint 0) round to it again; `flying_lap_s` is a lap at
speed (closed tracks).
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .car import CarSpec
from .sim import GRAVITY, Dynamics
from .track import Track

CLEARANCE = 0.02  # m kept between the car's side and the border besides half its width (tracking error)
SPACING = 0.1  # m between the line's points
CSV_COLUMNS = ("x", "y", "speed", "curvature", "s")


class RacelineError(ValueError):
    """No racing line fits the track (e.g. the margin is wider than the road); the message says where."""


@dataclass(frozen=True)
class CarLimits:
    """What the speed profile obeys, all read from `sim.Dynamics` and `car.CarSpec`."""

    grip_accel: float  # m/s^2, lateral acceleration limit (grip * g)
    max_accel: float  # m/s^2
    max_brake: float  # m/s^2
    max_speed: float  # m/s, the highest speed command
    speed_rate: float  # 1/s, the speed lag's gain: dv/dt = rate * (command - v) within the limits
    max_curvature: float  # 1/m, tan(steering limit) / wheelbase
    wheelbase: float  # m
    width: float  # m, the car's overall width

    @classmethod
    def of(cls, car: CarSpec | None = None, dynamics: Dynamics | None = None) -> CarLimits:
        """The limits of `car` (default: the URDF's) under `dynamics` (default: the simulator's)."""
        car = car or CarSpec.from_urdf()
        d = dynamics or Dynamics()
        h = 1.0 / (car.control_hz * d.substeps)  # the physics step: the lag as the simulator integrates it
        return cls(
            grip_accel=d.grip * GRAVITY,
            max_accel=d.max_accel,
            max_brake=d.max_brake,
            max_speed=d.max_speed,
            speed_rate=(1.0 - math.exp(-h / d.speed_time_constant)) / h,
            max_curvature=math.tan(car.max_steer) / car.wheelbase,
            wheelbase=car.wheelbase,
            width=car.width,
        )

    @property
    def default_margin(self) -> float:
        """m between the line and each border: half the car's width plus `CLEARANCE`."""
        return 0.5 * self.width + CLEARANCE

    def steering_deg(self, curvature: np.ndarray) -> np.ndarray:
        """Front-wheel angle (degrees, + = left) that drives `curvature` (1/m) in the bicycle model."""
        return np.degrees(np.arctan(np.asarray(curvature) * self.wheelbase))


# ---- geometry ----------------------------------------------------------------------------------
def curvature_of(points: np.ndarray, closed: bool) -> np.ndarray:
    """Signed curvature (1/m, + = turning left) at each point: the circle through it and its neighbours."""
    p = np.asarray(points, dtype=np.float64)
    if closed:
        a, b, c = np.roll(p, 1, axis=0), p, np.roll(p, -1, axis=0)
    else:
        a = np.vstack([p[:1], p[:-1]])
        c = np.vstack([p[1:], p[-1:]])
        b = p
    u, w = b - a, c - b
    cross = u[:, 0] * w[:, 1] - u[:, 1] * w[:, 0]
    denom = np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1) * np.linalg.norm(c - a, axis=1)
    k = np.zeros(len(p))
    ok = denom > 1e-12
    k[ok] = 2.0 * cross[ok] / denom[ok]
    return k


def _segment_lengths(points: np.ndarray, closed: bool) -> np.ndarray:
    """Lengths (m) of the segments from each point to the next (N for a loop, N-1 otherwise)."""
    line = np.vstack([points, points[:1]]) if closed else points
    return np.linalg.norm(np.diff(line, axis=0), axis=1)


def speed_limits(curvature: np.ndarray, limits: CarLimits) -> np.ndarray:
    """The highest speed (m/s) at each point that the grip holds, at most the top speed."""
    k = np.abs(np.asarray(curvature, dtype=np.float64))
    with np.errstate(divide="ignore"):
        grip = np.sqrt(limits.grip_accel / np.maximum(k, 1e-12))
    return np.minimum(grip, limits.max_speed)


def _forward(v: list[float], ds: list[float], limits: CarLimits, order: list[int]) -> None:
    """Accelerate along `order` (indices; ds[order[j]] leads from order[j] to order[j+1]) in place."""
    a_max, rate, top = limits.max_accel, limits.speed_rate, limits.max_speed
    sqrt = math.sqrt
    prev = order[0]
    for i in order[1:]:
        vp = v[prev]
        accel = rate * (top - vp)
        if accel > a_max:
            accel = a_max
        elif accel < 0.0:
            accel = 0.0
        reach = sqrt(vp * vp + 2.0 * accel * ds[prev])
        if reach < v[i]:
            v[i] = reach
        prev = i


def _backward(v: list[float], ds: list[float], limits: CarLimits, order: list[int]) -> None:
    """Brake backwards along `order` (ds[order[j]] leads from order[j] to order[j+1]) in place."""
    twice_brake = 2.0 * limits.max_brake
    sqrt = math.sqrt
    nxt = order[-1]
    for i in order[-2::-1]:
        reach = sqrt(v[nxt] * v[nxt] + twice_brake * ds[i])
        if reach < v[i]:
            v[i] = reach
        nxt = i


def speed_profile(curvature: np.ndarray, ds: np.ndarray, limits: CarLimits, closed: bool) -> np.ndarray:
    """Speeds (m/s) at each point of a line at speed (closed) or from standstill at point 0 (open).

    `ds[i]`: metres from point i to the next. A loop starts its passes at the slowest corner,
    where the profile equals the grip limit, so one pass each way is exact.
    """
    limit = speed_limits(curvature, limits)
    n = len(limit)
    v, steps = limit.tolist(), np.asarray(ds, dtype=np.float64).tolist()
    if closed:
        start = int(np.argmin(limit))
        order = [(start + j) % n for j in range(n + 1)]
    else:
        v[0] = 0.0
        order = list(range(n))
    _forward(v, steps, limits, order)
    _backward(v, steps, limits, order)
    return np.array(v)


def standing_start_profile(
    curvature: np.ndarray, ds: np.ndarray, limits: CarLimits, closed: bool, flying: np.ndarray | None = None
) -> np.ndarray:
    """Speeds (m/s) of a lap from standstill at point 0: N+1 values for a loop (the last is point 0 again)."""
    if not closed:
        return speed_profile(curvature, ds, limits, closed=False)
    if flying is None:
        flying = speed_profile(curvature, ds, limits, closed=True)
    v = np.concatenate([speed_limits(curvature, limits), [flying[0]]]).tolist()
    v[0] = 0.0
    steps = np.append(ds, 0.0).tolist()
    order = list(range(len(v)))
    _forward(v, steps, limits, order)
    _backward(v, steps, limits, order)
    return np.array(v)


def lap_seconds(v: np.ndarray, ds: np.ndarray) -> float:
    """Seconds over the segments between consecutive speeds (len(ds) = len(v) - 1; mean speed per segment)."""
    mean = 0.5 * (v[:-1] + v[1:])
    return float(np.sum(ds / np.maximum(mean, 1e-9)))


def _loop(v: np.ndarray) -> np.ndarray:
    return np.append(v, v[0])


# ---- the reference and its bounds --------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """The resampled centre line, its left normals and how far the road reaches along them."""

    points: np.ndarray  # (N, 2) m
    normals: np.ndarray  # (N, 2) unit, to the left of the driving direction
    left: np.ndarray  # (N,) m from the point to the border along +normal
    right: np.ndarray  # (N,) m from the point to the border along -normal
    closed: bool
    spacing: float  # m between points along the centre line


def reference_of(track: Track, spacing: float = SPACING) -> Reference:
    """Resample the centre line of `track` every ~`spacing` m and cast rays to both borders."""
    count = max(8, int(round(track.length / spacing)))
    if track.closed:
        s = np.arange(count) * (track.length / count)
    else:
        s = np.linspace(0.0, track.length, count + 1)
    points, _ = track.point_at(s)
    closed = track.closed
    if closed:
        tangent = np.roll(points, -1, axis=0) - np.roll(points, 1, axis=0)
    else:
        tangent = np.gradient(points, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normals = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    edges = _border_edges(track)
    left = _ray_distance(points, normals, edges)
    right = _ray_distance(points, -normals, edges)
    missing = ~np.isfinite(left) | ~np.isfinite(right)
    if missing.any():
        i = int(np.argmax(missing))
        raise RacelineError(
            f"{track.name}: no border found across the road at {s[i]:.2f} m along the centre line; "
            "the track's borders do not enclose its centre line there"
        )
    return Reference(points, normals, left, right, closed, float(track.length / count))


def _border_edges(track: Track) -> np.ndarray:
    """(E, 2, 2) segments of both borders (and an open track's ends)."""
    if track.closed:
        rings = [np.vstack([b, b[:1]]) for b in (track.inner, track.outer)]
    else:
        rings = [np.vstack([track.outer, track.inner[::-1], track.outer[:1]])]
    return np.concatenate([np.stack([r[:-1], r[1:]], axis=1) for r in rings])


def _ray_distance(origins: np.ndarray, directions: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Distance (m) from each origin along its unit direction to the first edge it meets (inf if none)."""
    a = edges[None, :, 0]  # (1, E, 2)
    e = edges[None, :, 1] - a
    o = origins[:, None]
    d = directions[:, None]
    denom = d[..., 0] * e[..., 1] - d[..., 1] * e[..., 0]  # cross(d, e)
    rel = a - o
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (rel[..., 0] * e[..., 1] - rel[..., 1] * e[..., 0]) / denom
        u = (rel[..., 0] * d[..., 1] - rel[..., 1] * d[..., 0]) / denom
    hit = (np.abs(denom) > 1e-12) & (t > 1e-9) & (u >= -1e-9) & (u <= 1.0 + 1e-9)
    return np.where(hit, t, np.inf).min(axis=1)


def offset_bounds(ref: Reference, margin: float, track_name: str = "track") -> tuple[np.ndarray, np.ndarray]:
    """(low, high) lateral offsets (m, + = left) that keep `margin` from both borders; refuses a road too narrow."""
    if not (math.isfinite(margin) and margin >= 0.0):
        raise RacelineError(f"margin must be a finite number of metres >= 0, got {margin}")
    low, high = -(ref.right - margin), ref.left - margin
    width = ref.left + ref.right
    if np.any(high < low):
        i = int(np.argmin(high - low))
        raise RacelineError(
            f"{track_name}: no line fits: the road is {width[i]:.3f} m wide at {i * ref.spacing:.2f} m along the "
            f"centre line, narrower than twice the margin {margin:.3f} m (give a smaller --margin)"
        )
    return low, high


# ---- optimisation ------------------------------------------------------------------------------
def _difference_matrices(n: int, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """First (P[i+1] - P[i]) and second (P[i-1] - 2 P[i] + P[i+1]) differences as (rows, n) matrices."""
    eye = np.eye(n)
    if closed:
        d1 = np.roll(eye, 1, axis=1) - eye
        d2 = np.roll(eye, 1, axis=1) - 2 * eye + np.roll(eye, -1, axis=1)
    else:
        d1 = eye[1:] - eye[:-1]
        d2 = eye[:-2] - 2 * eye[1:-1] + eye[2:]
    return d1, d2


def _blend_line(ref: Reference, low: np.ndarray, high: np.ndarray, weight: float) -> np.ndarray:
    """Offsets minimising sum |P''|^2 / ds^4 + weight * sum |P'|^2 / ds^2 within the bounds."""
    n = len(ref.points)
    d1, d2 = _difference_matrices(n, ref.closed)
    ds = ref.spacing
    nx, ny = ref.normals[:, 0], ref.normals[:, 1]
    cx, cy = ref.points[:, 0], ref.points[:, 1]
    blocks = [(d2 / ds**2, 1.0)]
    if weight > 0:
        blocks.append((d1 / ds, math.sqrt(weight)))
    hessian = np.zeros((n, n))
    gradient = np.zeros(n)
    for d, scale in blocks:
        for normal, coordinate in ((nx, cx), (ny, cy)):
            a = scale * d * normal[None, :]
            hessian += a.T @ a
            gradient += a.T @ (scale * d @ coordinate)
    return _box_least_squares(hessian, -gradient, low, high)


def _box_least_squares(hessian: np.ndarray, target: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """x in [low, high] minimising x'Hx/2 - target'x (H positive semi-definite): a projected active set.

    Each round holds the variables at a bound whose gradient pushes outward and solves for the
    rest exactly; it stops when a round changes nothing (at most 60 rounds: the start line of
    the time optimisation needs no more).
    """
    n = len(target)
    ridge = 1e-9 * np.eye(n) * max(1.0, float(np.abs(np.diag(hessian)).max()))
    h = hessian + ridge
    x = np.clip(np.linalg.solve(h, target), low, high)
    for _ in range(60):
        grad = h @ x - target
        held = ((x <= low + 1e-12) & (grad > 0)) | ((x >= high - 1e-12) & (grad < 0))
        free = ~held
        nxt = x.copy()
        if free.any():
            rhs = target[free] - h[np.ix_(free, held)] @ x[held]
            nxt[free] = np.linalg.solve(h[np.ix_(free, free)], rhs)
        nxt = np.clip(nxt, low, high)
        if np.allclose(nxt, x, atol=1e-10):
            return nxt
        x = nxt
    return x


def _bumps(n: int, spacing: float, closed: bool, width: float = 0.35) -> np.ndarray:
    """(n, K) smooth Gaussian bumps (standard deviation `width` m), one every `width` m along the line."""
    count = max(4, int(round(n * spacing / width)))
    centres = np.linspace(0.0, n, count, endpoint=not closed)
    index = np.arange(n)[:, None]
    gap = np.abs(index - centres[None, :])
    if closed:
        gap = np.minimum(gap, n - gap)
    return np.exp(-0.5 * (gap * spacing / width) ** 2)


@dataclass(frozen=True)
class LineTiming:
    """A line's points, curvature, speeds and lap times."""

    points: np.ndarray
    curvature: np.ndarray
    ds: np.ndarray  # m from each point to the next
    speed: np.ndarray  # m/s at each point: at speed (loops) or from standstill (open tracks)
    standing: np.ndarray  # m/s of the lap from standstill at point 0 (N+1 values on a loop)
    lap_s: float  # from standstill
    flying_lap_s: float | None  # at speed (loops)


def time_line(points: np.ndarray, closed: bool, limits: CarLimits) -> LineTiming:
    """Curvature, speed profiles and lap times of the line through `points` (m)."""
    k = curvature_of(points, closed)
    ds = _segment_lengths(points, closed)
    if closed:
        flying = speed_profile(k, ds, limits, closed=True)
        standing = standing_start_profile(k, ds, limits, closed=True, flying=flying)
        return LineTiming(points, k, ds, flying, standing, lap_seconds(standing, ds), lap_seconds(_loop(flying), ds))
    standing = speed_profile(k, ds, limits, closed=False)
    return LineTiming(points, k, ds, standing, standing, lap_seconds(standing, ds), None)


def _objective(points: np.ndarray, closed: bool, limits: CarLimits) -> float:
    """What the optimiser minimises (s): the lap at speed on loops, the lap from standstill otherwise."""
    k = curvature_of(points, closed)
    ds = _segment_lengths(points, closed)
    v = speed_profile(k, ds, limits, closed)
    return lap_seconds(_loop(v) if closed else v, ds)


BLEND_WEIGHTS = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
STEERING_PENALTY = 100.0  # s per (1/m)^2 of curvature beyond the steering limit, in the lap-time step


@dataclass(frozen=True)
class Raceline:
    """The racing line of one track direction: points (m), offsets, speeds (m/s) and lap times (s)."""

    track: Track  # the track in the driving direction
    margin: float  # m kept from each border
    limits: CarLimits
    reference: Reference
    offsets: np.ndarray  # (N,) m left of the reference point along its normal
    timing: LineTiming
    minimum_curvature: LineTiming  # step 2's line, for comparison
    centerline: LineTiming  # the centre line's own profile, for comparison
    seconds: float  # wall time of the optimisation
    method: dict[str, Any] = field(default_factory=dict)

    @property
    def points(self) -> np.ndarray:
        """(N, 2) the line (m); a loop does not repeat its first point."""
        return self.timing.points

    @property
    def closed(self) -> bool:
        return self.reference.closed

    @property
    def curvature(self) -> np.ndarray:
        """(N,) signed curvature (1/m, + = left)."""
        return self.timing.curvature

    @property
    def speed(self) -> np.ndarray:
        """(N,) the speed profile (m/s): at speed on loops, from standstill on open tracks."""
        return self.timing.speed

    @property
    def s(self) -> np.ndarray:
        """(N,) metres along the line from point 0 (on the start line)."""
        return np.concatenate([[0.0], np.cumsum(self.timing.ds)])[: len(self.points)]

    @property
    def length(self) -> float:
        """Metres of one lap along the line."""
        return float(self.timing.ds.sum())

    @property
    def predicted_lap_s(self) -> float:
        """Seconds of a lap from standstill on the start line (as evaluation laps drive)."""
        return self.timing.lap_s

    def borders(self) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) (N, 2) border points across the road at each line point (m)."""
        ref = self.reference
        return ref.points + ref.left[:, None] * ref.normals, ref.points - ref.right[:, None] * ref.normals

    def needs(self) -> np.ndarray:
        """(N, 2) what the line asks of the car at each point: steering (degrees, + = left), speed (m/s)."""
        return np.column_stack([self.limits.steering_deg(self.curvature), self.speed])

    def route(self) -> np.ndarray:
        """The line as a DeepRacer route (N(+1), 6): line x, y as the centre, then the inner and outer
        border points of its cross-sections (the inner border on the same side as in the track file);
        a loop repeats its first row, so `Track.from_array` reads it back as a track."""
        left, right = self.borders()
        towards_inner = self.track.inner - self.track.waypoints
        inner_left = float(np.mean(np.einsum("ij,ij->i", towards_inner, _normals(self.track))))
        inner, outer = (left, right) if inner_left > 0 else (right, left)
        rows = np.hstack([self.points, inner, outer])
        return np.vstack([rows, rows[:1]]) if self.closed else rows

    def summary(self) -> dict[str, Any]:
        """The figures `deepracer-rl raceline --json` prints (s, m, m/s)."""
        return {
            "track": self.track.name,
            "closed": self.closed,
            "margin_m": round(self.margin, 4),
            "points": len(self.points),
            "length_m": round(self.length, 3),
            "predicted_lap_s": round(self.predicted_lap_s, 3),
            "predicted_flying_lap_s": _rounded(self.timing.flying_lap_s),
            "min_curvature_lap_s": round(self.minimum_curvature.lap_s, 3),
            "centerline_lap_s": round(self.centerline.lap_s, 3),
            "centerline_flying_lap_s": _rounded(self.centerline.flying_lap_s),
            "max_speed_ms": round(float(self.speed.max()), 3),
            "min_speed_ms": round(float(self.speed[1:].min() if not self.closed else self.speed.min()), 3),
            "max_abs_curvature": round(float(np.abs(self.curvature).max()), 4),
            "optimisation_s": round(self.seconds, 2),
            "method": self.method,
        }

    # ---- files ---------------------------------------------------------------------------
    def save_npy(self, path: str | os.PathLike) -> Path:
        """Write `route()` as a `.npy` that `Track.load` reads."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, self.route())
        return path

    def save_csv(self, path: str | os.PathLike) -> Path:
        """Write x, y (m), speed (m/s), curvature (1/m, + = left) and s (m along the line), one row per point."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for (x, y), v, k, s in zip(self.points, self.speed, self.curvature, self.s):
                writer.writerow([f"{x:.4f}", f"{y:.4f}", f"{v:.4f}", f"{k:.5f}", f"{s:.4f}"])
        return path


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _normals(track: Track) -> np.ndarray:
    """Left normals of the centre line at each waypoint (unit)."""
    w = track.waypoints
    if track.closed:
        t = np.roll(w, -1, axis=0) - np.roll(w, 1, axis=0)
    else:
        t = np.gradient(w, axis=0)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    return np.column_stack([-t[:, 1], t[:, 0]])


def compute_raceline(
    track: Track | str,
    reverse: bool = False,
    margin: float | None = None,
    car: CarSpec | None = None,
    dynamics: Dynamics | None = None,
    spacing: float = SPACING,
    refine_iterations: int = 40,
) -> Raceline:
    """The minimum-time racing line of `track` (driven reversed if `reverse`) for the simulator's car.

    `margin`: metres kept between the line and each border (default `CarLimits.default_margin`).
    Raises `RacelineError` when no line fits.
    """
    from scipy.optimize import minimize

    started = time.perf_counter()
    track = track if isinstance(track, Track) else Track.load(track)
    if reverse:
        track = track.reversed()
    limits = CarLimits.of(car, dynamics)
    margin = limits.default_margin if margin is None else float(margin)
    ref = reference_of(track, spacing)
    low, high = offset_bounds(ref, margin, track.name)

    def line(offsets: np.ndarray) -> np.ndarray:
        return ref.points + offsets[:, None] * ref.normals

    centre = time_line(track.waypoints, track.closed, limits)  # the track's own centre line

    # 2-3: minimum curvature, then blends toward shorter lines; keep the fastest.
    def steerable(offsets: np.ndarray) -> bool:  # no turn tighter than the car's steering allows
        return bool(np.abs(curvature_of(line(offsets), ref.closed)).max() <= limits.max_curvature)

    candidates = []
    for weight in BLEND_WEIGHTS:
        offsets = _blend_line(ref, low, high, weight)
        candidates.append((_objective(line(offsets), ref.closed, limits), weight, offsets))
    min_curvature = time_line(line(candidates[0][2]), ref.closed, limits)
    # Shorter blends can turn tighter than the car can; keep the steerable ones (the error below if none).
    best_time, best_weight, offsets = min(
        [c for c in candidates if steerable(c[2])] or candidates[:1], key=lambda c: c[0]
    )
    # 3: lap time itself, over smooth bumps of the offsets (clipped to the bounds).
    basis = _bumps(len(offsets), ref.spacing, ref.closed)
    base = offsets.copy()

    def lap(coefficients: np.ndarray, penalty: float = 0.0) -> float:
        """s; with `penalty`, plus penalty x the squared curvature beyond the steering limit (1/m)^2."""
        points = line(np.clip(base + basis @ coefficients, low, high))
        lap_s = _objective(points, ref.closed, limits)
        if penalty:
            excess = np.maximum(np.abs(curvature_of(points, ref.closed)) - limits.max_curvature, 0.0)
            lap_s += penalty * float(np.sum(excess**2))
        return lap_s

    refined = best_time
    # The lap time alone first; if that line turns tighter than the steering allows (a hairpin), again
    # with the steering penalty; a line that is still not steerable is not taken.
    for penalty in (0.0, STEERING_PENALTY) if refine_iterations > 0 else ():
        result = minimize(
            lap,
            np.zeros(basis.shape[1]),
            args=(penalty,),
            method="L-BFGS-B",
            options={"maxiter": refine_iterations, "eps": 1e-4},
        )
        trial = np.clip(base + basis @ result.x, low, high)
        if steerable(trial):
            if result.fun < best_time:
                offsets = trial
                refined = float(result.fun)
            break
    timing = time_line(line(offsets), ref.closed, limits)
    if np.abs(timing.curvature).max() > limits.max_curvature:
        i = int(np.argmax(np.abs(timing.curvature)))
        raise RacelineError(
            f"{track.name}: the line turns on a radius of {1 / abs(timing.curvature[i]):.3f} m at "
            f"{i * ref.spacing:.2f} m, tighter than the car's steering allows "
            f"({1 / limits.max_curvature:.3f} m)"
        )
    method = {
        "blend_weight": best_weight,
        "blend_lap_s": round(best_time, 3),
        "refined_lap_s": round(refined, 3),
        "bumps": int(basis.shape[1]),
    }
    return Raceline(
        track=track,
        margin=margin,
        limits=limits,
        reference=ref,
        offsets=offsets,
        timing=timing,
        minimum_curvature=min_curvature,
        centerline=centre,
        seconds=time.perf_counter() - started,
        method=method,
    )
