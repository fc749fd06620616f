"""What the car's camera sees: a ground texture per track and a fast renderer for many cars.

The track lies on a flat floor, so below the horizon every camera pixel sees the ground
plane: the image is a homography of a top-down texture (inverse perspective mapping).
Per camera geometry the renderer precomputes that homography in the car frame, split
into horizontal bands that sample a mip level (and extra rows) matching the pixel's
ground footprint, so far rows are anti-aliased; per car and frame it only composes the
pose and calls `cv2.warpPerspective` per band. Beyond the floor mat, beyond `far` and
above the horizon the camera sees walls and sky (a gradient by elevation). Upright boxes
standing on the floor (`Box`: obstacles, other cars) are drawn over that as shaded convex
polygons, projected with the same camera, farthest first.

Pixel convention: `CameraSpec.intrinsics` give the principal point as the image centre
(width / 2, height / 2); here that is read with pixel i covering [i, i + 1), so renders at
different sizes are area-consistent (see `to_observation`). No ROS imports.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from .car import CameraSpec, CarSpec
    from .track import Track

# ---- the look of the scene (RGB) ----------------------------------------------------------
FLOOR_RGB = (78, 110, 74)  # off-road mat
ROAD_RGB = (40, 40, 44)
BORDER_RGB = (236, 236, 232)  # white lines along both borders
CENTRE_RGB = (240, 220, 128)  # yellow-white centre dashes
LINE_WIDTH = 0.05  # metres, border lines and centre dashes
LINE_WIDTH_RANGE = (0.038, 0.076)  # metres, line_style widths: 1.5 to 3 inch tape (DeepRacer tracks: 2 inch)
DASH_LENGTH = 0.15  # metres of paint in every DASH_PERIOD of centre line
DASH_PERIOD = 0.30
FLOOR_GRAIN = 5.0  # gray levels of low-frequency mottling on the mat
ROAD_GRAIN = 3.0  # gray levels of fine grain on the road and mat
WALL_BASE_RGB = (112, 114, 120)  # just below the horizon, beyond the mat
WALL_FOOT_RGB = (96, 98, 104)  # looking steeply down beyond the mat
WALL_RGB = (168, 170, 176)  # just above the horizon
SKY_RGB = (208, 216, 230)  # looking up (ELEVATION_SPAN and more)
ELEVATION_SPAN = 0.5  # radians over which the wall/sky gradient runs

OBSERVATION_WIDTH, OBSERVATION_HEIGHT = 160, 120  # DeepRacer's policy input size

# ---- texture and sampling -----------------------------------------------------------------
TEXTURE_RESOLUTION = 0.01  # metres per texel (coarsened if the texture would be too big)
MAX_TEXTURE_SIDE = 4096
FLOOR_MARGIN = 1.5  # metres of mat around the track's bounding box
MIP_LEVELS = 6  # pyramid levels 0..5 (1 cm .. 32 cm texels)
MAX_SUBROWS = 4  # extra samples per row where the ground footprint is long and thin
_DRAW_SUPERSAMPLE = 4  # the road is filled at up to this factor, then area-averaged
_DRAW_CANVAS = 64e6  # ... on a canvas of at most this many pixels
_DRAW_SHIFT = 4  # fractional bits for cv2 drawing coordinates
_WARP_FLAGS = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


# ---- observation --------------------------------------------------------------------------


def to_observation(rgb: np.ndarray, width: int, height: int, grayscale: bool) -> np.ndarray:
    """The observation a policy sees from an RGB camera frame (e.g. a ROS rgb8 image).

    `rgb` is (H, W, 3) or (N, H, W, 3) uint8. It is resized to width x height with
    `cv2.INTER_AREA` (skipped at the same size), then, if `grayscale`, converted with
    `cv2.COLOR_RGB2GRAY` (Y = 0.299 R + 0.587 G + 0.114 B, rounded). Returns (H, W) /
    (N, H, W) uint8 when gray, else (H, W, 3) / (N, H, W, 3) RGB.
    `CameraRenderer(width, height, grayscale)` renders this image directly: it samples a
    texture converted the same way, so the two agree to about a gray level on average.
    """
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim not in (3, 4) or rgb.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB (H, W, 3) or (N, H, W, 3), got {rgb.dtype} {rgb.shape}")
    if rgb.ndim == 4:
        shape = (len(rgb), height, width) + (() if grayscale else (3,))
        out = np.empty(shape, dtype=np.uint8)
        for frame, dst in zip(rgb, out):
            dst[...] = to_observation(frame, width, height, grayscale)
        return out
    if rgb.shape[:2] != (height, width):
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if grayscale else np.ascontiguousarray(rgb)


# ---- ground texture -----------------------------------------------------------------------


def _world_to_texel(resolution: float, x0: float, y0: float) -> np.ndarray:
    """3x3 matrix taking homogeneous world (x, y, 1) to texel (col, row, 1)."""
    r = resolution
    return np.array([[1 / r, 0, -x0 / r], [0, -1 / r, y0 / r], [0, 0, 1]])


@dataclass(frozen=True, eq=False)
class GroundTexture:
    """Top-down RGB image of the floor around a track (row 0 = largest y, north up).

    Texel (row, col) has its centre at world (x0 + col * resolution, y0 - row * resolution).
    `floor` and `paint` split the image so the mat can be repainted: rgb = paint + floor * mat.
    """

    rgb: np.ndarray  # (H, W, 3) uint8
    floor: np.ndarray  # (H, W) uint8 coverage of the off-road mat, 0..255
    paint: np.ndarray  # (H, W, 3) uint8 road and lines, premultiplied by their coverage
    resolution: float  # metres per texel
    x0: float
    y0: float

    @property
    def world_to_texel(self) -> np.ndarray:
        """3x3 matrix taking homogeneous world (x, y, 1) to texel (col, row, 1)."""
        return _world_to_texel(self.resolution, self.x0, self.y0)

    def with_floor(self, mat: np.ndarray) -> np.ndarray:
        """The texture with the mat painted as `mat`: (3,) colour or (H, W, 3) image (float)."""
        return _compose(self.paint, self.floor, mat)

    @classmethod
    def build(cls, track: Track, resolution: float = TEXTURE_RESOLUTION, margin: float = FLOOR_MARGIN) -> GroundTexture:
        """Draw the road, border lines and dashed centre line of a track on a mat."""
        layers = _TextureLayers.build(track, resolution, margin, LINE_WIDTH / 2)
        paint, floor = layers.paint()
        rgb = _compose(paint, floor, layers.default_mat())
        return cls(rgb=rgb, floor=floor, paint=paint, resolution=layers.resolution, x0=layers.x0, y0=layers.y0)


@dataclass(frozen=True, eq=False)
class _TextureLayers:
    """What a ground texture is painted from, so lines can be repainted (`DomainRandomization.line_style`).

    (H, W) layers on the texture's grid: road coverage, distance in texels (float64) to the
    nearest border-line segment and to the nearest centre dash (exact up to `reach` texels,
    larger beyond), the fine grain and the mat's mottling (gray levels).
    """

    road: np.ndarray
    line_distance: np.ndarray
    dash_distance: np.ndarray
    fine: np.ndarray
    blotch: np.ndarray
    resolution: float
    x0: float
    y0: float

    @classmethod
    def build(cls, track: Track, resolution: float, margin: float, max_half_width: float) -> _TextureLayers:
        """Layers of a track's texture; line distances are exact for lines up to 2 * max_half_width metres wide."""
        pts = np.vstack([track.waypoints, track.inner, track.outer])
        lo = pts.min(axis=0) - margin
        hi = pts.max(axis=0) + margin
        resolution = max(resolution, float((hi - lo).max()) / MAX_TEXTURE_SIDE)
        align = 2 ** (MIP_LEVELS - 1)  # sides divisible by it keep every mip level aligned
        w, h = (np.ceil((hi - lo) / resolution / align).astype(int) * align).tolist()
        x0, y0 = float(lo[0]), float(lo[1]) + (h - 1) * resolution
        to_tex = _world_to_texel(resolution, x0, y0)
        ring = (lambda a: np.vstack([a, a[:1]])) if track.closed else (lambda a: a)

        def texels(xy: np.ndarray) -> np.ndarray:
            return np.asarray(xy, dtype=np.float64) @ to_tex[:2, :2].T + to_tex[:2, 2]

        # Road: quads between the borders, filled on a canvas supersampled for coverage (cv2
        # rasterises to whole canvas pixels; the road's edge is hidden under the border lines).
        ss = int(np.clip(math.sqrt(_DRAW_CANVAS / (h * w)), 1, _DRAW_SUPERSAMPLE))
        one = 1 << _DRAW_SHIFT
        inner, outer = texels(ring(track.inner)), texels(ring(track.outer))
        fixed = [np.round(((t + 0.5) * ss - 0.5) * one).astype(np.int32) for t in (inner, outer)]
        canvas = np.zeros((h * ss, w * ss), dtype=np.uint8)
        for quad in np.stack([fixed[0][:-1], fixed[0][1:], fixed[1][1:], fixed[1][:-1]], axis=1):
            cv2.fillPoly(canvas, [quad], 255, cv2.LINE_8, _DRAW_SHIFT)  # one by one: no even-odd holes
        a_road = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        del canvas
        # Lines: analytic distances, exact to a fraction of a texel.
        reach = max_half_width / resolution + 1.0
        d_line = _segment_distance((h, w), [np.stack([e[:-1], e[1:]], axis=1) for e in (inner, outer)], reach)
        d_dash = _segment_distance((h, w), [texels(_dashes(ring(track.waypoints)))], reach)
        rng = np.random.default_rng(0)  # the default look is the same every time
        fine = rng.standard_normal((h, w), dtype=np.float32) * ROAD_GRAIN
        blotch = rng.standard_normal((h // 16 + 2, w // 16 + 2), dtype=np.float32)
        blotch = cv2.resize(blotch, (w, h), interpolation=cv2.INTER_CUBIC) * FLOOR_GRAIN
        return cls(a_road, d_line, d_dash, fine, blotch, resolution, x0, y0)

    def paint(
        self,
        border_rgb: Sequence[float] = BORDER_RGB,
        centre_rgb: Sequence[float] = CENTRE_RGB,
        border_width: float = LINE_WIDTH,
        centre_width: float = LINE_WIDTH,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Paint (road and lines premultiplied by coverage, uint8 RGB) and mat coverage (uint8) for a line style.

        A texel at distance d (texels) from a line of half width h is covered clip(h - d + 0.5, 0, 1):
        exact area for straight edges, a one-texel ramp.
        """
        a_line = np.clip(border_width / self.resolution / 2 + 0.5 - self.line_distance, 0, 1).astype(np.float32)
        a_dash = np.clip(centre_width / self.resolution / 2 + 0.5 - self.dash_distance, 0, 1).astype(np.float32)
        a_road = self.road
        floor = (1 - a_road) * (1 - a_line) * (1 - a_dash)
        road_rgb = np.float32(ROAD_RGB) + self.fine[..., None]
        paint = (a_road * (1 - a_line) * (1 - a_dash))[..., None] * road_rgb
        paint += (a_line * (1 - a_dash))[..., None] * np.float32(border_rgb)
        paint += a_dash[..., None] * np.float32(centre_rgb)
        return _to_uint8(paint), _to_uint8(floor * 255)

    def default_mat(self) -> np.ndarray:
        """The default mat: FLOOR_RGB with mottling and grain (float32 (H, W, 3))."""
        return np.float32(FLOOR_RGB) + (self.blotch + self.fine)[..., None]


_LAYERS: weakref.WeakKeyDictionary[Track, _TextureLayers] = weakref.WeakKeyDictionary()


def _texture_layers(track: Track) -> _TextureLayers:
    """The track's texture layers with line distances for every width of LINE_WIDTH_RANGE, built once per Track."""
    layers = _LAYERS.get(track)
    if layers is None:
        layers = _TextureLayers.build(track, TEXTURE_RESOLUTION, FLOOR_MARGIN, LINE_WIDTH_RANGE[1] / 2)
        distances = {name: getattr(layers, name).astype(np.float32) for name in ("line_distance", "dash_distance")}
        layers = _LAYERS[track] = replace(layers, **distances)  # float32: faster repainting, half the memory
    return layers


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Round and saturate float values to uint8."""
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def _compose(paint: np.ndarray, floor: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """rgb = paint + floor coverage * mat colour (uint8 paint and coverage, float mat)."""
    alpha = floor[..., None] * np.float32(1 / 255)
    return _to_uint8(paint + alpha * np.asarray(mat, dtype=np.float32))


def _dashes(line: np.ndarray, pieces: int = 5) -> np.ndarray:
    """Centre dashes along a polyline (world metres) as (K, 2, 2) segments, `pieces` per dash."""
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    starts = np.arange(0.0, s[-1], DASH_PERIOD)
    ends = np.minimum(starts + DASH_LENGTH, s[-1])
    at = starts[:, None] + (ends - starts)[:, None] * np.linspace(0, 1, pieces + 1)  # (D, pieces + 1)
    xy = np.stack([np.interp(at, s, line[:, 0]), np.interp(at, s, line[:, 1])], axis=-1)
    return np.stack([xy[:, :-1], xy[:, 1:]], axis=2).reshape(-1, 2, 2)


def _segment_distance(shape: tuple[int, int], segments: list[np.ndarray], reach: float) -> np.ndarray:
    """Distance (texels, float64) from every texel to the nearest of the segments, exact up to `reach`.

    `segments` are (K, 2, 2) arrays in texel coordinates. Only texels within about `reach` of a
    segment's bounding box are measured; the rest keep a distance larger than `reach`.
    """
    h, w = shape
    dist = np.full(shape, reach + 2.0)
    for (ax, ay), (bx, by) in np.concatenate(segments):
        x0, x1 = max(int(min(ax, bx) - reach), 0), min(int(max(ax, bx) + reach) + 2, w)
        y0, y1 = max(int(min(ay, by) - reach), 0), min(int(max(ay, by) + reach) + 2, h)
        if x0 >= x1 or y0 >= y1:
            continue
        xs = np.arange(x0, x1, dtype=np.float32) - np.float32(ax)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(ay)
        dx, dy = bx - ax, by - ay
        t = np.clip((xs * dx + ys * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
        np.minimum(dist[y0:y1, x0:x1], np.hypot(xs - t * dx, ys - t * dy), out=dist[y0:y1, x0:x1])
    return dist


_TEXTURES: weakref.WeakKeyDictionary[Track, GroundTexture] = weakref.WeakKeyDictionary()


def forget_ground_texture(track: Track) -> None:
    """Drop the cached ground texture of `track` (a renderer that still holds it keeps its copy)."""
    _TEXTURES.pop(track, None)


def ground_texture(track: Track) -> GroundTexture:
    """The track's ground texture, built once per Track object."""
    texture = _TEXTURES.get(track)
    if texture is None:
        texture = _TEXTURES[track] = GroundTexture.build(track)
    return texture


def _pyramid(image: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mip levels 0..MIP_LEVELS-1 (cv2.pyrDown: level-L texel i sits at level-0 texel i * 2**L)."""
    levels = [np.ascontiguousarray(image)]
    for _ in range(MIP_LEVELS - 1):
        levels.append(cv2.pyrDown(levels[-1]))
    return tuple(levels)


# ---- walls and sky ------------------------------------------------------------------------


def _background_rgb(elevation: np.ndarray) -> np.ndarray:
    """Wall/sky colour (float RGB, shape (..., 3)) of rays at the given elevations (rad)."""
    e = np.asarray(elevation, dtype=np.float32)[..., None]
    up = np.clip(e / ELEVATION_SPAN, 0, 1)
    down = np.clip(-e / ELEVATION_SPAN, 0, 1)
    above = (1 - up) * np.float32(WALL_RGB) + up * np.float32(SKY_RGB)
    below = (1 - down) * np.float32(WALL_BASE_RGB) + down * np.float32(WALL_FOOT_RGB)
    return np.where(e >= 0, above, below)


# ---- camera geometry ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Band:
    """Rows [j0, j1) of a strip's sample buffer, sampled from mip `level`."""

    j0: int
    j1: int
    level: int
    homography: np.ndarray  # (3, 3) buffer pixel (u, j) -> car-frame ground (forward, left, 1)


@dataclass(frozen=True)
class _Strip:
    """Image rows [v0, v1) sampled `sub` times per row, then area-averaged to one row."""

    v0: int
    v1: int
    sub: int
    bands: tuple[_Band, ...]
    background: np.ndarray | None  # prefill of the (sub * rows, W) buffer when sub > 1


@dataclass(frozen=True, eq=False)
class _View:
    """One camera geometry at one output size: background image and ground strips."""

    background: np.ndarray  # (H, W) or (H, W, 3) uint8
    strips: tuple[_Strip, ...]
    horizon: float  # continuous row of the horizon (pixel i covers [i, i + 1))
    z: float  # metres, camera height above the ground (episode jitter included)
    pitch: float  # radians down (episode jitter included); objects are projected with z and pitch
    yaw: float = 0.0  # radians left of the car's heading (a perturbation; 0 as mounted)

    levels: np.ndarray = field(init=False)  # (B,) mip level of every band, in strip order
    homographies: np.ndarray = field(init=False)  # (B, 3, 3) of every band

    def __post_init__(self) -> None:
        bands = [band for strip in self.strips for band in strip.bands]
        object.__setattr__(self, "levels", np.array([b.level for b in bands], dtype=int))
        homographies = np.array([b.homography for b in bands]).reshape(-1, 3, 3)
        object.__setattr__(self, "homographies", homographies)


def _ground_homography(
    x: float, y: float, z: float, pitch: float, fx: float, fy: float, cx: float, cy: float
) -> np.ndarray:
    """3x3 from pixel index (u, v, 1) to car-frame ground (forward, left, 1), up to scale."""
    sp, cp = math.sin(pitch), math.cos(pitch)
    cx, cy = cx - 0.5, cy - 0.5  # pixel index u has its centre at u + 0.5
    w = np.array([0.0, cp / fy, sp - cp * cy / fy])
    fw = x * w + z * np.array([0.0, -sp / fy, cp + sp * cy / fy])
    lw = y * w + z * np.array([-1 / fx, 0.0, cx / fx])
    return np.stack([fw, lw, w])


def _make_view(
    camera: CameraSpec,
    width: int,
    height: int,
    resolution: float,
    grayscale: bool,
    dz: float = 0.0,
    dpitch: float = 0.0,
    gains: np.ndarray | None = None,
    yaw: float = 0.0,
) -> _View:
    """Precompute bands and background for a camera (z and pitch jittered by dz, dpitch; turned
    left by `yaw` radians about its vertical axis)."""
    fx, fy, cx, cy = camera.intrinsics(width, height)
    z, pitch = camera.z + dz, camera.pitch + dpitch
    sp, cp = math.sin(pitch), math.cos(pitch)
    gains = np.ones(3, np.float32) if gains is None else np.asarray(gains, np.float32)

    def rays(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Down and forward components of the centre-column ray through continuous row v."""
        b = (v - cy) / fy
        return sp + cp * b, cp - sp * b

    # Background: each row's colour averaged over 8 sub-rows, so the horizon is anti-aliased.
    sub_v = np.arange(height)[:, None] + (np.arange(8) + 0.5) / 8
    down, fwd = rays(sub_v)
    rows = _background_rgb(np.arctan2(-down, fwd)).mean(axis=1) * gains
    rows_rgb = _to_uint8(rows)[:, None]
    background = np.ascontiguousarray(np.broadcast_to(rows_rgb, (height, width, 3)))
    if grayscale:
        background = cv2.cvtColor(background, cv2.COLOR_RGB2GRAY)
    if yaw:  # ground seen from the camera's own (turned) frame, then turned and moved into the car frame
        yc, ys = math.cos(yaw), math.sin(yaw)
        mount = np.array([[yc, -ys, camera.x], [ys, yc, camera.y], [0.0, 0.0, 1.0]])
        h_car = mount @ _ground_homography(0.0, 0.0, z, pitch, fx, fy, cx, cy)
    else:
        h_car = _ground_homography(camera.x, camera.y, z, pitch, fx, fy, cx, cy)

    # Ground rows: the whole row must see the ground nearer than `far` (its top edge too).
    v = np.arange(height, dtype=np.float64)
    w_top, f_top = rays(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (w_top > 1e-9) & (z * f_top / w_top <= camera.far)
        w_mid = rays(v + 0.5)[0]
        lateral = z / (fx * w_mid)  # metres of ground per pixel across the row
        along = z / (fy * w_mid**2)  # metres per pixel along the view direction
    strips: list[_Strip] = []
    ground = np.flatnonzero(ok)
    if len(ground):
        start = int(ground[0])
        lat, lon = lateral[start:], along[start:]
        # Extra rows only where one row's ground footprint spans more than a texel lengthwise.
        stretch = np.maximum(lon / np.maximum(lat, resolution), 1.0)
        sub = np.clip(2 ** np.round(np.log2(stretch)), 1, MAX_SUBROWS).astype(int)
        footprint = np.sqrt(lat * lon / sub)
        level = np.clip(np.round(np.log2(footprint / resolution)), 0, MIP_LEVELS - 1).astype(int)
        for s0, s1 in _runs(sub):
            v0, k = start + s0, int(sub[s0])
            bands = []
            for b0, b1 in _runs(level[s0:s1]):
                # band row j samples image row v0 + b0 + (j + 0.5) / k - 0.5 (pixel-centre indices)
                to_row = np.array([[1.0, 0, 0], [0, 1.0 / k, v0 + b0 + 0.5 / k - 0.5], [0, 0, 1.0]])
                bands.append(_Band(b0 * k, b1 * k, int(level[s0 + b0]), h_car @ to_row))
            v1 = start + s1
            bg = np.ascontiguousarray(np.repeat(background[v0:v1], k, axis=0)) if k > 1 else None
            strips.append(_Strip(v0, v1, k, tuple(bands), bg))
    horizon = cy - fy * math.tan(pitch)
    return _View(background, tuple(strips), horizon, z, pitch, yaw)


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the runs of equal consecutive values."""
    cuts = np.flatnonzero(np.diff(values)) + 1
    return list(zip(np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(values)]]).tolist()))


# ---- domain randomisation -----------------------------------------------------------------


FLOOR_KINDS = ("plain", "mottled", "tiles", "grain", "carpet", "concrete", "wood")  # procedural mats
_LEGACY_FLOOR_KINDS = FLOOR_KINDS[:4]  # the mats of `floor_texture` before carpet, concrete and wood
NOISE_BANKS = 6  # noise levels of a `noise` range, evenly spaced over it (banks of precomputed noise)
CLUTTER_CLEARANCE = 0.3  # metres between clutter and the nearest road or line paint
_NUMBER_LIMITS = {  # knobs given as one number: allowed bounds, units in the docstring
    "brightness": (0.0, 1.0),
    "contrast": (0.0, 1.0),
    "color": (0.0, 1.0),
    "noise": (0.0, 64.0),
    "blur": (0.0, 1.0),
    "camera_height": (0.0, 0.05),
    "camera_pitch": (0.0, 0.2),
    "camera_yaw": (0.0, 0.2),
    "white_balance": (0.0, 1.0),
    "jpeg": (0.0, 1.0),
    "motion_blur": (0.0, 16.0),
    "clutter": (0, 100),
    "lens": (0.0, 0.5),
}
_RANGE_LIMITS = {  # knobs given as a (low, high) pair: allowed bounds, units in the docstring
    "camera_height": (-0.05, 0.1),
    "noise": (0.0, 64.0),
    "blur_sigma": (0.1, 5.0),
    "exposure": (0.25, 4.0),
    "jpeg_quality": (1, 100),
}


@dataclass(frozen=True)
class DomainRandomization:
    """Image and scene jitter for training; all off by default, drawn from the renderer's seed.

    The same seed and call sequence give the same frames; a knob that is off draws nothing, so
    turning one on does not change what the others draw. Widths in pixels are of DeepRacer's
    160-pixel-wide image and scale with the rendered width.

    Per frame, in this order (after boxes are drawn, before any `CameraPerturbation`):
    - `lens`: barrel distortion of the wide-angle lens (DeepRacer's camera has a ~120 degree
      fisheye-like lens; the renderer is a pinhole). Half the episodes keep the pinhole (the
      simulator's camera; this also halves the cost), the others a strength k uniform in
      [0, lens] (limit 0.5): the pixel at radius r (in half image diagonals) shows the pinhole
      image at radius r (1 + k r^2) / (1 + k), so the corners stay and the centre is magnified
      by 1 + k (lines bow outwards). It models the look of the lens, not its wider field of view.
    - `brightness` (gain 1 +- brightness, < 1), `contrast` (about mid-gray, 1 +- contrast, < 1)
      and the episode's `exposure` gain, one lookup table (made once per episode when only the
      exposure varies).
    - a gaussian blur with probability `blur` (0..1), sigma uniform in `blur_sigma` px (within
      0.1..5; focus and a dirty lens).
    - `motion_blur`: a vertical box blur (the ground streams vertically through the image when
      driving) of length uniform in [0, motion_blur] px (limit 16; under 1 px nothing). The
      renderer is given poses, not speeds, so the length is random per frame rather than
      scaled by the car's speed. At 4 m/s and a 1/60 s exposure the near ground moves about
      5 px (mid ground) to 19 px (bottom row) at 160x120, so 3 px is a mild setting.
    - `noise`: gaussian noise, std in gray levels: a number is a fixed std, a (low, high) pair
      a std drawn per frame from NOISE_BANKS levels evenly spaced over it (limit 64).
    - `jpeg`: with this probability (0..1) the frame is JPEG encoded and decoded at a quality
      uniform in `jpeg_quality` (integers 1..100), as the car's camera sends MJPEG at 160x120.

    Per episode (`CameraRenderer.new_episode`):
    - camera pose within the car's mounting tolerance (the camera sits on a plastic bracket
      whose angle is set by hand, on a chassis that squats and rolls; a few degrees are 0.05
      rad): `camera_height` metres (a number: +- it, limit 0.05; a (low, high) pair: the range,
      within -0.05..0.1), `camera_pitch` +- radians (+ = down, limit 0.2), `camera_yaw` +-
      radians (+ = left, limit 0.2).
    - `exposure`: a gain log-uniform in (low, high) (within 0.25..4), the venue's light and
      the camera's auto exposure.
    - one of `scene_variants` (default TEXTURE_POOL) scene variants, each drawn once per renderer from its own stream:
      - `floor_texture`: a random mat of one of `floor_kinds` (FLOOR_KINDS: plain, mottled,
        tiles, grain; carpet, concrete, wood as in DeepRacer venues);
      - `color`: a per-channel colour gain 1 +- color (< 1), also on walls, sky and boxes;
      - `white_balance`: a colour temperature shift, ln(red gain / blue gain) uniform in
        +- white_balance (limit 1; 0.7 is the shift between 3000 K and 6500 K light) with a
        green tint of a quarter of that, normalised so gray levels keep their luminance;
      - `line_style`: border line brightness 0.7..1 of white with a +-5 % tint, centre line
        colour between yellow and white at brightness 0.7..1, each width uniform in
        LINE_WIDTH_RANGE (1.5 to 3 inch tape; the default is 5 cm);
      - `clutter`: up to this many flat objects (rugs, papers, tape, bags: ellipses,
        rectangles and strips of 5-50 cm, random colours) lying on the mat at least
        CLUTTER_CLEARANCE metres from the road's paint (limit 100).
    """

    brightness: float = 0.0  # max relative change
    contrast: float = 0.0
    color: float = 0.0  # per-channel gain jitter
    noise: float | tuple[float, float] = 0.0  # gaussian noise std in gray levels, or a (low, high) range
    blur: float = 0.0  # probability of a small gaussian blur
    camera_height: float | tuple[float, float] = 0.0  # max metres of z jitter, or a (low, high) range
    camera_pitch: float = 0.0  # max radians of pitch jitter
    floor_texture: bool = False  # random floor colour/texture per episode
    blur_sigma: tuple[float, float] = (0.4, 1.2)  # px, sigma of the `blur`
    camera_yaw: float = 0.0  # max radians of yaw jitter
    exposure: tuple[float, float] = (1.0, 1.0)  # gain range per episode (log-uniform)
    white_balance: float = 0.0  # max |ln(red gain / blue gain)| per scene variant
    jpeg: float = 0.0  # probability of JPEG artefacts per frame
    jpeg_quality: tuple[int, int] = (20, 95)  # JPEG quality range of `jpeg`
    motion_blur: float = 0.0  # px, max length of a vertical motion blur per frame
    floor_kinds: tuple[str, ...] = _LEGACY_FLOOR_KINDS  # the mats `floor_texture` draws from
    line_style: bool = False  # random line colours, brightness and widths per scene variant
    clutter: int = 0  # max flat objects on the mat per scene variant
    lens: float = 0.0  # max barrel distortion strength k per episode
    scene_variants: int = 16  # scene variants per renderer (TEXTURE_POOL); each costs a texture's build and memory

    def __post_init__(self) -> None:
        if not (isinstance(self.scene_variants, int) and 1 <= self.scene_variants <= 64):
            raise ValueError(
                f"DomainRandomization.scene_variants must be a whole number in 1..64, got {self.scene_variants!r}"
            )
        for name, (low, high) in _NUMBER_LIMITS.items():
            value = getattr(self, name)
            if not (name in _RANGE_LIMITS and isinstance(value, (tuple, list))):  # pairs: below
                _check_number(name, value, low, high)
        for name in ("brightness", "contrast", "color"):
            if getattr(self, name) >= 1:
                raise ValueError(f"DomainRandomization.{name} must be < 1 so gains stay positive")
        if self.clutter != int(self.clutter):
            raise ValueError(f"DomainRandomization.clutter must be a whole number, got {self.clutter!r}")
        for name, (low, high) in _RANGE_LIMITS.items():
            value = getattr(self, name)
            if name in ("noise", "camera_height") and not isinstance(value, (tuple, list)):
                continue
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise ValueError(f"DomainRandomization.{name} must be a (low, high) pair, got {value!r}")
            for v in value:
                _check_number(name, v, low, high)
            if value[0] > value[1]:
                raise ValueError(f"DomainRandomization.{name} must have low <= high, got {value!r}")
            if name == "jpeg_quality" and any(v != int(v) for v in value):
                raise ValueError(f"DomainRandomization.jpeg_quality must be whole numbers, got {value!r}")
            object.__setattr__(self, name, tuple(int(v) if name == "jpeg_quality" else float(v) for v in value))
        kinds = self.floor_kinds
        if isinstance(kinds, str) or not kinds or any(k not in FLOOR_KINDS for k in kinds):
            raise ValueError(
                f"DomainRandomization.floor_kinds must be a non-empty tuple of {', '.join(FLOOR_KINDS)}, got {kinds!r}"
            )
        object.__setattr__(self, "floor_kinds", tuple(kinds))

    @property
    def enabled(self) -> bool:
        """True if anything is randomised."""
        return self != DomainRandomization()


def _check_number(name: str, value: object, low: float, high: float) -> None:
    """ValueError naming DomainRandomization.<name> unless value is a finite number in [low, high]."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and low <= value <= high):
        raise ValueError(f"DomainRandomization.{name} must be a finite number in [{low:g}, {high:g}], got {value!r}")


# The randomisation of `deepracer-rl train --randomize` and `sim_node randomize:=true`.
STANDARD_RANDOMIZATION = DomainRandomization(
    brightness=0.2,
    contrast=0.2,
    color=0.1,
    noise=3.0,
    blur=0.2,
    camera_height=0.005,
    camera_pitch=0.02,
    floor_texture=True,
)

# For policies that generalise: its ranges cover the robustness evaluation's test perturbations
# (`robustness.PERTURBATIONS`: brightness 0.6 and 1.5, blur 2 px, noise std 8, JPEG quality 30,
# pitch +-0.05 rad, height +2 cm) and add the real car's look (wide-angle lens, MJPEG, motion
# blur, venues' floors, lines and clutter). JPEG and the blurs are applied to some frames only,
# so a frame costs about 1.5x to 2x of an unrandomised one.
GENERAL_RANDOMIZATION = DomainRandomization(
    color=0.1,
    noise=(0.0, 10.0),
    blur=0.2,
    blur_sigma=(0.4, 2.5),
    camera_height=(-0.01, 0.03),
    camera_pitch=0.06,
    camera_yaw=0.03,
    floor_texture=True,
    floor_kinds=FLOOR_KINDS,
    exposure=(0.55, 1.6),
    white_balance=0.4,
    jpeg=0.25,
    jpeg_quality=(20, 95),
    motion_blur=3.0,
    line_style=True,
    clutter=12,
    lens=0.2,
)

RANDOMIZATION_PRESETS = {
    "none": DomainRandomization(),
    "standard": STANDARD_RANDOMIZATION,
    "general": GENERAL_RANDOMIZATION,
}


def randomization_preset(name: str) -> DomainRandomization:
    """The preset called `name` ("none", "standard", "general"; for `train --randomize NAME`)."""
    try:
        return RANDOMIZATION_PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown randomisation preset {name!r}: choose one of {', '.join(RANDOMIZATION_PRESETS)}"
        ) from None


@dataclass(frozen=True)
class CameraPerturbation:
    """Fixed changes of the camera, the same in every frame and episode: what a robustness evaluation
    varies (`deepracer-rl evaluate --perturb NAME=VALUE`, `deepracer-rl robustness`).

    Camera pose (added to the URDF's mounting): pitch (rad, + = down), height (m), yaw (rad, + =
    left). Image, in this order after any randomisation: brightness (gain on pixel values) and
    contrast (gain about mid-gray 128), a gaussian blur of `blur_px` (sigma in pixels of DeepRacer's
    160-pixel-wide image, scaled to the rendered width), gaussian noise (std in gray levels, from
    the renderer's seeded stream), then JPEG encoding at `jpeg_quality` (1-100, as the car's MJPEG
    camera sends frames; 0 = none) at the rendered size. The defaults change nothing.
    """

    brightness: float = 1.0
    contrast: float = 1.0
    blur_px: float = 0.0
    noise_std: float = 0.0
    jpeg_quality: int = 0
    camera_pitch_rad: float = 0.0
    camera_height_m: float = 0.0
    camera_yaw_rad: float = 0.0

    def __post_init__(self) -> None:
        bounds = {
            "brightness": (0.0, 10.0),
            "contrast": (0.0, 10.0),
            "blur_px": (0.0, 20.0),
            "noise_std": (0.0, 128.0),
            "jpeg_quality": (0, 100),
            "camera_pitch_rad": (-0.5, 0.5),
            "camera_height_m": (-0.05, 0.5),
            "camera_yaw_rad": (-0.5, 0.5),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
                raise ValueError(f"camera perturbation {name} must be a number in [{low:g}, {high:g}], got {value!r}")
        if self.jpeg_quality != int(self.jpeg_quality):
            raise ValueError(
                f"camera perturbation jpeg_quality must be a whole number 1-100 (0 = none), got {self.jpeg_quality}"
            )

    @classmethod
    def parse(cls, assignments: Sequence[str]) -> CameraPerturbation:
        """From `NAME=VALUE` texts (e.g. `brightness=0.6`); an unknown name or a bad value raises ValueError."""
        names = [f.name for f in fields(cls)]
        values: dict[str, float] = {}
        for text in assignments:
            name, sep, value = text.partition("=")
            name = name.strip()
            if not sep or name not in names:
                raise ValueError(f"--perturb {text!r}: expected NAME=VALUE with NAME one of {', '.join(names)}")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"--perturb {text!r}: {value!r} is not a number") from None
            values[name] = int(number) if name == "jpeg_quality" and number == int(number) else number
        return cls(**values)

    def changes(self) -> dict[str, float]:
        """The fields that differ from no change, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}

    @property
    def enabled(self) -> bool:
        """True if anything is changed."""
        return bool(self.changes())

    @property
    def per_frame(self) -> bool:
        """True if the image itself is changed (not only the camera pose)."""
        return bool(self.brightness != 1 or self.contrast != 1 or self.blur_px or self.noise_std or self.jpeg_quality)


TEXTURE_POOL = 16  # scene variants (mat x colour gain) per renderer, built when first drawn


def _random_mat(
    rng: np.random.Generator, shape: tuple[int, int], resolution: float, kinds: Sequence[str] = _LEGACY_FLOOR_KINDS
) -> np.ndarray:
    """A random floor of one of `kinds` (FLOOR_KINDS) in a random colour (float32 (H, W, 3) RGB)."""
    h, w = shape

    def colour() -> np.ndarray:
        hsv = np.array([[[rng.uniform(0, 180), rng.uniform(0, 170), rng.uniform(50, 230)]]])
        return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)

    base = colour()
    kind = kinds[int(rng.integers(0, len(kinds)))]
    if kind == "plain":
        return np.broadcast_to(base, (h, w, 3))
    if kind == "mottled":  # blotches of 5-50 cm
        cell = max(1, int(rng.uniform(0.05, 0.5) / resolution))
        small = rng.standard_normal((h // cell + 2, w // cell + 2, 3), dtype=np.float32)
        small = small.mean(axis=2, keepdims=True) * 0.8 + small * 0.2
        blotches = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        return base + blotches * np.float32(rng.uniform(8, 40))
    if kind == "tiles":  # tiles of 20-100 cm, checkerboard or shaded
        cell = max(1, int(rng.uniform(0.2, 1.0) / resolution))
        other = colour() if rng.random() < 0.5 else base * np.float32(rng.uniform(0.6, 0.9))
        rows, cols = np.ogrid[:h, :w]
        checker = ((rows // cell + cols // cell) % 2).astype(np.float32)[..., None]
        return base * (1 - checker) + other * checker
    if kind == "grain":
        small = rng.standard_normal((h // 2 + 1, w // 2 + 1), dtype=np.float32)  # carpet grain
        grain = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        return base + grain * np.float32(rng.uniform(5, 25))
    if kind == "carpet":
        return _carpet(rng, shape, resolution)
    if kind == "concrete":
        return _concrete(rng, shape, resolution)
    return _wood(rng, shape, resolution)


def _hsv(rng: np.random.Generator, hue: tuple[float, float], sat: tuple[float, float], val: tuple[float, float]):
    """A float32 RGB colour with OpenCV HSV (hue 0..180) drawn uniformly from the ranges."""
    hsv = np.array([[[rng.uniform(*hue), rng.uniform(*sat), rng.uniform(*val)]]]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Unit-ish gaussian noise varying over `cell` texels (float32 (H, W))."""
    h, w = shape
    cell = max(1, int(cell))
    small = rng.standard_normal((h // cell + 2, w // cell + 2), dtype=np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC if cell > 1 else cv2.INTER_NEAREST)


def _carpet(rng: np.random.Generator, shape: tuple[int, int], resolution: float) -> np.ndarray:
    """Event carpet: a muted colour, fine pile, tufts of 2-5 cm and often 50 cm carpet tiles laid in turns."""
    h, w = shape
    base = _hsv(rng, (0, 180), (20, 140), (50, 170))
    pile = rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(5, 12))
    tufts = _smooth_noise(rng, shape, rng.uniform(0.02, 0.05) / resolution) * np.float32(rng.uniform(3, 10))
    shade = pile + tufts
    if rng.random() < 0.6:  # tiles laid with alternating pile direction look lighter and darker
        cell = max(1, int(0.5 / resolution))
        rows, cols = np.ogrid[:h, :w]
        shade += ((rows // cell + cols // cell) % 2 * 2 - 1).astype(np.float32) * np.float32(rng.uniform(3, 10))
    return base + shade[..., None]


def _concrete(rng: np.random.Generator, shape: tuple[int, int], resolution: float) -> np.ndarray:
    """Polished concrete: gray, speckled, stained over 0.3-1.5 m, often with slab joints every 1-3 m."""
    h, w = shape
    base = _hsv(rng, (0, 180), (0, 25), (100, 200))
    speckle = rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(3, 9))
    stains = _smooth_noise(rng, shape, rng.uniform(0.3, 1.5) / resolution) * np.float32(rng.uniform(4, 18))
    shade = speckle + stains
    if rng.random() < 0.6:
        period = max(2, int(rng.uniform(1.0, 3.0) / resolution))
        width = max(1, int(round(0.01 / resolution)))
        rows, cols = np.ogrid[:h, :w]
        joints = ((rows % period) < width) | ((cols % period) < width)
        shade -= joints.astype(np.float32) * np.float32(rng.uniform(20, 50))
    return base + shade[..., None]


def _wood(rng: np.random.Generator, shape: tuple[int, int], resolution: float) -> np.ndarray:
    """Wooden floor: planks 8-20 cm wide and 0.6-2 m long, staggered, with grain streaks and dark seams."""
    h, w = shape
    base = _hsv(rng, (5, 22), (70, 180), (80, 200))
    along_x = rng.random() < 0.5
    rows, cols = np.mgrid[:h, :w].astype(np.float32)
    u, v = (cols, rows) if along_x else (rows, cols)  # u along the planks, v across
    plank_w = max(2, int(rng.uniform(0.08, 0.2) / resolution))
    plank_l = max(4, int(rng.uniform(0.6, 2.0) / resolution))
    lane = (v // plank_w).astype(np.int64)
    offset = (lane * 7919 % 13) / 13.0 * plank_l  # staggered ends
    piece = ((u + offset) // plank_l).astype(np.int64)
    ident = (lane * 1_000_003 + piece) % 4096
    tone = rng.uniform(-1, 1, 4096).astype(np.float32)[ident] * np.float32(rng.uniform(8, 25))
    phase = rng.uniform(0, 2 * np.pi, 4096).astype(np.float32)[ident]
    period = np.float32(rng.uniform(0.005, 0.02) / resolution)
    wobble = _smooth_noise(rng, shape, 0.1 / resolution) * np.float32(1.5)
    grain = np.sin((v % plank_w) / period * np.float32(2 * np.pi) + wobble + phase) * np.float32(rng.uniform(4, 12))
    seams = ((v % plank_w) < 1) | (((u + offset) % plank_l) < 1)
    shade = tone + grain - seams.astype(np.float32) * np.float32(rng.uniform(25, 60))
    return base + shade[..., None]


def _white_balance(rng: np.random.Generator, amount: float) -> np.ndarray:
    """Per-channel gains (3,) of a colour temperature shift ln(R/B) in +-amount, green tint a quarter of it.

    Normalised to luminance 1 (0.299 R + 0.587 G + 0.114 B), so gray levels keep their brightness.
    """
    t = rng.uniform(-amount, amount)
    tint = rng.uniform(-amount, amount) / 4
    gains = np.exp(np.array([t / 2, tint, -t / 2]))
    return (gains / (gains @ np.array([0.299, 0.587, 0.114]))).astype(np.float32)


def _line_style(rng: np.random.Generator) -> dict:
    """Random line paint: border and centre colours (RGB) and widths (metres), see `DomainRandomization`."""
    border = np.float32(255) * np.float32(rng.uniform(0.7, 1.0)) * (1 + rng.uniform(-0.05, 0.05, 3)).astype(np.float32)
    mix = np.float32(rng.uniform(0, 1))  # 0 yellow, 1 white
    centre = (np.float32(CENTRE_RGB) * (1 - mix) + np.float32(BORDER_RGB) * mix) * np.float32(rng.uniform(0.7, 1.0))
    return {
        "border_rgb": np.minimum(border, 255),
        "centre_rgb": np.minimum(centre, 255),
        "border_width": rng.uniform(*LINE_WIDTH_RANGE),
        "centre_width": rng.uniform(*LINE_WIDTH_RANGE),
    }


def _add_clutter(rng: np.random.Generator, mat: np.ndarray, floor: np.ndarray, resolution: float, count: int) -> None:
    """Draw up to `count` flat objects on `mat` (float32 (H, W, 3), in place) clear of the road's paint.

    A candidate (ellipse, rectangle or strip of 5-50 cm, random colour) is kept when its centre
    lies at least CLUTTER_CLEARANCE plus its own radius from every texel that is not bare mat.
    """
    h, w = floor.shape
    clear = cv2.distanceTransform((floor == 255).astype(np.uint8), cv2.DIST_L2, 5) * resolution  # metres
    for _ in range(count):
        size = rng.uniform(0.05, 0.5, 2)
        cx, cy, angle = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, 180)
        shape = int(rng.integers(0, 3))
        colour = tuple(float(c) for c in _hsv(rng, (0, 180), (0, 255), (30, 250)))
        if clear[int(cy), int(cx)] < CLUTTER_CLEARANCE + size.max() / 2:
            continue
        axes = size / resolution / 2
        if shape == 2:  # a strip of tape or a cable
            axes[1] = max(1.0, 0.02 / resolution)
        centre = (int(cx * 16), int(cy * 16))
        if shape == 0:
            cv2.ellipse(mat, centre, (int(axes[0] * 16), int(axes[1] * 16)), angle, 0, 360, colour, -1, cv2.LINE_AA, 4)
        else:
            box = cv2.boxPoints(((cx, cy), (2 * axes[0], 2 * axes[1]), angle))
            cv2.fillConvexPoly(mat, np.round(box * 16).astype(np.int32), colour, cv2.LINE_AA, 4)


# ---- objects standing on the ground ---------------------------------------------------------

BOX_RGB = (200, 60, 40)  # default colour of a Box
# Face shading (times the box colour) so that edges show even in grayscale: the top is lit,
# the ends (across the length) a bit darker, the long sides darker still.
TOP_SHADE, END_SHADE, SIDE_SHADE = 1.0, 0.8, 0.62


@dataclass(frozen=True)
class Box:
    """An upright box standing on the ground, seen by the camera (an obstacle, another car).

    x, y: centre of its footprint in metres, track (world) frame; yaw: radians from +x to its
    length axis (counter-clockwise); length (along yaw), width (across) and height (from the
    ground up) in metres; colour: RGB 0..255, shaded per face when drawn.
    """

    x: float
    y: float
    yaw: float = 0.0
    length: float = 0.2
    width: float = 0.2
    height: float = 0.2
    colour: tuple[int, int, int] = BOX_RGB

    def __post_init__(self) -> None:
        for name in ("x", "y", "yaw", "length", "width", "height"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or (name in ("length", "width", "height") and value <= 0):
                raise ValueError(f"Box.{name} must be finite (and > 0 for sizes), got {value}")
            object.__setattr__(self, name, value)
        colour = tuple(int(c) for c in self.colour)
        if len(colour) != 3 or not all(0 <= c <= 255 for c in colour):
            raise ValueError(f"Box.colour must be 3 integers in 0..255 (RGB), got {self.colour}")
        object.__setattr__(self, "colour", colour)

    def corners(self) -> np.ndarray:
        """(8, 3) corners in the world frame (metres): bottom ring, then top ring (see _FACES)."""
        return _box_corners(np.array([[self.x, self.y, self.yaw, self.length, self.width, self.height]]))[0]


def car_box(pose: Sequence[float], colour: Sequence[int] = BOX_RGB, car: CarSpec | None = None) -> Box:
    """The box a DeepRacer car fills when its base_link is at `pose` (x, y metres, yaw rad, world).

    Length and width are the URDF's (`CarSpec`, default the package's car); the body is
    centred half a wheelbase ahead of base_link (the rear axle), as in `render_topdown`.
    CarSpec has no overall height: the camera sits on top of the car, so the camera's height
    above the ground stands in for it.
    """
    car = _car_spec() if car is None else car
    x, y, yaw = (float(v) for v in pose)
    ahead = car.wheelbase / 2
    return Box(
        x + ahead * math.cos(yaw),
        y + ahead * math.sin(yaw),
        yaw,
        car.length,
        car.width,
        car.camera.z,
        tuple(colour),
    )


@dataclass(frozen=True)
class CarBoxes:
    """Boxes seen per car, as arrays (each car its own world: `world_objects.ObjectWorld`).

    params (N, B, 6): x, y, yaw, length, width, height of box b of car n's world (metres,
    radians, as `Box`); colours (B, 3) or (N, B, 3) RGB 0..255; present (N, B) bool or None
    (all): which boxes exist (ragged per-car lists are padded). Row n goes with row n of the
    poses given to `CameraRenderer.render`.
    """

    params: np.ndarray
    colours: np.ndarray
    present: np.ndarray | None = None

    def __post_init__(self) -> None:
        params = np.asarray(self.params, dtype=np.float64)
        if params.ndim != 3 or params.shape[2] != 6:
            raise ValueError(f"CarBoxes.params must have shape (N, B, 6), got {params.shape}")
        if not np.all(np.isfinite(params)) or np.any(params[..., 3:] <= 0):
            raise ValueError("CarBoxes.params must be finite, with sizes > 0")
        colours = np.asarray(self.colours, dtype=np.float32)
        if colours.shape not in ((params.shape[1], 3), params.shape[:2] + (3,)):
            raise ValueError(f"CarBoxes.colours must have shape (B, 3) or (N, B, 3), got {colours.shape}")
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "colours", colours)
        if self.present is not None:
            object.__setattr__(self, "present", np.asarray(self.present, dtype=bool).reshape(params.shape[:2]))

    @classmethod
    def from_lists(cls, boxes: Sequence[Sequence[Box]]) -> CarBoxes:
        """Per-car lists of `Box` (any lengths) as arrays."""
        n, b = len(boxes), max((len(row) for row in boxes), default=0)
        params = np.zeros((n, b, 6))
        params[..., 3:] = 1.0
        colours = np.zeros((n, b, 3), dtype=np.float32)
        present = np.zeros((n, b), dtype=bool)
        for i, row in enumerate(boxes):
            for k, box in enumerate(row):
                params[i, k] = (box.x, box.y, box.yaw, box.length, box.width, box.height)
                colours[i, k] = box.colour
                present[i, k] = True
        return cls(params, colours, present)

    def take(self, rows: np.ndarray) -> CarBoxes:
        """The boxes of cars `rows` (in that order)."""
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        colours = self.colours if self.colours.ndim == 2 else self.colours[rows]
        return CarBoxes(self.params[rows], colours, None if self.present is None else self.present[rows])

    @property
    def empty(self) -> bool:
        return self.params.shape[1] == 0 or (self.present is not None and not self.present.any())


# Corner k of a box: footprint corner k % 4 at (-,-), (+,-), (+,+), (-,+) half length, half
# width from its centre (box frame), on the ground for k < 4 and at the top for k >= 4.
_CORNER_SIGNS = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]] * 2, dtype=np.float64) / 2
# Faces drawn (the bottom lies on the ground) as corner indices: front (+length), back,
# right (-width), left, top; and their shades.
_FACES = np.array([[1, 2, 6, 5], [3, 0, 4, 7], [0, 1, 5, 4], [2, 3, 7, 6], [4, 5, 6, 7]])
_FACE_SHADES = np.array([END_SHADE, END_SHADE, SIDE_SHADE, SIDE_SHADE, TOP_SHADE], dtype=np.float32)
_MAX_FIXED = 1 << 28  # cv2 drawing coordinates (with _DRAW_SHIFT bits) are kept within int32


def _box_corners(params: np.ndarray) -> np.ndarray:
    """(B, 8, 3) world corners of boxes given as (B, 6) rows x, y, yaw, length, width, height."""
    c, s = np.cos(params[:, 2:3]), np.sin(params[:, 2:3])
    along = _CORNER_SIGNS[:, 0] * params[:, 3:4]  # (B, 8)
    across = _CORNER_SIGNS[:, 1] * params[:, 4:5]
    corners = np.empty((len(params), 8, 3))
    corners[..., 0] = params[:, 0:1] + c * along - s * across
    corners[..., 1] = params[:, 1:2] + s * along + c * across
    corners[:, :4, 2] = 0.0
    corners[:, 4:, 2] = params[:, 5:6]
    return corners


def _as_boxes(objects: Sequence[Box] | Sequence[Sequence[Box]] | CarBoxes | None, n: int) -> CarBoxes | None:
    """The boxes `render` draws as arrays (one row shared by every car, or n rows), None when none."""
    if objects is None:
        return None
    if isinstance(objects, CarBoxes):
        if len(objects.params) != n:
            raise ValueError(f"{n} poses but boxes of {len(objects.params)} cars")
        return None if objects.empty else objects
    if not len(objects):
        return None
    if isinstance(objects[0], Box):
        params = np.array([(b.x, b.y, b.yaw, b.length, b.width, b.height) for b in objects], dtype=np.float64)
        rgb = np.array([b.colour for b in objects], dtype=np.float32)
        return CarBoxes(params[None], rgb)
    if len(objects) != n:
        raise ValueError(f"{n} poses but box lists of {len(objects)} cars")
    boxes = CarBoxes.from_lists(objects)  # type: ignore[arg-type]
    return None if boxes.empty else boxes


def _clip_depth(poly: np.ndarray, near: float, far: float) -> np.ndarray:
    """Convex polygon (K, 3) in camera (depth, right, down) clipped to near <= depth <= far."""
    for sign, limit in ((1.0, near), (-1.0, -far)):
        if len(poly) == 0:
            break
        inside = sign * poly[:, 0] - limit  # >= 0 on the kept side of the plane
        out = []
        for k in range(len(poly)):
            p, q, dp, dq = poly[k - 1], poly[k], inside[k - 1], inside[k]
            if (dp >= 0) != (dq >= 0):
                out.append(p + (q - p) * (dp / (dp - dq)))
            if dq >= 0:
                out.append(q)
        poly = np.array(out).reshape(-1, 3)
    return poly


@dataclass(frozen=True, eq=False)
class _Scene:
    """One scene variant: texture mip levels (gray or RGB) and the colour gain they carry."""

    levels: tuple[np.ndarray, ...]
    gains: np.ndarray | None  # (3,) per-channel gain, None = 1


@dataclass
class _Car:
    """Per-car episode state: its camera view, its scene, its random stream and its image settings."""

    view: _View
    scene: _Scene
    rng: np.random.Generator = field(repr=False)
    exposure: float = 1.0  # gain of this episode (`DomainRandomization.exposure`)
    lens: tuple[np.ndarray, np.ndarray] | None = None  # cv2.remap maps of this episode's lens


@lru_cache(maxsize=128)
def _motion_kernel(length: float) -> np.ndarray:
    """A vertical box kernel (n, 1) of `length` pixels (>= 1): ones, the last tap the fraction left."""
    taps = np.ones((math.ceil(length), 1), np.float32)
    taps[-1] = length - (len(taps) - 1)
    return taps / np.float32(length)


@lru_cache(maxsize=256)
def _gain_lut(gain: float) -> np.ndarray:
    """Lookup table of a gain on pixel values (made once per episode's exposure)."""
    return _to_uint8(gain * np.arange(256.0))


def _lens_maps(width: int, height: int, k: float) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps (fixed point) of a barrel distortion of strength k that keeps the corners.

    Output pixel at radius r (in half image diagonals from the centre) samples the input at
    radius r (1 + k r^2) / (1 + k).
    """
    x = np.arange(width, dtype=np.float32) + np.float32(0.5 - width / 2)
    y = np.arange(height, dtype=np.float32)[:, None] + np.float32(0.5 - height / 2)
    half_diagonal = np.float32(math.hypot(width, height) / 2)
    scale = (1 + np.float32(k) * (x * x + y * y) / half_diagonal**2) / np.float32(1 + k)
    map_x = x * scale + np.float32(width / 2 - 0.5)
    map_y = y * scale + np.float32(height / 2 - 0.5)
    return cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)


# ---- renderer -----------------------------------------------------------------------------


class CameraRenderer:
    """Render the front camera of N cars on one track at once (ground-plane IPM, NumPy + cv2).

    Car i (row i of the poses) keeps its own episode randomisation and random stream,
    derived from `seed` and i: for one seed and call sequence the frames are identical.
    The camera's `far` clip removes ground rows further ahead than it; `near` is not
    modelled for the ground (the nearest ground in view is some 0.15 m ahead of the
    DeepRacer camera). Boxes passed to `render` are clipped to near..far depth.
    """

    def __init__(
        self,
        track: Track,
        camera: CameraSpec | None = None,
        width: int = OBSERVATION_WIDTH,
        height: int = OBSERVATION_HEIGHT,
        grayscale: bool = True,
        randomization: DomainRandomization | None = None,
        seed: int | None = None,
        perturbation: CameraPerturbation | None = None,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        self.track = track
        self.camera = _car_spec().camera if camera is None else camera
        self.width, self.height, self.grayscale = int(width), int(height), bool(grayscale)
        self.randomization = randomization or DomainRandomization()
        self.perturbation = perturbation or CameraPerturbation()
        self.texture = ground_texture(track)
        self._scene = _Scene(self._levels(self.texture.rgb), None)
        self._view = self._make_view()
        scale = 0.5 ** np.arange(MIP_LEVELS)
        to_level = np.zeros((MIP_LEVELS, 3, 3))
        to_level[:, 0, 0], to_level[:, 1, 1], to_level[:, 2, 2] = scale, scale, 1.0
        self._level_maps = to_level @ self.texture.world_to_texel  # (L, 3, 3) world -> level texel
        self.reseed(seed)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one frame: (H, W) gray or (H, W, 3) RGB."""
        return (self.height, self.width) if self.grayscale else (self.height, self.width, 3)

    def horizon_row(self, car_index: int = 0) -> float:
        """Image row of the horizon for a car's camera (continuous; pixel i covers [i, i + 1))."""
        return self._car(car_index).view.horizon

    def reseed(self, seed: int | None) -> None:
        """Restart all random streams from `seed`; every car redraws its episode randomisation."""
        self._entropy = np.random.SeedSequence(seed).entropy
        self._cars: list[_Car] = []
        self._pool: dict[int, _Scene] = {}
        r = self.randomization
        image = (r.brightness, r.contrast, r.blur, r.noise, r.exposure != (1.0, 1.0), r.jpeg, r.motion_blur, r.lens)
        self._per_frame = any(image)
        self._batched = bool(r.motion_blur or r.jpeg or isinstance(r.noise, tuple))  # see _jitter
        self._noise = None
        self._noise_banks: list[np.ndarray | None] = []
        self._perturbation_noise = None
        if self.perturbation.noise_std:  # a bank 4 frames long, like the randomisation's
            rng = np.random.default_rng(self._stream(3))
            noise = rng.standard_normal(4 * int(np.prod(self.shape)), dtype=np.float32)
            noise *= np.float32(self.perturbation.noise_std)
            self._perturbation_noise = np.clip(np.round(noise), -255, 255).astype(np.int16)
        if isinstance(r.noise, tuple):  # NOISE_BANKS levels over the range, 2 frames long each, one pattern
            unit = np.random.default_rng(self._stream(4)).standard_normal(2 * int(np.prod(self.shape)), np.float32)
            for std in np.linspace(r.noise[0], r.noise[1], NOISE_BANKS):
                bank = np.clip(np.round(unit * np.float32(std)), -255, 255).astype(np.int16)
                self._noise_banks.append(bank if std > 0 else None)
        elif r.noise:  # a bank of gaussian noise 4 frames long, read from a random offset per frame
            rng = np.random.default_rng(self._stream(0))
            size = 4 * int(np.prod(self.shape))
            noise = rng.standard_normal(size, dtype=np.float32) * np.float32(self.randomization.noise)
            self._noise = np.clip(np.round(noise), -255, 255).astype(np.int16)

    def new_episode(self, car_index: int) -> None:
        """Redraw one car's per-episode randomisation (camera pose, scene variant, exposure, lens)."""
        car = self._car(car_index)
        car.view, car.scene, car.exposure, car.lens = self._draw_episode(car.rng)

    # ---- internals --------------------------------------------------------------------
    def _stream(self, *key: int) -> np.random.SeedSequence:
        return np.random.SeedSequence(self._entropy, spawn_key=key)

    def _levels(self, rgb: np.ndarray) -> tuple[np.ndarray, ...]:
        return _pyramid(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if self.grayscale else rgb)

    def _make_view(
        self, dz: float = 0.0, dpitch: float = 0.0, gains: np.ndarray | None = None, dyaw: float = 0.0
    ) -> _View:
        resolution, p = self.texture.resolution, self.perturbation
        dz, dpitch, yaw = dz + p.camera_height_m, dpitch + p.camera_pitch_rad, dyaw + p.camera_yaw_rad
        return _make_view(self.camera, self.width, self.height, resolution, self.grayscale, dz, dpitch, gains, yaw)

    def _car(self, index: int) -> _Car:
        if index < 0:
            raise IndexError(f"car index must be >= 0, got {index}")
        while len(self._cars) <= index:
            rng = np.random.default_rng(self._stream(1, len(self._cars)))
            view, scene, exposure, lens = self._draw_episode(rng)
            self._cars.append(_Car(view, scene, rng, exposure, lens))
        return self._cars[index]

    def _pool_scene(self, k: int) -> _Scene:
        """Scene variant k of the pool, drawn from its own stream (same seed -> same variant)."""
        scene = self._pool.get(k)
        if scene is None:
            r, tex = self.randomization, self.texture
            rng = np.random.default_rng(self._stream(2, k))
            rgb = tex.rgb
            mat = _random_mat(rng, tex.floor.shape, tex.resolution, r.floor_kinds) if r.floor_texture else None
            if mat is not None and not (r.line_style or r.clutter):
                rgb = tex.with_floor(mat)
            gains = (1 + rng.uniform(-1, 1, 3) * r.color).astype(np.float32) if r.color else None
            if r.white_balance:
                wb = _white_balance(rng, r.white_balance)
                gains = wb if gains is None else gains * wb
            if r.line_style or r.clutter:  # repainted from the track's layers
                layers = _texture_layers(self.track)
                paint, floor = layers.paint(**_line_style(rng)) if r.line_style else (tex.paint, tex.floor)
                mat = np.array(layers.default_mat() if mat is None else mat, dtype=np.float32, order="C")
                if r.clutter:
                    _add_clutter(rng, mat, floor, tex.resolution, int(r.clutter))
                rgb = _compose(paint, floor, mat)
            if gains is not None:
                rgb = _to_uint8(rgb * gains)
            scene = self._pool[k] = _Scene(self._levels(rgb), gains)
        return scene

    def _draw_episode(self, rng: np.random.Generator) -> tuple[_View, _Scene, float, tuple | None]:
        """A car's episode: view (camera pose, scene gains), scene variant, exposure gain, lens maps."""
        r = self.randomization
        if not r.enabled:
            return self._view, self._scene, 1.0, None
        if isinstance(r.camera_height, tuple):
            dz = rng.uniform(*r.camera_height)
        else:
            dz = rng.uniform(-1, 1) * r.camera_height
        dpitch = rng.uniform(-1, 1) * r.camera_pitch
        scene = self._scene
        if r.floor_texture or r.color or r.white_balance or r.line_style or r.clutter:
            scene = self._pool_scene(int(rng.integers(r.scene_variants)))
        dyaw = rng.uniform(-1, 1) * r.camera_yaw if r.camera_yaw else 0.0
        exposure = math.exp(rng.uniform(*np.log(r.exposure))) if r.exposure != (1.0, 1.0) else 1.0
        lens = None
        if r.lens and rng.random() < 0.5:  # else this episode's camera is a pinhole, as the simulator's
            lens = _lens_maps(self.width, self.height, rng.uniform(0, r.lens))
        if dz == 0 and dpitch == 0 and dyaw == 0 and scene.gains is None:
            return self._view, scene, exposure, lens
        return self._make_view(dz, dpitch, scene.gains, dyaw), scene, exposure, lens

    # ---- rendering --------------------------------------------------------------------
    def render(
        self,
        poses: np.ndarray,
        indices: Sequence[int] | None = None,
        objects: Sequence[Box] | Sequence[Sequence[Box]] | CarBoxes | None = None,
    ) -> np.ndarray:
        """poses (N,3) x, y, yaw -> (N,H,W) uint8 if grayscale else (N,H,W,3) uint8 RGB.

        Row i of `poses` is car `indices[i]` (default: car i): its randomisation and stream.
        `objects`: boxes standing on the track, drawn over ground and background before the
        per-frame jitter (see `_object_draws`): one list of `Box` for every car, or each car's
        own (a list of N lists, or `CarBoxes` with N rows: cars in worlds of their own); a box
        whose footprint holds the camera is that car's own and is skipped. None or empty costs
        nothing.
        """
        poses = np.asarray(poses, dtype=np.float64)
        if poses.ndim != 2 or poses.shape[1] != 3:
            raise ValueError(f"poses must have shape (N, 3) (x, y, yaw), got {poses.shape}")
        n = len(poses)
        car_ids = range(n) if indices is None else [int(i) for i in indices]
        if len(car_ids) != n:
            raise ValueError(f"{n} poses but {len(car_ids)} car indices")
        out = np.empty((n,) + self.shape, dtype=np.uint8)
        if n == 0:
            return out
        cars = [self._car(i) for i in car_ids]
        c, s = np.cos(poses[:, 2]), np.sin(poses[:, 2])
        pose = np.zeros((n, 3, 3))
        pose[:, 0, 0], pose[:, 0, 1], pose[:, 0, 2] = c, -s, poses[:, 0]
        pose[:, 1, 0], pose[:, 1, 1], pose[:, 1, 2] = s, c, poses[:, 1]
        pose[:, 2, 2] = 1.0
        # Band matrices (band pixel -> texel of its mip level), batched over cars sharing a view.
        groups: dict[int, list[int]] = {}
        for i, car in enumerate(cars):
            groups.setdefault(id(car.view), []).append(i)
        mats: list[np.ndarray] = [None] * n  # type: ignore[list-item]
        for idx in groups.values():
            view = cars[idx[0]].view
            m = self._level_maps[view.levels][None] @ pose[idx][:, None] @ view.homographies[None]
            for i, mi in zip(idx, m):
                mats[i] = mi
        boxes = _as_boxes(objects, n)
        draws = self._object_draws(poses, cars, boxes) if boxes is not None else None
        w = self.width
        for i, car in enumerate(cars):
            frame = out[i]
            frame[...] = car.view.background
            m = iter(mats[i])
            for strip in car.view.strips:
                rows = frame[strip.v0 : strip.v1]
                buf = rows if strip.sub == 1 else strip.background.copy()
                for band in strip.bands:
                    cv2.warpPerspective(
                        car.scene.levels[band.level],
                        next(m),
                        (w, band.j1 - band.j0),
                        dst=buf[band.j0 : band.j1],
                        flags=_WARP_FLAGS,
                        borderMode=cv2.BORDER_TRANSPARENT,
                    )
                if strip.sub > 1:
                    cv2.resize(buf, (w, strip.v1 - strip.v0), dst=rows, interpolation=cv2.INTER_AREA)
            if draws is not None:
                polygons, colours, ends = draws
                for k in range(ends[i], ends[i + 1]):
                    if polygons[k] is not None:
                        cv2.fillConvexPoly(frame, polygons[k], colours[k], cv2.LINE_8, _DRAW_SHIFT)
            if self._per_frame:
                self._jitter(frame, car)
            if self.perturbation.per_frame:
                self._perturb(frame, car.rng)
        return out

    def _object_draws(
        self, poses: np.ndarray, cars: list[_Car], objects: CarBoxes
    ) -> tuple[list[np.ndarray | None], list, list[int]]:
        """The faces of `objects` each car sees, in drawing order: polygons, colours, ends.

        Car i fills faces ends[i]..ends[i + 1] - 1: polygons[k] in int32 cv2 coordinates
        (_DRAW_SHIFT fractional bits; None if clipping left nothing), colours[k] gray or RGB.
        Each car's camera (its view's height and pitch, the pinhole of the ground code) sees
        a box's faces that point toward it (back faces culled), farthest box first (painter's
        order by the distance from the camera to the box centre), each face clipped to the
        camera's near..far depth. Boxes wholly outside the view frustum, and a box whose
        footprint holds the camera (the car's own), give nothing. Projection and culling are
        NumPy over cars x boxes; only the faces to draw are looped over.
        """
        n = len(poses)
        params = objects.params  # (P, B, 6): P = 1 (the same boxes for every car) or n
        p_rows, n_boxes = params.shape[:2]
        rgb = objects.colours.reshape(-1, 3)  # (B or P * B, 3)
        corners = _box_corners(params.reshape(-1, 6)).reshape(p_rows, n_boxes, 8, 3)  # world
        fx, fy, cx, cy = self.camera.intrinsics(self.width, self.height)
        near, far = self.camera.near, self.camera.far
        z = np.array([car.view.z for car in cars])
        pitch = np.array([car.view.pitch for car in cars])
        c, s = np.cos(poses[:, 2]), np.sin(poses[:, 2])
        look = poses[:, 2] + np.array([car.view.yaw for car in cars])  # the optical axis' heading
        lc, ls = np.cos(look), np.sin(look)
        sp, cp = np.sin(pitch), np.cos(pitch)
        zero = np.zeros(n)
        cam = np.stack(
            [
                poses[:, 0] + c * self.camera.x - s * self.camera.y,
                poses[:, 1] + s * self.camera.x + c * self.camera.y,
                z,
            ],
            axis=1,
        )  # (N, 3) optical centre in the world
        # Rows: unit depth (optical axis), right and down axes of each camera in the world.
        axes = np.stack(
            [
                np.stack([cp * lc, cp * ls, -sp], axis=1),
                np.stack([ls, -lc, zero], axis=1),
                np.stack([-sp * lc, -sp * ls, -cp], axis=1),
            ],
            axis=1,
        )  # (N, 3, 3)
        rel = corners - cam[:, None, None]  # (N, B, 8, 3)
        q = rel @ axes[:, None].transpose(0, 1, 3, 2)  # (N, B, 8, 3) depth, right, down
        d, r, dn = q[..., 0], q[..., 1], q[..., 2]
        # Outside the frustum: all corners beyond one of its planes (image edges, near, far).
        u, v = fx * r + cx * d, fy * dn + cy * d  # u / d, v / d: continuous pixel coordinates
        outside = (
            np.all(d < near, axis=2)
            | np.all(d > far, axis=2)
            | np.all(u < 0, axis=2)
            | np.all(u > self.width * d, axis=2)
            | np.all(v < 0, axis=2)
            | np.all(v > self.height * d, axis=2)
        )  # (N, B)
        # The camera in each box's frame (forward along its length, left, up) decides which faces
        # point toward it (back-face culling, in _FACES order) and whether it is inside (own box).
        bc, bs = np.cos(params[..., 2]), np.sin(params[..., 2])  # (P, B)
        dx, dy = cam[:, None, 0] - params[..., 0], cam[:, None, 1] - params[..., 1]  # (N, B)
        along, across = bc * dx + bs * dy, bc * dy - bs * dx
        half_l, half_w = params[..., 3] / 2, params[..., 4] / 2
        facing = np.stack(
            [along > half_l, along < -half_l, across < -half_w, across > half_w, cam[:, 2:] > params[..., 5]], axis=2
        )  # (N, B, 5)
        own = (np.abs(along) <= half_l) & (np.abs(across) <= half_w)
        hidden = outside | own
        if objects.present is not None:
            hidden |= ~objects.present
        draw = facing & ~hidden[..., None]  # (N, B, 5)
        order = np.argsort(-np.hypot(dx, dy), axis=1, kind="stable")  # farthest first
        cars_i, ranks, faces = np.nonzero(draw[np.arange(n)[:, None], order])  # car-major, then by rank
        ends = [0] + np.cumsum(np.bincount(cars_i, minlength=n)).tolist()
        if len(cars_i) == 0:
            return [], [], ends
        boxes = order[cars_i, ranks]
        poly = q[cars_i[:, None], boxes[:, None], _FACES[faces]]  # (K, 4, 3)
        depth = poly[..., 0]
        clip = np.flatnonzero(np.any((depth < near) | (depth > far), axis=1)).tolist()
        if clip:  # projected after clipping, below
            poly[clip, :, 0] = 1.0
        polygons: list[np.ndarray | None] = list(self._to_fixed(poly, fx, fy, cx, cy))
        for k in clip:
            clipped = _clip_depth(q[cars_i[k], boxes[k], _FACES[faces[k]]], near, far)
            polygons[k] = self._to_fixed(clipped, fx, fy, cx, cy) if len(clipped) >= 3 else None
        scenes: dict[int, int] = {}
        gains = []
        for car in cars:
            if id(car.scene) not in scenes:
                scenes[id(car.scene)] = len(gains)
                gains.append(car.scene.gains)
        table = self._face_colours(rgb, gains)  # (S, B or N * B, 5)
        scene_of = np.array([scenes[id(car.scene)] for car in cars])
        colour_of = boxes if len(rgb) == n_boxes else cars_i * n_boxes + boxes
        return polygons, table[scene_of[cars_i], colour_of, faces].tolist(), ends

    @staticmethod
    def _to_fixed(points: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
        """Camera (depth, right, down) points (..., 3) -> int32 cv2 drawing coordinates (..., 2).

        Continuous pixel u = cx + fx right / depth (pixel i covers [i, i + 1)), as the ground
        homography; cv2 puts pixel centres on integers, so u - 0.5, with _DRAW_SHIFT bits.
        """
        depth = points[..., 0]
        uv = np.stack([cx + fx * points[..., 1] / depth, cy + fy * points[..., 2] / depth], axis=-1)
        fixed = np.round((uv - 0.5) * (1 << _DRAW_SHIFT))
        return np.clip(fixed, -_MAX_FIXED, _MAX_FIXED).astype(np.int32)

    def _face_colours(self, rgb: np.ndarray, gains: list[np.ndarray | None]) -> np.ndarray:
        """Fill colours (S, B, 5) gray or (S, B, 5, 3) RGB uint8 of boxes (B, 3) RGB per scene.

        The box colour shaded per face, times each scene's colour gains (None = 1), rounded,
        then converted to gray like the ground texture (`_levels`: cv2 RGB2GRAY).
        """
        shaded = rgb[None, :, None, :] * _FACE_SHADES[None, None, :, None]  # (1, B, 5, 3)
        ones = np.ones(3, np.float32)
        colour = _to_uint8(shaded * np.stack([ones if g is None else g for g in gains])[:, None, None, :])
        if not self.grayscale:
            return colour
        return cv2.cvtColor(colour.reshape(-1, 1, 3), cv2.COLOR_RGB2GRAY).reshape(colour.shape[:3])

    def _perturb(self, frame: np.ndarray, rng: np.random.Generator) -> None:
        """The fixed image perturbation (`CameraPerturbation`), in place."""
        p = self.perturbation
        if p.brightness != 1 or p.contrast != 1:
            cv2.LUT(frame, _to_uint8(p.brightness * (p.contrast * (np.arange(256) - 128.0) + 128.0)), dst=frame)
        if p.blur_px:
            cv2.GaussianBlur(frame, (0, 0), p.blur_px * self.width / OBSERVATION_WIDTH, dst=frame)
        if self._perturbation_noise is not None:
            start = int(rng.integers(0, len(self._perturbation_noise) - frame.size))
            noise = self._perturbation_noise[start : start + frame.size].reshape(frame.shape)
            cv2.add(frame, noise, dst=frame, dtype=cv2.CV_8U)
        if p.jpeg_quality:
            frame[...] = _jpeg(frame, int(p.jpeg_quality))

    def _jitter(self, frame: np.ndarray, car: _Car) -> None:
        """Per-frame randomisation of one car's frame, in place (order: `DomainRandomization`).

        With motion blur, JPEG or a noise range on, the frame's random numbers come from one call
        (the cost of a draw is mostly Python's); otherwise one by one, as before those knobs.
        """
        r, rng = self.randomization, car.rng
        scale = self.width / OBSERVATION_WIDTH  # pixel widths are of the 160-pixel image
        if self._batched:
            batch = iter(rng.random(9).tolist())

            def uniform() -> float:
                return next(batch)

            def index(n: int) -> int:
                return min(int(next(batch) * n), n - 1)
        else:
            uniform = rng.random

            def index(n: int) -> int:
                return int(rng.integers(0, n))

        if car.lens is not None:
            frame[...] = cv2.remap(frame, car.lens[0], car.lens[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if r.brightness or r.contrast:
            gain = 1 + (2 * uniform() - 1) * r.brightness
            contrast = 1 + (2 * uniform() - 1) * r.contrast
            lut = _to_uint8(gain * car.exposure * (contrast * (np.arange(256) - 128.0) + 128.0))
            cv2.LUT(frame, lut, dst=frame)
        elif car.exposure != 1.0:  # the episode's table
            cv2.LUT(frame, _gain_lut(car.exposure), dst=frame)
        if r.blur and uniform() < r.blur:
            low, high = r.blur_sigma
            sigma = (low + (high - low) * uniform()) * scale  # "small" at any image size
            cv2.GaussianBlur(frame, (0, 0), sigma, dst=frame)
        if r.motion_blur:
            length = uniform() * r.motion_blur * scale
            if length >= 1:  # a vertical box of `length` pixels (fractional end tap)
                taps = _motion_kernel(round(length * 4) / 4)
                cv2.filter2D(frame, -1, taps, dst=frame, borderType=cv2.BORDER_REPLICATE)
        noise = self._noise
        if self._noise_banks:
            noise = self._noise_banks[index(len(self._noise_banks))]
        if noise is not None:
            start = index(len(noise) - frame.size)
            cv2.add(frame, noise[start : start + frame.size].reshape(frame.shape), dst=frame, dtype=cv2.CV_8U)
        if r.jpeg and uniform() < r.jpeg:
            low, high = r.jpeg_quality
            frame[...] = _jpeg(frame, low + index(high - low + 1))


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    """The frame (gray or RGB) after JPEG encoding at `quality` (1-100) and decoding."""
    bgr = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if frame.ndim == 2 else cv2.IMREAD_COLOR)
    return decoded if frame.ndim == 2 else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


# ---- maps and example views ---------------------------------------------------------------


@lru_cache(maxsize=1)
def _car_spec() -> CarSpec:
    from .car import CarSpec

    return CarSpec.from_urdf()


_CAR_COLOURS = ((220, 40, 40), (40, 110, 230), (250, 160, 20), (170, 60, 200), (30, 190, 160))


def render_topdown(
    track: Track, poses: np.ndarray | None = None, trail: np.ndarray | None = None, size: int = 800
) -> np.ndarray:
    """RGB map of the track (longest side `size` px) with cars drawn as oriented boxes.

    `trail` is an (M, 2) path of x, y (or a list of them) drawn as a line under the cars.
    """
    texture = ground_texture(track)
    h, w = texture.rgb.shape[:2]
    k = size / max(h, w)
    out_w, out_h = max(1, round(w * k)), max(1, round(h * k))
    image = cv2.resize(texture.rgb, (out_w, out_h), interpolation=cv2.INTER_AREA)
    to_px = np.diag([out_w / w, out_h / h, 1.0]) @ texture.world_to_texel

    def px(xy: np.ndarray) -> np.ndarray:
        t = np.asarray(xy, dtype=np.float64).reshape(-1, 2) @ to_px[:2, :2].T + to_px[:2, 2]
        return np.round(t * 16).astype(np.int32)  # 4 fractional bits

    if trail is not None:
        paths = trail if isinstance(trail, (list, tuple)) else [trail]
        thickness = max(1, size // 400)
        cv2.polylines(image, [px(p) for p in paths], False, (255, 90, 0), thickness, cv2.LINE_AA, 4)
    if poses is not None:
        car = _car_spec()
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
        half_l, half_w = car.length / 2, car.width / 2
        centre_x = car.wheelbase / 2  # the body sits around the middle of the wheelbase
        box = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [half_l, half_w] + [centre_x, 0]
        nose = np.array([[1, 0], [0.4, 0.7], [0.4, -0.7]]) * [half_l, half_w] + [centre_x, 0]
        for i, (x, y, yaw) in enumerate(poses):
            rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
            body = px(box @ rot.T + [x, y])
            cv2.fillPoly(image, [body], _CAR_COLOURS[i % len(_CAR_COLOURS)], cv2.LINE_AA, 4)
            cv2.polylines(image, [body], True, (20, 20, 20), 1, cv2.LINE_AA, 4)
            cv2.fillPoly(image, [px(nose @ rot.T + [x, y])], (255, 255, 255), cv2.LINE_AA, 4)
    return image


def example_poses(track: Track) -> np.ndarray:
    """A few poses for looking at a track: on the centre line facing along it, and offsets."""
    arcs = track.length * np.array([0.0, 0.25, 0.5, 0.75, 0.1, 0.6])
    points, headings = track.point_at(arcs)
    offsets = np.array([0, 0, 0, 0, 0.3, -0.3]) * track.width  # + = toward the left border
    normal = np.stack([-np.sin(headings), np.cos(headings)], axis=1)
    points = points + offsets[:, None] * normal
    return np.column_stack([points, headings])


def write_views(track: Track, out_dir: str | Path, poses: np.ndarray | None = None) -> list[Path]:
    """Write camera frames (640x480 RGB, 160x120 gray) from a few poses and a top-down map.

    Default poses: `example_poses(track)`. Returns the written PNG paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    poses = example_poses(track) if poses is None else np.asarray(poses, dtype=np.float64).reshape(-1, 3)
    camera = _car_spec().camera
    full = CameraRenderer(track, camera, camera.width, camera.height, grayscale=False).render(poses)
    small = CameraRenderer(track, camera, grayscale=True).render(poses)
    images: list[tuple[str, np.ndarray]] = []
    for i, (rgb, gray) in enumerate(zip(full, small)):
        rgb_name = f"view{i}_rgb_{camera.width}x{camera.height}.png"
        images.append((rgb_name, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)))
        images.append((f"view{i}_gray_{OBSERVATION_WIDTH}x{OBSERVATION_HEIGHT}.png", gray))
    images.append(("topdown.png", cv2.cvtColor(render_topdown(track, poses), cv2.COLOR_RGB2BGR)))
    paths = []
    for name, image in images:
        path = out / name
        if not cv2.imwrite(str(path), image):
            raise OSError(f"could not write {path}")
        paths.append(path)
    return paths
