"""The DeepRacer's software with deepracer_rl's inference node in place of its inference and navigation nodes.

    ros2 launch deepracer_rl car.launch.py model:=/home/deepracer/models/mine

Starts the car's own nodes as its launcher (deepracer_launcher.py) does, in their namespaces,
except inference_pkg/inference_node and deepracer_navigation_pkg/deepracer_navigation_node;
their place is taken by inference_node with profile car, which reads camera_pkg's CameraMsg,
publishes ServoCtrlMsg on /deepracer_navigation_pkg/auto_drive and answers the services ctrl_pkg
calls on those two nodes, so the console's autonomous mode, maximum speed and start / stop work
as before. The nodes listed are those the stock Ubuntu 20.04 / Foxy launcher and the community's
Ubuntu 24.04 / Jazzy launcher both start (the lidar and the community's logging and
device-status nodes are left out). With `stock_nodes:=false` only inference_node starts (when
the car's service is kept running with its inference and navigation nodes stopped by hand).
docs/car.md: installing, calibrating, switching back.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = "deepracer_rl"


def launch_setup(context):
    from deepracer_rl.ros.inference_node import PROFILES

    model = LaunchConfiguration("model").perform(context)
    if not model:
        raise RuntimeError("give model:=DIR, the export directory (model.onnx + model_metadata.json)")
    throttle = LaunchConfiguration("throttle_scale").perform(context).strip()
    inference = Node(
        package=PACKAGE,
        executable="inference_node",
        parameters=[
            {
                "profile": "car",
                "model": model,
                "throttle_scale": float(throttle) if throttle else PROFILES["car"]["throttle_scale"],
                "max_speed": float(LaunchConfiguration("max_speed").perform(context)),
                "watchdog_timeout": float(LaunchConfiguration("watchdog_timeout").perform(context)),
            }
        ],
        output="screen",
    )
    return [inference]


def generate_launch_description():
    stock = IfCondition(LaunchConfiguration("stock_nodes"))
    return LaunchDescription(
        [
            DeclareLaunchArgument("model", default_value="", description="export directory of the policy"),
            DeclareLaunchArgument(
                "throttle_scale", default_value="", description="start throttle scale (empty: 0, the console sets it)"
            ),
            DeclareLaunchArgument("max_speed", default_value="4.0", description="speed limit, m/s"),
            DeclareLaunchArgument("watchdog_timeout", default_value="0.5", description="stop after s without a frame"),
            DeclareLaunchArgument(
                "stock_nodes", default_value="true", description="also start the car's own nodes (camera, ctrl, ...)"
            ),
            OpaqueFunction(function=launch_setup),
            Node(
                package="camera_pkg",
                namespace="camera_pkg",
                executable="camera_node",
                name="camera_node",
                parameters=[{"resize_images": True}],
                condition=stock,
            ),
            Node(package="ctrl_pkg", namespace="ctrl_pkg", executable="ctrl_node", name="ctrl_node", condition=stock),
            Node(
                package="deepracer_systems_pkg",
                namespace="deepracer_systems_pkg",
                executable="software_update_node",
                name="software_update_node",
                condition=stock,
            ),
            Node(
                package="deepracer_systems_pkg",
                namespace="deepracer_systems_pkg",
                executable="model_loader_node",
                name="model_loader_node",
                condition=stock,
            ),
            Node(
                package="deepracer_systems_pkg",
                namespace="deepracer_systems_pkg",
                executable="otg_control_node",
                name="otg_control_node",
                condition=stock,
            ),
            Node(
                package="deepracer_systems_pkg",
                namespace="deepracer_systems_pkg",
                executable="network_monitor_node",
                name="network_monitor_node",
                condition=stock,
            ),
            Node(
                package="deepracer_systems_pkg",
                namespace="deepracer_systems_pkg",
                executable="deepracer_systems_scripts_node",
                name="deepracer_systems_scripts_node",
                condition=stock,
            ),
            Node(
                package="device_info_pkg",
                namespace="device_info_pkg",
                executable="device_info_node",
                name="device_info_node",
                condition=stock,
            ),
            Node(
                package="i2c_pkg", namespace="i2c_pkg", executable="battery_node", name="battery_node", condition=stock
            ),
            # ctrl_pkg waits for the model optimizer's service at start-up, so it runs although nothing here uses it.
            Node(
                package="model_optimizer_pkg",
                namespace="model_optimizer_pkg",
                executable="model_optimizer_node",
                name="model_optimizer_node",
                condition=stock,
            ),
            Node(
                package="sensor_fusion_pkg",
                namespace="sensor_fusion_pkg",
                executable="sensor_fusion_node",
                name="sensor_fusion_node",
                condition=stock,
            ),
            Node(
                package="servo_pkg", namespace="servo_pkg", executable="servo_node", name="servo_node", condition=stock
            ),
            Node(
                package="status_led_pkg",
                namespace="status_led_pkg",
                executable="status_led_node",
                name="status_led_node",
                condition=stock,
            ),
            Node(
                package="usb_monitor_pkg",
                namespace="usb_monitor_pkg",
                executable="usb_monitor_node",
                name="usb_monitor_node",
                condition=stock,
            ),
            Node(
                package="webserver_pkg",
                namespace="webserver_pkg",
                executable="webserver_publisher_node",
                name="webserver_publisher_node",
                condition=stock,
            ),
            Node(
                package="web_video_server",
                namespace="web_video_server",
                executable="web_video_server",
                name="web_video_server",
                condition=stock,
            ),
        ]
    )
