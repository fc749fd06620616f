"""`RaceVectorEnv`: N cars of one backend as a Gymnasium `VectorEnv` (`gymnasium.make_vec`).

The Gymnasium counterpart of the SB3 `RaceVecEnv`: the same `RaceCore`, all cars stepped in
one backend call. Autoreset mode SAME_STEP: a car whose episode ends is reset at once; the
returned observation is its new episode's first, and the last one is in
`infos["final_obs"]` (with `infos["final_info"]`), masked by `infos["_final_obs"]`.
Infos follow Gymnasium's vector convention: per key an array over cars and a `_key` mask; reset
infos have the same keys as step infos (the start's params).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .action_space import ActionSpace
from .env import reset_info, step_result
from .episode import RaceRules, StartRules
from .observation import ObservationSpec
from .race import RaceCore
from .reward import RewardFunction
from .sensors import observation_space
from .track import Track


def _batched(infos: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-car infos (`env.step_result`, `env.reset_info`) in Gymnasium's vector layout: an array per key, a mask."""
    everyone = np.ones(len(infos), bool)
    return {
        "params": np.array([info["params"] for info in infos], dtype=object),
        "_params": everyone,
        "episode_status": np.array([info["episode_status"] for info in infos], dtype=object),
        "_episode_status": everyone.copy(),
        "progress": np.array([info["progress"] for info in infos], dtype=np.float64),
        "_progress": everyone.copy(),
    }


class RaceVectorEnv(VectorEnv):
    """`num_envs` DeepRacer cars stepped together, as a Gymnasium VectorEnv."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 8,
        track: Track | str = "reinvent_base",
        model_metadata: ActionSpace | str | os.PathLike | None = None,
        reward_function: RewardFunction | str | os.PathLike | None = None,
        observation: ObservationSpec | None = None,
        start: StartRules | None = None,
        rules: RaceRules | None = None,
        backend: str = "inprocess",
        seed: int | None = None,
        **backend_options: Any,
    ):
        self.core = RaceCore.create(
            track,
            num_envs,
            model_metadata,
            reward_function,
            observation,
            backend,
            start,
            rules,
            seed,
            **backend_options,
        )
        self.num_envs = self.core.n
        self.single_observation_space = observation_space(self.core.backend.sensors, self.core.obs_spec)
        self.single_action_space = self.core.actions.gym_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._everyone = np.arange(self.num_envs)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start every car's next episode; `seed` (an int, or a list whose first entry counts) restarts the streams."""
        if isinstance(seed, (list, tuple)):
            seed = seed[0] if seed else None
        if seed is not None:
            self.core.reseed(int(seed))
            self.single_action_space.seed(int(seed))
            self.action_space.seed(int(seed))
        self.core.reset_cars(self._everyone)
        return self.core.observation(), _batched([reset_info(self.core.judge.start_params(i)) for i in self._everyone])

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        rewards, statuses, params = self.core.step(actions)
        self.core.observe(self._everyone)
        results = [step_result(s, p) for s, p in zip(statuses, params)]
        terminated = np.array([r[0] for r in results])
        truncated = np.array([r[1] for r in results])
        infos = _batched([r[2] for r in results])
        done = terminated | truncated
        if done.any():
            rows = np.flatnonzero(done)
            final_obs = np.empty(self.num_envs, dtype=object)
            final_info = np.empty(self.num_envs, dtype=object)
            for i in rows:
                final_obs[i] = self.core.observation(int(i))
                final_info[i] = results[i][2]
            infos.update(final_obs=final_obs, _final_obs=done, final_info=final_info, _final_info=done)
            self.core.reset_cars(rows)
        return self.core.observation(), rewards.astype(np.float64), terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        self.core.close()
