"""Videos: `evaluate --video FILE.mp4` writes an MP4 OpenCV reads back, and Gymnasium's RecordVideo works.

Real components only: the CLI in a subprocess, the baseline driver and the cloned policy on the
in-process simulator, the ffmpeg of imageio-ffmpeg, OpenCV's reader, moviepy behind RecordVideo.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepracer_rl.track import Track
from deepracer_rl.video import Dashboard, Mp4Writer, VideoError

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "deepracer_rl.cli"]


def read_frames(path: Path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"OpenCV cannot open {path}"
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


def test_evaluate_video_of_one_lap_is_a_playable_mp4_with_every_step(cloned_policy, tmp_path):
    video = tmp_path / "lap.mp4"
    trajectory = tmp_path / "lap.csv"
    result = subprocess.run(
        CLI
        + ["evaluate", str(cloned_policy), "--laps", "1", "--video", str(video), "--trajectory", str(trajectory)]
        + ["--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["video"] == str(video)
    frames, fps = read_frames(video)
    steps = len(trajectory.read_text().splitlines()) - 1
    assert len(frames) == steps > 30 and fps == 15.0
    assert frames[0].shape == Dashboard(Track.load("reinvent_base")).shape
    # The camera pane moves (the car drives) and the map pane shows the green floor of the track's texture.
    assert np.abs(frames[-1][:288, :384].astype(int) - frames[0][:288, :384]).mean() > 5
    map_pane = frames[len(frames) // 2][:, 384:]
    assert map_pane[..., 1].mean() > map_pane[..., 2].mean()  # BGR: more green than red


def test_dashboard_shows_the_command_and_the_writer_refuses_bad_paths(tmp_path):
    track = Track.load("reinvent_base")
    dashboard = Dashboard(track)
    (point,), (heading,) = track.point_at(np.array([1.0]))
    pose = np.array([point[0], point[1], heading])
    left = dashboard.frame(pose, 25.0, 1.0, 0.5, 10.0, 1, 0.5)
    right = dashboard.frame(pose, -25.0, 3.0, 0.5, 10.0, 1, 0.5)
    assert left.shape == dashboard.shape and left.shape[0] % 2 == 0 and left.shape[1] % 2 == 0
    assert not np.array_equal(left[288:], right[288:])  # the telemetry differs
    assert np.array_equal(left[:288, :384], right[:288, :384])  # same pose: same camera view
    with pytest.raises(VideoError, match="must be a .mp4 file"):
        Mp4Writer(tmp_path / "lap.avi")
    with pytest.raises(VideoError, match="no such directory"):
        Mp4Writer(tmp_path / "missing" / "lap.mp4")
    result = subprocess.run(
        CLI + ["evaluate", "--driver", "baseline", "--laps", "1", "--video", str(tmp_path / "x" / "lap.mp4")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 2 and "no such directory" in result.stderr and "Traceback" not in result.stderr


def test_gymnasium_record_video_records_race_episodes(tmp_path):
    import gymnasium as gym
    from gymnasium.wrappers import RecordVideo

    import deepracer_rl  # noqa: F401  (registers deepracer_rl/Race-v0)

    env = RecordVideo(
        gym.make("deepracer_rl/Race-v0", render_mode="rgb_array"),
        str(tmp_path / "videos"),
        episode_trigger=lambda episode: True,
        name_prefix="race",
        disable_logger=True,
    )
    env.reset(seed=0)
    for _ in range(20):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            break
    env.close()
    (video,) = (tmp_path / "videos").glob("race-episode-0.mp4")
    frames, _ = read_frames(video)
    assert len(frames) >= 2
    assert frames[0].shape == (480, 640, 3)  # RaceEnv.render: the camera at full resolution
