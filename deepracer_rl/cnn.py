"""`DeepRacerCNN`: the SB3 features extractor built from a `networks.NETWORKS` entry, and
`SensorsExtractor`, the one for several sensors (a CNN per camera input, an MLP for the lidar)."""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from .networks import LIDAR_UNITS, NETWORKS


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


class SensorsExtractor(BaseFeaturesExtractor):
    """Several sensors (a Dict observation, `sensors.observation_space`): a `DeepRacerCNN` per camera
    input and an MLP (`networks.LIDAR_UNITS`, ReLU) per vector input, their features concatenated
    (SB3's MultiInputPolicy layout)."""

    def __init__(self, observation_space: gym.spaces.Dict, network: str = "shallow"):
        heads: dict[str, nn.Module] = {}
        size = 0
        for key, space in observation_space.spaces.items():
            if is_image_space(space):
                heads[key] = DeepRacerCNN(space, network)
                size += heads[key].features_dim
            else:
                layers: list[nn.Module] = [nn.Flatten()]
                width = int(torch.Size(space.shape).numel())
                for units in LIDAR_UNITS:
                    layers += [nn.Linear(width, units), nn.ReLU()]
                    width = units
                heads[key] = nn.Sequential(*layers)
                size += width
        super().__init__(observation_space, size)
        self.heads = nn.ModuleDict(heads)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([head(observations[key]) for key, head in self.heads.items()], dim=1)
