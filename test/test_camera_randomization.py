"""Domain randomisation knobs: each changes frames as documented, is seeded, checks its range; off changes nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import math

import cv2
import numpy as np
import pytest

from deepracer_rl.camera import (
    CLUTTER_CLEARANCE,
    FLOOR_KINDS,
    GENERAL_RANDOMIZATION,
    LINE_WIDTH_RANGE,
    RANDOMIZATION_PRESETS,
    STANDARD_RANDOMIZATION,
    CameraRenderer,
    DomainRandomization,
    _jpeg,
    _motion_kernel,
    _random_mat,
    _to_uint8,
    ground_texture,
    randomization_preset,
)
from deepracer_rl.car import CarSpec
from deepracer_rl.robustness import PERTURBATIONS
from deepracer_rl.track import Track

CAMERA = CarSpec.from_urdf().camera


@pytest.fixture(scope="module")
def reinvent():
    return Track.load("reinvent_base")


def poses_on(track: Track, n: int = 3) -> np.ndarray:
    """n poses on the centre line, facing along it (a little turned, so the frames differ)."""
    points, headings = track.point_at(track.length * np.linspace(0.0, 0.6, n))
    return np.column_stack([points, headings + np.linspace(0.0, 0.1, n)])


def frames(track, rand, seed=1, grayscale=True, n=3, episodes=2) -> np.ndarray:
    """(episodes, n, H, W[, 3]) frames of n cars, a new episode for every car between renders."""
    renderer = CameraRenderer(track, CAMERA, 160, 120, grayscale, rand, seed=seed)
    poses = poses_on(track, n)
    out = []
    for _ in range(episodes):
        out.append(renderer.render(poses))
        for i in range(n):
            renderer.new_episode(i)
    return np.stack(out)


# sha256[:32] of the frames below rendered by main at e18991c, before the new knobs: the default
# (no randomisation) and STANDARD_RANDOMIZATION must stay byte for byte what they were.
REFERENCE = {
    "reinvent_base_gray_default": "8d702b0c5bb1d2ad08eb80144a9a5fbe",
    "reinvent_base_gray_standard": "31af3576be4a9a946cb58cccf711969e",
    "reinvent_base_rgb_default": "e656963538bbe80efcaebac8dc34c7e0",
    "reinvent_base_rgb_standard": "0a3f66cc0b9dbc3d2add863559533637",
    "Bowtie_track_gray_default": "3b74f93823a0009b73b8efd1f9ced82d",
    "Bowtie_track_gray_standard": "e5a34c6e281d4ccd2c9096c5c73759e1",
    "Bowtie_track_rgb_default": "cc6ba9c9755ec9022a5b9bee9e6a955f",
    "Bowtie_track_rgb_standard": "86d807b4c1949b79984717372f443b83",
}


@pytest.mark.parametrize("track_name", ["reinvent_base", "Bowtie_track"])
@pytest.mark.parametrize("grayscale", [True, False])
@pytest.mark.parametrize("preset", ["default", "standard"])
def test_default_and_standard_frames_are_byte_identical_to_before_the_new_knobs(track_name, grayscale, preset):
    track = Track.load(track_name)
    points, headings = track.point_at(track.length * np.array([0.0, 0.3, 0.6]))
    poses = np.column_stack([points, headings + np.array([0.0, 0.1, -0.1])])
    rand = DomainRandomization() if preset == "default" else STANDARD_RANDOMIZATION
    renderer = CameraRenderer(track, CAMERA, 160, 120, grayscale, rand, seed=3)
    out = [renderer.render(poses)]
    renderer.new_episode(1)
    out.append(renderer.render(poses))
    digest = hashlib.sha256(np.stack(out).tobytes()).hexdigest()[:32]
    assert digest == REFERENCE[f"{track_name}_{'gray' if grayscale else 'rgb'}_{preset}"]


# One setting per knob, strong enough to show; each must change frames and follow the seed.
KNOBS = {
    "camera_yaw": dict(camera_yaw=0.1),
    "camera_height range": dict(camera_height=(0.01, 0.03)),
    "exposure": dict(exposure=(0.5, 1.8)),
    "white_balance": dict(white_balance=0.8),
    "jpeg": dict(jpeg=1.0, jpeg_quality=(10, 60)),
    "motion_blur": dict(motion_blur=6.0),
    "blur_sigma": dict(blur=1.0, blur_sigma=(1.0, 2.5)),
    "noise range": dict(noise=(4.0, 10.0)),
    "floor_kinds": dict(floor_texture=True, floor_kinds=("carpet", "concrete", "wood")),
    "line_style": dict(line_style=True),
    "clutter": dict(clutter=100),
    "lens": dict(lens=0.5),
}


@pytest.mark.parametrize("knob", list(KNOBS))
def test_each_knob_changes_frames_and_follows_the_seed(knob, reinvent):
    rand = DomainRandomization(**KNOBS[knob])
    assert rand.enabled
    if knob == "clutter":  # flat things far off the road: look at the scene variants' textures
        renderer = CameraRenderer(reinvent, CAMERA, 160, 120, True, rand, seed=1)
        base = renderer._scene.levels[0]
        assert any(np.any(renderer._pool_scene(k).levels[0] != base) for k in range(4))
        return
    # Per-episode knobs want more cars, so some see the change (the lens: half the episodes); scene
    # variants are slow to paint, so fewer there.
    cars = {"camera_yaw": 4, "camera_height range": 4, "exposure": 4, "lens": 4, "floor_kinds": 2, "line_style": 2}
    cars = cars.get(knob, 3)
    first = frames(reinvent, rand, seed=1, n=cars)
    np.testing.assert_array_equal(first, frames(reinvent, rand, seed=1, n=cars))
    assert np.any(first != frames(reinvent, rand, seed=2, n=cars))
    plain = frames(reinvent, None, n=cars, episodes=1)[0]
    assert np.any(first[0] != plain)


def test_camera_pose_jitter_stays_in_its_ranges(reinvent):
    rand = DomainRandomization(camera_yaw=0.03, camera_height=(-0.01, 0.03), camera_pitch=0.06)
    renderer = CameraRenderer(reinvent, CAMERA, 160, 120, True, rand, seed=4)
    views = [renderer._car(i).view for i in range(40)]
    yaw = np.array([v.yaw for v in views])
    dz = np.array([v.z for v in views]) - CAMERA.z
    dpitch = np.array([v.pitch for v in views]) - CAMERA.pitch
    assert np.all(np.abs(yaw) <= 0.03) and yaw.min() < -0.01 and yaw.max() > 0.01
    assert np.all((dz >= -0.01) & (dz <= 0.03)) and dz.min() < 0 and dz.max() > 0.02
    assert np.all(np.abs(dpitch) <= 0.06) and dpitch.min() < -0.04 and dpitch.max() > 0.04


def test_exposure_is_one_gain_per_episode_log_uniform_in_its_range(reinvent):
    rand = DomainRandomization(exposure=(0.55, 1.6))
    renderer = CameraRenderer(reinvent, CAMERA, 160, 120, True, rand, seed=5)
    gains = np.array([renderer._car(i).exposure for i in range(200)])
    assert np.all((gains >= 0.55) & (gains <= 1.6))
    assert abs(np.median(np.log(gains)) - np.log(0.55 * 1.6) / 2) < 0.1  # log-uniform: median at the log-midpoint
    plain = frames(reinvent, None, episodes=1)[0]
    fixed = CameraRenderer(reinvent, CAMERA, 160, 120, True, DomainRandomization(exposure=(1.3, 1.3)), seed=5)
    np.testing.assert_array_equal(fixed.render(poses_on(reinvent)), _to_uint8(1.3 * plain.astype(np.float64)))


def test_white_balance_shifts_red_against_blue_and_keeps_luminance(reinvent):
    rand = DomainRandomization(white_balance=0.5)
    renderer = CameraRenderer(reinvent, CAMERA, 160, 120, False, rand, seed=6)
    gains = np.array([renderer._pool_scene(k).gains for k in range(8)])
    ratio = np.log(gains[:, 0] / gains[:, 2])
    assert np.all(np.abs(ratio) <= 0.5 + 1e-6) and ratio.min() < -0.1 and ratio.max() > 0.1
    np.testing.assert_allclose(gains @ np.array([0.299, 0.587, 0.114]), 1.0, rtol=1e-5)


def test_jpeg_is_the_cars_mjpeg_at_a_random_quality(reinvent):
    plain = frames(reinvent, None, episodes=1)[0]
    at_30 = frames(reinvent, DomainRandomization(jpeg=1.0, jpeg_quality=(30, 30)), episodes=1)[0]
    np.testing.assert_array_equal(at_30, np.stack([_jpeg(f, 30) for f in plain]))
    never = frames(reinvent, DomainRandomization(jpeg=1e-9, jpeg_quality=(30, 30)), episodes=1)[0]
    np.testing.assert_array_equal(never, plain)


def variation(frames: np.ndarray, axis: int) -> float:
    """Mean absolute difference of neighbouring pixels along an image axis (0 rows, 1 columns)."""
    return float(np.abs(np.diff(frames.astype(np.int16), axis=axis + 1)).mean())


def test_motion_blur_is_a_vertical_box_of_random_length(reinvent):
    plain = frames(reinvent, None, n=3, episodes=1)[0]
    blurred = frames(reinvent, DomainRandomization(motion_blur=8.0), n=3, episodes=1)[0]
    lengths = []
    for before, after in zip(plain, blurred):
        if np.array_equal(before, after):
            lengths.append(0.0)
            continue
        for length in np.arange(1.0, 8.01, 0.25):  # lengths are quantised to 1/4 px
            kernel = _motion_kernel(float(length))
            assert kernel.shape[1] == 1  # vertical
            if np.array_equal(cv2.filter2D(before, -1, kernel, borderType=cv2.BORDER_REPLICATE), after):
                lengths.append(float(length))
                break
        else:
            raise AssertionError("a frame is not a vertical box blur of the plain frame")
    assert len(set(lengths)) > 1 and max(lengths) > 1.0


def test_blur_sigma_sets_how_strong_the_blur_is(reinvent):
    weak = frames(reinvent, DomainRandomization(blur=1.0, blur_sigma=(0.5, 0.5)), episodes=1)[0]
    strong = frames(reinvent, DomainRandomization(blur=1.0, blur_sigma=(2.5, 2.5)), episodes=1)[0]
    assert variation(strong, 1) < 0.7 * variation(weak, 1)


def test_a_noise_range_draws_a_std_per_frame_from_its_levels(reinvent):
    plain = frames(reinvent, None, episodes=1)[0].astype(float)
    renderer = CameraRenderer(reinvent, CAMERA, 160, 120, True, DomainRandomization(noise=(0.0, 10.0)), seed=2)
    poses = poses_on(reinvent)
    stds = []
    for _ in range(12):
        diff = renderer.render(poses) - plain
        ok = (plain > 30) & (plain < 225)  # not clipped
        stds.extend(diff[i][ok[i]].std() for i in range(len(diff)))
    stds = np.array(stds)
    assert stds.min() < 0.5  # the zero level: clean frames
    assert stds.max() > 9.0 and stds.max() < 11.0
    assert len(np.unique(np.round(stds))) >= 4


@pytest.mark.parametrize("kind", FLOOR_KINDS)
def test_every_floor_kind_is_a_textured_mat(kind):
    mat = _random_mat(np.random.default_rng(0), (256, 320), 0.01, (kind,))
    assert mat.shape == (256, 320, 3) and np.all(np.isfinite(mat))
    if kind != "plain":
        assert mat.std(axis=(0, 1)).max() > 2.0  # some texture
    if kind == "concrete":
        rgb = np.clip(mat, 0, 255).mean(axis=(0, 1))
        assert rgb.max() - rgb.min() < 30  # gray
    if kind == "wood":
        rgb = np.clip(mat, 0, 255).mean(axis=(0, 1))
        assert rgb[0] > rgb[2]  # brownish: more red than blue


def test_line_style_repaints_only_the_lines(reinvent):
    renderer = CameraRenderer(reinvent, CAMERA, 160, 120, False, DomainRandomization(line_style=True), seed=7)
    texture = ground_texture(reinvent)
    changed = np.zeros(texture.floor.shape, bool)
    for k in range(6):
        changed |= np.any(renderer._pool_scene(k).levels[0] != texture.rgb, axis=2)
    assert changed.any()
    # Only near the lines: within the widest line's half width (+ the one-texel ramp) of a line's centre.
    widest = LINE_WIDTH_RANGE[1] / texture.resolution / 2 + 1.5
    from deepracer_rl.camera import _texture_layers

    layers = _texture_layers(reinvent)
    near = np.minimum(layers.line_distance, layers.dash_distance) <= widest
    assert not np.any(changed & ~near)


def test_clutter_lies_on_the_mat_clear_of_the_road(reinvent):
    renderer = CameraRenderer(reinvent, CAMERA, 160, 120, False, DomainRandomization(clutter=60), seed=8)
    texture = ground_texture(reinvent)
    changed = np.zeros(texture.floor.shape, bool)
    for k in range(3):
        changed |= np.any(renderer._pool_scene(k).levels[0] != texture.rgb, axis=2)
    assert changed.sum() > 1000
    clear = cv2.distanceTransform((texture.floor == 255).astype(np.uint8), cv2.DIST_L2, 5) * texture.resolution
    assert clear[changed].min() > CLUTTER_CLEARANCE / 2  # anti-aliased rims reach a texel or two past the shape


def test_lens_is_a_barrel_that_keeps_the_corners_in_half_the_episodes(reinvent):
    rand = DomainRandomization(lens=0.5)
    renderer = CameraRenderer(reinvent, CAMERA, 160, 120, True, rand, seed=9)
    lensed = [renderer._car(i).lens is not None for i in range(40)]
    assert 10 < sum(lensed) < 30
    i = lensed.index(True)
    poses = poses_on(reinvent, 1)
    frame = renderer.render(poses, [i])[0].astype(int)
    plain = frames(reinvent, None, n=1, episodes=1)[0, 0].astype(int)
    assert abs(frame[0, 0] - plain[0, 0]) <= 2 and abs(frame[-1, -1] - plain[-1, -1]) <= 2
    # The centre is magnified: the horizon (a sharp row in the plain frame) moves away from the centre row.
    assert np.any(frame[40:80, 60:100] != plain[40:80, 60:100])


def test_no_knob_draws_when_off_so_knobs_do_not_disturb_each_other(reinvent):
    """A knob turned off draws nothing, so e.g. STANDARD plus a zero yaw renders as STANDARD."""
    zeroed = dataclasses.replace(STANDARD_RANDOMIZATION, camera_yaw=0.0, white_balance=0.0, jpeg=0.0, lens=0.0)
    np.testing.assert_array_equal(frames(reinvent, zeroed), frames(reinvent, STANDARD_RANDOMIZATION))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("camera_yaw", 0.3),
        ("camera_yaw", -0.01),
        ("camera_height", (0.03, -0.01)),
        ("camera_height", (-0.2, 0.0)),
        ("camera_height", -0.01),
        ("exposure", (0.1, 1.0)),
        ("exposure", (1.5, 1.0)),
        ("exposure", 1.2),
        ("white_balance", 1.5),
        ("jpeg", 1.5),
        ("jpeg_quality", (0, 50)),
        ("jpeg_quality", (20.5, 50)),
        ("motion_blur", 20.0),
        ("motion_blur", math.nan),
        ("blur_sigma", (0.0, 1.0)),
        ("blur_sigma", (1.0, 9.0)),
        ("noise", (5.0, 2.0)),
        ("noise", (-1.0, 2.0)),
        ("floor_kinds", ("carpet", "lava")),
        ("floor_kinds", ()),
        ("floor_kinds", "wood"),
        ("clutter", 500),
        ("clutter", 2.5),
        ("lens", 0.8),
        ("lens", -0.1),
    ],
)
def test_out_of_range_values_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"DomainRandomization\.{field}"):
        DomainRandomization(**{field: value})


def test_presets_by_name():
    assert randomization_preset("none") == DomainRandomization() and not randomization_preset("none").enabled
    assert randomization_preset("standard") is STANDARD_RANDOMIZATION
    assert randomization_preset("general") is GENERAL_RANDOMIZATION
    assert set(RANDOMIZATION_PRESETS) == {"none", "standard", "general"}
    with pytest.raises(ValueError, match="general"):
        randomization_preset("extreme")


def test_general_covers_the_robustness_test_perturbations():
    g = GENERAL_RANDOMIZATION
    tests = {k: v for fields in PERTURBATIONS.values() for k, v in fields.items()}
    assert set(tests) <= {"brightness", "blur_px", "noise_std", "jpeg_quality", "camera_pitch_rad", "camera_height_m"}
    for name, fields in PERTURBATIONS.items():
        for key, value in fields.items():
            if key == "brightness":
                assert g.exposure[0] <= value <= g.exposure[1], name
            elif key == "blur_px":
                assert g.blur > 0 and g.blur_sigma[0] <= value <= g.blur_sigma[1], name
            elif key == "noise_std":
                assert g.noise[0] <= value <= g.noise[1], name
            elif key == "jpeg_quality":
                assert g.jpeg > 0 and g.jpeg_quality[0] <= value <= g.jpeg_quality[1], name
            elif key == "camera_pitch_rad":
                assert abs(value) <= g.camera_pitch, name
            elif key == "camera_height_m":
                assert g.camera_height[0] <= value <= g.camera_height[1], name
    assert g.camera_height[0] < 0  # a lower mount too


def test_the_baseline_driver_steers_from_poses_so_randomisation_cannot_change_its_lap():
    """The scripted pure-pursuit baseline reads poses, never frames: GENERAL changes what the camera
    sees, not one pose, reward or the lap of the baseline."""
    from deepracer_rl.action_space import ActionSpace
    from deepracer_rl.baseline import PurePursuitDriver
    from deepracer_rl.env import RaceEnv

    space = ActionSpace.from_metadata(
        {
            "action_space_type": "continuous",
            "action_space": {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.1, "high": 4.0}},
        }
    )
    (s_lo, s_hi), (v_lo, v_hi) = space.steering_range, space.speed_range

    def lap(randomization):
        env = RaceEnv("reinvent_base", model_metadata=space, randomization=randomization)
        obs, _ = env.reset(seed=0)
        driver = PurePursuitDriver(env.core)
        poses, rewards, frames = [], [], [obs]
        for _ in range(int(40 * env.core.control_hz)):
            steer, speed = driver.act()
            action = np.array([2 * (steer[0] - s_lo) / (s_hi - s_lo) - 1, 2 * (speed[0] - v_lo) / (v_hi - v_lo) - 1])
            obs, reward, terminated, truncated, info = env.step(action.astype(np.float32))
            poses.append(env.core.poses()[0].copy())
            rewards.append(reward)
            frames.append(obs)
            if terminated or truncated:
                break
        env.close()
        return np.array(poses), rewards, info["episode_status"], np.stack(frames)

    plain = lap(None)
    general = lap(GENERAL_RANDOMIZATION)
    assert plain[2] == general[2] == "lap_complete"
    np.testing.assert_array_equal(plain[0], general[0])
    assert plain[1] == general[1]
    assert np.any(plain[3] != general[3])  # while the camera saw something else
