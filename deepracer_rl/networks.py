"""The policy networks by name: conv layers and dense units sized for DeepRacer camera frames.

The torch modules are built from this table by `cnn.DeepRacerCNN`; this module imports no torch,
so the CLI can list the choices quickly.
"""

from __future__ import annotations

# name -> (conv layers as (channels, kernel, stride), dense units)
NETWORKS: dict[str, tuple[tuple[tuple[int, int, int], ...], int]] = {
    # DeepRacer's DEEP_CONVOLUTIONAL_NETWORK_SHALLOW: three conv layers and a dense layer.
    "shallow": (((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512),
    # DeepRacer's DEEP_CONVOLUTIONAL_NETWORK (five conv layers).
    "deep": (((32, 5, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2)), 512),
    # A lean variant for fast CPU training on small inputs.
    "small": (((16, 8, 4), (32, 4, 2), (32, 3, 1)), 256),
}

# name -> DeepRacer's `neural_network` in model_metadata.json (the export writes it; one of
# `action_space.NEURAL_NETWORKS`).
DEEPRACER_NETWORK_NAMES = {
    "shallow": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "deep": "DEEP_CONVOLUTIONAL_NETWORK",
    "small": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
}

# The lidar's MLP when the car has a lidar beside its camera (`cnn.SensorsExtractor`): dense units per
# layer (our choice, small: a 64-value scan).
LIDAR_UNITS = (64, 64)
