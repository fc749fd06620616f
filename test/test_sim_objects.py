"""sim_node in races with objects, over real rclpy/DDS: the objects' poses on /objects, /scan seeing a
box, the parameters of the race (named when bad); and the CLI's `sim` passing them on."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from deepracer_rl.car import CarSpec
from deepracer_rl.lidar import MAX_ANGLE, MIN_ANGLE, MOUNT_X, MOUNT_YAW, SAMPLES
from deepracer_rl.track import Track


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _spin_until(executor, condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        executor.spin_once(timeout_sec=0.05)
    return condition()


def test_object_avoidance_sim_node_publishes_three_boxes_and_its_scan_sees_one_beside_the_car(simulators):
    """race_type:=object_avoidance number_of_obstacles:=3: /objects lists 3 poses (odom frame); with the
    car teleported so that box 0 is 0.3 m ahead and 0.38 m to the side of its laser, the /scan beam
    towards the box reads less than the distance to the box's centre, the mirrored beam much more."""
    import rclpy
    from geometry_msgs.msg import PoseArray, PoseWithCovarianceStamped
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import LaserScan

    from deepracer_rl.ros import contract

    sim = simulators(
        params=(
            "track:=reinvent_base",
            "race_type:=object_avoidance",
            "number_of_obstacles:=3",
            "sensors:=LIDAR",
            "image_width:=160",
            "image_height:=120",
        )
    )
    sim.wait_started()
    assert "objects on /objects: 3 fixed box_obstacle" in sim.output()
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("objects_test", context=context)
        objects, scans, odometry = [], [], []
        qos = contract.sensor_qos()
        node.create_subscription(PoseArray, contract.OBJECTS, objects.append, qos)
        node.create_subscription(LaserScan, contract.SCAN, scans.append, qos)
        node.create_subscription(Odometry, contract.ODOM, odometry.append, qos)
        pose_pub = node.create_publisher(PoseWithCovarianceStamped, contract.INITIALPOSE, contract.command_qos())
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        assert _spin_until(executor, lambda: objects and scans and odometry, 20), sim.output()[-2000:]
        boxes = objects[-1]
        assert boxes.header.frame_id == contract.ODOM_FRAME
        assert len(boxes.poses) == 3
        box = boxes.poses[0]
        bx, by = box.position.x, box.position.y
        byaw = contract.yaw_from_quaternion(box.orientation.x, box.orientation.y, box.orientation.z, box.orientation.w)

        # The laser 0.3 m behind the box's centre and 0.38 m across, on the side of the centre line.
        track, car = Track.load("reinvent_base"), CarSpec.from_urdf()
        ahead, left = np.array([math.cos(byaw), math.sin(byaw)]), np.array([-math.sin(byaw), math.cos(byaw)])
        candidates = [np.array([bx, by]) - 0.3 * ahead + side * 0.38 * left for side in (1, -1)]
        laser = min(candidates, key=lambda p: float(track.project(p[None]).distance[0]))
        base = laser - (car.wheelbase / 2 + MOUNT_X) * ahead
        msg = PoseWithCovarianceStamped()
        msg.header.frame_id = contract.ODOM_FRAME
        msg.pose.pose.position.x, msg.pose.pose.position.y = float(base[0]), float(base[1])
        _, _, msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = contract.quaternion_from_yaw(byaw)
        pose_pub.publish(msg)

        def arrived() -> bool:
            p = odometry[-1].pose.pose.position
            return math.hypot(p.x - base[0], p.y - base[1]) < 1e-3

        assert _spin_until(executor, arrived, 10), sim.output()[-2000:]
        teleported = contract.stamp_ns(odometry[-1].header.stamp)
        assert _spin_until(executor, lambda: contract.stamp_ns(scans[-1].header.stamp) >= teleported, 10)
        scan = scans[-1]
        assert len(objects[-1].poses) == 3  # a fixed layout: the same boxes after the new episode
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)

    ranges = np.array(scan.ranges)
    assert ranges.shape == (SAMPLES,)
    increment = (MAX_ANGLE - MIN_ANGLE) / (SAMPLES - 1)
    to_box = np.array([bx, by]) - laser
    distance = float(np.hypot(*to_box))
    bearing = math.atan2(to_box[1], to_box[0]) - byaw  # relative to the car's heading

    def beam(relative: float) -> float:
        return float(ranges[round((_wrap(relative - MOUNT_YAW) - MIN_ANGLE) / increment)])

    assert 0.15 < beam(bearing) < distance, (beam(bearing), distance, ranges)
    assert beam(-bearing) > distance + 0.2, (beam(-bearing), distance, ranges)
    assert sim.interrupt() == 0


@pytest.mark.parametrize(
    ("param", "named"),
    [
        ("number_of_obstacles:=-1", "parameter 'number_of_obstacles' -1: expected a whole number >= 0"),
        ("race_type:=drag_race", "parameter 'race_type' must be one of time_trial, object_avoidance, head_to_bot"),
        ("world_config:=/no/such/world.yaml", "parameter 'world_config': no such file"),
        ("bot_car_speed:=fast", "parameter 'bot_car_speed' fast:"),
    ],
)
def test_a_bad_race_parameter_exits_2_naming_the_parameter(simulators, param, named):
    code, output = simulators(params=("track:=reinvent_base", param)).run_to_end(timeout=25)
    assert code == 2, output[-2000:]
    assert named in output, output[-2000:]
    assert "Traceback" not in output


def test_a_world_config_whose_race_type_disagrees_names_the_parameter(simulators, tmp_path):
    world = tmp_path / "world.yaml"
    world.write_text("RACE_TYPE: HEAD_TO_BOT\nNUMBER_OF_BOT_CARS: 2\n")
    params = ("track:=reinvent_base", "race_type:=object_avoidance", f"world_config:={world}")
    code, output = simulators(params=params).run_to_end(timeout=25)
    assert code == 2, output[-2000:]
    assert "RACE_TYPE HEAD_TO_BOT disagrees with parameter 'race_type' object_avoidance" in output, output[-2000:]
    assert "--race-type" not in output and "Traceback" not in output


def test_deepracer_rl_sim_takes_the_race_options_and_sensors(simulators, tmp_path):
    world = tmp_path / "world.yaml"
    world.write_text("RACE_TYPE: HEAD_TO_BOT\nNUMBER_OF_BOT_CARS: 2\nWORLD_NAME: reinvent_base\n")
    sim = simulators(
        "--world-config", str(world), "--is-lane-change", "--sensors", "STEREO_CAMERAS", "--size", "160x120", cli=True
    )
    sim.wait_started()
    assert "sensors ['STEREO_CAMERAS'], objects on /objects: 2 bot cars at 0.2 m/s, changing lanes" in sim.output()
    assert sim.interrupt() == 0
    code, output = simulators("--number-of-obstacles", "-2", cli=True).run_to_end(timeout=25)
    assert code == 2 and "--number-of-obstacles -2: expected a whole number >= 0" in output, output[-2000:]


def test_the_camera_draws_the_objects_and_a_new_episode_draws_a_new_random_layout():
    """In-process SimNode: the same start seen with and without the race's boxes differs (the boxes are
    drawn); a teleport (an /initialpose: a new episode) gives a random layout a new draw, clear of the start;
    with cars:=2 each car has its own world and its /car<i>/objects publisher."""
    import rclpy
    from rclpy.parameter import Parameter

    from deepracer_rl.ros import contract
    from deepracer_rl.ros.sim_node import SimNode

    context = rclpy.Context()
    rclpy.init(context=context)
    nodes = []
    try:

        def node(**params):
            common = {"image_width": 160, "image_height": 120, "cars": 2}
            made = SimNode(
                context=context, parameter_overrides=[Parameter(k, value=v) for k, v in {**common, **params}.items()]
            )
            nodes.append(made)
            return made

        plain = node()
        boxes = node(race_type="object_avoidance", number_of_obstacles=4, randomize_obstacle_locations=True, seed=5)
        assert plain.world is None and boxes.world is not None
        for i in range(2):
            boxes.sim.place_car(i, plain.sim.state.pose[i])
        assert not np.array_equal(plain.sim.render(np.arange(2)), boxes.sim.render(np.arange(2)))
        assert boxes.sim.objects.params.shape == (2, 4, 6)
        topics = {name for name, _ in boxes.get_publisher_names_and_types_by_node(boxes.get_name(), "/")}
        assert {contract.car_topic(f"/car{i}", contract.OBJECTS) for i in range(2)} <= topics
        before = boxes.world.state().poses.copy()
        x, y, yaw = (float(v) for v in plain.sim.state.pose[0])
        boxes.teleport(0, x, y, yaw)
        after = boxes.world.state().poses
        assert not np.allclose(before[0], after[0]) and np.allclose(before[1], after[1])
    finally:
        for made in nodes:
            made.destroy_node()
        rclpy.shutdown(context=context)


def test_crashed_reaches_the_ros_backend_as_in_process_with_the_same_objects(simulators):
    """Lockstep sim_node with 3 fixed boxes and RosRaceEnv over it with the same world config, beside the
    in-process env: driving the centre line into the first box ends the episode `crashed` at the same step, with
    the same rewards and params (is_crashed, objects_*); the first camera frames match (boxes on both sides)."""
    from deepracer_rl.baseline import PurePursuitDriver
    from deepracer_rl.env import RaceEnv
    from deepracer_rl.observation import ObservationSpec
    from deepracer_rl.ros.bridge import RosRaceEnv

    sim = simulators(
        "--lockstep", "--size", "160x120", "--encoding", "mono8", "--race-type", "object_avoidance",
        "--number-of-obstacles", "3", cli=True,
    )  # fmt: skip
    spec = ObservationSpec(160, 120, grayscale=True)
    objects = {"NUMBER_OF_OBSTACLES": 3}
    ros = RosRaceEnv(observation=spec, timeout=10.0, connect_timeout=30.0, objects=objects)
    ref = RaceEnv(observation=spec, objects=objects)
    try:
        obs_ros, _ = ros.reset(seed=3)
        obs_ref, _ = ref.reset(seed=3)
        assert np.abs(obs_ros.astype(int) - obs_ref).max() <= 1
        # the scripted driver along the centre line, not round the boxes: box 0 (2 % in, inner lane) is in its way
        driver = PurePursuitDriver(ref.core, avoid_objects=False)
        for step in range(300):
            steer, speed = driver.act()
            r_ros, status_ros, params_ros = ros.core.drive(steer, speed)
            r_ref, status_ref, params_ref = ref.core.drive(steer, speed)
            assert status_ros == status_ref, step
            assert r_ros == pytest.approx(r_ref, rel=1e-9, abs=1e-12), step
            for key in ("is_crashed", "objects_location", "objects_distance", "closest_objects", "object_in_camera"):
                assert np.allclose(params_ros[0][key], params_ref[0][key], atol=1e-6), (step, key)
            if status_ref[0].value != "in_progress":
                break
        assert status_ros[0].value == "crashed" and params_ros[0]["is_crashed"], (step, status_ros)
        assert step > 5
    finally:
        ros.close()
        ref.close()
    assert sim.interrupt() == 0


def test_a_race_with_objects_over_ros_needs_the_simulator_to_spawn_the_same_objects(simulators):
    """A simulator with other objects than the race's is an error saying so; one without any times out
    naming /objects and how to start one."""
    from deepracer_rl.observation import ObservationSpec
    from deepracer_rl.ros.backend import SimulatorTimeout
    from deepracer_rl.ros.bridge import RosRaceEnv

    spec = ObservationSpec(160, 120, grayscale=True)
    for sim_args, error, match in (
        (("--number-of-obstacles", "3"), ValueError, "the simulator has 3 objects per car, this race's world config 2"),
        ((), SimulatorTimeout, r"no /objects of the car's state within 2 s: .*deepracer-rl sim --world-config"),
    ):
        sim = simulators("--lockstep", "--size", "160x120", "--encoding", "mono8", *sim_args, cli=True)
        env = RosRaceEnv(observation=spec, timeout=2.0, connect_timeout=30.0, objects={"NUMBER_OF_OBSTACLES": 2})
        try:
            env.reset(seed=0)
            with pytest.raises(error, match=match):
                env.step(0)
        finally:
            env.close()
        assert sim.interrupt() == 0


@pytest.mark.parametrize("command", ["train", "evaluate", "validate-reward", "sim", "world"])
def test_help_of_every_command_with_the_race_options_prints(command, capsys):
    from deepracer_rl.cli import main as cli_main

    with pytest.raises(SystemExit) as exit_info:
        cli_main([command, "--help"])
    assert exit_info.value.code == 0
    assert "% of the track length" in capsys.readouterr().out
