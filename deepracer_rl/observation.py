"""What a policy sees of the camera: the observation spec, the one preprocessing, the frame stack.

`observation_from_image` is the one function that turns a camera image into a policy input
frame; the in-process renderer draws the same frame directly (`CameraRenderer` at the
spec's size), and the ROS backend and the inference node call this function on camera
messages, so a network sees in deployment what it saw in training.

Frames are channel-first uint8: (C, height, width), C = 1 (gray) or 3 (RGB) per stacked frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from .camera import OBSERVATION_HEIGHT, OBSERVATION_WIDTH, to_observation

# Training's default policy input: DeepRacer's 160x120 halved each way (a quarter of the pixels
# for the CNN, so a laptop learns faster; `make demo` laps with it).
TRAINING_IMAGE_SIZE = (OBSERVATION_WIDTH // 2, OBSERVATION_HEIGHT // 2)


@dataclass(frozen=True)
class ObservationSpec:
    """What the policy sees: image size (pixels), colour and how many stacked frames.

    The defaults are DeepRacer's policy input (160x120 gray, one frame).
    """

    width: int = OBSERVATION_WIDTH
    height: int = OBSERVATION_HEIGHT
    grayscale: bool = True
    frame_stack: int = 1

    @property
    def channels(self) -> int:
        return (1 if self.grayscale else 3) * self.frame_stack

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one observation."""
        return (self.channels, self.height, self.width)

    def space(self) -> spaces.Box:
        return spaces.Box(0, 255, shape=self.shape, dtype=np.uint8)

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "width": self.width,
            "height": self.height,
            "grayscale": self.grayscale,
            "frame_stack": self.frame_stack,
        }


def as_channels_first(frames: np.ndarray) -> np.ndarray:
    """(N, H, W) gray or (N, H, W, 3) RGB frames -> (N, C, H, W)."""
    return frames[:, None] if frames.ndim == 3 else np.transpose(frames, (0, 3, 1, 2))


def observation_from_image(image: np.ndarray, spec: ObservationSpec) -> np.ndarray:
    """One camera image (H, W, 3) RGB or (H, W) gray uint8 -> one frame (C, h, w) uint8."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected an (H, W, 3) RGB or (H, W) gray uint8 image, got {image.dtype} {image.shape}")
    if image.ndim == 2:
        if not spec.grayscale:
            raise ValueError("the policy needs RGB frames but the camera image is gray")
        import cv2

        frame = cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
        return frame[None]
    frame = to_observation(image, spec.width, spec.height, spec.grayscale)
    return frame[None] if frame.ndim == 2 else np.transpose(frame, (2, 0, 1))


class FrameStacks:
    """The last k frames of N cars as their policy inputs (N, C*k, h, w), newest frame last.

    `push(rows, frames, fresh)` stores the newest frame of cars `rows`; a fresh episode
    fills the whole stack with its first frame. `shape` and `dtype`: another sensor's stacked
    input (one car), e.g. a lidar's (64 * k,) float32; frames are stacked along its first axis.
    """

    def __init__(
        self, spec: ObservationSpec, n_cars: int = 1, shape: tuple[int, ...] | None = None, dtype: object = np.uint8
    ):
        self.spec = spec
        self.stack = np.zeros((n_cars, *(spec.shape if shape is None else shape)), dtype=dtype)

    def push(self, rows: np.ndarray, frames: np.ndarray, fresh: bool = False) -> None:
        """Store `frames` (k, C, h, w) (or (k, n) of a vector sensor), one per row of `rows`, as the
        newest frames of those cars."""
        per = frames.shape[1]
        if fresh:
            self.stack[rows] = np.tile(frames, (1, self.spec.frame_stack) + (1,) * (frames.ndim - 2))
        elif self.spec.frame_stack == 1:
            self.stack[rows] = frames
        else:
            self.stack[rows] = np.concatenate([self.stack[rows, per:], frames], axis=1)


class FrameStack:
    """The frame stack of one camera (the inference node's): frames (C, h, w) in, input (C*k, h, w) out;
    `shape`/`dtype` as `FrameStacks` for another sensor."""

    def __init__(self, spec: ObservationSpec, shape: tuple[int, ...] | None = None, dtype: object = np.uint8):
        self.spec = spec
        self._stack = FrameStacks(spec, 1, shape, dtype)
        self._fresh = True
        self._row = np.zeros(1, dtype=np.intp)

    def push(self, frame: np.ndarray) -> np.ndarray:
        self._stack.push(self._row, frame[None], fresh=self._fresh)
        self._fresh = False
        return self._stack.stack[0]

    @property
    def stack(self) -> np.ndarray | None:
        """The current input (C*k, h, w), None before the first frame (or after `clear`)."""
        return None if self._fresh else self._stack.stack[0]

    def clear(self) -> None:
        self._fresh = True


def copy_observation(observation: np.ndarray | dict[str, np.ndarray], row: int | None = None) -> object:
    """A copy of a batch of observations (a Box's array or a Dict's arrays by key), or of its `row`."""
    if isinstance(observation, dict):
        return {key: (value if row is None else value[row]).copy() for key, value in observation.items()}
    return (observation if row is None else observation[row]).copy()
