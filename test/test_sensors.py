"""DeepRacer's other sensors end to end: STEREO_CAMERAS and the lidars drawn in process, the Dict
observation, the multi-input network, one named ONNX input per sensor, and the inference node
driving on the stereo pair and /scan of sim_node over real DDS; the metadata refusals through the CLI.

Real components only: the CLI in subprocesses, SB3, onnxruntime, rclpy on loopback.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from processes import SimProcess

from deepracer_rl.action_space import ActionSpace
from deepracer_rl.camera import CarBoxes
from deepracer_rl.lidar import Lidar, observe
from deepracer_rl.observation import ObservationSpec
from deepracer_rl.sensors import SENSORS, SensorError, observation_space, sensors_for
from deepracer_rl.sim import STEREO_BASELINE, Simulator
from deepracer_rl.track import Track

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "deepracer_rl.cli"]
TRACK = Track.load("reinvent_base")
SMALL = ["--n-envs", "4", "--image-size", "40x40", "--network", "small", "--batch-size", "64"]
SMALL += ["--episodes-between-updates", "2", "--epochs", "1", "--eval-laps", "1", "--threads", "1"]


def metadata(tmp_path: Path, name: str, **fields) -> Path:
    """A model_metadata.json of the console's action space with these fields."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**ActionSpace.default().to_metadata(), **fields}))
    return path


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO)


def start_poses(n: int) -> np.ndarray:
    arcs = np.linspace(0.0, TRACK.length, n, endpoint=False)
    points, headings = TRACK.point_at(arcs)
    return np.column_stack([points, headings])


# ---- the registry and its refusals -----------------------------------------------------------


def test_every_deepracer_sensor_is_built_and_the_lidar_config_configures_its_sensor():
    assert set(SENSORS) == {
        "FRONT_FACING_CAMERA",
        "STEREO_CAMERAS",
        "LIDAR",
        "SECTOR_LIDAR",
        "DISCRETIZED_SECTOR_LIDAR",
    }
    spec = ObservationSpec(80, 60, True, 2)
    stereo, lidar = sensors_for(["LIDAR", "STEREO_CAMERAS"])  # cameras first
    assert (stereo.name, lidar.name) == ("STEREO_CAMERAS", "LIDAR")
    assert stereo.space(spec).shape == (4, 60, 80) and lidar.space(spec).shape == (128,)
    (_, discretized) = sensors_for(
        ["FRONT_FACING_CAMERA", "DISCRETIZED_SECTOR_LIDAR"], {"num_sectors": 4, "num_values_per_sector": 2}
    )
    assert discretized.space(ObservationSpec()).shape == (8,)
    assert sensors_for(["FRONT_FACING_CAMERA", "SECTOR_LIDAR"])[1].space(ObservationSpec()).shape == (8,)
    space = observation_space(sensors_for(["STEREO_CAMERAS", "LIDAR"]), spec)
    assert set(space.spaces) == {"STEREO_CAMERAS", "LIDAR"}
    with pytest.raises(SensorError, match="the stereo pair is grey"):
        stereo.space(ObservationSpec(grayscale=False))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sensor": ["CAMERA"]}, "field 'sensor': unknown sensor 'CAMERA'"),
        ({"sensor": ["FRONT_FACING_CAMERA", "LIDAR", "SECTOR_LIDAR"]}, "names 2 lidar kinds ['LIDAR', 'SECTOR_LIDAR']"),
        (
            {"sensor": ["FRONT_FACING_CAMERA", "DISCRETIZED_SECTOR_LIDAR"], "lidar_config": {"num_sectors": 7}},
            "lidar_config.num_sectors: 64 lidar samples do not divide into 7 sectors",
        ),
        ({"sensor": ["LIDAR"]}, "has no camera; DeepRacer's models see through a camera"),
    ],
    ids=["unknown", "two_lidars", "sectors", "lidar_without_camera"],
)
def test_cli_refuses_sensors_that_cannot_be_naming_the_file_and_field_writing_nothing(fields, message, tmp_path):
    meta = metadata(tmp_path, "model_metadata", **fields)
    out = tmp_path / "run"
    result = run_cli("train", "--out", str(out), "--metadata", str(meta), "--steps", "100", timeout=120)
    assert result.returncode == 2, result.stderr
    assert str(meta) in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists()


# ---- drawn in process -------------------------------------------------------------------------


def test_the_stereo_pair_is_the_camera_moved_half_the_baseline_left_and_right_in_one_batch():
    sim = Simulator(TRACK, n_cars=3, image_size=(80, 60), grayscale=True, seed=0)
    poses = start_poses(3)
    for i, pose in enumerate(poses):
        sim.place_car(i, pose)
    pairs = sim.render_stereo()
    assert pairs.shape == (3, 2, 60, 80) and pairs.dtype == np.uint8
    assert np.abs(pairs[:, 0].astype(int) - pairs[:, 1]).mean() > 0.5  # the two views differ
    offset = 0.5 * STEREO_BASELINE * np.column_stack([-np.sin(poses[:, 2]), np.cos(poses[:, 2]), np.zeros(3)])
    for side, sign in ((0, 1.0), (1, -1.0)):
        sim.state.pose[:] = poses + sign * offset
        np.testing.assert_array_equal(sim.render(), pairs[:, side])
    sim.state.pose[:] = poses
    np.testing.assert_array_equal(sim.render_stereo(np.array([2, 0]))[0], pairs[2])  # batched = one by one


def test_the_lidar_sensors_see_a_box_beside_the_car_through_the_scan():
    sim = Simulator(TRACK, n_cars=2, image_size=None, seed=0)
    poses = start_poses(2)
    for i, pose in enumerate(poses):
        sim.place_car(i, pose)
    (lidar,) = sensors_for(["FRONT_FACING_CAMERA", "LIDAR"])[1:]
    clear = lidar.draw(sim, np.arange(2))
    x, y, yaw = poses[0]
    beside = [x - 0.45 * math.sin(yaw), y + 0.45 * math.cos(yaw), yaw, 0.4, 0.3, 0.25]  # 0.45 m to car 0's left
    far = [1e4, 1e4, 0.0, 0.4, 0.3, 0.25]
    sim.objects = CarBoxes(np.array([[beside], [far]]), np.full((1, 3), 128))
    seen = lidar.draw(sim, np.arange(2))
    assert seen.shape == (2, 64) and seen.dtype == np.float32
    assert seen[0].min() < 0.5 < clear[0].min()  # the box, within the 1 m the LIDAR observation keeps
    assert abs(seen[1].min() - clear[1].min()) < 0.05  # car 1 sees its own (empty) world
    ranges = sim.scan(np.array([0]))
    for kind in ("SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR"):
        assert observe(kind, ranges).max() == 1.0  # something within their clipping distance
    assert Lidar.reach("LIDAR") < 1.2


def test_several_sensors_give_a_dict_observation_stacked_per_key(tmp_path):
    from gymnasium.utils.env_checker import check_env

    from deepracer_rl.env import RaceEnv
    from deepracer_rl.vec_env import RaceVecEnv

    meta = metadata(tmp_path, "stereo_lidar", sensor=["STEREO_CAMERAS", "LIDAR"])
    env = RaceVecEnv(3, seed=1, metadata=str(meta), observation=ObservationSpec(40, 30, True, 2))
    obs = env.reset()
    assert obs["STEREO_CAMERAS"].shape == (3, 4, 30, 40) and obs["LIDAR"].shape == (3, 128)
    np.testing.assert_array_equal(obs["STEREO_CAMERAS"][:, :2], obs["STEREO_CAMERAS"][:, 2:])  # a fresh stack
    np.testing.assert_array_equal(obs["LIDAR"][:, :64], obs["LIDAR"][:, 64:])
    previous = obs
    obs, _, done, _ = env.step(np.array([4, 4, 4]))
    running = ~done
    np.testing.assert_array_equal(obs["STEREO_CAMERAS"][running, :2], previous["STEREO_CAMERAS"][running, 2:])
    np.testing.assert_array_equal(obs["LIDAR"][running, :64], previous["LIDAR"][running, 64:])
    assert env.observation_space.contains({k: v[0] for k, v in obs.items()})
    env.close()
    single = RaceEnv(model_metadata=str(meta), observation=ObservationSpec(40, 30))
    check_env(single, skip_render_check=True)
    single.close()


def test_the_gymnasium_vector_env_batches_the_dict_observation(tmp_path):
    from deepracer_rl.gym_vector import RaceVectorEnv

    meta = metadata(tmp_path, "camera_sector", sensor=["FRONT_FACING_CAMERA", "SECTOR_LIDAR"])
    env = RaceVectorEnv(2, model_metadata=str(meta), observation=ObservationSpec(40, 30), seed=0)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs) and obs["SECTOR_LIDAR"].shape == (2, 8)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    env.close()


def test_one_camera_keeps_its_box_observation():
    from gymnasium import spaces

    from deepracer_rl.vec_env import RaceVecEnv

    env = RaceVecEnv(2, seed=1, observation=ObservationSpec(40, 30))
    assert isinstance(env.observation_space, spaces.Box) and env.observation_space.shape == (1, 30, 40)
    obs = env.reset()
    np.testing.assert_array_equal(obs[:, 0], env.core.backend.sim.render())
    env.close()


def test_stereo_alone_with_ppo_and_camera_with_sector_lidar_with_sac_train_and_export(tmp_path):
    """The policy follows the sensors: a Box of the stereo pair (CnnPolicy, input STEREO_CAMERAS) and a
    Dict of camera + SECTOR_LIDAR trained by SAC (MultiInputPolicy); both export and run in onnxruntime."""
    import torch

    from deepracer_rl.algorithms import build_model
    from deepracer_rl.config import TrainConfig
    from deepracer_rl.export import export_policy
    from deepracer_rl.policy import OnnxPolicy
    from deepracer_rl.vec_env import RaceVecEnv

    spec = ObservationSpec(40, 40)
    continuous = json.loads((REPO / "config" / "model_metadata_continuous.json").read_text())
    cases = [
        ("ppo", metadata(tmp_path, "stereo", sensor=["STEREO_CAMERAS"]), "CnnPolicy"),
        (
            "sac",
            metadata(tmp_path, "sector", **{**continuous, "sensor": ["FRONT_FACING_CAMERA", "SECTOR_LIDAR"]}),
            "MultiInputPolicy",
        ),
    ]
    for algo, meta, policy_name in cases:
        env = RaceVecEnv(2, seed=0, metadata=str(meta), observation=spec)
        config = TrainConfig(
            algo=algo, network="small", batch_size=32, epochs=1, episodes_between_updates=1, torch_threads=1
        )
        model = build_model(config, env)
        extractor = model.policy.actor.features_extractor if algo == "sac" else model.policy.features_extractor
        several = policy_name == "MultiInputPolicy"
        assert type(extractor).__name__ == ("SensorsExtractor" if several else "DeepRacerCNN")
        if algo == "sac":
            model.learning_starts = 32
        model.learn(128)
        out = export_policy(model, spec, ActionSpace.load(meta), tmp_path / f"export_{algo}", network="small")
        exported = OnnxPolicy(out)
        assert exported.input_names == tuple(s.input_name for s in exported.sensors)
        obs = env.reset()
        with torch.no_grad():
            if algo == "sac":
                reference = model.policy.actor(model.policy.obs_to_tensor(obs)[0], deterministic=True).numpy()
            else:
                tensor = model.policy.obs_to_tensor(obs)[0]
                reference = model.policy.get_distribution(tensor).distribution.probs.numpy()
        np.testing.assert_allclose(exported.outputs(obs), reference, atol=1e-4)
        env.close()


# ---- train, export, drive over ROS -----------------------------------------------------------


@pytest.fixture(scope="module")
def stereo_lidar_export(tmp_path_factory) -> Path:
    """`deepracer-rl train --metadata [STEREO_CAMERAS, LIDAR] --steps 2048`, then `deepracer-rl export`."""
    root = tmp_path_factory.mktemp("stereo_lidar")
    meta = metadata(root, "model_metadata", sensor=["STEREO_CAMERAS", "LIDAR"])
    result = run_cli("train", "--out", str(root / "run"), "--metadata", str(meta), "--steps", "2048", *SMALL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained 2048 steps" in result.stdout or "trained 2" in result.stdout, result.stdout
    result = run_cli("export", str(root / "run"), "--out", str(root / "export"))
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "export"


def test_a_stereo_and_lidar_model_trains_and_exports_one_named_input_per_sensor(stereo_lidar_export, tmp_path):
    import onnxruntime as ort

    from deepracer_rl.inference import PolicyRunner, load_policy

    session = ort.InferenceSession(str(stereo_lidar_export / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape[1:]) for i in session.get_inputs()] == [("STEREO_CAMERAS", [2, 40, 40]), ("LIDAR", [64])]
    saved = json.loads((stereo_lidar_export / "model_metadata.json").read_text())
    assert saved["sensor"] == ["STEREO_CAMERAS", "LIDAR"]
    assert [entry["name"] for entry in saved["inputs"]] == ["STEREO_CAMERAS", "LIDAR"]
    runner = PolicyRunner(load_policy(stereo_lidar_export))
    sim = Simulator(TRACK, n_cars=1, image_size=(160, 120), grayscale=False, seed=0)
    sim.place_car(0, start_poses(1)[0])
    left, right = sim.render_stereo()[0]
    command = runner.act_sensors({"STEREO_CAMERAS": (left, right), "LIDAR": sim.scan()[0]})
    assert command.speed > 0
    with pytest.raises(ValueError, match="no data of sensor"):
        runner.act_sensors({"STEREO_CAMERAS": (left, right)})
    result = run_cli(
        "export", str(stereo_lidar_export.parent / "run"), "--out", str(tmp_path / "ir"), "--format", "openvino"
    )
    assert result.returncode == 0, result.stderr[-3000:]  # the IR passed its parity check against ONNX and torch
    ir = load_policy(tmp_path / "ir" / "model.xml")
    assert ir.runtime == "openvino" and ir.input_names == ("STEREO_CAMERAS", "LIDAR")
    data = {"STEREO_CAMERAS": (left, right), "LIDAR": sim.scan()[0]}
    assert PolicyRunner(ir).act_sensors(data) == PolicyRunner(load_policy(tmp_path / "ir")).act_sensors(data)


INFERENCE_NODE = "deepracer_rl.ros.inference_node"


def test_the_inference_node_drives_on_the_stereo_pair_and_scan_of_sim_node(stereo_lidar_export, simulators, tmp_path):
    """Two processes over DDS, lockstep: sim_node publishes /stereo/*/image_raw and /scan, the node
    subscribes to both, acts once per stamp, and sim_node steps on every command it sends."""
    import rclpy
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry

    from deepracer_rl.ros import contract

    sim = simulators(
        params=(
            "track:=reinvent_base",
            "lockstep:=true",
            "sensors:=STEREO_CAMERAS,LIDAR",
            "image_width:=160",
            "image_height:=120",
        )
    )
    sim.wait_started()
    driver = SimProcess(
        tmp_path / "inference.log", [INFERENCE_NODE, "--ros-args", "-p", f"model:={stereo_lidar_export}"]
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("sensors_test", context=context)
        commands, odometry = [], []
        node.create_subscription(Twist, contract.CMD_VEL, commands.append, 100)
        node.create_subscription(Odometry, contract.ODOM, odometry.append, 100)
        from rclpy.executors import SingleThreadedExecutor

        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (len(odometry) > 60 and len(commands) > 20):
            executor.spin_once(timeout_sec=0.05)
        subscribers = {
            t: node.count_subscribers(t) for t in (contract.STEREO_LEFT, contract.STEREO_RIGHT, contract.SCAN)
        }
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    log = driver.output()
    assert all(count >= 1 for count in subscribers.values()), (subscribers, log[-2000:])
    assert len(commands) > 20 and len(odometry) > 60, (len(commands), len(odometry), log[-2000:], sim.output()[-2000:])
    moving = [c for c in commands if c.linear.x > 0]
    assert moving, "the node published only stops"
    # sim_node applied them: the car moved, at the commanded speeds (lockstep: one period per command)
    first, last = odometry[0].pose.pose.position, odometry[-1].pose.pose.position
    assert math.hypot(last.x - first.x, last.y - first.y) > 0.5
    speeds = {round(c.linear.x, 3) for c in moving}
    assert speeds <= {0.5, 1.0}, speeds
    assert "bad sensor reading" not in log, log[-2000:]
    assert driver.interrupt() == 0
    assert sim.interrupt() == 0


def test_the_inference_node_refuses_a_topic_of_another_message_type(stereo_lidar_export, simulators, tmp_path):
    sim = simulators(
        params=("track:=reinvent_base", "sensors:=STEREO_CAMERAS,LIDAR", "image_width:=160", "image_height:=120")
    )
    sim.wait_started()
    driver = SimProcess(
        tmp_path / "wrong_type.log",
        [INFERENCE_NODE, "--ros-args", "-p", f"model:={stereo_lidar_export}", "-p", "scan_topic:=/odom"],
    )
    code, output = driver.run_to_end(timeout=40)
    assert code == 2, output[-2000:]
    assert "topic /odom carries nav_msgs/msg/Odometry, but this policy reads sensor_msgs/msg/LaserScan" in output
    assert "Traceback" not in output
    assert sim.interrupt() == 0


def test_a_scan_is_read_at_the_64_beam_angles_whatever_its_sampling():
    from sensor_msgs.msg import LaserScan

    from deepracer_rl.lidar import MAX_ANGLE, MIN_ANGLE
    from deepracer_rl.ros.inference_node import scan_ranges

    sim_scan = LaserScan(angle_min=MIN_ANGLE, angle_max=MAX_ANGLE, angle_increment=(MAX_ANGLE - MIN_ANGLE) / 63)
    sim_scan.range_min, sim_scan.range_max = 0.15, 12.0
    sim_scan.ranges = [0.5] * 63 + [math.inf]
    np.testing.assert_allclose(scan_ranges(sim_scan), [0.5] * 63 + [math.inf])
    dense = LaserScan(angle_min=-math.pi, angle_increment=2 * math.pi / 360, range_min=0.15, range_max=12.0)
    dense.ranges = [1.0 + i / 1000 for i in range(360)]
    dense.ranges[0] = 0.01  # below range_min: no hit
    beams = scan_ranges(dense)
    assert beams.shape == (64,) and np.all(np.isfinite(beams))
    assert beams[0] == pytest.approx(1.0 + round((MIN_ANGLE + math.pi) / (2 * math.pi / 360)) / 1000, abs=1e-6)
    with pytest.raises(ValueError, match="no usable ranges"):
        scan_ranges(LaserScan())
