"""`export --format openvino`: the IR beside the ONNX graph, its parity, its metadata and the runtime choice.

Real components only: the baseline-cloned run (conftest `cloned_policy`), the CLI in a subprocess,
OpenVINO and onnxruntime on rendered track views.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepracer_rl.export import ExportError, check_parity, sample_observations
from deepracer_rl.inference import PolicyRunner, load_policy
from deepracer_rl.policy import (
    CHECKSUMS_NAME,
    METADATA_NAME,
    ONNX_NAME,
    OPENVINO_BIN,
    OPENVINO_XML,
    OnnxPolicy,
    OpenVinoPolicy,
    PolicyLoadError,
)

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "deepracer_rl.cli"]


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def ir_export(cloned_policy, tmp_path_factory) -> Path:
    """`deepracer-rl export RUN --format openvino` of the cloned run, through the CLI."""
    out = tmp_path_factory.mktemp("openvino") / "export"
    result = run_cli("export", str(cloned_policy.parent / "run"), "--format", "openvino", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "model.xml" in result.stdout
    return out


def test_export_writes_the_ir_beside_the_onnx_graph_with_checksums(ir_export):
    for name in (ONNX_NAME, METADATA_NAME, OPENVINO_XML, OPENVINO_BIN):
        assert (ir_export / name).stat().st_size > 0, name
    listed = {line.split()[1] for line in (ir_export / CHECKSUMS_NAME).read_text().splitlines()}
    assert listed == {ONNX_NAME, METADATA_NAME, OPENVINO_XML, OPENVINO_BIN}


def test_ir_outputs_match_onnx_on_rendered_track_views(ir_export):
    ir, onnx = OpenVinoPolicy(ir_export), OnnxPolicy(ir_export)
    samples = sample_observations(ir.observation, "reinvent_base", count=32, seed=1)
    difference = np.abs(ir.outputs(samples) - onnx.outputs(samples)).max()
    print(f"OpenVINO vs onnxruntime: max |difference| {difference:.2e} on 32 observations")
    assert difference <= 1e-4
    assert np.array_equal(ir.predict(samples)[0], onnx.predict(samples)[0])


def test_loader_picks_openvino_for_ir_and_onnxruntime_otherwise(ir_export, cloned_policy):
    assert load_policy(ir_export / OPENVINO_XML).runtime == "openvino"
    assert load_policy(ir_export).runtime == "onnxruntime"
    assert load_policy(ir_export, runtime="openvino").runtime == "openvino"
    assert load_policy(ir_export / ONNX_NAME).runtime == "onnxruntime"
    with pytest.raises(PolicyLoadError, match=r"model\.xml: missing"):
        load_policy(cloned_policy, runtime="openvino")  # an ONNX-only export
    with pytest.raises(PolicyLoadError, match="unknown runtime 'tensorrt'"):
        load_policy(ir_export, runtime="tensorrt")
    # The runner drives with the IR as with the ONNX graph, on the 640x480 camera image.
    from deepracer_rl.camera import CameraRenderer, example_poses
    from deepracer_rl.car import CarSpec
    from deepracer_rl.track import Track

    track, camera = Track.load("reinvent_base"), CarSpec.from_urdf().camera
    for image in CameraRenderer(track, camera, camera.width, camera.height, grayscale=False).render(
        example_poses(track)
    ):
        ir_command = PolicyRunner(load_policy(ir_export / OPENVINO_XML)).act(image)
        assert ir_command == PolicyRunner(load_policy(ir_export)).act(image)


def test_ir_carries_the_action_digest_and_refuses_a_metadata_edited_after_export(ir_export, tmp_path):
    import openvino as ov

    model = ov.Core().read_model(str(ir_export / OPENVINO_XML))
    metadata = json.loads(model.get_rt_info(["deepracer_rl", "model_metadata"]).astype(str))
    assert metadata["action_space"] == json.loads((ir_export / METADATA_NAME).read_text())["action_space"]
    edited = tmp_path / "edited"
    shutil.copytree(ir_export, edited)
    (edited / CHECKSUMS_NAME).unlink()
    meta = json.loads((edited / METADATA_NAME).read_text())
    meta["action_space"] = meta["action_space"][::-1]  # reordered, and the digest "fixed" to match
    from deepracer_rl.action_space import ActionSpace

    meta["action_space_sha256"] = ActionSpace.from_metadata(meta, "edited").digest()
    (edited / METADATA_NAME).write_text(json.dumps(meta))
    OnnxPolicy(edited)  # the ONNX side has only the metadata file to go by
    with pytest.raises(PolicyLoadError, match=r"model\.xml: the IR was exported for action list"):
        OpenVinoPolicy(edited)


def test_parity_check_fails_with_a_clear_message(ir_export):
    policy = OnnxPolicy(ir_export)
    samples = sample_observations(policy.observation, "reinvent_base", count=8)
    reference = policy.outputs(samples)
    assert check_parity(ir_export, samples, reference) <= 1e-4
    with pytest.raises(ExportError, match=r"differ from the torch policy's by 0\.05 .*tolerance 0\.0001"):
        check_parity(ir_export, samples, reference + 0.05)


def test_corrupt_ir_is_refused_naming_the_file(ir_export, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(ir_export, broken)
    (broken / OPENVINO_XML).write_text("<net>not an IR")
    with pytest.raises(PolicyLoadError, match="checksum mismatch"):
        load_policy(broken / OPENVINO_XML)
    (broken / CHECKSUMS_NAME).unlink()
    with pytest.raises(PolicyLoadError, match=r"model\.xml: not a loadable OpenVINO IR"):
        load_policy(broken / OPENVINO_XML)


def test_evaluate_drives_the_ir_from_the_cli(ir_export):
    result = run_cli("evaluate", str(ir_export / OPENVINO_XML), "--laps", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["driver"].endswith("(openvino)") and report["mean_progress"] > 0


def test_a_two_input_model_converts_with_its_inputs_named_as_in_onnx_and_matches_onnxruntime(tmp_path):
    """FRONT_FACING_CAMERA + SECTOR_LIDAR: one IR input per sensor, named as the ONNX inputs, listed in the
    export's metadata; the IR's outputs equal onnxruntime's on the race's observations and random inputs."""
    import openvino as ov

    from deepracer_rl.action_space import ActionSpace
    from deepracer_rl.algorithms import build_model
    from deepracer_rl.config import TrainConfig
    from deepracer_rl.export import export_policy, sample_inputs
    from deepracer_rl.observation import ObservationSpec
    from deepracer_rl.vec_env import RaceVecEnv

    meta = tmp_path / "model_metadata.json"
    sensors = ["FRONT_FACING_CAMERA", "SECTOR_LIDAR"]
    meta.write_text(json.dumps({**ActionSpace.default().to_metadata(), "sensor": sensors}))
    spec, actions = ObservationSpec(40, 40), ActionSpace.load(meta)
    env = RaceVecEnv(1, seed=0, metadata=str(meta), observation=spec)
    try:
        model = build_model(TrainConfig(network="small"), env)
    finally:
        env.close()
    samples = sample_inputs(actions, spec, "reinvent_base", count=16, seed=2)
    out = export_policy(model, spec, actions, tmp_path / "export", "small", ("onnx", "openvino"), samples)
    names = ["observation", "SECTOR_LIDAR"]
    assert [i.get_any_name() for i in ov.Core().read_model(str(out / OPENVINO_XML)).inputs] == names
    assert [entry["name"] for entry in json.loads((out / METADATA_NAME).read_text())["inputs"]] == names
    ir, onnx = OpenVinoPolicy(out), OnnxPolicy(out)
    assert ir.input_names == onnx.input_names == tuple(names)
    difference = np.abs(ir.outputs(samples) - onnx.outputs(samples)).max()
    print(f"two inputs, OpenVINO vs onnxruntime: max |difference| {difference:.2e} on 16 observations")
    assert difference <= 1e-4
    assert np.array_equal(ir.predict(samples)[0], onnx.predict(samples)[0])
