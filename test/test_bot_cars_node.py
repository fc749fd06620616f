"""bot_cars_node with real rclpy and DDS on loopback, Gazebo stood in for by this test.

Gazebo cannot run here: a real rclpy service server on the world's set_pose service name (what
ros_gz_bridge serves in front of gz-sim) records the requests and answers success, and a /clock
publisher plays Gazebo's sim time. The node runs in its own process group (test/processes.py),
stopped with SIGINT. The poses it sends and publishes are compared with `ObjectWorld` run here for
the same world config and seed.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("ros_gz_interfaces")

import rclpy
from geometry_msgs.msg import PoseArray, PoseWithCovarianceStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from ros_gz_interfaces.msg import Entity
from ros_gz_interfaces.srv import SetEntityPose
from rosgraph_msgs.msg import Clock

from deepracer_rl.car import CarSpec
from deepracer_rl.ros import contract
from deepracer_rl.track import Track
from deepracer_rl.world import object_model_names, object_model_z, physics_step
from deepracer_rl.world_objects import ObjectWorld, load_world_config

WORLD_CONFIG = """\
RACE_TYPE: HEAD_TO_BOT
NUMBER_OF_OBSTACLES: 1
NUMBER_OF_BOT_CARS: 2
RANDOMIZE_BOT_CAR_LOCATIONS: true
BOT_CAR_SPEED: 1.0
IS_LANE_CHANGE: true
LOWER_LANE_CHANGE_TIME: 0.2
UPPER_LANE_CHANGE_TIME: 0.4
LANE_CHANGE_DISTANCE: 0.3
"""
SEED = 7
STEP = physics_step(CarSpec.from_urdf().camera.rate_hz)
PERIOD_NS = STEP.step_ns * STEP.steps_per_control
WAIT = 10.0  # s for one answer of the node


class GazeboStandIn:
    """set_pose served (requests recorded), /clock and /initialpose published, /objects recorded."""

    def __init__(self, world: str):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node("gazebo_stand_in", context=self.context)
        self.lock = threading.Lock()
        self.requests: list[SetEntityPose.Request] = []
        self.objects: list[PoseArray] = []
        self.node.create_service(SetEntityPose, contract.set_pose_service(world), self._serve)
        self.node.create_subscription(PoseArray, contract.OBJECTS, self._on_objects, contract.sensor_qos())
        self.clock = self.node.create_publisher(Clock, contract.CLOCK, contract.clock_qos())
        self.initialpose = self.node.create_publisher(
            PoseWithCovarianceStamped, contract.INITIALPOSE, contract.command_qos()
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _serve(self, request, response):
        with self.lock:
            self.requests.append(request)
        response.success = True
        return response

    def _on_objects(self, msg: PoseArray) -> None:
        with self.lock:
            self.objects.append(msg)

    def wait_for(self, what, timeout: float = WAIT):
        """Poll `what()` (under the lock) until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                value = what()
            if value:
                return value
            assert time.monotonic() < deadline, "the node did not answer in time"
            time.sleep(0.002)

    def tick(self, ticks: int, new_requests: int) -> tuple[PoseArray, list]:
        """Publish /clock at `ticks` control periods; the node's /objects of that time and its new set_pose calls."""
        with self.lock:
            seen = len(self.requests)
        self.clock.publish(Clock(clock=contract.time_msg(ticks * PERIOD_NS)))
        stamp = contract.time_msg(ticks * PERIOD_NS)
        objects = self.wait_for(lambda: next((m for m in self.objects if m.header.stamp == stamp), None))
        return objects, self.new_requests(seen, new_requests)

    def new_requests(self, seen: int, count: int) -> list:
        """The `count` set_pose requests after the first `seen` (waits for them)."""
        self.wait_for(lambda: len(self.requests) >= seen + count)
        time.sleep(0.01)  # no more than these come
        with self.lock:
            assert len(self.requests) == seen + count, [r.entity.name for r in self.requests[seen:]]
            return self.requests[seen:]

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(5)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def yaw(q) -> float:
    return contract.yaw_from_quaternion(q.x, q.y, q.z, q.w)


def check_objects(msg: PoseArray, poses: np.ndarray, z: np.ndarray) -> None:
    assert msg.header.frame_id == contract.ODOM_FRAME
    got = np.array([(p.position.x, p.position.y, yaw(p.orientation)) for p in msg.poses])
    np.testing.assert_allclose(got, poses, atol=1e-9)
    np.testing.assert_allclose([p.position.z for p in msg.poses], z, atol=1e-12)


def check_requests(sent: list, names: list[str], poses: np.ndarray, model_z: np.ndarray, which: list[int]) -> None:
    assert sorted(r.entity.name for r in sent) == sorted(names[k] for k in which)
    for r in sent:
        k = names.index(r.entity.name)
        assert r.entity.type == Entity.MODEL
        p = r.pose.position
        assert (p.x, p.y, yaw(r.pose.orientation)) == pytest.approx(tuple(poses[k]), abs=1e-9)
        assert p.z == pytest.approx(model_z[k])


@pytest.fixture
def nodes(simulators):
    """Start bot-car nodes with `-p` parameters (conftest's `simulators` stops and reaps them)."""
    return lambda *params: simulators(params=params, node="deepracer_rl.ros.bot_cars_node")


def test_the_node_drives_the_bot_cars_along_objectworlds_lanes_on_sim_time(nodes, tmp_path):
    config = tmp_path / "h2b.yaml"
    config.write_text(WORLD_CONFIG)
    track = Track.load("reinvent_base")
    reference = ObjectWorld(load_world_config(config), track, 1, seed=SEED)
    state = reference.state()
    names, model_z = object_model_names(state.kinds), object_model_z(state)
    assert names == ["obstacle_0", "bot_car_0", "bot_car_1"]
    bots = [1, 2]
    gazebo = GazeboStandIn("reinvent_base")
    try:
        node = nodes("track:=reinvent_base", f"world_config:={config}", f"seed:={SEED}", "use_sim_time:=true")
        node.wait_started()
        gazebo.wait_for(
            lambda: gazebo.clock.get_subscription_count() and gazebo.node.count_publishers(contract.OBJECTS)
        )
        gazebo.wait_for(lambda: gazebo.node.count_clients(contract.set_pose_service("reinvent_base")))
        # the first clock: the state the SDF holds (nothing to move), published
        objects, _ = gazebo.tick(0, 0)
        check_objects(objects, reference.state().poses[0], state.z)
        assert gazebo.requests == []
        # one control period at a time: every bot car moved (the obstacle stays), /objects of that time
        changes = 0
        lanes = reference.bots.lane.copy()
        for k in range(1, 31):
            reference.step(PERIOD_NS / 1e9)
            objects, sent = gazebo.tick(k, len(bots))
            poses = reference.state().poses[0]
            check_requests(sent, names, poses, model_z, bots)
            check_objects(objects, poses, state.z)
            changes += int((reference.bots.lane != lanes).any())
            lanes = reference.bots.lane.copy()
        assert changes > 0  # lane changes happened within the 2 s
        # a clock that jumped three periods: three steps, the newest poses sent once
        for _ in range(3):
            reference.step(PERIOD_NS / 1e9)
        objects, sent = gazebo.tick(33, len(bots))
        check_requests(sent, names, reference.state().poses[0], model_z, bots)
        check_objects(objects, reference.state().poses[0], state.z)
        # the learner's reset: a new episode, every object sent (as sim_node redraws its world)
        reset = PoseWithCovarianceStamped()
        reset.pose.pose.position.x, reset.pose.pose.position.y = (float(v) for v in track.waypoints[10])
        reference.reset([0], keep_clear=track.project(track.waypoints[10:11]).arc_length)
        with gazebo.lock:
            seen = len(gazebo.requests)
        gazebo.initialpose.publish(reset)
        sent = gazebo.new_requests(seen, len(names))
        check_requests(sent, names, reference.state().poses[0], model_z, [0, *bots])
        reference.step(PERIOD_NS / 1e9)
        objects, sent = gazebo.tick(34, len(bots))
        check_requests(sent, names, reference.state().poses[0], model_z, bots)
        check_objects(objects, reference.state().poses[0], state.z)
        assert node.interrupt() == 0
    finally:
        gazebo.close()


@pytest.mark.parametrize(
    "config, params, message",
    [
        ("NUMBER_OF_BOT_CARS: 2\nNUMBER_OF_BOTS: 2\n", (), "NUMBER_OF_BOTS: not a world-config key"),
        ("", ("race_type:=time_trial",), "the race has no obstacles or bot cars"),
        ("NUMBER_OF_BOT_CARS: 0\n", ("race_type:=head_to_bot",), "needs NUMBER_OF_BOT_CARS of at least 1"),
        (None, ("race_type:=head_to_bot", "track:=no_such_track"), "no_such_track"),
    ],
    ids=["unknown key", "no objects", "head-to-bot without bots", "unknown track"],
)
def test_bad_parameters_give_one_line_and_exit_code_2(nodes, tmp_path, config, params, message):
    args = list(params)
    if config is not None:
        path = tmp_path / "world.yaml"
        path.write_text(config)
        args.append(f"world_config:={path}")
    code, out = nodes(*args).run_to_end(timeout=30)
    assert code == 2, out
    assert message in out and out.startswith("bot_cars: error: "), out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1, out
