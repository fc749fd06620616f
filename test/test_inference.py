"""The inference path: cloned policy, preprocessing parity, command mappings and the ROS node.

Real components only: the baseline-cloned PPO policy exported to ONNX (conftest
`cloned_policy`), onnxruntime, rclpy over DDS on loopback. Nodes under test run in their
own process group and are stopped with SIGINT, waited for, then killed and reaped.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from processes import SimProcess

from deepracer_rl.action_space import ActionSpace
from deepracer_rl.camera import CameraRenderer
from deepracer_rl.car import CarSpec
from deepracer_rl.episode import EpisodeJudge, EpisodeStatus, StartRules
from deepracer_rl.evaluate import policy_driver, run_laps
from deepracer_rl.inference import (
    Command,
    PolicyRunner,
    ServoMapping,
    UnsafeOutput,
    check_outputs,
    command_from_outputs,
    twist,
)
from deepracer_rl.observation import FrameStack, ObservationSpec, observation_from_image
from deepracer_rl.policy import CHECKSUMS_NAME, METADATA_NAME, ONNX_NAME, OnnxPolicy
from deepracer_rl.race import RaceCore
from deepracer_rl.ros.bridge import observation_frame
from deepracer_rl.track import Track

REPO = Path(__file__).resolve().parents[1]
DISCRETE = ActionSpace.load(REPO / "config" / "model_metadata.json")
CONTINUOUS = ActionSpace.load(REPO / "config" / "model_metadata_continuous.json")
CAR = CarSpec.from_urdf()
TRACK = Track.load("reinvent_base")


# ---- helpers -----------------------------------------------------------------------------------


def camera_frame(arc: float = 0.0, lateral: float = 0.0) -> np.ndarray:
    """The 640x480 RGB camera image on reinvent_base, `arc` m along the centre line."""
    (point,), (heading,) = TRACK.point_at(np.array([arc]))
    normal = np.array([-math.sin(heading), math.cos(heading)])
    x, y = point + lateral * normal
    renderer = CameraRenderer(TRACK, CAR.camera, CAR.camera.width, CAR.camera.height, grayscale=False)
    return renderer.render(np.array([[x, y, heading]]))[0]


def constant_model(tmp_path: Path, value: float, frame_stack: int = 1) -> Path:
    """An export dir whose tiny hand-made ONNX graph outputs `value` for every action, whatever it sees."""
    import onnx
    from onnx import TensorProto, helper

    spec = ObservationSpec(80, 60, True, frame_stack)
    n = len(DISCRETE.actions)
    size = spec.channels * spec.height * spec.width
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["observation"], ["flat"]),
            helper.make_node("MatMul", ["flat", "zeros"], ["scores"]),
            helper.make_node("Add", ["scores", "value"], ["action"]),
        ],
        "constant_policy",
        [
            helper.make_tensor_value_info(
                "observation", TensorProto.FLOAT, ["batch", spec.channels, spec.height, spec.width]
            )
        ],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", n])],
        [
            helper.make_tensor("zeros", TensorProto.FLOAT, [size, n], np.zeros(size * n, dtype=np.float32)),
            helper.make_tensor("value", TensorProto.FLOAT, [n], np.full(n, value, dtype=np.float32)),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    out = tmp_path / f"constant_{value}_{frame_stack}"
    out.mkdir()
    onnx.save(model, str(out / ONNX_NAME))
    metadata = DISCRETE.to_metadata()
    metadata["observation"] = {
        "width": spec.width,
        "height": spec.height,
        "grayscale": True,
        "frame_stack": frame_stack,
    }
    (out / METADATA_NAME).write_text(json.dumps(metadata), encoding="utf-8")
    return out


INFERENCE_NODE = "deepracer_rl.ros.inference_node"


@pytest.fixture
def nodes(tmp_path):
    """Start inference nodes (test_ros's SimProcess: own process group, SIGINT, then SIGKILL and reap)."""
    started: list[SimProcess] = []

    def start(*params: str) -> SimProcess:
        node = SimProcess(
            tmp_path / f"inference{len(started)}.log",
            [INFERENCE_NODE, "--ros-args"] + [a for p in params for a in ("-p", p)],
        )
        started.append(node)
        return node

    yield start
    for node in started:
        if not node.log.closed:
            node.interrupt()
        assert not node.group_alive(), "an inference node process was left behind"


def log_of(node: SimProcess) -> str:
    return node.log_path.read_text()


@pytest.fixture(scope="module")
def ros():
    """An rclpy context and a test node: camera publisher, /cmd_vel recorder, service clients."""
    import rclpy
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry

    from deepracer_rl.ros import contract
    from deepracer_rl.ros.image import array_to_image

    contract.use_sim_node_fastdds_profile()  # this process writes 640x480 frames, as the simulator does
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("inference_test", context=context)
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    class Ros:
        commands: list[tuple[float, float, float]] = []  # (monotonic time, linear.x, angular.z)
        odometry: list = []  # nav_msgs/Odometry as received

        def __init__(self):
            self.node = node
            from sensor_msgs.msg import Image

            self.image_pub = node.create_publisher(Image, contract.IMAGE, contract.sensor_qos())
            node.create_subscription(Twist, contract.CMD_VEL, self._on_cmd, 50)
            odom_qos = contract.sensor_qos()
            odom_qos.depth = 200  # keep every sample of a lockstep run too
            node.create_subscription(Odometry, contract.ODOM, self.odometry.append, odom_qos)
            self.image = array_to_image(camera_frame(), "rgb8")
            self.last_image = None

        def _on_cmd(self, msg):
            self.commands.append((time.monotonic(), msg.linear.x, msg.angular.z))

        def spin(self, seconds: float, frames: bool = False, rate: float = 15.0) -> None:
            """Spin for `seconds`, publishing camera frames at `rate` Hz if `frames`."""
            end = time.monotonic() + seconds
            next_frame = time.monotonic()
            while (now := time.monotonic()) < end:
                if frames and now >= next_frame:
                    self.image_pub.publish(self.image)
                    self.last_image = time.monotonic()
                    next_frame += 1.0 / rate
                executor.spin_once(timeout_sec=min(0.005, max(0.0, end - now)))

        def wait_for(self, condition, timeout: float, frames: bool = False) -> bool:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if condition():
                    return True
                self.spin(0.05, frames=frames)
            return condition()

        def wait_connected(self, timeout: float = 15.0) -> None:
            ok = self.wait_for(
                lambda: self.image_pub.get_subscription_count() > 0 and node.count_publishers("/cmd_vel") > 0, timeout
            )
            assert ok, "the inference node did not connect to /camera/image_raw and /cmd_vel"

        def call(self, service_type, name: str, request, timeout: float = 10.0):
            client = node.create_client(service_type, name)
            try:
                assert client.wait_for_service(timeout_sec=timeout), f"{name} not available"
                future = client.call_async(request)
                executor.spin_until_future_complete(future, timeout_sec=timeout)
                assert future.done(), f"{name} did not answer"
                return future.result()
            finally:
                node.destroy_client(client)

    yield Ros()
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)


def moving(commands) -> list:
    return [c for c in commands if c[1] != 0.0]


# ---- the cloned policy -------------------------------------------------------------------------


def test_cloned_policy_completes_laps_in_process_at_80x60(cloned_policy):
    policy = OnnxPolicy(cloned_policy)
    assert policy.observation == ObservationSpec(80, 60, True, 1)
    core = RaceCore.create(
        track="reinvent_base", n_cars=1, metadata=policy.actions, observation=policy.observation, start=StartRules()
    )
    report = run_laps(core, policy_driver(policy), laps=2)
    assert report.completed_laps == 2, report.as_dict()


# ---- preprocessing parity ----------------------------------------------------------------------


def node_tensors(model: Path, messages, **params) -> list[np.ndarray]:
    """The network inputs an InferenceNode builds from these camera messages (its own callback)."""
    import rclpy
    from rclpy.parameter import Parameter

    from deepracer_rl.ros.inference_node import InferenceNode

    overrides = [Parameter("model", value=str(model)), Parameter("cmd_vel_topic", value="/parity/cmd_vel")]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = InferenceNode(context=context, parameter_overrides=overrides)
        try:
            tensors = []
            for msg in messages:
                node._on_image(msg)
                tensors.append(node.runner.stack.stack.copy())
            return tensors
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def rgb8(frame: np.ndarray):
    from deepracer_rl.ros.image import array_to_image

    return array_to_image(frame, "rgb8")


@pytest.mark.parametrize("frame_stack", [1, 3])
def test_node_and_env_make_the_same_input_tensor_from_the_same_frame(frame_stack, cloned_policy, tmp_path):
    model = cloned_policy if frame_stack == 1 else constant_model(tmp_path, 0.1, frame_stack)
    spec = OnnxPolicy(model).observation
    frames = [camera_frame(arc) for arc in (0.0, 0.5, 1.0, 1.5)]
    messages = [rgb8(f) for f in frames]
    got = node_tensors(model, messages)
    # The env side: RosRaceEnv's own frame handling (bridge.observation_frame: its image check
    # + observation_from_image), stacked as the env stacks; and the shared functions applied
    # to the array directly.
    env_stack, direct = FrameStack(spec), FrameStack(spec)
    for frame, msg, tensor in zip(frames, messages, got):
        want = env_stack.push(observation_frame(msg, spec))
        assert tensor.dtype == np.uint8 and tensor.shape == (spec.channels, spec.height, spec.width)
        np.testing.assert_array_equal(tensor, want)
        np.testing.assert_array_equal(tensor, direct.push(observation_from_image(frame, spec)))
    # The in-process env renders straight at 80x60: the same picture to about a gray level.
    core = RaceCore.create(track="reinvent_base", n_cars=1, observation=ObservationSpec(80, 60, True, 1))
    (point,), (heading,) = TRACK.point_at(np.array([1.5]))
    core.reset_cars([0], pose=np.array([point[0], point[1], heading]))
    core.observe(np.array([0]))
    diff = np.abs(core.stack[0].astype(int) - got[-1][-1:].astype(int))
    assert diff.mean() < 2.0, diff.mean()


def test_env_frame_errors_name_the_topic_and_encoding():
    from deepracer_rl.ros.image import ImageError, array_to_image

    gray = array_to_image(np.zeros((60, 80), np.uint8), "mono8")
    with pytest.raises(ImageError, match=r"image on /camera/image_raw \(encoding 'mono8'\): the policy needs RGB"):
        observation_frame(gray, ObservationSpec(80, 60, grayscale=False))
    short = array_to_image(np.zeros((60, 80, 3), np.uint8), "rgb8")
    short.data = short.data[:-3]
    with pytest.raises(ImageError, match=r"image on /camera/image_raw \(encoding 'rgb8'\): data has 14397 bytes"):
        observation_frame(short, ObservationSpec(80, 60, grayscale=True))


def test_compressed_frames_give_the_same_tensor_as_raw_ones(cloned_policy):
    import cv2
    from sensor_msgs.msg import CompressedImage

    frame = camera_frame(2.0)
    ok, png = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert ok
    raw = node_tensors(cloned_policy, [rgb8(frame)])
    compressed = node_tensors(
        cloned_policy, [CompressedImage(format="png", data=png.tobytes())], image_type="CompressedImage"
    )
    np.testing.assert_array_equal(raw[0], compressed[0])


# ---- command mappings --------------------------------------------------------------------------


def test_twist_is_speed_and_bicycle_yaw_rate_from_the_urdf_wheelbase():
    v, w = twist(Command(20.0, 1.5), CAR.wheelbase)
    assert v == 1.5
    assert w == pytest.approx(1.5 * math.tan(math.radians(20.0)) / CAR.wheelbase)
    assert twist(Command(-30.0, 2.0), CAR.wheelbase)[1] < 0  # right turn: negative yaw rate
    assert twist(Command.stop(), CAR.wheelbase) == (0.0, 0.0)


def test_servo_mapping_follows_the_deepracer_navigation_node():
    servo = ServoMapping.for_actions(DISCRETE)  # steering ±30°, top speed 2 m/s
    assert servo(Command(30.0, 2.0)) == pytest.approx((1.0, 1.0))  # v_max -> full throttle
    assert servo(Command(-15.0, 1.0)) == pytest.approx((-0.5, 0.8))  # v_max / 2 -> 0.8
    assert servo(Command.stop()) == (0.0, 0.0)
    half = ServoMapping.for_actions(DISCRETE, throttle_scale=0.5)
    assert half(Command(0.0, 2.0)) == pytest.approx((0.0, 0.5))
    continuous = ServoMapping.for_actions(CONTINUOUS)  # speed 0.8..2.5 m/s
    throttles = [continuous.throttle(v) for v in np.linspace(0.0, 2.5, 11)]
    assert throttles[-1] == pytest.approx(1.0) and np.all(np.diff(throttles) >= 0)  # clipped at 1
    with pytest.raises(ValueError, match="throttle_scale"):
        ServoMapping.for_actions(DISCRETE, throttle_scale=1.5)


def test_nan_or_out_of_range_outputs_are_rejected():
    with pytest.raises(UnsafeOutput, match="not finite"):
        check_outputs(np.array([0.5, np.nan] + [0.0] * 8), DISCRETE)
    with pytest.raises(UnsafeOutput, match="outside"):
        check_outputs(np.array([2.0] + [0.0] * 9), DISCRETE)
    with pytest.raises(UnsafeOutput, match="outside"):
        check_outputs(np.array([0.0, 1.5]), CONTINUOUS)
    with pytest.raises(UnsafeOutput, match="not finite"):
        check_outputs(np.array([np.inf, 0.0]), CONTINUOUS)
    assert command_from_outputs(np.array([1.0, 1.0]), CONTINUOUS) == Command(30.0, 2.5)
    assert command_from_outputs(np.array([1.0, 1.0]), CONTINUOUS, max_speed=1.2) == Command(30.0, 1.2)
    probs = np.zeros(10)
    probs[5] = 1.0
    assert command_from_outputs(probs, DISCRETE) == Command(0.0, 2.0)


def test_runner_drives_discrete_and_continuous_exports(cloned_policy, tmp_path):
    runner = PolicyRunner(OnnxPolicy(cloned_policy), max_speed=1.5)
    command = runner.act(camera_frame())
    assert command.speed <= 1.5 and abs(command.steering_deg) <= 30.0
    # A continuous export of an (untrained) PPO policy runs through the same code.
    from deepracer_rl.algorithms import build_model
    from deepracer_rl.config import TrainConfig
    from deepracer_rl.export import export_policy
    from deepracer_rl.train import make_env, prepare_run

    run = tmp_path / "run"
    config = prepare_run(
        TrainConfig(metadata=str(REPO / "config" / "model_metadata_continuous.json"), n_envs=1, torch_threads=1),
        run,
        resume=False,
    )
    env = make_env(config, run)
    export = export_policy(build_model(config, env, run), config.observation(), CONTINUOUS, tmp_path / "cont")
    command = PolicyRunner(OnnxPolicy(export)).act(camera_frame())
    assert 0.8 <= command.speed <= 2.5 and -30.0 <= command.steering_deg <= 30.0


# ---- the node ----------------------------------------------------------------------------------


@pytest.mark.parametrize("broken", ["model", "metadata"])
def test_malformed_export_fails_at_start_naming_the_file(broken, cloned_policy, tmp_path, nodes):
    export = tmp_path / "broken_export"
    shutil.copytree(cloned_policy, export)
    (export / CHECKSUMS_NAME).unlink()  # the parse errors themselves, not the checksum check
    if broken == "model":
        (export / ONNX_NAME).write_bytes(b"this is not an onnx graph")
        name = ONNX_NAME
    else:
        text = (export / METADATA_NAME).read_text()
        (export / METADATA_NAME).write_text(text[: len(text) // 2])
        name = METADATA_NAME
    node = nodes(f"model:={export}")
    code = node.proc.wait(30)
    out = log_of(node)
    assert code != 0, out
    assert f"{export / name}" in out, out
    assert "Traceback" not in out, out


def test_nan_output_publishes_stop_and_logs(tmp_path, nodes, ros):
    node = nodes(f"model:={constant_model(tmp_path, math.nan)}")
    ros.wait_connected()
    ros.commands.clear()
    assert ros.wait_for(lambda: len(ros.commands) >= 5, 10.0, frames=True), log_of(node)
    assert all(c[1:] == (0.0, 0.0) for c in ros.commands)
    assert node.interrupt() == 0, log_of(node)[-3000:]  # the node's own words if Ctrl-C did not end it cleanly
    assert "not finite" in log_of(node)


def test_watchdog_stops_the_car_when_the_camera_stops(cloned_policy, nodes, ros):
    nodes(f"model:={cloned_policy}", "watchdog_timeout:=0.5")
    ros.wait_connected()
    ros.commands.clear()
    assert ros.wait_for(lambda: len(moving(ros.commands)) >= 10, 10.0, frames=True)
    last_image = ros.last_image
    ros.spin(1.2)  # the camera is silent
    stops = [c for c in ros.commands if c[0] > last_image and c[1:] == (0.0, 0.0)]
    assert stops, ros.commands[-5:]
    delay = stops[0][0] - last_image
    print(f"watchdog: stop {delay * 1000:.0f} ms after the last camera frame")
    assert 0.45 <= delay <= 0.55, delay
    assert not moving([c for c in ros.commands if c[0] > last_image + 0.1])
    # Repeated every watchdog_timeout while the camera stays silent (it kicks a lockstep simulator).
    assert len(stops) == 2 and 0.45 <= stops[1][0] - stops[0][0] <= 0.55, stops


def test_enable_service_gates_driving_and_car_profile_starts_disabled(cloned_policy, nodes, ros):
    """The car profile's start state and ~/enable, over the simulator's topics (test_car_profile: the car's own)."""
    from std_srvs.srv import SetBool

    node = nodes(
        f"model:={cloned_policy}",
        "profile:=car",
        "cmd_vel_topic:=/cmd_vel",
        "image_topic:=/camera/image_raw",
        "image_type:=Image",
        "car_services:=false",
    )
    ros.wait_connected()
    ros.commands.clear()
    ros.spin(1.0, frames=True)
    assert ros.commands == [], "the car profile must start disabled"
    assert ros.call(SetBool, "/inference_node/enable", SetBool.Request(data=True)).success
    assert ros.wait_for(lambda: len(moving(ros.commands)) >= 3, 5.0, frames=True)
    assert ros.call(SetBool, "/inference_node/enable", SetBool.Request(data=False)).success
    disabled_at = time.monotonic()
    ros.spin(1.0, frames=True)
    after = [c for c in ros.commands if c[0] > disabled_at - 0.5]
    assert after and after[-1][1:] == (0.0, 0.0)
    assert not moving([c for c in ros.commands if c[0] > disabled_at + 0.2])
    assert node.interrupt() == 0, log_of(node)[-3000:]
    assert "Traceback" not in log_of(node)


def test_ctrl_c_publishes_a_stop_before_exiting(cloned_policy, nodes, ros):
    node = nodes(f"model:={cloned_policy}")
    ros.wait_connected()
    ros.commands.clear()
    assert ros.wait_for(lambda: len(moving(ros.commands)) >= 3, 10.0, frames=True)
    os.killpg(node.proc.pid, signal.SIGINT)
    interrupted = time.monotonic()
    ros.wait_for(lambda: node.proc.poll() is not None, 10.0)
    ros.spin(0.3)
    assert node.proc.wait(5) == 0, log_of(node)
    last = [c for c in ros.commands if c[0] > interrupted - 0.2]
    assert last and last[-1][1:] == (0.0, 0.0), ros.commands[-3:]


def test_node_drives_with_the_openvino_ir(cloned_policy, nodes, ros, tmp_path):
    from deepracer_rl.export import export_run

    export = export_run(cloned_policy.parent / "run", tmp_path / "ir", formats=("onnx", "openvino"))
    node = nodes(f"model:={export / 'model.xml'}")
    ros.wait_connected()
    ros.commands.clear()
    assert ros.wait_for(lambda: len(moving(ros.commands)) >= 5, 10.0, frames=True), log_of(node)
    assert node.interrupt() == 0, log_of(node)[-3000:]
    assert "(openvino, discrete" in log_of(node), log_of(node)
    # The same frame over and over: every command is the one onnxruntime gives for it.
    expected = twist(PolicyRunner(OnnxPolicy(export)).act(camera_frame()), CAR.wheelbase)
    assert all(c[1:] == pytest.approx(expected, abs=1e-6) for c in moving(ros.commands)), ros.commands[:3]


def test_throttle_scale_and_max_speed_change_at_run_time_for_calibration(cloned_policy):
    import rclpy
    from rclpy.parameter import Parameter

    from deepracer_rl.ros.inference_node import InferenceNode

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = InferenceNode(
            context=context,
            parameter_overrides=[
                Parameter("model", value=str(cloned_policy)),
                Parameter("profile", value="car"),
                Parameter("image_type", value="Image"),  # runs without the car's messages too
                Parameter("car_services", value=False),
            ],
        )
        try:
            assert node.servo_map.throttle_scale == 0.0 and not node.enabled  # car profile: as the stock car
            results = node.set_parameters([Parameter("throttle_scale", value=0.7), Parameter("max_speed", value=1.5)])
            assert all(r.successful for r in results)
            assert node.servo_map(Command(0.0, 2.0)) == pytest.approx((0.0, 0.7))
            assert node.runner.max_speed == 1.5
            assert not node.set_parameters([Parameter("throttle_scale", value=1.5)])[0].successful
            assert not node.set_parameters([Parameter("model", value="/elsewhere")])[0].successful
            assert node.servo_map.throttle_scale == 0.7
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.parametrize("lockstep", [False, True], ids=["real_time", "lockstep"])
def test_closed_loop_sim_node_and_inference_node_drive_a_full_lap(lockstep, cloned_policy, nodes, simulators, ros):
    """Two processes over DDS: camera -> ONNX policy -> /cmd_vel -> simulator, in real time (15 Hz)
    or in lockstep (the watchdog's stop starts the loop; then one period per command)."""
    from deepracer_rl.ros import contract

    ros.spin(0.3)  # take what earlier simulators left in flight, then forget it
    ros.odometry.clear()
    sim = simulators(params=("track:=reinvent_base", f"lockstep:={str(lockstep).lower()}"))
    sim.wait_started()
    if not lockstep:  # a lockstep simulator publishes nothing until the first command
        assert ros.wait_for(lambda: len(ros.odometry) > 0, 20.0), log_of(sim)
    ros.commands.clear()
    driver = nodes(f"model:={cloned_policy}")
    judge = EpisodeJudge(TRACK, CAR.wheel_contact_points(), 1, CAR.camera.rate_hz)
    seen, status, started, start_ns, sim_s = 0, EpisodeStatus.IN_PROGRESS, None, 0, 0.0
    deadline = time.monotonic() + 45.0
    while time.monotonic() < deadline and not status.done:
        ros.spin(0.05)
        for odom in ros.odometry[seen:]:
            p, q = odom.pose.pose.position, odom.pose.pose.orientation
            pose = np.array([[p.x, p.y, contract.yaw_from_quaternion(q.x, q.y, q.z, q.w)]])
            if started is None:
                if odom.twist.twist.linear.x < 0.05:
                    continue  # the judge starts when the policy starts driving
                started, start_ns = time.monotonic(), contract.stamp_ns(odom.header.stamp)
                judge.start(0, pose[0])
            result = judge.update(pose, np.zeros(1), np.array([odom.twist.twist.linear.x]))
            status = result.status[0]
            sim_s = (contract.stamp_ns(odom.header.stamp) - start_ns) * 1e-9
            if status.done:
                break
        seen = len(ros.odometry)
    lap_s = time.monotonic() - started if started else None
    progress = float(judge.best[0] / judge.lap_length[0] * 100.0)
    print(
        f"closed loop ({'lockstep' if lockstep else 'real time'}): {status.value}, progress {progress:.1f} %, "
        f"lap {sim_s:.2f} s of sim time in {lap_s and round(lap_s, 2)} s, {len(ros.commands)} commands"
    )
    assert status is EpisodeStatus.LAP_COMPLETE, (status, progress, log_of(driver)[-2000:], log_of(sim)[-2000:])
    # In lockstep the lap can end before this test's subscriber has matched the new node's
    # /cmd_vel publisher, so the speed limit is checked on what the simulator drove too.
    assert max(o.twist.twist.linear.x for o in ros.odometry) <= DISCRETE.max_speed + 1e-6
    assert all(c[1] <= DISCRETE.max_speed for c in ros.commands)
    assert driver.interrupt() == 0, log_of(driver)[-3000:]
    assert sim.interrupt() == 0, log_of(sim)[-3000:]
