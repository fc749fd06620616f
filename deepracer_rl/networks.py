"""Policy networks sized for DeepRacer camera frames (SB3 features extractors)."""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

# name -> (conv layers as (channels, kernel, stride), dense units)
NETWORKS: dict[str, tuple[tuple[tuple[int, int, int], ...], int]] = {
    # DeepRacer's DEEP_CONVOLUTIONAL_NETWORK_SHALLOW: three conv layers and a dense layer.
    "shallow": (((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512),
    # DeepRacer's DEEP_CONVOLUTIONAL_NETWORK (five conv layers).
    "deep": (((32, 5, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2)), 512),
    # A lean variant for fast CPU training on small inputs.
    "small": (((16, 8, 4), (32, 4, 2), (32, 3, 1)), 256),
}

DEEPRACER_NETWORK_NAMES = {
    "shallow": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "deep": "DEEP_CONVOLUTIONAL_NETWORK",
    "small": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
}


class DeepRacerCNN(BaseFeaturesExtractor):
    """Conv layers + one dense layer over channel-first uint8 frames (scaled by SB3)."""

    def __init__(self, observation_space: gym.spaces.Box, network: str = "shallow"):
        if network not in NETWORKS:
            raise ValueError(f"unknown network {network!r}; choose one of {', '.join(NETWORKS)}")
        convs, dense = NETWORKS[network]
        super().__init__(observation_space, dense)
        layers: list[nn.Module] = []
        channels = observation_space.shape[0]
        for out, kernel, stride in convs:
            layers += [nn.Conv2d(channels, out, kernel_size=kernel, stride=stride), nn.ReLU()]
            channels = out
        layers.append(nn.Flatten())
        self.cnn = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.cnn(torch.zeros((1,) + observation_space.shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(flat, dense), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))
