"""A simulator behind the topic contract and, with policy:=DIR, a policy driving it.

    ros2 launch deepracer_rl sim.launch.py track:=reinvent_base
    ros2 launch deepracer_rl sim.launch.py policy:=runs/demo/export            # watch it drive
    ros2 launch deepracer_rl sim.launch.py policy:=runs/demo/export lockstep:=true
    ros2 launch deepracer_rl sim.launch.py simulator:=gazebo headless:=true policy:=runs/demo/export

simulator:=embedded (default) starts sim_node, which publishes /camera/image_raw,
/camera/camera_info, /odom, /clock (and /tf) and takes /cmd_vel and /initialpose;
simulator:=gazebo includes gazebo.launch.py (Gazebo Harmonic, same topics; track, headless,
lockstep, race_type, world_config and seed are passed on, encoding/randomize/sensors are the
embedded simulator's only: Gazebo's car always carries the lidar and the stereo pair).
race_type / world_config: a race with obstacles or bot cars (DeepRacer's world-config keys); the
embedded simulator spawns them (moving bot cars, poses on /objects); with Gazebo, its world variant holds
them and gazebo.launch.py's bot_cars_node drives the bot cars and publishes /objects (docs/races.md).
inference_node (profile sim) turns the camera into /cmd_vel. In lockstep mode each command
advances the simulator one period, so the pair runs as fast as the CPU allows.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = "deepracer_rl"
TRUE = ("1", "true", "yes", "on")
SIMULATORS = ("embedded", "gazebo")


def _share(package, *parts):
    """A file installed in a package's share directory."""
    return os.path.join(get_package_share_directory(package), *parts)


def _true(text):
    return text.strip().lower() in TRUE


def launch_setup(context):
    simulator = LaunchConfiguration("simulator").perform(context).strip().lower()
    if simulator not in SIMULATORS:
        raise RuntimeError(f"simulator must be one of {', '.join(SIMULATORS)}, got '{simulator}'")
    lockstep = _true(LaunchConfiguration("lockstep").perform(context))
    if simulator == "gazebo":
        sim = IncludeLaunchDescription(
            PythonLaunchDescriptionSource(_share(PACKAGE, "launch", "gazebo.launch.py")),
            launch_arguments={
                "track": LaunchConfiguration("track").perform(context),
                "headless": str(_true(LaunchConfiguration("headless").perform(context))).lower(),
                "lockstep": str(lockstep).lower(),
                "race_type": LaunchConfiguration("race_type").perform(context),
                "world_config": LaunchConfiguration("world_config").perform(context),
                "seed": LaunchConfiguration("seed").perform(context),
            }.items(),
        )
    else:
        sim = Node(
            package=PACKAGE,
            executable="sim_node",
            parameters=[
                {
                    "track": LaunchConfiguration("track").perform(context),
                    "lockstep": lockstep,
                    "encoding": LaunchConfiguration("encoding").perform(context),
                    "randomize": _true(LaunchConfiguration("randomize").perform(context)),
                    "seed": int(LaunchConfiguration("seed").perform(context)),
                    "sensors": LaunchConfiguration("sensors").perform(context),
                    "race_type": LaunchConfiguration("race_type").perform(context),
                    "world_config": LaunchConfiguration("world_config").perform(context),
                }
            ],
            output="screen",
        )
    actions = [sim]
    policy = LaunchConfiguration("policy").perform(context).strip()
    if policy:
        actions.append(
            Node(
                package=PACKAGE,
                executable="inference_node",
                parameters=[
                    {
                        "profile": "sim",
                        "model": policy,
                        "max_speed": float(LaunchConfiguration("max_speed").perform(context)),
                    }
                ],
                output="screen",
            )
        )
    return actions


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("simulator", default_value="embedded", description="embedded (sim_node) or gazebo"),
            DeclareLaunchArgument(
                "track", default_value="reinvent_base", description="track name (gazebo: a shipped one) or .npy path"
            ),
            DeclareLaunchArgument("lockstep", default_value="false", description="one period per /cmd_vel"),
            DeclareLaunchArgument("headless", default_value="false", description="gazebo: server only, no GUI"),
            DeclareLaunchArgument(
                "encoding", default_value="rgb8", description="embedded: camera encoding, rgb8 or mono8"
            ),
            DeclareLaunchArgument("randomize", default_value="false", description="embedded: domain randomisation"),
            DeclareLaunchArgument(
                "seed", default_value="0", description="random seed (-1: draw one); gazebo: of the object layout"
            ),
            DeclareLaunchArgument(
                "sensors", default_value="", description="embedded: extra sensors, e.g. STEREO_CAMERAS,LIDAR"
            ),
            DeclareLaunchArgument(
                "race_type", default_value="", description="time_trial, object_avoidance or head_to_bot (objects)"
            ),
            DeclareLaunchArgument(
                "world_config", default_value="", description="YAML/JSON world config with DeepRacer's keys"
            ),
            DeclareLaunchArgument("policy", default_value="", description="export dir: start inference_node too"),
            DeclareLaunchArgument("max_speed", default_value="4.0", description="the policy's speed limit, m/s"),
            OpaqueFunction(function=launch_setup),
        ]
    )
