"""The ROS 2 side of the topic contract with real rclpy and DDS on loopback.

`sim_node` runs in its own process (its own session, stopped with SIGINT, then SIGKILL, and
always reaped); `RosRaceEnv` and small test nodes run in this process. conftest.py gives the
session a random ROS_DOMAIN_ID and localhost-only discovery. Tests that need no DDS (image
conversion, CDR decoding, the /cmd_vel mapping) come first.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

pytest.importorskip("rclpy")

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from processes import SimProcess, run_cli
from rclpy.serialization import deserialize_message, serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from deepracer_rl.car import CAMERA_OPTICAL_LINK, CarSpec
from deepracer_rl.env import RaceEnv
from deepracer_rl.inference import Command, twist
from deepracer_rl.observation import ObservationSpec
from deepracer_rl.ros import cdr, contract
from deepracer_rl.ros.bridge import RosRaceEnv, SimulatorTimeout
from deepracer_rl.ros.image import (
    ENCODINGS,
    ImageError,
    array_to_image,
    image_to_array,
    image_to_rgb,
)
from deepracer_rl.rundir import RunDir
from deepracer_rl.sim import OdometryUncertainty
from deepracer_rl.simtrace import SIMTRACE_COLUMNS

REPO = Path(__file__).resolve().parents[1]
SMALL = ObservationSpec(160, 120, grayscale=True)
CAR = CarSpec.from_urdf()


# ---- no DDS: conversions -------------------------------------------------------------------


def _pixels(encoding: str, rng: np.random.Generator, height: int = 5, width: int = 7) -> np.ndarray:
    channels = {"mono8": 1, "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4}[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize("padding", [0, 3])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_image_round_trip_for_every_encoding_with_and_without_row_padding(encoding, padding):
    rng = np.random.default_rng(1)
    pixels = _pixels(encoding, rng)
    row = pixels.shape[1] * (1 if pixels.ndim == 2 else pixels.shape[2])
    msg = array_to_image(pixels, encoding, step=row + padding, frame_id="cam")
    assert (msg.encoding, msg.width, msg.height, msg.step, msg.header.frame_id) == (
        encoding,
        7,
        5,
        row + padding,
        "cam",
    )
    assert len(msg.data) == 5 * (row + padding)
    back = deserialize_message(serialize_message(msg), Image)  # as it arrives over DDS
    np.testing.assert_array_equal(image_to_array(back, "/t"), pixels)
    back.is_bigendian = 1  # one byte per channel: byte order changes nothing
    rgb = image_to_rgb(back, "/t")
    expected = {"mono8": pixels, "rgb8": pixels, "rgba8": pixels[..., :3]}.get(encoding)
    if expected is None:  # bgr8 / bgra8
        expected = pixels[..., 2::-1]
    np.testing.assert_array_equal(rgb, expected)


def test_malformed_images_raise_errors_naming_topic_and_encoding():
    good = array_to_image(np.zeros((4, 6), np.uint8), "mono8")
    bad = deserialize_message(serialize_message(good), Image)
    bad.encoding = "yuv422"
    with pytest.raises(ImageError, match=r"/camera/image_raw.*'yuv422'.*unsupported encoding"):
        image_to_array(bad, "/camera/image_raw")
    short = deserialize_message(serialize_message(good), Image)
    short.data = short.data[:-5]
    with pytest.raises(
        ImageError, match=r"/camera/image_raw.*'mono8'.*19 bytes, expected height \* step = 4 \* 6 = 24"
    ):
        image_to_array(short, "/camera/image_raw")
    narrow = deserialize_message(serialize_message(good), Image)
    narrow.step = 5
    with pytest.raises(ImageError, match="step 5 is less than width"):
        image_to_array(narrow, "/camera/image_raw")
    with pytest.raises(ImageError, match="'rgb8'.*3 channel"):
        array_to_image(np.zeros((4, 6), np.uint8), "rgb8")


def test_cdr_decoding_equals_rclpy_deserialization_for_any_frame_ids():
    rng = np.random.default_rng(2)
    for _i in range(100):
        msg = Odometry()
        msg.header.frame_id = "o" * int(rng.integers(0, 14))
        msg.child_frame_id = "b" * int(rng.integers(0, 10))
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(rng.integers(0, 10**6)), int(rng.integers(0, 10**9))
        yaw = float(rng.uniform(-math.pi, math.pi))
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        p.x, p.y = (float(v) for v in rng.uniform(-20, 20, 2))
        _, _, q.z, q.w = contract.quaternion_from_yaw(yaw)
        msg.twist.twist.linear.x, msg.twist.twist.angular.z = (float(v) for v in rng.uniform(-3, 3, 2))
        stamp, x, y, got_yaw, v, w = cdr.decode_odometry(serialize_message(msg))
        assert stamp == contract.stamp_ns(msg.header.stamp)
        assert (x, y, v, w) == (p.x, p.y, msg.twist.twist.linear.x, msg.twist.twist.angular.z)
        assert got_yaw == pytest.approx(yaw, abs=1e-12)
        encoded = cdr.OdometryEncoder(msg.header.frame_id, msg.child_frame_id).encode(stamp, x, y, q.z, q.w, v, w)
        msg.pose.covariance = OdometryUncertainty().pose_covariance()
        msg.twist.covariance = OdometryUncertainty().twist_covariance()
        assert deserialize_message(encoded, Odometry) == msg
        cmd = Twist()
        cmd.linear.x, cmd.angular.z = (float(v) for v in rng.uniform(-4, 4, 2))
        assert cdr.decode_twist(serialize_message(cmd)) == (cmd.linear.x, cmd.angular.z)
    with pytest.raises(ValueError, match="cannot decode a Odometry"):
        cdr.decode_odometry(b"\x00\x05\x00\x00" + bytes(40))


def test_cmd_vel_mapping_round_trips_steering_and_gives_none_when_standing():
    for steer_deg in (-30.0, -7.5, 0.0, 12.0, 30.0):
        for speed in (0.1, 1.0, 4.0):
            v, w = twist(Command(steer_deg, speed), CAR.wheelbase)
            assert math.degrees(contract.steer_from_twist(v, w, CAR.wheelbase)) == pytest.approx(steer_deg, abs=1e-9)
    assert contract.steer_from_twist(0.0, 0.5, CAR.wheelbase) == 0.0


# ---- processes -------------------------------------------------------------------------------


_SIGNALS_MID_CONVERSION = """
import os, signal, sys
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from deepracer_rl.ros import contract

stop_requested = contract.init_node_process([])
data = serialize_message(Image(height=120, width=160, step=160, encoding="mono8", data=bytes(160 * 120)))
for number in range(400):  # a node's loop: messages converted from C while the signals come
    deserialize_message(data, Image)
    os.kill(os.getpid(), signal.SIGINT if number % 2 else signal.SIGTERM)
    deserialize_message(data, Image)
print("stop requested:", stop_requested.is_set())
"""


def test_node_signals_only_request_the_stop_and_never_raise_into_message_conversion(tmp_path):
    """A node's Ctrl-C/SIGTERM sets the stop request its loop checks. Raised from the signal handler it
    could land inside rclpy's conversion of a taken message, which turned it into a RuntimeError and a
    traceback (exit 1) on one CI run of the closed loop."""
    code, out = SimProcess(tmp_path / "signals.log", ["-c", _SIGNALS_MID_CONVERSION], module=False).run_to_end(60)
    assert code == 0, out[-2000:]
    assert "stop requested: True" in out and "Traceback" not in out, out[-2000:]


LOCKSTEP_160 = ("--lockstep", "--size", "160x120", "--encoding", "mono8")


def _assert_same_params(ros: dict, ref: dict) -> None:
    assert ros.keys() == ref.keys()
    for key, value in ref.items():
        if isinstance(value, float):
            assert ros[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
        else:
            assert ros[key] == value, key


# ---- (a) parity with the in-process env --------------------------------------------------------


def test_ros_env_over_lockstep_sim_node_equals_the_in_process_env(simulators):
    """Same seed, same actions: same rewards, params and episode ends; observations within one gray level."""
    sim = simulators(*LOCKSTEP_160, cli=True)  # the CLI's `deepracer-rl sim`
    ros = RosRaceEnv(observation=SMALL, timeout=10.0, connect_timeout=30.0)
    ref = RaceEnv(observation=SMALL)
    try:
        obs_ros, _ = ros.reset(seed=7)
        obs_ref, _ = ref.reset(seed=7)
        assert obs_ros.shape == obs_ref.shape == (1, 120, 160)
        assert np.abs(obs_ros.astype(int) - obs_ref).max() <= 1
        rng = np.random.default_rng(7)
        ends = []
        for i in range(300):
            action = int(rng.integers(ref.action_space.n))
            obs_ros, r_ros, term_ros, trunc_ros, info_ros = ros.step(action)
            obs_ref, r_ref, term_ref, trunc_ref, info_ref = ref.step(action)
            assert r_ros == pytest.approx(r_ref, rel=1e-9, abs=1e-12), i
            assert (term_ros, trunc_ros, info_ros["episode_status"]) == (
                term_ref,
                trunc_ref,
                info_ref["episode_status"],
            ), i
            _assert_same_params(info_ros["params"], info_ref["params"])
            assert np.abs(obs_ros.astype(int) - obs_ref).max() <= 1, i
            if term_ref or trunc_ref:
                ends.append((i, info_ref["episode_status"]))
                obs_ros, _ = ros.reset()
                obs_ref, _ = ref.reset()
                assert np.abs(obs_ros.astype(int) - obs_ref).max() <= 1
        assert len(ends) >= 2, ends  # episode ends, and new episodes at the schedule's next start poses
        assert ros.rejected == 0
    finally:
        ros.close()
    assert sim.interrupt() in (0, -signal.SIGINT)


# ---- (b) a silent simulator ---------------------------------------------------------------------


def test_env_api_silent_simulator_error_naming_the_topics_and_recovery_after_restart(simulators):
    sim = simulators(params=("lockstep:=true", "image_width:=160", "image_height:=120", "encoding:=mono8"))
    env = RosRaceEnv(observation=SMALL, timeout=1.0, connect_timeout=30.0)
    try:
        check_env(env, skip_render_check=True)  # the gymnasium API, over the topics
        env.reset(seed=0)
        for _ in range(5):
            env.step(4)
        assert sim.interrupt() in (0, -signal.SIGINT)
        start = time.monotonic()
        with pytest.raises(SimulatorTimeout, match=r"/camera/image_raw and /odom within 1 s after the command") as info:
            env.step(4)
        assert time.monotonic() - start < 3.0
        assert "nothing received" in str(info.value)
        with pytest.raises(RuntimeError, match="call reset"):
            env.step(4)
        simulators(*LOCKSTEP_160, cli=True)  # a new simulator, its clock starting over: reset recovers
        env.reset()
        for _ in range(5):
            env.step(4)
    finally:
        env.close()


def test_no_simulator_at_all_is_a_clear_error_after_the_connect_timeout():
    # The session's own domain: every simulator of an earlier test has been stopped and reaped
    # (another domain could hold someone else's simulator, which this env would then reset).
    env = RosRaceEnv(observation=SMALL, connect_timeout=0.5)
    try:
        with pytest.raises(SimulatorTimeout, match=r"/camera/image_raw \(no publisher\).*/cmd_vel \(no subscriber\)"):
            env.reset()
    finally:
        env.close()
    env.close()  # twice is fine


def test_first_reset_waits_out_connect_timeout_for_a_simulator_whose_endpoints_came_first(simulators, ros_node):
    """Like Gazebo starting: its bridge and gz_control are matched long before the world answers."""
    from geometry_msgs.msg import PoseWithCovarianceStamped

    ros_node.create_publisher(Image, contract.IMAGE, contract.sensor_qos())  # endpoints, no answers
    ros_node.create_publisher(Odometry, contract.ODOM, contract.sensor_qos())
    ros_node.create_subscription(Twist, contract.CMD_VEL, lambda _: None, contract.command_qos())
    ros_node.create_subscription(
        PoseWithCovarianceStamped, contract.INITIALPOSE, lambda _: None, contract.command_qos()
    )
    env = RosRaceEnv(observation=SMALL, timeout=0.3, connect_timeout=1.5)
    later = threading.Timer(
        1.0,
        simulators,
        kwargs={"params": ("lockstep:=true", "image_width:=160", "image_height:=120", "encoding:=mono8")},
    )
    try:
        start = time.monotonic()
        with pytest.raises(SimulatorTimeout, match=r"/camera/image_raw and /odom within 1.5 s after the reset to"):
            env.reset(seed=0)
        assert 1.4 <= time.monotonic() - start < 3.0
        env.connect_timeout = 30.0
        later.start()  # the world "loads" a second into the first reset
        start = time.monotonic()
        env.reset(seed=0)
        assert time.monotonic() - start > 1.0 > env.timeout
        for _ in range(5):  # after it, each answer within `timeout` as before
            env.step(4)
    finally:
        later.cancel()
        if later.is_alive():
            later.join()
        env.close()


# ---- training through the bridge: `deepracer-rl train --backend ros` ---------------------------------

# Tiny and quick: 40x40 frames, the small CNN, PPO updates every 128 steps (300 steps: 3 rollouts).
TRAIN_ROS = (
    "train",
    "--backend",
    "ros",
    "--steps",
    "300",
    "--image-size",
    "40x40",
    "--network",
    "small",
    "--batch-size",
    "64",
    "--episodes-between-updates",
    "1",
)


def train_cli(tmp_path: Path, name: str, *args: str, timeout: float) -> tuple[int | None, str]:
    """`deepracer-rl train` (TRAIN_ROS, --out tmp_path/name) in its own process group, run to its end.

    Returns (exit code, output); None when it did not end within `timeout` (then it is interrupted,
    killed if need be, and reaped).
    """
    return run_cli(tmp_path / f"{name}.log", *TRAIN_ROS, "--out", str(tmp_path / name), *args, timeout=timeout)


def test_train_backend_ros_without_a_simulator_fails_naming_the_silent_topics(tmp_path):
    # The session's own domain, where every earlier simulator has been stopped and reaped.
    start = time.monotonic()
    code, output = train_cli(tmp_path, "run", "--ros-timeout", "1", timeout=60.0)
    assert code == 2, output  # not hanging: the bridge's connect timeout, reported by the CLI
    assert time.monotonic() - start < 30.0
    assert (
        "deepracer-rl train: error: the simulator did not answer (nothing was trained): no simulator on "
        "the topic contract after 1 s: /camera/image_raw (no publisher), /odom (no publisher), "
        "/cmd_vel (no subscriber), /initialpose (no subscriber)"
    ) in output
    assert "Traceback" not in output
    assert not (tmp_path / "run" / "checkpoints" / "latest.zip").exists()  # a rerun needs no --resume


def test_train_backend_ros_trains_through_the_bridge_against_a_lockstep_sim_node(simulators, tmp_path):
    sim = simulators(params=("lockstep:=true", "image_width:=160", "image_height:=120", "encoding:=mono8"))
    code, output = train_cli(tmp_path, "run", "--ros-timeout", "10", timeout=120.0)
    assert code == 0, output + sim.output()
    assert "trained 384 steps" in output  # 3 rollouts of 128 steps
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert (config["backend"], config["n_envs"], config["ros_timeout"]) == ("ros", 1, 10.0)  # one car by default
    assert (config["image_width"], config["image_height"], config["network"]) == (40, 40, "small")
    assert (run / "checkpoints" / "latest.zip").is_file() and (run / "best_model.zip").is_file()
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["timesteps"] == 384 and state["episodes"] >= 2
    rows = []
    for _, path in RunDir(run).training_simtraces():  # one file per policy update
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows += list(reader)
        assert tuple(reader.fieldnames) == SIMTRACE_COLUMNS
    steps = [r for r in rows if r["episode_status"] != "prepare"]
    assert 192 <= len(steps) <= 384  # the steps of every finished episode, from the simulator's odometry
    assert [(int(r["steps"]), r["episode_status"]) for r in rows[:2]] == [(0, "prepare"), (1, "in_progress")]
    assert len({r["episode"] for r in rows}) == state["episodes"] >= 2
    assert any(r["done"] == "True" for r in rows)
    assert len({(r["X"], r["Y"]) for r in steps}) > 150  # the car moved
    assert sim.proc.poll() is None, sim.output()
    assert sim.interrupt() in (0, -signal.SIGINT)


def test_train_backend_ros_saves_its_checkpoint_through_a_repeated_ctrl_c(simulators, tmp_path):
    """`ros2 launch train.launch.py` + Ctrl-C: the terminal's SIGINT, then the launch's own, mid-save."""
    simulators(params=("lockstep:=true", "image_width:=160", "image_height:=120", "encoding:=mono8"))
    trainer = SimProcess(
        tmp_path / "train.log",
        ["deepracer_rl.cli", *TRAIN_ROS, "--steps", "100000", "--out", str(tmp_path / "run"), "--ros-timeout", "10"],
    )
    try:
        deadline = time.monotonic() + 60.0
        while "step/s" not in trainer.output():  # the progress bar: training over the bridge has begun
            assert trainer.proc.poll() is None and time.monotonic() < deadline, trainer.output()
            time.sleep(0.05)
        time.sleep(0.5)
        for _ in range(2):  # the launch's SIGINT comes a few milliseconds after the terminal's
            os.killpg(trainer.proc.pid, signal.SIGINT)
            time.sleep(0.005)
        code = trainer.proc.wait(30.0)
    finally:
        trainer.interrupt()
    output = trainer.log_path.read_text()
    assert code == 2 and "Traceback" not in output, output
    assert "deepracer-rl train: error: interrupted; checkpoint saved at step" in output
    state = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert state["timesteps"] > 0 and (tmp_path / "run" / "checkpoints" / "latest.zip").is_file()


# ---- (c) malformed messages -------------------------------------------------------------------------


def test_malformed_images_and_commands_are_rejected_and_both_ends_keep_running(simulators, ros_node):
    sim = simulators(*LOCKSTEP_160, cli=True)
    env = RosRaceEnv(observation=SMALL, timeout=5.0, connect_timeout=30.0)
    try:
        env.reset(seed=0)
        image_pub = ros_node.create_publisher(Image, contract.IMAGE, contract.sensor_qos())
        cmd_pub = ros_node.create_publisher(Twist, contract.CMD_VEL, contract.command_qos())
        assert ros_node.spin_until(
            lambda: image_pub.get_subscription_count() >= 1 and cmd_pub.get_subscription_count() >= 1, 10.0
        )
        wrong_encoding = array_to_image(np.zeros((120, 160), np.uint8), "mono8")
        wrong_encoding.encoding = "yuv422"
        wrong_size = array_to_image(np.zeros((120, 160), np.uint8), "mono8")
        wrong_size.data = wrong_size.data[: 160 * 100]
        for bad in (wrong_encoding, wrong_size):
            bad.header.stamp.sec = 10**6  # newer than anything: must still not be used
            image_pub.publish(bad)
        nan = Twist()
        nan.linear.x = float("nan")
        cmd_pub.publish(nan)
        deadline = time.monotonic() + 10.0
        steps = 0
        while env.rejected < 2 and time.monotonic() < deadline:
            _, _, terminated, truncated, _ = env.step(5)
            steps += 1
            if terminated or truncated:
                env.reset()
        assert env.rejected == 2, list(env.rejections)
        reasons = "\n".join(env.rejections)
        assert "image on /camera/image_raw (encoding 'yuv422'): unsupported encoding" in reasons
        assert "image on /camera/image_raw (encoding 'mono8'): data has 16000 bytes, expected height * step" in reasons
        for _ in range(5):  # the env goes on stepping with the simulator's frames
            env.step(5)
        deadline = time.monotonic() + 5.0
        while "ignoring a non-finite /cmd_vel" not in sim.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "ignoring a non-finite /cmd_vel (linear.x nan" in sim.output()
        assert sim.proc.poll() is None
    finally:
        env.close()
    assert sim.interrupt() in (0, -signal.SIGINT)


# ---- real time ---------------------------------------------------------------------------------------


def test_real_time_sim_publishes_the_contract_at_15_hz_and_stops_on_stale_commands(simulators, ros_node):
    sim = simulators(params=("image_width:=160", "image_height:=120", "encoding:=mono8", "stale_command_timeout:=0.3"))
    odom: list[Odometry] = []
    infos: list[CameraInfo] = []
    clocks: list[int] = []
    images: list[Image] = []
    ros_node.create_subscription(Odometry, contract.ODOM, odom.append, contract.sensor_qos())
    ros_node.create_subscription(Image, contract.IMAGE, images.append, contract.sensor_qos())
    ros_node.create_subscription(CameraInfo, contract.CAMERA_INFO, infos.append, contract.sensor_qos())
    ros_node.create_subscription(Clock, contract.CLOCK, lambda m: clocks.append(contract.stamp_ns(m.clock)), 10)
    cmd_pub = ros_node.create_publisher(Twist, contract.CMD_VEL, contract.command_qos())
    assert ros_node.spin_until(lambda: len(odom) > 0 and len(infos) > 0 and len(clocks) > 0, 30.0), sim.output()

    first = len(odom)
    start = time.monotonic()
    ros_node.spin_until(lambda: False, 1.0)
    rate = (len(odom) - first) / (time.monotonic() - start)
    assert 10 <= rate <= 20, rate  # 15 Hz on the steady clock

    info = infos[-1]
    fx, fy, cx, cy = CAR.camera.intrinsics(160, 120)
    assert (info.width, info.height, info.header.frame_id) == (160, 120, CAMERA_OPTICAL_LINK)
    assert list(info.k) == pytest.approx([fx, 0, cx, 0, fy, cy, 0, 0, 1])
    assert images[-1].encoding == "mono8" and images[-1].header.frame_id == CAMERA_OPTICAL_LINK
    assert odom[-1].header.frame_id == "odom" and odom[-1].child_frame_id == "base_link"
    assert all(b > a for a, b in zip(clocks, clocks[1:]))  # sim time only moves forward

    drive = Twist()
    drive.linear.x, drive.angular.z = twist(Command(0.0, 1.0), CAR.wheelbase)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:  # the command held at 10 Hz
        cmd_pub.publish(drive)
        ros_node.spin_until(lambda: False, 0.1)
    assert odom[-1].twist.twist.linear.x > 0.8
    ros_node.spin_until(lambda: False, 1.5)  # commands stale after 0.3 s: the car is told to stop
    assert abs(odom[-1].twist.twist.linear.x) < 0.01
    x0 = odom[-1].pose.pose.position.x
    ros_node.spin_until(lambda: False, 0.3)
    assert odom[-1].pose.pose.position.x == pytest.approx(x0, abs=1e-4)
    assert sim.interrupt() in (0, -signal.SIGINT)


def test_tf_odom_to_base_link_follows_the_odometry_when_tf2_msgs_is_importable(simulators, ros_node):
    tf2_msgs = pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs is not built: run tools/build_interfaces.py")
    sim = simulators(params=("image_width:=160", "image_height:=120", "encoding:=mono8"))
    transforms: list = []
    odom: list[Odometry] = []
    ros_node.create_subscription(tf2_msgs.TFMessage, contract.TF, lambda m: transforms.extend(m.transforms), 10)
    ros_node.create_subscription(Odometry, contract.ODOM, odom.append, contract.sensor_qos())
    assert ros_node.spin_until(lambda: len(transforms) > 2 and len(odom) > 2, 30.0), sim.output()
    tf = transforms[-1]
    assert (tf.header.frame_id, tf.child_frame_id) == ("odom", "base_link")
    match = [o for o in odom if o.header.stamp == tf.header.stamp]
    assert match and match[0].pose.pose.position.x == tf.transform.translation.x
    assert match[0].pose.pose.position.y == tf.transform.translation.y
    assert match[0].pose.pose.orientation.z == tf.transform.rotation.z
    assert sim.interrupt() in (0, -signal.SIGINT)


def test_odometry_covariances_are_the_simulators_stated_uncertainty_nonzero_and_symmetric():
    """No noise model (exact state): sim.OdometryUncertainty's floor, never the all-zero "infinitely certain"."""
    uncertainty = OdometryUncertainty()
    raw = cdr.OdometryEncoder("odom", "base_link").encode(1, 0.5, -0.2, 0.0, 1.0, 1.2, 0.1)
    msg = deserialize_message(raw, Odometry)
    for covariance, stds in (
        (msg.pose.covariance, [uncertainty.position] * 3 + [uncertainty.orientation] * 3),
        (msg.twist.covariance, [uncertainty.linear] * 3 + [uncertainty.angular] * 3),
    ):
        matrix = np.asarray(covariance).reshape(6, 6)
        np.testing.assert_array_equal(matrix, matrix.T)
        np.testing.assert_allclose(np.diag(matrix), np.square(stds))
        assert np.all(np.diag(matrix) > 0) and np.all(np.linalg.eigvalsh(matrix) > 0)  # positive definite
    assert cdr.decode_odometry(raw)[1:] == pytest.approx((0.5, -0.2, 0.0, 1.2, 0.1))


# ---- (d) Ctrl-C -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cli", [False, True], ids=["sim_node", "deepracer-rl sim"])
def test_ctrl_c_stops_the_simulator_cleanly_and_leaves_no_process(simulators, cli):
    if cli:
        sim = simulators("--size", "160x120", "--encoding", "mono8", cli=True)
    else:
        sim = simulators(params=("image_width:=160", "image_height:=120", "encoding:=mono8"))
    sim.wait_started()
    time.sleep(0.3)  # a few real-time steps
    code = sim.interrupt()
    output = sim.log_path.read_text()
    assert code in (0, -signal.SIGINT), output
    assert "Traceback" not in output
    assert "stopped" in output
    assert not sim.group_alive()
