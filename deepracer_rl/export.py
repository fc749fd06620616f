"""`deepracer-rl export`: a trained policy as `model.onnx` + `model_metadata.json` (+ checksums).

The ONNX graph takes float32 frames (N, C, H, W) with values 0..255, exactly the env's
observation, and outputs `action`: per-action probabilities for a discrete space, or the
deterministic (steering, speed) in [-1, 1] for a continuous one. The preprocessing that
makes those frames from a camera image is `observation.observation_from_image`, described in
the metadata's `observation` field, so the inference node feeds the network what it saw in
training.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .action_space import ActionSpace
from .algorithms import load_model
from .networks import DEEPRACER_NETWORK_NAMES
from .observation import ObservationSpec
from .policy import CHECKSUMS_NAME, METADATA_NAME, ONNX_NAME, sha256
from .rundir import find_run
from .sensors import sensors_for


def policy_module(model: Any) -> Any:
    """A torch module: frames (N, C, H, W) float 0..255 -> action probabilities or actions."""
    import torch
    from gymnasium import spaces
    from torch import nn

    policy = model.policy.to("cpu").eval()
    discrete = isinstance(model.action_space, spaces.Discrete)

    class ExportedPolicy(nn.Module):
        def __init__(self):
            super().__init__()
            self.policy = policy

        def forward(self, frames: torch.Tensor) -> torch.Tensor:
            # SB3 scales image observations by 1/255 itself (preprocess_obs), as in training.
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
) -> Path:
    """Write model.onnx, model_metadata.json and SHA256SUMS into out_dir.

    The ONNX input is named after the sensor (`sensors.Sensor.input_name`); `network` (a name
    of `networks.NETWORKS`) sets the metadata's DeepRacer `neural_network`.
    """
    import torch

    (sensor,) = sensors_for(actions.sensor)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = policy_module(model)
    dummy = torch.zeros((1, observation.channels, observation.height, observation.width))
    tmp = out / (ONNX_NAME + ".tmp")
    with warnings.catch_warnings():  # the TorchScript exporter needs no extra packages; it warns
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (dummy,),
            str(tmp),
            input_names=[sensor.input_name],
            output_names=["action"],
            dynamic_axes={sensor.input_name: {0: "batch"}, "action": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, out / ONNX_NAME)
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
    (out / METADATA_NAME).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    sums = "".join(f"{sha256(out / name)}  {name}\n" for name in (ONNX_NAME, METADATA_NAME))
    (out / CHECKSUMS_NAME).write_text(sums, encoding="utf-8")
    return out


def torch_outputs(model: Any, frames: np.ndarray) -> np.ndarray:
    """What the exported graph should output, from SB3's own policy API (for parity checks)."""
    import torch
    from gymnasium import spaces

    policy = model.policy.to("cpu").eval()
    obs = torch.as_tensor(frames, dtype=torch.float32)
    with torch.no_grad():
        if hasattr(policy, "actor"):  # SAC
            return policy._predict(obs, deterministic=True).numpy()
        if isinstance(model.action_space, spaces.Discrete):
            return policy.get_distribution(obs).distribution.probs.numpy()
        return torch.clamp(policy.get_distribution(obs).distribution.mean, -1.0, 1.0).numpy()


def export_run(run_or_model: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Export a run's best model (or a given model .zip of a run) to out_dir (default RUN/export)."""
    run, path = find_run(run_or_model)
    config = run.load_config()
    actions = run.load_actions(config)  # refuses an action list reordered or edited after training
    model = load_model(path, algo=config.algo)
    return export_policy(model, config.observation(), actions, out_dir or run.export_dir, network=config.network)
