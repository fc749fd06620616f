"""Training over the topic contract: a simulator in lockstep and `deepracer-rl train --backend ros`.

    ros2 launch deepracer_rl train.launch.py out:=runs/ros steps:=100000
    ros2 launch deepracer_rl train.launch.py reward:=my_reward.py metadata:=config/model_metadata.json
    ros2 launch deepracer_rl train.launch.py simulator:=gazebo track:=reinvent_base ros_timeout:=60

The simulator is sim.launch.py's, always in lockstep (one control period per /cmd_vel, so
no step is lost and training runs as fast as simulator and learner allow): the embedded
sim_node (simulator:=embedded, the default) or Gazebo Harmonic (simulator:=gazebo, headless
unless headless:=false). The trainer is the CLI through the Gym bridge (one car); relative
paths are taken from the launch's working directory. When training ends, or fails (e.g. the
bridge's timeout naming a silent topic), the launch shuts down and the simulator with it.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, OpaqueFunction, Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.substitutions import ExecutableInPackage

from launch import LaunchDescription

PACKAGE = "deepracer_rl"


def _share(package, *parts):
    """A file installed in a package's share directory."""
    return os.path.join(get_package_share_directory(package), *parts)


def launch_setup(context):
    track = LaunchConfiguration("track").perform(context).strip()
    simulator = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(_share(PACKAGE, "launch", "sim.launch.py")),
        launch_arguments={
            "simulator": LaunchConfiguration("simulator").perform(context),
            "track": track,
            "headless": LaunchConfiguration("headless").perform(context),
            "lockstep": "true",
        }.items(),
    )
    command = [
        ExecutableInPackage(executable="deepracer-rl", package=PACKAGE),
        "train",
        "--backend",
        "ros",
        "--track",
        track,
        "--steps",
        LaunchConfiguration("steps").perform(context).strip(),
        "--out",
        LaunchConfiguration("out").perform(context).strip(),
    ]
    reward = LaunchConfiguration("reward").perform(context).strip()
    if reward:
        command += ["--reward", reward]
    metadata = LaunchConfiguration("metadata").perform(context).strip()
    if metadata:
        command += ["--metadata", metadata]
    timeout = LaunchConfiguration("ros_timeout").perform(context).strip()
    if timeout:
        command += ["--ros-timeout", timeout]
    trainer = ExecuteProcess(
        cmd=command,
        name="train",
        output="screen",
        on_exit=[Shutdown(reason="training ended")],
    )
    return [simulator, trainer]


def generate_launch_description():
    from deepracer_rl.train import TrainConfig

    return LaunchDescription(
        [
            DeclareLaunchArgument("simulator", default_value="embedded", description="embedded (sim_node) or gazebo"),
            DeclareLaunchArgument(
                "track", default_value=TrainConfig.track, description="track name (gazebo: a shipped one) or .npy path"
            ),
            DeclareLaunchArgument("headless", default_value="true", description="gazebo: server only, no GUI"),
            DeclareLaunchArgument(
                "reward", default_value="", description="reward_function.py (empty: follow the centre line)"
            ),
            DeclareLaunchArgument(
                "metadata",
                default_value="",
                description="model_metadata.json (empty: the DeepRacer console's action space)",
            ),
            DeclareLaunchArgument("steps", default_value=str(TrainConfig.steps), description="env steps in all"),
            DeclareLaunchArgument("out", default_value="runs/ros", description="run directory"),
            DeclareLaunchArgument(
                "ros_timeout",
                default_value="",
                description="seconds to wait for the simulator (empty: the bridge's defaults, "
                "15 s for it to start answering, 5 s per step)",
            ),
            OpaqueFunction(function=launch_setup),
        ]
    )
