"""Camera renderer: geometry of what the car sees, randomisation, shapes and the observation path."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from deepracer_rl.camera import (
    CameraRenderer,
    DomainRandomization,
    render_topdown,
    to_observation,
    write_views,
)
from deepracer_rl.car import CarSpec
from deepracer_rl.track import Track


@pytest.fixture(scope="module")
def camera():
    return CarSpec.from_urdf().camera


@pytest.fixture(scope="module")
def straight():
    return Track.load("Straight_track")


@pytest.fixture(scope="module")
def reinvent():
    return Track.load("reinvent_base")


def along_track(track: Track, fractions, offsets=None) -> np.ndarray:
    """Poses on the centre line (or `offsets` metres to its left) facing along the track."""
    points, headings = track.point_at(track.length * np.asarray(fractions, dtype=float))
    if offsets is not None:
        normal = np.stack([-np.sin(headings), np.cos(headings)], axis=1)
        points = points + np.asarray(offsets, dtype=float)[:, None] * normal
    return np.column_stack([points, headings])


def yellow_columns(rgb: np.ndarray) -> dict[int, float]:
    """Row -> centre column (continuous, pixel i covers [i, i+1)) of the centre dash in that row.

    The dash is where yellowness (R - B) exceeds half its peak; its centre is the midpoint
    of the two sub-pixel half-height crossings. Rows without a whole dash are skipped.
    """
    yellow = rgb[..., 0].astype(float) - rgb[..., 2]
    rows = {}
    for v, profile in enumerate(yellow):
        if profile.max() < 60:
            continue
        half = (profile.max() + np.median(profile)) / 2
        above = np.flatnonzero(profile > half)
        a, b = above.min(), above.max()
        if a == 0 or b == len(profile) - 1 or b - a + 1 != len(above):
            continue
        left = a - 1 + (half - profile[a - 1]) / (profile[a] - profile[a - 1])
        right = b + (profile[b] - half) / (profile[b] - profile[b + 1])
        rows[v] = (left + right) / 2 + 0.5
    return rows


def project(camera, pose, points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pinhole projection of world ground points (M, 2) to continuous image (u, v)."""
    fx, fy, cx, cy = camera.intrinsics(width, height)
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    rel = points - [x, y]
    forward = c * rel[:, 0] + s * rel[:, 1] - camera.x
    left = -s * rel[:, 0] + c * rel[:, 1] - camera.y
    d = np.stack([forward, left, np.full(len(points), -camera.z)], axis=1)
    p = camera.pitch
    axis = np.array([math.cos(p), 0.0, -math.sin(p)])
    right = np.array([0.0, -1.0, 0.0])
    down = np.array([-math.sin(p), 0.0, -math.cos(p)])
    depth = d @ axis
    return np.stack([cx + fx * (d @ right) / depth, cy + fy * (d @ down) / depth], axis=1)


def check_centre_line_matches_projection(camera, track, pose, width=160, height=120) -> np.ndarray:
    """Centre-dash columns of a render agree with a pinhole projection of the centre line.

    Compared on the ground: the column error divided by the pixels per metre across the
    road at that row must stay within 1 mm (a tenth of a texel). Returns the columns.
    """
    rgb = CameraRenderer(track, camera, width, height, grayscale=False).render(pose[None])[0]
    seen = yellow_columns(rgb)
    rows = np.array(sorted(v for v in seen if v > 45))  # near rows: dash edges well resolved
    assert len(rows) >= 10, "the centre dashes should be visible"
    heading = float(track.point_at(0.0)[1])
    direction = np.array([math.cos(heading), math.sin(heading)])
    ahead = (pose[:2] - track.waypoints[0]) @ direction + np.linspace(0.3, 4.0, 400)
    line = track.waypoints[0] + ahead[:, None] * direction
    shifted = line + 0.01 * np.array([-math.sin(heading), math.cos(heading)])  # 1 cm to the left
    expected, expected_shifted = (
        np.interp(rows + 0.5, uv[::-1, 1], uv[::-1, 0])  # v decreases with distance
        for uv in (project(camera, pose, pts, width, height) for pts in (line, shifted))
    )
    got = np.array([seen[v] for v in rows])
    px_per_metre = np.abs(expected_shifted - expected) / 0.01
    np.testing.assert_array_less(np.abs(got - expected) / px_per_metre, 0.001)
    return got


def test_centre_line_is_at_the_image_centre_column_on_a_straight(camera, straight):
    pose = along_track(straight, [0.1])[0]
    got = check_centre_line_matches_projection(camera, straight, pose)
    assert np.abs(got - 80.0).max() <= 0.5  # the image centre of a 160 px wide image


def test_moving_left_of_centre_shifts_the_centre_line_right(camera, straight):
    pose = along_track(straight, [0.1], offsets=[0.15])[0]
    got = check_centre_line_matches_projection(camera, straight, pose)
    assert np.all(got > 80.0 + 5.0)


def test_view_facing_off_the_track_shows_no_road(camera, reinvent):
    # Just beyond the outer border of the bottom straight, facing away from the track (-y).
    x, y = reinvent.outer[0]
    assert y <= reinvent.outer[:, 1].min() + 0.02  # nothing of the track lies further toward -y
    pose = np.array([[x, y - 0.1, -math.pi / 2]])
    gray = CameraRenderer(reinvent, camera, 160, 120).render(pose)[0]
    horizon = CameraRenderer(reinvent, camera, 160, 120).horizon_row()
    below = gray[int(math.ceil(horizon)) :]
    assert below.min() > 70  # road is ~40 gray; mat and walls are much lighter
    on_road = CameraRenderer(reinvent, camera, 160, 120).render(along_track(reinvent, [0.0]))[0]
    assert (on_road < 60).mean() > 0.2  # the same test sees plenty of road when on it


@pytest.mark.parametrize("extra_pitch", [0.0, 0.12])
def test_horizon_row_matches_the_camera_pitch(camera, reinvent, extra_pitch):
    cam = dataclasses.replace(camera, pitch=camera.pitch + extra_pitch)
    fx, fy, cx, cy = cam.intrinsics(160, 120)
    expected = cy - fy * math.tan(cam.pitch)
    renderer = CameraRenderer(reinvent, cam, 160, 120)
    assert renderer.horizon_row() == pytest.approx(expected)
    x, y = reinvent.outer[0]
    gray = renderer.render(np.array([[x, y - 0.1, -math.pi / 2]]))[0].astype(int)
    jumps = np.abs(np.diff(gray[:, 20:140].mean(axis=1)))
    edge = int(np.argmax(jumps)) + 1  # continuous row between the two rows with the biggest change
    assert abs(edge - expected) <= 1.0
    assert np.ptp(gray[: int(expected) - 1], axis=1).max() <= 1  # above it: sky rows, no ground


def test_randomisation_off_gives_identical_frames(camera, reinvent):
    poses = along_track(reinvent, [0.0, 0.3, 0.6], offsets=[0.0, 0.1, -0.1])
    a = CameraRenderer(reinvent, camera, seed=1)
    b = CameraRenderer(reinvent, camera, seed=2)
    first = a.render(poses)
    a.new_episode(0)
    np.testing.assert_array_equal(first, a.render(poses))
    np.testing.assert_array_equal(first, b.render(poses))


def test_randomisation_with_a_seed_is_deterministic_and_changes_frames(camera, reinvent):
    poses = along_track(reinvent, [0.0, 0.3, 0.6], offsets=[0.0, 0.1, -0.1])
    rand = DomainRandomization(
        brightness=0.2,
        contrast=0.2,
        color=0.1,
        noise=3.0,
        blur=0.5,
        camera_height=0.01,
        camera_pitch=0.03,
        floor_texture=True,
    )

    def frames(seed):
        renderer = CameraRenderer(reinvent, camera, randomization=rand, seed=seed)
        out = [renderer.render(poses)]
        renderer.new_episode(1)
        out.append(renderer.render(poses))
        return np.stack(out)

    plain = CameraRenderer(reinvent, camera).render(poses)
    first = frames(7)
    np.testing.assert_array_equal(first, frames(7))
    assert np.abs(first[0].astype(int) - plain).mean() > 2
    assert np.any(first != frames(8))
    assert np.any(first[0] != first[1])  # per-frame jitter and the new episode change the view


def test_randomisation_rejects_bad_settings():
    with pytest.raises(ValueError):
        DomainRandomization(noise=-1.0)
    with pytest.raises(ValueError):
        DomainRandomization(blur=1.5)


def test_output_shapes_and_dtypes(camera, reinvent):
    poses = along_track(reinvent, [0.0, 0.5])
    gray = CameraRenderer(reinvent, camera, 160, 120).render(poses)
    assert gray.shape == (2, 120, 160) and gray.dtype == np.uint8
    rgb = CameraRenderer(reinvent, camera, 160, 120, grayscale=False).render(poses)
    assert rgb.shape == (2, 120, 160, 3) and rgb.dtype == np.uint8
    full = CameraRenderer(reinvent, camera, camera.width, camera.height, grayscale=False).render(poses[:1])
    assert full.shape == (1, camera.height, camera.width, 3) and full.dtype == np.uint8
    assert CameraRenderer(reinvent, camera).render(np.zeros((0, 3))).shape == (0, 120, 160)
    with pytest.raises(ValueError):
        CameraRenderer(reinvent, camera).render(np.zeros((2, 2)))


def test_observation_of_the_full_frame_matches_the_direct_render(camera, reinvent):
    poses = along_track(reinvent, [0.0, 0.2, 0.45, 0.7, 0.9], offsets=[0.0, 0.15, -0.2, 0.1, 0.0])
    poses[:, 2] += [0.0, 0.2, -0.3, 0.0, 0.4]
    full = CameraRenderer(reinvent, camera, camera.width, camera.height, grayscale=False).render(poses)
    direct = CameraRenderer(reinvent, camera, 160, 120, grayscale=True).render(poses)
    via_rgb = to_observation(full, 160, 120, grayscale=True)
    assert via_rgb.shape == direct.shape and via_rgb.dtype == np.uint8
    diff = np.abs(via_rgb.astype(int) - direct).mean(axis=(1, 2))
    assert diff.max() <= 2.0, diff
    single = to_observation(full[0], 160, 120, grayscale=True)
    np.testing.assert_array_equal(single, via_rgb[0])


def test_topdown_map_and_example_views(camera, reinvent, tmp_path):
    poses = along_track(reinvent, [0.0, 0.5])
    image = render_topdown(reinvent, poses, trail=poses[:, :2], size=400)
    assert image.dtype == np.uint8 and image.ndim == 3 and max(image.shape[:2]) == 400
    assert not np.array_equal(image, render_topdown(reinvent, size=400))  # the cars are drawn
    paths = write_views(reinvent, tmp_path, poses)
    assert [p.suffix for p in paths] == [".png"] * 5 and all(p.stat().st_size > 0 for p in paths)
