"""The embedded simulator: N cars stepped together with NumPy, no ROS.

Kinematic bicycle model about the rear axle (base_link) with first-order steering and
speed lag, steering-rate and acceleration limits and a grip limit on lateral
acceleration (the car understeers instead of turning tighter than its tyres allow).
Control runs at the camera rate from the URDF (15 Hz) with physics substeps. DeepRacer
episode rules come from `EpisodeJudge`; camera frames from `CameraRenderer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .car import CarSpec
from .episode import EpisodeJudge, EpisodeStatus, JudgeResult, RaceRules
from .track import Track

GRAVITY = 9.81


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


@dataclass(frozen=True)
class StartRules:
    """Where episodes start: advancing round the track, optionally alternating direction."""

    advance_fraction: float = 0.05  # each new episode of a car starts this much further on
    alternate_direction: bool = False  # every other episode drives the track reversed
    spread_cars: bool = True  # cars start spread evenly round the track
    lateral_noise: float = 0.0  # m, random offset from the centre line at the start
    heading_noise: float = 0.0  # rad, random heading offset at the start


def start_pose(
    track: Track,
    rules: StartRules,
    episode: int,
    car: int = 0,
    n_cars: int = 1,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, bool]:
    """Start pose (x, y, yaw) of car `car`'s episode number `episode` (from 0) and whether it drives reversed.

    The one start schedule: the Simulator uses it, and the ROS bridge resets any simulator
    to these poses through /initialpose. `rng` draws the start noise (if the rules have any).
    """
    reverse = bool(rules.alternate_direction and track.closed and episode % 2 == 1)
    spread = car / n_cars if rules.spread_cars and track.closed else 0.0
    fraction = (spread + episode * rules.advance_fraction) % 1.0
    if not track.closed:  # open track: start near the beginning of the route
        fraction = 0.0
    direction = track.reversed() if reverse else track
    (point,), (heading,) = direction.point_at(np.array([fraction * direction.length]))
    if (rules.lateral_noise or rules.heading_noise) and rng is None:
        rng = np.random.default_rng()
    lateral = rng.uniform(-1.0, 1.0) * rules.lateral_noise if rules.lateral_noise else 0.0
    heading += rng.uniform(-1.0, 1.0) * rules.heading_noise if rules.heading_noise else 0.0
    normal = np.array([-math.sin(heading), math.cos(heading)])
    x, y = point + lateral * normal
    return np.array([x, y, heading]), reverse


@dataclass
class StepResult:
    """One control step of all cars."""

    observations: np.ndarray | None
    judge: JudgeResult
    status: list[EpisodeStatus]
    progress: np.ndarray
    steering_deg: np.ndarray
    speed_cmd: np.ndarray


@dataclass
class CarState:
    """The physical state of N cars (arrays of shape (N,) or (N, 3))."""

    pose: np.ndarray  # x, y, yaw of base_link
    speed: np.ndarray  # m/s along the heading
    steer: np.ndarray  # rad, front wheel angle (+ = left)
    yaw_rate: np.ndarray = field(default_factory=lambda: np.zeros(0))


class Simulator:
    """N DeepRacer cars on one track, stepped together in one call."""

    def __init__(
        self,
        track: Track | str,
        n_cars: int = 1,
        car: CarSpec | None = None,
        dynamics: Dynamics | None = None,
        start: StartRules | None = None,
        rules: RaceRules | None = None,
        image_size: tuple[int, int] | None = (160, 120),
        grayscale: bool = True,
        randomization=None,
        seed: int | None = None,
    ):
        self.track = track if isinstance(track, Track) else Track.load(track)
        self.car = car or CarSpec.from_urdf()
        self.dynamics = dynamics or Dynamics()
        self.start_rules = start or StartRules()
        self.n = int(n_cars)
        if self.n < 1:
            raise ValueError(f"n_cars must be at least 1, got {n_cars}")
        self.control_hz = float(self.car.camera.rate_hz)
        self.dt = 1.0 / self.control_hz
        self.rng = np.random.default_rng(seed)
        self.judge = EpisodeJudge(self.track, self.car.wheel_contact_points(), self.n, self.control_hz, rules)
        self.state = CarState(
            pose=np.zeros((self.n, 3)),
            speed=np.zeros(self.n),
            steer=np.zeros(self.n),
            yaw_rate=np.zeros(self.n),
        )
        self.episodes = np.zeros(self.n, dtype=np.int64)  # episodes started per car
        self.sim_time = 0.0
        self.renderer = None
        if image_size is not None:
            from .camera import CameraRenderer

            width, height = image_size
            self.renderer = CameraRenderer(
                self.track,
                self.car.camera,
                width=width,
                height=height,
                grayscale=grayscale,
                randomization=randomization,
                seed=None if seed is None else seed + 1,
            )

    # ---- episodes ---------------------------------------------------------------------
    def start_pose(self, i: int) -> tuple[np.ndarray, bool]:
        """The start pose of car i's next episode and whether it drives reversed."""
        return start_pose(self.track, self.start_rules, int(self.episodes[i]), i, self.n, self.rng)

    def reset_car(self, i: int, pose: np.ndarray | None = None, reverse: bool | None = None) -> None:
        """Start car i's next episode (at its next start position, or at `pose`)."""
        start, start_reverse = self.start_pose(i)
        if pose is None:
            pose = start
        self.episodes[i] += 1
        self.state.pose[i] = pose
        self.state.speed[i] = 0.0
        self.state.steer[i] = 0.0
        self.state.yaw_rate[i] = 0.0
        self.judge.start(i, np.asarray(pose, dtype=np.float64), start_reverse if reverse is None else reverse)
        if self.renderer is not None and hasattr(self.renderer, "new_episode"):
            self.renderer.new_episode(i)

    def reset(self) -> np.ndarray | None:
        """Start a new episode for every car; returns their observations."""
        for i in range(self.n):
            self.reset_car(i)
        return self.render()

    def render(self, rows: np.ndarray | None = None) -> np.ndarray | None:
        """Camera frames of every car, or of the cars in `rows` (in that order); None without a camera."""
        if self.renderer is None:
            return None
        if rows is None:
            return self.renderer.render(self.state.pose)
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        return self.renderer.render(self.state.pose[rows], rows)

    # ---- physics ----------------------------------------------------------------------
    def advance(self, steer_cmd: np.ndarray, speed_cmd: np.ndarray, active: np.ndarray) -> None:
        """Integrate one control period for the active cars."""
        d = self.dynamics
        h = self.dt / d.substeps
        s = self.state
        # np.minimum/np.maximum rather than np.clip: the same values, less call overhead.
        steer_cmd = np.minimum(np.maximum(steer_cmd, -self.car.max_steer), self.car.max_steer)
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

    def step(
        self,
        steering_deg: np.ndarray,
        speed_cmd: np.ndarray,
        active: np.ndarray | None = None,
        render: bool = True,
    ) -> StepResult:
        """Advance every (active) car one control period under its command and judge it."""
        steering_deg = np.asarray(steering_deg, dtype=np.float64).reshape(self.n)
        speed_cmd = np.asarray(speed_cmd, dtype=np.float64).reshape(self.n)
        if not (np.all(np.isfinite(steering_deg)) and np.all(np.isfinite(speed_cmd))):
            raise ValueError(f"non-finite command: steering {steering_deg}, speed {speed_cmd}")
        active = np.ones(self.n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        self.advance(np.radians(steering_deg), speed_cmd, active)
        self.sim_time += self.dt
        judged = self.judge.update(self.state.pose, steering_deg, speed_cmd, active)
        observations = self.render() if render else None
        return StepResult(
            observations=observations,
            judge=judged,
            status=judged.status,
            progress=judged.progress,
            steering_deg=steering_deg,
            speed_cmd=speed_cmd,
        )
