"""gz_control: reset and lockstep for the Gazebo Harmonic side of the topic contract.

The bridge (config/ros_gz_bridge.yaml) carries the topics; this node does the two things a
topic bridge cannot:

* `/initialpose` (geometry_msgs/PoseWithCovarianceStamped) becomes a call of the world's
  `/world/<world>/set_pose` service for the car (after a zero command, so it stands still);
  in lockstep mode the world then advances `reset_steps` control periods so that an image
  and odometry at the new pose are published.
* lockstep:=true: Gazebo starts paused; every command that reaches Gazebo on its `/cmd_vel`
  topic (the one the AckermannSteering system reads) is followed by one world control
  request `multi_step = steps_per_control`, i.e. exactly one control period, after which
  the world pauses again.

Timing in lockstep: odometry (OdometryPublisher at the camera rate) is published on the
last physics step of every period, because the world's step divides the period exactly in
gz-sim's integer nanoseconds (see deepracer_rl.world.physics_step). Camera frames are not
aligned as well: gz-sensors 8 schedules them every 1/rate truncated to whole milliseconds
(66 ms at 15 Hz), so one frame is rendered per period (two in about 1 % of periods) at a
phase that drifts through the period; the newest image may be up to one period older than
the odometry.

Gazebo is reached through the gz-transport Python bindings (`gz.transport13`,
`gz.msgs10`), imported only when the node starts, with a clear error when they are
missing. The same calls by hand, for a world named reinvent_base:

    gz service -s /world/reinvent_base/set_pose --reqtype gz.msgs.Pose \
      --reptype gz.msgs.Boolean --timeout 1000 \
      --req 'name: "deepracer", position: {x: 3.0, y: 0.7}, orientation: {w: 1}'
    gz service -s /world/reinvent_base/control --reqtype gz.msgs.WorldControl \
      --reptype gz.msgs.Boolean --timeout 1000 --req 'pause: true, multi_step: 66'
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import rclpy
from geometry_msgs.msg import PoseWithCovarianceStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from ..car import CarSpec
from ..gazebo_tags import CMD_TOPIC
from ..world import CAR_NAME, physics_step
from . import contract

GZ_BINDINGS_HELP = (
    "gz_control needs the Gazebo Harmonic Python bindings (modules gz.transport13 and "
    "gz.msgs10): install python3-gz-transport13 and python3-gz-msgs10 from the Gazebo "
    "apt repository, or recent ros-jazzy-gz-transport-vendor / ros-jazzy-gz-msgs-vendor "
    "packages, which ship them"
)


class GzUnavailable(RuntimeError):
    """The gz-transport Python bindings are not importable."""


@dataclass(frozen=True)
class CarPose:
    """A pose for set_pose: position (m) and orientation quaternion, world frame."""

    x: float
    y: float
    z: float
    qx: float
    qy: float
    qz: float
    qw: float


class GzBackend(Protocol):
    """What the node needs from Gazebo (the real one is `GzTransportBackend`)."""

    def set_pose(self, name: str, pose: CarPose) -> bool: ...

    def step(self, steps: int) -> bool: ...

    def stop_car(self) -> None: ...

    def on_command(self, callback: Callable[[float, float], None]) -> None: ...


class GzTransportBackend:
    """Gazebo through gz-transport: the world's set_pose and control services, the cmd topic."""

    def __init__(self, world: str, cmd_topic: str, timeout_ms: int):
        try:
            from gz.msgs10.boolean_pb2 import Boolean
            from gz.msgs10.pose_pb2 import Pose
            from gz.msgs10.twist_pb2 import Twist
            from gz.msgs10.world_control_pb2 import WorldControl
            from gz.transport13 import Node as GzNode
        except ImportError as exc:
            raise GzUnavailable(f"{GZ_BINDINGS_HELP} ({exc})") from exc
        self._types = {"Boolean": Boolean, "Pose": Pose, "Twist": Twist, "WorldControl": WorldControl}
        self._node = GzNode()
        self._world = world
        self._timeout = int(timeout_ms)
        self._cmd_topic = cmd_topic
        self._cmd_pub = self._node.advertise(cmd_topic, Twist)

    def _call(self, service: str, request, request_type) -> bool:
        ok, reply = self._node.request(
            f"/world/{self._world}/{service}", request, request_type, self._types["Boolean"], self._timeout
        )
        return bool(ok and reply.data)

    def set_pose(self, name: str, pose: CarPose) -> bool:
        req = self._types["Pose"]()
        req.name = name
        req.position.x, req.position.y, req.position.z = pose.x, pose.y, pose.z
        o = req.orientation
        o.x, o.y, o.z, o.w = pose.qx, pose.qy, pose.qz, pose.qw
        return self._call("set_pose", req, self._types["Pose"])

    def step(self, steps: int) -> bool:
        req = self._types["WorldControl"]()
        req.pause = True
        req.multi_step = int(steps)
        return self._call("control", req, self._types["WorldControl"])

    def stop_car(self) -> None:
        self._cmd_pub.publish(self._types["Twist"]())

    def on_command(self, callback: Callable[[float, float], None]) -> None:
        def relay(msg: Any) -> None:
            callback(float(msg.linear.x), float(msg.angular.z))

        if not self._node.subscribe(self._types["Twist"], self._cmd_topic, relay):
            raise GzUnavailable(f"cannot subscribe to the gz topic {self._cmd_topic}")


def pose_from_initialpose(msg: PoseWithCovarianceStamped) -> CarPose:
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    return CarPose(float(p.x), float(p.y), float(p.z), float(q.x), float(q.y), float(q.z), float(q.w))


class GzControl(Node):
    """Turns /initialpose into set_pose and, in lockstep, steps the world once per command."""

    def __init__(
        self, backend_factory: Callable[[str, str, int], GzBackend] = GzTransportBackend, **node_kwargs: Any
    ) -> None:
        super().__init__("gz_control", **node_kwargs)  # node_kwargs: e.g. context, parameter_overrides

        def declare(name: str, default: Any, description: str) -> Any:
            return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

        self.world = declare("world", "", "Gazebo world name (the track name of worlds/<track>.sdf)")
        self.model = declare("model", CAR_NAME, "entity name of the car in Gazebo")
        self.lockstep = declare("lockstep", False, "step the paused world one control period per command")
        steps = declare("steps_per_control", 0, "physics steps per control period (0: from the URDF camera rate)")
        self.reset_steps = declare("reset_steps", 1, "control periods stepped after a reset in lockstep mode")
        cmd_topic = declare("cmd_topic", "/" + CMD_TOPIC, "gz topic the AckermannSteering system reads")
        timeout_ms = declare("timeout_ms", 2000, "gz service call timeout, milliseconds")
        if not self.world:
            raise ValueError("parameter 'world' is required (the Gazebo world name, e.g. reinvent_base)")
        self.steps_per_control = int(steps) or physics_step(CarSpec.from_urdf().camera.rate_hz).steps_per_control
        if self.steps_per_control <= 0 or self.reset_steps < 0:
            raise ValueError("steps_per_control must be positive and reset_steps not negative")
        self.backend = backend_factory(self.world, cmd_topic, timeout_ms)
        self._own_stops = 0  # zero commands this node published, not to be stepped for
        self._lock = threading.Lock()
        self._steps: queue.Queue[int | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run_steps, name="gz_control_steps", daemon=True)
        self._worker.start()
        if self.lockstep:
            self.backend.on_command(self._on_gz_command)
        self.create_subscription(
            PoseWithCovarianceStamped, contract.INITIALPOSE, self._on_initialpose, contract.command_qos()
        )
        self.get_logger().info(
            f"world '{self.world}', car '{self.model}', "
            + (f"lockstep: {self.steps_per_control} physics steps per command" if self.lockstep else "free run")
        )

    # -- steps run on one worker thread, in order, so service calls never block callbacks --
    def _run_steps(self) -> None:
        while (steps := self._steps.get()) is not None:
            if not self.backend.step(steps):
                self.get_logger().error(f"world control multi_step {steps} failed (is /world/{self.world} up?)")
            self._steps.task_done()
        self._steps.task_done()

    def _on_gz_command(self, linear: float, angular: float) -> None:
        with self._lock:
            if self._own_stops and linear == 0.0 and angular == 0.0:
                self._own_stops -= 1
                return
        self._steps.put(self.steps_per_control)

    def _on_initialpose(self, msg: PoseWithCovarianceStamped) -> None:
        pose = pose_from_initialpose(msg)
        if self.lockstep:
            with self._lock:
                self._own_stops += 1
        self.backend.stop_car()
        if not self.backend.set_pose(self.model, pose):
            self.get_logger().error(f"set_pose of '{self.model}' in world '{self.world}' failed")
            return
        if self.lockstep and self.reset_steps:
            self._steps.put(self.reset_steps * self.steps_per_control)

    def wait_idle(self) -> None:
        """Block until every queued step request has been sent (tests, shutdown)."""
        self._steps.join()

    def destroy_node(self) -> None:
        self._steps.put(None)
        self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = GzControl()
        rclpy.spin(node)
    except GzUnavailable as exc:
        print(f"gz_control: error: {exc}")
        raise SystemExit(1) from None
    except ValueError as exc:
        print(f"gz_control: error: {exc}")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    main()
