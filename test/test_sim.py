"""The embedded simulator and the race over it: determinism, episode statuses, start positions,
dynamics, URDF edits, params. Episodes are `RaceCore`'s (over the in-process backend); the
physics and camera are `Simulator`'s."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from deepracer_rl.camera import DomainRandomization
from deepracer_rl.car import CarSpec, default_urdf_path
from deepracer_rl.episode import EpisodeJudge, EpisodeStatus, RaceRules, StartRules, start_pose
from deepracer_rl.race import RaceCore
from deepracer_rl.reward import build_params, build_params_batch
from deepracer_rl.sim import GRAVITY, Dynamics, Simulator
from deepracer_rl.track import Track, TrackError, available_tracks


@pytest.fixture(scope="module")
def reinvent() -> Track:
    return Track.load("reinvent_base")


@pytest.fixture(scope="module")
def car() -> CarSpec:
    return CarSpec.from_urdf()


def pose_on_track(track: Track, fraction: float, offset: float = 0.0, turn: float = 0.0) -> np.ndarray:
    """x, y, yaw at `fraction` of the centre line, `offset` m to its left, yaw turned by `turn` rad."""
    (point,), (heading,) = track.point_at(np.array([fraction * track.length]))
    normal = np.array([-math.sin(heading), math.cos(heading)])
    x, y = point + offset * normal
    return np.array([x, y, heading + turn])


def race(track, n_cars: int = 1, camera: bool = False, seed: int | None = None, **kwargs) -> RaceCore:
    """A race over the in-process simulator (without a camera unless asked)."""
    return RaceCore.create(track, n_cars, sensors=camera, seed=seed, **kwargs)


def drive(core: RaceCore, steer_deg: float, speed: float, steps: int, car: int = 0) -> list[EpisodeStatus]:
    """Constant command for `steps` control periods (all cars); car `car`'s statuses until its end."""
    statuses = []
    for _ in range(steps):
        status = core.drive(np.full(core.n, steer_deg), np.full(core.n, speed))[1][car]
        statuses.append(status)
        if status.done:
            break
    return statuses


# ---- determinism ----------------------------------------------------------------------------


def run(seed: int, steps: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poses, frames and progress of 3 cars with noisy starts and camera randomisation."""
    core = race(
        "reinvent_base",
        n_cars=3,
        camera=True,
        seed=seed,
        start=StartRules(lateral_noise=0.1, heading_noise=0.1),
        randomization=DomainRandomization(brightness=0.2, noise=3.0, camera_pitch=0.02),
    )
    core.reset_cars(np.arange(3))
    frames = [core.stack.copy()]
    poses, progress = [core.poses().copy()], []
    commands = np.random.default_rng(0).uniform([-20, 0.5], [20, 2.0], (steps, 3, 2))
    for command in commands:
        _, _, params = core.drive(command[:, 0], command[:, 1])
        core.observe(np.arange(3))
        frames.append(core.stack.copy())
        poses.append(core.poses().copy())
        progress.append([p["progress"] for p in params])
    return np.array(poses), np.array(frames), np.array(progress)


def test_same_seed_gives_identical_poses_frames_and_progress():
    a, b = run(seed=7), run(seed=7)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_different_seeds_give_different_starts_and_frames():
    (poses_a, frames_a, _), (poses_b, frames_b, _) = run(seed=7, steps=2), run(seed=8, steps=2)
    assert not np.array_equal(poses_a[0], poses_b[0])  # start noise
    assert not np.array_equal(frames_a[0], frames_b[0])  # camera randomisation


def test_non_finite_commands_are_rejected(reinvent):
    sim = Simulator(reinvent, image_size=None)
    for steer, speed in ((math.nan, 1.0), (0.0, math.inf), (-math.inf, 1.0)):
        with pytest.raises(ValueError, match="non-finite command"):
            sim.step([steer], [speed])


def test_unknown_track_points_to_the_shipped_tracks():
    with pytest.raises(TrackError) as info:
        Simulator("no_such_track", image_size=None)
    assert "unknown track 'no_such_track'" in str(info.value)
    assert f"lists the {len(available_tracks())} shipped tracks" in str(info.value)


# ---- episode statuses -----------------------------------------------------------------------


def test_driving_straight_off_the_road_is_off_track(reinvent):
    core = race(reinvent)
    core.reset_cars([0], pose=pose_on_track(reinvent, 0.05, turn=math.pi / 2))  # facing across the road
    statuses = drive(core, 0.0, 1.0, 60)
    assert statuses[-1] is EpisodeStatus.OFF_TRACK
    assert len(statuses) > 3  # it starts on the road ...
    wheels = core.judge.wheel_positions(core.poses())[0]
    assert not reinvent.contains(wheels).any()  # ... and ends with all four wheels off it


def test_driving_the_wrong_way_is_reversed(reinvent):
    core = race(reinvent)
    core.reset_cars([0], pose=pose_on_track(reinvent, 0.05, turn=math.pi), reverse=False)  # turned around
    statuses = drive(core, 0.0, 1.0, 60)
    assert statuses[-1] is EpisodeStatus.REVERSED
    assert EpisodeStatus.OFF_TRACK not in statuses


def test_driving_the_reversed_track_backwards_is_reversed_too(reinvent):
    core = race(reinvent)
    core.reset_cars([0], pose=pose_on_track(reinvent, 0.05), reverse=True)  # forward = wrong way here
    assert drive(core, 0.0, 1.0, 60)[-1] is EpisodeStatus.REVERSED


def test_standing_still_is_immobilised_after_the_window(reinvent):
    rules = RaceRules()
    core = race(reinvent, rules=rules)
    core.reset_cars([0])
    statuses = drive(core, 0.0, 0.0, 100)
    assert statuses[-1] is EpisodeStatus.IMMOBILIZED
    assert len(statuses) == round(rules.immobilized_seconds * core.control_hz)


def test_time_limit_is_time_up(reinvent):
    core = race(reinvent, rules=RaceRules(max_seconds=1.0))
    core.reset_cars([0])
    statuses = drive(core, 0.0, 0.5, 100)
    assert statuses[-1] is EpisodeStatus.TIME_UP
    assert len(statuses) == round(core.control_hz)


def test_crossing_the_start_line_completes_a_lap_on_an_open_track():
    core = race("Straight_track")
    core.reset_cars([0])
    statuses = drive(core, 0.0, 2.0, 200)
    assert statuses[-1] is EpisodeStatus.LAP_COMPLETE
    assert core.judge.driven[0] >= core.judge.lap_length[0]


def test_inactive_cars_do_not_move_or_get_judged(reinvent, car):
    sim = Simulator(reinvent, n_cars=2, image_size=None)
    for i in range(2):
        sim.place_car(i, start_pose(reinvent, StartRules(), 0, i, 2)[0])
    judge = EpisodeJudge(reinvent, car.wheel_contact_points(), 2, car.control_hz)
    for i in range(2):
        judge.start(i, sim.state.pose[i])
    before = sim.state.pose.copy()
    active = np.array([True, False])
    sim.step([0.0, 0.0], [1.0, 1.0], active=active)
    result = judge.update(sim.state.pose, [0.0, 0.0], [1.0, 1.0], active=active)
    assert not np.array_equal(sim.state.pose[0], before[0])
    np.testing.assert_array_equal(sim.state.pose[1], before[1])
    assert result.params[1] == {} and result.status[1] is EpisodeStatus.IN_PROGRESS
    assert judge.steps.tolist() == [1, 0]


# ---- start positions ------------------------------------------------------------------------


def start_arcs(track: Track, poses: np.ndarray) -> np.ndarray:
    return track.project(poses[:, :2]).arc_length


def test_start_positions_advance_between_episodes(reinvent):
    core = race(reinvent, start=StartRules(advance_fraction=0.1))
    starts = []
    for _ in range(4):
        core.reset_cars([0])
        starts.append(core.poses()[0].copy())
    arcs = start_arcs(reinvent, np.array(starts))
    np.testing.assert_allclose(np.diff(arcs), 0.1 * reinvent.length, atol=1e-6)
    assert not core.judge.reverse[0]


def test_cars_start_spread_round_the_track(reinvent):
    core = race(reinvent, n_cars=4)
    core.reset_cars(np.arange(4))
    arcs = start_arcs(reinvent, core.poses())
    np.testing.assert_allclose(arcs, reinvent.length * np.arange(4) / 4, atol=1e-6)


def test_direction_alternates_between_episodes_when_enabled(reinvent):
    core = race(reinvent, start=StartRules(alternate_direction=True))
    directions, errors = [], []
    for _ in range(4):
        core.reset_cars([0])
        directions.append(bool(core.judge.reverse[0]))
        heading = core.judge.direction_track(0).heading(core.poses()[:, :2])[0]
        errors.append(abs((math.degrees(core.poses()[0, 2]) - heading + 180) % 360 - 180))
    assert directions == [False, True, False, True]
    assert max(errors) < 1.0  # every start faces along its driving direction


# ---- dynamics and the URDF --------------------------------------------------------------------


def steady_turn(car: CarSpec, speed: float, grip: float = 1.0, seconds: float = 3.0) -> tuple[float, float]:
    """Radius (m) and lateral acceleration (m/s^2) of a full-left steady turn at `speed`."""
    sim = Simulator("reinvent_base", car=car, image_size=None, dynamics=Dynamics(grip=grip))
    sim.place_car(0, start_pose(sim.track, StartRules(), 0)[0])
    for _ in range(int(seconds * sim.control_hz)):  # no race: nothing stops the physics
        sim.step([math.degrees(car.max_steer)], [speed])
    v, yaw_rate = float(sim.state.speed[0]), float(sim.state.yaw_rate[0])
    return v / yaw_rate, v * yaw_rate


def test_slow_turning_circle_is_the_bicycle_model(car):
    radius, _ = steady_turn(car, 0.5)
    assert radius == pytest.approx(car.wheelbase / math.tan(car.max_steer), rel=1e-3)


@pytest.mark.parametrize("grip", [1.0, 0.3])
def test_lateral_acceleration_stays_within_the_grip_limit(car, grip):
    radius, lateral = steady_turn(car, 4.0, grip=grip)
    assert lateral <= grip * GRAVITY * (1 + 1e-9)
    assert lateral == pytest.approx(grip * GRAVITY, rel=1e-3)  # at 4 m/s the tyres are the limit
    assert radius > car.wheelbase / math.tan(car.max_steer)  # so the car understeers


def edited_urdf(tmp_path: Path, edit) -> Path:
    """A temp copy of the shipped URDF after `edit(root)`."""
    tree = ET.parse(default_urdf_path())
    edit(tree.getroot())
    path = tmp_path / "car.urdf"
    tree.write(path, xml_declaration=True, encoding="utf-8")
    return path


def set_origin(root: ET.Element, joint: str, xyz=None, rpy=None, dx: float = 0.0) -> None:
    origin = root.find(f"joint[@name='{joint}']/origin")
    if dx:
        x, y, z = (float(v) for v in origin.get("xyz").split())
        origin.set("xyz", f"{x + dx} {y} {z}")
    if rpy is not None:
        origin.set("rpy", rpy)


def test_longer_wheelbase_in_the_urdf_widens_the_turning_circle(tmp_path, car):
    def edit(root):
        for joint in ("left_steering_hinge_joint", "right_steering_hinge_joint"):
            set_origin(root, joint, dx=0.05)

    longer = CarSpec.from_urdf(edited_urdf(tmp_path, edit))
    assert longer.wheelbase == pytest.approx(car.wheelbase + 0.05)
    radius, _ = steady_turn(longer, 0.5)
    assert radius == pytest.approx(longer.wheelbase / math.tan(longer.max_steer), rel=1e-3)
    assert radius > steady_turn(car, 0.5)[0] + 0.05
    judge = race("reinvent_base", car=longer).judge
    assert judge.wheel_points[0, 0] == pytest.approx(longer.wheelbase)  # wheel contact points follow


def test_camera_pitch_in_the_urdf_changes_the_frame(tmp_path, car, reinvent):
    def edit(root):
        set_origin(root, "camera_joint", rpy="0 0.4 0")

    pitched = CarSpec.from_urdf(edited_urdf(tmp_path, edit))
    assert pitched.camera.pitch == pytest.approx(0.4)
    frames = {}
    for name, spec in (("shipped", car), ("pitched", pitched)):
        sim = Simulator(reinvent, car=spec, seed=0)
        sim.place_car(0, pose_on_track(reinvent, 0.0))
        frames[name] = sim.render()[0]
        horizon = sim.renderer.horizon_row()
        fx, fy, cx, cy = spec.camera.intrinsics(160, 120)
        assert horizon == pytest.approx(cy - fy * math.tan(spec.camera.pitch), abs=1e-6)
    assert not np.array_equal(frames["shipped"], frames["pitched"])
    # Looking further down shows less sky/wall: the bright rows above the horizon shrink.
    sky_rows = {k: int((f.mean(axis=1) > 120).sum()) for k, f in frames.items()}
    assert sky_rows["pitched"] < sky_rows["shipped"]


def test_control_rate_comes_from_the_urdf_camera(tmp_path):
    def edit(root):
        root.find("gazebo[@reference='camera_link']/sensor/update_rate").text = "30"

    sim = Simulator("reinvent_base", car=CarSpec.from_urdf(edited_urdf(tmp_path, edit)), image_size=None)
    assert sim.control_hz == 30.0 and sim.dt == pytest.approx(1 / 30)


# ---- params: the batched judge equals reward.build_params -------------------------------------


@pytest.mark.parametrize("name", ["reinvent_base", "2022_summit_speedway", "Bowtie_track", "Straight_track"])
def test_judge_params_equal_build_params_for_random_poses(name, car):
    track = Track.load(name)
    rng = np.random.default_rng(3)
    n = 40
    points, headings = track.point_at(rng.uniform(0, track.length, n))
    poses = np.column_stack([points + rng.normal(0, 0.4, (n, 2)), headings + rng.normal(0, 1.0, n)])
    poses[:3, :2] = track.waypoints[:3]  # exactly on waypoints: ties between segments
    judge = EpisodeJudge(track, car.wheel_contact_points(), n, car.control_hz)
    for i in range(n):
        judge.start(i, poses[i], reverse=track.closed and i % 2 == 1)
    steer, speed = rng.uniform(-30, 30, n), rng.uniform(0.1, 4, n)
    for _ in range(2):
        result = judge.update(poses, steer, speed)
    for i in range(n):
        expected = build_params(
            judge.direction_track(i),
            x=poses[i, 0],
            y=poses[i, 1],
            yaw=poses[i, 2],
            speed=float(speed[i]),
            steering_angle=float(steer[i]),
            steps=int(judge.steps[i]),
            progress=float(result.progress[i]),
            all_wheels_on_track=bool(result.wheels_on_track[i].all()),
            is_offtrack=not result.wheels_on_track[i].any(),
            is_reversed=bool(judge.reverse[i]),
            sim_time=float(judge.steps[i] * judge.dt),
        )
        got = result.params[i]
        assert got == expected
        assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}


def test_build_params_batch_equals_build_params_in_both_directions(reinvent):
    rng = np.random.default_rng(5)
    for direction in (reinvent, reinvent.reversed()):
        m = 25
        xy = rng.uniform(reinvent.outer.min(axis=0), reinvent.outer.max(axis=0), (m, 2))
        args = dict(
            yaw=rng.uniform(-7, 7, m),
            speed=rng.uniform(0.1, 4, m),
            steering_angle=rng.uniform(-30, 30, m),
            steps=rng.integers(1, 500, m),
            progress=rng.uniform(0, 100, m),
            all_wheels_on_track=rng.random(m) < 0.5,
            is_offtrack=rng.random(m) < 0.5,
            sim_time=rng.uniform(0, 60, m),
        )
        reversed_ = direction is not reinvent
        batch = build_params_batch(direction, x=xy[:, 0], y=xy[:, 1], is_reversed=reversed_, **args)
        for i, got in enumerate(batch):
            one = {k: v[i].item() for k, v in args.items()}
            assert got == build_params(direction, x=xy[i, 0], y=xy[i, 1], is_reversed=reversed_, **one)
        assert batch[0]["closest_waypoints"] is not batch[1]["closest_waypoints"]  # no shared lists
