"""An exported policy: its files (model.onnx, model_metadata.json, SHA256SUMS) and running it.

`deepracer-rl export` writes these files; `OnnxPolicy` loads and checks them and runs the
network with onnxruntime on observations made by `observation.observation_from_image`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .action_space import ActionSpace, MetadataError
from .observation import ObservationSpec

ONNX_NAME = "model.onnx"
METADATA_NAME = "model_metadata.json"
CHECKSUMS_NAME = "SHA256SUMS"


class PolicyLoadError(ValueError):
    """An exported model or its metadata is missing or malformed."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_checksums(export_dir: str | os.PathLike) -> None:
    """Raise ValueError naming the file whose content does not match SHA256SUMS."""
    root = Path(export_dir)
    sums = root / CHECKSUMS_NAME
    if not sums.exists():
        return
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, name = line.split(None, 1)
        if sha256(root / name.strip()) != digest:
            raise ValueError(f"{root / name.strip()}: checksum mismatch with {sums} (file changed or corrupt)")


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
        recorded = metadata.get("action_space_sha256")
        if recorded is not None and recorded != self.actions.digest():
            raise PolicyLoadError(
                f"{meta_path}: the action space was edited after export (reordered or changed); the network's "
                "outputs would drive the wrong actions: export the run again"
            )
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

    def predict(self, observations: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """SB3-style: action indices (discrete) or (N, 2) actions in [-1, 1]."""
        out = self.outputs(observations)
        if self.actions.kind == "discrete":
            return np.argmax(out, axis=-1), None
        return out, None
