"""RosBackend: the simulator backend over the topic contract, whatever simulator is behind it.

Per car it publishes `/cmd_vel` and `/initialpose` and reads `/camera/image_raw` and `/odom`
(`contract.py`), under the car's namespace when the simulator has several cars
(`contract.car_namespace`: `/car0`, `/car1`, ... as `sim_node cars:=N` publishes them).
`RaceCore` does the judging, params and rewards from the odometry poses exactly as over the
in-process simulator; camera messages become observation frames with the inference node's
preprocessing (`observation.observation_from_image`).

Timing: a step publishes every car's command, then waits for each car's odometry and image
stamped later than anything seen of that car before the command (stamps are sim time); a
reset waits for odometry at the requested pose and an image of the same period. Nothing
answering within `timeout` seconds raises `SimulatorTimeout` naming the silent topics;
malformed images are rejected (logged, counted in `rejected`) and waited past. The first
reset (and the first after a timeout) waits up to `connect_timeout` for the simulator's
endpoints and its answer: Gazebo's bridge is up well before the world has loaded.

The backend owns its rclpy context and node and needs no executor or thread: it waits on
its subscriptions with one wait set (`contract.MessageWaiter`), in slices of at most 0.1 s
so Ctrl-C stays responsive. `close()` destroys the node and shuts the context down.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import rclpy
from geometry_msgs.msg import PoseArray, PoseWithCovarianceStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image

from ..backend import CarStates, SimulatorBackend, check_backend_sensors
from ..car import CarSpec
from ..inference import Command, twist
from ..observation import ObservationSpec, observation_from_image
from ..sensors import Sensor
from ..track import Track
from . import contract
from .cdr import decode_odometry
from .image import ImageError, image_to_rgb

POSE_TOLERANCE = 0.02  # m and rad: odometry this close to a requested reset pose is "there"
_WAIT_SLICE = 0.1  # s: longest single wait, so KeyboardInterrupt is seen promptly
_RESET_RETRY = 1.0  # s: the first reset re-sends /initialpose this often until answered
_NEVER = 1 << 62  # a stamp no image is newer than: validate, do not convert
_names = itertools.count()


class Odom(NamedTuple):
    """What the backend reads from /odom: stamp (ns, sim time), pose in the odom (track) frame, twist."""

    stamp: int
    x: float
    y: float
    yaw: float
    speed: float
    yaw_rate: float


class SimulatorTimeout(TimeoutError):
    """The simulator did not answer on the topic contract in time; the message names the silent topics."""


def observation_frame(msg: Image, spec: ObservationSpec, topic: str = contract.IMAGE) -> np.ndarray:
    """The observation frame (C, h, w) the backend takes from a camera message.

    The image check of `image.image_to_rgb`, then `observation.observation_from_image` (the
    inference node's preprocessing). Raises ImageError naming the topic and encoding.
    """
    return _frame(image_to_rgb(msg, topic), msg.encoding, spec, topic)


def _frame(rgb: np.ndarray, encoding: str, spec: ObservationSpec, topic: str) -> np.ndarray:
    try:
        return observation_from_image(rgb, spec)
    except ValueError as exc:  # e.g. a gray camera for a colour policy
        raise ImageError(f"image on {topic} (encoding {encoding!r}): {exc}") from exc


@dataclass
class _CarLink:
    """One car's endpoints and the newest valid state received from it."""

    namespace: str
    cmd_pub: Any
    pose_pub: Any
    image_sub: Any
    odom_sub: Any
    objects_sub: Any = None
    objects: Any = None  # the newest PoseArray on /objects
    odom: Odom | None = None
    frame: np.ndarray | None = None
    latest_ns: int = -1  # newest stamp of a valid image or odometry of this car
    frame_after: int = -1  # the frame awaited since the last command is stamped after this
    topics: dict[str, str] = field(default_factory=dict)

    def topic(self, name: str) -> str:
        return self.topics[name]


class RosBackend(SimulatorBackend):
    """N cars of any simulator publishing the topic contract (one namespace per car when N > 1)."""

    errors = (SimulatorTimeout,)
    # Races with objects: the simulator (sim_node race_type:=..., world_config:=...) places and moves them,
    # draws them and publishes their poses on /objects, which the race judges collisions against.
    supports_objects = True
    simulates_objects = True
    sensor_names = ("FRONT_FACING_CAMERA",)  # sim_node publishes the others; this backend reads the camera

    def __init__(
        self,
        track: Track,
        n_cars: int,
        observation: ObservationSpec,
        sensors: tuple[Sensor, ...],
        seed: int | None = None,
        *,
        timeout: float = 5.0,
        connect_timeout: float = 15.0,
        domain_id: int | None = None,
        node_name: str | None = None,
        namespaces: list[str] | None = None,
        keep_images: bool = False,
    ):
        if not (timeout > 0 and connect_timeout > 0):
            raise ValueError(f"timeouts must be positive, got timeout={timeout}, connect_timeout={connect_timeout}")
        self.track = track
        self.n_cars = int(n_cars)
        self.observation = observation
        self.sensors = tuple(sensors)
        check_backend_sensors("ros", tuple(s.name for s in self.sensors))
        self.car = CarSpec.from_urdf()
        self.control_hz = self.car.control_hz
        self.namespaces = (
            list(namespaces)
            if namespaces is not None
            else [contract.car_namespace(i, self.n_cars) for i in range(self.n_cars)]
        )
        if len(self.namespaces) != self.n_cars:
            raise ValueError(f"{self.n_cars} cars need {self.n_cars} namespaces, got {self.namespaces}")
        self.timeout = float(timeout)  # s: a step or reset without an answer fails after this
        self.connect_timeout = float(connect_timeout)  # s: the first reset waits this long for an answer
        self.keep_images = keep_images  # keep the newest RGB image of each car (render)
        self.last_images: list[np.ndarray | None] = [None] * self.n_cars
        self.rejected = 0  # malformed messages seen (camera images, odometry)
        self.rejections: deque[str] = deque(maxlen=20)  # why, newest last
        self._connected = False
        self._last_warning = -math.inf
        self._sim_time = 0.0
        self._deadline = 0.0  # monotonic: when the frames of the last step are overdue

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
        try:
            self.node = Node(
                node_name or f"race_backend_{os.getpid()}_{next(_names)}",
                context=self.context,
                start_parameter_services=False,
            )
            command = contract.command_qos()
            self.cars: list[_CarLink] = []
            for ns in self.namespaces:
                topics = {name: contract.car_topic(ns, name) for name in contract.CAR_TOPICS}
                self.cars.append(
                    _CarLink(
                        namespace=ns,
                        cmd_pub=self.node.create_publisher(Twist, topics[contract.CMD_VEL], command),
                        pose_pub=self.node.create_publisher(
                            PoseWithCovarianceStamped, topics[contract.INITIALPOSE], command
                        ),
                        image_sub=self._subscribe(Image, topics[contract.IMAGE], ReliabilityPolicy.RELIABLE),
                        odom_sub=self._subscribe(Odometry, topics[contract.ODOM], ReliabilityPolicy.RELIABLE),
                        objects_sub=self.node.create_subscription(
                            PoseArray,
                            contract.car_topic(ns, contract.OBJECTS),
                            lambda _msg: None,
                            contract.sensor_qos(),
                        ),
                        topics={**topics, contract.OBJECTS: contract.car_topic(ns, contract.OBJECTS)},
                    )
                )
            self._make_waiter()
            self._objects_waiter = contract.MessageWaiter(self.context, [link.objects_sub for link in self.cars])
        except BaseException:
            self.close()
            raise

    # ---- the backend interface -------------------------------------------------------------
    def reset_cars(self, rows: np.ndarray, poses: np.ndarray, new_episode: bool = True) -> None:
        rows = [int(i) for i in np.asarray(rows).reshape(-1)]
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
        first = not self._connected
        started = time.monotonic()
        self._connect(started + self.connect_timeout)
        for i, pose in zip(rows, poses):
            if first:  # the answer may take the rest of connect_timeout: Gazebo's bridge and
                # gz_control are matched before the world has loaded and the car is spawned
                deadline = max(started + self.connect_timeout, time.monotonic() + self.timeout)
                self._teleport(i, pose, retry=True, deadline=deadline, window=round(deadline - started, 1))
            else:
                self._teleport(i, pose, retry=False)

    def step(self, steering_deg: np.ndarray, speed: np.ndarray) -> None:
        """Publish every car's command and wait for its odometry; its camera frame is waited for in
        `sensor_data`, so the race core judges the new poses while the simulator still renders."""
        if not self._connected:
            raise RuntimeError("a step before a reset (or after a timeout): call reset() first")
        after = self._drain()
        for i, link in enumerate(self.cars):
            linear, angular = twist(Command(float(steering_deg[i]), float(speed[i])), self.car.wheelbase)
            msg = Twist()
            msg.linear.x, msg.angular.z = linear, angular
            link.frame = None  # until this command's frame has come
            link.frame_after = after[i]
            link.cmd_pub.publish(msg)
        self._deadline = time.monotonic() + self.timeout
        self._wait_for_state({i: after[i] for i in range(self.n_cars)}, self._deadline, "the command", frames=False)

    def states(self) -> CarStates:
        poses = np.zeros((self.n_cars, 3))
        speeds = np.zeros(self.n_cars)
        for i, link in enumerate(self.cars):
            if link.odom is not None:
                poses[i] = (link.odom.x, link.odom.y, link.odom.yaw)
                speeds[i] = link.odom.speed
        return CarStates(poses=poses, speeds=speeds, sim_time=self._sim_time)

    def sensor_data(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        rows = [int(i) for i in np.asarray(rows).reshape(-1)]
        if not self.sensors:
            return {}
        missing = {i: self.cars[i].frame_after for i in rows if self.cars[i].frame is None}
        if missing:
            deadline = max(self._deadline, time.monotonic() + _WAIT_SLICE)
            self._wait_for_state(missing, deadline, "the command", odometry=False)
        frames = np.stack([self.cars[i].frame for i in rows])
        return {sensor.name: frames for sensor in self.sensors}  # the camera: the contract's one sensor

    def show_objects(self, boxes: Any) -> None:
        """Nothing: the simulator draws the objects it simulates."""

    def object_poses(self) -> np.ndarray:
        """(N, K, 3) each car's objects from the simulator's /objects, stamped no earlier than the car's
        odometry (sim_node publishes them with every state); waits up to `timeout`."""
        deadline = time.monotonic() + self.timeout
        out = []
        for link in self.cars:
            want = link.odom.stamp if link.odom is not None else -1
            while True:
                while (msg := contract.MessageWaiter.take(link.objects_sub)) is not None:
                    if link.objects is None or contract.stamp_ns(msg.header.stamp) >= contract.stamp_ns(
                        link.objects.header.stamp
                    ):
                        link.objects = msg
                if link.objects is not None and contract.stamp_ns(link.objects.header.stamp) >= want:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    topic = link.topic(contract.OBJECTS)
                    raise SimulatorTimeout(
                        f"no {topic} of the car's state within {self.timeout:g} s: a race with objects over ROS needs "
                        "a simulator that spawns them (deepracer-rl sim --world-config FILE, or --race-type and "
                        "the race options, the same as this race's)"
                    )
                self._objects_waiter.wait(min(remaining, _WAIT_SLICE))
            out.append(
                [
                    (
                        p.position.x,
                        p.position.y,
                        contract.yaw_from_quaternion(
                            p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w
                        ),
                    )
                    for p in link.objects.poses
                ]
            )
        counts = {len(poses) for poses in out}
        if len(counts) > 1:
            raise ValueError(f"the simulator's cars have different numbers of objects: {sorted(counts)}")
        return np.array(out, dtype=np.float64).reshape(self.n_cars, counts.pop(), 3)

    def close(self) -> None:
        """Destroy the node and shut the backend's rclpy context down (safe to call twice)."""
        objects_waiter = self.__dict__.pop("_objects_waiter", None)
        if objects_waiter is not None:
            objects_waiter.destroy()
        waiter = self.__dict__.pop("_waiter", None)
        if waiter is not None:
            waiter.destroy()
        node = self.__dict__.pop("node", None)
        if node is not None:
            node.destroy_node()
        context = self.__dict__.pop("context", None)
        if context is not None and context.ok():
            rclpy.shutdown(context=context)

    @property
    def last_rejection(self) -> str | None:
        return self.rejections[-1] if self.rejections else None

    @property
    def domain_id(self) -> int:
        return self.context.get_domain_id()

    # ---- topics ----------------------------------------------------------------------------
    def _subscribe(self, msg_type, topic: str, reliability: ReliabilityPolicy):
        # Odometry is taken serialized and decoded by cdr.decode_odometry (~3 us instead of ~50 us).
        return self.node.create_subscription(
            msg_type, topic, lambda _msg: None, contract.sensor_qos(reliability), raw=msg_type is Odometry
        )

    def _make_waiter(self) -> None:
        old = self.__dict__.pop("_waiter", None)
        if old is not None:
            old.destroy()
        subs = [sub for link in self.cars for sub in (link.image_sub, link.odom_sub)]
        self._waiter = contract.MessageWaiter(self.context, subs)
        self._owner = {}
        for i, link in enumerate(self.cars):
            self._owner[id(link.image_sub)] = (i, contract.IMAGE)
            self._owner[id(link.odom_sub)] = (i, contract.ODOM)

    def _connect(self, deadline: float) -> None:
        """Wait (until `deadline`, monotonic) until a simulator's endpoints of every car's topics are matched."""
        if self._connected:
            return
        while True:
            self._match_best_effort_publishers()
            missing = []
            for link in self.cars:
                for name, count, role in (
                    (contract.IMAGE, link.image_sub.get_publisher_count(), "publisher"),
                    (contract.ODOM, link.odom_sub.get_publisher_count(), "publisher"),
                    (contract.CMD_VEL, link.cmd_pub.get_subscription_count(), "subscriber"),
                    (contract.INITIALPOSE, link.pose_pub.get_subscription_count(), "subscriber"),
                ):
                    if count == 0:
                        missing.append(f"{link.topic(name)} (no {role})")
            if not missing:
                self._connected = True
                return
            if time.monotonic() >= deadline:
                cars = f"{self.n_cars} cars (namespaces {', '.join(self.namespaces)}) " if self.n_cars > 1 else ""
                raise SimulatorTimeout(
                    f"no simulator on the topic contract after {self.connect_timeout:g} s: {', '.join(missing)}; "
                    f"start one for {cars}(deepracer-rl sim --lockstep"
                    f"{f' --cars {self.n_cars}' if self.n_cars > 1 else ''}, or Gazebo with gz_control) on "
                    f"ROS_DOMAIN_ID={self.domain_id}"
                )
            time.sleep(0.02)  # discovery has no event to wait on here

    def _match_best_effort_publishers(self) -> None:
        """Subscribe best-effort to a topic whose publisher is best-effort (a reliable reader would not match it)."""
        changed = False
        for link in self.cars:
            for attr, msg_type, name in (("image_sub", Image, contract.IMAGE), ("odom_sub", Odometry, contract.ODOM)):
                sub = getattr(link, attr)
                topic = link.topic(name)
                if sub.get_publisher_count() or sub.qos_profile.reliability != ReliabilityPolicy.RELIABLE:
                    continue
                infos = self.node.get_publishers_info_by_topic(topic)
                if infos and all(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos):
                    self.node.get_logger().warning(
                        f"{topic} is published best-effort: subscribing best-effort, so a lost message "
                        f"makes a step time out; publish it reliably for lockstep training"
                    )
                    self.node.destroy_subscription(sub)
                    setattr(link, attr, self._subscribe(msg_type, topic, ReliabilityPolicy.BEST_EFFORT))
                    changed = True
        if changed:
            self._make_waiter()

    def _drain(self) -> list[int]:
        """Take whatever is queued (it is older than the next request); returns each car's newest stamp.

        Takes directly instead of waiting with a zero timeout: an rcl wait that finds nothing
        costs ~80 us even with timeout 0 (the kernel's timer slack), a take that finds nothing ~1 us.
        """
        waiter = self._waiter
        for i, link in enumerate(self.cars):
            while (msg := waiter.take(link.odom_sub)) is not None:
                self._accept_odometry(i, msg)
            while (msg := waiter.take(link.image_sub)) is not None:
                self._accept_image(i, msg, _NEVER)
        return [link.latest_ns for link in self.cars]

    def _accept_odometry(self, i: int, raw: bytes) -> Odom | None:
        """Decoded odometry (stamp ns, x, y, yaw, v, yaw rate), or None for undecodable bytes (logged)."""
        link = self.cars[i]
        try:
            odom = Odom(*decode_odometry(raw))
        except ValueError as exc:
            self._reject(f"odometry on {link.topic(contract.ODOM)}: {exc}")
            return None
        link.latest_ns = max(link.latest_ns, odom.stamp)
        return odom

    def _reject(self, text: str) -> None:
        self.rejected += 1
        self.rejections.append(text)
        now = time.monotonic()
        if now - self._last_warning >= 1.0:
            self.node.get_logger().warning(f"rejected {text}")
            self._last_warning = now

    def _accept_image(self, i: int, msg: Image, after: int) -> np.ndarray | None:
        """`observation_frame` of a valid image stamped after `after`, else None (bad ones are logged)."""
        link = self.cars[i]
        topic = link.topic(contract.IMAGE)
        try:
            rgb = image_to_rgb(msg, topic)
        except ImageError as exc:
            self._reject(str(exc))
            return None
        stamp = contract.stamp_ns(msg.header.stamp)
        frame = None
        if stamp > after:
            try:
                frame = _frame(rgb, msg.encoding, self.observation, topic)
            except ImageError as exc:
                self._reject(str(exc))
                return None
            if self.keep_images:
                self.last_images[i] = np.array(rgb)
        link.latest_ns = max(link.latest_ns, stamp)
        return frame

    def _wait_for_state(
        self,
        after: dict[int, int],
        deadline: float,
        what: str,
        odom_ok: Callable[[int, Odom], bool] | None = None,
        image_after: Callable[[int, Odom], int] | None = None,
        window: float | None = None,
        odometry: bool = True,
        frames: bool | None = None,
    ) -> None:
        """Wait until `deadline` (monotonic) for the odometry and camera frame of each car i in `after`.

        Both must be stamped after after[i]; the odometry must also pass `odom_ok(i, odom)`
        (default any), and with `image_after` the frame must be stamped after
        `image_after(i, odom)` instead (a reset: the frame of the odometry's period). What
        arrives is kept as the car's state (`odom`, `frame`). `odometry` / `frames` (default:
        when the backend has sensors) say what to wait for; frames that come while waiting for
        odometry only are kept too. Raises SimulatorTimeout naming what stayed silent (and
        `window`, the seconds waited in all, default `timeout`).
        """
        waiter = self._waiter
        want_frames = bool(self.sensors) if frames is None else frames
        odoms: dict[int, Odom] = {}
        got_frames: dict[int, np.ndarray] = {}
        pending: dict[int, list[tuple[int, np.ndarray]]] = {i: [] for i in after}
        seen = {(i, kind): 0 for i in after for kind in (contract.IMAGE, contract.ODOM)}
        rejected_before = self.rejected
        while (odometry and len(odoms) < len(after)) or (want_frames and len(got_frames) < len(after)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout_error(
                    what,
                    after,
                    odoms if odometry else after,
                    got_frames,
                    seen,
                    self.rejected - rejected_before,
                    window or self.timeout,
                )
            for sub in waiter.wait(min(remaining, _WAIT_SLICE)):
                i, kind = self._owner[id(sub)]
                while (msg := waiter.take(sub)) is not None:
                    if i not in after:  # a car not waited for: keep its newest stamp only
                        if kind == contract.ODOM:
                            self._accept_odometry(i, msg)
                        else:
                            self._accept_image(i, msg, _NEVER)
                        continue
                    seen[(i, kind)] += 1
                    if kind == contract.ODOM:
                        got = self._accept_odometry(i, msg)
                        if (
                            odometry
                            and i not in odoms
                            and got is not None
                            and got.stamp > after[i]
                            and (odom_ok is None or odom_ok(i, got))
                        ):
                            odoms[i] = got
                            self.cars[i].odom = got
                            self._sim_time = max(self._sim_time, got.stamp / 1e9)
                    else:
                        got = self._accept_image(i, msg, after[i])
                        if got is None or i in got_frames:
                            continue
                        if image_after is None:
                            got_frames[i] = self.cars[i].frame = got
                        else:
                            pending[i].append((contract.stamp_ns(msg.header.stamp), got))
            if image_after is not None:
                for i in after:
                    if i in got_frames or i not in odoms or not pending[i]:
                        continue
                    floor = image_after(i, odoms[i])
                    for stamp, got in pending[i]:
                        if stamp > floor:
                            got_frames[i] = self.cars[i].frame = got
                            break
                    pending[i].clear()

    def _timeout_error(
        self,
        what: str,
        after: dict[int, int],
        odoms: dict,
        frames: dict,
        seen: dict,
        rejected: int,
        window: float,
    ) -> SimulatorTimeout:
        silent, detail = [], []
        for i in after:
            link = self.cars[i]
            no_frame = bool(self.sensors) and i not in frames
            for kind, missing in ((contract.IMAGE, no_frame), (contract.ODOM, i not in odoms)):
                if not missing:
                    continue
                topic = link.topic(kind)
                silent.append(topic)
                n = seen[(i, kind)]
                detail.append(f"{topic}: {'nothing received' if n == 0 else f'{n} message(s), none that answers it'}")
        if rejected:
            detail.append(f"{rejected} malformed message(s) rejected, the last: {self.last_rejection}")
        self._connected = False  # the next reset waits for a simulator again (it may be restarted)
        return SimulatorTimeout(
            f"no answer on {' and '.join(silent)} within {window:g} s after {what} "
            f"({'; '.join(detail)}); is the simulator still running?"
        )

    def _teleport(
        self, i: int, pose: np.ndarray, retry: bool, deadline: float | None = None, window: float | None = None
    ) -> None:
        """Publish car i's /initialpose and wait for odometry there and a camera frame from that period.

        Any stamp is accepted for odometry at the pose (a restarted simulator's clock starts
        over); the next step's stamps count from it. With `retry` (the first reset after
        discovery, which may reach a simulator that has not matched this writer yet) the
        request is re-sent every second; a repeated teleport to the same pose is harmless,
        and the extra answers are drained before the first step. The answer is waited for until
        `deadline` (monotonic; default `timeout` from now), `window` s in all (for the error message).
        """
        link = self.cars[i]
        x, y, yaw = (float(v) for v in pose)
        msg = PoseWithCovarianceStamped()
        msg.header.frame_id = contract.ODOM_FRAME
        msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
        q = msg.pose.pose.orientation
        q.x, q.y, q.z, q.w = contract.quaternion_from_yaw(yaw)
        period_ns = round(1e9 / self.control_hz)

        def at_pose(_i: int, odom: Odom) -> bool:
            dyaw = (odom.yaw - yaw + math.pi) % (2 * math.pi) - math.pi
            return math.hypot(odom.x - x, odom.y - y) <= POSE_TOLERANCE and abs(dyaw) <= POSE_TOLERANCE

        msg.header.stamp = contract.time_msg(max(self._drain()[i], 0))
        if deadline is None:
            deadline, window = time.monotonic() + self.timeout, self.timeout
        sends = 0
        while True:
            link.pose_pub.publish(msg)
            sends += 1
            until = min(deadline, time.monotonic() + _RESET_RETRY) if retry else deadline
            try:
                self._wait_for_state(
                    {i: -1},
                    until,
                    what=f"the reset to x={x:.2f} y={y:.2f} yaw={yaw:.2f}",
                    odom_ok=at_pose,
                    image_after=lambda _i, o: o.stamp - period_ns,
                    window=window,
                )
                break
            except SimulatorTimeout:
                if not retry or time.monotonic() >= deadline:
                    raise
        link.latest_ns = link.odom.stamp
        self._connected = True  # a retried wait's timeout marked it lost
        if sends > 1:
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                self._waiter.wait(0.05)
                self._drain()
