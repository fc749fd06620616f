"""`deepracer-rl export`: a trained policy as `model.onnx` + `model_metadata.json` (+ checksums).

With `--format openvino` also `model.xml` + `model.bin`: the OpenVINO IR converted from that
ONNX graph (float32 weights), the metadata and action digest in its rt_info, and checked
against the ONNX graph and the torch policy on sample observations (rendered track views and
random frames; with other sensors than the front camera, the race's own observations at start
poses and random values of each input) before it is kept: outputs further apart than
`PARITY_TOLERANCE` fail the export. A several-input graph converts with its inputs named as in ONNX.

The ONNX graph takes float32 frames (N, C, H, W) with values 0..255, exactly the env's
observation (with several sensors: one named input per sensor, `Sensor.input_name`, listed in the
metadata's `inputs`; the lidar's float values as the env gives them), and outputs `action`:
per-action probabilities for a discrete space, or the deterministic (steering, speed) in
[-1, 1] for a continuous one. The preprocessing that makes those frames from a camera image is
`observation.observation_from_image`, described in the metadata's `observation` field, so the
inference node feeds the network what it saw in training.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .action_space import ActionSpace
from .algorithms import load_model
from .networks import DEEPRACER_NETWORK_NAMES
from .observation import ObservationSpec
from .policy import (
    CHECKSUMS_NAME,
    IR_RT_INFO,
    METADATA_NAME,
    ONNX_NAME,
    OPENVINO_BIN,
    OPENVINO_XML,
    OnnxPolicy,
    OpenVinoPolicy,
    PolicyLoadError,
    sha256,
)
from .run_tracks import track_path
from .rundir import find_run
from .sensors import metadata_sensors

FORMATS = ("onnx", "openvino")  # ONNX is always written; openvino adds the IR converted from it
Samples = np.ndarray | dict[str, np.ndarray]  # parity samples: (N, C, H, W) frames, or inputs by name
PARITY_TOLERANCE = 1e-4  # max |difference| of outputs (probabilities or actions in [-1, 1]) between runtimes


class ExportError(ValueError):
    """The export cannot be made or failed its parity check; the message says which file and why."""


def policy_module(model: Any, input_names: tuple[str, ...] | None = None) -> Any:
    """A torch module: frames (N, C, H, W) float 0..255 -> action probabilities or actions; with
    `input_names` (several sensors) one tensor per input, in that order, as the Dict observation."""
    import torch
    from gymnasium import spaces
    from torch import nn

    policy = model.policy.to("cpu").eval()
    discrete = isinstance(model.action_space, spaces.Discrete)

    class ExportedPolicy(nn.Module):
        def __init__(self):
            super().__init__()
            self.policy = policy

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            # SB3 scales image observations by 1/255 itself (preprocess_obs), as in training.
            frames: Any = inputs[0] if input_names is None else dict(zip(input_names, inputs))
            if hasattr(self.policy, "actor"):  # SAC: squashed deterministic action
                return self.policy.actor(frames, deterministic=True)
            features = self.policy.extract_features(frames)
            latent_pi, _ = self.policy.mlp_extractor(features)
            out = self.policy.action_net(latent_pi)
            return torch.softmax(out, dim=-1) if discrete else torch.clamp(out, -1.0, 1.0)

    return ExportedPolicy().eval()


def export_policy(
    model: Any,
    observation: ObservationSpec,
    actions: ActionSpace,
    out_dir: str | os.PathLike,
    network: str | None = None,
    formats: tuple[str, ...] = ("onnx",),
    samples: Samples | None = None,
) -> Path:
    """Write model.onnx, model_metadata.json and SHA256SUMS into out_dir (+ model.xml/.bin for "openvino").

    The ONNX input is named after the sensor (`sensors.Sensor.input_name`); `network` (a name
    of `networks.NETWORKS`) sets the metadata's DeepRacer `neural_network`. `samples`: (N, C, H, W)
    observations, or a dict of inputs by name, for the IR's parity check (default: `random_inputs`).
    The files are written into a staging folder inside out_dir and renamed into place, SHA256SUMS
    last: a full disk or a failed check leaves the previous export as it was (ExportError names the
    file and the reason).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ExportError(f"unknown export format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    staging: Path | None = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
        _write_export(staging, model, observation, actions, network, formats, samples, shown=out)
        for name in (ONNX_NAME, OPENVINO_XML, OPENVINO_BIN, METADATA_NAME, CHECKSUMS_NAME):
            if (staging / name).exists():
                os.replace(staging / name, out / name)
            elif name in (OPENVINO_XML, OPENVINO_BIN):  # an IR of an earlier export would not match this graph
                (out / name).unlink(missing_ok=True)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise ExportError(
            f"{out}: the export could not be written ({exc.strerror or exc}{where}; a full disk?); "
            "the previous export there, if any, is unchanged"
        ) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _write_export(
    out: Path,
    model: Any,
    observation: ObservationSpec,
    actions: ActionSpace,
    network: str | None,
    formats: tuple[str, ...],
    samples: Samples | None,
    shown: Path,
) -> None:
    """The files of `export_policy`, written into the (empty) staging folder `out` (`shown` in messages)."""
    import torch

    sensors = metadata_sensors(actions)
    names = [sensor.input_name for sensor in sensors]
    several = len(sensors) > 1
    module = policy_module(model, tuple(names) if several else None)
    dummies = tuple(torch.zeros((1, *sensor.space(observation).shape)) for sensor in sensors)
    with warnings.catch_warnings():  # the TorchScript exporter needs no extra packages; it warns
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            dummies,
            str(out / ONNX_NAME),
            input_names=names,
            output_names=["action"],
            dynamic_axes={**{name: {0: "batch"} for name in names}, "action": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    metadata = actions.to_metadata()
    metadata["action_space_sha256"] = actions.digest()  # the inference side refuses a list edited after export
    if network is not None:
        metadata["neural_network"] = DEEPRACER_NETWORK_NAMES[network]
    metadata["observation"] = {
        "width": observation.width,
        "height": observation.height,
        "grayscale": observation.grayscale,
        "frame_stack": observation.frame_stack,
        "input": "float32 NCHW, 0..255, from observation.observation_from_image",
        "output": "probabilities per action" if actions.kind == "discrete" else "steering, speed in [-1, 1]",
    }
    if tuple(actions.sensor) != ("FRONT_FACING_CAMERA",):  # the ONNX inputs, one per sensor, by name
        metadata["inputs"] = [
            {"name": s.input_name, "sensor": s.name, "shape": list(s.space(observation).shape), "dtype": "float32"}
            for s in sensors
        ]
    (out / METADATA_NAME).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    if "openvino" in formats:
        write_openvino(out, metadata, names)
        _write_checksums(out)  # check_parity loads the IR through the checked loader
        if samples is None:
            samples = random_inputs(actions, observation, 16, np.random.default_rng(0))
        check_parity(out, samples, torch_outputs(model, samples), shown=shown)
    _write_checksums(out)


def _write_checksums(out: Path) -> None:
    names = [n for n in (ONNX_NAME, METADATA_NAME, OPENVINO_XML, OPENVINO_BIN) if (out / n).exists()]
    sums = "".join(f"{sha256(out / name)}  {name}\n" for name in names)
    (out / CHECKSUMS_NAME).write_text(sums, encoding="utf-8")


def write_openvino(out: Path, metadata: dict, input_names: list[str]) -> Path:
    """Convert out/model.onnx to the OpenVINO IR out/model.xml + model.bin (float32), metadata in its rt_info,
    its inputs named `input_names` (the ONNX graph's, in order)."""
    try:
        import openvino as ov
    except ImportError:
        raise ExportError("--format openvino needs the openvino package (pip install openvino)") from None
    try:
        model = ov.convert_model(str(out / ONNX_NAME))
    except Exception as exc:  # the converter raises its own error types
        raise ExportError(f"{out / ONNX_NAME}: OpenVINO cannot convert it ({exc})") from None
    for port, name in zip(model.inputs, input_names):
        port.get_tensor().set_names({name})  # the ONNX input's name alone (the converter adds a Cast's)
    model.set_rt_info(json.dumps(metadata, sort_keys=True), [IR_RT_INFO, "model_metadata"])
    model.set_rt_info(metadata["action_space_sha256"], [IR_RT_INFO, "action_space_sha256"])
    tmp = out / ("model.tmp" + Path(OPENVINO_XML).suffix)
    ov.save_model(model, str(tmp), compress_to_fp16=False)  # fp16 weights would break parity
    os.replace(tmp.with_suffix(Path(OPENVINO_BIN).suffix), out / OPENVINO_BIN)
    os.replace(tmp, out / OPENVINO_XML)
    return out / OPENVINO_XML


def check_parity(
    out: Path,
    samples: Samples,
    reference: np.ndarray,
    tolerance: float = PARITY_TOLERANCE,
    shown: Path | None = None,
) -> float:
    """Largest |difference| between the IR's, the ONNX graph's and the reference (torch) outputs on `samples`
    (frames, or a dict of inputs by name); ExportError when above `tolerance` (naming the file in `shown`,
    default `out`)."""
    samples = as_float32(samples)
    count = len(next(iter(samples.values()))) if isinstance(samples, dict) else len(samples)
    try:
        ir = OpenVinoPolicy(out).outputs(samples)
        onnx = OnnxPolicy(out).outputs(samples)
    except PolicyLoadError as exc:
        raise ExportError(str(exc)) from None
    worst = 0.0
    for name, outputs in (("OpenVINO IR", ir), ("ONNX", onnx)):
        difference = float(np.max(np.abs(outputs - reference))) if outputs.shape == reference.shape else np.inf
        if not difference <= tolerance:
            raise ExportError(
                f"{(shown or out) / (OPENVINO_XML if name != 'ONNX' else ONNX_NAME)}: the {name} outputs differ "
                f"from the torch policy's by {difference:.3g} on {count} sample observations (tolerance "
                f"{tolerance:g}); nothing of this export was kept"
            )
        worst = max(worst, difference)
    return worst


def torch_outputs(model: Any, frames: Samples) -> np.ndarray:
    """What the exported graph should output, from SB3's own policy API (for parity checks); `frames`:
    (N, C, H, W) frames or a dict of inputs by name."""
    import torch
    from gymnasium import spaces

    policy = model.policy.to("cpu").eval()
    frames = as_float32(frames)
    obs: Any = (
        {k: torch.as_tensor(v) for k, v in frames.items()} if isinstance(frames, dict) else torch.as_tensor(frames)
    )
    with torch.no_grad():
        if hasattr(policy, "actor"):  # SAC
            return policy._predict(obs, deterministic=True).numpy()
        if isinstance(model.action_space, spaces.Discrete):
            return policy.get_distribution(obs).distribution.probs.numpy()
        return torch.clamp(policy.get_distribution(obs).distribution.mean, -1.0, 1.0).numpy()


def sample_observations(observation: ObservationSpec, track: str, count: int = 16, seed: int = 0) -> np.ndarray:
    """(count, C, H, W) float32 parity samples: half camera views along `track` (through the one
    preprocessing), half random frames."""
    from .camera import CameraRenderer, example_poses
    from .car import CarSpec
    from .observation import FrameStack, observation_from_image
    from .track import Track

    loaded = Track.load(track)
    camera = CarSpec.from_urdf().camera
    renderer = CameraRenderer(loaded, camera, camera.width, camera.height, grayscale=False)
    views = []
    for image in renderer.render(example_poses(loaded))[: count // 2]:
        views.append(FrameStack(observation).push(observation_from_image(image, observation)))
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (count - len(views), *observation.shape))
    return np.concatenate([np.array(views, dtype=np.float32), noise.astype(np.float32)])


def as_float32(samples: Samples) -> Samples:
    """Samples as the graph takes them: float32, per input name of a dict."""
    if isinstance(samples, dict):
        return {k: np.asarray(v, dtype=np.float32) for k, v in samples.items()}
    return np.asarray(samples, dtype=np.float32)


def random_inputs(actions: ActionSpace, observation: ObservationSpec, count: int, rng: np.random.Generator) -> Samples:
    """`count` random observations of the model's inputs, float32: a camera's frames 0..255 (integers),
    a lidar's values uniform in its range; a dict by input name for several sensors."""
    inputs = {}
    for sensor in metadata_sensors(actions):
        space = sensor.space(observation)
        if np.issubdtype(space.dtype, np.integer):
            values = rng.integers(0, 256, (count, *space.shape))
        else:
            values = rng.uniform(space.low, space.high, (count, *space.shape))
        inputs[sensor.input_name] = values.astype(np.float32)
    return inputs if len(inputs) > 1 else next(iter(inputs.values()))


def sample_inputs(
    actions: ActionSpace, observation: ObservationSpec, track: str, count: int = 16, seed: int = 0
) -> Samples:
    """Parity samples of the model's inputs: the front camera's `sample_observations`; other sensors:
    half the in-process race's observations (its sensors) of cars at seeded start poses on `track`,
    half `random_inputs` (a dict by input name for several sensors)."""
    from .race import RaceCore

    if tuple(actions.sensor) == ("FRONT_FACING_CAMERA",):
        return sample_observations(observation, track, count, seed)
    race = RaceCore.create(track, n_cars=count // 2, metadata=actions, observation=observation, seed=seed)
    try:
        race.reset_cars(np.arange(count // 2))
        views = as_float32(race.observation())
    finally:
        race.close()
    noise = random_inputs(actions, observation, count - count // 2, np.random.default_rng(seed))
    if isinstance(views, dict):
        return {k: np.concatenate([views[k], noise[k]]) for k in views}  # type: ignore[index]
    return np.concatenate([views, noise])  # type: ignore[list-item]


def export_run(
    run_or_model: str | os.PathLike, out_dir: str | os.PathLike | None = None, formats: tuple[str, ...] = ("onnx",)
) -> Path:
    """Export a run's best model (or a given model .zip of a run) to out_dir (default RUN/export);
    formats: "onnx" and/or "openvino" (see the module docstring)."""
    run, path = find_run(run_or_model)
    config = run.load_config()
    actions = run.load_actions(config)  # refuses an action list reordered or edited after training
    model = load_model(path, algo=config.algo)
    observation = config.observation()
    samples = sample_inputs(actions, observation, track_path(config.track, run)) if "openvino" in formats else None
    out = out_dir or run.export_dir
    return export_policy(model, observation, actions, out, network=config.network, formats=formats, samples=samples)
