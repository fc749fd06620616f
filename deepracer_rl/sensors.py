"""The car's sensors, keyed by DeepRacer's names in `model_metadata.json` ("sensor": [...]).

A `Sensor` says what it gives the policy: its observation space at an `ObservationSpec`, the
name of its network/ONNX input, and how the in-process simulator draws it. Everything else
is derived from the registry: the env's observation space, the network's and the export's
inputs, and (in `ros/contract.py`, keyed by the same names) the topics `sim_node` publishes
and the inference node subscribes to. Adding a sensor means one module that defines it and
calls `register`, plus its topic entry in the contract.

DeepRacer's names, all built: FRONT_FACING_CAMERA, STEREO_CAMERAS (left and right grey frames
stacked as 2 channels, `sim.STEREO_BASELINE` apart), LIDAR, SECTOR_LIDAR and
DISCRETIZED_SECTOR_LIDAR (`lidar.py`; the last takes the metadata's `lidar_config`). A car has one
camera and at most one lidar (DeepRacer's rules); one sensor gives a Box observation (the single
camera's is unchanged), several a Dict keyed by their input names (`observation_space`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces

from .lidar import LIDAR_CLIP, LidarConfig, LidarConfigError, observation_shape, observe
from .observation import ObservationSpec, as_channels_first, observation_from_image

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


class SensorError(ValueError):
    """A sensor name that is unknown, not built yet, or not given as a list of names."""


class Sensor(ABC):
    """One sensor of the car: its DeepRacer name, its policy input and how the simulator draws it."""

    name: str  # DeepRacer's name, as in model_metadata.json
    input_name: str  # the network's / exported ONNX model's input
    is_camera: bool = True

    @abstractmethod
    def space(self, spec: ObservationSpec) -> spaces.Box:
        """The observation space of this sensor's input (one car, `spec.frame_stack` frames stacked on axis 0)."""

    @abstractmethod
    def draw(self, sim: Simulator, rows: np.ndarray) -> np.ndarray:
        """This sensor's frames (k, *space.shape minus stacking) for cars `rows` of the in-process simulator."""

    @abstractmethod
    def frame(self, data: object, spec: ObservationSpec) -> np.ndarray:
        """One frame of this sensor from its topic's data (an image, the stereo pair (left, right), a
        scan's ranges in m): the preprocessing the inference node and the ROS backend share."""


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

    def frame(self, data: object, spec: ObservationSpec) -> np.ndarray:
        return observation_from_image(np.asarray(data), spec)


class StereoCameras(Sensor):
    """The DeepRacer Evo's two front cameras, `sim.STEREO_BASELINE` apart: left and right grey frames
    as 2 channels (2 per stacked frame), uint8 (DeepRacer's STEREO_CAMERAS input)."""

    name = "STEREO_CAMERAS"
    input_name = "STEREO_CAMERAS"

    def space(self, spec: ObservationSpec) -> spaces.Box:
        if not spec.grayscale:
            raise SensorError(
                f"{self.name}: the stereo pair is grey (DeepRacer stacks the left and right grey frames); "
                "train it without RGB frames"
            )
        return spaces.Box(0, 255, shape=(2 * spec.frame_stack, spec.height, spec.width), dtype=np.uint8)

    def draw(self, sim: Simulator, rows: np.ndarray) -> np.ndarray:
        frames = sim.render_stereo(rows)
        if frames is None:
            raise SensorError(f"{self.name}: the simulator was made without a camera (image_size=None)")
        if frames.ndim != 4:
            raise SensorError(f"{self.name}: the simulator renders RGB; the stereo pair is grey")
        return frames

    def frame(self, data: object, spec: ObservationSpec) -> np.ndarray:
        left, right = data  # type: ignore[misc]
        single = ObservationSpec(spec.width, spec.height, True, 1)
        return np.concatenate(
            [observation_from_image(np.asarray(left), single), observation_from_image(np.asarray(right), single)]
        )


class LidarSensor(Sensor):
    """One of DeepRacer's lidar observations (LIDAR, SECTOR_LIDAR, DISCRETIZED_SECTOR_LIDAR) of the
    64-beam scan (`lidar.py`), float32; stacked frames are concatenated."""

    is_camera = False

    def __init__(self, name: str, config: LidarConfig | None = None):
        self.name = self.input_name = name
        self.config = config if config is not None else LidarConfig()

    def space(self, spec: ObservationSpec) -> spaces.Box:
        (size,) = observation_shape(self.name, self.config)
        high = LIDAR_CLIP[1] if self.name == "LIDAR" else 1.0
        low = LIDAR_CLIP[0] if self.name == "LIDAR" else 0.0
        return spaces.Box(low, high, shape=(size * spec.frame_stack,), dtype=np.float32)

    def reach(self) -> float:
        """How far the in-process scan is cast (m): as far as this observation can see."""
        from .lidar import Lidar

        return Lidar.reach(self.name, self.config)

    def draw(self, sim: Simulator, rows: np.ndarray) -> np.ndarray:
        return observe(self.name, sim.scan(rows, self.reach()), self.config)

    def frame(self, data: object, spec: ObservationSpec) -> np.ndarray:
        ranges = np.asarray(data, dtype=np.float64).reshape(1, -1)
        if ranges.shape[1] != 64:
            raise ValueError(f"{self.name}: a scan of {ranges.shape[1]} ranges, expected 64")
        return observe(self.name, ranges, self.config)[0]


SENSORS: dict[str, Sensor] = {}


def register(sensor: Sensor) -> Sensor:
    """Make `sensor` available under its DeepRacer name."""
    if sensor.name in SENSORS:
        raise ValueError(f"sensor {sensor.name!r} is registered twice")
    SENSORS[sensor.name] = sensor
    return sensor


register(FrontFacingCamera())
register(StereoCameras())
for _name in LIDAR_SENSORS:
    register(LidarSensor(_name))
DEFAULT_SENSORS = ("FRONT_FACING_CAMERA",)


def check_sensor_names(names: object, where: str = "model_metadata.json") -> tuple[str, ...]:
    """The sensor names of a metadata file's "sensor" field, checked: a non-empty list of built sensors,
    one camera kind and at most one lidar kind (DeepRacer's models always have a camera)."""
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise SensorError(f"{where}: field 'sensor' must be a list of sensor names, e.g. [\"FRONT_FACING_CAMERA\"]")
    names = tuple(names)
    if not names:
        raise SensorError(f"{where}: field 'sensor' is empty; give at least [\"FRONT_FACING_CAMERA\"]")
    for name in names:
        if name not in SENSORS:
            raise SensorError(
                f"{where}: field 'sensor': unknown sensor {name!r}; DeepRacer's are {', '.join(DEEPRACER_SENSOR_NAMES)}"
            )
    if len(set(names)) != len(names):
        raise SensorError(f"{where}: field 'sensor' names a sensor twice: {list(names)}")
    for kind, group in (("camera", CAMERA_SENSORS), ("lidar", LIDAR_SENSORS)):
        chosen = [name for name in names if name in group]
        if len(chosen) > 1:
            raise SensorError(
                f"{where}: field 'sensor' names {len(chosen)} {kind} kinds {chosen}; DeepRacer takes one "
                f"{kind} at most (one of {', '.join(group)})"
            )
    if not any(name in CAMERA_SENSORS for name in names):
        raise SensorError(
            f"{where}: field 'sensor' {list(names)} has no camera; DeepRacer's models see through a camera "
            f"(add one of {', '.join(CAMERA_SENSORS)}; a lidar only comes with one)"
        )
    return names


def sensors_for(
    names: Sequence[str], lidar_config: Mapping[str, object] | None = None, where: str = "model_metadata.json"
) -> tuple[Sensor, ...]:
    """The registered sensors of these names (checked by `check_sensor_names`), cameras first;
    DISCRETIZED_SECTOR_LIDAR configured by the metadata's `lidar_config` (errors name `where` and the field)."""
    names = check_sensor_names(names, where)
    try:
        config = LidarConfig.from_metadata({"lidar_config": lidar_config or {}})
    except (LidarConfigError, TypeError) as exc:
        raise SensorError(f"{where}: field {exc}" if isinstance(exc, LidarConfigError) else f"{where}: {exc}") from None
    chosen = []
    for name in sorted(names, key=lambda n: n not in CAMERA_SENSORS):
        sensor = SENSORS[name]
        if name == "DISCRETIZED_SECTOR_LIDAR" and config != LidarConfig():
            sensor = LidarSensor(name, config)
        chosen.append(sensor)
    return tuple(chosen)


def metadata_sensors(actions: object, where: str = "model_metadata.json") -> tuple[Sensor, ...]:
    """The sensors of an `ActionSpace` (its "sensor" and "lidar_config" fields)."""
    return sensors_for(actions.sensor, actions.lidar_config, where)  # type: ignore[attr-defined]


def observation_space(sensors: Sequence[Sensor], spec: ObservationSpec) -> spaces.Space:
    """The observation space of a car with these sensors: the single sensor's Box, or a Dict keyed by
    the sensors' input names (gymnasium orders the keys by name; the ONNX inputs follow `sensors`)."""
    if not sensors:
        raise SensorError("a car without sensors has no observation")
    if len(sensors) == 1:
        return sensors[0].space(spec)
    return spaces.Dict({sensor.input_name: sensor.space(spec) for sensor in sensors})
