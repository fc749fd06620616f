"""`deepracer-rl export`: a trained policy as `model.onnx` + `model_metadata.json` (+ checksums).

The ONNX graph takes float32 frames (N, C, H, W) with values 0..255, exactly the env's
observation, and outputs `action`: per-action probabilities for a discrete space, or the
deterministic (steering, speed) in [-1, 1] for a continuous one. The preprocessing that
makes those frames from a camera image is `policy.observation_from_image`, described in
the metadata's `observation` field, so the inference node feeds the network what it saw in
training.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from .action_space import ActionSpace
from .env import ObservationSpec

ONNX_NAME = "model.onnx"
METADATA_NAME = "model_metadata.json"
CHECKSUMS_NAME = "SHA256SUMS"


def policy_module(model):
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


def export_policy(model, observation: ObservationSpec, actions: ActionSpace, out_dir: str | os.PathLike) -> Path:
    """Write model.onnx, model_metadata.json and SHA256SUMS into out_dir."""
    import torch

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
            input_names=["observation"],
            output_names=["action"],
            dynamic_axes={"observation": {0: "batch"}, "action": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, out / ONNX_NAME)
    metadata = actions.to_metadata()
    metadata["observation"] = {
        "width": observation.width,
        "height": observation.height,
        "grayscale": observation.grayscale,
        "frame_stack": observation.frame_stack,
        "input": "float32 NCHW, 0..255, from policy.observation_from_image",
        "output": "probabilities per action" if actions.kind == "discrete" else "steering, speed in [-1, 1]",
    }
    (out / METADATA_NAME).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    sums = "".join(f"{_sha256(out / name)}  {name}\n" for name in (ONNX_NAME, METADATA_NAME))
    (out / CHECKSUMS_NAME).write_text(sums, encoding="utf-8")
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_checksums(export_dir: str | os.PathLike) -> None:
    """Raise ValueError naming the file whose content does not match SHA256SUMS."""
    root = Path(export_dir)
    sums = root / CHECKSUMS_NAME
    if not sums.exists():
        return
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, name = line.split(None, 1)
        if _sha256(root / name.strip()) != digest:
            raise ValueError(f"{root / name.strip()}: checksum mismatch with {sums} (file changed or corrupt)")


def torch_outputs(model, frames: np.ndarray) -> np.ndarray:
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
    """Export a run's best model (or a given model .zip of a run) to out_dir (RUN/export)."""
    from .train import BEST, CHECKPOINT, TrainConfig, load_model

    path = Path(run_or_model)
    run = path if path.is_dir() else path.parent
    if not (run / "config.json").exists():
        raise FileNotFoundError(f"{run}: no config.json (expected a run directory of deepracer-rl train)")
    if path.is_dir():
        path = run / BEST if (run / BEST).exists() else run / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"{path}: no model to export (has the run saved a checkpoint?)")
    config = TrainConfig.load(run / "config.json")
    actions = ActionSpace.load(run / METADATA_NAME)
    return export_policy(load_model(path), config.observation(), actions, out_dir or run / "export")
