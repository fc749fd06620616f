"""inference_node: an exported policy drives a car from its camera, in a simulator or on the real car.

Subscribes to the camera (`image_type`: sensor_msgs/Image, sensor_msgs/CompressedImage, or the
DeepRacer's deepracer_interfaces_pkg/CameraMsg, whose `images[0]` it drives on), preprocesses
every frame exactly as in training (`inference.PolicyRunner`: `observation.observation_from_image`
+ `FrameStack`), runs the ONNX policy and publishes

* `/cmd_vel` (geometry_msgs/Twist): linear.x = speed, angular.z = speed * tan(steer) / wheelbase
  (the URDF's wheelbase), the topic contract of the simulators;
* on the DeepRacer, deepracer_interfaces_pkg/ServoCtrlMsg (angle and throttle in [-1, 1],
  `inference.ServoMapping`, the navigation node's mapping).

`profile:=sim` (default) or `profile:=car` sets the defaults of the topics, the throttle
scale and whether the node starts enabled; every topic is a parameter, and an empty topic
name turns that output off. The car profile takes the place of the car's inference_pkg and
deepracer_navigation_pkg nodes (`contract.CAR_*`): camera_pkg's `/camera_pkg/video_mjpeg`
CameraMsg in, ServoCtrlMsg out on `/deepracer_navigation_pkg/auto_drive` (ctrl_pkg passes it to
servo_pkg only in autonomous mode while started), and it answers the services ctrl_pkg calls on
those nodes: `/inference_pkg/inference_state` (the console's start / stop),
`/deepracer_navigation_pkg/navigation_throttle` (its maximum speed: throttle_scale, 0 until set,
as on the stock car) and the two model-loading services (refused: this node drives its `model`).

Other sensors: a policy trained on STEREO_CAMERAS and/or a lidar (its metadata's "sensor") reads
each from its topic of the contract (`contract.SENSOR_TOPICS`: `/stereo/left/image_raw` and
`/stereo/right/image_raw`, `/scan` (sensor_msgs/LaserScan); on the car camera_pkg's CameraMsg with
two images and `/rplidar_ros/scan`) and acts once per set of readings whose stamps lie within
`sync_tolerance` seconds of each other (a simulator stamps a tick's messages alike). Each
reading goes through its sensor's own preprocessing (`Sensor.frame`, as in training). The node
refuses to start (exit 2) when a topic it reads carries another message type than it expects.

Safety: no frame for `watchdog_timeout` seconds (steady clock,
so it also fires when a simulator's /clock stops) -> a stop command, repeated every
`watchdog_timeout` while no frame comes (a lockstep simulator steps on it and sends one);
a NaN or out-of-range network output -> stop and an error in the log; speeds above
`max_speed` are limited;
`~/enable` (std_srvs/SetBool) enables or disables driving (disabling publishes a stop);
Ctrl-C or SIGTERM publishes a stop before the node exits. `throttle_scale` and `max_speed`
can be changed while the node runs (`ros2 param set`), for calibrating the throttle.

    ros2 run deepracer_rl inference_node --ros-args -p model:=runs/demo/export
    ros2 service call /inference_node/enable std_srvs/srv/SetBool "{data: true}"

docs/car.md says how to run it on a DeepRacer.
"""

from __future__ import annotations

import functools
import math
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import Twist
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, LaserScan
from std_srvs.srv import SetBool

from ..action_space import SPEED_MAX
from ..car import CarSpec
from ..inference import Command, PolicyRunner, ServoMapping, UnsafeOutput, load_policy, twist
from ..lidar import MAX_ANGLE, MIN_ANGLE, SAMPLES
from ..policy import PolicyLoadError
from . import contract
from .image import image_to_rgb

NODE_NAME = "inference_node"
PROFILES = {
    # parameter defaults per profile; every one can still be set on its own
    "sim": {
        "image_topic": contract.SENSOR_TOPICS["FRONT_FACING_CAMERA"][0],
        "image_type": "Image",
        "cmd_vel_topic": contract.CMD_VEL,
        "servo_topic": "",
        "throttle_scale": 1.0,
        "enabled": True,
        "car_services": False,
        "stereo_topics": ",".join(contract.SENSOR_TOPICS["STEREO_CAMERAS"]),
        "scan_topic": contract.SCAN,
    },
    "car": {
        "image_topic": contract.CAR_CAMERA,
        "image_type": "CameraMsg",
        "cmd_vel_topic": "",
        "servo_topic": contract.CAR_AUTO_DRIVE,
        "throttle_scale": 0.0,  # the navigation node's start value: no throttle until the console sets one
        "enabled": False,
        "car_services": True,
        "stereo_topics": contract.CAR_CAMERA,  # camera_pkg's CameraMsg carries both images
        "scan_topic": contract.CAR_SCAN,
    },
}
IMAGE_TYPES = ("Image", "CompressedImage", "CameraMsg")
# The ROS type name of each message type the node reads (checked against the graph at start).
TYPE_NAMES = {
    "Image": "sensor_msgs/msg/Image",
    "CompressedImage": "sensor_msgs/msg/CompressedImage",
    "CameraMsg": "deepracer_interfaces_pkg/msg/CameraMsg",
    "LaserScan": "sensor_msgs/msg/LaserScan",
}
TYPE_CHECK_SECONDS = 5.0  # how long after start the graph is watched for topics of another type
CAR_PACKAGE_HELP = (
    "deepracer_interfaces_pkg is not importable: {what}. On a DeepRacer, source the car's own "
    "workspace first (source /opt/aws/deepracer/lib/setup.bash); in deepracer_rl's venv, "
    "`make venv` builds it (tools/build_interfaces.py)."
)


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG) -> (H, W, 3) RGB uint8."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode the compressed image (format {msg.format!r})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def car_interfaces() -> Any:
    """The deepracer_interfaces_pkg module (msg and srv imported), or None when it is not importable."""
    try:
        import deepracer_interfaces_pkg.msg
        import deepracer_interfaces_pkg.srv
    except ImportError:
        return None
    return deepracer_interfaces_pkg


def camera_msg_pair(msg: Any, topic: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The stereo pair of a DeepRacer CameraMsg: (left, right) RGB uint8 from `images[0]` and `images[1]`."""
    if len(msg.images) < 2:
        raise ValueError(
            f"CameraMsg on {topic or 'the camera topic'} holds {len(msg.images)} image(s), a stereo pair needs 2"
        )
    decoded = []
    for image in msg.images[:2]:
        decoded.append(compressed_to_rgb(image) if isinstance(image, CompressedImage) else image_to_rgb(image, topic))
    return decoded[0], decoded[1]


def scan_ranges(msg: LaserScan, topic: str | None = None) -> np.ndarray:
    """A LaserScan's ranges (m; NaN and out-of-range values: no hit, inf) at the 64 beam angles the
    lidar sensors take (`lidar.MIN_ANGLE`..`MAX_ANGLE` in the laser frame): as published when the scan
    has exactly those 64 samples (sim_node), else each beam the nearest sample in angle (a denser
    scan, e.g. the car's rplidar; its own filtering on the car is not reproduced)."""
    ranges = np.asarray(msg.ranges, dtype=np.float64)
    if len(ranges) == 0 or not (math.isfinite(msg.angle_min) and msg.angle_increment != 0):
        raise ValueError(f"LaserScan on {topic or 'the scan topic'} holds no usable ranges ({len(ranges)} samples)")
    usable = np.isfinite(ranges) & (ranges >= msg.range_min) & (ranges <= msg.range_max)
    ranges = np.where(usable, ranges, np.inf)
    wanted = np.linspace(MIN_ANGLE, MAX_ANGLE, SAMPLES)
    angles = msg.angle_min + msg.angle_increment * np.arange(len(ranges))
    if len(ranges) == SAMPLES and np.allclose(angles, wanted, atol=1e-3):
        return ranges
    gap = np.abs((wanted[:, None] - angles[None, :] + math.pi) % (2 * math.pi) - math.pi)
    return ranges[np.argmin(gap, axis=1)]


def camera_msg_to_rgb(msg: Any, topic: str | None = None) -> np.ndarray:
    """The front camera of a DeepRacer CameraMsg -> (H, W, 3) RGB uint8.

    `images[0]` is the front camera (the left one of a stereo pair, camera_node.cpp). The stock
    Foxy packages put sensor_msgs/Image (bgr8) there, the community's Jazzy build
    sensor_msgs/CompressedImage (JPEG); both are decoded.
    """
    if not msg.images:
        raise ValueError(f"CameraMsg on {topic or 'the camera topic'} holds no image")
    image = msg.images[0]
    if isinstance(image, CompressedImage):
        return compressed_to_rgb(image)
    return image_to_rgb(image, topic)


class InferenceNode(Node):
    """Camera frames -> ONNX policy -> /cmd_vel and/or the DeepRacer servo message."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)  # node_kwargs: e.g. parameter_overrides, context

        def declare(name: str, default: Any, description: str) -> Any:
            return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

        profile = declare("profile", "sim", "sim | car: sets the defaults of the parameters below")
        if profile not in PROFILES:
            raise ValueError(f"parameter 'profile' must be one of {', '.join(PROFILES)}, got {profile!r}")
        defaults = PROFILES[profile]
        model = declare("model", "", "export dir (model.onnx + model_metadata.json) or its model.xml (OpenVINO)")
        image_topic = declare("image_topic", defaults["image_topic"], "camera topic")
        image_type = declare("image_type", defaults["image_type"], f"camera message type: {' | '.join(IMAGE_TYPES)}")
        cmd_vel_topic = declare("cmd_vel_topic", defaults["cmd_vel_topic"], "Twist output ('' = off)")
        servo_topic = declare("servo_topic", defaults["servo_topic"], "DeepRacer ServoCtrlMsg output ('' = off)")
        throttle_scale = declare(
            "throttle_scale",
            defaults["throttle_scale"],
            "servo throttle multiplier in (0, 1] (the console's maximum speed); < 0 flips",
        )
        max_speed = declare("max_speed", SPEED_MAX, "speed limit, m/s (commands above it are limited)")
        self.watchdog_timeout = declare("watchdog_timeout", 0.5, "seconds without a camera frame before stopping")
        self.enabled = declare("enabled", defaults["enabled"], "drive from the start (else wait for ~/enable)")
        car_services = declare(
            "car_services", defaults["car_services"], "answer ctrl_pkg's inference_pkg / navigation services"
        )
        threads = declare("threads", 1, "inference threads (onnxruntime / OpenVINO)")
        stereo_topics = declare(
            "stereo_topics",
            defaults["stereo_topics"],
            "STEREO_CAMERAS: left,right Image topics, or one CameraMsg topic (image_type CameraMsg) with both",
        )
        scan_topic = declare("scan_topic", defaults["scan_topic"], "a lidar's sensor_msgs/LaserScan topic")
        self.sync_tolerance = declare(
            "sync_tolerance", 0.05, "seconds the stamps of one set of sensor readings may differ by"
        )
        if not model:
            raise ValueError("parameter 'model' is required: the export directory (model.onnx + model_metadata.json)")
        if not (max_speed > 0 and self.watchdog_timeout > 0):
            raise ValueError("max_speed and watchdog_timeout must be positive")
        if image_type not in IMAGE_TYPES:
            raise ValueError(f"parameter 'image_type' must be one of {', '.join(IMAGE_TYPES)}, got {image_type!r}")
        car = car_interfaces()
        if car is None and image_type == "CameraMsg":
            raise ValueError(CAR_PACKAGE_HELP.format(what=f"cannot subscribe to CameraMsg on {image_topic}"))

        self.policy = load_policy(model, threads=int(threads))  # .xml: OpenVINO; PolicyLoadError names the file
        unsubscribable = [name for name in self.policy.actions.sensor if name not in contract.SENSOR_TOPICS]
        if unsubscribable:
            raise ValueError(
                f"{model}: the policy reads sensor(s) {', '.join(unsubscribable)}, which the topic contract "
                f"does not carry (it has {', '.join(contract.SENSOR_TOPICS)})"
            )
        self.runner = PolicyRunner(self.policy, max_speed=float(max_speed))
        self.wheelbase = CarSpec.from_urdf().wheelbase
        self.servo_map = ServoMapping.for_actions(self.policy.actions, float(throttle_scale))

        self.cmd_pub = self.create_publisher(Twist, cmd_vel_topic, contract.command_qos()) if cmd_vel_topic else None
        self.servo_pub = None
        if servo_topic and car is None:
            self.get_logger().warning(
                CAR_PACKAGE_HELP.format(what=f"no ServoCtrlMsg is published on {servo_topic}")
                + " Mapped servo values are logged at debug level."
            )
        elif servo_topic:
            self.servo_type = car.msg.ServoCtrlMsg
            # The navigation node's publisher QoS (reliable, keep last 1): it serves ctrl_pkg's and
            # servo_pkg's best-effort subscriptions as well as reliable ones.
            self.servo_pub = self.create_publisher(self.servo_type, servo_topic, contract.car_auto_drive_qos())
        # The community's Jazzy ServoCtrlMsg carries the camera stamp of the frame it answers.
        fields = self.servo_type.get_fields_and_field_types() if self.servo_pub is not None else {}
        self._servo_stamp = "source_stamp" in fields
        if image_type == "CameraMsg":
            msg_type, self._decode = car.msg.CameraMsg, lambda msg: camera_msg_to_rgb(msg, image_topic)
        elif image_type == "CompressedImage":
            msg_type, self._decode = CompressedImage, compressed_to_rgb
        else:
            msg_type, self._decode = Image, lambda msg: image_to_rgb(msg, image_topic)
        # Best effort matches every camera publisher (reliable ones too); depth 1: act on the newest frame.
        camera_qos = contract.sensor_qos(ReliabilityPolicy.BEST_EFFORT)
        camera_qos.depth = 1
        self.sensor_names = tuple(self.policy.actions.sensor)
        self.expected_types: dict[str, str] = {}  # topic -> the ROS type it must carry
        self.fatal: str | None = None  # set when a topic turns out to carry another type: main() exits 2
        if self.sensor_names == ("FRONT_FACING_CAMERA",):
            self.create_subscription(msg_type, image_topic, self._on_image, camera_qos)
            self.expected_types[image_topic] = TYPE_NAMES[image_type]
        else:
            self._streams: dict[str, Any] = {}  # stream -> decode(msg) -> (sensor name, data part)
            self._latest: dict[str, tuple[int, Any]] = {}  # stream -> (stamp ns, message)
            self._acted_stamp: int | None = None
            for name in self.sensor_names:
                if name == "FRONT_FACING_CAMERA":
                    self._add_stream(name, image_topic, image_type, msg_type, self._decode, camera_qos)
                elif name == "STEREO_CAMERAS" and image_type == "CameraMsg":
                    topic = stereo_topics.split(",")[0].strip()
                    decode = functools.partial(camera_msg_pair, topic=topic)
                    self._add_stream(name, topic, image_type, msg_type, decode, camera_qos)
                elif name == "STEREO_CAMERAS":
                    topics = [t.strip() for t in stereo_topics.split(",") if t.strip()]
                    if len(topics) != 2:
                        raise ValueError(
                            f"parameter 'stereo_topics' must name the left and right image topics, "
                            f"got {stereo_topics!r}"
                        )
                    for side, topic in zip(("left", "right"), topics):
                        decode = (
                            compressed_to_rgb
                            if image_type == "CompressedImage"
                            else functools.partial(image_to_rgb, topic=topic)
                        )
                        self._add_stream(f"{name}/{side}", topic, image_type, msg_type, decode, camera_qos)
                else:  # a lidar
                    decode = functools.partial(scan_ranges, topic=scan_topic)
                    self._add_stream(name, scan_topic, "LaserScan", LaserScan, decode, camera_qos)
        self._check_topic_types()
        self._type_check_until = time.monotonic() + TYPE_CHECK_SECONDS
        self._type_timer = self.create_timer(0.2, self._on_type_check, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.create_service(SetBool, "~/enable", self._on_enable)
        if car_services and car is None:
            self.get_logger().warning(CAR_PACKAGE_HELP.format(what="ctrl_pkg's services are not offered"))
        elif car_services:
            self._create_car_services(car)
        # The watchdog runs on the steady clock: a stalled simulator stops /clock too.
        self._watchdog = self.create_timer(
            self.watchdog_timeout, self._on_watchdog, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.last_frame = None  # time.monotonic() of the newest frame
        self.stopped = True  # the last command sent was a stop (or none was sent)
        self.last_command = Command.stop()
        self._source_stamp = None  # header stamp of the frame the next command answers
        self._last_error_log = -math.inf
        self.get_logger().info(
            f"profile {profile}: {self.policy.root} ({self.policy.runtime}, {self.policy.actions.kind}, "
            f"{len(self.policy.actions.actions) if self.policy.actions.kind == 'discrete' else 2} outputs), "
            f"sensors {', '.join(self.expected_types)} -> "
            f"{cmd_vel_topic or '-'} / {servo_topic or '-'}"
            f"{f' (ServoCtrlMsg, throttle scale {throttle_scale:g})' if self.servo_pub else ''}; "
            f"{'enabled' if self.enabled else 'disabled: call ~/enable (or start the car in autonomous mode) to drive'}"
        )

    def _create_car_services(self, car: Any) -> None:
        """The services ctrl_pkg calls on the stock inference and navigation nodes (it waits for all four)."""
        self.create_service(car.srv.InferenceStateSrv, contract.CAR_INFERENCE_STATE, self._on_inference_state)
        self.create_service(car.srv.NavThrottleSrv, contract.CAR_NAVIGATION_THROTTLE, self._on_navigation_throttle)
        self.create_service(car.srv.LoadModelSrv, contract.CAR_LOAD_MODEL, self._on_load_model)
        self.create_service(car.srv.LoadModelSrv, contract.CAR_LOAD_ACTION_SPACE, self._on_load_model)

    def _add_stream(self, stream: str, topic: str, type_name: str, msg_type: Any, decode: Any, qos: Any) -> None:
        """Subscribe to one topic of a several-sensor policy; `stream` names the data part it gives."""
        self._streams[stream] = decode
        self.expected_types[topic] = TYPE_NAMES[type_name]
        self.create_subscription(msg_type, topic, functools.partial(self._on_reading, stream), qos)

    def _check_topic_types(self) -> None:
        """Refuse (`fatal`) a topic this node reads whose publishers send another message type."""
        for topic, wanted in self.expected_types.items():
            types = sorted({info.topic_type for info in self.get_publishers_info_by_topic(topic)} - {wanted})
            if types:
                self.fatal = (
                    f"topic {topic} carries {', '.join(types)}, but this policy reads {wanted} there "
                    f"(sensors {', '.join(self.sensor_names)}); set the topic parameters to the right topics"
                )
                return

    def _on_type_check(self) -> None:
        if time.monotonic() > self._type_check_until:
            self._type_timer.cancel()
            return
        self._check_topic_types()

    # -- inputs ----------------------------------------------------------------------------
    def _on_reading(self, stream: str, msg: Any) -> None:
        """One message of a several-sensor policy: act once every stream has one within `sync_tolerance`."""
        images = getattr(msg, "images", None)
        header = images[0].header if images else msg.header
        stamp = contract.stamp_ns(header.stamp)
        self._latest[stream] = (stamp, msg)
        if stream.startswith(("FRONT_FACING_CAMERA", "STEREO_CAMERAS")):
            self.last_frame = time.monotonic()
            self._watchdog.reset()
            if self._servo_stamp:
                self._source_stamp = header.stamp
        if not self.enabled or len(self._latest) < len(self._streams):
            return
        newest = max(t for t, _ in self._latest.values())
        tolerance = int(self.sync_tolerance * 1e9)
        for key in [k for k, (t, _) in self._latest.items() if newest - t > tolerance]:
            del self._latest[key]  # too old to pair with the newest reading
        if len(self._latest) < len(self._streams) or newest == self._acted_stamp:
            return
        self._acted_stamp = newest
        readings, self._latest = self._latest, {}

        def act() -> Command:
            data: dict[str, Any] = {}
            for key, (_, message) in readings.items():
                name, _, side = key.partition("/")
                value = self._streams[key](message)
                if side:
                    data.setdefault(name, [None, None])[0 if side == "left" else 1] = value
                else:
                    data[name] = value
            return self.runner.act_sensors(data)

        self._drive(act, "bad sensor reading")

    def _on_image(self, msg) -> None:
        self.last_frame = time.monotonic()
        self._watchdog.reset()
        if not self.enabled:
            return
        if self._servo_stamp:
            images = getattr(msg, "images", None)
            header = images[0].header if images else getattr(msg, "header", None)
            self._source_stamp = header.stamp if header is not None else None
        self._drive(lambda: self.runner.act(self._decode(msg)), "bad camera frame")

    def _drive(self, act: Callable[[], Command], bad_input: str) -> None:
        """Publish `act()`'s command; a stop instead when the policy's output is unsafe or the input
        cannot be decoded (ValueError: logged as `bad_input`)."""
        try:
            command = act()
        except UnsafeOutput as exc:
            self._error(f"{exc}: stopping")
            self.publish(Command.stop())
            return
        except ValueError as exc:  # an undecodable or unsupported reading
            self._error(f"{bad_input}: {exc}: stopping")
            self.publish(Command.stop())
            return
        self.publish(command)

    def _on_watchdog(self) -> None:
        """Every watchdog_timeout without a frame: a stop (repeated, so it also kicks a lockstep simulator)."""
        if not self.enabled:
            return
        if self.last_frame is not None and time.monotonic() - self.last_frame < self.watchdog_timeout * 0.999:
            return
        if not self.stopped:
            self.get_logger().warning(f"no camera frame for {self.watchdog_timeout:g} s: stopping")
        self.runner.reset()
        self.publish(Command.stop())

    def set_enabled(self, enabled: bool) -> str:
        """Start or stop driving (a stop is published when disabled); the state as a word."""
        self.enabled = bool(enabled)
        self.runner.reset()
        if not self.enabled:
            self.publish(Command.stop())
        state = "enabled" if self.enabled else "disabled (stopped)"
        self.get_logger().info(state)
        return state

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        response.message = self.set_enabled(request.data)
        response.success = True
        return response

    def _on_inference_state(self, request: Any, response: Any) -> Any:
        """ctrl_pkg's start / stop of autonomous driving (InferenceStateSrv: start 1 / 0 for task_type 0)."""
        if request.task_type != contract.CAR_RL_TASK:
            self.get_logger().error(f"inference_state: unknown task_type {request.task_type} (only RL, 0)")
            response.error = 1
            return response
        self.set_enabled(bool(request.start))
        response.error = 0
        return response

    def _on_navigation_throttle(self, request: Any, response: Any) -> Any:
        """The console's maximum speed (NavThrottleSrv, 0..1): becomes throttle_scale, as in the navigation node."""
        result = self.set_parameters([Parameter("throttle_scale", value=float(request.throttle))])[0]
        if result.successful:
            self.get_logger().info(f"throttle scale {float(request.throttle):g} (navigation_throttle)")
        else:
            self.get_logger().error(f"navigation_throttle {request.throttle}: {result.reason}")
        response.error = 0 if result.successful else 1
        return response

    def _on_load_model(self, request: Any, response: Any) -> Any:
        """A model chosen in the console (LoadModelSrv): refused, this node drives the export it was started with."""
        self.get_logger().warning(
            f"refusing to load {request.artifact_path or 'a model'} from the console: this node drives "
            f"{self.policy.root} (restart it with model:=DIR to change the model)"
        )
        response.error = 1
        return response

    def _on_set_parameters(self, params) -> SetParametersResult:
        """throttle_scale and max_speed can be changed while driving (calibration)."""
        servo_map, max_speed = self.servo_map, self.runner.max_speed
        for param in params:
            if param.name == "throttle_scale":
                try:
                    servo_map = ServoMapping.for_actions(self.policy.actions, float(param.value))
                except (TypeError, ValueError) as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
            elif param.name == "max_speed":
                if not float(param.value) > 0:
                    return SetParametersResult(successful=False, reason="max_speed must be positive")
                max_speed = float(param.value)
            elif param.name in (
                "profile",
                "model",
                "image_topic",
                "image_type",
                "car_services",
                "cmd_vel_topic",
                "servo_topic",
                "watchdog_timeout",
                "threads",
                "enabled",
                "stereo_topics",
                "scan_topic",
                "sync_tolerance",
            ):
                return SetParametersResult(successful=False, reason=f"{param.name} is read at start only")
        self.servo_map, self.runner.max_speed = servo_map, max_speed
        return SetParametersResult(successful=True)

    # -- outputs ---------------------------------------------------------------------------
    def publish(self, command: Command) -> None:
        self.last_command = command
        self.stopped = command.is_stop
        if self.cmd_pub is not None:
            msg = Twist()
            msg.linear.x, msg.angular.z = twist(command, self.wheelbase)
            self.cmd_pub.publish(msg)
        angle, throttle = self.servo_map(command)
        if self.servo_pub is not None:
            servo = self.servo_type()
            servo.angle, servo.throttle = angle, throttle
            if self._servo_stamp and self._source_stamp is not None and not command.is_stop:
                servo.source_stamp = self._source_stamp
            self.servo_pub.publish(servo)
        self.get_logger().debug(
            f"steer {command.steering_deg:.1f} deg, {command.speed:.2f} m/s; "
            f"servo angle {angle:.3f} throttle {throttle:.3f}"
        )

    def stop(self) -> None:
        """Publish a stop and give the middleware a moment to deliver it (shutdown)."""
        self.publish(Command.stop())
        for pub in (self.cmd_pub, self.servo_pub):
            if pub is not None:
                pub.wait_for_all_acked(Duration(seconds=0.5))

    def _error(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 1.0:  # at most one line a second at 15 Hz
            self.get_logger().error(text)
            self._last_error_log = now


def main(args: list[str] | None = None) -> None:
    # Our own SIGINT/SIGTERM handling keeps the context alive, so the stop can still be published.
    stop_requested = contract.init_node_process(args)
    node = None
    code = 0
    try:
        node = InferenceNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok() and not stop_requested.is_set():  # short waits: Ctrl-C is seen within 0.1 s
            executor.spin_once(timeout_sec=0.1)
            if node.fatal is not None:
                print(f"{NODE_NAME}: error: {node.fatal}", file=sys.stderr)
                code = 2
                break
    except PolicyLoadError as exc:
        print(f"{NODE_NAME}: error: {exc}", file=sys.stderr)
        code = 2
    except ValueError as exc:
        print(f"{NODE_NAME}: error: {exc}", file=sys.stderr)
        code = 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if node is not None:
            node.stop()
            node.get_logger().info("stopped")
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
