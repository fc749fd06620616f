"""The embedded simulator: the physics and cameras of N cars stepped together with NumPy, no ROS.

Kinematic bicycle model about the rear axle (base_link) with first-order steering and
speed lag, steering-rate and acceleration limits and a grip limit on lateral
acceleration (the car understeers instead of turning tighter than its tyres allow).
Control runs at the camera rate from the URDF (15 Hz) with physics substeps; camera
frames come from `CameraRenderer`. Poses are (x, y, yaw) of base_link in the track frame.
The race (episodes, judging, rewards) is `RaceCore`'s, over this simulator through
`backends.InProcessBackend` or over any other backend.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .action_space import SPEED_MAX
from .camera import (
    OBSERVATION_HEIGHT,
    OBSERVATION_WIDTH,
    CameraPerturbation,
    DomainRandomization,
    forget_ground_texture,
)
from .car import CarSpec
from .track import Track

if TYPE_CHECKING:
    from .camera import CameraRenderer, CarBoxes
    from .lidar import Lidar

GRAVITY = 9.81
# The DeepRacer Evo's stereo pair: zed_camera_joint_leftcam / _rightcam at y = +0.03 / -0.03 m of the chassis
# (aws-deepracer/aws-deepracer, deepracer_description/models/xacro/urdf/deepracer_stereo_cameras_and_lidar_urdf.xacro).
STEREO_BASELINE = 0.06  # m between the left and right cameras, each half of it beside the URDF camera
RENDERER_CACHE_BYTES = 3 << 30  # renderers (ground textures, scene variants) kept for tracks no car is on


@dataclass(frozen=True)
class Dynamics:
    """Parameters of the vehicle model (the car's dimensions come from the URDF)."""

    steer_time_constant: float = 0.05  # s, servo lag
    max_steer_rate: float = 6.0  # rad/s, servo speed
    speed_time_constant: float = 0.15  # s, ESC + motor lag
    max_accel: float = 4.0  # m/s^2
    max_brake: float = 6.0  # m/s^2
    grip: float = 1.0  # tyre friction coefficient: lateral acceleration <= grip * g
    substeps: int = 4  # physics steps per control period
    max_speed: float = SPEED_MAX  # m/s, the fastest the car is commanded (DeepRacer's action-space limit)


@dataclass(frozen=True)
class OdometryUncertainty:
    """Standard deviations the simulator's odometry is published with (its ROS covariances, REP 105 frames).

    The simulator has no odometry noise model: its poses and speeds are the exact state it
    integrates (planar, so z, roll and pitch are exactly 0), and their true variance is zero. A
    zero covariance, though, claims infinite certainty, which ROS estimators (robot_localization,
    Nav2) refuse or treat as singular. So the odometry states a small floor instead: 1 mm, 1 mrad,
    1 mm/s and 1 mrad/s, far above the float64 state's rounding and far below anything a real
    car's odometry achieves; independent axes (diagonal covariances, symmetric).
    """

    position: float = 1e-3  # m, x y z
    orientation: float = 1e-3  # rad, roll pitch yaw
    linear: float = 1e-3  # m/s, vx vy vz
    angular: float = 1e-3  # rad/s, about x y z

    @staticmethod
    def _diagonal(first: float, second: float) -> tuple[float, ...]:
        variances = [first**2] * 3 + [second**2] * 3
        return tuple(variances[r] if r == c else 0.0 for r in range(6) for c in range(6))

    def pose_covariance(self) -> tuple[float, ...]:
        """The 6x6 row-major covariance of (x, y, z, roll, pitch, yaw): m^2, rad^2."""
        return self._diagonal(self.position, self.orientation)

    def twist_covariance(self) -> tuple[float, ...]:
        """The 6x6 row-major covariance of (vx, vy, vz, wx, wy, wz): (m/s)^2, (rad/s)^2."""
        return self._diagonal(self.linear, self.angular)


@dataclass
class CarState:
    """The physical state of N cars (arrays of shape (N,) or (N, 3))."""

    pose: np.ndarray  # x, y, yaw of base_link
    speed: np.ndarray  # m/s along the heading
    steer: np.ndarray  # rad, front wheel angle (+ = left)
    yaw_rate: np.ndarray = field(default_factory=lambda: np.zeros(0))


class Simulator:
    """N DeepRacer cars on one track, or each on one of several tracks, stepped together in one call.

    With several tracks (multi-track training) car i is on `tracks[car_track[i]]`, set by
    `place_car`; the cars never meet (each track is its own world). Each track's camera renderer
    (its ground texture and mip levels, some MB each) is built when a car first drives it and
    kept while the renderers no car is on stay within `renderer_cache_bytes` (least recently
    used dropped first).
    """

    def __init__(
        self,
        track: Track | str | Sequence[Track],
        n_cars: int = 1,
        car: CarSpec | None = None,
        dynamics: Dynamics | None = None,
        image_size: tuple[int, int] | None = (OBSERVATION_WIDTH, OBSERVATION_HEIGHT),
        grayscale: bool = True,
        randomization: DomainRandomization | None = None,
        seed: int | None = None,
        perturbation: CameraPerturbation | None = None,
        renderer_cache_bytes: int = RENDERER_CACHE_BYTES,
    ):
        if isinstance(track, (Track, str)):
            track = [track]
        self.tracks: tuple[Track, ...] = tuple(t if isinstance(t, Track) else Track.load(t) for t in track)
        if not self.tracks:
            raise ValueError("a Simulator needs at least one track")
        self.track = self.tracks[0]
        self.car = car or CarSpec.from_urdf()
        self.dynamics = dynamics or Dynamics()
        self.n = int(n_cars)
        if self.n < 1:
            raise ValueError(f"n_cars must be at least 1, got {n_cars}")
        self.control_hz = self.car.control_hz
        self.dt = 1.0 / self.control_hz
        self.state = CarState(
            pose=np.zeros((self.n, 3)),
            speed=np.zeros(self.n),
            steer=np.zeros(self.n),
            yaw_rate=np.zeros(self.n),
        )
        self.car_track = np.zeros(self.n, dtype=np.intp)  # index into `tracks` of each car's track
        self.sim_time = 0.0  # s since the simulator was made
        self.clamped_commands = 0  # commands beyond the car's limits, clamped to them (see `advance`)
        self._image_size = image_size
        self._renderer_options = dict(grayscale=grayscale, randomization=randomization, perturbation=perturbation)
        self._seed = seed
        self.renderer_cache_bytes = int(renderer_cache_bytes)
        self._renderers: OrderedDict[int, CameraRenderer] = OrderedDict()
        self._lidars: dict[int, Lidar] = {}  # per track, made when a lidar first scans it
        self.renderers_built = 0  # renderers made so far (a rebuilt one counts again)
        self.objects: CarBoxes | None = None  # boxes each car's camera sees (races with objects), row = car
        self.renderer = self.renderer_for(0) if image_size is not None else None

    # ---- cars -------------------------------------------------------------------------
    def place_car(self, i: int, pose: np.ndarray, new_episode: bool = True, track_index: int | None = None) -> None:
        """Put car i at `pose` (x, y, yaw), standing still, on `tracks[track_index]` (None: the track it
        is on); a new episode redraws its camera randomisation."""
        if track_index is not None:
            if not 0 <= track_index < len(self.tracks):
                raise IndexError(f"track index {track_index} outside 0..{len(self.tracks) - 1}")
            self.car_track[i] = track_index
        self.state.pose[i] = pose
        self.state.speed[i] = 0.0
        self.state.steer[i] = 0.0
        self.state.yaw_rate[i] = 0.0
        if new_episode and self._image_size is not None:
            self.renderer_for(int(self.car_track[i])).new_episode(i)

    def renderer_for(self, index: int) -> CameraRenderer:
        """The camera renderer of track `index` (built now if it is not kept)."""
        renderer = self._renderers.get(index)
        if renderer is not None:
            self._renderers.move_to_end(index)
            return renderer
        from .camera import CameraRenderer

        width, height = self._image_size  # type: ignore[misc]
        seed = None if self._seed is None else self._seed + 1 + 7919 * index
        renderer = CameraRenderer(
            self.tracks[index], self.car.camera, width=width, height=height, seed=seed, **self._renderer_options
        )
        self._renderers[index] = renderer
        self.renderers_built += 1
        self._evict()
        return renderer

    def _evict(self) -> None:
        """Drop the least recently used renderers of tracks no car is on beyond the cache's bytes."""
        in_use = set(self.car_track.tolist()) | {0}
        idle = [k for k in self._renderers if k not in in_use]
        total = sum(_renderer_bytes(self._renderers[k]) for k in idle)
        for k in idle:  # oldest first
            if total <= self.renderer_cache_bytes:
                break
            total -= _renderer_bytes(self._renderers.pop(k))
            forget_ground_texture(self.tracks[k])

    def render(self, rows: np.ndarray | None = None) -> np.ndarray | None:
        """Camera frames of every car, or of the cars in `rows` (in that order); None without a camera.
        Each car sees its row of `objects` (when set)."""
        if self._image_size is None:
            return None
        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.intp).reshape(-1)
        return self._render_at(self.state.pose[rows], rows)

    def render_stereo(self, rows: np.ndarray | None = None, baseline: float = STEREO_BASELINE) -> np.ndarray | None:
        """The stereo pair of every car (or of `rows`): (k, 2, H, W) left and right frames, the URDF camera
        moved `baseline` / 2 to the car's left and right (same height, pitch and intrinsics); one batched render."""
        if self._image_size is None:
            return None
        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.intp).reshape(-1)
        pose = self.state.pose[rows]
        left = pose.copy()
        left[:, 0] -= 0.5 * baseline * np.sin(pose[:, 2])
        left[:, 1] += 0.5 * baseline * np.cos(pose[:, 2])
        right = 2.0 * pose - left
        right[:, 2] = pose[:, 2]
        frames = self._render_at(np.concatenate([left, right]), np.concatenate([rows, rows]))
        return np.stack([frames[: len(rows)], frames[len(rows) :]], axis=1)

    def _render_at(self, poses: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Frames from base_link `poses` of cars `rows` (their tracks, randomisation and objects)."""
        objects = self.objects
        if len(self.tracks) == 1:
            boxes = None if objects is None else objects.take(rows)
            return self.renderer.render(poses, rows, boxes)  # type: ignore[union-attr]
        which = self.car_track[rows]
        out = None
        for k in np.unique(which).tolist():
            at = np.flatnonzero(which == k)
            boxes = None if objects is None else objects.take(rows[at])
            frames = self.renderer_for(k).render(poses[at], rows[at], boxes)
            if out is None:
                out = np.empty((len(rows),) + frames.shape[1:], dtype=frames.dtype)
            out[at] = frames
        if out is None:  # no rows
            out = self.renderer.render(poses, rows)  # type: ignore[union-attr]
        return out

    def lidar_for(self, index: int) -> Lidar:
        """The lidar of track `index` (its barrier walls; seeded per track), made when first needed."""
        lidar = self._lidars.get(index)
        if lidar is None:
            from .lidar import Lidar

            seed = None if self._seed is None else self._seed + 2 + 7919 * index
            lidar = self._lidars[index] = Lidar(self.tracks[index], self.car, seed=seed)
        return lidar

    def scan(self, rows: np.ndarray | None = None, max_range: float | None = None) -> np.ndarray:
        """(k, 64) lidar ranges (m, inf: no hit within `max_range`, default the lidar's 12 m) of every
        car or of `rows`, against its track's barrier walls and its row of `objects` (`lidar.Lidar`)."""
        from .lidar import MAX_RANGE, box_edges

        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.intp).reshape(-1)
        reach = MAX_RANGE if max_range is None else float(max_range)
        out = np.empty((len(rows), 64))
        which = self.car_track[rows]
        for k in np.unique(which).tolist():
            at = np.flatnonzero(which == k)
            edges = None
            if self.objects is not None:
                boxes = self.objects.take(rows[at])
                edges = box_edges(boxes.params, boxes.present)
            out[at] = self.lidar_for(k).ranges(self.state.pose[rows[at]], max_range=reach, edges=edges)
        return out

    # ---- physics ----------------------------------------------------------------------
    def advance(self, steer_cmd: np.ndarray, speed_cmd: np.ndarray, active: np.ndarray) -> int:
        """Integrate one control period for the active cars under commands (rad, m/s).

        Commands beyond the car's limits (|steering| above the URDF's, |speed| above
        `Dynamics.max_speed`) are clamped to them; returns how many were (also counted in
        `clamped_commands`).
        """
        d = self.dynamics
        h = self.dt / d.substeps
        s = self.state
        max_steer = self.car.max_steer
        over = (np.abs(steer_cmd) > max_steer + 1e-9) | (np.abs(speed_cmd) > d.max_speed + 1e-9)
        clamped = int(np.count_nonzero(over))
        self.clamped_commands += clamped
        # np.minimum/np.maximum rather than np.clip: the same values, less call overhead.
        steer_cmd = np.minimum(np.maximum(steer_cmd, -max_steer), max_steer)
        speed_cmd = np.minimum(np.maximum(speed_cmd, -d.max_speed), d.max_speed)
        steer_gain = 1.0 - math.exp(-h / d.steer_time_constant)
        speed_gain = 1.0 - math.exp(-h / d.speed_time_constant)
        max_grip = d.grip * GRAVITY
        x, y, yaw = s.pose[:, 0].copy(), s.pose[:, 1].copy(), s.pose[:, 2].copy()
        speed, steer = s.speed.copy(), s.steer.copy()
        max_dsteer = d.max_steer_rate * h
        for _ in range(d.substeps):
            steer = steer + np.minimum(np.maximum((steer_cmd - steer) * steer_gain, -max_dsteer), max_dsteer)
            dv = (speed_cmd - speed) * speed_gain
            speed = speed + np.minimum(np.maximum(dv, -d.max_brake * h), d.max_accel * h)
            curvature = np.tan(steer) / self.car.wheelbase
            limit = max_grip / np.maximum(speed * speed, 1e-6)
            curvature = np.minimum(np.maximum(curvature, -limit), limit)
            yaw_rate = speed * curvature
            yaw_mid = yaw + 0.5 * yaw_rate * h
            x += speed * np.cos(yaw_mid) * h
            y += speed * np.sin(yaw_mid) * h
            yaw = (yaw + yaw_rate * h + math.pi) % (2 * math.pi) - math.pi
        s.pose[active] = np.stack([x, y, yaw], axis=1)[active]
        s.speed[active] = speed[active]
        s.steer[active] = steer[active]
        s.yaw_rate[active] = yaw_rate[active]
        return clamped

    def step(self, steering_deg: np.ndarray, speed_cmd: np.ndarray, active: np.ndarray | None = None) -> int:
        """Advance every (active) car one control period under its command (degrees, + = left; m/s).

        Commands beyond the car's limits are clamped to them (see `advance`); returns how many
        were. Non-finite commands raise ValueError.
        """
        steering_deg = np.asarray(steering_deg, dtype=np.float64).reshape(self.n)
        speed_cmd = np.asarray(speed_cmd, dtype=np.float64).reshape(self.n)
        if not (np.all(np.isfinite(steering_deg)) and np.all(np.isfinite(speed_cmd))):
            raise ValueError(f"non-finite command: steering {steering_deg}, speed {speed_cmd}")
        active = np.ones(self.n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        clamped = self.advance(np.radians(steering_deg), speed_cmd, active)
        self.sim_time += self.dt
        return clamped


def _renderer_bytes(renderer: CameraRenderer) -> int:
    """Bytes a renderer holds in its ground texture and mip levels (its scene pool included)."""
    texture = renderer.texture
    total = texture.rgb.nbytes + texture.floor.nbytes + texture.paint.nbytes
    scenes = [renderer._scene, *renderer._pool.values()]
    return total + sum(level.nbytes for scene in scenes for level in scene.levels)
