"""RosRaceEnv: the DeepRacer gymnasium env over the topic contract, whatever simulator is behind it.

It is `RaceEnv` over `RosBackend` (ros/backend.py): one race core judges, rewards and stacks
frames for every backend, so the embedded `sim_node` in lockstep gives the in-process env's
rewards and episodes, and Gazebo (ros_gz_bridge + gz_control) works too. This class keeps
the bridge's keyword arguments and its counters of rejected messages.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import numpy as np

from ..action_space import ActionSpace
from ..env import RaceEnv
from ..episode import RaceRules, StartRules
from ..observation import ObservationSpec
from ..reward import RewardFunction
from ..track import Track
from .backend import RosBackend, SimulatorTimeout, observation_frame

__all__ = ["RosRaceEnv", "SimulatorTimeout", "observation_frame"]


class RosRaceEnv(RaceEnv):
    """One DeepRacer car in any simulator publishing the topic contract, as a gymnasium env."""

    def __init__(
        self,
        track: Track | str = "reinvent_base",
        model_metadata: ActionSpace | str | os.PathLike | None = None,
        reward_function: RewardFunction | str | os.PathLike | None = None,
        observation: ObservationSpec | None = None,
        start: StartRules | None = None,
        rules: RaceRules | None = None,
        render_mode: str | None = None,
        *,
        timeout: float = 5.0,
        connect_timeout: float = 15.0,
        seed: int | None = None,
        domain_id: int | None = None,
        node_name: str | None = None,
        namespace: str | None = None,
        objects: Any = None,
    ):
        super().__init__(
            track,
            model_metadata,
            reward_function,
            observation,
            start,
            rules,
            render_mode=render_mode,
            backend="ros",
            timeout=timeout,
            connect_timeout=connect_timeout,
            domain_id=domain_id,
            node_name=node_name,
            namespaces=None if namespace is None else [namespace],
            keep_images=render_mode == "rgb_array",
            objects=objects,  # a race with objects: the simulator must spawn the same (sim_node race parameters)
        )
        if seed is not None:
            self.core.reseed(seed)

    @property
    def ros(self) -> RosBackend:
        return self.core.backend

    @property
    def rejected(self) -> int:
        return self.ros.rejected

    @property
    def rejections(self) -> deque[str]:
        return self.ros.rejections

    @property
    def timeout(self) -> float:
        return self.ros.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self.ros.timeout = float(value)

    @property
    def connect_timeout(self) -> float:
        return self.ros.connect_timeout

    @connect_timeout.setter
    def connect_timeout(self, value: float) -> None:
        self.ros.connect_timeout = float(value)

    def render(self) -> np.ndarray | None:
        """The simulator's last camera image (RGB), as received."""
        if self.render_mode != "rgb_array" or self.ros.last_images[0] is None:
            return None
        image = self.ros.last_images[0]
        return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image.copy()
