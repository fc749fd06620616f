"""sensor_msgs/Image <-> NumPy: cv_bridge when it is importable, else this module's own code.

Encodings: rgb8, bgr8, mono8, rgba8, bgra8 (one byte per channel, so `is_bigendian` does
not change the bytes and either value is accepted). Rows may be padded (`step` larger than
width * channels). A message that does not fit (unknown encoding, `step` too small, data
not height * step bytes) raises `ImageError` naming the topic and the encoding.

Speed: `image_to_array` returns a view of the message's buffer (no copy) when the rows are
not padded, and `array_to_image` fills `Image.data` with one memcpy (an `array.array` made
with `frombytes`); assigning `bytes` or a list makes rclpy copy or check byte by byte.
"""

from __future__ import annotations

import array
from typing import Any

import numpy as np
from sensor_msgs.msg import Image

try:  # ROS installs have cv_bridge; the PyPI venv does not.
    from cv_bridge import CvBridge as _CvBridge
except ImportError:  # pragma: no cover - depends on the install
    _CV_BRIDGE = None
else:  # pragma: no cover
    _CV_BRIDGE = _CvBridge()

CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
ENCODINGS = tuple(CHANNELS)


class ImageError(ValueError):
    """An Image message (or array) that cannot be converted; the message says which topic and encoding."""


def _where(topic: str | None, encoding: str) -> str:
    return f"image on {topic or 'an image topic'} (encoding {encoding!r})"


def check_image(msg: Image, topic: str | None = None) -> int:
    """Validate the layout fields of `msg`; returns its number of channels (raises ImageError)."""
    encoding = msg.encoding
    channels = CHANNELS.get(encoding)
    if channels is None:
        raise ImageError(f"{_where(topic, encoding)}: unsupported encoding; supported: {', '.join(ENCODINGS)}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageError(f"{_where(topic, encoding)}: empty image {width}x{height}")
    if step < width * channels:
        raise ImageError(f"{_where(topic, encoding)}: step {step} is less than width * channels = {width} * {channels}")
    size = len(msg.data)
    if size != height * step:
        raise ImageError(
            f"{_where(topic, encoding)}: data has {size} bytes, expected height * step = "
            f"{height} * {step} = {height * step} ({width}x{height})"
        )
    return channels


def image_to_array(msg: Image, topic: str | None = None) -> np.ndarray:
    """Image -> (H, W) uint8 for mono8, else (H, W, C) in the message's own channel order.

    Without row padding the result is a read-only view of `msg.data` (no copy).
    """
    channels = check_image(msg, topic)
    if _CV_BRIDGE is not None:  # pragma: no cover - not in the PyPI venv
        return np.asarray(_CV_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough"))
    height, width, step = msg.height, msg.width, msg.step
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(height, step)
    if step != width * channels:
        rows = rows[:, : width * channels]
    return rows.reshape(height, width) if channels == 1 else rows.reshape(height, width, channels)


def image_to_rgb(msg: Image, topic: str | None = None) -> np.ndarray:
    """Image -> (H, W, 3) RGB, or (H, W) gray for mono8 (the inputs `observation.observation_from_image` takes)."""
    pixels = image_to_array(msg, topic)
    encoding = msg.encoding
    if encoding in ("rgb8", "mono8"):
        return pixels
    if encoding == "rgba8":
        return pixels[:, :, :3]
    return np.ascontiguousarray(pixels[:, :, 2::-1])  # bgr8 / bgra8: reverse the first three channels


def array_to_image(
    pixels: np.ndarray,
    encoding: str,
    *,
    stamp: Any = None,
    frame_id: str = "",
    step: int | None = None,
    topic: str | None = None,
    msg: Image | None = None,
) -> Image:
    """uint8 (H, W) or (H, W, C) -> Image of `encoding`; `step` > W * C pads every row with zeros.

    `msg`: an Image to fill in (a publisher can reuse one; publishing copies it).
    """
    channels = CHANNELS.get(encoding)
    if channels is None:
        raise ImageError(f"{_where(topic, encoding)}: unsupported encoding; supported: {', '.join(ENCODINGS)}")
    pixels = np.asarray(pixels)
    expected = 2 if channels == 1 else 3
    if (
        pixels.dtype != np.uint8
        or pixels.ndim not in (2, 3)
        or (pixels.ndim == 3 and pixels.shape[2] != channels)
        or (pixels.ndim == 2 and channels != 1)
    ):
        raise ImageError(
            f"{_where(topic, encoding)}: expected a uint8 array of {expected} dimensions with "
            f"{channels} channel(s), got {pixels.dtype} {pixels.shape}"
        )
    height, width = pixels.shape[:2]
    row = width * channels
    step = row if step is None else int(step)
    if step < row:
        raise ImageError(f"{_where(topic, encoding)}: step {step} is less than width * channels = {row}")
    if _CV_BRIDGE is not None and step == row and msg is None:  # pragma: no cover - not in the PyPI venv
        msg = _CV_BRIDGE.cv2_to_imgmsg(np.ascontiguousarray(pixels), encoding=encoding)
    else:
        msg = Image() if msg is None else msg
        msg.height, msg.width, msg.encoding, msg.step = height, width, encoding, step
        msg.is_bigendian = 0
        if step != row:
            padded = np.zeros((height, step), dtype=np.uint8)
            padded[:, :row] = pixels.reshape(height, row)
            pixels = padded
        data = array.array("B")
        data.frombytes(memoryview(np.ascontiguousarray(pixels)).cast("B"))
        msg.data = data
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg
