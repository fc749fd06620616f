"""The inference runner refuses frames no policy should drive on, and passes real track views."""

from __future__ import annotations

import numpy as np
import pytest

from deepracer_rl.camera import GENERAL_RANDOMIZATION, STANDARD_RANDOMIZATION, CameraRenderer
from deepracer_rl.car import CarSpec
from deepracer_rl.inference import DegenerateFrame, FrameCheck, PolicyRunner
from deepracer_rl.policy import OnnxPolicy
from deepracer_rl.track import Track

CAMERA = CarSpec.from_urdf().camera


def views(track: str, n: int, randomized: bool, seed: int = 0, randomization=STANDARD_RANDOMIZATION) -> np.ndarray:
    """n RGB camera frames (640x480) at random poses near the centre line of `track` (randomised: `randomization`)."""
    t = Track.load(track)
    rng = np.random.default_rng(seed)
    points, headings = t.point_at(rng.uniform(0, t.length, n))
    lateral = rng.uniform(-0.2, 0.2, n)
    poses = np.column_stack(
        [points[:, 0] - lateral * np.sin(headings), points[:, 1] + lateral * np.cos(headings), headings]
    )
    poses[:, 2] += rng.uniform(-0.3, 0.3, n)
    renderer = CameraRenderer(
        t, CAMERA, CAMERA.width, CAMERA.height, grayscale=False,
        randomization=randomization if randomized else None, seed=seed,
    )  # fmt: skip
    for i in range(n):
        renderer.new_episode(i)
    return renderer.render(poses)


@pytest.mark.parametrize("track", ["reinvent_base", "Bowtie_track", "2022_summit_speedway"])
def test_track_views_pass_also_with_domain_randomisation(track):
    check = FrameCheck()
    for frame in [*views(track, 20, randomized=False), *views(track, 40, randomized=True)]:
        check(frame)
        check(frame[:, :, 1])  # a mono8 camera


@pytest.mark.parametrize("track", ["reinvent_base", "Bowtie_track", "2022_summit_speedway"])
def test_track_views_pass_with_the_general_randomisation(track):
    """GENERAL_RANDOMIZATION (exposure 0.55-1.6, noise up to 10, JPEG, lens, ...) still looks like a scene."""
    check = FrameCheck()
    for frame in views(track, 24, randomized=True, seed=1, randomization=GENERAL_RANDOMIZATION):
        check(frame)
        check(frame[:, :, 1])


@pytest.mark.parametrize(
    ("name", "frame", "reason"),
    [
        ("black", np.zeros((480, 640, 3), np.uint8), "uniform frame"),
        ("white", np.full((480, 640, 3), 255, np.uint8), "uniform frame"),
        ("grey", np.full((120, 160), 128, np.uint8), "uniform frame"),
        ("1x1", np.full((1, 1, 3), 90, np.uint8), "frame of 1x1 pixels"),
        ("noise", np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8), "noise, not a scene"),
        (
            "blown out",
            np.where(np.random.default_rng(1).random((480, 640, 3)) < 0.5, 0, 255).astype(np.uint8),
            "saturated frame",
        ),
    ],
)
def test_degenerate_frames_are_refused_with_the_reason(name, frame, reason, cloned_policy):
    runner = PolicyRunner(OnnxPolicy(cloned_policy))
    with pytest.raises(DegenerateFrame, match=reason):
        runner.act(frame)
    command = runner.act(views("reinvent_base", 1, randomized=False)[0])  # a real view still drives
    assert command.speed > 0


def test_the_check_can_be_turned_off(cloned_policy):
    runner = PolicyRunner(OnnxPolicy(cloned_policy), frame_check=None)
    runner.act(np.zeros((480, 640, 3), np.uint8))  # drives on anything, as before
