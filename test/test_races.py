"""Object avoidance and head-to-bot races through RaceCore, the camera, evaluation and the CLI.

Every test drives the real in-process simulator and camera renderer; the objects come from
`world_objects.ObjectWorld` (its own tests check placement, lanes and collisions geometrically).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepracer_rl.camera import CarBoxes
from deepracer_rl.episode import EpisodeJudge, EpisodeStatus
from deepracer_rl.evaluate import baseline_driver, run_laps
from deepracer_rl.inprocess import InProcessBackend
from deepracer_rl.race import RaceCore
from deepracer_rl.world_objects import (
    OBSTACLE_RGB,
    RaceObjects,
    WorldConfigError,
    has_close_opposite_pair,
    load_world_config,
)

REPO = Path(__file__).resolve().parents[1]
OBJECT_KEYS = (
    "objects_location",
    "objects_left_of_center",
    "objects_speed",
    "objects_heading",
    "objects_distance",
    "objects_distance_from_center",
    "closest_objects",
    "object_in_camera",
)
BOX_AHEAD = {"OBJECT_POSITIONS": ["0.25,1"]}  # one box a quarter round reinvent_base, inner lane


def drive_straight_until_done(core: RaceCore, steps: int = 400) -> tuple[int, EpisodeStatus, dict]:
    """Drive car 0 along the centre line (the scripted driver told not to avoid objects)."""
    driver = baseline_driver(avoid_objects=False)
    for step in range(steps):
        steer, speed = driver(core)
        _, status, params = core.drive(steer, speed)
        if status[0].done:
            return step, status[0], params[0]
    raise AssertionError("the episode did not end")


def test_a_car_that_drives_at_a_box_crashes_with_every_objects_param() -> None:
    core = RaceCore.create("reinvent_base", sensors=False, objects=BOX_AHEAD, seed=3)
    try:
        core.reset_cars(np.array([0]))
        _, status, params = drive_straight_until_done(core)
        assert status is EpisodeStatus.CRASHED and params["is_crashed"] is True
        assert set(OBJECT_KEYS) <= set(params) and len(params["objects_location"]) == 1
        box = core._worlds[(0, False)].state().poses[0, 0]
        assert params["objects_location"][0] == pytest.approx(box[:2].tolist())
        assert params["objects_distance"][0] == pytest.approx(0.25 * core.track.length, abs=0.05)
        assert 20.0 < params["progress"] < 26.0  # it got there: the box is a quarter round
        assert params["objects_speed"] == [0.0] and params["object_in_camera"] is True
        assert core.last_hit[0] == 0
    finally:
        core.close()


def test_time_trials_are_unchanged_and_objects_default_to_none() -> None:
    plain = RaceCore.create("reinvent_base", sensors=False, seed=3)
    empty = RaceCore.create("reinvent_base", sensors=False, seed=3, objects={"NUMBER_OF_OBSTACLES": 0})
    try:
        assert plain.objects is None and empty.objects is None  # no objects: a time trial
        for core in (plain, empty):
            core.reset_cars(np.array([0]))
        a, b = plain.drive([5.0], [1.0]), empty.drive([5.0], [1.0])
        assert a[2] == b[2] and a[2][0]["objects_location"] == [] and a[2][0]["is_crashed"] is False
    finally:
        plain.close()
        empty.close()


def test_crashed_ranks_after_lap_complete_and_before_off_track() -> None:
    core = RaceCore.create("reinvent_base", sensors=False)
    judge = EpisodeJudge(core.track, core.car.wheel_contact_points(), 2, core.control_hz)
    core.close()
    far_off = np.array([100.0, 100.0, 0.0])
    for i in range(2):
        judge.start(i, core.start_pose(0)[0])
    result = judge.update(np.stack([far_off, far_off]), np.zeros(2), np.zeros(2), crashed=np.array([True, False]))
    assert [s.value for s in result.status] == ["crashed", "off_track"]
    assert result.params[0]["is_crashed"] is True and result.params[1]["is_crashed"] is False


def test_each_car_races_in_its_own_world_and_sees_its_objects() -> None:
    config = {"NUMBER_OF_OBSTACLES": 6, "RANDOMIZE_OBSTACLE_LOCATIONS": True}
    core = RaceCore.create("reinvent_base", n_cars=3, objects=config, seed=5)
    plain = RaceCore.create("reinvent_base", n_cars=3, seed=5)
    try:
        core.reset_cars(np.arange(3))
        plain.reset_cars(np.arange(3))
        layouts = core._worlds[(0, False)].state().poses
        assert not np.allclose(layouts[0], layouts[1])  # random layouts per world
        boxes = core.backend.sim.objects
        assert isinstance(boxes, CarBoxes) and boxes.params.shape == (3, 6, 6)
        np.testing.assert_array_equal(boxes.params[:, :, :3], layouts)
        assert tuple(boxes.colours[0]) == OBSTACLE_RGB["box_obstacle"]
        # The frames are the renderer's with each car's own boxes, byte for byte.
        sim = core.backend.sim
        expected = sim.renderer_for(0).render(sim.state.pose, np.arange(3), boxes)
        np.testing.assert_array_equal(core.stack[:, -1], expected)
        # Put car 1 right behind a box of its world: its frame shows it, the time trial's does not.
        world = core._worlds[(0, False)]
        box = world.state().poses[1, 0]
        arc = core.track.project(box[None, :2]).arc_length[0] - 1.0
        (point,), (heading,) = core.track.point_at(np.array([arc]))
        pose = np.array([point[0], point[1], heading])
        for race in (core, plain):
            race.backend.reset_cars(np.array([1]), pose[None], new_episode=False)
            race.observe(np.array([1]))
        assert np.count_nonzero(core.stack[1, -1] != plain.stack[1, -1]) > 200
    finally:
        core.close()
        plain.close()


def test_bot_cars_drive_and_a_seed_repeats_the_race() -> None:
    config = {"NUMBER_OF_BOT_CARS": 3, "IS_LANE_CHANGE": True, "BOT_CAR_SPEED": 0.5}

    def race(seed: int) -> tuple[np.ndarray, list]:
        core = RaceCore.create("reinvent_base", n_cars=2, sensors=False, objects=config, seed=seed)
        try:
            core.reset_cars(np.arange(2))
            start = core._worlds[(0, False)].state().poses.copy()
            params = None
            for _ in range(30):
                _, _, params = core.drive(np.zeros(2), np.zeros(2))
            moved = core._worlds[(0, False)].state().poses
            assert np.all(np.linalg.norm(moved[..., :2] - start[..., :2], axis=-1) > 0.3)  # 2 s at 0.5 m/s
            return moved, params
        finally:
            core.close()

    a, params = race(7)
    b, _ = race(7)
    np.testing.assert_array_equal(a, b)
    assert params[0]["objects_speed"] == [0.5] * 3  # a head-to-bot race reports BOT_CAR_SPEED


def test_several_tracks_and_both_directions_get_their_own_worlds() -> None:
    core = RaceCore.create(
        ["reinvent_base", "Oval_track"],
        n_cars=4,
        sensors=False,
        direction="both",
        seed=2,
        objects={"NUMBER_OF_OBSTACLES": 2},
    )
    try:
        for _ in range(3):
            core.reset_cars(np.arange(4))
            _, _, params = core.drive(np.zeros(4), np.full(4, 0.5))
            for i in range(4):
                k, reverse = core._world_key[i]
                assert k == core.judge.car_track[i] and reverse == core.judge.reverse[i]
                world = core._worlds[(k, reverse)]
                assert world.track.name.startswith(core.car_track(i).name)
                assert params[i]["objects_location"] == world.state().poses[i, :, :2].tolist()
    finally:
        core.close()


def test_a_backend_that_cannot_show_objects_refuses_the_race() -> None:
    class Blind(InProcessBackend):
        supports_objects = False

    core = RaceCore.create("reinvent_base")
    blind = Blind(core.track, 1, core.obs_spec, core.backend.sensors)
    try:
        with pytest.raises(ValueError, match="does not show obstacles"):
            RaceCore(blind, core.actions, core.reward_fn, objects=RaceObjects(number_of_obstacles=1))
    finally:
        blind.close()
        core.close()


def test_a_crash_in_evaluation_pays_the_penalty_and_is_put_back() -> None:
    core = RaceCore.create("reinvent_base", sensors=False, objects=BOX_AHEAD, seed=1)
    free = RaceCore.create("reinvent_base", sensors=False, seed=1)
    try:
        report = run_laps(core, baseline_driver(avoid_objects=False), laps=1)
        plain = run_laps(free, baseline_driver(avoid_objects=False), laps=1)
        assert report.collisions >= 1 and report.penalty_s == pytest.approx(5.0 * report.collisions)
        assert report.statuses == ["lap_complete"]  # put back behind the box in the other lane, on it goes
        assert plain.collisions == 0 and plain.penalty_s == 0.0
        assert report.lap_times_s[0] > plain.lap_times_s[0] + report.penalty_s  # penalty and the reset's metre
        assert core.evaluation is False  # training's penalties again after the laps
        custom = run_laps(core, baseline_driver(avoid_objects=False), laps=1, collision_penalty=1.5)
        assert custom.penalty_s == pytest.approx(1.5 * custom.collisions)
    finally:
        core.close()
        free.close()


def test_world_config_files_name_the_bad_key(tmp_path: Path) -> None:
    good = tmp_path / "world.yaml"
    good.write_text("WORLD_NAME: reinvent_base\nRACE_TYPE: OBJECT_AVOIDANCE\nNUMBER_OF_OBSTACLES: 3\n")
    assert load_world_config(good).number_of_obstacles == 3
    as_json = tmp_path / "world.json"
    as_json.write_text(json.dumps({"NUMBER_OF_BOT_CARS": 2, "BOT_CAR_SPEED": 0.4}))
    assert load_world_config(as_json).number_of_bot_cars == 2
    typo = tmp_path / "typo.yaml"
    typo.write_text("NUMBER_OF_OBSTACLE: 3\n")
    with pytest.raises(WorldConfigError, match="NUMBER_OF_OBSTACLE: not a world-config key.*NUMBER_OF_OBSTACLES"):
        load_world_config(typo)
    bad = tmp_path / "bad.yaml"
    bad.write_text("OBJECT_POSITIONS: ['0.5,2']\n")
    with pytest.raises(WorldConfigError, match=r"OBJECT_POSITIONS\[0\]: lane is 1 \(inner\) or -1 \(outer\)"):
        load_world_config(bad)
    with pytest.raises(WorldConfigError, match="BOT_CAR_SPEED"):
        RaceCore.create("reinvent_base", objects={"BOT_CAR_SPEED": -1})


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE")
    return subprocess.run(
        [sys.executable, "-m", "deepracer_rl.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_cli_evaluates_the_baseline_among_obstacles_and_reports_collisions_per_track(tmp_path: Path) -> None:
    world = tmp_path / "world.yaml"
    world.write_text("NUMBER_OF_OBSTACLES: 3\nRANDOMIZE_OBSTACLE_LOCATIONS: true\n")
    result = _cli(
        "evaluate", "--driver", "baseline", "--laps", "1", "--track", "reinvent_base", "--track", "Oval_track",
        "--world-config", str(world), "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [t["track"] for t in report["tracks"]] == ["reinvent_base", "Oval_track"]
    for track in report["tracks"]:
        assert "collisions" in track and track["penalty_s"] == pytest.approx(5.0 * track["collisions"])
    assert report["collisions"] == sum(t["collisions"] for t in report["tracks"])
    again = _cli(
        "evaluate", "--driver", "baseline", "--laps", "1", "--track", "reinvent_base", "--track", "Oval_track",
        "--world-config", str(world), "--json", cwd=tmp_path,
    )  # fmt: skip
    assert json.loads(again.stdout) == report  # the layouts come from the (default) seed: a measurement repeats
    typo = tmp_path / "typo.yaml"
    typo.write_text("NUMBER_OF_BOTCARS: 1\n")
    refused = _cli("evaluate", "--driver", "baseline", "--world-config", str(typo), cwd=tmp_path)
    assert refused.returncode != 0 and "NUMBER_OF_BOTCARS" in refused.stderr and "NUMBER_OF_BOT_CARS" in refused.stderr


def test_the_scripted_driver_steers_round_boxes_wherever_a_gap_is_left() -> None:
    """Every lap completes; a lap collides only on a layout with two boxes in opposite lanes too
    close to pass between (DeepRacer's random placement makes them; `has_close_opposite_pair`)."""
    core = RaceCore.create("reinvent_base", sensors=False, seed=11, objects={"NUMBER_OF_OBSTACLES": 3,
                           "RANDOMIZE_OBSTACLE_LOCATIONS": True})  # fmt: skip
    blind = RaceCore.create("reinvent_base", sensors=False, seed=11, objects={"NUMBER_OF_OBSTACLES": 3,
                            "RANDOMIZE_OBSTACLE_LOCATIONS": True})  # fmt: skip
    driver, clean_layouts, hits_without_avoiding = baseline_driver(), 0, 0
    try:
        for _ in range(8):
            report = run_laps(core, driver, laps=1)
            assert report.statuses == ["lap_complete"]
            if not has_close_opposite_pair(core.track, core.car_objects().poses[0]):
                clean_layouts += 1
                assert report.collisions == 0, report
            hits_without_avoiding += run_laps(blind, baseline_driver(avoid_objects=False), laps=1).collisions
        assert clean_layouts >= 5 and hits_without_avoiding >= 4  # the boxes were in the way
    finally:
        core.close()
        blind.close()


def test_the_race_type_options_build_the_world_and_refuse_what_does_not_fit(tmp_path: Path) -> None:
    result = _cli(
        "evaluate",
        "--driver",
        "baseline",
        "--race-type",
        "object_avoidance",
        "--number-of-obstacles",
        "3",
        "--randomize-obstacle-locations",
        "--laps",
        "3",
        "--json",
        cwd=tmp_path,
    )  # fmt: skip  (issue 15's command as written: the default seed's layouts)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["completed_laps"], report["attempted_laps"], report["collisions"]) == (3, 3, 0)
    world = tmp_path / "world.yaml"
    world.write_text("RACE_TYPE: HEAD_TO_BOT\nNUMBER_OF_BOT_CARS: 2\n")
    refused = {
        ("--race-type", "time_trial", "--number-of-obstacles", "2"): "a time trial has no obstacles or bot cars",
        ("--race-type", "head_to_bot", "--number-of-bot-cars", "0"): "needs NUMBER_OF_BOT_CARS of at least 1",
        ("--number-of-obstacles", "-1"): "--number-of-obstacles -1: expected a whole number >= 0",
        ("--object-positions", "0.5,2"): "--object-positions 0.5,2: OBJECT_POSITIONS[0]: lane is 1 (inner) or -1",
        ("--race-type", "object_avoidance", "--world-config", str(world)): "RACE_TYPE HEAD_TO_BOT disagrees with "
        "--race-type object_avoidance",
    }
    for args, message in refused.items():
        out = _cli("evaluate", "--driver", "baseline", *args, cwd=tmp_path)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
    from deepracer_rl.cli import build_parser, config_from_args

    def world_of(*args: str) -> dict | None:
        return config_from_args(build_parser().parse_args(["train", "--out", "x", *args])).world_config

    assert world_of("--race-type", "object_avoidance")["NUMBER_OF_OBSTACLES"] == 6  # DRfC's default
    assert world_of("--race-type", "head_to_bot", "--bot-car-speed", "0.4", "--is-lane-change")["BOT_CAR_SPEED"] == 0.4
    assert world_of("--world-config", str(world), "--number-of-bot-cars", "3")["NUMBER_OF_BOT_CARS"] == 3  # overrides
    assert world_of("--race-type", "time_trial") is None


def test_validate_reward_calls_a_reward_of_every_object_key_near_the_objects(tmp_path: Path) -> None:
    reward = REPO / "test" / "data" / "rewards" / "every_object_key.py"
    result = _cli("validate-reward", str(reward), "--race-type", "object_avoidance", "--number-of-obstacles", "3",
                  cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "200 calls on reinvent_base (half of them 0.2-3 m behind one of 3 objects" in result.stdout
    bots = _cli("validate-reward", str(reward), "--race-type", "head_to_bot", cwd=tmp_path)
    assert bots.returncode == 0 and "one of 3 objects" in bots.stdout, bots.stderr
    plain = _cli("validate-reward", str(reward), cwd=tmp_path)  # a time trial has DeepRacer's empty defaults
    assert plain.returncode == 0, plain.stderr
    from deepracer_rl.car import CarSpec
    from deepracer_rl.track import Track
    from deepracer_rl.world_objects import sample_params_with_objects

    params = sample_params_with_objects(
        Track.load("reinvent_base"), RaceObjects(number_of_obstacles=3), CarSpec.from_urdf()
    )
    assert all(set(OBJECT_KEYS) <= set(p) and len(p["objects_location"]) == 3 for p in params)
    assert any(p["is_crashed"] for p in params) and any(p["object_in_camera"] for p in params)
    assert not all(p["is_crashed"] for p in params)


def test_cli_trains_object_avoidance_records_the_world_and_resumes(tmp_path: Path) -> None:
    world = tmp_path / "world.yaml"
    world.write_text("NUMBER_OF_OBSTACLES: 3\nRANDOMIZE_OBSTACLE_LOCATIONS: true\n")
    out = tmp_path / "run"
    reward = REPO / "test" / "data" / "rewards" / "avoid_objects.py"
    common = [
        "--out",
        str(out),
        "--n-envs",
        "4",
        "--eval-every",
        "2048",
        "--no-reward-isolation",
        "--reward",
        str(reward),
    ]
    first = _cli("train", *common, "--world-config", str(world), "--steps", "2048", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["world_config"]["NUMBER_OF_OBSTACLES"] == 3
    assert config["world_config"]["RANDOMIZE_OBSTACLE_LOCATIONS"] is True
    simtrace = "".join(p.read_text() for p in (out / "training-simtrace").glob("*.csv"))
    assert "crashed" in simtrace  # the learner hits boxes while it learns
    resumed = _cli("train", *common, "--resume", "--steps", "4096", cwd=tmp_path)  # the run's world, not given again
    assert resumed.returncode == 0, resumed.stderr
    other = tmp_path / "other.yaml"
    other.write_text("NUMBER_OF_BOT_CARS: 2\n")
    changed = _cli("train", *common, "--resume", "--steps", "6144", "--world-config", str(other), cwd=tmp_path)
    assert changed.returncode != 0 and "--world-config" in changed.stderr
    evaluated = _cli("evaluate", str(out), "--laps", "1", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "collisions" in json.loads(evaluated.stdout)["tracks"][0]


def test_lidar_and_stereo_combinations_deepracer_lacks_are_refused_with_the_reason() -> None:
    from deepracer_rl.sensors import SensorError, check_sensor_names

    assert check_sensor_names(["FRONT_FACING_CAMERA", "LIDAR"]) == ("FRONT_FACING_CAMERA", "LIDAR")
    assert check_sensor_names(["STEREO_CAMERAS"]) == ("STEREO_CAMERAS",)
    with pytest.raises(SensorError, match="2 lidar kinds.*one lidar at most"):
        check_sensor_names(["FRONT_FACING_CAMERA", "LIDAR", "SECTOR_LIDAR"])
    with pytest.raises(SensorError, match="2 camera kinds.*one camera at most"):
        check_sensor_names(["FRONT_FACING_CAMERA", "STEREO_CAMERAS"])
    with pytest.raises(SensorError, match="has no camera"):
        check_sensor_names(["LIDAR"])


def test_race_env_takes_objects_and_its_full_size_view_shows_them() -> None:
    from deepracer_rl.env import RaceEnv

    with_box = RaceEnv(render_mode="rgb_array", objects={"OBJECT_POSITIONS": ["0.02,1"]})
    plain = RaceEnv(render_mode="rgb_array")
    try:
        obs, _ = with_box.reset(seed=0)
        plain.reset(seed=0)
        assert obs.shape == with_box.observation_space.shape  # the camera's Box space, as in a time trial
        (box,) = with_box.core.object_boxes(0)
        state = with_box.core._worlds[(0, False)].state()
        assert (box.x, box.y, box.length) == pytest.approx((*state.poses[0, 0, :2], 0.4))
        assert with_box.core.object_boxes(0) and plain.core.object_boxes(0) == []
        assert np.count_nonzero(with_box.render() != plain.render()) > 1000
    finally:
        with_box.close()
        plain.close()
