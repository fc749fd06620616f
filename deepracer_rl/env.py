"""Gymnasium envs over the embedded simulator: `RaceEnv` (one car) and `RaceVecEnv` (N cars).

Observation: the car's camera, channel-first uint8 (1x120x160 grayscale by default; RGB,
other sizes and frame stacking are options). Action: from `model_metadata.json` (see
`action_space`: continuous actions are clipped to [-1, 1]; NaN/inf actions and bad
discrete indices raise `ActionError`). Reward: the user's `reward_function(params)`.
`info` carries the DeepRacer params dict and the episode status. The policy never sees
the pose or the track.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .action_space import ActionError, ActionSpace
from .episode import EpisodeStatus, RaceRules
from .reward import RewardFunction
from .sim import Dynamics, Simulator, StartRules
from .track import Track

ENV_ID = "deepracer_rl/Race-v0"


@dataclass(frozen=True)
class ObservationSpec:
    """What the policy sees: image size, colour and how many stacked frames."""

    width: int = 160
    height: int = 120
    grayscale: bool = True
    frame_stack: int = 1

    @property
    def channels(self) -> int:
        return (1 if self.grayscale else 3) * self.frame_stack

    def space(self) -> spaces.Box:
        return spaces.Box(0, 255, shape=(self.channels, self.height, self.width), dtype=np.uint8)


def _as_channels_first(frames: np.ndarray) -> np.ndarray:
    """(N, H, W) or (N, H, W, 3) -> (N, C, H, W)."""
    return frames[:, None] if frames.ndim == 3 else np.transpose(frames, (0, 3, 1, 2))


def load_race_inputs(
    track: Track | str,
    metadata: ActionSpace | str | os.PathLike | None,
    reward: RewardFunction | str | os.PathLike | None,
) -> tuple[Track, ActionSpace, RewardFunction]:
    """The track, action space and reward function of a race, from objects or files (None:
    the console's default action space, the default reward). Shared by every race env."""
    return (
        track if isinstance(track, Track) else Track.load(track),
        metadata if isinstance(metadata, ActionSpace) else ActionSpace.load(metadata),
        reward if isinstance(reward, RewardFunction) else RewardFunction(reward),
    )


class RaceCore:
    """N cars, their rewards, stacked observations and statuses: shared by both envs."""

    def __init__(
        self,
        track: Track | str = "reinvent_base",
        n_cars: int = 1,
        metadata: ActionSpace | str | os.PathLike | None = None,
        reward: RewardFunction | str | os.PathLike | None = None,
        observation: ObservationSpec | None = None,
        start: StartRules | None = None,
        rules: RaceRules | None = None,
        dynamics: Dynamics | None = None,
        randomization=None,
        seed: int | None = None,
    ):
        self.track, self.actions, self.reward_fn = load_race_inputs(track, metadata, reward)
        self.obs_spec = observation or ObservationSpec()
        self.sim_kwargs = dict(
            n_cars=n_cars,
            dynamics=dynamics,
            start=start,
            rules=rules,
            image_size=(self.obs_spec.width, self.obs_spec.height),
            grayscale=self.obs_spec.grayscale,
            randomization=randomization,
        )
        self.sim = Simulator(self.track, seed=seed, **self.sim_kwargs)
        self.n = n_cars
        self.stack = np.zeros((n_cars,) + self.obs_spec.space().shape, dtype=np.uint8)

    def reseed(self, seed: int | None) -> None:
        self.sim = Simulator(self.track, car=self.sim.car, seed=seed, **self.sim_kwargs)

    def _store(self, frames: np.ndarray, rows: np.ndarray, fresh: bool) -> None:
        """Stack `frames` (channel-first, one per row of `rows`) as the newest frames of those cars."""
        per = frames.shape[1]
        if fresh:
            self.stack[rows] = np.tile(frames, (1, self.obs_spec.frame_stack, 1, 1))
        elif self.obs_spec.frame_stack == 1:
            self.stack[rows] = frames
        else:
            self.stack[rows] = np.concatenate([self.stack[rows, per:], frames], axis=1)

    def reset_cars(self, rows: np.ndarray, pose: np.ndarray | None = None, reverse: bool | None = None) -> None:
        """Start the next episode of cars `rows` (at their next start, or all at `pose`)."""
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        for i in rows:
            self.sim.reset_car(int(i), pose=pose, reverse=reverse)
        if self.sim.renderer is not None:
            self._store(_as_channels_first(self.sim.render(rows)), rows, fresh=True)

    def step(self, actions: Any) -> tuple[np.ndarray, list[EpisodeStatus], list[dict]]:
        steer, speed = self.actions.to_commands(actions)
        if len(steer) != self.n:
            raise ActionError(f"expected {self.n} actions (one per car), got {len(steer)}")
        result = self.sim.step(steer, speed, render=False)
        rewards = np.array([self.reward_fn(p) for p in result.judge.params], dtype=np.float64)
        return rewards, result.status, result.judge.params

    def observe(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        if self.sim.renderer is None:  # scripted drivers run without a camera
            return
        self._store(_as_channels_first(self.sim.render(rows)), rows, fresh=False)


class RaceEnv(gym.Env):
    """One DeepRacer car on the embedded simulator, as a gymnasium env."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        track: Track | str = "reinvent_base",
        model_metadata: ActionSpace | str | os.PathLike | None = None,
        reward_function: RewardFunction | str | os.PathLike | None = None,
        observation: ObservationSpec | None = None,
        start: StartRules | None = None,
        rules: RaceRules | None = None,
        dynamics: Dynamics | None = None,
        randomization=None,
        render_mode: str | None = None,
    ):
        self.core = RaceCore(
            track,
            1,
            model_metadata,
            reward_function,
            observation,
            start,
            rules,
            dynamics,
            randomization,
        )
        self.observation_space = self.core.obs_spec.space()
        self.action_space = self.core.actions.gym_space()
        self.render_mode = render_mode
        self._viewer = None

    @property
    def sim(self) -> Simulator:
        return self.core.sim

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.core.reseed(seed)
        self.core.reset_cars(np.array([0]))
        return self.core.stack[0].copy(), {"episode_status": EpisodeStatus.IN_PROGRESS.value}

    def step(self, action):
        rewards, status, params = self.core.step(np.asarray(action)[None])
        self.core.observe(np.array([0]))
        info = {"params": params[0], "episode_status": status[0].value, "progress": params[0]["progress"]}
        terminated = status[0].done and status[0] is not EpisodeStatus.TIME_UP
        truncated = status[0] is EpisodeStatus.TIME_UP
        return self.core.stack[0].copy(), float(rewards[0]), terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self._viewer is None:
            from .camera import CameraRenderer

            camera = self.sim.car.camera
            self._viewer = CameraRenderer(self.core.track, camera, camera.width, camera.height, grayscale=False)
        return self._viewer.render(self.sim.state.pose[:1])[0]
