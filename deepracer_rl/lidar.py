"""DeepRacer's 2D lidar for N cars at once: ray casting against objects and barrier walls, and the
observations of the three lidar sensors (LIDAR, SECTOR_LIDAR, DISCRETIZED_SECTOR_LIDAR).

Facts from aws-deepracer-community/deepracer-simapp: the scan (`sensors/constants.py`,
`racecar.launch.py`, `urdf/deepracer/racecar.gazebo`): 64 samples from -2.61799 to 2.61799 rad,
range 0.15-12 m, Gaussian noise sd 0.01 m, mounted on the `laser` link (`hokuyo_joint`:
0.02913 m ahead of the chassis origin, 0.16145 m above it, turned by yaw 3.1416, so sample 0
looks 30 degrees left of straight ahead, the scan sweeps counter-clockwise round the back and
the blind 60 degrees are straight ahead). The observation filters (`sagemaker_graph_manager.py`,
`filters/observation/observation_sector_discretize_filter.py`): LIDAR clips the ranges to
0.15-1.0; SECTOR_LIDAR is 8 sectors, 1 value each, clipping distance 0.5; DISCRETIZED_SECTOR_LIDAR
takes `lidar_config` (num_sectors 8, num_values_per_sector 8, clipping_dist 2.0 by default;
64 must divide by num_sectors).

Barrier walls: DeepRacer's worlds are meshes (not in the simapp's text sources), so the walls
here are a stated assumption: each border pushed WALL_MARGIN metres further from the centre
line, waypoint by waypoint (`barrier_walls`). No hit within the range gives inf, as Gazebo's
scan; an object nearer than the minimum range is not seen (the rays start there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .car import CarSpec
from .track import Track
from .world_objects import ObjectState, car_centres, rectangle_corners

SAMPLES = 64
MIN_ANGLE, MAX_ANGLE = -2.61799, 2.61799  # rad, in the laser frame
MIN_RANGE, MAX_RANGE = 0.15, 12.0  # m
NOISE_SD = 0.01  # m
# The laser link in DeepRacer's car model (origin midway between the axles): x ahead, z up, yaw.
MOUNT_X = 0.02913
MOUNT_Z = 0.16145  # above the chassis origin (the Gazebo sensor's height; the 2D cast ignores it)
MOUNT_YAW = 3.1416
WALL_MARGIN = 0.5  # m beyond each border (assumption, see the module docstring)
LIDAR_CLIP = (0.15, 1.0)  # the LIDAR observation's range
SECTOR_LIDAR_SECTORS = 8
SECTOR_LIDAR_CLIPPING_DIST = 0.5
LIDAR_SENSORS = ("LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR")


_FAR = np.array([[1e7, 1e7], [1e7 + 1.0, 1e7]])  # padding segment, never within range
GRID_CELL = 0.25  # m, the side of a cell of the walls' lookup grid (`WallGrid`)
GRID_MAX_REACH = 3.0  # m: scans reaching farther cull the walls car by car instead (few cells would help)


class LidarConfigError(ValueError):
    """A `lidar_config` of model_metadata.json is invalid; the message names the key."""


@dataclass(frozen=True)
class LidarConfig:
    """`lidar_config` of model_metadata.json (DISCRETIZED_SECTOR_LIDAR), DeepRacer's defaults."""

    num_sectors: int = 8
    num_values_per_sector: int = 8
    clipping_dist: float = 2.0

    def __post_init__(self) -> None:
        for name in ("num_sectors", "num_values_per_sector"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise LidarConfigError(f"lidar_config.{name}: expected a whole number >= 1, got {value!r}")
        if SAMPLES % self.num_sectors:
            raise LidarConfigError(
                f"lidar_config.num_sectors: {SAMPLES} lidar samples do not divide into {self.num_sectors} sectors "
                "(use 1, 2, 4, 8, 16, 32 or 64)"
            )
        clip = self.clipping_dist
        if isinstance(clip, bool) or not isinstance(clip, int | float) or not MIN_RANGE <= clip <= MAX_RANGE:
            raise LidarConfigError(
                f"lidar_config.clipping_dist: expected {MIN_RANGE:g} to {MAX_RANGE:g} m, got {clip!r}"
            )

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, object]) -> LidarConfig:
        """From a model_metadata.json dict: its `lidar_config` over the defaults."""
        config = metadata.get("lidar_config", {}) or {}
        if not isinstance(config, Mapping):
            raise LidarConfigError(f"lidar_config: expected an object, got {config!r}")
        unknown = set(config) - {"num_sectors", "num_values_per_sector", "clipping_dist"}
        if unknown:
            raise LidarConfigError(f"lidar_config.{sorted(unknown)[0]}: not a lidar_config key")
        return cls(**config)  # type: ignore[arg-type]

    @property
    def size(self) -> int:
        return self.num_sectors * self.num_values_per_sector


def beam_angles() -> np.ndarray:
    """(64,) beam directions in the car frame (rad, counter-clockwise from straight ahead)."""
    return np.linspace(MIN_ANGLE, MAX_ANGLE, SAMPLES) + MOUNT_YAW


def barrier_walls(track: Track, margin: float = WALL_MARGIN) -> np.ndarray:
    """(S, 2, 2) wall segments: the inner and outer borders each moved `margin` metres away from
    the centre line along the centre-to-border direction of every waypoint."""
    walls = []
    for border in (track.inner, track.outer):
        away = border - track.waypoints
        away /= np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-12)
        line = border + margin * away
        if track.closed:
            line = np.vstack([line, line[:1]])
        walls.append(np.stack([line[:-1], line[1:]], axis=1))
    return np.concatenate(walls)


def _object_edges(objects: ObjectState | None, worlds: int) -> np.ndarray:
    """(W, 4K, 2, 2) the visible boxes' footprint edges of every world."""
    if objects is None or objects.count == 0:
        return np.zeros((worlds, 0, 2, 2))
    half = objects.size[None, :, :2] / 2.0
    corners = rectangle_corners(objects.poses, half)  # (W, K, 4, 2)
    edges = np.stack([corners, np.roll(corners, -1, axis=2)], axis=3)  # (W, K, 4, 2, 2)
    return edges.reshape(worlds, -1, 2, 2)


def box_edges(params: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """(N, 4B, 2, 2) footprint edges of boxes (N, B, 6): x, y, yaw, length, width, height (the
    renderer's `camera.CarBoxes`); boxes not `present` (N, B) are moved far away (never hit)."""
    params = np.asarray(params, dtype=np.float64)
    n, b = params.shape[:2]
    if b == 0:
        return np.zeros((n, 0, 2, 2))
    corners = rectangle_corners(params[..., :3], params[..., 3:5] / 2.0)  # (N, B, 4, 2)
    edges = np.stack([corners, np.roll(corners, -1, axis=2)], axis=3)  # (N, B, 4, 2, 2)
    if present is not None:
        edges[~np.asarray(present, dtype=bool)] = _FAR
    return edges.reshape(n, -1, 2, 2)


def _distance_to_segments(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """(P, S) distances (m) from points (P, 2) to segments (S, 2, 2)."""
    a, d = segments[None, :, 0], segments[None, :, 1] - segments[None, :, 0]
    r = points[:, None] - a
    t = np.clip(np.einsum("psj,psj->ps", r, d) / np.maximum(np.einsum("psj,psj->ps", d, d), 1e-18), 0.0, 1.0)
    gap = r - t[..., None] * d
    return np.sqrt(np.einsum("psj,psj->ps", gap, gap))


class WallGrid:
    """The walls within `reach` of every point of each GRID_CELL square over the walls' extent (grown
    by `reach`), so a scan looks its walls up by the laser's cell instead of measuring all of them.

    `lookup(origins)` gives (N, M, 2, 2) candidate walls per origin (near ones first, padded with a
    segment far away), or None when an origin is outside the grid (the caller culls as before).
    """

    def __init__(self, walls: np.ndarray, reach: float, cell: float = GRID_CELL):
        points = walls.reshape(-1, 2)
        self.cell = float(cell)
        self.origin = points.min(axis=0) - reach
        self.shape = np.ceil((points.max(axis=0) + reach - self.origin) / cell).astype(int)  # cells (x, y)
        ix, iy = np.meshgrid(np.arange(self.shape[0]), np.arange(self.shape[1]), indexing="ij")
        centres = self.origin + (np.stack([ix.ravel(), iy.ravel()], axis=1) + 0.5) * cell
        # A wall within reach of some point of the cell is within reach + half the diagonal of its centre.
        near = np.concatenate(
            [_distance_to_segments(c, walls) for c in np.array_split(centres, max(1, len(centres) // 512))]
        ) <= reach + cell * np.sqrt(0.5)
        self.counts = near.sum(axis=1)  # (cells,)
        m = max(int(self.counts.max(initial=0)), 1)
        order = np.argsort(~near, axis=1, kind="stable")[:, :m]
        order[np.arange(m)[None] >= self.counts[:, None]] = len(walls)  # the padding segment
        self.table = order  # (cells, m) wall indices
        self.segments = np.concatenate([walls, _FAR[None]])

    def lookup(self, origins: np.ndarray) -> np.ndarray | None:
        cells = np.floor((origins[:, :2] - self.origin) / self.cell).astype(int)
        if np.any(cells < 0) or np.any(cells >= self.shape):
            return None
        flat = cells[:, 0] * self.shape[1] + cells[:, 1]
        m = max(int(self.counts[flat].max()), 1)
        return self.segments[self.table[flat, :m]]


class Lidar:
    """Ray casts 64 beams of N cars against the track's walls and each car's world objects.

    `ranges(poses, objects)` gives the noisy scan (N, 64) in metres (inf: nothing within
    `max_range`); `observe(kind, ranges)` the sensor's observation. Wall segments beyond a car's
    reach are culled first, so the cost grows with the walls near the car, not the whole track.
    """

    def __init__(
        self,
        track: Track,
        car: CarSpec,
        walls: np.ndarray | None = None,
        seed: int | None = None,
        noise_sd: float = NOISE_SD,
    ):
        self.car = car
        self.walls = barrier_walls(track) if walls is None else np.asarray(walls, dtype=np.float64).reshape(-1, 2, 2)
        self.angles = beam_angles()
        self.noise_sd = float(noise_sd)
        self.rng = np.random.default_rng(seed)
        self._grids: dict[float, WallGrid] = {}  # by reach (m): built when a scan of that reach first runs

    def reseed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def origins(self, poses: np.ndarray) -> np.ndarray:
        """(N, 3) the laser's x, y and heading for base_link poses (N, 3)."""
        centres = car_centres(poses, self.car)
        c, s = np.cos(centres[:, 2]), np.sin(centres[:, 2])
        return np.stack([centres[:, 0] + MOUNT_X * c, centres[:, 1] + MOUNT_X * s, centres[:, 2]], axis=-1)

    def _candidates(self, origins: np.ndarray, edges: np.ndarray, reach: float) -> np.ndarray:
        """(N, M, 2, 2) the walls and world edges (N, E, 2, 2) within `reach` of each origin,
        padded with a segment far away (never hit). Short reaches look the walls up in a `WallGrid`."""
        n = len(origins)
        if reach <= GRID_MAX_REACH and len(self.walls):
            grid = self._grids.get(reach)
            if grid is None:
                grid = self._grids[reach] = WallGrid(self.walls, reach)
            walls = grid.lookup(origins)
            if walls is not None:
                return np.concatenate([walls, edges], axis=1) if edges.shape[1] else walls
        pool = np.concatenate([np.broadcast_to(self.walls, (n, *self.walls.shape)), edges], axis=1)
        a, d = pool[:, :, 0], pool[:, :, 1] - pool[:, :, 0]
        dd = np.maximum(np.einsum("nsj,nsj->ns", d, d), 1e-18)
        r = origins[:, None, :2] - a
        t = np.clip(np.einsum("nsj,nsj->ns", r, d) / dd, 0.0, 1.0)
        gap = r - t[..., None] * d
        near = np.einsum("nsj,nsj->ns", gap, gap) <= reach * reach
        count = near.sum(axis=1)
        m = max(int(count.max(initial=0)), 1)
        order = np.argsort(~near, axis=1, kind="stable")[:, :m]  # the near ones first
        out = np.take_along_axis(pool, order[:, :, None, None], axis=1)
        out[np.arange(m)[None] >= count[:, None]] = _FAR
        return out

    def ranges(
        self,
        poses: np.ndarray,
        objects: ObjectState | None = None,
        max_range: float = MAX_RANGE,
        noise: bool = True,
        edges: np.ndarray | None = None,
    ) -> np.ndarray:
        """(N, 64) ranges (m) of the cars at base_link poses (N, 3); car n sees world n's objects
        (or, given instead, the object edges (N, E, 2, 2) of `box_edges`).

        Beams start at MIN_RANGE and end at `max_range` (less than MAX_RANGE when only a clipped
        observation is needed: faster, same observation); no hit is inf. Noise: Gaussian,
        `noise_sd`, on the hits, from the seeded generator.
        """
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
        n = len(poses)
        origin = self.origins(poses)
        if edges is None:
            edges = _object_edges(objects, n)
        segments = self._candidates(origin, edges, max_range)
        # float32 from here: centimetre-level ranges need no more, and it halves the memory traffic.
        theta = origin[:, 2:3] + self.angles[None]  # (N, B)
        dx = np.cos(theta).astype(np.float32)[:, :, None]  # (N, B, 1)
        dy = np.sin(theta).astype(np.float32)[:, :, None]
        # Segment a + u e meets ray o + t d where t = (r x e) / (d x e), u = (r x d) / (d x e), r = a - o.
        rel = (segments[:, :, 0] - origin[:, None, :2]).astype(np.float32)  # (N, S, 2)
        e = (segments[:, :, 1] - segments[:, :, 0]).astype(np.float32)
        ax, ay = rel[None, ..., 0].transpose(1, 0, 2), rel[None, ..., 1].transpose(1, 0, 2)  # (N, 1, S)
        ex, ey = e[None, ..., 0].transpose(1, 0, 2), e[None, ..., 1].transpose(1, 0, 2)
        r_cross_e = ax * ey - ay * ex  # (N, 1, S)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            inv = 1.0 / (dx * ey - dy * ex)  # (N, B, S)
            t = r_cross_e * inv
            u = (ax * dy - ay * dx) * inv
        hit = (u >= 0.0) & (u <= 1.0) & (t >= MIN_RANGE)
        dist = np.where(hit, t, np.float32(np.inf)).min(axis=2).astype(np.float64)
        dist[dist > max_range] = np.inf
        if noise and self.noise_sd > 0:
            finite = np.isfinite(dist)
            dist[finite] += self.rng.normal(0.0, self.noise_sd, int(finite.sum()))
        return dist

    def observe(self, kind: str, ranges: np.ndarray, config: LidarConfig | None = None) -> np.ndarray:
        """The observation of sensor `kind` from scans (N, 64), float32, DeepRacer's filters."""
        return observe(kind, ranges, config)

    @staticmethod
    def reach(kind: str, config: LidarConfig | None = None) -> float:
        """The farthest range that changes `kind`'s observation (a little more for the noise)."""
        far = {"LIDAR": LIDAR_CLIP[1], "SECTOR_LIDAR": SECTOR_LIDAR_CLIPPING_DIST}.get(kind)
        if far is None:
            far = (LidarConfig() if config is None else config).clipping_dist
        return min(far + 10 * NOISE_SD, MAX_RANGE)


def observe(kind: str, ranges: np.ndarray, config: LidarConfig | None = None) -> np.ndarray:
    """The observation of lidar sensor `kind` from scans (N, 64) in metres (inf: no hit), float32,
    DeepRacer's filters (the in-process sensor and the inference node's /scan both call this)."""
    if kind == "LIDAR":
        return np.clip(np.where(np.isfinite(ranges), ranges, LIDAR_CLIP[1]), *LIDAR_CLIP).astype(np.float32)
    if kind == "SECTOR_LIDAR":
        return sector_discretize(ranges, SECTOR_LIDAR_SECTORS, 1, SECTOR_LIDAR_CLIPPING_DIST)
    if kind == "DISCRETIZED_SECTOR_LIDAR":
        c = LidarConfig() if config is None else config
        return sector_discretize(ranges, c.num_sectors, c.num_values_per_sector, c.clipping_dist)
    raise ValueError(f"not a lidar sensor: {kind!r}; one of {LIDAR_SENSORS}")


def observation_shape(kind: str, config: LidarConfig | None = None) -> tuple[int]:
    """DeepRacer's observation shape of a lidar sensor (`sensors/utils.get_observation_space`)."""
    if kind == "LIDAR":
        return (SAMPLES,)
    if kind == "SECTOR_LIDAR":
        return (SECTOR_LIDAR_SECTORS,)
    if kind == "DISCRETIZED_SECTOR_LIDAR":
        return ((LidarConfig() if config is None else config).size,)
    raise ValueError(f"not a lidar sensor: {kind!r}; one of {LIDAR_SENSORS}")


def sector_discretize(ranges: np.ndarray, num_sectors: int, num_values: int, clipping_dist: float) -> np.ndarray:
    """DeepRacer's `ObservationSectorDiscretizeFilter` for scans (N, 64): per sector of
    consecutive beams the nearest range, clipped to `clipping_dist`, put in one of `num_values`
    bins of equal width, one-hot; a sector with nothing nearer than `clipping_dist` is all 0."""
    ranges = np.asarray(ranges, dtype=np.float64)
    clip = max(min(clipping_dist, MAX_RANGE), MIN_RANGE)
    values = np.where(np.isinf(ranges), clip, ranges)
    nearest = values.reshape(len(values), num_sectors, -1).min(axis=2)
    bins = np.clip(np.floor(np.minimum(nearest, clip) / (clip / num_values)).astype(np.int64), 0, num_values)
    one_hot = bins[..., None] == np.arange(num_values)  # bin num_values: nothing detected
    return one_hot.reshape(len(values), -1).astype(np.float32)
