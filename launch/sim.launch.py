"""The embedded simulator behind the topic contract and, with policy:=DIR, a policy driving it.

    ros2 launch deepracer_rl sim.launch.py track:=reinvent_base
    ros2 launch deepracer_rl sim.launch.py policy:=runs/demo/export            # watch it drive
    ros2 launch deepracer_rl sim.launch.py policy:=runs/demo/export lockstep:=true

sim_node publishes /camera/image_raw, /camera/camera_info, /odom, /clock (and /tf) and takes
/cmd_vel and /initialpose; inference_node (profile sim) turns the camera into /cmd_vel. In
lockstep mode each command advances the simulator one period, so the pair runs as fast as
the CPU allows.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "deepracer_rl"
TRUE = ("1", "true", "yes", "on")


def _true(text):
    return text.strip().lower() in TRUE


def launch_setup(context):
    sim = Node(
        package=PACKAGE,
        executable="sim_node",
        parameters=[
            {
                "track": LaunchConfiguration("track").perform(context),
                "lockstep": _true(LaunchConfiguration("lockstep").perform(context)),
                "encoding": LaunchConfiguration("encoding").perform(context),
                "randomize": _true(LaunchConfiguration("randomize").perform(context)),
                "seed": int(LaunchConfiguration("seed").perform(context)),
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
            DeclareLaunchArgument("track", default_value="reinvent_base", description="track name or .npy path"),
            DeclareLaunchArgument("lockstep", default_value="false", description="one period per /cmd_vel"),
            DeclareLaunchArgument("encoding", default_value="rgb8", description="camera encoding: rgb8 or mono8"),
            DeclareLaunchArgument("randomize", default_value="false", description="domain randomisation"),
            DeclareLaunchArgument("seed", default_value="0", description="random seed (-1: draw one)"),
            DeclareLaunchArgument("policy", default_value="", description="export dir: start inference_node too"),
            DeclareLaunchArgument("max_speed", default_value="4.0", description="the policy's speed limit, m/s"),
            OpaqueFunction(function=launch_setup),
        ]
    )
