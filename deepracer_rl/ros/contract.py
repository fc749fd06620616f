"""The topic contract (docs/architecture.md) in one place: names, frames, QoS, the /cmd_vel mapping.

Both ends of the contract import it: `sim_node` (the embedded simulator) publishes with
these profiles, `bridge.RosRaceEnv` subscribes with them. Also here: `MessageWaiter`, the
executor-free wait both use on their hot path, and the Fast DDS profile of the simulator.

QoS. Camera and odometry use the sensor-data profile (keep last 5, volatile) but with
RELIABLE delivery: a reliable publisher serves best-effort subscribers (rviz, anything
subscribing with the plain sensor-data profile) as well as reliable ones, and the bridge
subscribes reliably so that no lockstep step is lost (a lost image would stall training
until the timeout). Commands and resets (/cmd_vel, /initialpose) are reliable, keep last 10.
"""

from __future__ import annotations

import math
import os
import signal
import threading
from pathlib import Path
from typing import Any

import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseArray
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from ..car import BASE_LINK, CAMERA_OPTICAL_LINK, LASER_LINK, STEREO_OPTICAL_LINKS
from ..car import ODOM_FRAME as CAR_ODOM_FRAME

IMAGE = "/camera/image_raw"
CAMERA_INFO = "/camera/camera_info"
ODOM = "/odom"
CMD_VEL = "/cmd_vel"
CLOCK = "/clock"
INITIALPOSE = "/initialpose"
TF = "/tf"
# The other DeepRacer sensors, published when asked for (sim_node `sensors:=...`): the Evo's stereo pair as
# two images of the same stamp (the stereo_image_proc layout) and the lidar's scan.
STEREO_LEFT = "/stereo/left/image_raw"
STEREO_RIGHT = "/stereo/right/image_raw"
SCAN = "/scan"
# The obstacles' and bot cars' poses of a race with objects (sim_node), each car's under its namespace:
# geometry_msgs/PoseArray in the odom frame, obstacles first, then bot cars (`world_objects.ObjectState`).
OBJECTS = "/objects"
# Gazebo's set_pose of a world as ROS service (ros_gz_bridge; served by gz-sim's UserCommands): what the bot-car
# node moves the bot cars with. ros_gz_bridge 1.0.11+ (Jazzy) bridges it; `set_pose_bridge_argument` is the
# parameter_bridge argument that does (the world's name is in the service name, so the launch file gives it).
SET_POSE_SERVICE = "/world/{world}/set_pose"
SET_POSE_TYPES = ("ros_gz_interfaces/srv/SetEntityPose", "gz.msgs.Pose", "gz.msgs.Boolean")  # ROS, gz req, gz rep

ODOM_FRAME = CAR_ODOM_FRAME  # REP 105; the embedded simulator's odom frame is the track's frame
BASE_FRAME = BASE_LINK
CAMERA_FRAME = CAMERA_OPTICAL_LINK
LASER_FRAME = LASER_LINK  # DeepRacer's lidar link (turned by pi about z on the car: `lidar.MOUNT_YAW`)
STEREO_FRAMES = STEREO_OPTICAL_LINKS

# The topics every car has; a simulator with several cars puts each car's under its namespace.
CAR_TOPICS = (IMAGE, CAMERA_INFO, ODOM, CMD_VEL, INITIALPOSE)
# The DeepRacer sensors of `sensors.SENSORS` -> the topics each is published on (in the order its data
# is read: the stereo pair left, right), and each topic's message type.
SENSOR_TOPICS = {
    "FRONT_FACING_CAMERA": (IMAGE,),
    "STEREO_CAMERAS": (STEREO_LEFT, STEREO_RIGHT),
    "LIDAR": (SCAN,),
    "SECTOR_LIDAR": (SCAN,),
    "DISCRETIZED_SECTOR_LIDAR": (SCAN,),
}
MESSAGE_TYPES = {
    IMAGE: "sensor_msgs/msg/Image",
    STEREO_LEFT: "sensor_msgs/msg/Image",
    STEREO_RIGHT: "sensor_msgs/msg/Image",
    SCAN: "sensor_msgs/msg/LaserScan",
    ODOM: "nav_msgs/msg/Odometry",
    CMD_VEL: "geometry_msgs/msg/Twist",
    OBJECTS: "geometry_msgs/msg/PoseArray",
}


def car_namespace(index: int, n_cars: int) -> str:
    """The namespace of car `index` of a simulator with `n_cars` cars: none for one car, else /car<index>."""
    return "" if n_cars == 1 else f"/car{index}"


def car_topic(namespace: str, topic: str) -> str:
    """A car's topic: `topic` (one of CAR_TOPICS) under its namespace ("" = the plain contract)."""
    return f"{namespace.rstrip('/')}{topic}" if namespace else topic


def set_pose_service(world: str) -> str:
    """The ROS name of Gazebo world `world`'s set_pose service: /world/<world>/set_pose (the gz name too)."""
    return SET_POSE_SERVICE.format(world=world)


def set_pose_bridge_argument(world: str) -> str:
    """parameter_bridge's argument that bridges world `world`'s set_pose: <service>@<ROS srv>@<gz req>@<gz rep>."""
    return "@".join((set_pose_service(world), *SET_POSE_TYPES))


def car_frame(namespace: str, frame: str) -> str:
    """A car's TF frame (base_link, camera_optical_link) under its namespace: car0/base_link; plain for one car."""
    return f"{namespace.strip('/')}/{frame}" if namespace else frame


MIN_TURNING_SPEED = 1e-3  # m/s: below this /cmd_vel carries no steering (angular.z = v tan(steer) / L)


def sensor_qos(reliability: ReliabilityPolicy = ReliabilityPolicy.RELIABLE) -> QoSProfile:
    """The sensor-data profile (keep last 5, volatile) with the given reliability (default reliable)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=5,
        reliability=reliability,
        durability=DurabilityPolicy.VOLATILE,
    )


def command_qos() -> QoSProfile:
    """/cmd_vel and /initialpose: reliable, keep last 10, volatile."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=10,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def clock_qos() -> QoSProfile:
    """/clock: keep last 1, reliable (rclpy's and rclcpp's best-effort clock subscribers match it too)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)


# ---- the AWS DeepRacer car ----------------------------------------------------------------------
# Names and QoS of the car's device packages, as their sources define them (stock Foxy image:
# aws-deepracer camera_pkg, ctrl_pkg, servo_pkg, inference_pkg, deepracer_navigation_pkg; the
# community's Jazzy build, deepracer-custom-car, keeps every name). The stock chain:
#   camera_pkg -> CAR_CAMERA (CameraMsg) -> sensor_fusion -> inference_pkg -> navigation
#   -> CAR_AUTO_DRIVE (ServoCtrlMsg) -> ctrl_pkg, which forwards it to CAR_SERVO (servo_pkg)
#   only while the car is in autonomous mode and enabled.
# The car profile of inference_node takes the place of inference_pkg + navigation: it reads
# CAR_CAMERA, publishes CAR_AUTO_DRIVE and answers the services ctrl_pkg calls on those two.

CAR_CAMERA = "/camera_pkg/video_mjpeg"  # CameraMsg; images[0] = front (left) camera, images[1] the right one
CAR_SCAN = "/rplidar_ros/scan"  # sensor_msgs/LaserScan of the Evo's lidar (rplidar_ros, frame laser)
CAR_AUTO_DRIVE = "/deepracer_navigation_pkg/auto_drive"  # ServoCtrlMsg from the navigation node
CAR_SERVO = "/ctrl_pkg/servo_msg"  # ServoCtrlMsg ctrl_pkg -> servo_pkg (angle, throttle in [-1, 1])
# Services ctrl_pkg calls (ctrl_state.cpp) and waits for at start-up:
CAR_INFERENCE_STATE = "/inference_pkg/inference_state"  # InferenceStateSrv: start 1/0 = enable/disable
CAR_LOAD_MODEL = "/inference_pkg/load_model"  # LoadModelSrv (a model chosen in the console)
CAR_NAVIGATION_THROTTLE = "/deepracer_navigation_pkg/navigation_throttle"  # NavThrottleSrv: max speed 0..1
CAR_LOAD_ACTION_SPACE = "/deepracer_navigation_pkg/load_action_space"  # LoadModelSrv
# ctrl_pkg's own services (ctrl_node.cpp), called by the console's web server (or by hand):
CAR_VEHICLE_STATE = "/ctrl_pkg/vehicle_state"  # ActiveStateSrv: state CAR_MODES[...]
CAR_ENABLE_STATE = "/ctrl_pkg/enable_state"  # EnableStateSrv: is_active = start / stop
CAR_AUTONOMOUS_THROTTLE = "/ctrl_pkg/autonomous_throttle"  # NavThrottleSrv, passed on to navigation_throttle
CAR_MODES = {"manual": 0, "autonomous": 1, "calibration": 2}  # ctrl_node.cpp enum CtrlState
CAR_RL_TASK = 0  # InferenceStateSrv / LoadModelSrv task_type of the RL task (inference_node.cpp rlTask)


def car_camera_qos() -> QoSProfile:
    """camera_pkg's CameraMsg publisher: create_publisher(topic, 1), i.e. reliable, keep last 1, volatile."""
    return QoSProfile(depth=1)


def car_auto_drive_qos() -> QoSProfile:
    """The navigation node's auto_drive publisher: create_publisher(topic, 1), i.e. reliable, keep last 1."""
    return QoSProfile(depth=1)


def car_servo_qos() -> QoSProfile:
    """ctrl_pkg's and servo_pkg's ServoCtrlMsg publishers and subscriptions: best effort, keep last 1."""
    return QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


# ---- /cmd_vel and poses ---------------------------------------------------------------------


def steer_from_twist(linear_x: float, angular_z: float, wheelbase: float) -> float:
    """Front wheel angle (rad, + = left) of a /cmd_vel: atan(angular.z * wheelbase / v); 0 when v ~ 0."""
    if abs(linear_x) < MIN_TURNING_SPEED:
        return 0.0
    return math.atan(angular_z * wheelbase / linear_x)


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Yaw (rad) of a quaternion (ZYX Euler angles; exact for the planar poses used here)."""
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def quaternion_from_yaw(yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation by `yaw` about z."""
    return 0.0, 0.0, math.sin(0.5 * yaw), math.cos(0.5 * yaw)


def objects_message(poses: Any, z: Any, stamp: Time) -> PoseArray:
    """The OBJECTS message of one car's world: each object's centre x, y (m), its origin height `z` (m) and
    yaw (rad) from `poses` (K, 3) and `z` (K,), in ODOM_FRAME, in `world_objects.ObjectState` order
    (obstacles first, then bot cars), stamped `stamp`. sim_node and the bot-car node both publish it."""
    msg = PoseArray()
    msg.header.stamp, msg.header.frame_id = stamp, ODOM_FRAME
    for (x, y, yaw), height in zip(poses.tolist(), z.tolist()):
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = x, y, height
        _, _, pose.orientation.z, pose.orientation.w = quaternion_from_yaw(yaw)
        msg.poses.append(pose)
    return msg


def stamp_ns(stamp: Time) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def time_msg(ns: int) -> Time:
    """Integer nanoseconds -> builtin_interfaces/Time."""
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


# ---- waiting without an executor -------------------------------------------------------------


class MessageWaiter:
    """Waits on a few subscriptions with one rcl wait set and takes their messages; no executor.

    rclpy's executors rebuild a wait set over every entity of the node and go through tasks
    for each callback; on a lockstep round trip that costs a few hundred microseconds. This
    waits on just the given subscriptions (the same calls `rclpy.wait_for_message` makes).
    The subscriptions' own callbacks are never called by it.
    """

    def __init__(self, context: rclpy.context.Context, subscriptions: list) -> None:
        self.subscriptions = list(subscriptions)
        self._context = context
        with context.handle:
            self._wait_set = _rclpy.WaitSet(len(self.subscriptions), 0, 0, 0, 0, 0, context.handle)

    def wait(self, timeout_sec: float) -> list:
        """Subscriptions with messages ready (waits up to `timeout_sec`; none when it ran out)."""
        ws = self._wait_set
        ws.clear_entities()
        for sub in self.subscriptions:
            ws.add_subscription(sub.handle)
        ws.wait(max(0, int(timeout_sec * 1e9)))
        ready = ws.get_ready_entities("subscription")
        if not ready:
            return []
        return [sub for sub in self.subscriptions if sub.handle.pointer in ready]

    @staticmethod
    def take(subscription: Any) -> Any:
        """The next message of a subscription, or None."""
        taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
        return None if taken is None else taken[0]

    def poll(self, timeout_sec: float, handlers: dict) -> bool:
        """Wait up to `timeout_sec`, then pass every message taken to `handlers[subscription]`."""
        got = False
        for sub in self.wait(timeout_sec):
            while (msg := self.take(sub)) is not None:
                handlers[sub](msg)
                got = True
        return got

    def destroy(self) -> None:
        self._wait_set.destroy_when_not_in_use()


# ---- Fast DDS --------------------------------------------------------------------------------

FASTDDS_PROFILE = Path(__file__).resolve().with_name("fastdds_sim_node.xml")
_FASTDDS_ENV = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")


def use_sim_node_fastdds_profile() -> str | None:
    """Point Fast DDS at the simulator's profile (a 16 MB shared-memory segment) unless the user set one.

    Fast DDS's default shared-memory segment is 512 kB; a 640x480 rgb8 frame (900 kB) does not
    fit, and samples written just after it (the odometry) were dropped and only repaired by
    the next heartbeat, 1-3 s later: a lockstep stall every ~1,500 steps. The segment belongs
    to the writer, so only the simulator's process needs it. Call before rclpy.init();
    returns the profile path when it was applied.
    """
    rmw = os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") or "rmw_fastrtps_cpp"
    if not rmw.startswith("rmw_fastrtps") or any(os.environ.get(name) for name in _FASTDDS_ENV):
        return None
    if not FASTDDS_PROFILE.is_file():
        return None
    os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    return str(FASTDDS_PROFILE)


def init_node_process(args: list[str] | None = None) -> threading.Event:
    """rclpy.init for a node's main(); returns the stop request that SIGINT and SIGTERM set.

    The signals only set the event: the node's loop checks it between its short waits (0.1 s)
    and then publishes a last message (a stop) on a context that is still alive. Raising
    KeyboardInterrupt from the handler instead could land inside rclpy's message conversion,
    which turns it into an unrelated RuntimeError and a traceback at every other Ctrl-C.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop_requested = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stop_requested.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.set())
    return stop_requested
