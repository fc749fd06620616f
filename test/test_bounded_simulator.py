"""A bounded simulator: commands beyond the car's limits are clamped (and said so), and an
/initialpose in an unknown frame or far off the track is refused with a log line."""

from __future__ import annotations

import math
import signal

import numpy as np
import pytest

from deepracer_rl.episode import StartRules, start_pose
from deepracer_rl.sim import Dynamics, Simulator
from deepracer_rl.track import Track


def test_the_simulator_clamps_commands_to_the_cars_limits_and_counts_them():
    sim = Simulator("reinvent_base", image_size=None)
    sim.place_car(0, start_pose(sim.track, StartRules(), 0)[0])
    for _ in range(60):
        assert sim.step([0.0], [1e9]) == 1
    assert sim.clamped_commands == 60
    assert sim.state.speed[0] <= Dynamics().max_speed + 1e-9  # not the 21.5 m/s of an unbounded model
    assert sim.step([89.0], [1.0]) == 1  # steering beyond the URDF's limit
    assert sim.state.steer[0] <= sim.car.max_steer + 1e-12
    assert sim.step([30.0], [4.0]) == 0  # DeepRacer's largest action is within the limits
    assert sim.clamped_commands == 61


def test_sim_node_clamps_and_refuses_bad_poses_saying_why(simulators, ros_node):
    pytest.importorskip("rclpy")
    from geometry_msgs.msg import PoseWithCovarianceStamped, Twist
    from nav_msgs.msg import Odometry

    from deepracer_rl.ros import contract

    sim = simulators(params=("lockstep:=true", "image_width:=160", "image_height:=120", "encoding:=mono8"))
    sim.wait_started()
    odom: list[Odometry] = []
    ros_node.create_subscription(Odometry, contract.ODOM, odom.append, contract.sensor_qos())
    cmd = ros_node.create_publisher(Twist, contract.CMD_VEL, contract.command_qos())
    pose_pub = ros_node.create_publisher(PoseWithCovarianceStamped, contract.INITIALPOSE, contract.command_qos())
    assert ros_node.spin_until(
        lambda: (
            cmd.get_subscription_count()
            and pose_pub.get_subscription_count()
            and ros_node.count_publishers(contract.ODOM)
        ),
        20.0,
    )

    def pose(x: float, y: float, frame: str) -> PoseWithCovarianceStamped:
        msg = PoseWithCovarianceStamped()
        msg.header.frame_id = frame
        msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
        msg.pose.pose.orientation.w = 1.0
        return msg

    fast = Twist()
    fast.linear.x = 1e9
    for _ in range(45):  # three seconds of sim time at 1e9 m/s
        seen = len(odom)
        cmd.publish(fast)
        assert ros_node.spin_until(lambda s=seen: len(odom) > s, 10.0), sim.output()
    assert max(o.twist.twist.linear.x for o in odom) <= Dynamics().max_speed + 1e-6
    assert "clamped 1 command(s) to the car's limits: steering within ±30 deg, speed within ±4 m/s" in sim.output()

    seen = len(odom)
    pose_pub.publish(pose(0.0, 0.0, "map"))
    pose_pub.publish(pose(100.0, 100.0, "odom"))
    start = start_pose(Track.load("reinvent_base"), StartRules(), 3)[0]
    pose_pub.publish(pose(float(start[0]), float(start[1]), "odom"))  # a good one, answered
    assert ros_node.spin_until(lambda: len(odom) > seen, 10.0)
    answered = odom[seen:]
    assert len(answered) == 1  # the two bad poses moved nothing and published nothing
    assert math.hypot(answered[0].pose.pose.position.x - start[0], answered[0].pose.pose.position.y - start[1]) < 1e-6
    output = sim.output()
    assert "ignoring /initialpose in frame 'map': poses are taken in 'odom' (the track frame)" in output
    assert "ignoring /initialpose at x 100.00, y 100.00:" in output and "m beyond the road's edge" in output
    assert sim.proc.poll() is None
    assert sim.interrupt() in (0, -signal.SIGINT)
    assert np.isfinite([o.pose.pose.position.x for o in odom]).all()
