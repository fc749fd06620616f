"""Shared test setup: isolate ROS 2 traffic before anything imports rclpy.

A random ROS_DOMAIN_ID (unless the caller set one) and localhost-only discovery keep
concurrent test runs on one machine or network from hearing each other's topics.
"""

import os
import random

import pytest
from processes import SimProcess

if "ROS_DOMAIN_ID" not in os.environ:
    # 1..101: valid for every RMW (domain ids above 101 can clash with ephemeral ports).
    os.environ["ROS_DOMAIN_ID"] = str(random.Random(os.getpid()).randint(1, 101))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


def pytest_report_header(config):
    return (
        f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} "
        f"ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE']}"
    )


@pytest.fixture(scope="session")
def cloned_policy(tmp_path_factory):
    """Export dir (model.onnx + model_metadata.json) of the baseline-cloned policy.

    `deepracer_rl.clone` fits a PPO policy to the pure-pursuit baseline (discrete actions of
    config/model_metadata.json, 80x60 gray frames) in about 15 s; made once per session.
    """
    from pathlib import Path

    from deepracer_rl.clone import CloneConfig, clone_baseline
    from deepracer_rl.config import TrainConfig
    from deepracer_rl.export import export_run

    root = tmp_path_factory.mktemp("cloned_policy")
    metadata = Path(__file__).resolve().parents[1] / "config" / "model_metadata.json"
    config = TrainConfig(metadata=str(metadata), n_envs=2, torch_threads=1, simtrace=False)
    clone_baseline(config, root / "run", CloneConfig(), log=lambda _: None)
    return export_run(root / "run", root / "export")


@pytest.fixture
def simulators(tmp_path):
    """Start simulators; at the end every one still running is interrupted, killed if need be, and reaped."""
    started: list[SimProcess] = []

    def start(
        *args: str, cli: bool = False, params: tuple[str, ...] = (), node: str = "deepracer_rl.ros.sim_node"
    ) -> SimProcess:
        if cli:
            argv = ["deepracer_rl.cli", "sim", *args]
        else:  # `node`: the module of a ROS node, sim_node or another (bot_cars_node)
            argv = [node, "--ros-args"] + [a for p in params for a in ("-p", p)]
        sim = SimProcess(tmp_path / f"sim{len(started)}.log", argv)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        if not sim.log.closed:
            sim.interrupt()
        assert not sim.group_alive(), "a simulator process was left behind"


@pytest.fixture(scope="module")
def car():
    """The CarSpec read from the shipped URDF (test modules may define their own `car`)."""
    from deepracer_rl.car import CarSpec

    return CarSpec.from_urdf()


@pytest.fixture
def ros_node():
    """A test node in its own rclpy context, with an executor to spin it (`node.spin_until(condition, timeout)`)."""
    import time

    rclpy = pytest.importorskip("rclpy")
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("ros_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def spin_until(condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= deadline:
                return False
            executor.spin_once(timeout_sec=0.02)
        return True

    node.spin_until = spin_until
    yield node
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)
