"""The `car` profile of inference_node against stand-ins of the DeepRacer's own nodes, over real DDS.

The stand-ins publish and subscribe as the car's packages do (their sources: aws-deepracer
camera_pkg camera_node.cpp, ctrl_pkg ctrl_node.cpp / ctrl_state.cpp, servo_pkg servo_node.cpp):
camera_pkg publishes deepracer_interfaces_pkg/CameraMsg on /camera_pkg/video_mjpeg (reliable,
keep last 1) with one 160x120 bgr8 Image; ctrl_pkg waits for the inference and navigation
services, starts and stops autonomous driving through /inference_pkg/inference_state, sets the
console's maximum speed through /deepracer_navigation_pkg/navigation_throttle, subscribes to
/deepracer_navigation_pkg/auto_drive (best effort, keep last 1) and, while started, passes every
ServoCtrlMsg on to /ctrl_pkg/servo_msg, where servo_pkg subscribes (best effort, keep last 1).
The node under test runs a real exported ONNX policy (conftest `cloned_policy`) in its own
process group. The messages are those built by tools/build_interfaces.py.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from processes import SimProcess

from deepracer_rl.inference import Command, PolicyRunner, ServoMapping
from deepracer_rl.policy import OnnxPolicy

car_msgs = pytest.importorskip(
    "deepracer_interfaces_pkg.msg", reason="deepracer_interfaces_pkg is not built: run tools/build_interfaces.py"
)
car_srvs = pytest.importorskip("deepracer_interfaces_pkg.srv")

from deepracer_rl.ros import contract  # noqa: E402  (after the skip: rclpy only when the messages exist)

CAMERA_SIZE = (160, 120)  # camera_node.cpp DEFAULT_IMAGE_WIDTH / HEIGHT (resize_images, the default)
THROTTLE = 0.6  # the console's maximum speed, 60 %


def camera_frame_bgr(arc: float = 1.0) -> np.ndarray:
    """What camera_node publishes: the camera picture resized to 160x120, bgr8."""
    from test_inference import camera_frame

    rgb = cv2.resize(camera_frame(arc), CAMERA_SIZE, interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def camera_msg(bgr: np.ndarray):
    """A CameraMsg as camera_node.cpp builds it: one Image, encoding bgr8, an empty header."""
    from sensor_msgs.msg import Image

    height, width = bgr.shape[:2]
    image = Image(height=height, width=width, encoding="bgr8", is_bigendian=0, step=width * 3)
    image.data = bgr.tobytes()
    return car_msgs.CameraMsg(images=[image])


@pytest.fixture(scope="module")
def car():
    """The stand-ins of camera_pkg, ctrl_pkg and servo_pkg in one rclpy context of the test process."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("deepracer_stand_ins", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    class Car:
        """camera_node, ctrl_node (autonomous mode) and servo_node as the car runs them."""

        def __init__(self):
            self.node = node
            self.camera_pub = node.create_publisher(car_msgs.CameraMsg, contract.CAR_CAMERA, contract.car_camera_qos())
            self.servo_pub = node.create_publisher(car_msgs.ServoCtrlMsg, contract.CAR_SERVO, contract.car_servo_qos())
            self.auto_drive: list[tuple[float, float, float]] = []  # (time, angle, throttle) the node published
            self.servo: list[tuple[float, float, float]] = []  # what servo_pkg received
            node.create_subscription(
                car_msgs.ServoCtrlMsg, contract.CAR_AUTO_DRIVE, self._on_auto_drive, contract.car_servo_qos()
            )
            node.create_subscription(
                car_msgs.ServoCtrlMsg,
                contract.CAR_SERVO,
                lambda m: self.servo.append((time.monotonic(), m.angle, m.throttle)),
                contract.car_servo_qos(),
            )
            self.clients = {
                name: node.create_client(srv, name)
                for name, srv in (
                    (contract.CAR_INFERENCE_STATE, car_srvs.InferenceStateSrv),
                    (contract.CAR_LOAD_MODEL, car_srvs.LoadModelSrv),
                    (contract.CAR_LOAD_ACTION_SPACE, car_srvs.LoadModelSrv),
                    (contract.CAR_NAVIGATION_THROTTLE, car_srvs.NavThrottleSrv),
                )
            }
            self.active = False  # ctrl_pkg's AutoDriveCtrl::isActive_
            self.frame = camera_msg(camera_frame_bgr())
            self.last_frame = None

        def _on_auto_drive(self, msg) -> None:
            """ctrl_pkg's AutoDriveCtrl::servoCB: record, and pass it on to servo_pkg while started."""
            self.auto_drive.append((time.monotonic(), msg.angle, msg.throttle))
            if self.active:
                self.servo_pub.publish(car_msgs.ServoCtrlMsg(angle=msg.angle, throttle=msg.throttle))

        def spin(self, seconds: float, frames: bool = False, rate: float = 15.0) -> None:
            end = time.monotonic() + seconds
            next_frame = time.monotonic()
            while (now := time.monotonic()) < end:
                if frames and now >= next_frame:
                    self.camera_pub.publish(self.frame)
                    self.last_frame = time.monotonic()
                    next_frame += 1.0 / rate
                executor.spin_once(timeout_sec=min(0.005, max(0.0, end - now)))

        def wait_for(self, condition, timeout: float, frames: bool = False) -> bool:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if condition():
                    return True
                self.spin(0.05, frames=frames)
            return condition()

        def call(self, name: str, request, timeout: float = 10.0):
            future = self.clients[name].call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=timeout)
            assert future.done(), f"{name} did not answer"
            return future.result()

        def wait_for_services(self, timeout: float = 20.0) -> None:
            """ctrl_pkg's AutoDriveCtrl constructor: it blocks until all four services exist."""
            for name, client in self.clients.items():
                assert client.wait_for_service(timeout_sec=timeout), f"ctrl_pkg would wait forever for {name}"

        def set_active(self, active: bool) -> None:
            """ctrl_pkg's AutoDriveCtrl::setStateActive (what /ctrl_pkg/enable_state does in autonomous mode)."""
            self.active = active
            reply = self.call(
                contract.CAR_INFERENCE_STATE,
                car_srvs.InferenceStateSrv.Request(start=int(active), task_type=contract.CAR_RL_TASK),
            )
            assert reply.error == 0
            if not active:
                self.servo_pub.publish(car_msgs.ServoCtrlMsg(angle=0.0, throttle=0.0))

    yield Car()
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)


def moving(commands) -> list:
    return [c for c in commands if c[2] != 0.0]


def test_car_profile_drives_the_stock_stack_from_camera_msg_to_servo_msg(cloned_policy, car, tmp_path):
    """CameraMsg bgr8 in -> ONNX policy -> ServoCtrlMsg out through ctrl_pkg: start, stall, stop, start again."""
    node = SimProcess(
        tmp_path / "car.log",
        ["deepracer_rl.ros.inference_node", "--ros-args", "-p", "profile:=car", "-p", f"model:={cloned_policy}"],
    )
    try:
        car.wait_for_services()
        assert car.wait_for(
            lambda: car.camera_pub.get_subscription_count() > 0 and car.node.count_publishers(contract.CAR_AUTO_DRIVE),
            15.0,
        ), node.output()
        # What the node should send for this frame: the navigation node's mapping of the policy's action.
        runner = PolicyRunner(OnnxPolicy(cloned_policy))
        command = runner.act(cv2.cvtColor(camera_frame_bgr(), cv2.COLOR_BGR2RGB))
        assert not command.is_stop
        want = ServoMapping.for_actions(runner.actions, THROTTLE)(command)

        # Started in manual mode: frames come, nothing is published.
        car.spin(1.0, frames=True)
        assert car.auto_drive == [] and car.servo == []

        # The console: autonomous mode, maximum speed 60 %, start.
        assert car.call(contract.CAR_NAVIGATION_THROTTLE, car_srvs.NavThrottleSrv.Request(throttle=THROTTLE)).error == 0
        car.set_active(True)
        assert car.wait_for(lambda: len(moving(car.servo)) >= 10, 10.0, frames=True), node.output()
        for _, angle, throttle in moving(car.servo):
            assert (angle, throttle) == pytest.approx(want, abs=1e-6)
        assert -1.0 <= want[0] <= 1.0 and 0.0 < want[1] <= THROTTLE

        # The camera stalls: a stop within the watchdog's 0.5 s, nothing moving after it.
        car.spin(1.2)
        last = car.last_frame
        stops = [c for c in car.servo if c[0] > last and c[1:] == (0.0, 0.0)]
        assert stops and stops[0][0] - last <= 0.6, car.servo[-5:]
        assert not moving([c for c in car.servo if c[0] > last + 0.1])

        # Frames again: it drives again.
        car.servo.clear()
        assert car.wait_for(lambda: len(moving(car.servo)) >= 5, 10.0, frames=True)

        # Stop in the console: the node publishes a stop and nothing that moves while frames keep coming.
        car.set_active(False)
        stopped = time.monotonic()
        car.spin(1.0, frames=True)
        after = [c for c in car.auto_drive if c[0] > stopped - 0.5]
        assert after and after[-1][1:] == (0.0, 0.0), car.auto_drive[-5:]
        assert not moving([c for c in car.auto_drive if c[0] > stopped + 0.2])
        assert not moving([c for c in car.servo if c[0] > stopped + 0.2])

        # Start again: drives.
        car.auto_drive.clear()
        car.set_active(True)
        assert car.wait_for(lambda: len(moving(car.auto_drive)) >= 5, 10.0, frames=True)

        # A model chosen in the console is refused (this node drives its own export).
        request = car_srvs.LoadModelSrv.Request(artifact_path="/opt/models/x/model.xml")
        reply = car.call(contract.CAR_LOAD_MODEL, request)
        assert reply.error == 1
        assert node.interrupt() == 0
        log = node.output() if not node.log.closed else node.log_path.read_text()
        assert "refusing to load /opt/models/x/model.xml" in log and "Traceback" not in log
    finally:
        if not node.log.closed:
            node.interrupt()
        assert not node.group_alive()


def test_car_profile_without_the_car_messages_fails_with_what_to_do(cloned_policy):
    """Where deepracer_interfaces_pkg is missing, the car profile exits with one line saying what to source or build."""
    code = (
        "import sys; sys.modules['deepracer_interfaces_pkg'] = None\n"
        "from deepracer_rl.ros.inference_node import main\n"
        f"main(['inference_node', '--ros-args', '-p', 'profile:=car', '-p', 'model:={cloned_policy}'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "deepracer_interfaces_pkg is not importable: cannot subscribe to CameraMsg on /camera_pkg/video_mjpeg" in out
    assert "source /opt/aws/deepracer/lib/setup.bash" in out and "tools/build_interfaces.py" in out
    assert "Traceback" not in out


def test_community_jazzy_camera_msg_with_jpeg_frames_decodes_like_the_stock_bgr8_one():
    """The community's Jazzy CameraMsg carries CompressedImage (JPEG via cv_bridge); the node decodes both."""
    from sensor_msgs.msg import CompressedImage

    from deepracer_rl.ros.inference_node import camera_msg_to_rgb

    bgr = camera_frame_bgr()
    stock = camera_msg_to_rgb(camera_msg(bgr))
    np.testing.assert_array_equal(stock, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    ok, jpeg = cv2.imencode(".jpg", bgr)
    assert ok
    community = SimpleNamespace(images=[CompressedImage(format="bgr8; jpeg compressed bgr8", data=jpeg.tobytes())])
    decoded = camera_msg_to_rgb(community)
    assert decoded.shape == stock.shape
    assert np.abs(decoded.astype(int) - stock.astype(int)).mean() < 3.0  # JPEG loss only
    with pytest.raises(ValueError, match="holds no image"):
        camera_msg_to_rgb(car_msgs.CameraMsg(images=[]), contract.CAR_CAMERA)


def test_servo_mapping_is_the_navigation_nodes():
    """deepracer_navigation_node.py: angle = steering / max |steering|; throttle = scale * (a v^2 + b v)."""
    from deepracer_rl.action_space import ActionSpace

    actions = ActionSpace.from_metadata(
        {
            "action_space": [
                {"steering_angle": s, "speed": v} for s, v in ((30.0, 0.8), (-30.0, 0.8), (0.0, 0.8), (15.0, 0.4))
            ],
            "sensor": ["FRONT_FACING_CAMERA"],
            "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
            "training_algorithm": "clipped_ppo",
            "action_space_type": "discrete",
            "version": "5",
        }
    )
    servo = ServoMapping.for_actions(actions, 0.7)
    top = 0.8  # the navigation node: a = (2 * 1.0 - 4 * 0.8) / top^2, b = (4 * 0.8 - 1.0) / top
    a, b = (2.0 - 3.2) / top**2, (3.2 - 1.0) / top
    for steer, speed in ((30.0, 0.8), (15.0, 0.4), (-30.0, 0.8)):
        angle, throttle = servo(Command(steer, speed))
        assert angle == pytest.approx(steer / 30.0)
        assert throttle == pytest.approx(0.7 * max(min(a * speed**2 + b * speed, 1.0), -1.0))
    assert math.isclose(servo(Command(0.0, 0.4))[1], 0.7 * 0.8)
