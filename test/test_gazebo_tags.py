"""The URDF's Gazebo tags (deepracer_rl/gazebo_tags.py) and the URDF as Gazebo loads it.

The generated <gazebo> block is up to date and goes stale when a joint moves; the plugin
figures are the URDF's own joints; the plugins publish the contract's frames and topics with
documented Harmonic file and element names; the camera sensor's topics are the bridged ones;
the URDF passes `check_urdf` and converts to valid SDF (`gz sdf`/`ign sdf`) keeping plugins,
joints and camera pose.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml
from gazebo_helpers import (
    BRIDGE_YAML,
    HARMONIC_SYSTEMS,
    URDF,
    gz_topic,
    needs_sdf_tool,
    plugin,
    run_sdf_check,
    spec_violations,
    urdf_root,
    value,
    values,
)

from deepracer_rl import gazebo_tags
from deepracer_rl.car import (
    BASE_LINK,
    CAMERA_LINK,
    CAMERA_OPTICAL_LINK,
    CHASSIS_LINK,
    FRONT_WHEEL_JOINTS,
    LASER_LINK,
    REAR_WHEEL_JOINTS,
    STEERING_JOINTS,
    STEREO_LINKS,
    STEREO_OPTICAL_LINKS,
    CarSpec,
    UrdfReader,
)
from deepracer_rl.lidar import (
    MAX_ANGLE,
    MAX_RANGE,
    MIN_ANGLE,
    MIN_RANGE,
    MOUNT_X,
    MOUNT_YAW,
    MOUNT_Z,
    NOISE_SD,
    SAMPLES,
)
from deepracer_rl.sim import STEREO_BASELINE

CAR_SYSTEMS = {
    "gz-sim-ackermann-steering-system",
    "gz-sim-odometry-publisher-system",
    "gz-sim-joint-state-publisher-system",
}


def test_urdf_gazebo_tags_are_generated_and_up_to_date():
    assert gazebo_tags.current_block(URDF) == gazebo_tags.render(URDF), (
        "run `python -m deepracer_rl.gazebo_tags` to regenerate the URDF's Gazebo tags"
    )
    assert gazebo_tags.main(["--check", str(URDF)]) == 0


def test_a_joint_edit_makes_the_tags_stale_until_regenerated(tmp_path, capsys):
    copy = tmp_path / "car.urdf"
    text = URDF.read_text()
    copy.write_text(
        text.replace('<origin xyz="0.082311 0.079601 0.011751"', '<origin xyz="0.092311 0.079601 0.011751"').replace(
            '<origin xyz="0.082311 -0.079601 0.011751"', '<origin xyz="0.092311 -0.079601 0.011751"'
        )
    )
    assert gazebo_tags.main(["--check", str(copy)]) == 1
    assert gazebo_tags.update(copy) is True
    assert gazebo_tags.main(["--check", str(copy)]) == 0
    wheel_base = float(value(plugin(ET.parse(copy).getroot(), "gz-sim-ackermann-steering-system"), "wheel_base"))
    assert wheel_base == pytest.approx(CarSpec.from_urdf(copy).wheelbase, abs=1e-6)
    assert wheel_base == pytest.approx(CarSpec.from_urdf().wheelbase + 0.01, abs=1e-6)
    capsys.readouterr()


def test_ackermann_plugin_figures_are_the_urdf_joints(car):
    root = urdf_root()
    p = plugin(root, "gz-sim-ackermann-steering-system")
    joints = {j.get("name"): j for j in root.findall("joint")}

    def origin(name):
        return np.array([float(v) for v in joints[name].find("origin").get("xyz").split()])

    assert values(p, "left_joint") == [REAR_WHEEL_JOINTS[0], FRONT_WHEEL_JOINTS[0]]
    assert values(p, "right_joint") == [REAR_WHEEL_JOINTS[1], FRONT_WHEEL_JOINTS[1]]
    assert value(p, "left_steering_joint") == STEERING_JOINTS[0]
    assert value(p, "right_steering_joint") == STEERING_JOINTS[1]
    for name in values(p, "left_joint") + values(p, "right_joint"):
        assert joints[name].get("type") == "continuous"
    for name in STEERING_JOINTS:
        assert joints[name].get("type") == "revolute"
        assert joints[name].find("axis").get("xyz") == "0 0 1"
    # left wheels are at +y: the plugin's left/right must match the joints' sides
    assert origin(REAR_WHEEL_JOINTS[0])[1] > 0 > origin(REAR_WHEEL_JOINTS[1])[1]
    assert origin(STEERING_JOINTS[0])[1] > 0 > origin(STEERING_JOINTS[1])[1]

    def num(tag):
        return float(value(p, tag))

    assert num("wheel_base") == pytest.approx(car.wheelbase, abs=1e-6)
    assert num("wheel_separation") == pytest.approx(car.rear_track, abs=1e-6)
    assert num("wheel_radius") == pytest.approx(car.wheel_radius, abs=1e-6)
    kingpins = origin(STEERING_JOINTS[0])[1] - origin(STEERING_JOINTS[1])[1]  # hinges share the chassis frame
    assert num("kingpin_width") == pytest.approx(kingpins, abs=1e-6)
    # the plugin's tightest turn is wheel_base / sin(limit), steering the centre wheel to
    # atan(sin(limit)): that centre angle must be the URDF hinge limit
    assert math.atan(math.sin(num("steering_limit"))) == pytest.approx(car.max_steer, abs=1e-6)
    assert num("min_velocity") < 0 < num("max_velocity")
    assert num("min_acceleration") < 0 < num("max_acceleration")
    assert gz_topic(value(p, "topic")) == "/cmd_vel"


def test_odometry_and_joint_state_plugins_publish_the_contract_frames(car):
    root = urdf_root()
    odom = plugin(root, "gz-sim-odometry-publisher-system")
    assert value(odom, "odom_frame") == "odom"
    assert value(odom, "robot_base_frame") == BASE_LINK
    assert float(value(odom, "odom_publish_frequency")) == car.camera.rate_hz
    assert gz_topic(value(odom, "odom_topic")) == "/odom"
    joint_states = plugin(root, "gz-sim-joint-state-publisher-system")
    assert value(joint_states, "topic")


def test_urdf_plugins_use_documented_harmonic_names_and_elements():
    root = urdf_root()
    found = {p.get("filename") for p in root.iter("plugin")}
    assert found == CAR_SYSTEMS
    for p in root.iter("plugin"):
        name, elements = HARMONIC_SYSTEMS[p.get("filename")]
        assert p.get("name") == name
        assert {c.tag for c in p} <= elements, {c.tag for c in p} - elements
    for gazebo in root.findall("gazebo"):
        assert gazebo.get("reference") in (None, CAMERA_LINK, LASER_LINK, *STEREO_LINKS)


def test_camera_sensor_topics_and_frame_are_the_bridged_ones():
    sensor = urdf_root().find(f"gazebo[@reference='{CAMERA_LINK}']/sensor[@type='camera']")
    assert value(sensor, "gz_frame_id") == CAMERA_OPTICAL_LINK
    gz_topics = {e["gz_topic_name"]: e["ros_topic_name"] for e in yaml.safe_load(BRIDGE_YAML.read_text())}
    assert gz_topics[gz_topic(value(sensor, "topic"))] == "/camera/image_raw"
    assert gz_topics[gz_topic(value(sensor.find("camera"), "camera_info_topic"))] == "/camera/camera_info"
    assert value(sensor.find("camera"), "image/format") == "R8G8B8"  # the bridge's rgb8


def test_urdf_passes_check_urdf():
    exe = shutil.which("check_urdf")
    if exe is None:
        pytest.skip("check_urdf not installed (Debian: apt-get install liburdfdom-tools)")
    result = subprocess.run([exe, str(URDF)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Successfully Parsed XML" in result.stdout, result.stdout + result.stderr


def test_urdf_converts_to_valid_sdf_with_the_plugins_and_camera(tmp_path):
    tool = needs_sdf_tool()
    ((path, check),) = run_sdf_check([URDF])
    assert check.returncode == 0 and "Valid" in check.stdout, check.stdout
    printed = subprocess.run([*tool, "-p", str(URDF)], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    sdf = ET.fromstring(printed.stdout)
    assert spec_violations(sdf) == []
    model = sdf.find("model")
    assert {p.get("filename") for p in model.findall("plugin")} == CAR_SYSTEMS
    joints = {j.get("name") for j in model.findall("joint")}
    for p in model.findall("plugin"):
        for tag in ("left_joint", "right_joint", "left_steering_joint", "right_steering_joint"):
            assert set(values(p, tag)) <= joints  # joints survive fixed-joint lumping
    sensors = {s.get("name"): s for s in model.iter("sensor")}
    assert set(sensors) == {"camera", "stereo_left", "stereo_right", "lidar"}

    def pose(name):
        return [float(v) for v in value(sensors[name], "pose").split()]

    cam = CarSpec.from_urdf().camera
    assert pose("camera")[:3] == pytest.approx([cam.x, cam.y, cam.z], abs=1e-6)
    assert pose("camera")[4] == pytest.approx(cam.pitch, abs=1e-6)
    # the pair: the camera moved half the baseline left and right, same pitch
    for name, y in (("stereo_left", STEREO_BASELINE / 2), ("stereo_right", -STEREO_BASELINE / 2)):
        assert pose(name)[:3] == pytest.approx([cam.x, y, cam.z], abs=1e-6)
        assert pose(name)[3:] == pytest.approx(pose("camera")[3:], abs=1e-6)
    # the lidar: DeepRacer's mount on the chassis origin, turned by pi
    chassis = UrdfReader(URDF).link_pose(CHASSIS_LINK)[:3, 3]
    lidar = pose("lidar")
    assert lidar[:3] == pytest.approx([chassis[0] + MOUNT_X, 0.0, chassis[2] + MOUNT_Z], abs=1e-6)
    assert abs(abs(lidar[5]) - MOUNT_YAW) < 1e-3 and lidar[3:5] == pytest.approx([0, 0], abs=1e-6)
    assert sensors["lidar"].get("type") == "gpu_lidar"


def test_the_lidar_sensor_is_deepracers_and_the_stereo_cameras_are_the_front_camera_moved():
    """The generated gpu_lidar: 64 beams over -2.61799..2.61799 rad, 0.15-12 m, Gaussian noise sd 0.01 m (the
    facts `lidar` casts with), frame laser, gz topic /scan; the stereo cameras: the front camera's
    intrinsics and rate, frames the contract's, 6 cm apart; every topic bridged to the contract's."""
    root = urdf_root()
    gz_topics = {e["gz_topic_name"]: e["ros_topic_name"] for e in yaml.safe_load(BRIDGE_YAML.read_text())}
    lidar = root.find(f"gazebo[@reference='{LASER_LINK}']/sensor[@type='gpu_lidar']")
    horizontal = lidar.find("lidar/scan/horizontal")
    assert int(value(horizontal, "samples")) == SAMPLES == 64
    assert float(value(horizontal, "min_angle")) == MIN_ANGLE and float(value(horizontal, "max_angle")) == MAX_ANGLE
    assert int(value(lidar.find("lidar/scan/vertical"), "samples")) == 1
    assert float(value(lidar, "lidar/range/min")) == MIN_RANGE and float(value(lidar, "lidar/range/max")) == MAX_RANGE
    assert value(lidar, "lidar/noise/type") == "gaussian" and float(value(lidar, "lidar/noise/stddev")) == NOISE_SD
    assert value(lidar, "gz_frame_id") == LASER_LINK
    assert float(value(lidar, "update_rate")) == CarSpec.from_urdf().camera.rate_hz
    assert gz_topics[gz_topic(value(lidar, "topic"))] == "/scan"
    joint = next(j for j in root.findall("joint") if j.find("child").get("link") == LASER_LINK)
    assert joint.find("parent").get("link") == CHASSIS_LINK
    assert [float(v) for v in joint.find("origin").get("rpy").split()] == [0, 0, MOUNT_YAW]

    front = root.find(f"gazebo[@reference='{CAMERA_LINK}']/sensor[@type='camera']")
    reader = UrdfReader(URDF)
    centre = reader.link_pose(CAMERA_LINK)[:3, 3]
    ys = []
    for link, optical, ros_topic in zip(
        STEREO_LINKS, STEREO_OPTICAL_LINKS, ("/stereo/left/image_raw", "/stereo/right/image_raw")
    ):
        sensor = root.find(f"gazebo[@reference='{link}']/sensor[@type='camera']")
        assert value(sensor, "gz_frame_id") == optical
        assert gz_topics[gz_topic(value(sensor, "topic"))] == ros_topic
        assert value(sensor, "update_rate") == value(front, "update_rate")
        for tag in ("horizontal_fov", "image/width", "image/height", "image/format", "clip/near", "clip/far"):
            assert value(sensor.find("camera"), tag) == value(front.find("camera"), tag), tag
        offset = reader.link_pose(link)[:3, 3] - centre
        assert offset[[0, 2]] == pytest.approx([0, 0], abs=1e-9)
        ys.append(offset[1])
        # the optical frame: the front camera's optical rotation
        assert reader.link_pose(optical)[:3, :3] == pytest.approx(
            reader.link_pose(CAMERA_OPTICAL_LINK)[:3, :3], abs=1e-9
        )
    assert ys[0] - ys[1] == pytest.approx(STEREO_BASELINE, abs=1e-9) and ys[0] > 0
