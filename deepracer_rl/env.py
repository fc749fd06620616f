"""`RaceEnv`: one DeepRacer car as a Gymnasium env, over any simulator backend.

Observation: the car's sensors from `model_metadata.json` (the front camera: channel-first
uint8, 1x120x160 gray by default; RGB, other sizes and frame stacking are options).
Action: from `model_metadata.json` (see `action_space`: continuous actions are clipped to
[-1, 1]; NaN/inf actions and bad discrete indices raise `ActionError`). Reward: the user's
`reward_function(params)`. `info` of `step` and of `reset` carries the DeepRacer params dict, the
episode status and the progress (at a reset: the start's params, steps 0).
The policy never sees the pose or the track. `backend="ros"` races a simulator behind the
topic contract (the embedded `sim_node` or Gazebo) with the same judging and rewards.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

from .action_space import ActionSpace
from .backend import SimulatorBackend
from .camera import DomainRandomization
from .episode import EpisodeStatus, RaceRules, StartRules
from .observation import ObservationSpec
from .race import RaceCore
from .reward import RewardFunction
from .sensors import observation_space
from .sim import Dynamics
from .track import Track

ENV_ID = "deepracer_rl/Race-v0"


# Ends that cut an episode short without it reaching a terminal state (Gymnasium's "truncated",
# as for time limits): the time limit, and standing still (as the `deepracer` gym wrapper has it).
TRUNCATING = frozenset({EpisodeStatus.TIME_UP, EpisodeStatus.IMMOBILIZED})


def step_result(status: EpisodeStatus, params: dict[str, Any]) -> tuple[bool, bool, dict[str, Any]]:
    """(terminated, truncated, info) of a step: the time limit and immobilisation truncate, other ends terminate."""
    info = {"params": params, "episode_status": status.value, "progress": params["progress"]}
    truncated = status in TRUNCATING
    return status.done and not truncated, truncated, info


def reset_info(params: dict[str, Any]) -> dict[str, Any]:
    """The info of a reset: the same keys as a step's (Gymnasium's convention), with the start's
    params (steps 0, progress 0, standing still: `EpisodeJudge.start_params`)."""
    return {"params": params, "episode_status": EpisodeStatus.IN_PROGRESS.value, "progress": params["progress"]}


class RaceEnv(gym.Env):
    """One DeepRacer car as a gymnasium env, on the in-process simulator (default) or another backend."""

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
        randomization: DomainRandomization | None = None,
        render_mode: str | None = None,
        backend: str = "inprocess",
        **backend_options: Any,
    ):
        if dynamics is not None:
            backend_options["dynamics"] = dynamics
        if randomization is not None:
            backend_options["randomization"] = randomization
        self.core = RaceCore.create(
            track, 1, model_metadata, reward_function, observation, backend, start, rules, **backend_options
        )
        self.observation_space = observation_space(self.core.backend.sensors, self.core.obs_spec)
        self.action_space = self.core.actions.gym_space()
        self.render_mode = render_mode
        self._viewer = None

    @property
    def backend(self) -> SimulatorBackend:
        return self.core.backend

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.core.reseed(seed)
        self.core.reset_cars(np.array([0]))
        return self.core.observation(0), reset_info(self.core.judge.start_params(0))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        rewards, status, params = self.core.step(np.asarray(action)[None])
        self.core.observe(np.array([0]))
        terminated, truncated, info = step_result(status[0], params[0])
        return self.core.observation(0), float(rewards[0]), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """The car's camera view at full camera resolution (RGB), drawn by the embedded renderer at its pose."""
        if self.render_mode != "rgb_array":
            return None
        if self._viewer is None:
            from .camera import CameraRenderer

            camera = self.core.car.camera
            self._viewer = CameraRenderer(self.core.track, camera, camera.width, camera.height, grayscale=False)
        return self._viewer.render(self.core.poses()[:1], objects=self.core.object_boxes(0) or None)[0]

    def close(self) -> None:
        self.core.close()
