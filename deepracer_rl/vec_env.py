"""`RaceVecEnv`: N cars of one simulator backend as one stable-baselines3 VecEnv.

All cars step in one backend call; a car whose episode ends is reset at once and its
last observation is kept in `info["terminal_observation"]`, as SB3 expects. The first step of
an episode also carries `info["start_params"]`: the params on its start pose (steps 0), which
the training simtrace writes as the episode's `prepare` row; with several tracks every info
carries `info["track"]`, the name of the car's track.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from .backend import SimulatorBackend
from .env import step_result
from .race import RaceCore
from .sensors import observation_space


class RaceVecEnv(VecEnv):
    """N DeepRacer cars stepped together (same track, reward and action space) on one backend."""

    def __init__(self, n_envs: int = 8, seed: int | None = None, **core_kwargs: Any):
        self.core = RaceCore.create(n_cars=n_envs, seed=seed, **core_kwargs)
        space = observation_space(self.core.backend.sensors, self.core.obs_spec)
        super().__init__(n_envs, space, self.core.actions.gym_space())
        self._actions: np.ndarray | None = None

    @property
    def backend(self) -> SimulatorBackend:
        return self.core.backend

    def reset(self) -> VecEnvObs:
        if self._seeds and self._seeds[0] is not None:
            self.core.reseed(self._seeds[0])
        self._reset_seeds()
        self.core.reset_cars(np.arange(self.num_envs))
        return self.core.observation()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        rewards, status, params = self.core.step(self._actions)
        everyone = np.arange(self.num_envs)
        done = np.array([s.done for s in status])
        self.core.observe(everyone)
        infos: list[dict[str, Any]] = []
        multi_track = len(self.core.track_set.tracks) > 1
        for i in everyone:
            _, truncated, info = step_result(status[i], params[i])
            if params[i]["steps"] == 1:
                info["start_params"] = self.core.judge.start_params(int(i))
            if multi_track:
                info["track"] = self.core.car_track(int(i)).name
            if done[i]:
                info["terminal_observation"] = self.core.observation(int(i))
                info["TimeLimit.truncated"] = truncated
            infos.append(info)
        if done.any():
            self.core.reset_cars(np.flatnonzero(done))
        return self.core.observation(), rewards.astype(np.float32), done, infos

    def close(self) -> None:
        self.core.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "render_mode":  # SB3 asks each sub-env; the cars have no render mode
            return [None] * len(self._indices(indices))
        return [getattr(self.core, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.core, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        method = getattr(self.core, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)
