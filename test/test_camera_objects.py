"""Camera renderer with boxes standing on the track: placement, occlusion, clipping, batches.

Expected image positions come from an independent pinhole projection of the box corners
(CameraSpec pose and intrinsics), not from the renderer's code.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import cv2
import numpy as np
import pytest

from deepracer_rl.camera import (
    END_SHADE,
    SIDE_SHADE,
    STANDARD_RANDOMIZATION,
    TOP_SHADE,
    Box,
    CameraRenderer,
    CarBoxes,
    DomainRandomization,
    car_box,
)
from deepracer_rl.car import CarSpec, default_urdf_path
from deepracer_rl.track import Track

W, H = 160, 120


@pytest.fixture(scope="module")
def car():
    return CarSpec.from_urdf()


@pytest.fixture(scope="module")
def camera(car):
    return car.camera


@pytest.fixture(scope="module")
def reinvent():
    return Track.load("reinvent_base")


def pose_at(track: Track, arc: float, offset: float = 0.0) -> np.ndarray:
    """(3,) pose on the centre line at `arc` metres (`offset` metres to its left), facing along it."""
    point, heading = track.point_at(np.array([arc]))
    normal = np.array([-math.sin(heading[0]), math.cos(heading[0])])
    return np.array([*(point[0] + offset * normal), heading[0]])


def camera_point(camera, pose, forward: float, left: float = 0.0) -> np.ndarray:
    """World x, y of a point `forward`, `left` metres from the camera's optical centre (ground)."""
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    f, lft = camera.x + forward, camera.y + left
    return np.array([x + c * f - s * lft, y + s * f + c * lft])


def box_corners(box: Box) -> np.ndarray:
    """(8, 3) world corners of a box: its footprint rectangle on the ground and at its height."""
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    footprint = [
        (box.x + c * a - s * b, box.y + s * a + c * b)
        for a in (-box.length / 2, box.length / 2)
        for b in (-box.width / 2, box.width / 2)
    ]
    return np.array([(x, y, z) for z in (0.0, box.height) for x, y in footprint])


# Faces of box_corners: corner indices, shade (front/back ends, right/left sides, top).
FACES = {
    "front": ([2, 3, 7, 6], END_SHADE),
    "back": ([0, 1, 5, 4], END_SHADE),
    "right": ([0, 2, 6, 4], SIDE_SHADE),
    "left": ([1, 3, 7, 5], SIDE_SHADE),
    "top": ([4, 5, 7, 6], TOP_SHADE),
}


def faces_seen(box: Box, eye: np.ndarray) -> list[str]:
    """Names of the faces whose outer side holds the eye (world x, y, z)."""
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    dx, dy = eye[0] - box.x, eye[1] - box.y
    along, across = c * dx + s * dy, c * dy - s * dx
    seen = {
        "front": along > box.length / 2,
        "back": along < -box.length / 2,
        "right": across < -box.width / 2,
        "left": across > box.width / 2,
        "top": eye[2] > box.height,
    }
    return [name for name, yes in seen.items() if yes]


def project(camera, pose, points: np.ndarray, width: int = W, height: int = H) -> np.ndarray:
    """Pinhole projection of world points (M, 3) to continuous image (u, v), pixel i = [i, i + 1)."""
    fx, fy, cx, cy = camera.intrinsics(width, height)
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    rel = points[:, :2] - [x, y]
    forward = c * rel[:, 0] + s * rel[:, 1] - camera.x
    left = -s * rel[:, 0] + c * rel[:, 1] - camera.y
    up = points[:, 2] - camera.z
    p = camera.pitch
    depth = math.cos(p) * forward - math.sin(p) * up
    down = -math.sin(p) * forward - math.cos(p) * up
    assert np.all(depth > camera.near), "the test expects every corner in front of the camera"
    return np.stack([cx - fx * left / depth, cy + fy * down / depth], axis=1)


def inside_distance(uv: np.ndarray, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """(H, W) signed distance (px) of pixel centres inside the convex hull of uv (< 0 outside).

    Outside the hull it is the largest violation of an edge line, at most the true distance.
    """
    hull = cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    a, b = hull, np.roll(hull, -1, axis=0)
    edge = b - a
    area = np.sum(a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1])
    vs, us = np.mgrid[: shape[0], : shape[1]] + 0.5
    cross = edge[:, 0, None, None] * (vs - a[:, 1, None, None]) - edge[:, 1, None, None] * (us - a[:, 0, None, None])
    signed = np.sign(area) * cross / np.linalg.norm(edge, axis=1)[:, None, None]
    return signed.min(axis=0)


def changed(frame: np.ndarray, plain: np.ndarray) -> np.ndarray:
    """(H, W) True where a pixel differs (any channel)."""
    diff = frame != plain
    return diff.any(axis=-1) if diff.ndim == 3 else diff


# ---- no objects ---------------------------------------------------------------------------


@pytest.mark.parametrize("grayscale", [True, False])
def test_no_objects_render_byte_identical(camera, reinvent, grayscale):
    poses = np.stack([pose_at(reinvent, a, o) for a, o in ((0.0, 0.0), (5.0, 0.2), (11.0, -0.1))])
    renderer = CameraRenderer(reinvent, camera, W, H, grayscale)
    plain = renderer.render(poses)
    np.testing.assert_array_equal(renderer.render(poses, objects=None), plain)
    np.testing.assert_array_equal(renderer.render(poses, objects=[]), plain)
    np.testing.assert_array_equal(renderer.render(poses, objects=()), plain)
    # With per-frame randomisation the random streams advance the same with or without [].
    a = CameraRenderer(reinvent, camera, W, H, grayscale, STANDARD_RANDOMIZATION, seed=5)
    b = CameraRenderer(reinvent, camera, W, H, grayscale, STANDARD_RANDOMIZATION, seed=5)
    for _ in range(2):
        np.testing.assert_array_equal(a.render(poses), b.render(poses, objects=[]))


# ---- where a box appears ------------------------------------------------------------------


def test_box_ahead_covers_exactly_its_projected_corners(camera, reinvent):
    pose = pose_at(reinvent, 0.0)
    ahead = pose_at(reinvent, 1.0)
    box = Box(ahead[0], ahead[1], ahead[2] + 0.4, length=0.15, width=0.25, height=0.12, colour=(255, 0, 255))
    renderer = CameraRenderer(reinvent, camera, W, H, grayscale=False)
    plain = renderer.render(pose[None])[0]
    frame = renderer.render(pose[None], objects=[box])[0]
    uv = project(camera, pose, box_corners(box))
    hit = changed(frame, plain)
    rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
    got = np.array([cols[0], cols[-1] + 1, rows[0], rows[-1] + 1], dtype=float)  # continuous edges
    expected = np.array([uv[:, 0].min(), uv[:, 0].max(), uv[:, 1].min(), uv[:, 1].max()])
    assert expected[1] - expected[0] > 15 and expected[3] - expected[2] > 8, expected  # a sizeable box
    np.testing.assert_allclose(got, expected, atol=1.25)  # cv2 fills edge pixels up to ~1 px out
    inside = inside_distance(uv)
    assert hit[inside > 1.0].all()  # every pixel well inside the silhouette is the box
    assert not hit[inside < -1.0].any()  # nothing well outside changes
    # Box pixels carry its magenta (faces shaded, never brighter than the colour itself).
    r, g, b = (frame[inside > 1.0][:, k].astype(int) for k in range(3))
    assert np.all(g == 0) and np.all(r == b) and r.min() > 100
    # Each face seen from the camera (the others culled) carries its shade of the colour.
    eye = np.array([*camera_point(camera, pose, 0.0), camera.z])
    checked = 0
    for name in faces_seen(box, eye):
        corners, shade = FACES[name]
        face = inside_distance(uv[corners]) > 1.0
        checked += face.sum() > 0
        assert np.all(frame[face] == [round(255 * shade), 0, round(255 * shade)]), name
    assert checked >= 2


def test_gray_box_colour_is_converted_like_the_texture(camera, reinvent):
    pose = pose_at(reinvent, 0.0)
    ahead = pose_at(reinvent, 1.2, 0.1)
    box = Box(ahead[0], ahead[1], ahead[2] - 0.5, 0.3, 0.2, 0.2, colour=(30, 200, 90))
    rgb = CameraRenderer(reinvent, camera, W, H, grayscale=False).render(pose[None], objects=[box])[0]
    gray = CameraRenderer(reinvent, camera, W, H, grayscale=True).render(pose[None], objects=[box])[0]
    inside = inside_distance(project(camera, pose, box_corners(box))) > 1.0
    assert inside.sum() > 100
    np.testing.assert_array_equal(gray[inside], cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[inside])


@pytest.mark.parametrize("seed", [1, 2])
def test_boxes_follow_each_cars_camera_height_and_pitch(camera, reinvent, seed):
    width, height = 640, 480
    rand = DomainRandomization(camera_height=0.03, camera_pitch=0.05)
    renderer = CameraRenderer(reinvent, camera, width, height, False, rand, seed=seed)
    pose = pose_at(reinvent, 0.0)
    ahead = pose_at(reinvent, 1.0, -0.1)
    box = Box(ahead[0], ahead[1], ahead[2] + 0.3, 0.2, 0.3, 0.1, colour=(255, 0, 255))
    poses = np.stack([pose, pose])  # two cars, each with its own camera jitter
    plain = renderer.render(poses)
    frames = renderer.render(poses, objects=[box])
    fx, fy, cx, cy = camera.intrinsics(width, height)
    shifts = []
    for i in range(2):
        # The car's camera: pitch from its horizon row, height from the ground image it renders.
        pitch = math.atan((cy - renderer.horizon_row(i)) / fy)
        heights = camera.z + np.arange(-0.03, 0.0301, 0.0005)
        errors = [
            np.abs(
                CameraRenderer(reinvent, dataclasses.replace(camera, z=z, pitch=pitch), 160, 120, False).render(
                    pose[None]
                )[0]
                - cv2.resize(plain[i], (160, 120), interpolation=cv2.INTER_AREA).astype(int)
            ).mean()
            for z in heights
        ]
        jittered = dataclasses.replace(camera, z=float(heights[int(np.argmin(errors))]), pitch=pitch)
        hit = changed(frames[i], plain[i])
        rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
        got = np.array([cols[0], cols[-1] + 1, rows[0], rows[-1] + 1], dtype=float)
        edges = []
        for cam in (jittered, camera):
            uv = project(cam, pose, box_corners(box), width, height)
            edges.append(np.array([uv[:, 0].min(), uv[:, 0].max(), uv[:, 1].min(), uv[:, 1].max()]))
        np.testing.assert_allclose(got, edges[0], atol=1.5)
        shifts.append(np.abs(edges[1] - edges[0]).max())
    assert max(shifts) > 5  # the jitter moves the box by pixels: the check above can fail


def test_box_colours_get_the_episode_colour_gains(camera, reinvent):
    pose = pose_at(reinvent, 0.0)
    ahead = pose_at(reinvent, 1.0)
    box = Box(ahead[0], ahead[1], ahead[2] + 0.4, 0.2, 0.3, 0.12, colour=(128, 128, 128))
    plain = CameraRenderer(reinvent, camera, W, H, grayscale=False).render(pose[None], objects=[box])[0]
    rand = CameraRenderer(reinvent, camera, W, H, False, DomainRandomization(color=0.1), seed=3)
    tinted = rand.render(pose[None], objects=[box])[0]
    inside = inside_distance(project(camera, pose, box_corners(box)))
    road = (inside < -2) & (plain.mean(axis=-1) < 60)
    assert road.sum() > 1000
    box_gain = tinted[inside > 1].mean(axis=0) / plain[inside > 1].mean(axis=0)
    road_gain = tinted[road].mean(axis=0) / plain[road].mean(axis=0)
    assert np.abs(road_gain - 1).max() > 0.03  # this seed tints the scene
    np.testing.assert_allclose(box_gain, road_gain, atol=0.02)  # and the box like the ground


# ---- occlusion ----------------------------------------------------------------------------


def test_nearer_box_occludes_farther_box(camera, reinvent):
    pose = pose_at(reinvent, 0.0)
    p_near, p_far = pose_at(reinvent, 1.0), pose_at(reinvent, 1.8, 0.05)
    near = Box(p_near[0], p_near[1], p_near[2] + 0.2, 0.2, 0.2, 0.12, colour=(255, 0, 0))
    far = Box(p_far[0], p_far[1], p_far[2], 0.3, 0.5, 0.3, colour=(0, 0, 255))
    renderer = CameraRenderer(reinvent, camera, W, H, grayscale=False)
    frame = renderer.render(pose[None], objects=[near, far])[0]
    np.testing.assert_array_equal(frame, renderer.render(pose[None], objects=[far, near])[0])  # list order
    d_near = inside_distance(project(camera, pose, box_corners(near)))
    in_far = inside_distance(project(camera, pose, box_corners(far))) > 1.0
    overlap = (d_near > 1.0) & in_far
    assert overlap.sum() >= 20, "the test needs the boxes to overlap in the image"
    red, blue = frame[..., 0].astype(int), frame[..., 2].astype(int)
    assert np.all(red[overlap] > 100) and np.all(blue[overlap] == 0)  # the near box wins
    far_only = in_far & (d_near < -1.0)
    assert far_only.sum() >= 20 and np.all(blue[far_only] > 100) and np.all(red[far_only] == 0)


def test_box_occludes_the_background_above_the_horizon(camera, reinvent):
    pose = pose_at(reinvent, 0.0)
    ahead = pose_at(reinvent, 1.5)
    tall = Box(ahead[0], ahead[1], ahead[2], 0.2, 0.3, 0.6, colour=(0, 0, 0))
    renderer = CameraRenderer(reinvent, camera, W, H, grayscale=True)
    frame = renderer.render(pose[None], objects=[tall])[0]
    horizon = renderer.horizon_row()
    inside = inside_distance(project(camera, pose, box_corners(tall))) > 1.0
    above = inside & (np.arange(H)[:, None] < horizon - 1)
    assert above.sum() > 20 and np.all(frame[above] == 0)  # black faces over the wall and sky


# ---- clipping -----------------------------------------------------------------------------


def test_box_behind_the_camera_changes_nothing(camera, reinvent):
    pose = pose_at(reinvent, 3.0)
    renderer = CameraRenderer(reinvent, camera, W, H, grayscale=False)
    plain = renderer.render(pose[None])
    for forward, left in ((-0.5, 0.0), (-1.0, 0.4), (-0.2, -0.3)):
        x, y = camera_point(camera, pose, forward, left)
        box = Box(x, y, pose[2] + 0.3, 0.3, 0.3, 0.5)
        np.testing.assert_array_equal(renderer.render(pose[None], objects=[box]), plain)


def test_box_straddling_the_camera_plane_is_clipped(camera, reinvent):
    pose = pose_at(reinvent, 0.0)
    renderer = CameraRenderer(reinvent, camera, W, H, grayscale=False)
    plain = renderer.render(pose[None])[0]
    # A wall 0.3 m to the left, from 0.6 m behind the camera to 0.6 m ahead of it ...
    x, y = camera_point(camera, pose, 0.0, 0.3)
    wall = Box(x, y, pose[2], 1.2, 0.1, 0.3, colour=(0, 255, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero, no NaN or overflow in the projection
        frame = renderer.render(pose[None], objects=[wall])[0]
    hit = changed(frame, plain)
    assert hit.sum() > 50 and hit[:, 0].any()  # seen at the left edge of the image
    assert not hit[:, W // 2 :].any()  # and only on the left
    # ... looks like the part of it in front of the camera (all of what is in view).
    x, y = camera_point(camera, pose, 0.35, 0.3)
    front = Box(x, y, pose[2], 0.5, 0.1, 0.3, colour=(0, 255, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected = renderer.render(pose[None], objects=[front])[0]
    assert changed(frame, expected).sum() <= 3


def test_boxes_all_around_the_camera_render_without_errors(camera, reinvent):
    pose = pose_at(reinvent, 7.0, 0.1)
    renderer = CameraRenderer(reinvent, camera, W, H, grayscale=True)
    rng = np.random.default_rng(0)
    boxes = []
    for _ in range(200):
        x, y = camera_point(camera, pose, rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8))
        size = rng.uniform(0.02, 0.8, 3)
        boxes.append(Box(x, y, rng.uniform(-math.pi, math.pi), *size))
    plain = renderer.render(pose[None])
    drawn = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for box in boxes:
            frame = renderer.render(pose[None], objects=[box])
            assert frame.shape == plain.shape and frame.dtype == np.uint8
            drawn += np.any(frame != plain)
        together = renderer.render(pose[None], objects=boxes)
    assert together.shape == plain.shape
    assert 20 < drawn < len(boxes)  # many are seen, the ones behind (or holding the camera) are not


def test_a_box_holding_the_camera_is_not_drawn(camera, reinvent):
    pose = pose_at(reinvent, 2.0)
    renderer = CameraRenderer(reinvent, camera, W, H, grayscale=True)
    plain = renderer.render(pose[None])
    own = car_box(pose)
    # Low and reaching 1 m ahead: the camera looks down on its top, which would fill the view.
    low = dataclasses.replace(own, length=2.0, height=0.05)
    for box in (own, low):
        np.testing.assert_array_equal(renderer.render(pose[None], objects=[box]), plain)
    x, y = camera_point(camera, pose, 1.2)
    ahead = dataclasses.replace(low, x=x, y=y)  # the same box just ahead of the camera is drawn
    assert np.any(renderer.render(pose[None], objects=[ahead]) != plain)


# ---- car-sized boxes and batches ----------------------------------------------------------


def test_car_box_has_the_urdf_dimensions(car):
    box = car_box((1.0, 2.0, 0.5), colour=(10, 20, 30))
    assert (box.length, box.width, box.height) == (car.length, car.width, car.camera.z)
    assert box.yaw == 0.5 and box.colour == (10, 20, 30)
    half = car.wheelbase / 2  # the body sits around the middle of the wheelbase
    assert (box.x, box.y) == pytest.approx((1.0 + half * math.cos(0.5), 2.0 + half * math.sin(0.5)))
    bigger = car_box((0.0, 0.0, 0.0), car=dataclasses.replace(car, length=0.5, width=0.3))
    assert (bigger.length, bigger.width) == (0.5, 0.3)


def test_car_box_follows_an_edited_urdf(car, tmp_path):
    text = default_urdf_path().read_text()
    chassis = '<box size="0.344 0.150 0.053"/>'
    assert chassis in text, "the test edits the chassis box of the URDF"
    path = tmp_path / "long.urdf"
    path.write_text(text.replace(chassis, '<box size="0.444 0.150 0.053"/>'))
    long_car = CarSpec.from_urdf(path)
    box = car_box((0.0, 0.0, 0.0), car=long_car)
    assert box.length == pytest.approx(car.length + 0.1) and box.width == pytest.approx(car.width)


def test_box_rejects_bad_values():
    with pytest.raises(ValueError):
        Box(0.0, 0.0, length=0.0)
    with pytest.raises(ValueError):
        Box(0.0, 0.0, height=float("nan"))
    with pytest.raises(ValueError):
        Box(0.0, 0.0, colour=(0, 0, 256))


def test_a_batch_of_randomised_cars_sees_each_other(camera, reinvent):
    # A column of cars on the centre line and one beside the middle one; every car gets the
    # same list of all car boxes, and its own box (the one holding its camera) is skipped.
    poses = np.stack([pose_at(reinvent, a, o) for a, o in ((0.0, 0.0), (0.7, 0.0), (1.4, 0.0), (0.7, 0.35))])
    colours = [(220, 40, 40), (40, 110, 230), (250, 160, 20), (170, 60, 200)]
    boxes = [car_box(p, c) for p, c in zip(poses, colours)]
    indices = [3, 0, 2, 1]

    def frames(objects, grayscale=True):
        renderer = CameraRenderer(reinvent, camera, W, H, grayscale, STANDARD_RANDOMIZATION, seed=11)
        out = [renderer.render(poses, indices, objects)]
        renderer.new_episode(2)
        out.append(renderer.render(poses, indices, objects))
        return np.stack(out)

    with_cars, without = frames(boxes), frames(None)
    assert with_cars.shape == (2, 4, H, W) and with_cars.dtype == np.uint8
    np.testing.assert_array_equal(with_cars, frames(boxes))  # seeded: deterministic
    differs = np.any(with_cars != without, axis=(2, 3))  # (frame, car)
    assert differs[:, [0, 1]].all()  # the cars behind see the ones ahead
    assert not differs[:, 2].any()  # the leader sees none, and not its own box either
    rgb = frames(boxes, grayscale=False)
    assert rgb.shape == (2, 4, H, W, 3)
    # The camera-height jitter of the randomisation still puts other cars where they belong.
    assert np.any(rgb != frames(None, grayscale=False))


# ---- each car its own boxes -----------------------------------------------------------------


@pytest.mark.parametrize("grayscale", [True, False])
def test_boxes_per_car_equal_each_car_drawn_alone(camera, reinvent, grayscale):
    # Cars in worlds of their own: car i sees only its list; the batch equals one call per car.
    poses = np.stack([pose_at(reinvent, a) for a in (0.0, 3.0, 6.0)])
    own = [
        [Box(*camera_point(camera, poses[0], 1.0), length=0.4, width=0.3, height=0.25)],
        [],
        [
            Box(*camera_point(camera, poses[2], 0.9, 0.2), colour=(30, 200, 90)),
            Box(*camera_point(camera, poses[2], 1.6, -0.2), length=0.3),
        ],
    ]
    renderer = CameraRenderer(reinvent, camera, W, H, grayscale=grayscale)
    batch = renderer.render(poses, objects=own)
    for i in range(3):
        alone = renderer.render(poses[i : i + 1], [i], objects=own[i] or None)
        np.testing.assert_array_equal(batch[i], alone[0])
    plain = renderer.render(poses)
    assert np.any(batch[0] != plain[0]) and np.any(batch[2] != plain[2])
    np.testing.assert_array_equal(batch[1], plain[1])
    # The same as arrays, and a car's boxes picked by row.
    arrays = CarBoxes.from_lists(own)
    np.testing.assert_array_equal(renderer.render(poses, objects=arrays), batch)
    np.testing.assert_array_equal(renderer.render(poses[[2, 0]], [2, 0], objects=arrays.take([2, 0])), batch[[2, 0]])
    # No box anywhere costs nothing and draws nothing.
    np.testing.assert_array_equal(renderer.render(poses, objects=[[], [], []]), plain)
    with pytest.raises(ValueError, match="3 poses but box lists of 2 cars"):
        renderer.render(poses, objects=own[:2])
