"""`RaceCore`: the one race over any simulator backend: starts, judging, reward params, rewards, frames.

Every env (`RaceEnv`, `RaceVecEnv`), evaluation (policies and the scripted baseline), the
trainer and behaviour cloning race through it, over the in-process simulator or over ROS
topics alike: the backend only moves cars and reports their poses and sensor data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .action_space import ActionError, ActionSpace
from .backend import SimulatorBackend, make_backend
from .car import CarSpec
from .episode import EpisodeJudge, EpisodeStatus, RaceRules, StartRules, start_pose
from .observation import FrameStacks, ObservationSpec
from .reward import RewardFunction
from .reward_process import IsolatedReward, RewardIsolation, make_reward
from .sensors import sensors_for
from .track import Track
from .track_set import DIRECTIONS, TrackSet

TrackInput = Track | str | TrackSet | Sequence[Track | str]


def load_tracks(track: TrackInput, direction: str = "as-is") -> TrackSet:
    """The tracks of a race: one track (object, name or path), several, or a TrackSet."""
    if isinstance(track, TrackSet):
        return track
    refs = [track] if isinstance(track, (Track, str, os.PathLike)) else list(track)
    return TrackSet.load(refs, direction)


def load_race_inputs(
    track: TrackInput,
    metadata: ActionSpace | str | os.PathLike | None,
    reward: RewardFunction | IsolatedReward | str | os.PathLike | None,
    reward_isolation: RewardIsolation | None = None,
) -> tuple[Track | TrackSet, ActionSpace, RewardFunction | IsolatedReward]:
    """The track, action space and reward function of a race, from objects or files (None:
    the console's default action space, the default reward). A reward file runs in a child
    process when `reward_isolation` is given; the file is loaded last, after the cheap checks.
    Several tracks (a sequence or a TrackSet) come back as a TrackSet."""
    if not isinstance(track, Track):
        tracks = load_tracks(track)
        track = tracks.tracks[0] if isinstance(track, (str, os.PathLike)) else tracks
    actions = metadata if isinstance(metadata, ActionSpace) else ActionSpace.load(metadata)
    if isinstance(reward, (RewardFunction, IsolatedReward)):
        return track, actions, reward
    return track, actions, make_reward(reward, reward_isolation)


class RaceCore:
    """N cars racing on a backend: their episodes, statuses, params, rewards and stacked observations.

    With several tracks (`track_set`, in-process backend) each car draws a track and a
    direction per episode from the race's seeded stream; with one track driven as its file
    runs, nothing is drawn (the start schedule is the same as always).
    """

    def __init__(
        self,
        backend: SimulatorBackend,
        actions: ActionSpace,
        reward_fn: RewardFunction | IsolatedReward,
        start: StartRules | None = None,
        rules: RaceRules | None = None,
        seed: int | None = None,
        direction: str = "as-is",
    ):
        self.backend = backend
        self.track_set = TrackSet(backend.tracks, direction)
        self.track = backend.track
        self.actions = actions
        self.reward_fn = reward_fn
        self.n = backend.n_cars
        self.obs_spec = backend.observation
        self.start_rules = start or StartRules()
        self.judge = EpisodeJudge(backend.tracks, backend.car.wheel_contact_points(), self.n, backend.control_hz, rules)
        self.rng = np.random.default_rng(seed)
        self.episodes = np.zeros(self.n, dtype=np.int64)  # episodes started per car
        self.frames = FrameStacks(self.obs_spec, self.n)
        self.owns_reward = False  # whether close() closes reward_fn (create() sets it for what it loaded)

    @classmethod
    def create(
        cls,
        track: TrackInput = "reinvent_base",
        n_cars: int = 1,
        metadata: ActionSpace | str | os.PathLike | None = None,
        reward: RewardFunction | IsolatedReward | str | os.PathLike | None = None,
        observation: ObservationSpec | None = None,
        backend: str = "inprocess",
        start: StartRules | None = None,
        rules: RaceRules | None = None,
        seed: int | None = None,
        sensors: bool = True,
        reward_isolation: RewardIsolation | None = None,
        direction: str = "as-is",
        **backend_options: Any,
    ) -> RaceCore:
        """A race from names and files: the backend by name, the metadata's sensors (none when
        `sensors` is False: scripted drivers read poses only), the reward file in a child process
        when `reward_isolation` is given. The race closes what it made (backend, reward process).
        `track`: one track, or several (names, paths, Tracks or a TrackSet: cars draw one per
        episode); `direction`: as-is, ccw, cw or both (drawn per episode)."""
        if int(n_cars) < 1:
            raise ValueError(f"the number of cars must be at least 1, got {n_cars}")
        track, actions, reward_fn = load_race_inputs(track, metadata, reward, reward_isolation)
        if isinstance(track, TrackSet):
            direction = track.direction if direction == "as-is" else direction
            track = track.tracks[0] if len(track.tracks) == 1 else track.tracks
        spec = observation or ObservationSpec()
        chosen = sensors_for(actions.sensor) if sensors else ()
        try:
            if direction not in DIRECTIONS:
                raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
            sim = make_backend(backend, track, int(n_cars), spec, chosen, seed=seed, **backend_options)
        except BaseException:
            if reward_fn is not reward:
                reward_fn.close()
            raise
        core = cls(sim, actions, reward_fn, start=start, rules=rules, seed=seed, direction=direction)
        core.owns_reward = reward_fn is not reward
        return core

    # ---- what the race is over ------------------------------------------------------------
    @property
    def car(self) -> CarSpec:
        return self.backend.car

    @property
    def control_hz(self) -> float:
        return self.backend.control_hz

    @property
    def stack(self) -> np.ndarray:
        """(N, C, h, w) the cars' current observations (stacked frames, newest last)."""
        return self.frames.stack

    def poses(self) -> np.ndarray:
        """(N, 3) the cars' poses now (x, y, yaw in the track frame)."""
        return self.backend.states().poses

    # ---- episodes -------------------------------------------------------------------------
    def reseed(self, seed: int | None) -> None:
        """The start schedule and the simulator's random streams start over from `seed`."""
        self.rng = np.random.default_rng(seed)
        self.episodes[:] = 0
        self.backend.reseed(seed)

    def start_pose(self, i: int, track_index: int = 0, reverse: bool = False) -> tuple[np.ndarray, bool]:
        """The start pose of car i's next episode on `tracks[track_index]` (driven `reverse`d), and
        whether it drives that track reversed (the start rules may alternate the direction)."""
        track = self.track_set.tracks[track_index]
        track = track.reversed() if reverse else track
        pose, flipped = start_pose(track, self.start_rules, int(self.episodes[i]), i, self.n, self.rng)
        return pose, reverse != flipped

    def reset_cars(
        self,
        rows: np.ndarray,
        pose: np.ndarray | None = None,
        reverse: bool | None = None,
        track_index: int | None = None,
    ) -> None:
        """Start the next episode of cars `rows`: at their next start (on a track and direction drawn
        per episode when the race has several), or all at `pose` on `tracks[track_index]`."""
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        poses, directions, indices = [], [], []
        for i in rows:
            k, drawn_reverse = (0, False)
            if track_index is not None:
                k = int(track_index)
            elif self.track_set.varies or self.track_set.direction != "as-is":
                k, drawn_reverse = self.track_set.draw(self.rng)
            start, start_reverse = self.start_pose(int(i), k, drawn_reverse)
            self.episodes[i] += 1
            poses.append(start if pose is None else np.asarray(pose, dtype=np.float64))
            directions.append(start_reverse if reverse is None else reverse)
            indices.append(k)
        if len(self.track_set.tracks) > 1:
            self.backend.place_on_tracks(rows, np.array(indices, dtype=np.intp))
        self.backend.reset_cars(rows, np.array(poses).reshape(-1, 3))
        for i, p, direction, k in zip(rows, poses, directions, indices):
            self.judge.start(int(i), p, direction, track_index=k)
        self._store(rows, fresh=True)

    def car_track(self, i: int) -> Track:
        """The track car i is on now (as its file runs)."""
        return self.judge.track_of(i)

    def put_back_on_track(self, i: int) -> None:
        """Car i onto the centre line where it left the track, facing along it, stopped (same episode)."""
        direction = self.judge.direction_track(i)
        arc = direction.project(self.poses()[i : i + 1, :2]).arc_length
        (point,), (heading,) = direction.point_at(arc)
        self.backend.reset_cars(np.array([i]), np.array([[point[0], point[1], heading]]), new_episode=False)
        self.judge.last_arc[i] = self.judge.track_of(i).project(point[None]).arc_length[0]

    # ---- stepping -------------------------------------------------------------------------
    def step(self, actions: Any) -> tuple[np.ndarray, list[EpisodeStatus], list[dict[str, Any]]]:
        """One control step of every car under policy actions: (rewards, statuses, params)."""
        steer, speed = self.actions.to_commands(actions)
        if len(steer) != self.n:
            raise ActionError(f"expected {self.n} actions (one per car), got {len(steer)}")
        return self.drive(steer, speed)

    def drive(
        self, steering_deg: np.ndarray, speed: np.ndarray
    ) -> tuple[np.ndarray, list[EpisodeStatus], list[dict[str, Any]]]:
        """One control step under commands (degrees, + = left; m/s), judged and rewarded."""
        steering_deg = np.asarray(steering_deg, dtype=np.float64).reshape(self.n)
        speed = np.asarray(speed, dtype=np.float64).reshape(self.n)
        self.backend.step(steering_deg, speed)
        judged = self.judge.update(self.backend.states().poses, steering_deg, speed)
        rewards = self.reward_fn.batch(judged.params)
        return rewards, judged.status, judged.params

    def observe(self, rows: np.ndarray) -> None:
        """Push the newest sensor frames of cars `rows` onto their stacks (nothing without sensors)."""
        self._store(np.asarray(rows, dtype=np.intp).reshape(-1), fresh=False)

    def _store(self, rows: np.ndarray, fresh: bool) -> None:
        if not self.backend.sensors or len(rows) == 0:
            return
        data = self.backend.sensor_data(rows)
        self.frames.push(rows, data[self.backend.sensors[0].name], fresh=fresh)

    def close(self) -> None:
        """Close the backend, and the reward function when the race loaded it."""
        try:
            self.backend.close()
        finally:
            if self.owns_reward:
                self.reward_fn.close()
