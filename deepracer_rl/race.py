"""`RaceCore`: the one race over any simulator backend: starts, judging, reward params, rewards, frames.

Every env (`RaceEnv`, `RaceVecEnv`), evaluation (policies and the scripted baseline), the
trainer and behaviour cloning race through it, over the in-process simulator or over ROS
topics alike: the backend only moves cars and reports their poses and sensor data.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .action_space import ActionError, ActionSpace
from .backend import SimulatorBackend, make_backend
from .car import CarSpec
from .episode import EpisodeJudge, EpisodeStatus, RaceRules, StartRules, start_pose
from .observation import FrameStacks, ObservationSpec, copy_observation
from .opponents import opponent_state, opponents, staggered_starts, start_behind
from .reward import RewardFunction
from .reward_process import IsolatedReward, RewardIsolation, make_reward
from .sensors import metadata_sensors, observation_space
from .track import Track
from .track_set import DIRECTIONS, TrackSet
from .world_objects import (
    BOT_CAR,
    START_BACKOFF_M,
    START_BACKOFF_STEPS,
    ObjectState,
    ObjectWorld,
    RaceObjects,
    clear_start,
    collisions,
    crash_reset_pose,
    objects_params,
)

TrackInput = Track | str | TrackSet | Sequence[Track | str]
ObjectsInput = RaceObjects | Mapping[str, Any] | None


def race_objects(objects: ObjectsInput) -> RaceObjects | None:
    """The obstacles and bot cars of a race: a `RaceObjects`, a world-config mapping with
    DeepRacer's keys (errors name the key), or None; a config without objects is a time trial (None)."""
    if objects is None:
        return None
    config = objects if isinstance(objects, RaceObjects) else RaceObjects.from_mapping(objects)
    return config if config.count else None


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
        objects: RaceObjects | None = None,
        collision_rule: str = "overlap",
        head_to_head: bool = False,
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
        # One stack per sensor (none: the camera's shape, for drivers that read poses only).
        self.sensor_frames = {
            sensor.name: FrameStacks(self.obs_spec, self.n, space.shape, space.dtype)
            for sensor in backend.sensors
            for space in [sensor.space(self.obs_spec)]
        }
        self.frames = next(iter(self.sensor_frames.values()), None) or FrameStacks(self.obs_spec, self.n)
        self.owns_reward = False  # whether close() closes reward_fn (create() sets it for what it loaded)
        # Obstacles and bot cars (object avoidance, head-to-bot): one ObjectWorld per (track, driving
        # direction), world i of it is car i's while car i races there (`reset_cars`).
        self.objects = objects
        self.collision_rule = collision_rule
        self.evaluation = False  # DeepRacer's evaluation penalties (`penalties`), else training's
        self.last_hit = np.full(self.n, -1)  # index of the object each car touched at its last step
        self._seed = seed
        self._worlds: dict[tuple[int, bool], ObjectWorld] = {}
        self._world_key = [(0, False)] * self.n
        # Head-to-head: car i races car i ^ 1 on one track, each the other's object (`opponents`).
        self.head_to_head = bool(head_to_head)
        if objects is not None:
            if backend.sensors and not backend.supports_objects:
                raise ValueError(
                    f"the {type(backend).__name__} backend does not show obstacles or bot cars to its sensors; "
                    "races with objects use --backend inprocess"
                )
            self._world((0, False))  # a layout that cannot be placed fails now
            self._show_objects()
        if self.head_to_head:
            self._check_head_to_head()

    def _check_head_to_head(self) -> None:
        """Refuse what a head-to-head race cannot be, with the reason."""
        opponents(self.n)  # an even number of cars
        if self.objects is not None:
            raise ValueError("a head-to-head race has no obstacles or bot cars: the other car is the object")
        one_way = self.track_set.direction == "as-is" and not self.start_rules.alternate_direction
        if len(self.track_set.tracks) > 1 or not one_way:
            raise ValueError("a head-to-head race is on one track, driven as its file runs (--direction as-is)")
        if self.backend.sensors and not self.backend.supports_objects:
            raise ValueError(
                f"the {type(self.backend).__name__} backend does not show the other car to its sensors; "
                "head-to-head races use --backend inprocess"
            )

    @property
    def has_objects(self) -> bool:
        """Whether cars race among objects: obstacles, bot cars or (head-to-head) the other car."""
        return self.objects is not None or self.head_to_head

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
        objects: ObjectsInput = None,
        head_to_head: bool = False,
        **backend_options: Any,
    ) -> RaceCore:
        """A race from names and files: the backend by name, the metadata's sensors (none when
        `sensors` is False: scripted drivers read poses only), the reward file in a child process
        when `reward_isolation` is given. The race closes what it made (backend, reward process).
        `track`: one track, or several (names, paths, Tracks or a TrackSet: cars draw one per
        episode); `direction`: as-is, ccw, cw or both (drawn per episode). `objects`: DeepRacer's
        obstacles and bot cars (`RaceObjects` or a world-config mapping), each car in a world of its own;
        `head_to_head`: car i races car i ^ 1 (`opponents`; an even `n_cars`)."""
        if int(n_cars) < 1:
            raise ValueError(f"the number of cars must be at least 1, got {n_cars}")
        config = race_objects(objects)  # errors name the world-config key, before anything is loaded
        track, actions, reward_fn = load_race_inputs(track, metadata, reward, reward_isolation)
        if isinstance(track, TrackSet):
            direction = track.direction if direction == "as-is" else direction
            track = track.tracks[0] if len(track.tracks) == 1 else track.tracks
        spec = observation or ObservationSpec()
        where = str(metadata) if isinstance(metadata, (str, os.PathLike)) else "model_metadata.json"
        chosen = metadata_sensors(actions, where) if sensors else ()
        if chosen:
            observation_space(chosen, spec)  # e.g. a grey stereo pair asked for in RGB: refused now
        try:
            if direction not in DIRECTIONS:
                raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
            sim = make_backend(backend, track, int(n_cars), spec, chosen, seed=seed, **backend_options)
        except BaseException:
            if reward_fn is not reward:
                reward_fn.close()
            raise
        try:
            core = cls(
                sim,
                actions,
                reward_fn,
                start=start,
                rules=rules,
                seed=seed,
                direction=direction,
                objects=config,
                head_to_head=head_to_head,
            )
        except BaseException:
            sim.close()
            if reward_fn is not reward:
                reward_fn.close()
            raise
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
    def stack(self) -> np.ndarray | dict[str, np.ndarray]:
        """(N, C, h, w) the cars' current observations (stacked frames, newest last); with several
        sensors a dict of such arrays by input name (the Dict observation, `sensors.observation_space`)."""
        sensors = self.backend.sensors
        if len(sensors) <= 1:
            return self.frames.stack
        return {s.input_name: self.sensor_frames[s.name].stack for s in sensors}

    def observation(self, row: int | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """A copy of every car's observation (or car `row`'s)."""
        return copy_observation(self.stack, row)

    def poses(self) -> np.ndarray:
        """(N, 3) the cars' poses now (x, y, yaw in the track frame)."""
        return self.backend.states().poses

    # ---- episodes -------------------------------------------------------------------------
    def reseed(self, seed: int | None) -> None:
        """The start schedule and the simulator's random streams start over from `seed`."""
        self.rng = np.random.default_rng(seed)
        self.episodes[:] = 0
        self.backend.reseed(seed)
        self._seed = seed
        if self.objects is not None:  # the object layouts start over from the seed too
            self._worlds.clear()
            self._world_key = [(0, False)] * self.n
            self._world((0, False))
            self._show_objects()

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
        per episode when the race has several), or all at `pose` on `tracks[track_index]` (one (3,)
        pose for all, or (len(rows), 3) one each). Head-to-head without `pose`: a pair starting
        together starts staggered at the first car's start (`opponents.staggered_starts`, the leader
        alternating by episode), a car starting alone STAGGER_M behind its opponent."""
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        given = None if pose is None else np.asarray(pose, dtype=np.float64).reshape(-1, 3)
        if given is not None and len(given) not in (1, len(rows)):
            raise ValueError(f"reset_cars: {len(given)} poses for {len(rows)} cars")
        poses, directions, indices = [], [], []
        for i in rows:
            k, drawn_reverse = (0, False)
            if track_index is not None:
                k = int(track_index)
            elif self.track_set.varies or self.track_set.direction != "as-is":
                k, drawn_reverse = self.track_set.draw(self.rng)
            start, start_reverse = self.start_pose(int(i), k, drawn_reverse)
            self.episodes[i] += 1
            poses.append(start if given is None else given[min(len(poses), len(given) - 1)])
            directions.append(start_reverse if reverse is None else reverse)
            indices.append(k)
        if self.objects is not None:
            poses = [self._reset_objects(int(i), p, d, k) for i, p, d, k in zip(rows, poses, directions, indices)]
        if self.head_to_head and given is None:
            poses = self._pair_starts(rows, poses)
        if len(self.track_set.tracks) > 1:
            self.backend.place_on_tracks(rows, np.array(indices, dtype=np.intp))
        self.backend.reset_cars(rows, np.array(poses).reshape(-1, 3))
        for i, p, direction, k in zip(rows, poses, directions, indices):
            self.judge.start(int(i), p, direction, track_index=k)
        if self.has_objects:
            self.last_hit[rows] = -1
            self._show_objects()
        self._store(rows, fresh=True)

    def _pair_starts(self, rows: np.ndarray, poses: list[np.ndarray]) -> list[np.ndarray]:
        """Head-to-head starts of cars `rows` (their own starts `poses`): staggered pairs, or behind
        the opponent for a car starting alone."""
        out = [np.asarray(p, dtype=np.float64) for p in poses]
        where = {int(i): j for j, i in enumerate(rows)}
        track = self.track_set.tracks[0]
        now = self.poses()
        for i, j in where.items():
            other = i ^ 1
            if other in where:
                if i < other:  # the pair starts at the first car's start, the leader alternating
                    leader = int((self.episodes[i] - 1) % 2)  # car i leads its first episode
                    pair = staggered_starts(track, out[j], self.car, leader=leader)
                    out[j], out[where[other]] = pair[0], pair[1]
            else:
                out[j] = start_behind(track, now[other], self.car)
        return out

    def _reset_objects(self, i: int, pose: np.ndarray, reverse: bool, k: int) -> np.ndarray:
        """A new layout in car i's world of track k (driven `reverse`d), clear of its start, and the
        start: `pose`, or moved back along the centre line (START_BACKOFF steps) while it touches an
        object of a fixed layout or has one less than START_CLEARANCE ahead, where no car could steer
        round it (on narrow tracks DeepRacer's first obstacle, 2 % in, reaches the line)."""
        key = (int(k), bool(reverse))
        world = self._world(key)
        self._world_key[i] = key
        pose = np.asarray(pose, dtype=np.float64)
        world.reset([i], keep_clear=world.track.project(pose[None, :2]).arc_length)
        return clear_start(world.track, pose, world.state().take(np.array([i])), self.car, self.collision_rule)

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

    def crash_reset(self, i: int) -> None:
        """Car i back where DeepRacer puts it after hitting an object (same episode): RESET_BEHIND_DIST
        before the object it touched, in the other lane, stopped (`world_objects.crash_reset_pose`);
        farther back (START_BACKOFF steps) while that pose touches another object."""
        hit = int(self.last_hit[i])
        if not self.has_objects or hit < 0:
            raise ValueError(f"car {i} has not touched an object")
        if self.head_to_head:  # behind the other car (DeepRacer: behind what it hit), in the other lane
            pose = start_behind(self.track_set.tracks[0], self.poses()[i ^ 1], self.car)
        else:
            world, state = self._car_state(i)
            behind = self.objects.reset_behind_dist
            pose = crash_reset_pose(world.track, state.poses[0, hit], behind)
            for step in range(1, START_BACKOFF_STEPS + 1):  # not onto another object (a close opposite-lane pair)
                if not collisions(pose[None], state, self.car, self.collision_rule)[0][0]:
                    break
                pose = crash_reset_pose(world.track, state.poses[0, hit], behind + step * START_BACKOFF_M)
        self.backend.reset_cars(np.array([i]), pose[None], new_episode=False)
        self.judge.last_arc[i] = self.judge.track_of(i).project(pose[None, :2]).arc_length[0]
        self.last_hit[i] = -1
        if self.head_to_head:  # the moved car is the other car's object
            self._show_objects()

    def object_boxes(self, i: int) -> list[Any]:
        """The obstacles and bot cars car i sees now, as `camera.Box`es (empty without objects): for
        views drawn outside the backend (the evaluation video, `RaceEnv.render`)."""
        if not self.has_objects:
            return []
        from .camera import Box

        state = self._car_objects_now().take(np.array([i])) if self.head_to_head else self._car_state(i)[1]
        colours = state.colours if state.colours is not None else np.full((state.count, 3), 128)
        return [Box(*row, colour=tuple(int(c) for c in rgb)) for row, rgb in zip(state.box_params()[0], colours)]

    def car_objects(self) -> ObjectState | None:
        """The obstacles and bot cars each car races among now, row i = car i's world (None without
        objects): for drivers that see the world (the scripted baseline), not for policies."""
        if not self.has_objects:
            return None
        return self._car_objects_now()

    def _car_objects_now(self) -> ObjectState:
        """Every car's objects now, row i = car i's (the other car, head-to-head)."""
        if self.head_to_head:
            states = self.backend.states()
            return opponent_state(states.poses, states.speeds, self.car)
        states = self._object_states()
        first = states[0][2]
        poses = np.empty((self.n, first.count, 3))
        speeds = np.empty((self.n, first.count))
        for _, rows, state in states:
            poses[rows], speeds[rows] = state.poses, state.speeds
        return ObjectState(poses, speeds, first.kinds, first.footprint, first.size, first.z, first.colours)

    def penalties(self) -> tuple[float, float]:
        """(PENALTY_SECONDS, COLLISION_PENALTY) of this race's phase (`evaluation`); (0, 0) without
        objects; head-to-head: DeepRacer's defaults (`RaceObjects()`)."""
        if self.head_to_head:
            return RaceObjects().penalties(self.evaluation)
        return (0.0, 0.0) if self.objects is None else self.objects.penalties(self.evaluation)

    # ---- objects --------------------------------------------------------------------------
    def _world(self, key: tuple[int, bool]) -> ObjectWorld:
        """The objects of track `key[0]` driven reversed or not (`key[1]`), one world per car."""
        world = self._worlds.get(key)
        if world is None:
            track = self.track_set.tracks[key[0]]
            # Layouts come from the race's seed, 0 without one: an evaluation's layouts reproduce.
            seed = (0 if self._seed is None else int(self._seed)) * 7919 + 2 * key[0] + int(key[1]) + 15
            assert self.objects is not None
            world = self._worlds[key] = ObjectWorld(self.objects, track.reversed() if key[1] else track, self.n, seed)
        return world

    def _object_states(self) -> list[tuple[ObjectWorld, np.ndarray, ObjectState]]:
        """(world, its cars, their objects) for every world some car races in."""
        groups: dict[tuple[int, bool], list[int]] = {}
        for i, key in enumerate(self._world_key):
            groups.setdefault(key, []).append(i)
        out = []
        remote = self._simulated_poses()
        for key, idx in groups.items():
            world, rows = self._worlds[key], np.array(idx, dtype=np.intp)
            state = world.state()
            state = state if len(rows) == self.n else state.take(rows)
            if remote is not None:
                state = dataclasses.replace(state, poses=remote[rows])
            out.append((world, rows, state))
        return out

    def _simulated_poses(self) -> np.ndarray | None:
        """(N, K, 3) the objects' poses of a backend whose simulator places and moves them (sim_node over
        ROS), checked against this race's objects; None when the race's own worlds hold them."""
        if not self.backend.simulates_objects:
            return None
        poses = self.backend.object_poses()
        assert self.objects is not None
        if poses.shape[1] != self.objects.count:
            raise ValueError(
                f"the simulator has {poses.shape[1]} objects per car, this race's world config "
                f"{self.objects.count} ({self.objects.obstacle_count} obstacles, {self.objects.number_of_bot_cars} "
                "bot cars): start the simulator with the same world config"
            )
        return poses

    def _car_state(self, i: int) -> tuple[ObjectWorld, ObjectState]:
        """Car i's world and its objects now (the simulator's poses when it simulates them)."""
        world = self._worlds[self._world_key[i]]
        state = world.state().take(np.array([i]))
        remote = self._simulated_poses()
        return world, state if remote is None else dataclasses.replace(state, poses=remote[[i]])

    def _show_objects(self, states: list[tuple[ObjectWorld, np.ndarray, ObjectState]] | None = None) -> None:
        """Hand every car's objects to the backend's sensors (the camera draws them)."""
        if not self.backend.sensors or self.backend.simulates_objects:
            return
        from .camera import CarBoxes

        if self.head_to_head:
            mine = self._car_objects_now()
            self.backend.show_objects(CarBoxes(mine.box_params(), mine.colours))
            return
        states = self._object_states() if states is None else states
        k = states[0][2].count
        params = np.empty((self.n, k, 6))
        for _, rows, state in states:
            params[rows] = state.box_params()
        self.backend.show_objects(CarBoxes(params, states[0][2].colours))

    def _judge_objects(self, poses: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Step the objects one control tick, then each car's collision and its `objects_*` params."""
        dt = 1.0 / self.control_hz
        for world in self._worlds.values():
            world.step(dt)
        states = self._object_states()
        crashed = np.zeros(self.n, dtype=bool)
        params: list[dict[str, Any]] = [{} for _ in range(self.n)]
        bot_speed = self.objects.bot_car_speed if self.objects.number_of_bot_cars else None  # type: ignore[union-attr]
        for world, rows, state in states:
            hit, index = collisions(poses[rows], state, self.car, self.collision_rule)
            crashed[rows], self.last_hit[rows] = hit, index
            for i, p in zip(rows.tolist(), objects_params(world.track, poses[rows], state, self.car, bot_speed)):
                params[i] = p
            self._pause_bots(world, rows[hit], index[hit], poses, state.take(np.flatnonzero(hit)))
        self._show_objects(states)
        return crashed, params

    def _judge_opponents(self, poses: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Head-to-head: which cars touch their opponent (both of a pair do), and each car's
        `objects_*` params with the opponent as its one object: heading its yaw (rad) and speed its
        speed (m/s) now."""
        state = self._car_objects_now()
        crashed, self.last_hit[:] = collisions(poses, state, self.car, self.collision_rule)
        track = self.track_set.tracks[0]
        params = objects_params(track, poses, state, self.car, None)
        for i, p in enumerate(params):
            p["objects_heading"] = [float(state.poses[i, 0, 2])]
            p["objects_speed"] = [float(state.speeds[i, 0])]
        self._show_objects()
        return crashed, params

    def _pause_bots(
        self, world: ObjectWorld, cars: np.ndarray, hit: np.ndarray, poses: np.ndarray, state: ObjectState
    ) -> None:
        """DeepRacer's bot cars stop PENALTY_SECONDS when one hits a car that is ahead of it
        (`bot_cars_agent_ctrl.judge_action`); the car is crashed all the same."""
        pause = self.penalties()[0]
        if pause <= 0 or len(cars) == 0:
            return
        track = world.track
        for j, (i, k) in enumerate(zip(cars.tolist(), hit.tolist())):
            if state.kinds[k] != BOT_CAR:
                continue
            car_arc, bot_arc = track.project(np.array([poses[i, :2], state.poses[j, k, :2]])).arc_length
            ahead = car_arc - bot_arc
            if track.closed:
                ahead = (ahead + 0.5 * track.length) % track.length - 0.5 * track.length
            if ahead > 0:
                world.pause_bots([i], pause)

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
        poses = self.backend.states().poses
        if not self.has_objects:
            judged = self.judge.update(poses, steering_deg, speed)
        else:
            crashed, object_params = self._judge_opponents(poses) if self.head_to_head else self._judge_objects(poses)
            judged = self.judge.update(poses, steering_deg, speed, crashed=crashed)
            for params, extra in zip(judged.params, object_params):
                params.update(extra)
        rewards = self.reward_fn.batch(judged.params)
        return rewards, judged.status, judged.params

    def observe(self, rows: np.ndarray) -> None:
        """Push the newest sensor frames of cars `rows` onto their stacks (nothing without sensors)."""
        self._store(np.asarray(rows, dtype=np.intp).reshape(-1), fresh=False)

    def _store(self, rows: np.ndarray, fresh: bool) -> None:
        if not self.backend.sensors or len(rows) == 0:
            return
        data = self.backend.sensor_data(rows)
        for name, stacks in self.sensor_frames.items():
            stacks.push(rows, data[name], fresh=fresh)

    def close(self) -> None:
        """Close the backend, and the reward function when the race loaded it."""
        try:
            self.backend.close()
        finally:
            if self.owns_reward:
                self.reward_fn.close()
