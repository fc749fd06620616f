"""Camera perturbations (`CameraPerturbation`): each one changes the rendered frame as its name says,
the defaults change nothing, a bad name or value is refused, and the same seed gives the same frames.

Frames are rendered on the real `Straight_track` by the real renderer, 1 m along it, looking down
the road (160x120 gray): the road is the dark band (< 60 gray levels) in the middle of each row.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deepracer_rl.camera import CameraPerturbation, CameraRenderer
from deepracer_rl.track import Track


@pytest.fixture(scope="module")
def straight() -> tuple[Track, np.ndarray]:
    track = Track.load("Straight_track")
    (point,), (heading,) = track.point_at(np.array([1.0]))
    return track, np.array([[point[0], point[1], heading]])


def render(straight, seed: int = 0, **changes) -> tuple[CameraRenderer, np.ndarray]:
    track, pose = straight
    renderer = CameraRenderer(track, perturbation=CameraPerturbation(**changes), seed=seed)
    return renderer, renderer.render(pose)[0]


def road(frame: np.ndarray, row: int) -> tuple[int, float]:
    """Width (pixels) and mean column of the road in an image row."""
    dark = np.flatnonzero(frame[row] < 60)
    return len(dark), float(dark.mean())


def sharpness(frame: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(frame.astype(np.float32), cv2.CV_32F)).mean())


def test_no_perturbation_changes_nothing(straight):
    track, pose = straight
    plain = CameraRenderer(track, seed=0).render(pose)[0]
    _, same = render(straight)
    np.testing.assert_array_equal(plain, same)
    assert not CameraPerturbation().enabled and CameraPerturbation().changes() == {}


@pytest.mark.parametrize("gain", [0.6, 1.5])
def test_brightness_scales_the_pixel_values(straight, gain):
    _, plain = render(straight)
    _, frame = render(straight, brightness=gain)
    expected = np.clip(np.round(plain * gain), 0, 255)
    assert np.abs(frame - expected).max() <= 1
    assert bool(frame.mean() > plain.mean()) is (gain > 1)


def test_contrast_spreads_the_values_about_mid_gray(straight):
    _, plain = render(straight)
    _, frame = render(straight, contrast=1.5)
    assert frame.astype(float).std() > 1.3 * plain.astype(float).std()
    dark, bright = plain < 100, plain > 200  # darker further below 128, brighter further above
    assert frame[dark].mean() < plain[dark].mean() and frame[bright].mean() >= plain[bright].mean()


def test_blur_softens_edges(straight):
    _, plain = render(straight)
    _, frame = render(straight, blur_px=2)
    assert sharpness(frame) < 0.5 * sharpness(plain)
    assert abs(frame.mean() - plain.mean()) < 1.0  # blurring moves no light


def test_noise_adds_gaussian_noise_of_the_given_std_seeded(straight):
    _, plain = render(straight)
    _, frame = render(straight, noise_std=8)
    difference = frame.astype(float) - plain
    assert abs(difference.std() - 8) < 1.0 and abs(difference.mean()) < 0.5
    np.testing.assert_array_equal(frame, render(straight, noise_std=8)[1])  # same seed, same frame
    assert not np.array_equal(frame, render(straight, seed=1, noise_std=8)[1])


def test_jpeg_quality_gives_the_frame_as_jpeg_decodes_it(straight):
    _, plain = render(straight)
    _, frame = render(straight, jpeg_quality=30)
    ok, data = cv2.imencode(".jpg", plain, [cv2.IMWRITE_JPEG_QUALITY, 30])
    np.testing.assert_array_equal(frame, cv2.imdecode(data, cv2.IMREAD_GRAYSCALE))
    assert 0.5 < np.abs(frame.astype(int) - plain).mean() < 5  # artefacts, not another picture


def test_pitch_down_raises_the_horizon_and_brings_the_road_nearer(straight):
    plain_renderer, plain = render(straight)
    renderer, frame = render(straight, camera_pitch_rad=0.05)
    fy = plain_renderer.camera.intrinsics(160, 120)[1]
    pitch = plain_renderer.camera.pitch
    assert renderer.horizon_row() == pytest.approx(
        plain_renderer.horizon_row() - fy * (np.tan(pitch + 0.05) - np.tan(pitch))
    )
    assert road(frame, 40)[0] > road(plain, 40)[0] + 20  # a nearer, so wider, stretch of road in that row
    _, up = render(straight, camera_pitch_rad=-0.05)
    assert road(up, 60)[0] < road(plain, 60)[0]


def test_a_higher_camera_sees_the_road_narrower_and_the_horizon_in_place(straight):
    plain_renderer, plain = render(straight)
    renderer, frame = render(straight, camera_height_m=0.02)
    assert renderer.horizon_row() == pytest.approx(plain_renderer.horizon_row())
    assert road(frame, 60)[0] < road(plain, 60)[0] - 10
    assert road(frame, 60)[1] == pytest.approx(road(plain, 60)[1], abs=1)  # still straight ahead


@pytest.mark.parametrize("yaw", [0.1, -0.1])
def test_yaw_left_moves_the_road_ahead_to_the_right_of_the_image(straight, yaw):
    _, plain = render(straight)
    _, frame = render(straight, camera_yaw_rad=yaw)
    shift = road(frame, 40)[1] - road(plain, 40)[1]
    assert np.sign(shift) == np.sign(yaw) and abs(shift) > 8  # + = left: the road appears to the right


def test_perturbations_parse_from_name_value_texts():
    p = CameraPerturbation.parse(["brightness=0.6", "jpeg_quality=30", "camera_pitch_rad=-0.05"])
    assert p == CameraPerturbation(brightness=0.6, jpeg_quality=30, camera_pitch_rad=-0.05)
    assert p.changes() == {"brightness": 0.6, "jpeg_quality": 30, "camera_pitch_rad": -0.05} and p.per_frame
    assert not CameraPerturbation(camera_height_m=0.02).per_frame


@pytest.mark.parametrize(
    "text, message",
    [
        ("brightnes=0.6", "expected NAME=VALUE with NAME one of brightness, contrast"),
        ("brightness", "expected NAME=VALUE"),
        ("blur_px=two", "'two' is not a number"),
        ("brightness=-1", "brightness must be a number in [0, 10]"),
        ("jpeg_quality=30.5", "jpeg_quality must be a whole number"),
        ("noise_std=nan", "noise_std must be a number"),
        ("camera_pitch_rad=2", "camera_pitch_rad must be a number in [-0.5, 0.5]"),
    ],
)
def test_a_bad_perturbation_is_refused_clearly(text, message):
    with pytest.raises(ValueError) as info:
        CameraPerturbation.parse([text])
    assert message in str(info.value)
