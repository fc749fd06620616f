"""A scripted pure-pursuit driver on the centre line: the reference lap time and a sanity check.

It reads the pose (which a learned policy never sees) from the race's backend, steers toward
a point a fixed distance ahead on the centre line, and slows for the curvature coming up so
the tyres can hold the turn (the grip of the simulator's car model, `sim.Dynamics`). It
drives any backend: the in-process simulator or one behind ROS topics.

In races with obstacles or bot cars it also reads where they are (`RaceCore.car_objects`) and
aims its look-ahead point into the widest free gap across the road beside any object near that
point (a free lane ahead), slowing down while an object is close ahead.
"""

from __future__ import annotations

import numpy as np

from .race import RaceCore
from .sim import GRAVITY, Dynamics
from .track import Track
from .world_objects import ObjectState


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
        avoid_objects: bool = True,
    ):
        self.core = core
        self.grip = getattr(core.backend, "dynamics", Dynamics()).grip  # the car model's tyre friction
        self.lookahead = lookahead
        self.max_speed = max_speed
        self.min_speed = min_speed
        self.grip_margin = grip_margin
        self.preview = np.linspace(0.0, preview, 9)
        self.avoidance = ObjectAvoidance(core.car.width) if avoid_objects else None

    def act(self) -> tuple[np.ndarray, np.ndarray]:
        core = self.core
        track = core.track
        pose = core.poses()
        sign = np.where(core.judge.reverse, -1.0, 1.0)
        where = track.project(pose[:, :2])
        arc = where.arc_length
        target, along = track.point_at(arc + sign * self.lookahead)
        objects = self.core.car_objects() if self.avoidance is not None else None
        slow = np.zeros(len(arc), dtype=bool)
        follow = np.full(len(arc), np.inf)
        if self.avoidance is not None and objects is not None and objects.count:
            across = where.distance * np.where(where.is_left, 1.0, -1.0)
            offset, slow, follow = self.avoidance.offsets(track, objects, arc, across, sign, self.lookahead)
            target = target + offset[:, None] * np.stack([-np.sin(along), np.cos(along)], axis=1)
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
        if self.avoidance is not None:
            speed = np.where(slow, np.minimum(speed, max(self.min_speed, self.avoidance.speed)), speed)
            speed = np.minimum(speed, follow)
        return np.degrees(steer), speed


class ObjectAvoidance:
    """Where across the road the scripted driver aims to pass obstacles and bot cars.

    Each object blocks the lateral band of its half extent across the road plus the car's half
    width plus `clearance` (m). Of candidate offsets across the road (up to `edge` m inside each
    border), the one farthest from every blocked band and border wins; the nearest object comes
    first and a farther one joins only while a free gap remains. An object blocks from
    `approach[0]` m ahead of the driver's look-ahead point (ramping in to full offset at
    `approach[1]` m) until the car's centre is `passed[0]` m past it; then, if nothing else
    blocks, the offset it asked for ramps out by `passed[1]` m past it, so the car eases across
    the road instead of swerving and is free for the next object as soon as it has cleared this
    one. A moving object's band also covers where it drifts across the road in the next `drift_s`
    seconds (its speed times the sine of its heading to the road). Offsets are metres left of the
    centre line in the direction the track's file runs. When no gap is left beside a moving object
    less than `follow_within` m ahead (a bot car mid-way through a lane change), the car follows
    it at its speed until one opens; nor does it cut across the front of a moving object less
    than `cross_within` m ahead: that object's far side is out of reach.
    """

    def __init__(
        self,
        car_width: float,
        approach: tuple[float, float] = (2.0, 1.0),
        passed: tuple[float, float] = (0.1, 1.0),
        clearance: float = 0.04,
        edge: float = 0.02,
        slow_within: float = 2.5,
        speed: float = 1.0,
        candidates: int = 41,
        drift_s: float = 1.5,
        follow_within: float = 2.0,
        cross_within: float = 1.0,
    ):
        self.car_half_width = 0.5 * car_width
        self.approach, self.passed, self.clearance, self.edge = approach, passed, clearance, edge
        self.slow_within, self.speed, self.drift_s = slow_within, speed, drift_s
        self.follow_within, self.cross_within = follow_within, cross_within
        self.unit = np.linspace(-1.0, 1.0, candidates)
        self._edge_cache: dict[int, tuple[Track, np.ndarray, np.ndarray]] = {}

    def _edges(self, track: Track) -> tuple[np.ndarray, np.ndarray]:
        """(S,) distances (m) from each waypoint across to the left and to the right border, measured
        square to the centre line (a row's border points may sit skewed, overstating its width)."""
        cached = self._edge_cache.get(id(track))
        if cached is None or cached[0] is not track:
            w = track.waypoints
            d = np.roll(w, -1, axis=0) - w if track.closed else np.gradient(w, axis=0)
            heading = np.arctan2(d[:, 1], d[:, 0])
            normal = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
            a = np.einsum("ij,ij->i", track.inner - w, normal)
            b = np.einsum("ij,ij->i", track.outer - w, normal)
            cached = self._edge_cache[id(track)] = (track, np.maximum(a, b), -np.minimum(a, b))
        return cached[1], cached[2]

    def offsets(
        self,
        track: Track,
        objects: ObjectState,
        arc: np.ndarray,
        across: np.ndarray,
        sign: np.ndarray,
        lookahead: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N,) lateral offsets (m) of the look-ahead points, (N,) whether an object is close
        ahead of the car (drive slowly) and (N,) the speed (m/s) of a moving object close ahead
        that leaves no gap to pass (follow it; inf: none). `arc` (N,) the cars' centre-line positions (m),
        `across` (N,) theirs across the road (m left of the centre line), `sign`
        +1 / -1 for the file's direction / reversed, objects row i = car i's world."""
        n, k = objects.poses.shape[:2]
        projection = track.project(objects.poses[..., :2].reshape(-1, 2))
        lateral = (projection.distance * np.where(projection.is_left, 1.0, -1.0)).reshape(n, k)
        left_edge, right_edge = self._edges(track)
        seg = projection.segment % len(left_edge)
        nxt = (seg + 1) % len(left_edge)
        road_left = np.minimum(left_edge[seg], left_edge[nxt]).reshape(n, k)
        road_right = np.minimum(right_edge[seg], right_edge[nxt]).reshape(n, k)
        # Half of each object's footprint (along, across its own heading) measured across the road.
        turn = objects.poses[..., 2] - np.radians(track.heading_at(projection.segment)).reshape(n, k)
        length, width = objects.footprint[:, 0], objects.footprint[:, 1]  # not `across`: the cars' offsets
        blocked = 0.5 * (np.abs(np.cos(turn)) * width + np.abs(np.sin(turn)) * length)
        blocked += self.car_half_width + self.clearance  # (N, K)
        # A moving object (a bot car changing lanes) drifts across the road while the car passes:
        # the band covers where it is now and where it will be `drift_s` seconds on.
        drift = objects.speeds * np.sin(turn) * self.drift_s
        lateral = lateral + 0.5 * drift
        blocked = blocked + 0.5 * np.abs(drift)

        ahead = sign[:, None] * (projection.arc_length.reshape(n, k) - arc[:, None])  # of the car's centre
        if track.closed:
            ahead = np.mod(ahead + 0.5 * track.length, track.length) - 0.5 * track.length
        (a0, a1), (p0, p1) = self.approach, self.passed
        ramp_in = np.clip((a0 + lookahead - ahead) / (a0 - a1), 0.0, 1.0)
        ramp_out = np.clip((ahead + p1) / (p1 - p0), 0.0, 1.0)
        blocking = (ahead >= -p0) & (ramp_in > 0.0)
        fading = (ahead < -p0) & (ramp_out > 0.0)
        slow = ((ahead > -p0) & (ahead < self.slow_within)).any(axis=1)

        offset = np.zeros(n)
        follow = np.full(n, np.inf)
        for i in np.flatnonzero((blocking | fading).any(axis=1)):
            if blocking[i].any():
                chosen, weight = np.flatnonzero(blocking[i]), ramp_in[i]
                order = chosen[np.argsort(ahead[i, chosen])]  # nearest first
            else:
                chosen, weight = np.flatnonzero(fading[i]), ramp_out[i]
                order = chosen[np.argsort(-ahead[i, chosen])]  # the one just passed first
            room, cand, used = None, None, []
            for j in order:
                rows = [*used, j]
                high = max(float(road_left[i, rows].min()) - self.edge, 0.0)
                low = -max(float(road_right[i, rows].min()) - self.edge, 0.0)
                c = low + 0.5 * (self.unit + 1.0) * (high - low)  # (M,)
                gap = np.abs(c[:, None] - lateral[i, rows][None, :]) - blocked[i, rows][None, :]
                r = np.minimum(gap.min(axis=1), np.minimum(high - c, c - low))
                # No cutting across the front of a moving object close ahead: its far side is out of reach.
                near = [m for m in rows if 0.0 < ahead[i, m] < self.cross_within and objects.speeds[i, m] > 0.0]
                for m in near:
                    far = c < lateral[i, m] if across[i] > lateral[i, m] else c > lateral[i, m]
                    r = np.where(far, -np.inf, r)
                if room is not None and r.max() < 0.0:
                    break  # no gap for this one too: it waits until the nearer ones are passed
                room, cand, used = r, c, rows
            if np.isfinite(room).any():
                pick = int(np.argmax(room - 1e-3 * np.abs(cand)))  # ties: nearer the centre
            else:  # nothing within reach: keep to this side
                pick = int(np.argmin(np.abs(cand - across[i])))
            offset[i] = cand[pick] * weight[used].max()
            moving = [j for j in used if objects.speeds[i, j] > 0.0 and 0.0 < ahead[i, j] < self.follow_within]
            if room[pick] < 0.0 and moving:  # no gap beside a car close ahead: follow it until one opens
                follow[i] = min(float(objects.speeds[i, j]) for j in moving)
        return offset, slow, follow
