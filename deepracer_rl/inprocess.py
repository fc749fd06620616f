"""The in-process backend: `RaceCore` over the embedded NumPy simulator, no ROS, no copies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .backend import CarStates, SimulatorBackend
from .camera import CameraPerturbation, CarBoxes, DomainRandomization
from .car import CarSpec
from .observation import ObservationSpec
from .sensors import Sensor
from .sim import Dynamics, Simulator
from .track import Track


class InProcessBackend(SimulatorBackend):
    """N cars of one `Simulator`, stepped together in this process (thousands of steps/s); each car
    may be on another of several tracks (multi-track training)."""

    supports_multiple_tracks = True
    supports_objects = True

    def __init__(
        self,
        track: Track | Sequence[Track],
        n_cars: int,
        observation: ObservationSpec,
        sensors: tuple[Sensor, ...],
        seed: int | None = None,
        car: CarSpec | None = None,
        dynamics: Dynamics | None = None,
        randomization: DomainRandomization | None = None,
        perturbation: CameraPerturbation | None = None,
    ):
        self._tracks = (track,) if isinstance(track, Track) else tuple(track)
        self.track = self._tracks[0]
        self.n_cars = int(n_cars)
        self.observation = observation
        self.sensors = tuple(sensors)
        self._sim_kwargs = dict(
            n_cars=self.n_cars,
            dynamics=dynamics,
            image_size=(observation.width, observation.height) if self.sensors else None,
            grayscale=observation.grayscale,
            randomization=randomization,
            perturbation=perturbation,
        )
        self.sim = Simulator(self._tracks, car=car, seed=seed, **self._sim_kwargs)
        self.car = self.sim.car
        self.control_hz = self.sim.control_hz

    @property
    def dynamics(self) -> Dynamics:
        return self.sim.dynamics

    @property
    def tracks(self) -> tuple[Track, ...]:
        return self._tracks

    def place_on_tracks(self, rows: np.ndarray, indices: np.ndarray) -> None:
        self.sim.car_track[np.asarray(rows, dtype=np.intp)] = np.asarray(indices, dtype=np.intp)

    def reseed(self, seed: int | None) -> None:
        """A fresh simulator whose camera randomisation streams start from `seed` (cars stay on their tracks)."""
        car_track, objects = self.sim.car_track.copy(), self.sim.objects
        self.sim = Simulator(self._tracks, car=self.car, seed=seed, **self._sim_kwargs)
        self.sim.car_track[:] = car_track
        self.sim.objects = objects

    def show_objects(self, boxes: CarBoxes | None) -> None:
        self.sim.objects = boxes

    def reset_cars(self, rows: np.ndarray, poses: np.ndarray, new_episode: bool = True) -> None:
        for i, pose in zip(np.asarray(rows, dtype=np.intp).reshape(-1), np.asarray(poses).reshape(-1, 3)):
            self.sim.place_car(int(i), pose, new_episode=new_episode)

    def step(self, steering_deg: np.ndarray, speed: np.ndarray) -> None:
        self.sim.step(steering_deg, speed)

    def states(self) -> CarStates:
        s = self.sim.state
        return CarStates(poses=s.pose, speeds=s.speed, sim_time=self.sim.sim_time)

    def sensor_data(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        return {sensor.name: sensor.draw(self.sim, rows) for sensor in self.sensors}
