"""A scripted pure-pursuit driver on the centre line: the reference lap time and a sanity check.

It reads the pose (which a learned policy never sees) from the race's backend, steers toward
a point a fixed distance ahead on the centre line, and slows for the curvature coming up so
the tyres can hold the turn (the grip of the simulator's car model, `sim.Dynamics`). It
drives any backend: the in-process simulator or one behind ROS topics.
"""

from __future__ import annotations

import numpy as np

from .race import RaceCore
from .sim import GRAVITY, Dynamics


class PurePursuitDriver:
    """Commands (steering degrees, speed m/s) for every car of a race."""

    def __init__(
        self,
        core: RaceCore,
        lookahead: float = 0.45,
        max_speed: float = 4.0,
        min_speed: float = 0.8,
        grip_margin: float = 0.55,
        preview: float = 1.6,
    ):
        self.core = core
        self.grip = getattr(core.backend, "dynamics", Dynamics()).grip  # the car model's tyre friction
        self.lookahead = lookahead
        self.max_speed = max_speed
        self.min_speed = min_speed
        self.grip_margin = grip_margin
        self.preview = np.linspace(0.0, preview, 9)

    def act(self) -> tuple[np.ndarray, np.ndarray]:
        core = self.core
        track = core.track
        pose = core.poses()
        sign = np.where(core.judge.reverse, -1.0, 1.0)
        arc = track.project(pose[:, :2]).arc_length
        target, _ = track.point_at(arc + sign * self.lookahead)
        dx, dy = target[:, 0] - pose[:, 0], target[:, 1] - pose[:, 1]
        alpha = np.arctan2(dy, dx) - pose[:, 2]
        distance = np.maximum(np.hypot(dx, dy), 1e-3)
        steer = np.arctan2(2.0 * core.car.wheelbase * np.sin(alpha), distance)
        max_steer = core.car.max_steer
        steer = np.clip(steer, -max_steer, max_steer)
        # Curvature ahead: heading change over the preview window.
        samples = arc[:, None] + sign[:, None] * self.preview[None, :]
        _, headings = track.point_at(samples.reshape(-1))
        headings = np.unwrap(headings.reshape(len(arc), -1), axis=1)
        curvature = np.abs(np.diff(headings, axis=1)).max(axis=1) / (self.preview[1] - self.preview[0])
        allowed = np.sqrt(self.grip_margin * self.grip * GRAVITY / np.maximum(curvature, 1e-3))
        speed = np.clip(allowed, self.min_speed, self.max_speed)
        return np.degrees(steer), speed
