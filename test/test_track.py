"""Track: the shipped routes load with their published figures, geometry queries agree with
independent plain-Python calculations on the real tracks, and malformed files are refused
with a message that names the file.

The reference calculations below read the raw `.npy` rows themselves and use plain loops
and `math` only, so they share no code (and no vectorisation tricks) with `Track`.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from track_sets import REPRESENTATIVE_TRACKS, readme_figures

from deepracer_rl.track import TRACKS_DIR, Track, TrackError, available_tracks, shipped_track_path

# Figures of the tracks README shipped beside the routes (the data's own documentation): raw row
# count, closed loop, centre-line length in metres (2 decimals), mean row width in metres (3 decimals).
README_FIGURES = readme_figures()
SHIPPED = sorted(README_FIGURES)


# ---- independent reference calculations ---------------------------------------------------
class Reference:
    """A shipped route as plain Python lists, with loop-based geometry."""

    def __init__(self, name: str):
        raw = np.load(TRACKS_DIR / f"{name}.npy")
        self.raw_rows = [tuple(float(v) for v in row) for row in raw]
        first, last = self.raw_rows[0], self.raw_rows[-1]
        self.closed = all(abs(a - b) < 1e-9 for a, b in zip(first, last))
        rows = self.raw_rows[:-1] if self.closed else list(self.raw_rows)
        distinct = [rows[0]]
        for row in rows[1:]:
            if math.dist(row[0:2], distinct[-1][0:2]) > 1e-9:
                distinct.append(row)
        if self.closed and math.dist(distinct[-1][0:2], distinct[0][0:2]) <= 1e-9:
            distinct.pop()
        self.rows = distinct
        self.centre = [r[0:2] for r in distinct]
        self.inner = [r[2:4] for r in distinct]
        self.outer = [r[4:6] for r in distinct]
        # Polylines as driven: a loop returns to its first point.
        self.line = self.ring(self.centre)
        self.cumulative = [0.0]
        for a, b in zip(self.line, self.line[1:]):
            self.cumulative.append(self.cumulative[-1] + math.dist(a, b))
        self.length = self.cumulative[-1]
        # Road quadrilaterals between consecutive rows; the road is their union.
        ring_rows = self.ring(self.rows)
        self.quads = []
        for r, s in zip(ring_rows, ring_rows[1:]):
            quad = [r[2:4], s[2:4], s[4:6], r[4:6]]
            xs, ys = [q[0] for q in quad], [q[1] for q in quad]
            self.quads.append((quad, min(xs), max(xs), min(ys), max(ys)))

    def ring(self, items: list) -> list:
        return items + items[:1] if self.closed else list(items)

    def nearest(self, x: float, y: float) -> tuple[float, int, float]:
        """(distance, segment, t) of the closest point of the centre line, first minimum."""
        best = (math.inf, -1, 0.0)
        for i, ((ax, ay), (bx, by)) in enumerate(zip(self.line, self.line[1:])):
            dx, dy = bx - ax, by - ay
            t = ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)
            t = min(1.0, max(0.0, t))
            dist = math.hypot(x - (ax + t * dx), y - (ay + t * dy))
            if dist < best[0]:
                best = (dist, i, t)
        return best

    def segment_distance(self, x: float, y: float, i: int) -> float:
        (ax, ay), (bx, by) = self.line[i], self.line[i + 1]
        dx, dy = bx - ax, by - ay
        t = min(1.0, max(0.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
        return math.hypot(x - (ax + t * dx), y - (ay + t * dy))

    def progress(self, x: float, y: float) -> float:
        _, i, t = self.nearest(x, y)
        return 100.0 * (self.cumulative[i] + t * (self.cumulative[i + 1] - self.cumulative[i])) / self.length

    def on_road(self, x: float, y: float) -> bool:
        """Inside one of the road quadrilaterals (each split into two triangles)."""
        for quad, x0, x1, y0, y1 in self.quads:
            if x0 <= x <= x1 and y0 <= y <= y1:
                a, b, c, d = quad
                if in_triangle(x, y, a, b, c) or in_triangle(x, y, a, c, d):
                    return True
        return False

    def border_distance(self, x: float, y: float, border: list) -> float:
        """Distance from a point to a border polyline."""
        line = self.ring(border)
        best = math.inf
        for (ax, ay), (bx, by) in zip(line, line[1:]):
            dx, dy = bx - ax, by - ay
            t = min(1.0, max(0.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
            best = min(best, math.hypot(x - (ax + t * dx), y - (ay + t * dy)))
        return best


def in_triangle(x, y, a, b, c) -> bool:
    def side(p, q):
        return (q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0])

    d1, d2, d3 = side(a, b), side(b, c), side(c, a)
    return not ((d1 < 0 or d2 < 0 or d3 < 0) and (d1 > 0 or d2 > 0 or d3 > 0))


_REFERENCES: dict[str, Reference] = {}


def reference(name: str) -> Reference:
    if name not in _REFERENCES:
        _REFERENCES[name] = Reference(name)
    return _REFERENCES[name]


def border_normals(ref: Reference, border: list) -> list[tuple[float, float]]:
    """Unit normals of a border polyline at its points, pointing towards the centre line."""
    n = len(border)
    normals = []
    for k in range(n):
        if ref.closed:
            prev, nxt = border[k - 1], border[(k + 1) % n]
        else:
            prev, nxt = border[max(k - 1, 0)], border[min(k + 1, n - 1)]
        tx, ty = nxt[0] - prev[0], nxt[1] - prev[1]
        norm = math.hypot(tx, ty)
        nx, ny = -ty / norm, tx / norm
        cx, cy = ref.centre[k][0] - border[k][0], ref.centre[k][1] - border[k][1]
        if nx * cx + ny * cy < 0:
            nx, ny = -nx, -ny
        normals.append((nx, ny))
    return normals


def random_points(ref: Reference, count: int, seed: int) -> np.ndarray:
    """Uniform points over the track's bounding box plus a 30 cm margin."""
    xs = [p[0] for p in ref.inner + ref.outer]
    ys = [p[1] for p in ref.inner + ref.outer]
    rng = np.random.default_rng(seed)
    return rng.uniform([min(xs) - 0.3, min(ys) - 0.3], [max(xs) + 0.3, max(ys) + 0.3], (count, 2))


# The plain-Python references take a second or so per track: the representative tracks.
@pytest.fixture(scope="module", params=REPRESENTATIVE_TRACKS)
def shipped(request) -> tuple[Track, Reference]:
    return Track.load(request.param), reference(request.param)


# ---- the shipped tracks -------------------------------------------------------------------
def test_the_shipped_tracks_are_the_documented_ones():
    assert available_tracks() == SHIPPED
    assert len(SHIPPED) == 95
    assert set(REPRESENTATIVE_TRACKS) <= set(SHIPPED)


def test_the_shipped_files_are_the_ones_of_sha256sums():
    listed = {}
    for line in (TRACKS_DIR / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    assert sorted(listed) == [f"{name}.npy" for name in SHIPPED]
    for name, digest in listed.items():
        assert hashlib.sha256((TRACKS_DIR / name).read_bytes()).hexdigest() == digest, name
    for notice in ("LICENSE", "NOTICE", "README.md"):
        assert (TRACKS_DIR / notice).is_file()
    assert "deepracer-simapp" in (TRACKS_DIR / "NOTICE").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["reInvent2019_track_ccw", "2022_april_open", "reinvent_base", "Singapore_f1"])
def test_deepracer_world_names_resolve_to_their_routes(name):
    assert shipped_track_path(name) == TRACKS_DIR / f"{name}.npy"
    assert Track.load(name).name == name


@pytest.mark.parametrize(
    "typed, suggested",
    [
        ("reinvent_BASE", "reinvent_base"),  # other case: refused, the exact name suggested first
        ("reInvent2019_track_CCW", "reInvent2019_track_ccw"),
        ("2022_april_opne", "2022_april_open"),
        ("reinvent_bsae", "reinvent_base"),
    ],
)
def test_a_near_miss_of_a_world_name_is_refused_with_the_closest_names(typed, suggested):
    with pytest.raises(TrackError) as info:
        Track.load(typed)
    text = str(info.value)
    assert f"unknown track {typed!r}" in text
    assert f"did you mean {suggested!r}" in text
    assert "case-sensitive" in text and "95 shipped tracks" in text


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_track_loads_with_its_documented_figures(name):
    rows, closed, length, width = README_FIGURES[name]
    track = Track.load(name)
    ref = reference(name)
    assert track.name == name
    assert track.closed is closed
    assert len(ref.raw_rows) == rows
    assert track.length == pytest.approx(length, abs=0.006)
    assert track.width == pytest.approx(width, abs=1e-2)
    # `waypoints` drops the repeated closing row and consecutive duplicates.
    assert len(track.waypoints) <= rows - (1 if closed else 0)
    np.testing.assert_array_equal(track.waypoints, np.array(ref.centre))
    np.testing.assert_array_equal(track.inner, np.array(ref.inner))
    np.testing.assert_array_equal(track.outer, np.array(ref.outer))
    assert track.length == pytest.approx(ref.length, abs=1e-9)
    assert track.summary() == {
        "name": name,
        "waypoints": len(ref.centre),
        "length_m": round(track.length, 3),
        "width_m": round(track.width, 3),
        "closed": closed,
    }


def test_track_arrays_are_read_only():
    track = Track.load("reinvent_base")
    with pytest.raises(ValueError):
        track.waypoints[0, 0] = 1.0


# ---- geometry against the reference -------------------------------------------------------
def test_centre_waypoints_are_on_the_centre_line_at_their_share_of_its_length(shipped):
    track, ref = shipped
    proj = track.project(track.waypoints)
    np.testing.assert_allclose(proj.distance, 0.0, atol=1e-9)
    expected = [100.0 * s / ref.length for s in ref.cumulative[: len(ref.centre)]]
    np.testing.assert_allclose(track.progress(track.waypoints), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(proj.arc_length, ref.cumulative[: len(ref.centre)], atol=1e-9)


def test_border_points_are_on_the_edge_of_the_road(shipped):
    track, ref = shipped
    for border, other in ((ref.inner, ref.outer), (ref.outer, ref.inner)):
        points = np.array(border)
        got = track.distance_from_center(points)
        for k, (x, y) in enumerate(border):
            assert got[k] == pytest.approx(ref.nearest(x, y)[0], abs=1e-9)
            # Half the local road width, measured across to the opposite border: the routes' centre
            # lines are midway to within 5 mm; Singapore's (1.45 m wide) is up to 24 mm off (measured).
            half_width = 0.5 * ref.border_distance(x, y, other)
            tolerance = 0.025 if track.name == "Singapore" else 0.005
            assert got[k] == pytest.approx(half_width, abs=tolerance), (track.name, k)
        # 1 cm inward along the border's normal is road, 1 cm outward is not.
        normals = np.array(border_normals(ref, border))
        inner_rows = slice(None) if ref.closed else slice(1, -1)  # open ends: the cap is an edge too
        inward = track.contains(points + 0.01 * normals)[inner_rows]
        outward = track.contains(points - 0.01 * normals)[inner_rows]
        assert inward.all(), np.flatnonzero(~inward)
        assert not outward.any(), np.flatnonzero(outward)


def test_points_between_the_borders_are_on_the_road(shipped):
    track, ref = shipped
    rows = ref.ring(ref.rows)
    points = []
    for r, s in zip(rows, rows[1:]):
        for u in (0.02, 0.25, 0.5, 0.75, 0.98):  # across the road
            for v in (0.0, 0.3, 0.7):  # along it, between consecutive rows
                inner = ((1 - v) * r[2] + v * s[2], (1 - v) * r[3] + v * s[3])
                outer = ((1 - v) * r[4] + v * s[4], (1 - v) * r[5] + v * s[5])
                points.append(((1 - u) * inner[0] + u * outer[0], (1 - u) * inner[1] + u * outer[1]))
    inside = track.contains(np.array(points))
    assert inside.all(), [points[i] for i in np.flatnonzero(~inside)[:5]]


def test_points_beyond_a_border_are_off_the_road(shipped):
    track, ref = shipped
    points = []
    for border in (ref.inner, ref.outer):
        normals = border_normals(ref, border)
        ks = range(len(border)) if ref.closed else range(1, len(border) - 1)
        for k in ks:
            for step in (0.02, 0.05, 0.1):
                points.append((border[k][0] - step * normals[k][0], border[k][1] - step * normals[k][1]))
    points = np.array(points)
    assert not track.contains(points).any()
    assert not any(ref.on_road(x, y) for x, y in points)


def test_on_road_agrees_with_the_union_of_road_quadrilaterals(shipped):
    track, ref = shipped
    points = random_points(ref, 1500, seed=1)
    got = track.contains(points)
    expected = np.array([ref.on_road(x, y) for x, y in points])
    assert 0.1 < expected.mean() < 0.8  # the sample really covers both (a long 2022 loop: 18 % road)
    np.testing.assert_array_equal(got, expected)


def test_projection_agrees_with_the_nearest_point_of_the_centre_line(shipped):
    track, ref = shipped
    points = random_points(ref, 600, seed=2)
    proj = track.project(points)
    for k, (x, y) in enumerate(points):
        dist, seg, t = ref.nearest(x, y)
        assert proj.distance[k] == pytest.approx(dist, abs=1e-9)
        # Ties between far-apart parts of the line happen only off the road.
        if ref.on_road(x, y):
            assert proj.segment[k] == seg
            assert track.progress(points[k : k + 1])[0] == pytest.approx(ref.progress(x, y), abs=1e-9)


def test_closest_waypoints_bracket_the_point(shipped):
    track, ref = shipped
    points = random_points(ref, 600, seed=3)
    pairs = track.closest_waypoints(points)
    n = len(track.waypoints)
    assert pairs.min() >= 0 and pairs.max() < n
    for (x, y), (prev, nxt) in zip(points, pairs):
        assert nxt == (prev + 1) % n if ref.closed else nxt == prev + 1
        # The segment [prev, next] holds the point's nearest centre-line point.
        segment = prev  # on a loop, segment n-1 runs from waypoint n-1 back to waypoint 0
        assert ref.segment_distance(x, y, segment) == pytest.approx(ref.nearest(x, y)[0], abs=1e-9)
    if ref.closed:  # the closing segment is [last, 0]
        (x0, y0), (x1, y1) = ref.centre[-1], ref.centre[0]
        mid = np.array([[(x0 + x1) / 2, (y0 + y1) / 2]])
        assert track.closest_waypoints(mid).tolist() == [[n - 1, 0]]


def test_left_and_right_of_centre(shipped):
    track, ref = shipped
    left, right, _offsets = [], [], []
    for (ax, ay), (bx, by) in zip(ref.line, ref.line[1:]):
        length = math.dist((ax, ay), (bx, by))
        nx, ny = -(by - ay) / length, (bx - ax) / length  # left normal of the driving direction
        mx, my = (ax + bx) / 2, (ay + by) / 2
        left.append((mx + 0.05 * nx, my + 0.05 * ny))
        right.append((mx - 0.05 * nx, my - 0.05 * ny))
    assert track.is_left_of_center(np.array(left)).all()
    assert not track.is_left_of_center(np.array(right)).any()
    np.testing.assert_allclose(track.distance_from_center(np.array(left)), 0.05, atol=1e-9)
    # The routes run with the inner border on the left.
    assert track.is_left_of_center(track.inner).all()
    assert not track.is_left_of_center(track.outer).any()


def test_heading_is_the_direction_of_the_segment(shipped):
    track, ref = shipped
    mids, expected = [], []
    for (ax, ay), (bx, by) in zip(ref.line, ref.line[1:]):
        mids.append(((ax + bx) / 2, (ay + by) / 2))
        expected.append(math.degrees(math.atan2(by - ay, bx - ax)))
    got = track.heading(np.array(mids))
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert (np.abs(got) <= 180).all()


def test_heading_along_the_straight_track_is_constant():
    track = Track.load("Straight_track")
    (x0, y0), (x1, y1) = track.waypoints[0], track.waypoints[-1]
    direction = math.degrees(math.atan2(y1 - y0, x1 - x0))
    s = np.linspace(0.0, track.length, 50)
    points, yaw = track.point_at(s)
    rng = np.random.default_rng(4)
    normal = np.array([-math.sin(math.radians(direction)), math.cos(math.radians(direction))])
    points = points + rng.uniform(-0.25, 0.25, (50, 1)) * normal
    np.testing.assert_allclose(track.heading(points), direction, atol=1e-4)
    np.testing.assert_allclose(np.degrees(yaw), direction, atol=1e-4)


def test_progress_wraps_around_a_loop():
    track = Track.load("reinvent_base")
    ref = reference("reinvent_base")
    (x0, y0), (xl, yl) = ref.centre[0], ref.centre[-1]
    just_before = np.array([[x0 + 0.01 * (xl - x0), y0 + 0.01 * (yl - y0)]])
    just_after, _ = track.point_at(np.array([0.01]))
    assert track.progress(just_before)[0] > 99.9
    assert track.progress(just_after)[0] == pytest.approx(100 * 0.01 / track.length, abs=1e-9)
    assert track.closest_waypoints(just_before).tolist() == [[len(ref.centre) - 1, 0]]
    s = np.array([0.3, 5.0, 17.0])
    for shift in (track.length, -track.length, 3 * track.length):
        np.testing.assert_allclose(track.point_at(s + shift)[0], track.point_at(s)[0], atol=1e-9)


def test_progress_on_an_open_track_stops_at_its_ends():
    track = Track.load("Straight_track")
    (x0, y0), (x1, y1) = track.waypoints[0], track.waypoints[-1]
    before = np.array([[x0 - 0.3 * (x1 - x0), y0 - 0.3 * (y1 - y0)]])
    beyond = np.array([[x1 + 0.3 * (x1 - x0), y1 + 0.3 * (y1 - y0)]])
    assert track.progress(before)[0] == 0.0
    assert track.progress(beyond)[0] == pytest.approx(100.0)
    assert not track.contains(np.vstack([before, beyond])).any()
    np.testing.assert_allclose(track.point_at(np.array([track.length + 1]))[0], [[x1, y1]])


@pytest.mark.parametrize("name", ["reinvent_base", "Bowtie_track", "Straight_track"])
def test_reversed_is_the_same_road_driven_the_other_way(name):
    track = Track.load(name)
    back = track.reversed()
    assert back.reversed() is track
    assert track.reversed() is back
    assert back.closed == track.closed
    assert back.length == pytest.approx(track.length, abs=1e-9)
    np.testing.assert_array_equal(back.waypoints, track.waypoints[::-1])
    np.testing.assert_array_equal(back.inner, track.inner[::-1])
    ref = reference(name)
    points = random_points(ref, 800, seed=5)
    points = points[[ref.on_road(x, y) for x, y in points]]
    fwd, rev = track.project(points), back.project(points)
    np.testing.assert_allclose(rev.distance, fwd.distance, atol=1e-9)
    np.testing.assert_array_equal(back.contains(points), track.contains(points))
    off_centre = fwd.distance > 1e-3
    np.testing.assert_array_equal(rev.is_left[off_centre], ~fwd.is_left[off_centre])
    # Reversed waypoint 0 is the last waypoint; arc length runs backwards from there.
    start = track.project(track.waypoints[-1:]).arc_length[0] if track.closed else track.length
    expected = np.mod(start - fwd.arc_length, track.length) if track.closed else start - fwd.arc_length
    if track.closed:  # a point exactly at the new start may read as 0 or as a full lap
        expected = np.where(np.isclose(expected, track.length), 0.0, expected)
    np.testing.assert_allclose(rev.arc_length, expected, atol=1e-9)
    # Heading turns round (where the nearest point is inside a segment, not at a corner
    # shared by two segments of different directions).
    inside = (fwd.t > 1e-9) & (fwd.t < 1 - 1e-9)
    assert inside.mean() > 0.5
    diff = np.mod(back.heading(points[inside]) - track.heading(points[inside]), 360.0)
    np.testing.assert_allclose(diff, 180.0, atol=1e-6)


# ---- malformed files ----------------------------------------------------------------------
def _good_rows() -> np.ndarray:
    return np.load(TRACKS_DIR / "reinvent_base.npy")


def _save(path, array, **kwargs):
    np.save(path, array, **kwargs)
    return path


def _make_wrong_shape(path):
    return _save(path, _good_rows()[:, :4])


def _make_one_dimensional(path):
    return _save(path, _good_rows()[:, 0])


def _make_strings(path):
    return _save(path, np.array([["a", "b", "c", "d", "e", "f"]] * 5))


def _make_objects(path):
    return _save(path, np.array([[1.0, 2.0, 3.0, 4.0, 5.0, object()]] * 5, dtype=object))


def _make_nan(path):
    rows = _good_rows().copy()
    rows[7, 3] = np.nan
    return _save(path, rows)


def _make_inf(path):
    rows = _good_rows().copy()
    rows[7, 4] = -np.inf
    return _save(path, rows)


def _make_two_points(path):
    return _save(path, _good_rows()[:2])


def _make_two_distinct_points_in_a_loop(path):
    rows = _good_rows()
    return _save(path, np.vstack([rows[0], rows[0], rows[5], rows[5], rows[0]]))


def _make_zero_width(path):
    rows = _good_rows().copy()
    rows[9, 4:6] = rows[9, 2:4]
    return _save(path, rows)


def _make_corrupt(path):
    path.write_bytes(b"these are not the bytes of a NumPy array\n" * 4)
    return path


def _make_truncated(path):
    data = (TRACKS_DIR / "reinvent_base.npy").read_bytes()
    path.write_bytes(data[:300])
    return path


def _make_empty(path):
    path.write_bytes(b"")
    return path


def _make_self_intersecting(path):
    rows = _good_rows().copy()
    rows[[10, 40]] = rows[[40, 10]]  # two rows swapped: the centre line crosses itself
    return _save(path, rows)


def _make_huge(path):
    return _save(path, _good_rows() * 1e12)


def _make_too_wide(path):
    rows = _good_rows().copy()
    rows[5, 4:6] = rows[5, 0:2] + 30.0
    return _save(path, rows)


def _make_too_many_rows(path):
    return _save(path, np.repeat(_good_rows(), 200, axis=0))


MALFORMED = {
    "wrong shape": (_make_wrong_shape, "shape (N, 6)"),
    "one-dimensional": (_make_one_dimensional, "shape (N, 6)"),
    "strings": (_make_strings, "dtype <U1"),
    "objects": (_make_objects, "dtype object"),
    "NaN": (_make_nan, "row 7 holds NaN or inf"),
    "inf": (_make_inf, "row 7 holds NaN or inf"),
    "two points": (_make_two_points, "at least 3 distinct centre-line points, has 2"),
    "two distinct points in a loop": (
        _make_two_distinct_points_in_a_loop,
        "at least 3 distinct centre-line points, has 2",
    ),
    "zero width": (_make_zero_width, "zero track width at row 9"),
    "corrupt bytes": (_make_corrupt, "not a .npy file"),
    "truncated": (_make_truncated, "not a readable .npy array"),
    "empty file": (_make_empty, "not a .npy file"),
    "self-intersecting": (_make_self_intersecting, "the centre line crosses itself"),
    "coordinates of 1e12": (_make_huge, "coordinates are metres within ±1000 of the origin"),
    "30 m wide": (_make_too_wide, "m wide at row 5; at most 20 m"),
    "too many rows": (_make_too_many_rows, "rows; a route has at most 20000"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_track_file_is_refused_naming_the_file(case, tmp_path):
    make, message = MALFORMED[case]
    path = make(tmp_path / "my_track.npy")
    with pytest.raises(TrackError) as info:
        Track.load(path)
    text = str(info.value)
    assert text.startswith(f"{path}: "), text
    assert message in text, text
    assert "allow_pickle" not in text  # never suggest unpickling an untrusted file


def test_zero_width_row_is_counted_as_in_the_file_despite_duplicates(tmp_path):
    rows = _good_rows()
    rows = np.vstack([rows[:3], rows[2:3], rows[3:]])  # a repeated row before the bad one
    rows[12, 4:6] = rows[12, 2:4]
    with pytest.raises(TrackError, match="zero track width at row 12"):
        Track.load(_save(tmp_path / "dup.npy", rows))


def test_a_missing_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "nowhere.npy"
    with pytest.raises(TrackError, match="no such track file") as info:
        Track.load(path)
    assert str(path) in str(info.value)


def test_an_unknown_name_points_to_the_list_of_shipped_tracks():
    with pytest.raises(TrackError) as info:
        Track.load("Nurburgring")
    text = str(info.value)
    assert text.startswith("unknown track 'Nurburgring': not a file and not a shipped track")
    assert "did you mean" not in text  # nothing close
    assert "`deepracer-rl tracks` lists the 95 shipped tracks" in text


def test_a_user_file_loads_by_path_with_its_own_name(tmp_path):
    path = _save(tmp_path / "my_oval.npy", np.load(TRACKS_DIR / "Oval_track.npy"))
    track = Track.load(str(path))
    assert track.name == "my_oval"
    assert track.source == str(path)
    assert track.length == pytest.approx(Track.load("Oval_track").length)


def test_large_queries_give_the_same_answers_as_small_ones():
    track = Track.load("reinvent_base")
    points = random_points(reference("reinvent_base"), 3000, seed=6)
    whole = track.project(points)
    for start in (0, 511, 1700):
        part = track.project(points[start : start + 7])
        np.testing.assert_array_equal(part.segment, whole.segment[start : start + 7])
        np.testing.assert_array_equal(part.distance, whole.distance[start : start + 7])
        np.testing.assert_array_equal(
            track.contains(points[start : start + 7]), track.contains(points)[start : start + 7]
        )
    assert track.project(np.empty((0, 2))).distance.shape == (0,)
    assert track.contains(np.empty((0, 2))).shape == (0,)
