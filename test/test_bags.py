"""Bags: `record` writes a rosbag2 bag ROS reads with its own message types; `replay` runs a policy on
a bag's frames (a simulator recording, a DeepRacer car's CameraMsg/ServoCtrlMsg bag, CompressedImage).

Real files only: bags written by the CLI and by rosbags, read back by rosbags and decoded by rclpy's
own deserializer into the ROS 2 message classes; the baseline-cloned policy (conftest).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from deepracer_rl.bags import CAMERA_MSG, SERVO_MSG, frame_statistics, replay_bag, typestore
from deepracer_rl.camera import CameraRenderer
from deepracer_rl.car import CarSpec
from deepracer_rl.track import Track

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "deepracer_rl.cli"]
SHARE = Path(sys.prefix) / "share"  # the ROS message packages' type descriptions (with their hashes)
TRACK = Track.load("reinvent_base")


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO)


def track_views(count: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """(count, H, W, 3) RGB camera views along reinvent_base's centre line."""
    points, headings = TRACK.point_at(np.linspace(0.0, TRACK.length, count, endpoint=False))
    renderer = CameraRenderer(TRACK, CarSpec.from_urdf().camera, size[0], size[1], grayscale=False)
    return renderer.render(np.column_stack([points, headings]))


def like_a_real_camera(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A darker, softer, noisier frame: what a real camera makes of the scene (gain 0.6, blur, noise)."""
    soft = cv2.GaussianBlur(rgb.astype(np.float32) * 0.6, (5, 5), 1.2)
    return np.clip(soft + rng.normal(0.0, 4.0, rgb.shape), 0, 255).astype(np.uint8)


# ---- recording -----------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_record_writes_a_bag_that_ros_decodes_with_its_own_message_types(storage, tmp_path):
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import Image

    bag = tmp_path / "drive"
    result = run_cli("record", "--driver", "baseline", "--bag", str(bag), "--laps", "1", "--storage", storage)
    assert result.returncode == 0, result.stderr
    frames = int(result.stdout.split("recorded ")[1].split()[0])
    assert frames > 60
    # The type hashes in metadata.yaml are ROS 2 Jazzy's own (from the installed message packages).
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == storage
    for entry in info["topics_with_message_count"]:
        meta = entry["topic_metadata"]
        package, _, name = meta["type"].split("/")
        description = json.loads((SHARE / package / "msg" / f"{name}.json").read_text())
        assert meta["type_description_hash"] == description["type_hashes"][0]["hash_string"], meta["type"]
        assert entry["message_count"] == frames
    # rclpy decodes every message with the ROS message classes.
    classes = {"/camera/image_raw": Image, "/cmd_vel": Twist, "/odom": Odometry}
    decoded: dict[str, list] = {topic: [] for topic in classes}
    with Reader(bag) as reader:
        for connection, _, raw in reader.messages():
            decoded[connection.topic].append(deserialize_message(bytes(raw), classes[connection.topic]))
    first = decoded["/camera/image_raw"][0]
    assert (first.width, first.height, first.encoding, first.step) == (160, 120, "rgb8", 480)
    assert first.header.frame_id == "camera_optical_link" and len(first.data) == 160 * 120 * 3
    assert max(cmd.linear.x for cmd in decoded["/cmd_vel"]) > 1.0  # the baseline drives
    odom = decoded["/odom"][-1]
    assert odom.header.frame_id == "odom" and odom.child_frame_id == "base_link"
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in decoded["/camera/image_raw"]]
    assert np.allclose(np.diff(stamps), 1 / 15, atol=1e-6)  # sim time, one frame per control period


def test_record_refuses_an_existing_bag_and_a_bad_size_before_driving(tmp_path):
    (tmp_path / "taken").mkdir()
    result = run_cli("record", "--driver", "baseline", "--bag", str(tmp_path / "taken"))
    assert result.returncode == 2 and "already exists" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("record", "--driver", "baseline", "--bag", str(tmp_path / "b"), "--size", "8x8")
    assert result.returncode == 2 and "8x8 out of range" in result.stderr
    result = run_cli("record", str(tmp_path / "no_such_run"), "--bag", str(tmp_path / "c"))
    assert result.returncode == 2 and "no_such_run" in result.stderr and not (tmp_path / "c").exists()


# ---- replay ------------------------------------------------------------------------------------


def test_replay_of_a_simulator_recording_matches_the_drive_and_shows_no_gap(cloned_policy, tmp_path):
    bag = tmp_path / "sim_drive"
    result = run_cli("record", str(cloned_policy), "--bag", str(bag), "--laps", "1")
    assert result.returncode == 0, result.stderr
    result = run_cli("replay", str(bag), "--model", str(cloned_policy), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    frames = summary["frames"]
    assert frames > 60 and summary["compared"] == frames and summary["refused"] == 0
    print(f"sim replay: same action {summary['same_action']}, steering MAE {summary['steering_mae_deg']} deg")
    # The policy sees the recorded frames as it saw the simulator's: it picks the action the car took.
    assert summary["same_action"] >= 0.95
    assert summary["simulated_from"].startswith("the bag's odometry poses")
    for key, row in summary["frame_statistics"].items():
        assert abs(row["difference"]) <= 1e-6 * max(1.0, abs(row["simulated"])), (key, row)
    with open(bag.with_name("sim_drive-replay") / "actions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == frames and rows[0]["car_speed"] != "" and rows[0]["car_angle"] == ""


def write_car_bag(path: Path, frames: np.ndarray, rng: np.random.Generator, storage: str = "sqlite3") -> None:
    """A bag as the DeepRacer's stack records it: CameraMsg (bgr8 images[]) and ServoCtrlMsg, 15 Hz."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = typestore()
    types = store.types
    plugin = StoragePlugin.SQLITE3 if storage == "sqlite3" else StoragePlugin.MCAP
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        camera = writer.add_connection("/camera_pkg/video_mjpeg", CAMERA_MSG, typestore=store)
        servo = writer.add_connection("/ctrl_pkg/servo_msg", SERVO_MSG, typestore=store)
        t0 = 1_700_000_000 * 10**9
        for i, rgb in enumerate(frames):
            t = t0 + i * 66_666_667
            stamp = types["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9)
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            image = types["sensor_msgs/msg/Image"](
                header=types["std_msgs/msg/Header"](stamp=stamp, frame_id="camera"),
                height=bgr.shape[0],
                width=bgr.shape[1],
                encoding="bgr8",
                is_bigendian=0,
                step=bgr.shape[1] * 3,
                data=bgr.reshape(-1),
            )
            writer.write(camera, t, store.serialize_cdr(types[CAMERA_MSG](images=[image]), CAMERA_MSG))
            angle = float(np.clip(rng.normal(0.0, 0.3), -1, 1))
            command = types[SERVO_MSG](angle=angle, throttle=0.6)
            writer.write(servo, t + 20_000_000, store.serialize_cdr(command, SERVO_MSG))


def test_replay_reads_a_deepracer_car_bag_and_measures_the_gap(cloned_policy, tmp_path):
    rng = np.random.default_rng(0)
    views = track_views(40)
    real = np.array([like_a_real_camera(v, rng) for v in views])
    real[7] = 0  # the lens covered: the node would stop there
    bag = tmp_path / "car_bag"
    write_car_bag(bag, real, rng)
    summary = replay_bag(bag, cloned_policy, out_dir=tmp_path / "out")
    assert summary.frames == 40 and summary.compared == 40
    assert summary.image_topic == f"/camera_pkg/video_mjpeg ({CAMERA_MSG})"
    assert summary.command_topic == f"/ctrl_pkg/servo_msg ({SERVO_MSG})"
    assert summary.refused == 1 and summary.throttle_mae is not None and summary.speed_mae is None
    assert summary.simulated_from == "the centre line of reinvent_base"
    gap = summary.gap()
    # The recorded frames are 0.6 x as bright and softer: the numbers say so.
    expected = np.mean([frame_statistics(f)["brightness"] for f in real])
    assert gap["brightness"]["recorded"] == pytest.approx(expected, abs=1e-3)
    assert 0.5 <= gap["brightness"]["ratio"] <= 0.7
    assert gap["contrast"]["ratio"] < 0.75 and gap["sharpness"]["ratio"] < 0.5
    with open(tmp_path / "out" / "actions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[7]["note"].startswith("stop: uniform frame") and float(rows[7]["policy_speed"]) == 0.0
    assert all(r["car_angle"] != "" and r["car_speed"] == "" for r in rows)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["frames"] == 40


def test_replay_reads_compressed_images_and_twist_commands(cloned_policy, tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = typestore()
    types = store.types
    bag = tmp_path / "compressed"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        camera = writer.add_connection(
            "/camera/image_raw/compressed", "sensor_msgs/msg/CompressedImage", typestore=store
        )
        cmd = writer.add_connection("/cmd_vel", "geometry_msgs/msg/Twist", typestore=store)
        vector = types["geometry_msgs/msg/Vector3"]
        for i, rgb in enumerate(track_views(10, (320, 240))):
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            assert ok
            stamp = types["builtin_interfaces/msg/Time"](sec=i, nanosec=0)
            message = types["sensor_msgs/msg/CompressedImage"](
                header=types["std_msgs/msg/Header"](stamp=stamp, frame_id="camera"), format="jpeg", data=jpeg.ravel()
            )
            writer.write(camera, i * 10**9, store.serialize_cdr(message, "sensor_msgs/msg/CompressedImage"))
            twist = types["geometry_msgs/msg/Twist"](linear=vector(x=1.0, y=0.0, z=0.0), angular=vector(x=0, y=0, z=0))
            writer.write(cmd, i * 10**9 + 1000, store.serialize_cdr(twist, "geometry_msgs/msg/Twist"))
    summary = replay_bag(bag, cloned_policy, out_dir=tmp_path / "out")
    assert summary.frames == 10 and summary.compared == 10 and summary.speed_mae is not None
    assert summary.gap()["brightness"]["ratio"] == pytest.approx(1.0, abs=0.05)  # JPEG of sim frames: no gap


def test_replay_errors_name_the_bag_and_topics(cloned_policy, tmp_path):
    (tmp_path / "not_a_bag").mkdir()
    (tmp_path / "not_a_bag" / "metadata.yaml").write_text("hello: world\n")
    result = run_cli("replay", str(tmp_path / "not_a_bag"), "--model", str(cloned_policy))
    assert result.returncode == 2 and "not_a_bag: not a readable ROS bag" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("replay", str(tmp_path / "missing"), "--model", str(cloned_policy))
    assert result.returncode == 2 and "missing: no such bag" in result.stderr
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = typestore()
    with Writer(tmp_path / "commands_only", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        writer.add_connection("/cmd_vel", "geometry_msgs/msg/Twist", typestore=store)
    result = run_cli("replay", str(tmp_path / "commands_only"), "--model", str(cloned_policy))
    assert result.returncode == 2 and "no camera topic" in result.stderr and "/cmd_vel (geometry_msgs" in result.stderr
