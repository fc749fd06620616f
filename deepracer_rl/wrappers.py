"""Gymnasium wrappers for the race envs.

`ChannelLastObservation` turns the env's channel-first frames (C, H, W), the layout SB3's CNN
and the exported ONNX model take, into Gymnasium's image layout (H, W, C), so the standard
image wrappers work on them:

    env = ResizeObservation(ChannelLastObservation(RaceEnv()), (60, 80))
    env = GrayscaleObservation(ChannelLastObservation(RaceEnv(observation=ObservationSpec(grayscale=False))))
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class ChannelLastObservation(gym.ObservationWrapper):
    """(C, H, W) uint8 observations -> (H, W, C); a single gray channel stays (H, W, 1)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 3:
            raise ValueError(f"ChannelLastObservation needs (C, H, W) image observations, got {space}")
        c, h, w = space.shape
        self.observation_space = spaces.Box(0, 255, shape=(h, w, c), dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(observation, (1, 2, 0)))
