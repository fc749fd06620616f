"""The inference node: an exported policy drives the car (simulator or the real DeepRacer).

    ros2 launch deepracer_rl inference.launch.py model:=runs/demo/export
    ros2 launch deepracer_rl inference.launch.py model:=/opt/models/mine profile:=car

Topic and throttle arguments left empty take the profile's defaults (see
deepracer_rl/ros/inference_node.py); `none` turns an output off.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = "deepracer_rl"
TRUE = ("1", "true", "yes", "on")


def _true(text):
    return text.strip().lower() in TRUE


def launch_setup(context):
    from deepracer_rl.ros.inference_node import PROFILES

    profile = LaunchConfiguration("profile").perform(context)
    if profile not in PROFILES:
        raise RuntimeError(f"profile must be one of {', '.join(PROFILES)}, got '{profile}'")
    defaults = PROFILES[profile]

    def topic(name, value):
        value = value.strip()
        if not value:
            return defaults[name]
        return "" if value.lower() == "none" else value

    model = LaunchConfiguration("model").perform(context)
    if not model:
        raise RuntimeError("give model:=DIR, the export directory (model.onnx + model_metadata.json)")
    throttle = LaunchConfiguration("throttle_scale").perform(context).strip()
    node = Node(
        package=PACKAGE,
        executable="inference_node",
        parameters=[
            {
                "profile": profile,
                "model": model,
                "image_topic": topic("image_topic", LaunchConfiguration("image_topic").perform(context)),
                "image_type": LaunchConfiguration("image_type").perform(context).strip() or defaults["image_type"],
                "cmd_vel_topic": topic("cmd_vel_topic", LaunchConfiguration("cmd_vel_topic").perform(context)),
                "servo_topic": topic("servo_topic", LaunchConfiguration("servo_topic").perform(context)),
                "throttle_scale": float(throttle) if throttle else defaults["throttle_scale"],
                "max_speed": float(LaunchConfiguration("max_speed").perform(context)),
                "watchdog_timeout": float(LaunchConfiguration("watchdog_timeout").perform(context)),
                "use_sim_time": _true(LaunchConfiguration("use_sim_time").perform(context)),
            }
        ],
        output="screen",
    )
    return [node]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("model", default_value="", description="export directory of the policy"),
            DeclareLaunchArgument("profile", default_value="sim", description="sim | car"),
            DeclareLaunchArgument("image_topic", default_value="", description="camera topic (empty: profile default)"),
            DeclareLaunchArgument(
                "image_type", default_value="", description="Image | CompressedImage | CameraMsg (empty: default)"
            ),
            DeclareLaunchArgument("cmd_vel_topic", default_value="", description="Twist output (none: off)"),
            DeclareLaunchArgument("servo_topic", default_value="", description="DeepRacer servo output (none: off)"),
            DeclareLaunchArgument("throttle_scale", default_value="", description="servo throttle multiplier"),
            DeclareLaunchArgument("max_speed", default_value="4.0", description="speed limit, m/s"),
            DeclareLaunchArgument("watchdog_timeout", default_value="0.5", description="stop after s without a frame"),
            DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock"),
            OpaqueFunction(function=launch_setup),
        ]
    )
