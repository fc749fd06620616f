"""gz_control (deepracer_rl/ros/gz_control.py) against a stand-in Gazebo.

In lockstep it steps one control period per command and resets the car on /initialpose
(stop, set_pose, one period); running free it only teleports; it needs a world; without
the gz-transport bindings it says what to install; it is a console script declaring the
parameters the launch files give it.
"""

from __future__ import annotations

import importlib
import math
import time

import pytest
from gazebo_helpers import console_scripts, node_parameters

from deepracer_rl.world import CAR_NAME, physics_step


class StandInGazebo:
    """Records what gz_control asks of Gazebo; delivers commands like the gz /cmd_vel topic."""

    def __init__(self, world, cmd_topic, timeout_ms):
        self.world, self.cmd_topic, self.timeout_ms = world, cmd_topic, timeout_ms
        self.calls: list[tuple] = []
        self.command_callback = None

    def set_pose(self, name, pose):
        self.calls.append(("set_pose", name, pose))
        return True

    def step(self, steps):
        self.calls.append(("step", steps))
        return True

    def stop_car(self):
        self.calls.append(("stop",))
        if self.command_callback:  # gz-transport delivers own publications to local subscribers
            self.command_callback(0.0, 0.0)

    def on_command(self, callback):
        self.command_callback = callback


@pytest.fixture
def ros():
    rclpy = pytest.importorskip("rclpy")
    context = rclpy.context.Context()
    rclpy.init(context=context)
    yield rclpy, context
    rclpy.shutdown(context=context)


def make_node(ros, **params):
    from rclpy.parameter import Parameter

    from deepracer_rl.ros.gz_control import GzControl

    _, context = ros
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    return GzControl(backend_factory=StandInGazebo, context=context, parameter_overrides=overrides)


def publish_initialpose(ros, node, x, y, yaw):
    rclpy, context = ros
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from rclpy.executors import SingleThreadedExecutor

    pub_node = rclpy.create_node("test_initialpose", context=context)
    pub = pub_node.create_publisher(PoseWithCovarianceStamped, "/initialpose", 10)
    msg = PoseWithCovarianceStamped()
    msg.header.frame_id = "odom"
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + 10.0
    while not any(c[0] == "set_pose" for c in node.backend.calls) and time.monotonic() < deadline:
        pub.publish(msg)
        executor.spin_once(timeout_sec=0.05)
    executor.remove_node(node)
    pub_node.destroy_node()


def test_gz_control_lockstep_steps_one_period_per_command_and_resets(ros, car):
    node = make_node(ros, world="Oval_track", lockstep=True)
    try:
        steps = physics_step(car.camera.rate_hz).steps_per_control
        assert node.steps_per_control == steps
        assert (node.backend.world, node.backend.cmd_topic) == ("Oval_track", "/cmd_vel")
        node.backend.command_callback(1.0, 0.2)
        node.backend.command_callback(1.5, -0.1)
        node.wait_idle()
        assert node.backend.calls == [("step", steps), ("step", steps)]
        node.backend.calls.clear()
        publish_initialpose(ros, node, 2.0, -1.0, 0.5)
        node.wait_idle()
        kinds = [c[0] for c in node.backend.calls]
        assert kinds[:2] == ["stop", "set_pose"]  # its own zero command is not stepped for
        assert node.backend.calls[-1] == ("step", steps)  # one period: fresh image and odometry
        _, name, pose = node.backend.calls[1]
        assert name == CAR_NAME
        assert (pose.x, pose.y, pose.z) == pytest.approx((2.0, -1.0, 0.0))
        assert 2 * math.atan2(pose.qz, pose.qw) == pytest.approx(0.5)
        node.backend.command_callback(0.0, 0.0)  # a real zero command from the agent still steps
        node.wait_idle()
        assert node.backend.calls[-1] == ("step", steps)
    finally:
        node.destroy_node()


def test_gz_control_free_run_only_teleports(ros):
    node = make_node(ros, world="Oval_track")
    try:
        assert node.backend.command_callback is None
        publish_initialpose(ros, node, 1.0, 1.0, 0.0)
        node.wait_idle()
        assert [c[0] for c in node.backend.calls] == ["stop", "set_pose"]
    finally:
        node.destroy_node()


def test_gz_control_needs_a_world(ros):
    with pytest.raises(ValueError, match="world"):
        make_node(ros)


def test_gz_control_without_gz_bindings_says_what_to_install():
    from deepracer_rl.ros.gz_control import GzTransportBackend, GzUnavailable

    try:
        importlib.import_module("gz.transport13")
    except ImportError:
        pass
    else:
        pytest.skip("the gz-transport Python bindings are installed here")
    with pytest.raises(GzUnavailable, match="python3-gz-transport13"):
        GzTransportBackend("Oval_track", "/cmd_vel", 1000)


def test_gz_control_is_a_console_script():
    assert console_scripts()["gz_control"] == "deepracer_rl.ros.gz_control:main"
    assert node_parameters("deepracer_rl.ros.gz_control") >= {"world", "model", "lockstep", "steps_per_control"}
