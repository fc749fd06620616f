"""sim_node: the embedded simulator behind the topic contract; no Gazebo needed.

With `cars:=N` (N > 1) it simulates N cars on one track, each with the whole contract under
its namespace (`contract.car_namespace`: /car0/camera/image_raw, /car0/odom, /car0/cmd_vel,
...; /clock is shared), so `RosBackend` can drive N cars as the in-process backend does.

Publishes `/camera/image_raw` (sensor_msgs/Image, rgb8 640x480 by default, mono8 option),
`/camera/camera_info` (the URDF camera), `/odom` (nav_msgs/Odometry, frame odom, child
base_link: pose and twist, with the covariances of `sim.OdometryUncertainty`: the simulator
has no odometry noise model, so a small stated floor), `/clock` (sim time) and, when tf2_msgs
is importable (tools/build_interfaces.py builds it into the venv), `/tf` odom -> base_link.
Subscribes `/cmd_vel` (geometry_msgs/Twist: linear.x m/s, angular.z =
v * tan(steer) / wheelbase) and `/initialpose` (PoseWithCovarianceStamped: teleport the
car there, standing still; a new episode for domain randomisation).

* Real time (default): a 15 Hz steady-clock tick steps the simulator with the newest
  command; with no command for `stale_command_timeout` seconds the car is told to stop.
* `lockstep:=true`: exactly one control period (1/15 s of sim time) per /cmd_vel message,
  then the image and odometry of the new state, stamped with sim time. With N cars, one
  period once every car has sent a command since the last period.

`sensors:=STEREO_CAMERAS,LIDAR` (DeepRacer's names; the front camera is always published) adds
the stereo pair (`/stereo/left/image_raw`, `/stereo/right/image_raw`: sensor_msgs/Image in the
node's encoding and size, the URDF camera moved `sim.STEREO_BASELINE` / 2 left and right, the same
stamp) and the lidar's `/scan` (sensor_msgs/LaserScan, frame `laser`, 64 ranges over
-2.61799..2.61799 rad, 0.15-12 m, inf for no hit: `lidar.Lidar`) for any lidar kind; all of
a tick's messages carry the same stamp (the inference node pairs them by it).

Races with objects (docs/races.md): `race_type:=object_avoidance` (or head_to_bot), `world_config:=FILE`
(YAML/JSON with DeepRacer's keys, as `train --world-config`) and one parameter per world-config key in
lower case (`number_of_obstacles`, `randomize_obstacle_locations`, `object_positions` (a string array of
"progress,lane"), `number_of_bot_cars`, `bot_car_speed`, `is_lane_change`, ...: they override the file;
`world_objects.race_objects_from`, as the CLI). Each car has its own world (`world_objects.ObjectWorld`,
seeded by `seed`), drawn afresh when the car is teleported (/initialpose: a new episode) and stepped with
the car: the cameras draw the objects, `/scan` sees them, and their poses (obstacles first, then bot cars;
centre of the footprint, yaw about z) are published each tick on `/objects` (geometry_msgs/PoseArray,
frame odom, the tick's stamp, right after the odometry). Collisions are judged by the client: `RaceCore`
over the ROS backend reads /objects (`RosBackend.object_poses`) and judges `crashed` as in-process.

A reset takes one control period of sim time too, so the image and odometry at the new pose
carry a stamp newer than anything before the request (clients wait for that).

    ros2 run deepracer_rl sim_node --ros-args -p track:=reinvent_base -p lockstep:=true
    deepracer-rl sim --track reinvent_base --lockstep --size 160x120 --encoding mono8
    deepracer-rl sim --race-type object_avoidance --number-of-obstacles 3 --sensors STEREO_CAMERAS,LIDAR
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseArray, PoseWithCovarianceStamped, Twist
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, LaserScan

from ..camera import STANDARD_RANDOMIZATION, CarBoxes
from ..car import CarSpec
from ..episode import StartRules, start_pose
from ..lidar import MAX_ANGLE, MAX_RANGE, MIN_ANGLE, MIN_RANGE, SAMPLES
from ..sim import Simulator
from ..track import TrackError
from ..world_objects import RACE_TYPES, ObjectWorld, RaceObjects, clear_start, race_objects_from
from . import contract
from .cdr import OdometryEncoder, decode_twist
from .image import array_to_image

try:  # not installable in the PyPI venv; a ROS install has it
    from geometry_msgs.msg import TransformStamped
    from tf2_msgs.msg import TFMessage
except ImportError:
    TFMessage = None

NODE_NAME = "sim_node"
ENCODINGS = ("rgb8", "mono8")
# Domain randomisation of `randomize:=true` (per frame and per episode, see DomainRandomization).
RANDOMIZATION = STANDARD_RANDOMIZATION
MAX_CARS = 16
# The world-config parameters: one per DeepRacer key (lower case) but the penalties, which are the client's.
RACE_PARAMETERS = tuple(
    f.name for f in dataclasses.fields(RaceObjects) if f.name not in ("penalty_seconds", "collision_penalty")
)
MAX_OFF_TRACK = 1.0  # m beyond the road's edge (half the track width from the centre line) an /initialpose may be


class SimNode(Node):
    """Simulated DeepRacers publishing the topic contract (one namespace per car), in real time or in lockstep."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)  # node_kwargs: e.g. parameter_overrides, context
        car = CarSpec.from_urdf()
        camera = car.camera

        def declare(name: str, default: Any, description: str) -> Any:
            return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

        track = declare("track", "reinvent_base", "track name or path of a .npy route")
        width = declare("image_width", camera.width, "camera image width, pixels (intrinsics scale with it)")
        height = declare("image_height", camera.height, "camera image height, pixels")
        self.encoding = declare("encoding", "rgb8", "image encoding: rgb8 or mono8")
        self.lockstep = declare(
            "lockstep", False, "one control period per /cmd_vel (else real time at the camera rate)"
        )
        seed = declare("seed", 0, "random seed of start noise and domain randomisation (-1: draw one)")
        randomize = declare(
            "randomize", False, "domain randomisation of the camera images (lighting, noise, blur, floor)"
        )
        self.stale_timeout = declare(
            "stale_command_timeout", 0.5, "real time: seconds after the last /cmd_vel before the car is stopped"
        )
        n_cars = declare(
            "cars", 1, f"cars on the track (1..{MAX_CARS}); with more than one, car i's topics are under /car<i>"
        )
        sensors = declare(
            "sensors", "", "extra DeepRacer sensors, comma-separated: STEREO_CAMERAS, LIDAR (any lidar kind)"
        )
        self.sensor_names = [name.strip() for name in str(sensors).split(",") if name.strip()]
        unknown = [name for name in self.sensor_names if name not in contract.SENSOR_TOPICS]
        if unknown:
            raise ValueError(
                f"parameter 'sensors': unknown sensor {unknown[0]!r}; one of {', '.join(contract.SENSOR_TOPICS)}"
            )
        self.stereo = "STEREO_CAMERAS" in self.sensor_names
        self.lidar = any(name in contract.SENSOR_TOPICS and "LIDAR" in name for name in self.sensor_names)
        if self.encoding not in ENCODINGS:
            raise ValueError(f"parameter 'encoding' must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        if not self.stale_timeout > 0:
            raise ValueError(f"stale_command_timeout must be positive, got {self.stale_timeout}")
        if not 1 <= n_cars <= MAX_CARS:
            raise ValueError(f"parameter 'cars' must be within 1..{MAX_CARS}, got {n_cars}")

        race = self._race_objects(declare)

        self.sim = Simulator(
            track,
            n_cars=n_cars,
            car=car,
            image_size=(width, height),
            grayscale=self.encoding == "mono8",
            randomization=RANDOMIZATION if randomize else None,
            seed=None if seed < 0 else seed,
        )
        self.n = n_cars
        for i in range(n_cars):  # spread round the track, as the in-process cars start
            pose, _ = start_pose(self.sim.track, StartRules(), 0, i, n_cars)
            self.sim.place_car(i, pose)
        self.world: ObjectWorld | None = None
        if race is not None and race.count:
            self.world = ObjectWorld(race, self.sim.track, n_cars, seed=None if seed < 0 else seed)
            self.world.reset(np.arange(n_cars), keep_clear=self._arcs(self.sim.state.pose))
            state = self.world.state()
            for i in range(n_cars):  # a start on an object of a fixed layout moves back (as the race's starts)
                pose = self.sim.state.pose[i].copy()
                self.sim.place_car(i, clear_start(self.sim.track, pose, state.take(np.array([i])), car))
            self._show_objects()
        self.wheelbase = self.sim.car.wheelbase
        self.period_ns = 1e9 / self.sim.control_hz
        self.ticks = 0  # control periods of sim time so far
        self.namespaces = [contract.car_namespace(i, n_cars) for i in range(n_cars)]

        sensor, command = contract.sensor_qos(), contract.command_qos()
        self.clock_pub = self.create_publisher(Clock, contract.CLOCK, contract.clock_qos())
        self.tf_pub = self.create_publisher(TFMessage, contract.TF, 10) if TFMessage is not None else None
        self.image_pubs, self.info_pubs, self.odom_pubs = [], [], []
        self.stereo_pubs: list[tuple[Any, Any]] = []
        self.scan_pubs: list[Any] = []
        self.objects_pubs: list[Any] = []
        self._handlers = {}
        for i, ns in enumerate(self.namespaces):
            topic = functools.partial(contract.car_topic, ns)
            (camera_topic,) = (topic(t) for t in contract.SENSOR_TOPICS["FRONT_FACING_CAMERA"])
            self.image_pubs.append(self.create_publisher(Image, camera_topic, sensor))
            if self.stereo:
                left, right = contract.SENSOR_TOPICS["STEREO_CAMERAS"]
                self.stereo_pubs.append(
                    (
                        self.create_publisher(Image, topic(left), sensor),
                        self.create_publisher(Image, topic(right), sensor),
                    )
                )
            if self.lidar:
                self.scan_pubs.append(self.create_publisher(LaserScan, topic(contract.SCAN), sensor))
            self.info_pubs.append(self.create_publisher(CameraInfo, topic(contract.CAMERA_INFO), sensor))
            self.odom_pubs.append(self.create_publisher(Odometry, topic(contract.ODOM), sensor))
            if self.world is not None:
                self.objects_pubs.append(self.create_publisher(PoseArray, topic(contract.OBJECTS), sensor))
            # /cmd_vel is taken serialized and decoded by cdr.decode_twist; /odom is published serialized.
            cmd_sub = self.create_subscription(
                Twist, topic(contract.CMD_VEL), functools.partial(self._on_cmd_vel, i), command, raw=True
            )
            pose_sub = self.create_subscription(
                PoseWithCovarianceStamped,
                topic(contract.INITIALPOSE),
                functools.partial(self._on_initialpose, i),
                command,
            )
            self._handlers[cmd_sub] = functools.partial(self._on_cmd_vel, i)
            self._handlers[pose_sub] = functools.partial(self._on_initialpose, i)
        self._waiter = contract.MessageWaiter(self.context, list(self._handlers))
        # Parameter services and the like: served by an executor between steps.
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self)
        self._housekeeping_at = 0.0

        self.camera_info = self._camera_info(camera, width, height)
        self.odoms = [
            OdometryEncoder(contract.ODOM_FRAME, contract.car_frame(ns, contract.BASE_FRAME)) for ns in self.namespaces
        ]
        self.camera_frames = [contract.car_frame(ns, contract.CAMERA_FRAME) for ns in self.namespaces]
        self.image = Image()  # reused: only stamp and data change
        self.scan = LaserScan()
        self.scan.angle_min, self.scan.angle_max = MIN_ANGLE, MAX_ANGLE
        self.scan.angle_increment = (MAX_ANGLE - MIN_ANGLE) / (SAMPLES - 1)
        self.scan.scan_time = 1.0 / self.sim.control_hz
        self.scan.range_min, self.scan.range_max = MIN_RANGE, MAX_RANGE
        self.commands = np.zeros((n_cars, 2))  # steer (rad), speed (m/s) held per car
        self.command_times: list[float | None] = [None] * n_cars
        self.pending = np.zeros(n_cars, dtype=bool)  # lockstep: a command arrived since the last period
        self.next_tick = time.monotonic()
        self._last_error_log: dict[str, float] = {}  # kind of error -> when it was last logged
        self.publish_state(range(n_cars))
        self.get_logger().info(
            f"{self.sim.track.name}: {width}x{height} {self.encoding}, "
            f"{'lockstep (one period per /cmd_vel)' if self.lockstep else f'real time at {self.sim.control_hz:g} Hz'}"
            f"{f', {n_cars} cars under {self.namespaces[0]}..{self.namespaces[-1]}' if n_cars > 1 else ''}"
            f"{', domain randomisation' if randomize else ''}"
            f"{f', sensors {self.sensor_names}' if self.sensor_names else ''}"
            f"{f', {self._objects_text()}' if self.world is not None else ''}"
            f"{'' if self.tf_pub else '; no /tf (tf2_msgs is not importable)'}"
        )

    def _race_objects(self, declare) -> RaceObjects | None:
        """The race's objects from `race_type`, `world_config` and the per-key parameters (unset ones
        leave the file's or the race type's values); None for none. Errors name the parameter."""
        race_type = declare("race_type", "", "time_trial, object_avoidance or head_to_bot ('' = from the keys)")
        path = declare(
            "world_config", "", "a YAML/JSON world config with DeepRacer's keys (NUMBER_OF_OBSTACLES: 3, ...)"
        )
        options: dict[str, object] = {}
        for name in RACE_PARAMETERS:
            value = self.declare_parameter(
                name,
                None,
                ParameterDescriptor(
                    description=f"DeepRacer's {RaceObjects.key(name)} (overrides world_config); unset: its default",
                    dynamic_typing=True,
                ),
            ).value
            if value is not None:
                options[RaceObjects.key(name)] = list(value) if isinstance(value, list | tuple) else value
        if path and not Path(path).is_file():
            raise ValueError(f"parameter 'world_config': no such file {path!r}")
        if race_type and race_type not in RACE_TYPES:
            raise ValueError(f"parameter 'race_type' must be one of {', '.join(RACE_TYPES)}, got {race_type!r}")
        return race_objects_from(
            race_type or None,
            path or None,
            options,
            label=lambda key: f"parameter {key.lower()!r}",
            options_name="the race parameters",
        )

    def _arcs(self, poses: np.ndarray) -> np.ndarray:
        """Centre-line arc (m) of each pose: where a new layout keeps clear for the car's start."""
        return self.sim.track.project(np.asarray(poses, dtype=np.float64).reshape(-1, 3)[:, :2]).arc_length

    def _show_objects(self) -> None:
        """Hand every car's objects to the cameras and the lidar (`Simulator.objects`)."""
        assert self.world is not None
        state = self.world.state()
        self.sim.objects = CarBoxes(state.box_params(), state.colours)

    def _objects_text(self) -> str:
        assert self.world is not None
        cfg = self.world.config
        parts = []
        if cfg.obstacle_count:
            how = (
                "at OBJECT_POSITIONS"
                if cfg.object_positions
                else ("random" if cfg.randomize_obstacle_locations else "fixed")
            )
            parts.append(f"{cfg.obstacle_count} {how} {cfg.obstacle_type}")
        if cfg.number_of_bot_cars:
            change = ", changing lanes" if cfg.is_lane_change else ""
            parts.append(f"{cfg.number_of_bot_cars} bot cars at {cfg.bot_car_speed:g} m/s{change}")
        return f"objects on {contract.OBJECTS}: " + " and ".join(parts)

    @staticmethod
    def _camera_info(camera, width: int, height: int) -> CameraInfo:
        fx, fy, cx, cy = camera.intrinsics(width, height)
        info = CameraInfo()
        info.header.frame_id = contract.CAMERA_FRAME
        info.width, info.height = width, height
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    # -- simulation ------------------------------------------------------------------------
    @property
    def stamp_ns(self) -> int:
        return round(self.ticks * self.period_ns)

    def step(self, steer: np.ndarray, speed: np.ndarray) -> None:
        """Advance one control period under (steer rad, speed m/s) per car and publish every car's new state.

        Commands beyond the car's limits are clamped to them, with a log line saying so.
        """
        clamped = self.sim.advance(
            np.asarray(steer, dtype=np.float64), np.asarray(speed, dtype=np.float64), np.ones(self.n, bool)
        )
        if clamped:
            self._error(
                kind="clamp",
                text=f"clamped {clamped} command(s) to the car's limits: steering within "
                f"±{math.degrees(self.sim.car.max_steer):.0f} deg, speed within ±{self.sim.dynamics.max_speed:g} m/s",
            )
        self.ticks += 1
        self.sim.sim_time = self.ticks / self.sim.control_hz
        if self.world is not None:
            self.world.step(1.0 / self.sim.control_hz)
            self._show_objects()
        self.publish_state(range(self.n))

    def teleport(self, i: int, x: float, y: float, yaw: float) -> None:
        """Start car i's new episode at (x, y, yaw), standing still; takes one control period."""
        self.sim.place_car(i, np.array([x, y, yaw]))
        if self.world is not None:  # a new episode: a new layout in the car's world, clear of its start
            self.world.reset([i], keep_clear=self._arcs(np.array([x, y, yaw])))
            self._show_objects()
        self.commands[i] = 0.0
        self.command_times[i] = None
        self.ticks += 1
        self.sim.sim_time = self.ticks / self.sim.control_hz
        self.publish_state([i])

    def publish_state(self, cars: Iterable[int]) -> None:
        """/clock, every car's /odom (and /tf) and /objects, then the cameras: odometry first, so a client
        can judge the new poses while the images are rendered.

        /clock, /camera/camera_info and /tf are published only while something subscribes to
        them (a publish costs tens of microseconds, a lockstep step about a millisecond).
        """
        stamp = contract.time_msg(self.stamp_ns)
        if self.clock_pub.get_subscription_count():
            self.clock_pub.publish(Clock(clock=stamp))
        cars = list(cars)
        s = self.sim.state
        for i in cars:
            x, y, yaw = (float(v) for v in s.pose[i])
            _, _, qz, qw = contract.quaternion_from_yaw(yaw)
            self.odom_pubs[i].publish(
                self.odoms[i].encode(self.stamp_ns, x, y, qz, qw, float(s.speed[i]), float(s.yaw_rate[i]))
            )
            if self.tf_pub is not None and self.tf_pub.get_subscription_count():
                tf = TransformStamped()
                tf.header.stamp, tf.header.frame_id = stamp, contract.ODOM_FRAME
                tf.child_frame_id = contract.car_frame(self.namespaces[i], contract.BASE_FRAME)
                tf.transform.translation.x, tf.transform.translation.y = x, y
                tf.transform.rotation.z, tf.transform.rotation.w = qz, qw
                self.tf_pub.publish(TFMessage(transforms=[tf]))
        # the objects with the odometry (a client judging collisions waits for both), before the cameras
        if self.world is not None:
            state = self.world.state()
            for i in cars:
                self.objects_pubs[i].publish(contract.objects_message(state.poses[i], state.z, stamp))
        frames = self.sim.render(np.array(cars, dtype=np.intp))
        for frame, i in zip(frames, cars):
            self.image_pubs[i].publish(
                array_to_image(frame, self.encoding, stamp=stamp, frame_id=self.camera_frames[i], msg=self.image)
            )
            if self.info_pubs[i].get_subscription_count():
                self.camera_info.header.stamp = stamp
                self.camera_info.header.frame_id = self.camera_frames[i]
                self.info_pubs[i].publish(self.camera_info)
        if self.stereo:
            pairs = self.sim.render_stereo(np.array(cars, dtype=np.intp))
            for pair, i in zip(pairs, cars):
                for frame, pub, frame_id in zip(pair, self.stereo_pubs[i], contract.STEREO_FRAMES):
                    frame_id = contract.car_frame(self.namespaces[i], frame_id)
                    pub.publish(
                        array_to_image(np.ascontiguousarray(frame), self.encoding, stamp=stamp, frame_id=frame_id)
                    )
        if self.lidar:
            ranges = self.sim.scan(np.array(cars, dtype=np.intp))
            for scan, i in zip(ranges, cars):
                self.scan.header.stamp = stamp
                self.scan.header.frame_id = contract.car_frame(self.namespaces[i], contract.LASER_FRAME)
                self.scan.ranges = scan.astype(np.float32).tolist()
                self.scan_pubs[i].publish(self.scan)

    # -- inputs ----------------------------------------------------------------------------
    def _on_cmd_vel(self, i: int, raw: bytes) -> None:
        topic = contract.car_topic(self.namespaces[i], contract.CMD_VEL)
        try:
            v, w = decode_twist(raw)
        except ValueError as exc:
            self._error(f"ignoring an undecodable {topic}: {exc}", "cmd_vel")
            return
        if not (math.isfinite(v) and math.isfinite(w)):
            self._error(f"ignoring a non-finite {topic} (linear.x {v}, angular.z {w})", "cmd_vel")
            return
        self.commands[i] = (contract.steer_from_twist(v, w, self.wheelbase), v)
        if self.lockstep:
            self.pending[i] = True
            if self.pending.all():
                self.pending[:] = False
                self.step(self.commands[:, 0], self.commands[:, 1])
        else:
            self.command_times[i] = time.monotonic()

    def _on_initialpose(self, i: int, msg: PoseWithCovarianceStamped) -> None:
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        yaw = contract.yaw_from_quaternion(q.x, q.y, q.z, q.w)
        topic = contract.car_topic(self.namespaces[i], contract.INITIALPOSE)
        if not all(math.isfinite(v) for v in (p.x, p.y, yaw)):
            self._error(f"ignoring a non-finite {topic} (x {p.x}, y {p.y}, yaw {yaw})", "initialpose")
            return
        frame = msg.header.frame_id
        if frame not in ("", contract.ODOM_FRAME):
            self._error(
                f"ignoring {topic} in frame {frame!r}: poses are taken in {contract.ODOM_FRAME!r} (the track frame)",
                "initialpose_frame",
            )
            return
        off = float(self.sim.track.project(np.array([[p.x, p.y]])).distance[0]) - self.sim.track.width / 2
        if off > MAX_OFF_TRACK:
            self._error(
                f"ignoring {topic} at x {p.x:.2f}, y {p.y:.2f}: {off:.2f} m beyond the road's edge "
                f"(at most {MAX_OFF_TRACK:g} m is accepted)",
                "initialpose_off_track",
            )
            return
        self.pending[i] = False
        self.teleport(i, p.x, p.y, yaw)

    def _tick(self) -> None:
        """Real time: one period with the held commands (a stop for a car whose command is stale)."""
        now = time.monotonic()
        stale = np.array([t is None or now - t > self.stale_timeout for t in self.command_times])
        commands = np.where(stale[:, None], 0.0, self.commands)
        self.step(commands[:, 0], commands[:, 1])

    def _error(self, text: str, kind: str = "") -> None:
        """Log an error, at most one line a second of each kind (a flood of bad input stays readable)."""
        now = time.monotonic()
        if now - self._last_error_log.get(kind, -math.inf) >= 1.0:
            self.get_logger().error(text)
            self._last_error_log[kind] = now

    # -- the loop --------------------------------------------------------------------------
    def spin_once(self, timeout_sec: float = 0.1) -> None:
        """Handle the commands that arrive within `timeout_sec` (and the real-time tick when due).

        Commands are waited for on their own wait set (`contract.MessageWaiter`); the
        executor serves the rest of the node (parameter services) when idle or every 0.2 s.
        """
        now = time.monotonic()
        if not self.lockstep:
            timeout_sec = max(0.0, min(timeout_sec, self.next_tick - now))
        busy = self._waiter.poll(timeout_sec, self._handlers)
        now = time.monotonic()
        if not self.lockstep and now >= self.next_tick:
            self._tick()
            self.next_tick += 1.0 / self.sim.control_hz
            if self.next_tick < now:  # fell behind (e.g. suspended): do not catch up in a burst
                self.next_tick = now + 1.0 / self.sim.control_hz
        if not busy or now >= self._housekeeping_at:
            self._executor.spin_once(timeout_sec=0)
            self._housekeeping_at = now + 0.2

    def destroy_node(self) -> None:
        self._executor.remove_node(self)
        self._waiter.destroy()
        super().destroy_node()


def run(args: list[str] | None = None, overrides: dict | None = None, parent_pid: int | None = None) -> int:
    """Run the node until Ctrl-C or SIGTERM; `overrides` set parameters (name -> value). Returns the exit code.

    `parent_pid`: also stop once this process is no longer our parent (it ended, even by SIGKILL, and
    we were handed to init or a subreaper): a Ray worker's simulator never outlives its worker.
    """
    if parent_pid is not None and os.getppid() != parent_pid:
        print(f"{NODE_NAME}: error: the parent process {parent_pid} is gone", file=sys.stderr)
        return 2
    contract.use_sim_node_fastdds_profile()
    stop_requested = contract.init_node_process(args)
    node = None
    code = 0
    try:
        params = [Parameter(k, value=v) for k, v in (overrides or {}).items()]
        node = SimNode(parameter_overrides=params)
        while rclpy.ok() and not stop_requested.is_set():
            node.spin_once(0.1)
            if parent_pid is not None and os.getppid() != parent_pid:  # one syscall, ~0.3 us
                node.get_logger().info(f"the parent process {parent_pid} ended: stopping")
                break
    except (ValueError, TrackError, FileNotFoundError) as exc:
        print(f"{NODE_NAME}: error: {exc}", file=sys.stderr)
        code = 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if node is not None:
            node.get_logger().info("stopped")
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code


def main(args: list[str] | None = None) -> None:
    code = run(args)
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
