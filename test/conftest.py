"""Shared test setup: isolate ROS 2 traffic before anything imports rclpy.

A random ROS_DOMAIN_ID (unless the caller set one) and localhost-only discovery keep
concurrent test runs on one machine or network from hearing each other's topics.
"""

import os
import random

if "ROS_DOMAIN_ID" not in os.environ:
    # 1..101: valid for every RMW (domain ids above 101 can clash with ephemeral ports).
    os.environ["ROS_DOMAIN_ID"] = str(random.Random(os.getpid()).randint(1, 101))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


def pytest_report_header(config):
    return (
        f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} "
        f"ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE']}"
    )
