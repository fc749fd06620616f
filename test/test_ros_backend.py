"""The ROS backend: one RaceCore over a simulator behind the topic contract, with real rclpy and DDS.

Evaluation over ROS (the CLI, baseline and policy), and several cars of one `sim_node cars:=N`
driven as the in-process backend drives them. Simulators and CLIs run in their own process
groups (conftest's `simulators` fixture, `processes.SimProcess`).
"""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
from processes import run_cli

pytest.importorskip("rclpy")

from deepracer_rl.evaluate_runs import evaluate_target
from deepracer_rl.observation import ObservationSpec
from deepracer_rl.vec_env import RaceVecEnv

SMALL = ObservationSpec(160, 120, grayscale=True)


def cli(tmp_path, name: str, *args: str, timeout: float) -> tuple[int | None, str]:
    """`deepracer-rl ARGS` in its own process group, run to its end (or interrupted after `timeout`)."""
    return run_cli(tmp_path / f"{name}.log", *args, timeout=timeout)


def test_cli_evaluates_the_baseline_over_a_real_time_sim_within_5_percent_of_in_process(simulators, tmp_path):
    """`deepracer-rl sim --track reinvent_base` (real time, 640x480) and `evaluate --backend ros`."""
    sim = simulators("--track", "reinvent_base", cli=True)
    sim.wait_started()
    code, output = cli(
        tmp_path,
        "eval",
        *("evaluate", "--driver", "baseline", "--backend", "ros", "--track", "reinvent_base", "--laps", "1"),
        *("--json", "--ros-timeout", "20"),
        timeout=120.0,
    )
    assert code == 0, output + sim.output()
    over_ros = json.loads(output.strip().splitlines()[-1])
    in_process = evaluate_target(None, track="reinvent_base", laps=1, driver="baseline").as_dict()
    assert over_ros["backend"] == "ros" and over_ros["completed_laps"] == 1, over_ros
    assert in_process["completed_laps"] == 1
    (ros_lap,), (local_lap,) = over_ros["lap_times_s"], in_process["lap_times_s"]
    assert abs(ros_lap - local_lap) <= 0.05 * local_lap, (ros_lap, local_lap)
    assert sim.interrupt() in (0, -signal.SIGINT)


def test_an_exported_policy_is_evaluated_over_a_lockstep_sim_like_in_process(simulators, cloned_policy):
    sim = simulators("--lockstep", "--size", "160x120", "--encoding", "mono8", cli=True)
    sim.wait_started()
    over_ros = evaluate_target(cloned_policy, laps=1, backend="ros", timeout=10.0, connect_timeout=30.0)
    in_process = evaluate_target(cloned_policy, laps=1)
    assert over_ros.report.completed_laps == in_process.report.completed_laps == 1
    (ros_lap,), (local_lap,) = over_ros.report.lap_times_s, in_process.report.lap_times_s
    assert abs(ros_lap - local_lap) <= 0.05 * local_lap, (ros_lap, local_lap)
    assert sim.interrupt() in (0, -signal.SIGINT)


def test_two_cars_of_one_sim_node_race_as_two_in_process_cars(simulators):
    """sim_node cars:=2 publishes /car0/... and /car1/...; RaceVecEnv over it equals the in-process one."""
    sim = simulators(params=("lockstep:=true", "image_width:=160", "image_height:=120", "encoding:=mono8", "cars:=2"))
    ros = RaceVecEnv(n_envs=2, seed=5, backend="ros", observation=SMALL, timeout=10.0, connect_timeout=30.0)
    ref = RaceVecEnv(n_envs=2, seed=5, observation=SMALL)
    try:
        assert ros.backend.namespaces == ["/car0", "/car1"]
        obs_ros, obs_ref = ros.reset(), ref.reset()
        assert obs_ros.shape == obs_ref.shape == (2, 1, 120, 160)
        assert np.abs(obs_ros.astype(int) - obs_ref).max() <= 1
        rng = np.random.default_rng(5)
        ends = 0
        for i in range(150):
            actions = rng.integers(0, ref.action_space.n, 2)
            obs_ros, r_ros, d_ros, info_ros = ros.step(actions)
            obs_ref, r_ref, d_ref, info_ref = ref.step(actions)
            np.testing.assert_allclose(r_ros, r_ref, rtol=1e-6, err_msg=str(i))
            np.testing.assert_array_equal(d_ros, d_ref, err_msg=str(i))
            assert [x["episode_status"] for x in info_ros] == [x["episode_status"] for x in info_ref]
            assert np.abs(obs_ros.astype(int) - obs_ref).max() <= 1, i
            ends += int(d_ref.sum())
        assert ends >= 2  # both cars' episodes ended and restarted at the schedule's next starts
        assert ros.backend.rejected == 0
    finally:
        ros.close()
    assert sim.interrupt() in (0, -signal.SIGINT)


def test_evaluation_over_ros_without_a_simulator_is_a_clear_error(tmp_path):
    code, output = cli(
        tmp_path,
        "eval",
        *("evaluate", "--driver", "baseline", "--backend", "ros", "--laps", "1", "--ros-timeout", "1"),
        timeout=60.0,
    )
    assert code == 2, output
    assert "deepracer-rl evaluate: error: no simulator on the topic contract after 1 s" in output
    assert "Traceback" not in output
