"""`DeepRacerCNN`: the SB3 features extractor built from a `networks.NETWORKS` entry."""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from .networks import NETWORKS


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
