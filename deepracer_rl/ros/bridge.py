"""RosRaceEnv: the DeepRacer gymnasium env over the topic contract, whatever simulator is behind it.

The env only talks through the contract (`contract.py`): it publishes `/cmd_vel` and
`/initialpose` and reads `/camera/image_raw` and `/odom`. Rewards, params and episode ends
come from the odometry pose with the same code as `RaceEnv` (EpisodeJudge, RewardFunction,
ActionSpace), observations from the camera image with the inference node's preprocessing
(`policy.observation_from_image`, `FrameStack`), and resets go to the start poses of the
simulator's own schedule (`sim.start_pose`). So the embedded `sim_node` in lockstep gives
the in-process env's rewards and episodes, and Gazebo (ros_gz_bridge + gz_control) works too.

Timing: a step publishes the command, then waits for an image and an odometry message
stamped later than anything seen before the command (stamps are sim time); a reset waits
for odometry at the requested pose and an image of the same period. Nothing answering
within `timeout` seconds raises `SimulatorTimeout` naming the silent topics; malformed
images are rejected (logged, counted in `rejected`) and waited past. The first reset (and
the first after a timeout) waits up to `connect_timeout` for the simulator's endpoints and
its answer: Gazebo's bridge is up well before the world has loaded.

The env owns its rclpy context and node and needs no executor or thread: it waits on its
two subscriptions with one wait set (`contract.MessageWaiter`), in slices of at most 0.1 s
so Ctrl-C stays responsive. `close()` destroys the node and shuts the context down.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections import deque
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import rclpy
from geometry_msgs.msg import PoseWithCovarianceStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image

from ..action_space import ActionSpace
from ..car import CarSpec
from ..env import ObservationSpec, load_race_inputs
from ..episode import EpisodeJudge, EpisodeStatus, RaceRules
from ..inference import Command, twist
from ..policy import FrameStack, observation_from_image
from ..reward import RewardFunction
from ..sim import StartRules, start_pose
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
    """What the env reads from /odom: stamp (ns, sim time), pose in the odom (track) frame, twist."""

    stamp: int
    x: float
    y: float
    yaw: float
    speed: float
    yaw_rate: float


class SimulatorTimeout(TimeoutError):
    """The simulator did not answer on the topic contract in time; the message names the silent topics."""


def observation_frame(msg: Image, spec: ObservationSpec) -> np.ndarray:
    """The observation frame (C, h, w) RosRaceEnv takes from a camera message.

    The image check of `image.image_to_rgb`, then `policy.observation_from_image` (the
    inference node's preprocessing). Raises ImageError naming the topic and encoding.
    """
    return _frame(image_to_rgb(msg, contract.IMAGE), msg.encoding, spec)


def _frame(rgb: np.ndarray, encoding: str, spec: ObservationSpec) -> np.ndarray:
    try:
        return observation_from_image(rgb, spec)
    except ValueError as exc:  # e.g. a gray camera for a colour policy
        raise ImageError(f"image on {contract.IMAGE} (encoding {encoding!r}): {exc}") from exc


class RosRaceEnv(gym.Env):
    """One DeepRacer car in any simulator publishing the topic contract, as a gymnasium env."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        track: Track | str = "reinvent_base",
        model_metadata: ActionSpace | str | os.PathLike | None = None,
        reward_function: RewardFunction | str | os.PathLike | None = None,
        observation: ObservationSpec | None = None,
        start: StartRules | None = None,
        rules: RaceRules | None = None,
        render_mode: str | None = None,
        *,
        timeout: float = 5.0,
        connect_timeout: float = 15.0,
        seed: int | None = None,
        domain_id: int | None = None,
        node_name: str | None = None,
    ):
        if not (timeout > 0 and connect_timeout > 0):
            raise ValueError(f"timeouts must be positive, got timeout={timeout}, connect_timeout={connect_timeout}")
        self.track, self.actions, self.reward_fn = load_race_inputs(track, model_metadata, reward_function)
        self.obs_spec = observation or ObservationSpec()
        self.start_rules = start or StartRules()
        self.car = CarSpec.from_urdf()
        self.control_hz = float(self.car.camera.rate_hz)
        self.judge = EpisodeJudge(self.track, self.car.wheel_contact_points(), 1, self.control_hz, rules)
        self.frames = FrameStack(self.obs_spec)
        self.observation_space = self.obs_spec.space()
        self.action_space = self.actions.gym_space()
        self.render_mode = render_mode
        self.timeout = float(timeout)  # s: a step or reset without an answer fails after this
        self.connect_timeout = float(connect_timeout)  # s: the first reset waits this long for a simulator's answer
        self.rng = np.random.default_rng(seed)
        self.episodes = 0  # episodes started (the start schedule's counter)
        self.rejected = 0  # malformed messages seen (camera images, odometry)
        self.rejections: deque[str] = deque(maxlen=20)  # why, newest last
        self.last_image: np.ndarray | None = None
        self._latest_ns = -1  # newest stamp of a valid image or odometry seen
        self._connected = False
        self._in_episode = False
        self._last_warning = -math.inf

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
        try:
            self.node = Node(
                node_name or f"race_env_{os.getpid()}_{next(_names)}",
                context=self.context,
                start_parameter_services=False,
            )
            command = contract.command_qos()
            self.cmd_pub = self.node.create_publisher(Twist, contract.CMD_VEL, command)
            self.pose_pub = self.node.create_publisher(PoseWithCovarianceStamped, contract.INITIALPOSE, command)
            self.image_sub = self._subscribe(Image, contract.IMAGE, ReliabilityPolicy.RELIABLE)
            self.odom_sub = self._subscribe(Odometry, contract.ODOM, ReliabilityPolicy.RELIABLE)
            self._make_waiter()
        except BaseException:
            self.close()
            raise

    # ---- gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:  # as RaceEnv.reset(seed=...): the start schedule starts over
            self.rng = np.random.default_rng(seed)
            self.episodes = 0
        first = not self._connected
        started = time.monotonic()
        self._connect(started + self.connect_timeout)
        pose, reverse = start_pose(self.track, self.start_rules, self.episodes, 0, 1, self.rng)
        self.episodes += 1
        if first:  # the answer may take the rest of connect_timeout: Gazebo's bridge and gz_control
            # are matched before the world has loaded and the car is spawned
            deadline = max(started + self.connect_timeout, time.monotonic() + self.timeout)
            image = self._teleport(pose, retry=True, deadline=deadline, window=round(deadline - started, 1))
        else:
            image = self._teleport(pose, retry=False)
        self.judge.start(0, pose, reverse)
        self.frames.clear()
        obs = self.frames.push(image)
        self._in_episode = True
        return obs.copy(), {"episode_status": EpisodeStatus.IN_PROGRESS.value}

    def step(self, action):
        if not self._in_episode:
            raise RuntimeError("RosRaceEnv.step() before reset() (or after a timeout): call reset() first")
        steer, speed = self.actions.to_commands(np.asarray(action)[None])
        linear, angular = twist(Command(float(steer[0]), float(speed[0])), self.car.wheelbase)
        msg = Twist()
        msg.linear.x, msg.angular.z = linear, angular
        judged = []

        def on_odom(odom: Odom) -> None:  # judge while the simulator still renders
            judged.append(self.judge.update(np.array([[odom.x, odom.y, odom.yaw]]), steer, speed))

        after = self._drain()
        self.cmd_pub.publish(msg)
        image, _ = self._wait_for_state(after, time.monotonic() + self.timeout, "the command", on_odom=on_odom)
        result = judged[0]
        params, status = result.params[0], result.status[0]
        reward = float(self.reward_fn(params))
        obs = self.frames.push(image)
        info = {"params": params, "episode_status": status.value, "progress": params["progress"]}
        terminated = status.done and status is not EpisodeStatus.TIME_UP
        truncated = status is EpisodeStatus.TIME_UP
        return obs.copy(), reward, terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array" or self.last_image is None:
            return None
        image = self.last_image
        return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image.copy()

    def close(self) -> None:
        """Destroy the node and shut the env's rclpy context down (safe to call twice)."""
        waiter = self.__dict__.pop("_waiter", None)
        if waiter is not None:
            waiter.destroy()
        node = self.__dict__.pop("node", None)
        if node is not None:
            node.destroy_node()
        context = self.__dict__.pop("context", None)
        if context is not None and context.ok():
            rclpy.shutdown(context=context)

    # ---- topics ----------------------------------------------------------------------------
    def _subscribe(self, msg_type, topic: str, reliability: ReliabilityPolicy):
        # Odometry is taken serialized and decoded by cdr.decode_odometry (~3 us instead of ~50 us).
        return self.node.create_subscription(
            msg_type,
            topic,
            lambda _msg: None,
            contract.sensor_qos(reliability),
            raw=msg_type is Odometry,
        )

    def _make_waiter(self) -> None:
        old = self.__dict__.pop("_waiter", None)
        if old is not None:
            old.destroy()
        self._waiter = contract.MessageWaiter(self.context, [self.image_sub, self.odom_sub])

    def _connect(self, deadline: float) -> None:
        """Wait (until `deadline`, monotonic) until a simulator's endpoints of all four topics are matched."""
        if self._connected:
            return
        while True:
            self._match_best_effort_publishers()
            missing = []
            for topic, count, role in (
                (contract.IMAGE, self.image_sub.get_publisher_count(), "publisher"),
                (contract.ODOM, self.odom_sub.get_publisher_count(), "publisher"),
                (contract.CMD_VEL, self.cmd_pub.get_subscription_count(), "subscriber"),
                (contract.INITIALPOSE, self.pose_pub.get_subscription_count(), "subscriber"),
            ):
                if count == 0:
                    missing.append(f"{topic} (no {role})")
            if not missing:
                self._connected = True
                return
            if time.monotonic() >= deadline:
                raise SimulatorTimeout(
                    f"no simulator on the topic contract after {self.connect_timeout:g} s: {', '.join(missing)}; "
                    f"start one (deepracer-rl sim --lockstep, or Gazebo with gz_control) on "
                    f"ROS_DOMAIN_ID={self.context.get_domain_id()}"
                )
            time.sleep(0.02)  # discovery has no event to wait on here

    def _match_best_effort_publishers(self) -> None:
        """Subscribe best-effort to a topic whose publisher is best-effort (a reliable reader would not match it)."""
        changed = False
        for attr, msg_type, topic in (("image_sub", Image, contract.IMAGE), ("odom_sub", Odometry, contract.ODOM)):
            sub = getattr(self, attr)
            if sub.get_publisher_count() or sub.qos_profile.reliability != ReliabilityPolicy.RELIABLE:
                continue
            infos = self.node.get_publishers_info_by_topic(topic)
            if infos and all(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos):
                self.node.get_logger().warning(
                    f"{topic} is published best-effort: subscribing best-effort, so a lost message "
                    f"makes a step time out; publish it reliably for lockstep training"
                )
                self.node.destroy_subscription(sub)
                setattr(self, attr, self._subscribe(msg_type, topic, ReliabilityPolicy.BEST_EFFORT))
                changed = True
        if changed:
            self._make_waiter()

    def _drain(self) -> int:
        """Take whatever is queued (it is older than the next request); returns the newest stamp seen.

        Takes directly instead of waiting with a zero timeout: an rcl wait that finds nothing
        costs ~80 us even with timeout 0 (the kernel's timer slack), a take that finds nothing ~1 us.
        """
        waiter = self._waiter
        for sub in (self.image_sub, self.odom_sub):
            while (msg := waiter.take(sub)) is not None:
                if sub is self.odom_sub:
                    self._accept_odometry(msg)
                else:
                    self._accept_image(msg, _NEVER)
        return self._latest_ns

    def _accept_odometry(self, raw: bytes) -> Odom | None:
        """Decoded odometry (stamp ns, x, y, yaw, v, yaw rate), or None for undecodable bytes (logged)."""
        try:
            odom = Odom(*decode_odometry(raw))
        except ValueError as exc:
            self._reject(f"odometry on {contract.ODOM}: {exc}")
            return None
        self._latest_ns = max(self._latest_ns, odom.stamp)
        return odom

    @property
    def last_rejection(self) -> str | None:
        return self.rejections[-1] if self.rejections else None

    def _reject(self, text: str) -> None:
        self.rejected += 1
        self.rejections.append(text)
        now = time.monotonic()
        if now - self._last_warning >= 1.0:
            self.node.get_logger().warning(f"rejected {text}")
            self._last_warning = now

    def _accept_image(self, msg: Image, after: int) -> np.ndarray | None:
        """`observation_frame` of a valid image stamped after `after`, else None (bad ones are logged)."""
        try:
            rgb = image_to_rgb(msg, contract.IMAGE)
        except ImageError as exc:
            self._reject(str(exc))
            return None
        stamp = contract.stamp_ns(msg.header.stamp)
        frame = None
        if stamp > after:
            try:
                frame = _frame(rgb, msg.encoding, self.obs_spec)
            except ImageError as exc:
                self._reject(str(exc))
                return None
            if self.render_mode == "rgb_array":
                self.last_image = np.array(rgb)
        self._latest_ns = max(self._latest_ns, stamp)
        return frame

    def _wait_for_state(
        self,
        after: int,
        deadline: float,
        what: str,
        on_odom=None,
        odom_ok=None,
        image_after=None,
        window: float | None = None,
    ):
        """Wait until `deadline` (monotonic) for odometry and an image newer than `after` (stamp ns).

        Returns (frame, odom). `on_odom(odom)` runs as soon as the first qualifying odometry
        (`odom_ok(odom)`, default any) arrives; the image must be stamped after
        `image_after(odom)` (default `after`). Raises SimulatorTimeout naming what stayed silent
        (and `window`, the seconds waited in all, default `timeout`).
        """
        waiter = self._waiter
        odom = frame = None
        seen = {contract.IMAGE: 0, contract.ODOM: 0}
        rejected_before = self.rejected
        pending_frames: list[tuple[int, np.ndarray]] = []
        while odom is None or frame is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout_error(
                    what,
                    odom is None,
                    frame is None,
                    seen,
                    self.rejected - rejected_before,
                    self.timeout if window is None else window,
                )
            for sub in waiter.wait(min(remaining, _WAIT_SLICE)):
                while (msg := waiter.take(sub)) is not None:
                    if sub is self.odom_sub:
                        seen[contract.ODOM] += 1
                        got = self._accept_odometry(msg)
                        if odom is None and got is not None and got.stamp > after and (odom_ok is None or odom_ok(got)):
                            odom = got
                            if on_odom is not None:
                                on_odom(got)
                    else:
                        seen[contract.IMAGE] += 1
                        got = self._accept_image(msg, after)
                        if got is not None:
                            pending_frames.append((contract.stamp_ns(msg.header.stamp), got))
            if frame is None and odom is not None and pending_frames:
                floor = after if image_after is None else image_after(odom)
                for stamp, got in pending_frames:
                    if stamp > floor:
                        frame = got
                        break
                pending_frames.clear()
        return frame, odom

    def _timeout_error(
        self, what: str, no_odom: bool, no_image: bool, seen: dict, rejected: int, window: float
    ) -> SimulatorTimeout:
        silent = [t for t, missing in ((contract.IMAGE, no_image), (contract.ODOM, no_odom)) if missing]
        detail = []
        for topic in silent:
            n = seen[topic]
            detail.append(f"{topic}: {'nothing received' if n == 0 else f'{n} message(s), none that answers it'}")
        if rejected:
            detail.append(f"{rejected} malformed message(s) rejected, the last: {self.last_rejection}")
        self._in_episode = False
        self._connected = False  # the next reset waits for a simulator again (it may be restarted)
        return SimulatorTimeout(
            f"no answer on {' and '.join(silent)} within {window:g} s after {what} "
            f"({'; '.join(detail)}); is the simulator still running?"
        )

    def _teleport(
        self, pose: np.ndarray, retry: bool, deadline: float | None = None, window: float | None = None
    ) -> np.ndarray:
        """Publish /initialpose and wait for odometry there and a camera frame from that period.

        Any stamp is accepted for odometry at the pose (a restarted simulator's clock starts
        over); the next step's stamps count from it. With `retry` (the first reset after
        discovery, which may reach a simulator that has not matched this writer yet) the
        request is re-sent every second; a repeated teleport to the same pose is harmless,
        and the extra answers are drained before the first step. The answer is waited for until
        `deadline` (monotonic; default `timeout` from now), `window` s in all (for the error message).
        """
        x, y, yaw = (float(v) for v in pose)
        msg = PoseWithCovarianceStamped()
        msg.header.frame_id = contract.ODOM_FRAME
        msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
        q = msg.pose.pose.orientation
        q.x, q.y, q.z, q.w = contract.quaternion_from_yaw(yaw)
        period_ns = round(1e9 / self.control_hz)

        def at_pose(odom: Odom) -> bool:
            dyaw = (odom.yaw - yaw + math.pi) % (2 * math.pi) - math.pi
            return math.hypot(odom.x - x, odom.y - y) <= POSE_TOLERANCE and abs(dyaw) <= POSE_TOLERANCE

        msg.header.stamp = _time_msg(max(self._drain(), 0))
        if deadline is None:
            deadline, window = time.monotonic() + self.timeout, self.timeout
        sends = 0
        while True:
            self.pose_pub.publish(msg)
            sends += 1
            until = min(deadline, time.monotonic() + _RESET_RETRY) if retry else deadline
            try:
                frame, odom = self._wait_for_state(
                    -1,
                    until,
                    what=f"the reset to x={x:.2f} y={y:.2f} yaw={yaw:.2f}",
                    odom_ok=at_pose,
                    image_after=lambda o: o.stamp - period_ns,
                    window=window,
                )
                break
            except SimulatorTimeout:
                if not retry or time.monotonic() >= deadline:
                    raise
        self._latest_ns = odom.stamp
        self._connected = True  # a retried wait's timeout marked it lost
        if sends > 1:
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                self._waiter.wait(0.05)
                self._drain()
        return frame


def _time_msg(ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
