"""Driving with an exported policy: camera image -> checked command -> the car's conventions.

No ROS here: `ros/inference_node.py` wires this to topics, and the tests and benchmarks
use it directly. `load_policy` picks the runtime: OpenVINO for an IR (`model.xml`, or an export
dir when asked for), onnxruntime otherwise. The preprocessing is
`observation.observation_from_image` + `observation.FrameStack`, the functions the ROS bridge
uses in training, so the network sees what it saw there.

Two output conventions:
* ROS (`/cmd_vel`, geometry_msgs/Twist): linear.x = speed (m/s), angular.z =
  speed * tan(steering) / wheelbase (rad/s), the wheelbase read from the URDF.
* The AWS DeepRacer servo (deepracer_interfaces_pkg/ServoCtrlMsg {angle, throttle}, both
  in [-1, 1] relative to the car's calibration): angle = steering / the action space's
  largest |steering| (+ = left), throttle = throttle_scale * (a v^2 + b v), the parabola
  through (0, 0), (v_max / 2, 0.8) and (v_max, 1.0) with v_max the action space's top
  speed, clipped to [-1, 1]. This is the mapping of the DeepRacer navigation node, so a
  model drives the real car as it would under the stock software; throttle_scale plays
  the console's "maximum speed" percentage.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .action_space import ActionSpace
from .observation import FrameStack, observation_from_image
from .policy import ONNX_NAME, OPENVINO_XML, ExportedPolicy, OnnxPolicy, OpenVinoPolicy, PolicyLoadError
from .resources import share_path

RUNTIMES = ("auto", "onnxruntime", "openvino")

# DeepRacer navigation node: speeds v_max and v_max / 2 map to throttle 1.0 and 0.8.
SERVO_SPEED_POINTS = (1.0, 0.8)
# Tolerance on the network's output range (float32 rounding of softmax / clamp).
OUTPUT_TOLERANCE = 1e-3


class UnsafeOutput(ValueError):
    """The network produced NaN/inf or values outside its documented range."""


class DegenerateFrame(ValueError):
    """A camera frame no policy should drive on (tiny, uniform, saturated or noise); the message says which."""


@dataclass(frozen=True)
class FrameCheck:
    """Cheap statistics that tell a camera frame from a broken one, so the car stops instead of guessing.

    Computed on every second pixel of one channel (gray levels 0..255): a covered, black,
    white, blown-out or pure-noise frame fails; rendered and real track views pass (their
    neighbouring pixels differ by a few gray levels, those of random noise by ~85).
    """

    min_side: int = 16  # pixels: smaller frames are not a camera view
    min_std: float = 2.0  # gray levels: below, the frame is (nearly) uniform
    max_saturated: float = 0.9  # fraction of pixels at 0..2 or 253..255
    max_roughness: float = 40.0  # mean |difference| of horizontal neighbours: above, noise rather than a scene

    def __call__(self, image: np.ndarray) -> None:
        """Raise DegenerateFrame unless `image` ((H, W) or (H, W, 3) uint8) looks like a camera view."""
        image = np.asarray(image)
        height, width = image.shape[:2]
        if min(height, width) < self.min_side:
            raise DegenerateFrame(f"frame of {width}x{height} pixels (at least {self.min_side} each way expected)")
        plane = (image[::2, ::2, 1] if image.ndim == 3 else image[::2, ::2]).astype(np.int16)
        std = float(plane.std())
        if std < self.min_std:
            raise DegenerateFrame(f"uniform frame (gray level {plane.mean():.0f}, spread {std:.1f})")
        saturated = float(np.mean((plane <= 2) | (plane >= 253)))
        if saturated > self.max_saturated:
            raise DegenerateFrame(f"saturated frame ({100 * saturated:.0f} % of pixels black or white)")
        roughness = float(np.abs(np.diff(plane, axis=1)).mean())
        if roughness > self.max_roughness:
            raise DegenerateFrame(
                f"noise, not a scene (neighbouring pixels differ by {roughness:.0f} gray levels on average)"
            )


@dataclass(frozen=True)
class Command:
    """What the car should do now: steering (degrees, + = left) and speed (m/s)."""

    steering_deg: float
    speed: float

    @classmethod
    def stop(cls) -> Command:
        return cls(0.0, 0.0)

    @property
    def is_stop(self) -> bool:
        return self.speed == 0.0 and self.steering_deg == 0.0


def shipped_models() -> list[str]:
    """Names of the exported models that ship with the package (`models/<name>/model.onnx`)."""
    root = share_path("models")
    return sorted(p.parent.name for p in root.glob(f"*/{ONNX_NAME}")) if root.is_dir() else []


def resolve_model(model: str | os.PathLike) -> Path:
    """A model path as given, or a shipped model's export dir by name (`general` -> models/general)."""
    path = Path(model)
    if path.exists() or os.sep in str(model) or not str(model):
        return path
    shipped = share_path("models", str(model))
    return shipped if (shipped / ONNX_NAME).exists() else path


def load_policy(model: str | os.PathLike, runtime: str = "auto", threads: int = 1) -> ExportedPolicy:
    """An exported policy on its runtime: `model` is an export dir, its model.onnx or its model.xml.

    runtime "auto": OpenVINO for a .xml path or a dir holding only the IR, onnxruntime otherwise;
    "openvino" / "onnxruntime" ask for one (PolicyLoadError when its files or package are missing).
    """
    if runtime not in RUNTIMES:
        raise PolicyLoadError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    path = resolve_model(model)
    if not path.exists():
        raise PolicyLoadError(
            f"{path}: no such export dir, model.onnx or model.xml, and no shipped model of that name "
            f"(shipped: {', '.join(shipped_models()) or 'none'})"
        )
    if runtime == "auto":
        root = path.parent if path.is_file() else path
        only_ir = (root / OPENVINO_XML).exists() and not (root / ONNX_NAME).exists()
        runtime = "openvino" if path.suffix == ".xml" or only_ir else "onnxruntime"
    if runtime == "openvino":
        return OpenVinoPolicy(path.parent if path.suffix == ".onnx" else path, threads=threads)
    return OnnxPolicy(path.parent if path.suffix == ".xml" else path, threads=threads)


def check_outputs(outputs: np.ndarray, actions: ActionSpace) -> None:
    """Raise UnsafeOutput unless the outputs are finite and in range for the action space.

    Discrete exports output one probability per action (each in [0, 1]); continuous ones
    output (steering, speed) in [-1, 1].
    """
    out = np.asarray(outputs, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(out)):
        raise UnsafeOutput(f"the model output is not finite: {out.tolist()}")
    low, high = (0.0, 1.0) if actions.kind == "discrete" else (-1.0, 1.0)
    if np.any(out < low - OUTPUT_TOLERANCE) or np.any(out > high + OUTPUT_TOLERANCE):
        raise UnsafeOutput(f"the model output {out.tolist()} is outside [{low:g}, {high:g}]")


def command_from_outputs(outputs: np.ndarray, actions: ActionSpace, max_speed: float = math.inf) -> Command:
    """Network outputs for one frame -> a command (speed limited to max_speed); checks them first."""
    check_outputs(outputs, actions)
    out = np.asarray(outputs).reshape(-1)
    action = int(np.argmax(out)) if actions.kind == "discrete" else out.reshape(1, 2)
    steer, speed = actions.to_commands(np.array([action]) if actions.kind == "discrete" else action)
    return Command(float(steer[0]), float(min(speed[0], max_speed)))


class PolicyRunner:
    """An exported policy with its frame stack: images in, checked commands out. A policy of several
    sensors (`policy.sensors`) takes each sensor's data by name (`act_sensors`), one stack per sensor."""

    def __init__(
        self, policy: ExportedPolicy, max_speed: float = math.inf, frame_check: FrameCheck | None = FrameCheck()
    ):
        self.policy = policy
        self.actions = policy.actions
        self.stack = FrameStack(policy.observation)
        self.stacks = {
            s.name: FrameStack(policy.observation, space.shape, space.dtype)
            for s in policy.sensors
            for space in [s.space(policy.observation)]
        }
        self.max_speed = max_speed
        self.frame_check = frame_check  # None: drive on any frame

    def observe(self, image: np.ndarray) -> np.ndarray:
        """The network input (C, h, w) uint8 after this camera image (also pushed on the stack)."""
        return self.stack.push(observation_from_image(image, self.policy.observation))

    def outputs(self, observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        if isinstance(observation, dict):
            return self.policy.outputs({k: v[None] for k, v in observation.items()})[0]
        return self.policy.outputs(observation[None])[0]

    def observe_sensors(self, data: dict[str, object]) -> dict[str, np.ndarray]:
        """The network inputs by input name after one reading of every sensor (`data` by sensor name: a
        camera image, the stereo pair (left, right), a scan's 64 ranges in m); pushed on their stacks."""
        missing = [s.name for s in self.policy.sensors if s.name not in data]
        if missing:
            raise ValueError(f"no data of sensor(s) {', '.join(missing)}")
        return {
            s.input_name: self.stacks[s.name].push(s.frame(data[s.name], self.policy.observation))
            for s in self.policy.sensors
        }

    def act_sensors(self, data: dict[str, object]) -> Command:
        """The command for one reading of every sensor; DegenerateFrame for a camera image not to drive on."""
        if self.frame_check is not None:
            for s in self.policy.sensors:
                if s.is_camera:
                    images = data.get(s.name)
                    for image in images if isinstance(images, (tuple, list)) else [images]:
                        if image is not None:
                            self.frame_check(image)
        observation = self.observe_sensors(data)
        if len(self.policy.sensors) == 1:
            return self.decide(next(iter(observation.values())))
        return self.decide(observation)

    def decide(self, observation: np.ndarray | dict[str, np.ndarray]) -> Command:
        return command_from_outputs(self.outputs(observation), self.actions, self.max_speed)

    def act(self, image: np.ndarray) -> Command:
        """The command for a camera image; DegenerateFrame (a ValueError) for a frame not to drive on."""
        if self.frame_check is not None:
            self.frame_check(image)
        return self.decide(self.observe(image))

    def reset(self) -> None:
        """Forget the stacked frames (after a pause the old frames are stale)."""
        self.stack.clear()
        for stack in self.stacks.values():
            stack.clear()


def twist(command: Command, wheelbase: float) -> tuple[float, float]:
    """(linear.x m/s, angular.z rad/s) of the topic contract's /cmd_vel for a command."""
    v = float(command.speed)
    return v, v * math.tan(math.radians(command.steering_deg)) / wheelbase


@dataclass(frozen=True)
class ServoMapping:
    """Commands -> DeepRacer ServoCtrlMsg (angle, throttle), as the car's navigation node maps them."""

    max_steering_deg: float  # the action space's largest |steering|: angle 1.0
    max_speed: float  # the action space's top speed: throttle 1.0 (times throttle_scale)
    throttle_scale: float = 1.0

    @classmethod
    def for_actions(cls, actions: ActionSpace, throttle_scale: float = 1.0) -> ServoMapping:
        if actions.kind == "discrete":
            steer = float(np.max(np.abs(actions.actions[:, 0])))
        else:
            steer = float(max(abs(actions.steering_range[0]), abs(actions.steering_range[1])))
        if not math.isfinite(throttle_scale) or abs(throttle_scale) > 1.0:
            raise ValueError(f"throttle_scale must be within [-1, 1], got {throttle_scale}")
        return cls(max(steer, 1e-6), actions.max_speed, float(throttle_scale))

    def throttle(self, speed: float) -> float:
        full, half = SERVO_SPEED_POINTS
        a = (2.0 * full - 4.0 * half) / self.max_speed**2
        b = (4.0 * half - full) / self.max_speed
        return float(np.clip(self.throttle_scale * (a * speed * speed + b * speed), -1.0, 1.0))

    def __call__(self, command: Command) -> tuple[float, float]:
        """(angle, throttle), each in [-1, 1]; a stop is (0, 0)."""
        angle = float(np.clip(command.steering_deg / self.max_steering_deg, -1.0, 1.0))
        return angle, self.throttle(command.speed)
