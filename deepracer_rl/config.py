"""`TrainConfig`: everything that defines a training run (saved as the run directory's config.json)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .observation import TRAINING_IMAGE_SIZE, ObservationSpec
from .sensors import DEFAULT_SENSORS


class ConfigError(ValueError):
    """A run's config.json is missing, unreadable or malformed; the message names the file and field."""


@dataclass
class TrainConfig:
    """Everything that defines a run. Hyperparameters are named as in the DeepRacer console."""

    track: str = "reinvent_base"
    reward: str | None = None  # reward_function file; None = follow the centre line
    metadata: str | None = None  # model_metadata.json; None = the console default
    algo: str = "ppo"  # a name of `algorithms.ALGORITHMS`
    steps: int = 150_000
    n_envs: int = 8  # cars simulated together
    backend: str = "inprocess"  # a name of `backend.available_backends()`
    ros_timeout: float | None = None  # --backend ros: s to wait for the simulator (None: the backend's 15 s / 5 s)
    seed: int = 0
    image_width: int = TRAINING_IMAGE_SIZE[0]
    image_height: int = TRAINING_IMAGE_SIZE[1]
    grayscale: bool = True
    frame_stack: int = 1
    randomize: bool = False  # domain randomisation of the camera (camera.STANDARD_RANDOMIZATION)
    network: str = "shallow"  # a name of `networks.NETWORKS`
    sensors: list[str] = field(default_factory=lambda: list(DEFAULT_SENSORS))  # from the metadata's "sensor"
    # Hyperparameters, named as in the DeepRacer console.
    batch_size: int = 256
    learning_rate: float = 3e-4
    entropy: float = 0.01
    discount: float = 0.99
    epochs: int = 3
    episodes_between_updates: int = 20  # sets the rollout: episodes x ~100 steps, split over cars
    # Bookkeeping.
    checkpoint_every: int = 10_000  # env steps
    eval_every: int = 10_000  # env steps
    eval_laps: int = 1
    max_minutes: float | None = None
    stop_when_lapping: bool = False  # stop once an evaluation completes every lap
    simtrace: bool = True
    torch_threads: int = 2

    @property
    def rollout_steps(self) -> int:
        """Env steps per car between PPO updates."""
        total = math.ceil(self.episodes_between_updates * 100 / self.batch_size) * self.batch_size
        return max(32, math.ceil(total / self.n_envs))

    def observation(self) -> ObservationSpec:
        return ObservationSpec(self.image_width, self.image_height, self.grayscale, self.frame_stack)

    def to_json(self) -> str:
        """config.json: every field, plus the observation the policy sees (derived, for readers)."""
        data: dict[str, Any] = dataclasses.asdict(self)
        data["observation"] = self.observation().as_dict()
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str | Path = "config.json") -> TrainConfig:
        """A config from config.json text; unknown keys (derived ones, newer versions) are ignored."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object of settings")
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None
