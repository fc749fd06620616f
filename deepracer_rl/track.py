"""DeepRacer tracks: load and validate `.npy` routes, answer geometry queries for many points.

A route is a float array of shape (N, 6): centre line x, y; inner border x, y; outer border
x, y (metres, world frame). It is a closed loop when its first row equals its last row.
All queries take points of shape (M, 2) and answer for all of them at once.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TRACKS_DIR = Path(__file__).resolve().parent / "tracks"
_NPY_MAGIC = b"\x93NUMPY"
_CHUNK = 512  # points per block in the (points x segments) queries: bounded memory, cache-sized
# Bounds of a route: DeepRacer tracks are tens of metres across, 100-300 rows, about 1 m wide.
MAX_ROWS = 20_000
MAX_COORDINATE = 1_000.0  # m from the origin
MAX_WIDTH = 20.0  # m between the borders


class TrackError(ValueError):
    """A track file is missing or malformed; the message names the file and the problem."""


def available_tracks() -> list[str]:
    """Names of the tracks shipped with the package: DeepRacer's world names (`DR_WORLD_NAME`)."""
    return sorted(p.stem for p in TRACKS_DIR.glob("*.npy"))


def shipped_track_path(name: str) -> Path:
    """The shipped route of a DeepRacer world name, matched exactly (case-sensitive).

    DeepRacer's simapp loads `routes/<WORLD_NAME>.npy`, so the world names of the console and
    of DRfC's `DR_WORLD_NAME` (e.g. `reInvent2019_track_ccw`, `2022_april_open`) are the file
    names here. A near miss (other case, a typo) is refused with the closest names.
    """
    names = available_tracks()
    if name in names:
        return TRACKS_DIR / f"{name}.npy"
    folded = {n.lower(): n for n in names}
    close = [folded[name.lower()]] if name.lower() in folded else []
    close += [n for n in difflib.get_close_matches(name, names, n=3, cutoff=0.6) if n not in close]
    hint = f"did you mean {' or '.join(repr(n) for n in close)}? " if close else ""
    raise TrackError(
        f"unknown track {name!r}: not a file and not a shipped track (world names are case-sensitive); "
        f"{hint}`deepracer-rl tracks` lists the {len(names)} shipped tracks"
    )


@dataclass(frozen=True)
class Projection:
    """Where points fall on the centre line (every field has one entry per point)."""

    segment: np.ndarray  # index of the closest centre-line segment [i, i+1]
    t: np.ndarray  # 0..1 position along that segment
    distance: np.ndarray  # metres from the centre line
    is_left: np.ndarray  # left of the centre line in the driving direction
    arc_length: np.ndarray  # metres along the centre line from waypoint 0

    @property
    def closest_waypoints(self) -> np.ndarray:
        """(M, 2) indices [previous, next] of the waypoints around each point."""
        return np.stack([self.segment, self.segment + 1], axis=1)


@dataclass(frozen=True, eq=False)
class Track:
    """A validated DeepRacer route with vectorised geometry queries."""

    name: str
    source: str
    waypoints: np.ndarray  # (N, 2) centre line; a closed loop does not repeat its first point
    inner: np.ndarray  # (N, 2)
    outer: np.ndarray  # (N, 2)
    closed: bool
    _segments: np.ndarray = field(repr=False)  # (S, 2, 2) centre-line segments
    _cumulative: np.ndarray = field(repr=False)  # (S+1,) arc length at each segment start
    _road_edges: np.ndarray = field(repr=False)  # (E, 2, 2) border edges for the even-odd test

    # ---- loading ----------------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> Track:
        """Load a shipped track by its DeepRacer world name (e.g. "reinvent_base") or any `.npy` file path."""
        text = str(name_or_path)
        path = Path(text)
        if not (path.suffix == ".npy" or path.exists() or os.sep in text):
            path = shipped_track_path(text)
        if not path.exists():
            raise TrackError(f"{path}: no such track file (expected a DeepRacer .npy route)")
        try:
            with open(path, "rb") as fh:
                magic = fh.read(len(_NPY_MAGIC))
                if magic != _NPY_MAGIC:  # else np.load would try (and refuse) to unpickle it
                    raise TrackError(f"{path}: not a .npy file (no NumPy header); expected a DeepRacer .npy route")
                fh.seek(0)
                version = np.lib.format.read_magic(fh)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0  # same layout for 2.0 and 3.0
                )
                _, _, dtype = read_header(fh)
                if dtype.hasobject:
                    raise TrackError(
                        f"{path}: expected a float array of shape (N, 6), got dtype {dtype} (Python objects)"
                    )
                fh.seek(0)
                data = np.load(fh, allow_pickle=False)
        except TrackError:
            raise
        except Exception as exc:  # numpy raises several kinds for a corrupt file
            raise TrackError(f"{path}: not a readable .npy array ({exc})") from exc
        return cls.from_array(data, name=path.stem, source=str(path))

    @classmethod
    def from_array(cls, data: np.ndarray, name: str = "track", source: str = "<array>") -> Track:
        """Validate a (N, 6) route array and build the track."""
        where = source
        if not isinstance(data, np.ndarray) or data.dtype.kind not in "fi":
            kind = getattr(data, "dtype", type(data))
            raise TrackError(f"{where}: expected a float array of shape (N, 6), got dtype {kind}")
        if data.ndim != 2 or data.shape[1] != 6:
            raise TrackError(f"{where}: expected shape (N, 6) (centre x,y, inner x,y, outer x,y), got {data.shape}")
        if len(data) > MAX_ROWS:
            raise TrackError(f"{where}: {len(data)} rows; a route has at most {MAX_ROWS} (DeepRacer's have 100-300)")
        data = data.astype(np.float64)
        bad = ~np.isfinite(data)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise TrackError(f"{where}: row {row} holds NaN or inf; every coordinate must be finite")
        far = np.abs(data) > MAX_COORDINATE
        if far.any():
            row = int(np.argwhere(far)[0][0])
            raise TrackError(
                f"{where}: row {row} has a coordinate of {data[row][far[row]][0]:g} m; coordinates are metres "
                f"within ±{MAX_COORDINATE:g} of the origin (a DeepRacer track is tens of metres across)"
            )
        closed = len(data) > 1 and bool(np.allclose(data[0], data[-1]))
        file_rows = np.arange(len(data) - 1 if closed else len(data))  # row numbers in the file
        rows = data[file_rows]
        # Drop consecutive repeats of the centre point: they add zero-length segments.
        keep = np.ones(len(rows), dtype=bool)
        keep[1:] = np.linalg.norm(np.diff(rows[:, 0:2], axis=0), axis=1) > 1e-9
        if closed and keep.sum() > 1:
            last = np.flatnonzero(keep)[-1]
            keep[last] = np.linalg.norm(rows[last, :2] - rows[0, :2]) > 1e-9
        rows, file_rows = rows[keep], file_rows[keep]
        if len(rows) < 3:
            raise TrackError(f"{where}: needs at least 3 distinct centre-line points, has {len(rows)}")
        widths = np.linalg.norm(rows[:, 2:4] - rows[:, 4:6], axis=1)
        if widths.min() <= 1e-6:
            row = int(file_rows[np.argmin(widths)])
            raise TrackError(f"{where}: zero track width at row {row} (inner and outer border coincide)")
        if widths.max() > MAX_WIDTH:
            row = int(file_rows[np.argmax(widths)])
            raise TrackError(f"{where}: the track is {widths.max():.1f} m wide at row {row}; at most {MAX_WIDTH:g} m")
        crossing = _first_crossing(rows[:, 0:2], closed)
        if crossing is not None:
            i, j = (int(file_rows[k]) for k in crossing)
            raise TrackError(
                f"{where}: the centre line crosses itself (the segment from row {i} crosses the one from row {j}); "
                "a route must not intersect itself"
            )
        centre, inner, outer = rows[:, 0:2].copy(), rows[:, 2:4].copy(), rows[:, 4:6].copy()
        for array in (centre, inner, outer):
            array.flags.writeable = False

        def ring(points: np.ndarray) -> np.ndarray:
            return np.vstack([points, points[:1]]) if closed else points

        line = ring(centre)
        segments = np.stack([line[:-1], line[1:]], axis=1)
        lengths = np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1)
        cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
        if closed:
            borders = [ring(outer), ring(inner)]
        else:  # one polygon: along the outer border, back along the inner border
            borders = [np.vstack([outer, inner[::-1], outer[:1]])]
        edges = np.concatenate([np.stack([b[:-1], b[1:]], axis=1) for b in borders])
        return cls(
            name=name,
            source=source,
            waypoints=centre,
            inner=inner,
            outer=outer,
            closed=closed,
            _segments=segments,
            _cumulative=cumulative,
            _road_edges=edges,
        )

    # ---- scalar facts -----------------------------------------------------------------
    @property
    def length(self) -> float:
        """Centre-line length in metres (the whole loop for a closed track)."""
        return float(self._cumulative[-1])

    @property
    def widths(self) -> np.ndarray:
        """Width at each waypoint (distance between its two border points), metres."""
        return np.linalg.norm(self.inner - self.outer, axis=1)

    @property
    def width(self) -> float:
        """Mean track width, metres."""
        return float(self.widths.mean())

    @property
    def num_segments(self) -> int:
        return len(self._segments)

    # ---- vectorised geometry ----------------------------------------------------------
    def project(self, points: np.ndarray) -> Projection:
        """Project points (M, 2) onto the centre line."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        a = self._segments[:, 0]  # (S, 2)
        d = self._segments[:, 1] - a
        dd = np.einsum("ij,ij->i", d, d)
        ax, ay, dx, dy = a[:, 0], a[:, 1], d[:, 0], d[:, 1]
        m = len(p)
        seg = np.empty(m, dtype=np.intp)
        t_best = np.empty(m)
        dist = np.empty(m)
        cross = np.empty(m)
        # Blocks of points keep the (points x segments) temporaries small and in cache.
        for start in range(0, m, _CHUNK):
            q = p[start : start + _CHUNK]
            rx = q[:, 0:1] - ax  # (B, S)
            ry = q[:, 1:2] - ay
            t = (rx * dx + ry * dy) / dd
            np.clip(t, 0.0, 1.0, out=t)
            ox = rx - t * dx
            oy = ry - t * dy
            dist2 = ox * ox + oy * oy
            k = np.argmin(dist2, axis=1)
            rows = np.arange(len(q))
            block = slice(start, start + len(q))
            seg[block] = k
            t_best[block] = t[rows, k]
            dist[block] = np.sqrt(dist2[rows, k])
            cross[block] = dx[k] * ry[rows, k] - dy[k] * rx[rows, k]
        arc = self._cumulative[seg] + t_best * np.sqrt(dd[seg])
        return Projection(segment=seg, t=t_best, distance=dist, is_left=cross > 0, arc_length=arc)

    def closest_waypoints(self, points: np.ndarray) -> np.ndarray:
        """(M, 2) indices [previous, next] into `waypoints` around each point (wrapping on loops)."""
        return self.closest_waypoints_from(self.project(points))

    def closest_waypoints_from(self, projection: Projection) -> np.ndarray:
        """Like `closest_waypoints`, from a projection already computed."""
        idx = projection.closest_waypoints
        return idx % len(self.waypoints) if self.closed else idx

    def width_at(self, segment: int, t: float) -> float:
        """Track width interpolated along a centre-line segment."""
        widths = self.widths
        a = widths[segment % len(widths)]
        b = widths[(segment + 1) % len(widths)]
        return float(a + t * (b - a))

    def reversed(self) -> Track:
        """The same road driven the other way (waypoints in reverse order)."""
        cached = self.__dict__.get("_reversed")
        if cached is None:
            rows = np.hstack([self.waypoints, self.inner, self.outer])[::-1]
            if self.closed:
                rows = np.vstack([rows, rows[:1]])
            cached = Track.from_array(rows, name=f"{self.name} (reversed)", source=self.source)
            object.__setattr__(cached, "_reversed", self)
            object.__setattr__(self, "_reversed", cached)
        return cached

    def distance_from_center(self, points: np.ndarray) -> np.ndarray:
        return self.project(points).distance

    def is_left_of_center(self, points: np.ndarray) -> np.ndarray:
        return self.project(points).is_left

    def progress(self, points: np.ndarray) -> np.ndarray:
        """Percent 0-100 along the centre line from waypoint 0."""
        return 100.0 * self.project(points).arc_length / self.length

    def heading_at(self, segment: np.ndarray) -> np.ndarray:
        """Direction of travel (degrees, -180..180) of the given centre-line segments."""
        d = self._segments[np.asarray(segment), 1] - self._segments[np.asarray(segment), 0]
        return np.degrees(np.arctan2(d[..., 1], d[..., 0]))

    def heading(self, points: np.ndarray) -> np.ndarray:
        """Track heading (degrees) at the closest centre-line segment of each point."""
        return self.heading_at(self.project(points).segment)

    def point_at(self, arc_length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre-line points (M, 2) and headings (rad) at given arc lengths (wrapping on loops)."""
        s = np.asarray(arc_length, dtype=np.float64)
        s = np.mod(s, self.length) if self.closed else np.clip(s, 0.0, self.length)
        seg = np.clip(np.searchsorted(self._cumulative, s, side="right") - 1, 0, self.num_segments - 1)
        a, b = self._segments[seg, 0], self._segments[seg, 1]
        seg_len = self._cumulative[seg + 1] - self._cumulative[seg]
        t = ((s - self._cumulative[seg]) / seg_len)[..., None]
        d = b - a
        return a + t * d, np.arctan2(d[..., 1], d[..., 0])

    def contains(self, points: np.ndarray) -> np.ndarray:
        """True where a point lies on the road, between the borders (even-odd rule)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        ax, ay = self._road_edges[:, 0, 0], self._road_edges[:, 0, 1]
        bx, by = self._road_edges[:, 1, 0], self._road_edges[:, 1, 1]
        ex, ey = bx - ax, by - ay
        inside = np.empty(len(p), dtype=bool)
        for start in range(0, len(p), _CHUNK):
            q = p[start : start + _CHUNK]
            px, py = q[:, 0:1], q[:, 1:2]
            straddles = (ay > py) != (by > py)
            with np.errstate(divide="ignore", invalid="ignore"):  # horizontal edges never straddle
                x_cross = ax + (py - ay) * ex / ey
            crossings = np.count_nonzero(straddles & (px < x_cross), axis=1)
            inside[start : start + len(q)] = crossings % 2 == 1
        return inside

    def summary(self) -> dict:
        """Name, size and shape facts, as `deepracer-rl tracks` prints them."""
        return {
            "name": self.name,
            "waypoints": len(self.waypoints),
            "length_m": round(self.length, 3),
            "width_m": round(self.width, 3),
            "closed": self.closed,
        }


def _first_crossing(points: np.ndarray, closed: bool) -> tuple[int, int] | None:
    """(i, j) of the first pair of non-adjacent centre-line segments that properly cross, or None."""
    line = np.vstack([points, points[:1]]) if closed else points
    a, b = line[:-1], line[1:]
    count = len(a)

    def side(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
        return np.sign(
            (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])
        )

    for start in range(0, count, _CHUNK):
        a1, b1 = a[start : start + _CHUNK, None], b[start : start + _CHUNK, None]
        hit = (side(a1, b1, a[None]) * side(a1, b1, b[None]) < 0) & (
            side(a[None], b[None], a1) * side(a[None], b[None], b1) < 0
        )
        rows = np.arange(start, start + len(a1))[:, None]
        cols = np.arange(count)[None]
        adjacent = np.abs(rows - cols) <= 1
        if closed:
            adjacent |= (rows == 0) & (cols == count - 1) | (rows == count - 1) & (cols == 0)
        i, j = np.nonzero(hit & ~adjacent)
        if len(i):
            return int(i[0] + start), int(j[0])
    return None
