"""Running a trained policy: the shared camera preprocessing and the exported ONNX policy.

`observation_from_image` is the one function that turns a camera image into the policy's
input frame; the env (via the renderer at the same size) and the inference node both match it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .action_space import ActionSpace, MetadataError
from .camera import to_observation
from .env import ObservationSpec, RaceCore
from .evaluate import Driver, policy_driver
from .export import METADATA_NAME, ONNX_NAME, verify_checksums


class PolicyLoadError(ValueError):
    """An exported model or its metadata is missing or malformed."""


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


class FrameStack:
    """Keeps the last k frames as the policy input (C*k, h, w), like the env's frame stack."""

    def __init__(self, spec: ObservationSpec):
        self.spec = spec
        self.stack: np.ndarray | None = None

    def push(self, frame: np.ndarray) -> np.ndarray:
        if self.stack is None:
            self.stack = np.concatenate([frame] * self.spec.frame_stack, axis=0)
        else:
            per = frame.shape[0]
            self.stack = np.concatenate([self.stack[per:], frame], axis=0)
        return self.stack

    def clear(self) -> None:
        self.stack = None


def observation_spec_from_metadata(metadata: dict, where: str) -> ObservationSpec:
    spec = metadata.get("observation")
    if not isinstance(spec, dict):
        raise PolicyLoadError(f"{where}: missing field 'observation' (written by deepracer-rl export)")
    try:
        return ObservationSpec(
            int(spec["width"]), int(spec["height"]), bool(spec["grayscale"]), int(spec.get("frame_stack", 1))
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyLoadError(f"{where}: invalid field 'observation' ({exc!r})") from None


class OnnxPolicy:
    """An exported policy (model.onnx + model_metadata.json) run with onnxruntime."""

    def __init__(self, export_dir: str | os.PathLike, threads: int = 1):
        root = Path(export_dir)
        if root.is_file() and root.suffix == ".onnx":
            root = root.parent
        self.root = root
        model_path, meta_path = root / ONNX_NAME, root / METADATA_NAME
        for path in (model_path, meta_path):
            if not path.exists():
                raise PolicyLoadError(f"{path}: missing (expected an export dir from deepracer-rl export)")
        try:
            metadata = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise PolicyLoadError(f"{meta_path}: not valid JSON ({exc})") from None
        try:
            self.actions = ActionSpace.from_metadata(metadata, str(meta_path))
        except MetadataError as exc:
            raise PolicyLoadError(str(exc)) from None
        self.observation = observation_spec_from_metadata(metadata, str(meta_path))
        try:
            verify_checksums(root)
        except ValueError as exc:
            raise PolicyLoadError(str(exc)) from None
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for corrupt graphs
            raise PolicyLoadError(f"{model_path}: not a loadable ONNX model ({exc})") from None
        model_input = self.session.get_inputs()[0]
        expected = [self.observation.channels, self.observation.height, self.observation.width]
        if list(model_input.shape[1:]) != expected:
            raise PolicyLoadError(
                f"{model_path}: input shape {model_input.shape} does not match the metadata's observation {expected}"
            )
        outputs = self.session.get_outputs()[0].shape[-1]
        wanted = len(self.actions.actions) if self.actions.kind == "discrete" else 2
        if outputs != wanted:
            raise PolicyLoadError(f"{model_path}: {outputs} outputs, but the action space needs {wanted}")
        self.input_name = model_input.name

    def outputs(self, observations: np.ndarray) -> np.ndarray:
        """Raw network outputs for (N, C, H, W) frames."""
        frames = np.asarray(observations, dtype=np.float32)
        if frames.ndim == 3:
            frames = frames[None]
        return self.session.run(None, {self.input_name: frames})[0]

    def predict(self, observations: np.ndarray, deterministic: bool = True):
        """SB3-style: action indices (discrete) or (N, 2) actions in [-1, 1]."""
        out = self.outputs(observations)
        if self.actions.kind == "discrete":
            return np.argmax(out, axis=-1), None
        return out, None


def load_for_evaluation(model_arg: str, track: str | None) -> tuple[RaceCore, Driver, str]:
    """A race core and driver for `deepracer-rl evaluate RUN_OR_MODEL`."""
    path = Path(model_arg)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run directory, model .zip or export dir")
    if (path / ONNX_NAME).exists() or path.suffix == ".onnx":
        policy = OnnxPolicy(path)
        core = RaceCore(
            track=track or "reinvent_base", n_cars=1, metadata=policy.actions, observation=policy.observation
        )
        return core, policy_driver(policy), f"{policy.root} (onnx)"
    from .train import BEST, CHECKPOINT, TrainConfig, core_kwargs, load_model

    run = path if path.is_dir() else path.parent
    if not (run / "config.json").exists():
        raise FileNotFoundError(f"{run}: no config.json (expected a run directory of deepracer-rl train)")
    config = TrainConfig.load(run / "config.json")
    if path.is_dir():
        path = run / BEST if (run / BEST).exists() else run / CHECKPOINT
    model = load_model(path)
    kwargs = core_kwargs(config, run)
    kwargs["track"] = track or config.track
    return RaceCore(n_cars=1, **kwargs), policy_driver(model), str(path)
