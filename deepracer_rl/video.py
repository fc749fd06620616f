"""Evaluation videos: the car's camera beside a top-down map, with speed, steering, reward and progress.

`Dashboard` draws one RGB frame per step (camera view by `camera.CameraRenderer` at the car's
pose, map by `camera.render_topdown` with the trail so far, text and a steering gauge with
OpenCV); `Mp4Writer` encodes frames as H.264 MP4 (yuv420p, plays in browsers and players)
through the ffmpeg binary that the imageio-ffmpeg wheel ships, so nothing is downloaded.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .camera import Box, CameraRenderer, render_topdown
from .car import CarSpec
from .track import Track

VIDEO_FPS = 15  # the control rate: one frame per step (CarSpec.control_hz)
CAMERA_SIZE = (384, 288)  # width, height of the camera pane (the 640x480 camera, scaled)
MAP_SIZE = 512  # longest side of the top-down map pane, px
PANEL_HEIGHT = 224  # the telemetry text under the camera
_TEXT = (235, 235, 235)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


class VideoError(ValueError):
    """The video cannot be written: the message names the file and why."""


class Dashboard:
    """RGB frames (height MAP_SIZE-ish, both sides even) of a car on a track: camera | map, telemetry."""

    def __init__(self, track: Track, max_steering_deg: float = 30.0, max_speed: float = 4.0):
        camera = CarSpec.from_urdf().camera
        self.track = track
        self.renderer = CameraRenderer(track, camera, CAMERA_SIZE[0], CAMERA_SIZE[1], grayscale=False)
        self.max_steering_deg = max(1e-6, float(max_steering_deg))
        self.max_speed = max(1e-6, float(max_speed))
        self.trail: list[np.ndarray] = []
        blank = render_topdown(track, size=MAP_SIZE)
        self.map_shape = blank.shape
        height = max(blank.shape[0], CAMERA_SIZE[1] + PANEL_HEIGHT)
        self.shape = (height + height % 2, CAMERA_SIZE[0] + blank.shape[1] + (CAMERA_SIZE[0] + blank.shape[1]) % 2, 3)

    def new_lap(self) -> None:
        """Start a new trail (the map shows the current lap's path)."""
        self.trail = []

    def frame(
        self,
        pose: np.ndarray,
        steering_deg: float,
        speed: float,
        reward: float,
        progress: float,
        lap: int,
        sim_time: float,
        status: str = "in_progress",
        objects: Sequence[Box] | None = None,
    ) -> np.ndarray:
        """(H, W, 3) uint8 RGB: the camera at `pose` (x, y m; yaw rad) and the map, with the command
        (degrees, + = left; m/s), the step's reward, progress (0..100 %), lap (1-based) and sim time (s);
        the camera sees `objects` (obstacles, bot cars) when given."""
        pose = np.asarray(pose, dtype=np.float64).reshape(3)
        self.trail.append(pose[:2].copy())
        out = np.full(self.shape, 32, dtype=np.uint8)
        out[: CAMERA_SIZE[1], : CAMERA_SIZE[0]] = self.renderer.render(pose[None], objects=objects or None)[0]
        trail = np.array(self.trail) if len(self.trail) > 1 else None
        top = render_topdown(self.track, pose[None], trail=trail, size=MAP_SIZE)
        out[: top.shape[0], CAMERA_SIZE[0] : CAMERA_SIZE[0] + top.shape[1]] = top
        lines = [
            f"lap {lap}   t {sim_time:6.2f} s",
            f"speed    {speed:5.2f} m/s",
            f"steering {steering_deg:+6.1f} deg",
            f"reward   {reward:8.3f}",
            f"progress {progress:6.1f} %",
            status.replace("_", " "),
        ]
        y = CAMERA_SIZE[1] + 26
        for text in lines:
            cv2.putText(out, text, (12, y), _FONT, 0.6, _TEXT, 1, cv2.LINE_AA)
            y += 26
        self._gauges(out, steering_deg, speed, progress)
        return out

    def _gauges(self, out: np.ndarray, steering_deg: float, speed: float, progress: float) -> None:
        """A steering needle (up = straight, left = left), a speed bar and a progress bar."""
        cx, cy, r = CAMERA_SIZE[0] - 62, CAMERA_SIZE[1] + 70, 48
        cv2.circle(out, (cx, cy), r, (90, 90, 90), 2, cv2.LINE_AA)
        angle = math.radians(90.0 * np.clip(steering_deg / self.max_steering_deg, -1.0, 1.0))
        tip = (int(round(cx - r * math.sin(angle))), int(round(cy - r * math.cos(angle))))
        cv2.line(out, (cx, cy), tip, (255, 200, 0), 3, cv2.LINE_AA)
        for row, (value, colour) in enumerate(
            ((speed / self.max_speed, (80, 200, 255)), (progress / 100.0, (90, 220, 110)))
        ):
            y0 = CAMERA_SIZE[1] + 140 + 22 * row
            x0, x1 = CAMERA_SIZE[0] - 130, CAMERA_SIZE[0] - 12
            cv2.rectangle(out, (x0, y0), (x1, y0 + 12), (90, 90, 90), 1)
            filled = x0 + int(round((x1 - x0) * float(np.clip(value, 0.0, 1.0))))
            cv2.rectangle(out, (x0, y0), (filled, y0 + 12), colour, -1)


class Mp4Writer:
    """H.264 MP4 from (H, W, 3) RGB uint8 frames of one size (even sides), at `fps`."""

    def __init__(self, path: str | os.PathLike, fps: float = VIDEO_FPS):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise VideoError(f"{self.path}: the video must be a .mp4 file")
        if not self.path.parent.is_dir():
            raise VideoError(f"{self.path}: no such directory {self.path.parent}")
        self.fps = float(fps)
        self.frames = 0
        self._writer: Any = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        height, width = frame.shape[:2]
        if self._writer is None:
            import imageio_ffmpeg

            if width % 2 or height % 2:
                raise VideoError(f"{self.path}: frame size {width}x{height} must be even for yuv420p")
            self._size = (width, height)
            self._writer = imageio_ffmpeg.write_frames(
                str(self.path),
                self._size,
                fps=self.fps,
                codec="libx264",
                pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p",
                macro_block_size=1,
                output_params=["-crf", "23", "-preset", "veryfast"],
                ffmpeg_log_level="error",
            )
            self._writer.send(None)  # start the encoder
        elif (width, height) != self._size:
            raise VideoError(f"{self.path}: frame {self.frames} is {width}x{height}, the video {self._size}")
        self._writer.send(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
