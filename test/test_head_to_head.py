"""Head-to-head races and self-play: two cars of the real in-process simulator on one track.

The pairs come from `RaceCore(head_to_head=True)`; the evaluation, training and CLI tests drive
the shipped models, the scripted driver and short real training runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepracer_rl.config import TrainConfig
from deepracer_rl.episode import EpisodeStatus, start_line_pose
from deepracer_rl.head_to_head import HeadToHeadVecEnv, OpponentPool, baseline_rows, run_head_to_head
from deepracer_rl.observation import ObservationSpec
from deepracer_rl.opponents import OPPONENT_RGB, STAGGER_M, staggered_starts
from deepracer_rl.race import RaceCore
from deepracer_rl.rundir import RunDir
from deepracer_rl.self_play import SNAPSHOTS, opponent_pool, snapshot_paths
from deepracer_rl.train import train
from deepracer_rl.world_objects import car_centres

REPO = Path(__file__).resolve().parents[1]
SMALL = ObservationSpec(80, 60, False, 1)  # RGB: the opponent's colour can be looked for


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE")
    return subprocess.run(
        [sys.executable, "-m", "deepracer_rl.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _pair(head_to_head: bool = True) -> RaceCore:
    core = RaceCore.create("reinvent_base", n_cars=2, observation=SMALL, seed=0, head_to_head=head_to_head)
    track = core.track
    core.reset_cars(np.arange(2), pose=staggered_starts(track, start_line_pose(track), core.car, leader=0))
    return core


def test_each_car_sees_the_other_in_its_params_and_the_follower_sees_it_on_camera() -> None:
    core, alone = _pair(), _pair(head_to_head=False)
    try:
        _, status, params = core.drive(np.zeros(2), np.full(2, 0.5))
        alone.drive(np.zeros(2), np.full(2, 0.5))
        core.observe(np.arange(2))
        alone.observe(np.arange(2))
        poses = core.poses()
        centres = car_centres(poses, core.car)
        assert [s for s in status] == [EpisodeStatus.IN_PROGRESS] * 2
        for i in range(2):
            other = 1 - i
            assert params[i]["objects_location"][0] == pytest.approx(centres[other, :2].tolist())
            assert params[i]["objects_heading"] == pytest.approx([poses[other, 2]])
            assert params[i]["objects_speed"][0] == pytest.approx(core.backend.states().speeds[other])
            assert params[i]["is_crashed"] is False
        # Car 1 starts STAGGER_M behind car 0: car 0 is in its camera, car 1 is not in car 0's.
        assert params[1]["object_in_camera"] and not params[0]["object_in_camera"]
        follower, follower_alone = core.observation(1), alone.observation(1)
        assert not np.array_equal(follower, follower_alone)
        rgb = follower.reshape(3, -1).T.astype(int)
        assert (np.abs(rgb - np.array(OPPONENT_RGB)).max(axis=1) < 40).sum() >= 10  # the other car's colour
        assert np.array_equal(core.observation(0), alone.observation(0))  # the car behind is out of view
    finally:
        core.close()
        alone.close()


def test_a_collision_between_the_two_crashes_both() -> None:
    core = _pair()
    try:
        here = core.poses()[0].copy()
        core.backend.reset_cars(np.array([1]), (here + np.array([0.1, 0.0, 0.0]))[None], new_episode=False)
        _, status, params = core.drive(np.zeros(2), np.zeros(2))
        assert status == [EpisodeStatus.CRASHED, EpisodeStatus.CRASHED]
        assert params[0]["is_crashed"] and params[1]["is_crashed"]
    finally:
        core.close()


def test_pairs_restart_staggered_and_a_car_alone_restarts_behind_its_opponent() -> None:
    core = RaceCore.create("reinvent_base", n_cars=4, sensors=False, seed=0, head_to_head=True)
    try:
        core.reset_cars(np.arange(4))
        track = core.track
        arcs = track.project(car_centres(core.poses(), core.car)[:, :2]).arc_length
        gap = (arcs[0] - arcs[1]) % track.length
        assert gap == pytest.approx(STAGGER_M, abs=0.05)  # car 0 leads its first episode
        core.backend.reset_cars(np.array([0]), core.poses()[[0]] + np.array([[0.0, 0.0, 0.0]]), new_episode=False)
        core.reset_cars(np.array([3]))
        arcs = track.project(car_centres(core.poses(), core.car)[:, :2]).arc_length
        assert (arcs[2] - arcs[3]) % track.length == pytest.approx(STAGGER_M, abs=0.05)
        with pytest.raises(ValueError, match="even number of cars"):
            RaceCore.create("reinvent_base", n_cars=3, sensors=False, head_to_head=True)
        with pytest.raises(ValueError, match="no obstacles"):
            RaceCore.create(n_cars=2, sensors=False, head_to_head=True, objects={"NUMBER_OF_OBSTACLES": 2})
    finally:
        core.close()


def test_head_to_head_laps_count_collisions_with_the_penalty_and_say_who_finished_first() -> None:
    core = RaceCore.create("reinvent_base", n_cars=2, sensors=False, seed=0, head_to_head=True)

    try:
        report = run_head_to_head(core, [baseline_rows(), baseline_rows()], laps=2)
        assert [r.completed_laps for r in report.cars] == [2, 2]
        assert report.leaders == [0, 1] and report.firsts == [0, 1]  # the scripted driver holds its lead
        blind = RaceCore.create("reinvent_base", n_cars=2, sensors=False, seed=0, head_to_head=True)
        from deepracer_rl.baseline import PurePursuitDriver

        line = PurePursuitDriver(blind, avoid_objects=False)

        def rammer(core: RaceCore, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            steer, speed = line.act()
            return steer[rows], np.full(len(rows), 3.0)

        def crawler(core: RaceCore, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            steer, _ = line.act()
            return steer[rows], np.full(len(rows), 0.4)

        crash = run_head_to_head(blind, [crawler, rammer], laps=1, max_seconds=30.0)
        blind.close()
        assert crash.cars[1].collisions >= 1 and crash.cars[0].collisions >= 1
        for car in crash.cars:
            assert car.penalty_s == pytest.approx(5.0 * car.collisions)
    finally:
        core.close()


def test_opponent_cars_are_driven_by_the_drivers_the_pool_drew_for_them() -> None:
    calls: dict[str, list[int]] = {"slow": [], "line": []}
    line = baseline_rows()

    def recorded(name: str, speed: float | None):
        def drive(core: RaceCore, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            calls[name].extend(rows.tolist())
            steer, v = line(core, rows)
            return steer, (v if speed is None else np.full(len(rows), speed))

        return drive

    pool = OpponentPool([recorded("slow", 0.3)], seed=1)
    pool.labels = ["slow"]
    pool.add(recorded("line", None), "line")
    env = HeadToHeadVecEnv(pool, n_envs=3, seed=0, observation=ObservationSpec(40, 36, True, 1))
    try:
        env.reset()
        for _ in range(150):
            assigned = dict(pool.assigned)
            before = {k: len(v) for k, v in calls.items()}
            obs, rewards, dones, infos = env.step(np.array([env.action_space.sample() for _ in range(3)]))
            assert obs.shape == (3, 1, 36, 40) and len(infos) == 3 and rewards.shape == (3,)
            for name, rows in calls.items():
                assert sorted(rows[before[name] :]) == sorted(r for r, k in assigned.items() if pool.labels[k] == name)
        assert set(pool.drawn) == {"slow", "line"}  # both drawn, only from the pool
        assert len(pool.drawn) > 3  # opponents started new episodes and drew again
    finally:
        env.close()


def test_self_play_training_writes_snapshots_and_a_resume_restores_the_pool(tmp_path: Path) -> None:
    run = tmp_path / "sp"
    config = TrainConfig(
        steps=1200, n_envs=2, image_width=40, image_height=36, head_to_head=True, self_play=True,
        opponent_pool=2, snapshot_every=400, eval_every=10**6, checkpoint_every=10**6, reward_isolation=False,
        episodes_between_updates=4, batch_size=64,
    )  # fmt: skip
    summary = train(config, run)
    assert summary["timesteps"] >= 1200
    snapshots = [p.name for p in snapshot_paths(RunDir(run))]
    # the initial policy, then every 400 steps; the newest 2 are kept
    steps = [int(name.removeprefix("step_").removesuffix(".zip")) for name in snapshots]
    assert len(snapshots) == 2 and steps == sorted(steps) and steps[-1] >= 800 and all(s % 400 == 0 for s in steps)
    saved = json.loads((run / "config.json").read_text())
    assert saved["self_play"] and saved["opponent_pool"] == 2 and saved["head_to_head"]
    restored = opponent_pool(TrainConfig.from_json((run / "config.json").read_text()), RunDir(run))
    assert restored.labels == snapshots  # what --resume races against
    assert (run / SNAPSHOTS).is_dir()


def test_cli_trains_against_a_fixed_opponent(tmp_path: Path) -> None:
    result = _cli(
        "train", "--out", "fixed", "--race-type", "head_to_head", "--opponent", "baseline", "--steps", "300",
        "--n-envs", "2", "--image-size", "40x36", "--eval-every", "1000000", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "fixed" / "config.json").read_text())
    assert saved["head_to_head"] and saved["opponent"] == "baseline" and not saved["self_play"]
    assert not (tmp_path / "fixed" / SNAPSHOTS).exists()  # snapshots are self-play's


def test_cli_evaluates_two_shipped_models_head_to_head_and_prints_the_schema(tmp_path: Path) -> None:
    result = _cli(
        "evaluate", "general", "--race-type", "head_to_head", "--opponent", "racing_reinvent_base", "--laps", "2",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["race_type"] == "head_to_head" and report["laps"] == 2 and report["track"] == "reinvent_base"
    assert [car["car"] for car in report["cars"]] == [0, 1]
    for car in report["cars"]:
        for key in ("driver", "completed_laps", "lap_times_s", "collisions", "penalty_s", "off_track", "laps_won"):
            assert key in car
        assert car["penalty_s"] == pytest.approx(5.0 * car["collisions"])
    assert [lap["leader_at_start"] for lap in report["per_lap"]] == [0, 1]
    assert all(lap["finished_first"] in (0, 1, None) for lap in report["per_lap"])
    assert report["winner"] in (0, 1, None)
    assert "general" in report["cars"][0]["driver"] and "racing_reinvent_base" in report["cars"][1]["driver"]


@pytest.mark.parametrize(
    "args, reason",
    [
        (
            ("train", "--out", "r", "--self-play"),
            "--self-play races an opponent car: it needs --race-type head_to_head",
        ),
        (("train", "--out", "r", "--race-type", "head_to_head"), "give one of them"),
        (
            ("train", "--out", "r", "--race-type", "head_to_head", "--self-play", "--opponent", "baseline"),
            "give one of them",
        ),
        (("train", "--out", "r", "--race-type", "head_to_head", "--opponent", "nosuch"), "--opponent nosuch"),
        (
            ("train", "--out", "r", "--race-type", "head_to_head", "--self-play", "--opponent-pool", "0"),
            "--opponent-pool 0",
        ),
        (
            (
                "train",
                "--out",
                "r",
                "--race-type",
                "head_to_head",
                "--opponent",
                "general",
                "--image-size",
                "160x120",
                "--steps",
                "50",
            ),  # general sees 80x60
            "both cars of a head-to-head race see through the same camera settings",
        ),
        (("evaluate", "general", "--opponent", "baseline"), "it needs --race-type head_to_head"),
        (("evaluate", "general", "--race-type", "head_to_head", "--opponent", "nosuch"), "--opponent nosuch"),
        (("evaluate", "general", "--race-type", "head_to_head"), "give --opponent MODEL or --opponent baseline"),
        (
            (
                "evaluate",
                "general",
                "--race-type",
                "head_to_head",
                "--opponent",
                "baseline",
                "--number-of-obstacles",
                "2",
            ),
            "the other car is the only object",
        ),
    ],
)
def test_bad_head_to_head_options_exit_2_with_the_reason(tmp_path: Path, args: tuple[str, ...], reason: str) -> None:
    result = _cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert reason in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()  # nothing written
