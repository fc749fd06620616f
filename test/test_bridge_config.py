"""The ros_gz_bridge configuration (config/ros_gz_bridge.yaml) is the topic contract.

Its ROS topics are the contract's (all but /initialpose, which gz_control serves) and the other
sensors' (the stereo pair, /scan: `contract.SENSOR_TOPICS`), with the contract's message types;
each entry is a ROS/gz type pair the Jazzy bridge supports, with only the keys it reads and the
right direction; its gz topics are the ones Gazebo publishes or subscribes to. The contract here
is also compared with the table of docs/architecture.md.
"""

from __future__ import annotations

import importlib
import re

import yaml
from gazebo_helpers import BRIDGE_YAML, REPO, gz_topic, plugin, urdf_root, value

from deepracer_rl.car import CAMERA_LINK

# The topic contract (docs/architecture.md, "Topic contract" table, without /tf): name -> ROS type.
CONTRACT = {
    "/camera/image_raw": "sensor_msgs/msg/Image",
    "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
    "/odom": "nav_msgs/msg/Odometry",
    "/cmd_vel": "geometry_msgs/msg/Twist",
    "/clock": "rosgraph_msgs/msg/Clock",
    "/initialpose": "geometry_msgs/msg/PoseWithCovarianceStamped",
}

# ROS <-> gz message pairs the Jazzy bridge supports (ros_gz_bridge README, jazzy branch),
# for the types of the contract; and the YAML keys it reads (src/bridge_config.cpp).
BRIDGE_PAIRS = {
    ("rosgraph_msgs/msg/Clock", "gz.msgs.Clock"),
    ("sensor_msgs/msg/Image", "gz.msgs.Image"),
    ("sensor_msgs/msg/CameraInfo", "gz.msgs.CameraInfo"),
    ("nav_msgs/msg/Odometry", "gz.msgs.Odometry"),
    ("nav_msgs/msg/Odometry", "gz.msgs.OdometryWithCovariance"),
    ("geometry_msgs/msg/Twist", "gz.msgs.Twist"),
    ("geometry_msgs/msg/TwistStamped", "gz.msgs.Twist"),
    ("geometry_msgs/msg/PoseStamped", "gz.msgs.Pose"),
    ("sensor_msgs/msg/LaserScan", "gz.msgs.LaserScan"),
}
BRIDGE_KEYS = {
    "topic_name",
    "ros_topic_name",
    "gz_topic_name",
    "ros_type_name",
    "gz_type_name",
    "direction",
    "publisher_queue",
    "subscriber_queue",
    "lazy",
}
BRIDGE_DIRECTIONS = {"BIDIRECTIONAL", "GZ_TO_ROS", "ROS_TO_GZ"}


def documented_contract() -> dict[str, str]:
    """The topic table of docs/architecture.md: name -> ROS type."""
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text.split("## Topic contract", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(/[^`]+)` \| ([\w/]+) \|", section, re.M)
    return {name: kind.replace("/", "/msg/") for name, kind in rows}


def test_the_contract_here_is_the_documented_contract():
    from deepracer_rl.ros.contract import TF

    documented = documented_contract()
    assert documented.pop(TF) == "tf2_msgs/msg/TFMessage"  # published only where tf2_msgs exists
    assert documented == CONTRACT


def sensor_topics() -> dict[str, str]:
    """The other DeepRacer sensors' topics of `contract.SENSOR_TOPICS` -> their types (`contract.MESSAGE_TYPES`)."""
    from deepracer_rl.ros.contract import MESSAGE_TYPES, SENSOR_TOPICS

    return {t: MESSAGE_TYPES[t] for topics in SENSOR_TOPICS.values() for t in topics}


def test_the_contract_module_holds_the_documented_names_and_types():
    from deepracer_rl.ros import contract

    names = {
        contract.IMAGE,
        contract.CAMERA_INFO,
        contract.ODOM,
        contract.CMD_VEL,
        contract.CLOCK,
        contract.INITIALPOSE,
    }
    assert names == set(CONTRACT)
    for topic, kind in contract.MESSAGE_TYPES.items():
        assert CONTRACT.get(topic, kind) == kind
    assert sensor_topics() == {
        "/camera/image_raw": "sensor_msgs/msg/Image",
        "/stereo/left/image_raw": "sensor_msgs/msg/Image",
        "/stereo/right/image_raw": "sensor_msgs/msg/Image",
        "/scan": "sensor_msgs/msg/LaserScan",
    }


def test_bridge_topics_are_the_contract_except_initialpose_and_the_other_sensors():
    from deepracer_rl.ros.contract import INITIALPOSE

    entries = yaml.safe_load(BRIDGE_YAML.read_text())
    ros_topics = [e["ros_topic_name"] for e in entries]
    assert len(ros_topics) == len(set(ros_topics))
    assert set(ros_topics) | {INITIALPOSE} == set(CONTRACT) | set(sensor_topics())
    assert INITIALPOSE not in ros_topics  # gz_control serves it through set_pose


def test_bridge_entries_are_valid_ros_gz_pairs_in_the_right_direction():
    for e in yaml.safe_load(BRIDGE_YAML.read_text()):
        assert set(e) <= BRIDGE_KEYS, set(e) - BRIDGE_KEYS
        assert e["ros_type_name"] == {**CONTRACT, **sensor_topics()}[e["ros_topic_name"]]
        assert (e["ros_type_name"], e["gz_type_name"]) in BRIDGE_PAIRS
        assert e["direction"] in BRIDGE_DIRECTIONS
        expected = "ROS_TO_GZ" if e["ros_topic_name"] == "/cmd_vel" else "GZ_TO_ROS"
        assert e["direction"] == expected, e
        package, kind, name = e["ros_type_name"].split("/")
        assert kind == "msg" and hasattr(importlib.import_module(f"{package}.msg"), name)


def test_bridge_gz_topics_are_the_ones_gazebo_publishes():
    root = urdf_root()
    sensor = root.find(f"gazebo[@reference='{CAMERA_LINK}']/sensor[@type='camera']")
    others = [s for s in root.iter("sensor") if s is not sensor]
    assert {s.get("type") for s in others} == {"camera", "gpu_lidar"}
    published = {
        gz_topic(value(sensor, "topic")),
        gz_topic(value(sensor.find("camera"), "camera_info_topic")),
        *(gz_topic(value(s, "topic")) for s in others),
        gz_topic(value(plugin(root, "gz-sim-odometry-publisher-system"), "odom_topic")),
        "/clock",  # gz-sim's SimulationRunner publishes the clock on /clock
    }
    subscribed = {gz_topic(value(plugin(root, "gz-sim-ackermann-steering-system"), "topic"))}
    for e in yaml.safe_load(BRIDGE_YAML.read_text()):
        pool = subscribed if e["direction"] == "ROS_TO_GZ" else published
        assert e["gz_topic_name"] in pool, e


# Services the Jazzy bridge forwards (ros_gz_bridge src/service_factories/ros_gz_interfaces.cpp, 1.0.11+):
# ROS service type -> (gz request, gz response).
BRIDGE_SERVICES = {
    "ros_gz_interfaces/srv/ControlWorld": ("gz.msgs.WorldControl", "gz.msgs.Boolean"),
    "ros_gz_interfaces/srv/DeleteEntity": ("gz.msgs.Entity", "gz.msgs.Boolean"),
    "ros_gz_interfaces/srv/SpawnEntity": ("gz.msgs.EntityFactory", "gz.msgs.Boolean"),
    "ros_gz_interfaces/srv/SetEntityPose": ("gz.msgs.Pose", "gz.msgs.Boolean"),
}


def test_the_set_pose_service_is_a_pair_the_bridge_forwards_and_given_by_the_launch_file_not_the_yaml():
    from deepracer_rl.ros.contract import SET_POSE_TYPES, set_pose_bridge_argument, set_pose_service

    ros_type, gz_req, gz_rep = SET_POSE_TYPES
    assert BRIDGE_SERVICES[ros_type] == (gz_req, gz_rep)
    package, kind, name = ros_type.split("/")
    assert kind == "srv" and hasattr(importlib.import_module(f"{package}.srv"), name)
    # parameter_bridge's service syntax: <name>@<ROS srv>@<gz request>@<gz response> (src/parameter_bridge.cpp)
    service, *types = set_pose_bridge_argument("reinvent_base").split("@")
    assert service == set_pose_service("reinvent_base") == "/world/reinvent_base/set_pose"
    assert tuple(types) == SET_POSE_TYPES
    entries = yaml.safe_load(BRIDGE_YAML.read_text())
    assert not any("service_name" in e for e in entries)  # its name holds the world's: the launch file gives it
    assert set_pose_bridge_argument("<world>") in BRIDGE_YAML.read_text()
