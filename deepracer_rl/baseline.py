"""A scripted pure-pursuit driver on the centre line: the reference lap time and a sanity check.

It reads the pose (which a learned policy never sees), steers toward a point a fixed
distance ahead on the centre line, and slows for the curvature coming up so the tyres
can hold the turn.
"""

from __future__ import annotations

import numpy as np

from .sim import GRAVITY, Simulator


class PurePursuitDriver:
    """Commands (steering degrees, speed m/s) for every car of a Simulator."""

    def __init__(
        self,
        sim: Simulator,
        lookahead: float = 0.45,
        max_speed: float = 4.0,
        min_speed: float = 0.8,
        grip_margin: float = 0.55,
        preview: float = 1.6,
    ):
        self.sim = sim
        self.lookahead = lookahead
        self.max_speed = max_speed
        self.min_speed = min_speed
        self.grip_margin = grip_margin
        self.preview = np.linspace(0.0, preview, 9)

    def act(self) -> tuple[np.ndarray, np.ndarray]:
        sim = self.sim
        track = sim.track
        pose = sim.state.pose
        sign = np.where(sim.judge.reverse, -1.0, 1.0)
        arc = track.project(pose[:, :2]).arc_length
        target, _ = track.point_at(arc + sign * self.lookahead)
        dx, dy = target[:, 0] - pose[:, 0], target[:, 1] - pose[:, 1]
        alpha = np.arctan2(dy, dx) - pose[:, 2]
        distance = np.maximum(np.hypot(dx, dy), 1e-3)
        steer = np.arctan2(2.0 * sim.car.wheelbase * np.sin(alpha), distance)
        max_steer = sim.car.max_steer
        steer = np.clip(steer, -max_steer, max_steer)
        # Curvature ahead: heading change over the preview window.
        samples = arc[:, None] + sign[:, None] * self.preview[None, :]
        _, headings = track.point_at(samples.reshape(-1))
        headings = np.unwrap(headings.reshape(len(arc), -1), axis=1)
        curvature = np.abs(np.diff(headings, axis=1)).max(axis=1) / (self.preview[1] - self.preview[0])
        allowed = np.sqrt(self.grip_margin * sim.dynamics.grip * GRAVITY / np.maximum(curvature, 1e-3))
        speed = np.clip(allowed, self.min_speed, self.max_speed)
        return np.degrees(steer), speed


def drive_baseline_lap(sim: Simulator, max_seconds: float = 120.0) -> dict:
    """Drive car 0 from its next start position until its episode ends; lap figures."""
    driver = PurePursuitDriver(sim)
    sim.reset_car(0)
    steps = int(max_seconds * sim.control_hz)
    status = None
    for _ in range(steps):
        steer, speed = driver.act()
        result = sim.step(steer, speed, render=False)
        status = result.status[0]
        if status.done:
            break
    return {
        "status": status.value if status else "none",
        "progress": float(sim.judge.best[0] / sim.judge.lap_length[0] * 100.0),
        "time_s": float(sim.judge.steps[0] * sim.dt),
        "steps": int(sim.judge.steps[0]),
    }
