"""The car's sensors, keyed by DeepRacer's names in `model_metadata.json` ("sensor": [...]).

A `Sensor` says what it gives the policy: its observation space at an `ObservationSpec`, the
name of its network/ONNX input, and how the in-process simulator draws it. Everything else
is derived from the registry: the env's observation space, the network's and the export's
inputs, and (in `ros/contract.py`, keyed by the same names) the topics `sim_node` publishes
and the inference node subscribes to. Adding a sensor means one module that defines it and
calls `register`, plus its topic entry in the contract.

DeepRacer's names: FRONT_FACING_CAMERA, STEREO_CAMERAS, LIDAR, SECTOR_LIDAR,
DISCRETIZED_SECTOR_LIDAR. Only the front camera is built so far; a metadata file that asks
for another is refused with that reason, never trained as something else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces

from .observation import ObservationSpec, as_channels_first

if TYPE_CHECKING:
    from .sim import Simulator

DEEPRACER_SENSOR_NAMES = (
    "FRONT_FACING_CAMERA",
    "STEREO_CAMERAS",
    "LIDAR",
    "SECTOR_LIDAR",
    "DISCRETIZED_SECTOR_LIDAR",
)

CAMERA_SENSORS = ("FRONT_FACING_CAMERA", "STEREO_CAMERAS")
LIDAR_SENSORS = ("LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR")
_LIDAR_WHY = (
    ": its ray cast and observations exist (deepracer_rl/lidar.py), but a policy of camera and lidar "
    "(a Dict observation, a multi-input network, one ONNX input per sensor, /scan in the inference node) "
    "is not built (docs/races.md)"
)
_NOT_BUILT = {name: _LIDAR_WHY for name in LIDAR_SENSORS} | {
    "STEREO_CAMERAS": ": the renderer draws one camera per car; the stereo pair is not built (docs/races.md)"
}


class SensorError(ValueError):
    """A sensor name that is unknown, not built yet, or not given as a list of names."""


class Sensor(ABC):
    """One sensor of the car: its DeepRacer name, its policy input and how the simulator draws it."""

    name: str  # DeepRacer's name, as in model_metadata.json
    input_name: str  # the network's / exported ONNX model's input

    @abstractmethod
    def space(self, spec: ObservationSpec) -> spaces.Box:
        """The observation space of this sensor's input (one car)."""

    @abstractmethod
    def draw(self, sim: Simulator, rows: np.ndarray) -> np.ndarray:
        """This sensor's frames (k, *space.shape minus stacking) for cars `rows` of the in-process simulator."""


class FrontFacingCamera(Sensor):
    """The DeepRacer camera (URDF `camera_optical_link`): gray or RGB frames, channel-first uint8."""

    name = "FRONT_FACING_CAMERA"
    input_name = "observation"

    def space(self, spec: ObservationSpec) -> spaces.Box:
        return spec.space()

    def draw(self, sim: Simulator, rows: np.ndarray) -> np.ndarray:
        frames = sim.render(rows)
        if frames is None:
            raise SensorError(f"{self.name}: the simulator was made without a camera (image_size=None)")
        return as_channels_first(frames)


SENSORS: dict[str, Sensor] = {}


def register(sensor: Sensor) -> Sensor:
    """Make `sensor` available under its DeepRacer name."""
    if sensor.name in SENSORS:
        raise ValueError(f"sensor {sensor.name!r} is registered twice")
    SENSORS[sensor.name] = sensor
    return sensor


register(FrontFacingCamera())
DEFAULT_SENSORS = ("FRONT_FACING_CAMERA",)


def check_sensor_names(names: object, where: str = "model_metadata.json") -> tuple[str, ...]:
    """The sensor names of a metadata file's "sensor" field, checked: a non-empty list of built sensors."""
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise SensorError(f"{where}: field 'sensor' must be a list of sensor names, e.g. [\"FRONT_FACING_CAMERA\"]")
    names = tuple(names)
    if not names:
        raise SensorError(f"{where}: field 'sensor' is empty; give at least [\"FRONT_FACING_CAMERA\"]")
    for kind, group in (("camera", CAMERA_SENSORS), ("lidar", LIDAR_SENSORS)):
        chosen = [name for name in names if name in group]
        if len(chosen) > 1:
            raise SensorError(
                f"{where}: field 'sensor' names {len(chosen)} {kind} kinds {chosen}; DeepRacer takes one "
                f"{kind} at most (one of {', '.join(group)})"
            )
    for name in names:
        if name in SENSORS:
            continue
        if name in DEEPRACER_SENSOR_NAMES:
            why = _NOT_BUILT.get(name, "")
            raise SensorError(
                f"{where}: sensor {name!r} is not supported yet (built: {', '.join(SENSORS)}){why}; "
                f"it would not be trained as something else"
            )
        raise SensorError(f"{where}: unknown sensor {name!r}; DeepRacer's are {', '.join(DEEPRACER_SENSOR_NAMES)}")
    if len(set(names)) != len(names):
        raise SensorError(f"{where}: field 'sensor' names a sensor twice: {list(names)}")
    return names


def sensors_for(names: Sequence[str]) -> tuple[Sensor, ...]:
    """The registered sensors of these names (checked by `check_sensor_names`)."""
    return tuple(SENSORS[name] for name in check_sensor_names(names))


def observation_space(sensors: Sequence[Sensor], spec: ObservationSpec) -> spaces.Space:
    """The observation space of a car with these sensors: the single sensor's Box."""
    if len(sensors) != 1:
        raise SensorError(f"one sensor per car so far, got {[s.name for s in sensors]}")
    return sensors[0].space(spec)
