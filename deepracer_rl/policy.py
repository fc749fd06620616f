"""An exported policy: its files (model.onnx, model_metadata.json, SHA256SUMS; model.xml + model.bin,
the OpenVINO IR, with `--format openvino`) and running it.

`deepracer-rl export` writes these files; `OnnxPolicy` loads and checks them and runs the
network with onnxruntime, `OpenVinoPolicy` the IR with the OpenVINO runtime (the one the
DeepRacer's own stack uses), both on observations made by `observation.observation_from_image`.
The IR carries the metadata and the action list's digest in its rt_info too
(`IR_RT_INFO`), so an IR next to a metadata file edited after export is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .action_space import ActionSpace, MetadataError
from .observation import ObservationSpec
from .sensors import Sensor, SensorError, metadata_sensors

ONNX_NAME = "model.onnx"
METADATA_NAME = "model_metadata.json"
CHECKSUMS_NAME = "SHA256SUMS"
OPENVINO_XML = "model.xml"  # OpenVINO IR: the graph; its weights are OPENVINO_BIN beside it
OPENVINO_BIN = "model.bin"
IR_RT_INFO = "deepracer_rl"  # rt_info section of the IR: model_metadata (JSON text) and action_space_sha256


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


def load_export_metadata(root: Path) -> tuple[dict, ActionSpace, ObservationSpec]:
    """(metadata dict, actions, observation) of an export dir, checked: JSON, the action list's digest,
    the observation field and SHA256SUMS; PolicyLoadError names the file."""
    meta_path = root / METADATA_NAME
    if not meta_path.exists():
        raise PolicyLoadError(f"{meta_path}: missing (expected an export dir from deepracer-rl export)")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PolicyLoadError(f"{meta_path}: not valid JSON ({exc})") from None
    try:
        actions = ActionSpace.from_metadata(metadata, str(meta_path))
    except MetadataError as exc:
        raise PolicyLoadError(str(exc)) from None
    recorded = metadata.get("action_space_sha256")
    if recorded is not None and recorded != actions.digest():
        raise PolicyLoadError(
            f"{meta_path}: the action space was edited after export (reordered or changed); the network's "
            "outputs would drive the wrong actions: export the run again"
        )
    observation = observation_spec_from_metadata(metadata, str(meta_path))
    try:
        verify_checksums(root)
    except ValueError as exc:
        raise PolicyLoadError(str(exc)) from None
    return metadata, actions, observation


def _check_io(
    model_path: Path,
    shape: list,
    outputs: object,
    observation: ObservationSpec,
    actions: ActionSpace,
    sensor: Sensor | None = None,
) -> None:
    """The one input's shape (that of `sensor`, default the front camera's) and the outputs' count."""
    expected = (
        [observation.channels, observation.height, observation.width]
        if sensor is None
        else list(sensor.space(observation).shape)
    )
    if list(shape[1:]) != expected:
        raise PolicyLoadError(f"{model_path}: input shape {shape} does not match the metadata's observation {expected}")
    _check_outputs(model_path, outputs, actions)


def _check_outputs(model_path: Path, outputs: object, actions: ActionSpace) -> None:
    wanted = len(actions.actions) if actions.kind == "discrete" else 2
    if outputs != wanted:
        raise PolicyLoadError(f"{model_path}: {outputs} outputs, but the action space needs {wanted}")


def export_sensors(metadata: dict, actions: ActionSpace, where: str) -> tuple[Sensor, ...]:
    """The sensors an export reads (its metadata's "sensor" and "lidar_config"); PolicyLoadError names the file."""
    try:
        return metadata_sensors(actions, where)
    except SensorError as exc:
        raise PolicyLoadError(str(exc)) from None


def batch_inputs(observations: dict[str, np.ndarray], ranks: dict[str, int]) -> dict[str, np.ndarray]:
    """A several-input model's feed: float32 per input name (`ranks`: each input's rank with the batch
    axis), one car's input made a batch of one."""
    feed = {}
    for name, rank in ranks.items():
        value = np.asarray(observations[name], dtype=np.float32)
        feed[name] = value[None] if value.ndim == rank - 1 else value
    return feed


def _ir_input_name(port: object, sensors: tuple[Sensor, ...]) -> str:
    """An IR input's name: the sensor input name among its tensor names, else any of them."""
    names = port.get_names()  # type: ignore[attr-defined]
    return next((s.input_name for s in sensors if s.input_name in names), port.get_any_name())  # type: ignore[attr-defined]


class ExportedPolicy:
    """What both runtimes offer: root (the export dir), metadata, actions, observation, sensors (the
    inputs, by `Sensor.input_name`), runtime, outputs, predict."""

    runtime = ""
    root: Path
    metadata: dict
    actions: ActionSpace
    observation: ObservationSpec
    sensors: tuple[Sensor, ...] = ()

    def outputs(self, observations: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """Raw network outputs for (N, C, H, W) float frames 0..255 (several sensors: a dict by input name)."""
        raise NotImplementedError

    def predict(
        self, observations: np.ndarray | dict[str, np.ndarray], deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        """SB3-style: action indices (discrete) or (N, 2) actions in [-1, 1]."""
        out = self.outputs(observations)
        if self.actions.kind == "discrete":
            return np.argmax(out, axis=-1), None
        return out, None


class OnnxPolicy(ExportedPolicy):
    """An exported policy (model.onnx + model_metadata.json) run with onnxruntime."""

    runtime = "onnxruntime"

    def __init__(self, export_dir: str | os.PathLike, threads: int = 1):
        root = Path(export_dir)
        if root.is_file() and root.suffix == ".onnx":
            root = root.parent
        self.root = root
        model_path = root / ONNX_NAME
        if not model_path.exists():
            raise PolicyLoadError(f"{model_path}: missing (expected an export dir from deepracer-rl export)")
        self.metadata, self.actions, self.observation = load_export_metadata(root)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for corrupt graphs
            raise PolicyLoadError(f"{model_path}: not a loadable ONNX model ({exc})") from None
        self.sensors = export_sensors(self.metadata, self.actions, str(root / METADATA_NAME))
        model_inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()[0].shape[-1]
        if len(self.sensors) == 1:
            _check_io(model_path, model_inputs[0].shape, outputs, self.observation, self.actions, self.sensors[0])
        else:
            shapes = {i.name: list(i.shape[1:]) for i in model_inputs}
            wanted = {s.input_name: list(s.space(self.observation).shape) for s in self.sensors}
            if shapes != wanted:
                raise PolicyLoadError(
                    f"{model_path}: inputs {shapes} do not match the sensors of {root / METADATA_NAME}: {wanted}"
                )
            _check_outputs(model_path, outputs, self.actions)
        self.input_name = model_inputs[0].name
        self.input_names = tuple(i.name for i in model_inputs)
        self._input_ranks = {i.name: len(i.shape) for i in model_inputs}

    def outputs(self, observations: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """Raw network outputs for (N, C, H, W) frames, or (several sensors) a dict of inputs by name."""
        if isinstance(observations, dict):
            return self.session.run(None, batch_inputs(observations, self._input_ranks))[0]
        frames = np.asarray(observations, dtype=np.float32)
        if frames.ndim == 3:
            frames = frames[None]
        return self.session.run(None, {self.input_name: frames})[0]


class OpenVinoPolicy(ExportedPolicy):
    """An exported policy's OpenVINO IR (model.xml + model.bin beside model_metadata.json) run with OpenVINO.

    float32 inference (no bf16/fp16 hints), so it matches the ONNX graph it was converted from.
    """

    runtime = "openvino"

    def __init__(self, export_dir: str | os.PathLike, threads: int = 1):
        root = Path(export_dir)
        if root.is_file() and root.suffix == ".xml":
            root = root.parent
        self.root = root
        model_path = root / OPENVINO_XML
        for path in (model_path, root / OPENVINO_BIN):
            if not path.exists():
                raise PolicyLoadError(
                    f"{path}: missing (expected an export dir from deepracer-rl export --format openvino)"
                )
        self.metadata, self.actions, self.observation = load_export_metadata(root)
        self.sensors = export_sensors(self.metadata, self.actions, str(root / METADATA_NAME))
        try:
            import openvino as ov
        except ImportError:
            raise PolicyLoadError(
                f"{model_path}: the openvino package is not installed (pip install openvino)"
            ) from None
        core = ov.Core()
        try:
            model = core.read_model(str(model_path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own for corrupt IR
            raise PolicyLoadError(f"{model_path}: not a loadable OpenVINO IR ({exc})") from None
        key = [IR_RT_INFO, "action_space_sha256"]
        embedded = model.get_rt_info(key).astype(str) if model.has_rt_info(key) else None
        if embedded != self.actions.digest():
            raise PolicyLoadError(
                f"{model_path}: the IR was exported for action list {embedded or '(none recorded)'}, but "
                f"{root / METADATA_NAME} holds {self.actions.digest()}: export the run again"
            )
        shapes = {
            _ir_input_name(i, self.sensors): [d.get_length() if d.is_static else None for d in i.get_partial_shape()]
            for i in model.inputs
        }
        out_shape = model.outputs[0].get_partial_shape()
        outputs = out_shape[len(out_shape) - 1].get_length() if out_shape[len(out_shape) - 1].is_static else None
        if len(self.sensors) == 1:
            _check_io(model_path, next(iter(shapes.values())), outputs, self.observation, self.actions, self.sensors[0])
        else:  # one input per sensor, named as in the ONNX graph (Sensor.input_name)
            found = {name: shape[1:] for name, shape in shapes.items()}
            wanted = {s.input_name: list(s.space(self.observation).shape) for s in self.sensors}
            if found != wanted:
                raise PolicyLoadError(
                    f"{model_path}: inputs {found} do not match the sensors of {root / METADATA_NAME}: {wanted}"
                )
            _check_outputs(model_path, outputs, self.actions)
        self.input_name = next(iter(shapes))
        self.input_names = tuple(shapes)
        self._input_ranks = {name: len(shape) for name, shape in shapes.items()}
        config = {
            "INFERENCE_NUM_THREADS": int(threads),
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def outputs(self, observations: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """Raw network outputs for (N, C, H, W) frames, or (several sensors) a dict of inputs by name."""
        if isinstance(observations, dict):
            return np.array(self.request.infer(batch_inputs(observations, self._input_ranks))[0])
        frames = np.asarray(observations, dtype=np.float32)
        if frames.ndim == 3:
            frames = frames[None]
        return np.array(self.request.infer({0: frames})[0])
