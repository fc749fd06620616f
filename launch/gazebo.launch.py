"""Gazebo Harmonic backend of the topic contract (ROS 2 Jazzy).

Starts `gz sim` with worlds/<track>.sdf (generated on demand for a track without an installed
world: deepracer_rl.world.world_file), publishes the URDF with robot_state_publisher,
spawns it at the track's first waypoint with ros_gz_sim create, bridges the contract's
topics with config/ros_gz_bridge.yaml and runs gz_control for /initialpose and lockstep.

    ros2 launch deepracer_rl gazebo.launch.py track:=reinvent_base headless:=true lockstep:=true
    ros2 launch deepracer_rl gazebo.launch.py race_type:=object_avoidance    # 6 boxes, DRfC's default
    ros2 launch deepracer_rl gazebo.launch.py world_config:=world.yaml seed:=3

race_type / world_config (DeepRacer's keys) pick the world variant with the objects (deepracer_rl.world:
obstacles and bot cars as static boxes at their start poses) and spawn the car clear of them. With
objects, bot_cars_node runs the same world_objects.ObjectWorld (same config and seed) on sim time: it
moves the bot cars along their lanes through the world's set_pose service (bridged by parameter_bridge:
contract.set_pose_bridge_argument) and publishes /objects, as sim_node does. The car carries DeepRacer's
lidar and stereo pair (urdf/deepracer.urdf); the bridge publishes /scan and /stereo/left|right/image_raw
beside the camera.
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


def _share(package, *parts):
    """A file installed in a package's share directory."""
    return os.path.join(get_package_share_directory(package), *parts)


def _true(text):
    return text.strip().lower() in TRUE


def launch_setup(context):
    from deepracer_rl.car import default_urdf_path
    from deepracer_rl.ros.contract import set_pose_bridge_argument
    from deepracer_rl.track import Track
    from deepracer_rl.world import CAR_NAME, gz_sim_args, spawn_pose
    from deepracer_rl.world import world_file as find_world
    from deepracer_rl.world_objects import race_objects_from

    track = LaunchConfiguration("track").perform(context)
    headless = _true(LaunchConfiguration("headless").perform(context))
    lockstep = _true(LaunchConfiguration("lockstep").perform(context))
    race_type = LaunchConfiguration("race_type").perform(context).strip()
    world_config = LaunchConfiguration("world_config").perform(context).strip()
    seed = int(LaunchConfiguration("seed").perform(context))
    race = race_objects_from(
        race_type or None, world_config or None, {}, label=str, options_name="the launch argument race_type"
    )
    # Installed worlds (a representative set), else generated into ~/.cache/deepracer_rl/worlds.
    world_file = str(find_world(track, _share(PACKAGE, "worlds"), race=race, seed=seed))
    with open(default_urdf_path(), encoding="utf-8") as f:
        robot_description = f.read()
    x, y, yaw = spawn_pose(Track.load(track), race, seed)
    objects = race is not None and race.count > 0

    gazebo = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(_share("ros_gz_sim", "launch", "gz_sim.launch.py")),
        launch_arguments={
            "gz_args": gz_sim_args(world_file, headless=headless, lockstep=lockstep),
            "on_exit_shutdown": "true",
        }.items(),
    )
    state_publisher = Node(
        package="robot_state_publisher",
        executable="robot_state_publisher",
        parameters=[{"robot_description": robot_description, "use_sim_time": True}],
        output="screen",
    )
    spawn = Node(
        package="ros_gz_sim",
        executable="create",
        parameters=[
            {
                "world": track,
                "topic": "robot_description",
                "name": CAR_NAME,
                "x": float(x),
                "y": float(y),
                "z": 0.0,
                "Y": float(yaw),
            }
        ],
        output="screen",
    )
    # The world's set_pose as a ROS service for bot_cars_node: a parameter_bridge argument, as its name holds the
    # world's (config/ros_gz_bridge.yaml cannot name it; ros_gz_bridge 1.0.11+ bridges SetEntityPose).
    bridge = Node(
        package="ros_gz_bridge",
        executable="parameter_bridge",
        arguments=[set_pose_bridge_argument(track)] if objects else [],
        parameters=[{"config_file": _share(PACKAGE, "config", "ros_gz_bridge.yaml"), "use_sim_time": True}],
        output="screen",
    )
    control = Node(
        package=PACKAGE,
        executable="gz_control",
        parameters=[{"world": track, "model": CAR_NAME, "lockstep": lockstep, "use_sim_time": True}],
        output="screen",
    )
    actions = [gazebo, state_publisher, spawn, bridge, control]
    if objects:  # the objects of the world variant: the bot cars driven, every pose on /objects
        actions.append(
            Node(
                package=PACKAGE,
                executable="bot_cars_node",
                parameters=[
                    {
                        "track": track,
                        "world": track,
                        "race_type": race_type,
                        "world_config": world_config,
                        "seed": seed,
                        "use_sim_time": True,
                    }
                ],
                output="screen",
            )
        )
    return actions


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("track", default_value="reinvent_base", description="shipped track name"),
            DeclareLaunchArgument("headless", default_value="false", description="server only, no GUI"),
            DeclareLaunchArgument(
                "lockstep",
                default_value="false",
                description="start paused; gz_control steps one control period per /cmd_vel",
            ),
            DeclareLaunchArgument(
                "race_type", default_value="", description="time_trial, object_avoidance or head_to_bot (objects)"
            ),
            DeclareLaunchArgument(
                "world_config", default_value="", description="YAML/JSON world config with DeepRacer's keys"
            ),
            DeclareLaunchArgument("seed", default_value="0", description="the seed of a random object layout"),
            OpaqueFunction(function=launch_setup),
        ]
    )
