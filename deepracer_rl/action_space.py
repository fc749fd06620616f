"""DeepRacer `model_metadata.json` <-> gymnasium action spaces.

Discrete: a list of {steering_angle (deg, + = left), speed (m/s)}; the gym space is
`Discrete(n)`. Continuous: ranges for both; the gym space is `Box(-1, 1, (2,))` (steering,
speed), mapped linearly onto the ranges. A finite continuous action outside [-1, 1] is
clipped to it, i.e. to the metadata's low/high (SB3 samples unbounded Gaussian actions);
NaN/inf actions, a continuous action that is not (steering, speed) pairs, and discrete
indices that are not integers in 0..n-1 raise `ActionError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

STEERING_LIMIT_DEG = 30.0
SPEED_MIN, SPEED_MAX = 0.1, 4.0
# DeepRacer's values of model_metadata.json's "neural_network" and "training_algorithm".
NEURAL_NETWORKS = (
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "DEEP_CONVOLUTIONAL_NETWORK",
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP",
)
TRAINING_ALGORITHMS = ("clipped_ppo", "sac")
METADATA_VERSIONS = ("1", "2", "3", "4", "5")  # model_metadata.json "version"s the simapp reads; we write the last


class MetadataError(ValueError):
    """A model_metadata.json is missing, unreadable or holds an invalid field."""


class ActionError(ValueError):
    """An action given to the env is not in its action space."""


@dataclass(frozen=True)
class ActionSpace:
    """The car's action space: what the policy picks, in steering degrees and m/s."""

    kind: str  # "discrete" or "continuous"
    actions: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (n, 2) steer, speed
    steering_range: tuple[float, float] = (-STEERING_LIMIT_DEG, STEERING_LIMIT_DEG)
    speed_range: tuple[float, float] = (0.5, 1.0)
    neural_network: str = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    training_algorithm: str = "clipped_ppo"
    sensor: tuple[str, ...] = ("FRONT_FACING_CAMERA",)
    # DISCRETIZED_SECTOR_LIDAR's "lidar_config" as written (checked with the sensors: `sensors.sensors_for`)
    lidar_config: dict[str, Any] | None = None

    # ---- construction -----------------------------------------------------------------
    @classmethod
    def default(cls) -> ActionSpace:
        """The DeepRacer console's default: steering ±30° in 5 steps x speeds 0.5 and 1 m/s."""
        grid = [(s, v) for s in (-30.0, -15.0, 0.0, 15.0, 30.0) for v in (0.5, 1.0)]
        return cls(kind="discrete", actions=np.array(grid, dtype=np.float64))

    @classmethod
    def load(cls, path: str | os.PathLike | None) -> ActionSpace:
        """Read a model_metadata.json; None gives the console default."""
        if path is None:
            return cls.default()
        where = str(path)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MetadataError(f"{where}: no such metadata file") from None
        except json.JSONDecodeError as exc:
            raise MetadataError(f"{where}: not valid JSON ({exc})") from None
        except UnicodeDecodeError as exc:
            raise MetadataError(f"{where}: not UTF-8 text (byte {exc.start}); save the file as UTF-8 JSON") from None
        except OSError as exc:
            raise MetadataError(f"{where}: cannot read the metadata file ({exc.strerror or exc})") from None
        return cls.from_metadata(data, where)

    @classmethod
    def from_metadata(cls, data: Any, where: str = "model_metadata.json") -> ActionSpace:
        if not isinstance(data, dict):
            raise MetadataError(f"{where}: expected a JSON object at the top level")
        if "action_space" not in data:
            raise MetadataError(f"{where}: missing field 'action_space'")
        raw = data["action_space"]
        kind = str(data.get("action_space_type", "continuous" if isinstance(raw, dict) else "discrete"))
        extras = {
            "neural_network": _choice(data, "neural_network", cls.neural_network, NEURAL_NETWORKS, where),
            "training_algorithm": _choice(
                data, "training_algorithm", cls.training_algorithm, TRAINING_ALGORITHMS, where
            ),
            "sensor": _sensor_names(data.get("sensor", list(cls.sensor)), where),
            "lidar_config": _lidar_config(data.get("lidar_config"), where),
        }
        _check_version(data.get("version", METADATA_VERSIONS[-1]), where)
        if kind == "discrete":
            if not isinstance(raw, list) or not raw:
                raise MetadataError(f"{where}: 'action_space' must be a non-empty list for discrete")
            rows = []
            for i, entry in enumerate(raw):
                if not isinstance(entry, dict):
                    raise MetadataError(f"{where}: action_space[{i}] must be an object")
                steer = _number(entry, "steering_angle", f"{where}: action_space[{i}]")
                speed = _number(entry, "speed", f"{where}: action_space[{i}]")
                _check_steer(steer, f"{where}: action_space[{i}].steering_angle")
                _check_speed(speed, f"{where}: action_space[{i}].speed")
                rows.append((steer, speed))
            return cls(kind="discrete", actions=np.array(rows, dtype=np.float64), **extras)
        if kind == "continuous":
            if not isinstance(raw, dict):
                raise MetadataError(f"{where}: 'action_space' must be an object for continuous")
            ranges = {}
            for name in ("steering_angle", "speed"):
                entry = raw.get(name)
                if not isinstance(entry, dict):
                    raise MetadataError(f"{where}: action_space.{name} must be an object with low/high")
                low = _number(entry, "low", f"{where}: action_space.{name}")
                high = _number(entry, "high", f"{where}: action_space.{name}")
                check = _check_steer if name == "steering_angle" else _check_speed
                check(low, f"{where}: action_space.{name}.low")
                check(high, f"{where}: action_space.{name}.high")
                if not low < high:
                    raise MetadataError(f"{where}: action_space.{name}: low {low} must be below high {high}")
                ranges[name] = (low, high)
            return cls(
                kind="continuous",
                steering_range=ranges["steering_angle"],
                speed_range=ranges["speed"],
                **extras,
            )
        raise MetadataError(f"{where}: action_space_type must be 'discrete' or 'continuous', got {kind!r}")

    # ---- use --------------------------------------------------------------------------
    @property
    def max_speed(self) -> float:
        return float(self.actions[:, 1].max()) if self.kind == "discrete" else self.speed_range[1]

    def gym_space(self) -> spaces.Space:
        if self.kind == "discrete":
            return spaces.Discrete(len(self.actions))
        return spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def to_commands(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """Policy actions for N cars -> (steering degrees, speed m/s), each shape (N,)."""
        if self.kind == "discrete":
            a = np.asarray(actions).reshape(-1)
            if a.dtype.kind == "f":
                if not np.all(np.isfinite(a)):
                    raise ActionError(f"action {actions!r} is not finite; expected an index 0..{len(self.actions) - 1}")
                if not np.all(a == np.round(a)):
                    raise ActionError(f"action {actions!r} is not an integer index 0..{len(self.actions) - 1}")
            elif a.dtype.kind not in "iu":
                raise ActionError(f"action {actions!r} is not an integer index 0..{len(self.actions) - 1}")
            idx = a.astype(np.int64)
            if np.any((idx < 0) | (idx >= len(self.actions))):
                raise ActionError(f"action {actions!r} is outside the discrete space 0..{len(self.actions) - 1}")
            chosen = self.actions[idx]
            return chosen[:, 0].copy(), chosen[:, 1].copy()
        try:
            a = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError):
            raise ActionError(f"action {actions!r} is not numeric; expected (steering, speed) in [-1, 1]") from None
        if a.size == 0 or a.size % 2:
            raise ActionError(f"action {actions!r} has {a.size} values; expected (steering, speed) pairs in [-1, 1]")
        a = a.reshape(-1, 2)
        if not np.all(np.isfinite(a)):
            raise ActionError(f"action {actions!r} holds NaN or inf; expected (steering, speed) in [-1, 1]")
        a = np.clip(a, -1.0, 1.0)
        (s_lo, s_hi), (v_lo, v_hi) = self.steering_range, self.speed_range
        steer = s_lo + (a[:, 0] + 1.0) * 0.5 * (s_hi - s_lo)
        speed = v_lo + (a[:, 1] + 1.0) * 0.5 * (v_hi - v_lo)
        return steer, speed

    def digest(self) -> str:
        """SHA-256 of the actions in their order (type, the list or the ranges): what a policy's outputs index."""
        data = self.to_metadata()
        text = json.dumps([data["action_space_type"], data["action_space"]], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_metadata(self) -> dict[str, Any]:
        """The DeepRacer model_metadata.json content for this space."""
        if self.kind == "discrete":
            action_space: Any = [
                {"steering_angle": float(s), "speed": float(v), "index": i} for i, (s, v) in enumerate(self.actions)
            ]
        else:
            action_space = {
                "steering_angle": {"low": self.steering_range[0], "high": self.steering_range[1]},
                "speed": {"low": self.speed_range[0], "high": self.speed_range[1]},
            }
        metadata = {
            "action_space": action_space,
            "sensor": list(self.sensor),
            "neural_network": self.neural_network,
            "training_algorithm": self.training_algorithm,
            "action_space_type": self.kind,
            "version": METADATA_VERSIONS[-1],
        }
        if self.lidar_config is not None:
            metadata["lidar_config"] = dict(self.lidar_config)
        return metadata

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_metadata(), indent=2) + "\n", encoding="utf-8")


def _check_version(value: Any, where: str) -> None:
    """The "version" field: DeepRacer's simapp reads metadata versions 1..5 (a string or a number)."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    whole = math.isfinite(number) and number == int(number)
    if not whole or str(int(number)) not in METADATA_VERSIONS:
        raise MetadataError(
            f"{where}: field 'version' is {value!r}; DeepRacer's metadata versions are {', '.join(METADATA_VERSIONS)}"
        )


def _choice(data: dict, key: str, default: str, allowed: tuple[str, ...], where: str) -> str:
    """A field that must be one of DeepRacer's values (absent: the default)."""
    value = data.get(key, default)
    if value not in allowed:
        raise MetadataError(f"{where}: field {key!r} is {value!r}; DeepRacer's values are {', '.join(allowed)}")
    return value


def _sensor_names(value: Any, where: str) -> tuple[str, ...]:
    """The "sensor" field: a non-empty list of names (which names are built: `sensors.check_sensor_names`)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise MetadataError(
            f"{where}: field 'sensor' must be a non-empty list of sensor names, e.g. [\"FRONT_FACING_CAMERA\"], "
            f"got {value!r}"
        )
    return tuple(value)


def _lidar_config(value: Any, where: str) -> dict[str, Any] | None:
    """The "lidar_config" field: an object or absent (its keys and values: `lidar.LidarConfig`)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MetadataError(f"{where}: field 'lidar_config' must be an object, got {value!r}")
    return dict(value)


def _number(entry: dict, key: str, where: str) -> float:
    if key not in entry:
        raise MetadataError(f"{where}: missing field '{key}'")
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MetadataError(f"{where}.{key}: expected a finite number, got {value!r}")
    return float(value)


def _check_steer(value: float, where: str) -> None:
    if abs(value) > STEERING_LIMIT_DEG:
        raise MetadataError(f"{where} = {value}: steering must be within ±{STEERING_LIMIT_DEG:g} degrees")


def _check_speed(value: float, where: str) -> None:
    if not SPEED_MIN <= value <= SPEED_MAX:
        raise MetadataError(f"{where} = {value}: speed must be within {SPEED_MIN}..{SPEED_MAX} m/s")
