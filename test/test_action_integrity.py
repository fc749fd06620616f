"""A policy's output i is action i: an action list reordered or edited after training or export is
refused (issue 18: "reordering the action list before export makes the car drive the wrong actions")."""

from __future__ import annotations

import json
import shutil

import pytest

from deepracer_rl.cli import main
from deepracer_rl.policy import OnnxPolicy, PolicyLoadError


def reorder(path) -> None:
    data = json.loads(path.read_text())
    data["action_space"] = data["action_space"][::-1]
    for i, action in enumerate(data["action_space"]):
        action["index"] = i
    path.write_text(json.dumps(data))


def test_export_refuses_a_run_whose_action_list_was_reordered_after_training(cloned_policy, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(cloned_policy.parent / "run", run)
    assert main(["export", str(run), "--out", str(tmp_path / "ok")]) == 0  # untouched: exports
    reorder(run / "model_metadata.json")
    assert main(["export", str(run), "--out", str(tmp_path / "export")]) == 2
    err = capsys.readouterr().err
    assert "model_metadata.json: its action space is not the one the policy was trained with" in err
    assert not (tmp_path / "export" / "model.onnx").exists()


def test_the_policy_loader_refuses_an_export_whose_actions_were_edited(cloned_policy, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(cloned_policy, export)
    assert json.loads((export / "model_metadata.json").read_text())["action_space_sha256"]
    (export / "SHA256SUMS").unlink()  # the action check itself, not the checksum file's
    reorder(export / "model_metadata.json")
    with pytest.raises(PolicyLoadError, match="the action space was edited after export"):
        OnnxPolicy(export)
