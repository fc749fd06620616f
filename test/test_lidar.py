"""The 2D lidar: distances to a wall and a box worked out by hand, DeepRacer's observation shapes,
clipping and sectors, the seeded noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepracer_rl.car import CarSpec
from deepracer_rl.lidar import (
    MAX_RANGE,
    MIN_RANGE,
    MOUNT_X,
    Lidar,
    LidarConfig,
    LidarConfigError,
    barrier_walls,
    beam_angles,
    observation_shape,
    sector_discretize,
)
from deepracer_rl.track import Track
from deepracer_rl.world_objects import ObjectState


@pytest.fixture(scope="module")
def car():
    return CarSpec.from_urdf()


def straight() -> Track:
    x = np.linspace(0.0, 20.0, 21)
    return Track.from_array(np.column_stack([x, 0 * x, x, 0 * x + 0.5, x, 0 * x - 0.5]), name="straight")


def laser_at_origin(car) -> np.ndarray:
    """The base_link pose (facing +x) that puts the laser at the origin."""
    return np.array([[-(car.wheelbase / 2 + MOUNT_X), 0.0, 0.0]])


def one_box(x, y, length=0.4, width=0.3) -> ObjectState:
    return ObjectState(
        np.array([[[x, y, 0.0]]]),
        np.zeros((1, 1)),
        ("obstacle",),
        np.array([[0.5, 0.4]]),
        np.array([[length, width, 0.25]]),
        np.array([0.1]),
    )


def test_beams_follow_the_urdf_mount():
    angles = beam_angles()
    assert angles.shape == (64,)
    # The laser link is turned by pi: sample 0 looks 30 degrees left of ahead, sample 63 30 right.
    assert math.degrees(angles[0]) == pytest.approx(30.0, abs=0.01)
    assert math.degrees(angles[-1]) == pytest.approx(330.0, abs=0.01)
    np.testing.assert_allclose(np.diff(angles), 2 * 2.61799 / 63)


def test_distance_to_a_wall(car):
    wall = np.array([[[2.0, -50.0], [2.0, 50.0]]])  # x = 2, the laser at the origin facing +x
    lidar = Lidar(straight(), car, walls=wall, noise_sd=0.0)
    r = lidar.ranges(laser_at_origin(car))[0]
    angles = beam_angles()
    facing = np.cos(angles) > 0  # only beams pointing towards +x reach the wall
    expected = np.where(facing, 2.0 / np.cos(angles), np.inf)
    expected[expected > MAX_RANGE] = np.inf
    np.testing.assert_allclose(r, expected, rtol=1e-6)
    assert np.isinf(r[~facing]).all()


def test_distance_to_a_box_behind(car):
    # A box 1 m behind the laser (the scan's middle beams look backwards): its near face at 0.8 m.
    lidar = Lidar(straight(), car, walls=np.zeros((0, 2, 2)), noise_sd=0.0)
    r = lidar.ranges(laser_at_origin(car), one_box(-1.0, 0.0))[0]
    angles = beam_angles()
    back = np.abs(np.sin(angles)) * 0.8 / np.abs(np.cos(angles)) <= 0.15  # beams through the near face
    back &= np.cos(angles) < 0
    np.testing.assert_allclose(r[back], 0.8 / np.abs(np.cos(angles[back])), rtol=1e-6)
    assert np.isinf(r[np.cos(angles) > 0]).all()
    # max_range: the same hits within it, nothing beyond
    short = lidar.ranges(laser_at_origin(car), one_box(-1.0, 0.0), max_range=0.5)[0]
    assert np.isinf(short).all()


def test_objects_nearer_than_the_minimum_range_are_not_seen(car):
    lidar = Lidar(straight(), car, walls=np.zeros((0, 2, 2)), noise_sd=0.0)
    r = lidar.ranges(laser_at_origin(car), one_box(-0.18, 0.0, length=0.1, width=2.0))[0]
    # near face at 0.13 m (< 0.15): unseen; the far face at 0.23 m is what straight-back beams hit
    assert np.nanmin(r) >= MIN_RANGE


def test_default_walls_surround_the_road():
    track = straight()
    walls = barrier_walls(track, margin=0.5)
    ys = np.unique(np.round(walls[:, :, 1], 9))
    np.testing.assert_allclose(ys, [-1.0, 1.0])


def test_car_inside_its_walls_sees_them(car):
    track = straight()
    lidar = Lidar(track, car, noise_sd=0.0)
    r = lidar.ranges(laser_at_origin(car) + [[10.0, 0.0, 0.0]])[0]
    left = np.argmin(np.abs(np.mod(beam_angles(), 2 * math.pi) - math.pi / 2))
    assert r[left] == pytest.approx(1.0, abs=0.02)  # the wall 0.5 m beyond the border at y = 0.5


@pytest.mark.parametrize("name", ["reinvent_base", "AWS_track"])
def test_the_wall_grid_finds_every_wall_the_full_cull_finds(car, name, monkeypatch):
    """Scans of short reach look their walls up in the grid; the ranges (no noise) are exactly those
    of measuring every wall, for cars on and off the road among boxes, and off the grid too."""
    from deepracer_rl import lidar as lidar_module
    from deepracer_rl.lidar import box_edges

    track = Track.load(name)
    rng = np.random.default_rng(3)
    at = rng.integers(0, len(track.waypoints), 200)
    poses = np.column_stack([track.waypoints[at] + rng.normal(0, 0.5, (200, 2)), rng.uniform(-3.2, 3.2, 200)])
    poses[0, :2] = track.waypoints.max(axis=0) + 5.0  # beyond the grid: the full cull
    boxes = np.zeros((200, 3, 6))
    boxes[..., :2] = track.waypoints[at][:, None] + rng.normal(0, 0.6, (200, 3, 2))
    boxes[..., 2] = rng.uniform(0, 3, (200, 3))
    boxes[..., 3:] = (0.3, 0.2, 0.2)
    edges = box_edges(boxes)
    lidar = Lidar(track, car, noise_sd=0.0)
    for reach in (0.6, 1.1, 2.1):
        on_grid = lidar.ranges(poses[1:], max_range=reach, edges=edges[1:])
        off_grid = lidar.ranges(poses, max_range=reach, edges=edges)  # one car off the grid: all culled in full
        assert lidar._grids[reach].lookup(lidar.origins(poses[1:])) is not None
        with monkeypatch.context() as m:
            m.setattr(lidar_module, "GRID_MAX_REACH", -1.0)  # every scan measures every wall
            full = lidar.ranges(poses, max_range=reach, edges=edges)
        assert np.isfinite(full).mean() > 0.05
        np.testing.assert_array_equal(on_grid, full[1:])
        np.testing.assert_array_equal(off_grid, full)


def test_observations_shapes_and_clipping(car):
    lidar = Lidar(straight(), car)
    scans = np.full((3, 64), np.inf)
    scans[1] = 0.05
    scans[2] = np.linspace(0.2, 3.0, 64)
    obs = lidar.observe("LIDAR", scans)
    assert obs.shape == (3, 64) and obs.dtype == np.float32
    assert obs.min() >= 0.15 and obs.max() <= 1.0
    np.testing.assert_allclose(obs[0], 1.0)
    np.testing.assert_allclose(obs[1], 0.15)
    assert observation_shape("LIDAR") == (64,)
    assert observation_shape("SECTOR_LIDAR") == (8,)
    assert observation_shape("DISCRETIZED_SECTOR_LIDAR", LidarConfig(4, 3, 1.0)) == (12,)


def test_sector_lidar_is_one_when_something_is_within_half_a_metre(car):
    lidar = Lidar(straight(), car)
    scan = np.full((1, 64), np.inf)
    scan[0, 8:16] = 0.6  # sector 1: beyond 0.5
    scan[0, 20] = 0.3  # sector 2: within
    scan[0, 63] = 0.49  # sector 7
    np.testing.assert_array_equal(lidar.observe("SECTOR_LIDAR", scan)[0], [0, 0, 1, 0, 0, 0, 0, 1])


def test_discretized_sector_lidar_one_hot_bins():
    scan = np.full((1, 64), np.inf)
    scan[0, 0] = 0.1  # sector 0 -> bin 0 of 8 (0.25 m bins up to 2 m)
    scan[0, 9] = 0.6  # sector 1 -> bin 2
    scan[0, 20] = 1.99  # sector 2 -> bin 7
    scan[0, 30] = 2.5  # sector 3 -> beyond the clipping distance: all zero
    obs = sector_discretize(scan, 8, 8, 2.0).reshape(8, 8)
    assert obs.sum() == 3
    assert obs[0, 0] == obs[1, 2] == obs[2, 7] == 1
    assert obs[3:].sum() == 0


def test_noise_is_seeded_and_small(car):
    track = straight()
    pose = laser_at_origin(car) + [[10.0, 0.0, 0.0]]
    a = Lidar(track, car, seed=5).ranges(pose)
    b = Lidar(track, car, seed=5).ranges(pose)
    exact = Lidar(track, car, noise_sd=0.0).ranges(pose)
    np.testing.assert_array_equal(a, b)
    finite = np.isfinite(exact)
    assert np.array_equal(np.isfinite(a), finite)
    error = a[finite] - exact[finite]
    assert 0.003 < error.std() < 0.02 and np.abs(error).max() < 0.06


def test_many_cars_each_see_their_own_world(car):
    track = straight()
    lidar = Lidar(track, car, walls=np.zeros((0, 2, 2)), noise_sd=0.0)
    objects = ObjectState(
        np.array([[[-1.0, 0.0, 0.0]], [[50.0, 0.0, 0.0]]]),
        np.zeros((2, 1)),
        ("obstacle",),
        np.array([[0.5, 0.4]]),
        np.array([[0.4, 0.3, 0.25]]),
        np.array([0.1]),
    )
    r = lidar.ranges(np.vstack([laser_at_origin(car)] * 2), objects)
    assert np.isfinite(r[0]).any() and np.isinf(r[1]).all()


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"num_sectors": 6}, "num_sectors"),
        ({"num_sectors": 0}, "num_sectors"),
        ({"num_values_per_sector": 0}, "num_values_per_sector"),
        ({"clipping_dist": 20.0}, "clipping_dist"),
        ({"sectors": 8}, "sectors"),
    ],
)
def test_lidar_config_errors_name_the_key(config, key):
    with pytest.raises(LidarConfigError, match=f"lidar_config.{key}"):
        LidarConfig.from_metadata({"lidar_config": config})


def test_lidar_config_defaults():
    assert LidarConfig.from_metadata({}) == LidarConfig(8, 8, 2.0)
    assert LidarConfig.from_metadata({"lidar_config": {"num_sectors": 16}}).size == 128
