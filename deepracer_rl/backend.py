"""The simulator backend interface that `RaceCore` races over, and the registry of backends by name.

A backend is a simulator holding `n_cars` cars on one track (the in-process one: each car on
one of several tracks, for multi-track training): it puts cars at poses, takes
one command per car, advances one control period (1 / control_hz s of sim time) and reports
poses, speeds, sim time and sensor data. It knows nothing of episodes, rewards or judging:
that is `RaceCore`'s, identically for every backend. Poses are (x, y, yaw) of base_link in
the track frame (m, m, rad); steering in degrees (+ = left), speed in m/s.

Built in: "inprocess" (`deepracer_rl.inprocess`, the embedded NumPy simulator) and "ros"
(`deepracer_rl.ros.backend`, any simulator behind the topic contract: the embedded
`sim_node` or Gazebo). They are found by name with importlib, so nothing below the
interfaces imports ROS. Other packages add backends through the entry-point group
`deepracer_rl.backends` (name = "module:Class").
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from .car import CarSpec
from .observation import ObservationSpec
from .sensors import Sensor
from .track import Track

if TYPE_CHECKING:
    from .camera import CarBoxes

BUILTIN_BACKENDS = {
    "inprocess": "deepracer_rl.inprocess:InProcessBackend",
    "ros": "deepracer_rl.ros.backend:RosBackend",
}
ENTRY_POINT_GROUP = "deepracer_rl.backends"


@dataclass
class CarStates:
    """What a backend reports of its cars after a tick: arrays over the N cars."""

    poses: np.ndarray  # (N, 3) x, y, yaw of base_link in the track frame (m, m, rad)
    speeds: np.ndarray  # (N,) m/s along the heading
    sim_time: float  # s of simulation time


class SimulatorBackend(ABC):
    """N cars of one simulator on one track, driven one control tick at a time."""

    track: Track
    car: CarSpec
    n_cars: int
    control_hz: float  # control ticks per second of sim time (the URDF camera rate)
    observation: ObservationSpec  # the size and colour `sensor_data` delivers frames at
    sensors: tuple[Sensor, ...]  # what `sensor_data` delivers (empty: no sensor data, e.g. scripted drivers)
    errors: tuple[type[BaseException], ...] = ()  # what it raises when its simulator is gone
    supports_multiple_tracks: bool = False  # whether `track` may be several tracks, a car on each (in-process)
    supports_objects: bool = False  # whether its sensors show obstacles and bot cars (`show_objects`)
    # the sensors (DeepRacer names) `sensor_data` can deliver; None: every registered one
    sensor_names: tuple[str, ...] | None = None
    # whether its simulator places and moves the objects itself (`object_poses`: sim_node over ROS): the race
    # then judges collisions against those poses instead of its own layouts
    simulates_objects: bool = False

    @property
    def tracks(self) -> tuple[Track, ...]:
        """The tracks cars can be on (one, unless the backend supports several)."""
        return (self.track,)

    def place_on_tracks(self, rows: np.ndarray, indices: np.ndarray) -> None:
        """Move cars `rows` onto `tracks[indices]` before their `reset_cars` (multi-track backends)."""
        if np.any(np.asarray(indices) != 0):
            raise ValueError(f"the {type(self).__name__} backend holds one track; cars cannot change track")

    @abstractmethod
    def reset_cars(self, rows: np.ndarray, poses: np.ndarray, new_episode: bool = True) -> None:
        """Put cars `rows` at `poses` (k, 3), standing still, and wait until their state is there.

        `new_episode` lets a simulator redraw per-episode randomisation; False is a put-back
        within an episode (evaluation's off-track penalty).
        """

    @abstractmethod
    def step(self, steering_deg: np.ndarray, speed: np.ndarray) -> None:
        """Apply one command per car (N,) and advance one control tick; returns when the new state is in."""

    @abstractmethod
    def states(self) -> CarStates:
        """Poses, speeds and sim time after the last tick or reset."""

    @abstractmethod
    def sensor_data(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Per sensor name, the latest frames (k, C, h, w) of cars `rows` at `observation`'s size."""

    def show_objects(self, boxes: CarBoxes | None) -> None:
        """The obstacles and bot cars each car's sensors see from now on (row = car), or none.
        `RaceCore` judges collisions itself; a backend that cannot show objects refuses races with them."""
        if boxes is not None:
            raise ValueError(f"the {type(self).__name__} backend does not show obstacles or bot cars")

    def object_poses(self) -> np.ndarray:
        """(N, K, 3) the objects' poses (x, y, yaw; obstacles first, then bot cars) in each car's world now,
        from a backend that `simulates_objects`."""
        raise NotImplementedError(f"the {type(self).__name__} backend does not simulate objects")

    def reseed(self, seed: int | None) -> None:  # noqa: B027  (optional: backends without randomness)
        """Restart the simulator's own random streams (camera randomisation), where it has any."""

    def close(self) -> None:  # noqa: B027
        """Release the simulator (processes, ROS contexts); safe to call twice."""

    def __enter__(self) -> SimulatorBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def available_backends() -> dict[str, str]:
    """Backend name -> "module:Class": the built-in ones and those of installed entry points."""
    found = dict(BUILTIN_BACKENDS)
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry.value)
    return found


def backend_class(name: str) -> type[SimulatorBackend]:
    """The backend class registered under `name` (imported only now)."""
    backends = available_backends()
    if name not in backends:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(backends)}")
    module_name, _, attr = backends[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"backend {name!r} is not usable here: {exc}") from exc
    return getattr(module, attr)


def check_backend_sensors(name: str, names: tuple[str, ...]) -> None:
    """ValueError naming the sensors of `names` that backend `name` cannot deliver (its `sensor_names`)."""
    cls = backend_class(name)
    other = [] if cls.sensor_names is None else [n for n in names if n not in cls.sensor_names]
    if other:
        raise ValueError(
            f"--backend {name} trains on {', '.join(cls.sensor_names or ())} only; sensor(s) {', '.join(other)} "
            "train with --backend inprocess"
        )


def make_backend(
    name: str,
    track: Track | tuple[Track, ...],
    n_cars: int,
    observation: ObservationSpec,
    sensors: tuple[Sensor, ...],
    seed: int | None = None,
    **options: Any,
) -> SimulatorBackend:
    """A backend by name; `options` are the backend's own (e.g. randomization, timeout). Several
    tracks only for a backend that `supports_multiple_tracks` (else ValueError naming it)."""
    cls = backend_class(name)
    if isinstance(track, tuple):
        if len(track) == 1:
            track = track[0]
        elif not cls.supports_multiple_tracks:
            raise ValueError(
                f"the {name} backend races on one track; multi-track runs ({len(track)} tracks) use --backend inprocess"
            )
    return cls(track=track, n_cars=n_cars, observation=observation, sensors=sensors, seed=seed, **options)
