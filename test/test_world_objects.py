"""Obstacles and bot cars of DeepRacer's races: world config, placement, lanes, collisions, params.

Expected values come from DeepRacer's rules (simapp) worked by hand on simple geometry: a
straight open road and a square loop, not from the module's own helpers.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from deepracer_rl.car import CarSpec
from deepracer_rl.track import Track
from deepracer_rl.world_objects import (
    BOT_CAR,
    BOX_FOOTPRINT,
    CAR_FOOTPRINT,
    OBSTACLE,
    OBSTACLE_Z,
    SLALOM_GAP,
    ObjectState,
    ObjectWorld,
    PlacementError,
    RaceObjects,
    WorldConfigError,
    collisions,
    crash_reset_pose,
    objects_left_of_center,
    objects_params,
    rectangles_overlap,
)


@pytest.fixture(scope="module")
def car():
    return CarSpec.from_urdf()


def straight(length: float = 20.0, width: float = 1.0) -> Track:
    """An open road along +x from 0 to `length`, inner border on the left (y > 0)."""
    x = np.linspace(0.0, length, int(length) + 1)
    h = width / 2
    return Track.from_array(np.column_stack([x, 0 * x, x, 0 * x + h, x, 0 * x - h]), name="straight")


def square(side: float = 10.0, width: float = 1.0) -> Track:
    """A counter-clockwise square loop round the origin (inner border inside)."""
    h = side / 2
    corners = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    rows = []
    for a, b in zip(corners, np.roll(corners, -1, axis=0)):
        for t in np.linspace(0, 1, 11)[:-1]:
            p = a + t * (b - a)
            rows.append(p)
    centre = np.array(rows)
    scale_in = (h - width / 2) / h
    scale_out = (h + width / 2) / h

    def scaled(k):  # the square's borders: the same square, scaled about the origin
        return centre * k

    data = np.hstack([centre, scaled(scale_in), scaled(scale_out)])
    return Track.from_array(np.vstack([data, data[:1]]), name="square")


def state(poses, kinds, speeds=None) -> ObjectState:
    poses = np.asarray(poses, dtype=float).reshape(1, -1, 3)
    k = poses.shape[1]
    foot = np.array([BOX_FOOTPRINT if kd == OBSTACLE else CAR_FOOTPRINT for kd in kinds])
    size = np.array([(0.4, 0.3, 0.25) if kd == OBSTACLE else (*CAR_FOOTPRINT, 0.13) for kd in kinds])
    z = np.array([OBSTACLE_Z if kd == OBSTACLE else 0.0 for kd in kinds])
    return ObjectState(
        poses, np.zeros((1, k)) if speeds is None else np.asarray(speeds)[None], tuple(kinds), foot, size, z
    )


def base_link_for_centre(x, y, yaw, car):
    """The base_link pose whose DeepRacer model origin (mid-axles) is at x, y."""
    back = car.wheelbase / 2
    return np.array([[x - back * math.cos(yaw), y - back * math.sin(yaw), yaw]])


# ---- config ---------------------------------------------------------------------------------


def test_config_defaults_are_deepracers():
    cfg = RaceObjects()
    assert (cfg.number_of_obstacles, cfg.randomize_obstacle_locations, cfg.obstacle_type) == (0, False, "box_obstacle")
    assert (cfg.bot_car_speed, cfg.is_lane_change, cfg.lane_change_distance) == (0.2, False, 1.0)
    assert (cfg.lower_lane_change_time, cfg.upper_lane_change_time, cfg.min_distance_between_bot_cars) == (3, 5, 2)
    assert cfg.reset_behind_dist == 1.0
    assert cfg.penalties(evaluation=True) == (2.0, 5.0)
    assert cfg.penalties(evaluation=False) == (0.0, 0.0)


def test_config_reads_deepracer_keys_and_strings():
    cfg = RaceObjects.from_mapping(
        {
            "NUMBER_OF_OBSTACLES": "3",
            "RANDOMIZE_OBSTACLE_LOCATIONS": "true",
            "OBSTACLE_TYPE": "amazon_box_obstacle",
            "OBJECT_POSITIONS": ["0.25,1", "0.5,-1"],
            "number_of_bot_cars": 2,
            "IS_LANE_CHANGE": "False",
            "COLLISION_PENALTY": 3,
        }
    )
    assert cfg.object_positions == ((0.25, 1), (0.5, -1))
    assert cfg.obstacle_count == 2  # OBJECT_POSITIONS overrides NUMBER_OF_OBSTACLES
    assert cfg.randomize_obstacle_locations and not cfg.is_lane_change
    assert cfg.penalties(evaluation=True) == (2.0, 3.0)
    assert RaceObjects.from_mapping(cfg.to_mapping()) == cfg


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"NUMBER_OF_OBSTACLES": -1}, "NUMBER_OF_OBSTACLES"),
        ({"NUMBER_OF_OBSTACLES": 2.5}, "NUMBER_OF_OBSTACLES"),
        ({"BOT_CAR_SPEED": 0}, "BOT_CAR_SPEED"),
        ({"IS_LANE_CHANGE": "maybe"}, "IS_LANE_CHANGE"),
        ({"OBSTACLE_TYPE": "cone"}, "OBSTACLE_TYPE"),
        ({"OBJECT_POSITIONS": ["0.5"]}, "OBJECT_POSITIONS[0]"),
        ({"OBJECT_POSITIONS": ["1.5,1"]}, "OBJECT_POSITIONS[0]"),
        ({"OBJECT_POSITIONS": ["0.5,0"]}, "OBJECT_POSITIONS[0]"),
        ({"LOWER_LANE_CHANGE_TIME": 6}, "UPPER_LANE_CHANGE_TIME"),
        ({"NUMBER_OF_OBSTACLE": 3}, "NUMBER_OF_OBSTACLE"),
    ],
)
def test_config_errors_name_the_key(mapping, key):
    with pytest.raises(WorldConfigError, match="^" + re.escape(key)):
        RaceObjects.from_mapping(mapping)


def test_config_unknown_key_suggests_and_can_be_ignored():
    with pytest.raises(WorldConfigError, match="did you mean NUMBER_OF_OBSTACLES"):
        RaceObjects.from_mapping({"NUMBER_OF_OBSTACLE": 3})
    assert RaceObjects.from_mapping({"WORLD_NAME": "x", "NUMBER_OF_OBSTACLES": 1}, strict=False).obstacle_count == 1


# ---- placement -----------------------------------------------------------------------------


def test_fixed_layout_is_evenly_spaced_in_alternating_lanes():
    track = straight(20.0)
    world = ObjectWorld(RaceObjects(number_of_obstacles=3), track, worlds=2)
    poses = world.state().poses
    # DeepRacer: linspace(2 % of 20 m, 20 m - 1 m, 3) = 0.4, 9.7, 19.0; lanes inner (+0.25), outer, inner.
    np.testing.assert_allclose(poses[0, :, 0], [0.4, 9.7, 19.0], atol=1e-9)
    np.testing.assert_allclose(poses[0, :, 1], [0.25, -0.25, 0.25], atol=1e-9)
    np.testing.assert_allclose(poses[0, :, 2], 0.0, atol=1e-9)
    np.testing.assert_array_equal(poses[0], poses[1])


def test_object_positions_place_at_fraction_and_lane():
    world = ObjectWorld(RaceObjects(object_positions=(("0.5", "-1"), (0.1, 1))), straight(20.0), worlds=1)
    np.testing.assert_allclose(world.state().poses[0, :, :2], [[10.0, -0.25], [2.0, 0.25]], atol=1e-9)


def test_random_layout_is_seeded_and_never_overlaps_or_blocks_the_start():
    track = Track.load("reinvent_base")
    cfg = RaceObjects(number_of_obstacles=6, randomize_obstacle_locations=True)
    a = ObjectWorld(cfg, track, worlds=8, seed=7).state().poses
    b = ObjectWorld(cfg, track, worlds=8, seed=7).state().poses
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], a[1])  # each world its own layout
    half = np.array(BOX_FOOTPRINT) / 2
    for layout in a:
        overlap = rectangles_overlap(layout[:, None], half, layout[None], half)
        assert overlap.sum() == len(layout)  # only each box with itself
        arcs = track.project(layout[:, :2]).arc_length
        assert np.all(np.minimum(arcs, track.length - arcs) > 1.0)
    world = ObjectWorld(cfg, track, worlds=1, seed=1)
    world.reset([0], keep_clear=[8.0])
    arcs = track.project(world.state().poses[0, :, :2]).arc_length
    assert np.all(np.abs(arcs - 8.0) > 1.0)


def test_random_layouts_leave_two_car_lengths_between_boxes_in_opposite_lanes():
    """DeepRacer's 2 % minimum would allow a box in each lane 0.32 m apart on reinvent_base's 0.76 m
    road, which no car can pass; a random layout keeps such neighbours SLALOM_GAP apart end to end."""
    track = Track.load("reinvent_base")
    cfg = RaceObjects(number_of_obstacles=3, randomize_obstacle_locations=True)
    world = ObjectWorld(cfg, track, worlds=200, seed=0)
    poses = world.state().poses
    projection = track.project(poses[..., :2].reshape(-1, 2))
    arcs = projection.arc_length.reshape(poses.shape[:2])
    left = projection.is_left.reshape(poses.shape[:2])
    closest = np.inf
    for arc, side in zip(arcs, left):
        order = np.argsort(arc)
        arc, side = arc[order], side[order]
        ends = np.append(np.diff(arc), arc[0] + track.length - arc[-1]) - BOX_FOOTPRINT[0]
        opposite = side != np.roll(side, -1)
        if opposite.any():
            closest = min(closest, float(ends[opposite].min()))
    assert SLALOM_GAP <= closest < SLALOM_GAP + 0.3  # the rule binds, and holds in 200 layouts


def test_too_many_random_obstacles_is_refused():
    with pytest.raises(PlacementError, match="fewer obstacles"):
        ObjectWorld(RaceObjects(number_of_obstacles=40, randomize_obstacle_locations=True), straight(10.0), 1, seed=0)


# ---- bot cars ------------------------------------------------------------------------------


def test_bot_cars_drive_their_lane_at_their_speed():
    track = square(10.0)
    world = ObjectWorld(RaceObjects(number_of_bot_cars=2), track, worlds=1)
    start = track.project(world.state().poses[0, :, :2]).arc_length
    np.testing.assert_allclose(start, [2.0, (track.length - 1.0)], atol=0.02)  # linspace(2 m, L - 1 m, 2)
    for _ in range(75):  # 5 s at 15 Hz
        world.step(1 / 15)
    s = world.state()
    arcs = track.project(s.poses[0, :, :2]).arc_length
    np.testing.assert_allclose((arcs - start) % track.length, [1.0, 1.0], atol=0.02)  # 0.2 m/s x 5 s
    dist = track.project(s.poses[0, :, :2]).distance
    assert dist[0] == pytest.approx(0.25)  # a lane is halfway to the border (bot 1 is at a corner)
    left = objects_left_of_center(track, s.poses[0, :, :2])
    assert left.tolist() == [True, False]  # inner, outer
    np.testing.assert_allclose(s.speeds, 0.2)


def test_bot_cars_pause():
    world = ObjectWorld(RaceObjects(number_of_bot_cars=1), straight(20.0), worlds=2)
    world.pause_bots([1], 1.0)
    for _ in range(30):
        world.step(0.1)
    x = world.state().poses[:, 0, 0]
    np.testing.assert_allclose(x - 2.0, [0.6, 0.4], atol=1e-9)


def test_lane_changes_happen_at_random_times_within_deepracers_window():
    track = square(20.0)
    cfg = RaceObjects(number_of_bot_cars=3, is_lane_change=True, min_distance_between_bot_cars=2.0)
    world = ObjectWorld(cfg, track, worlds=2, seed=3)
    dt = 1 / 15
    sides, starts = [], []
    for _ in range(15 * 30):
        world.step(dt)
        sides.append(objects_left_of_center(track, world.state().poses[:, :, :2].reshape(-1, 2)).reshape(2, 3))
        starts.append(world.bots.change_from.copy())
    sides = np.array(sides)  # (T, W, B)
    flips = [np.flatnonzero(np.diff(sides[:, w, b].astype(int))) for w in range(2) for b in range(3)]
    assert all(len(f) >= 3 for f in flips)  # 30 s, a change every 3-5 s plus 5 s to drive it
    # The first change starts 3-5 s (0.6-1.0 m at 0.2 m/s) after the bot car's start.
    first = starts[0] - world.bots.start
    assert np.all((first >= 0.6 - 0.02) & (first <= 1.0 + 0.02))
    again = ObjectWorld(cfg, track, worlds=2, seed=3)
    for _ in range(100):
        again.step(dt)
    world2 = ObjectWorld(cfg, track, worlds=2, seed=3)
    for _ in range(100):
        world2.step(dt)
    np.testing.assert_array_equal(again.state().poses, world2.state().poses)


def test_no_lane_change_by_default():
    track = square(20.0)
    world = ObjectWorld(RaceObjects(number_of_bot_cars=2), track, worlds=1)
    for _ in range(15 * 20):
        world.step(1 / 15)
        assert objects_left_of_center(track, world.state().poses[0, :, :2]).tolist() == [True, False]


# ---- collisions ----------------------------------------------------------------------------


def test_collision_when_footprints_overlap(car):
    box = state([[5.0, 0.0, 0.0]], [OBSTACLE])
    # Car footprint 0.3235 long: its centre 0.25 + 0.16 = 0.41 m before the box's centre touches.
    touching = base_link_for_centre(5.0 - 0.40, 0.0, 0.0, car)
    clear = base_link_for_centre(5.0 - 0.42, 0.0, 0.0, car)
    beside = base_link_for_centre(5.0, 0.2 + 0.098 + 0.01, 0.0, car)
    hit, index = collisions(
        np.vstack([touching, clear, beside]),
        ObjectState(np.repeat(box.poses, 3, axis=0), np.zeros((3, 1)), box.kinds, box.footprint, box.size, box.z),
        car,
    )
    assert hit.tolist() == [True, False, False]
    assert index.tolist() == [0, -1, -1]


def test_collision_rules_differ_on_a_corner_into_the_side(car):
    # The box turned 45 degrees, its corner poking into the car's side: the car's corners stay out.
    car_centre = (0.0, 0.0)
    corner_reach = math.hypot(*np.array(BOX_FOOTPRINT) / 2)
    box = state([[0.0, 0.098 + corner_reach - 0.03, math.atan2(0.4, 0.5) + math.pi / 2]], [OBSTACLE])
    pose = base_link_for_centre(*car_centre, 0.0, car)
    assert collisions(pose, box, car)[0].tolist() == [True]
    assert collisions(pose, box, car, rule="deepracer")[0].tolist() == [False]


# ---- params --------------------------------------------------------------------------------


def test_params_on_a_straight(car):
    track = straight(20.0)
    objects = state([[8.0, 0.25, 0.0], [3.0, -0.25, 0.0], [15.0, 0.1, 0.0]], [OBSTACLE] * 3)
    pose = base_link_for_centre(5.0 - 0.14, 0.0, 0.0, car)  # the front of the car at x = 5
    (p,) = objects_params(track, pose, objects, car)
    assert p["closest_objects"] == [1, 0]  # behind: the one at x = 3; ahead: x = 8
    assert p["objects_location"] == [[8.0, 0.25], [3.0, -0.25], [15.0, 0.1]]
    assert p["objects_left_of_center"] == [True, False, True]
    np.testing.assert_allclose(p["objects_distance"], [8.0, 3.0, 15.0])
    np.testing.assert_allclose(p["objects_distance_from_center"], [0.25, 0.25, 0.1])
    assert p["objects_speed"] == [0.0] * 3 and p["objects_heading"] == [0.0] * 3
    assert p["object_in_camera"] is True  # 3 m ahead, 0.25 m to the side
    assert set(p) == {
        "closest_objects",
        "objects_location",
        "objects_left_of_center",
        "objects_speed",
        "objects_heading",
        "objects_distance",
        "objects_distance_from_center",
        "object_in_camera",
    }


def test_closest_objects_wrap_and_camera_misses_what_is_behind(car):
    track = straight(20.0)
    objects = state([[8.0, 0.25, 0.0], [3.0, -0.25, 0.0]], [OBSTACLE] * 2)
    pose = base_link_for_centre(10.0 - 0.14, 0.0, math.pi, car)  # past both, facing back
    (p,) = objects_params(track, pose, objects, car)
    assert p["closest_objects"] == [0, 1]  # behind: x = 8; ahead wraps to the first, x = 3
    assert p["object_in_camera"] is True  # the car faces backwards: x = 3 is in front of it
    forward = base_link_for_centre(10.0 - 0.14, 0.0, 0.0, car)
    assert objects_params(track, forward, objects, car)[0]["object_in_camera"] is False


def test_camera_range_and_side(car):
    track = straight(20.0)
    pose = base_link_for_centre(2.0 - 0.14, 0.0, 0.0, car)
    near_below = state([[2.0, 0.0, 0.0]], [BOT_CAR])  # under the camera: nearer than the near plane
    wide = state([[4.0, 3.0, 0.0]], [BOT_CAR])  # 2 m ahead, 3 m aside: outside the 65 degrees
    ahead = state([[4.0, 0.0, 0.0]], [BOT_CAR])
    seen = [objects_params(track, pose, o, car)[0]["object_in_camera"] for o in (near_below, wide, ahead)]
    assert seen == [False, False, True]


def test_bot_car_race_reports_headings_and_speed(car):
    track = straight(20.0)
    objects = state([[8.0, 0.25, 0.1], [3.0, -0.25, -0.2]], [OBSTACLE, BOT_CAR])
    (p,) = objects_params(track, base_link_for_centre(5.0, 0.0, 0.0, car), objects, car, bot_car_speed=0.2)
    assert p["objects_heading"] == [0.1, -0.2]  # radians, as the simapp's yaw
    assert p["objects_speed"] == [0.2, 0.2]  # every object, as the simapp


def test_a_layout_measured_once_is_the_same_each_step_and_a_moved_object_is_measured_again(car):
    """objects_params keeps a standing layout's place on the track between steps; an object that
    moves (a bot car), another track or the reversed track is measured anew."""
    track = square(10.0)
    objects = state([[0.0, -4.75, 0.0], [5.0, 1.0, 1.57]], [OBSTACLE, OBSTACLE])
    pose = base_link_for_centre(-2.0, -5.0, 0.0, car)
    first, again = objects_params(track, pose, objects, car)[0], objects_params(track, pose, objects, car)[0]
    assert first == again
    objects.poses[0, 0, :2] = [2.0, -5.2]  # it moved
    (moved,) = objects_params(track, pose, objects, car)
    along = track.project(np.array([[2.0, -5.2]]))
    assert moved["objects_distance"][0] == pytest.approx(float(along.arc_length[0]))
    assert moved["objects_distance_from_center"][0] == pytest.approx(float(along.distance[0]))
    assert moved["objects_left_of_center"][0] == bool(objects_left_of_center(track, np.array([[2.0, -5.2]]))[0])
    (reversed_,) = objects_params(track.reversed(), pose, objects, car)
    assert reversed_["objects_left_of_center"][0] != moved["objects_left_of_center"][0]


def test_left_of_center_flips_on_the_reversed_track():
    track = square(10.0)
    inside = np.array([[0.0, -4.75]])  # between the centre line (y = -5) and the inner border
    assert objects_left_of_center(track, inside).tolist() == [True]
    assert objects_left_of_center(track.reversed(), inside).tolist() == [False]


def test_no_objects_no_params(car):
    empty = ObjectWorld(RaceObjects(), straight(), worlds=2)
    assert empty.params(np.zeros((2, 3)), car) == [{}, {}]
    assert collisions(np.zeros((2, 3)), empty.state(), car)[0].tolist() == [False, False]


def test_crash_reset_pose_is_behind_in_the_other_lane():
    track = straight(20.0)
    pose = crash_reset_pose(track, np.array([8.0, 0.25]), reset_behind_dist=1.0)
    np.testing.assert_allclose(pose, [7.0, -0.25, 0.0], atol=1e-9)
    pose = crash_reset_pose(track, np.array([8.0, -0.25]))
    np.testing.assert_allclose(pose, [7.0, 0.25, 0.0], atol=1e-9)
