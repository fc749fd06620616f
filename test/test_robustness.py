"""`deepracer-rl robustness`: tracks x camera perturbations -> a JSON table and a PNG heat map.

The baseline driver (and a tiny trained policy for the per-perturbation table) on the real simulator.
"""

from __future__ import annotations

import json

import cv2
import pytest

from deepracer_rl.camera import CameraPerturbation
from deepracer_rl.cli import main
from deepracer_rl.config import TrainConfig
from deepracer_rl.robustness import PERTURBATIONS, robustness_table, write_heatmap
from deepracer_rl.train import train


def test_the_perturbations_are_the_issues_levels():
    assert {name: CameraPerturbation(**fields).changes() for name, fields in PERTURBATIONS.items()} == {
        "none": {},
        "brightness 0.6": {"brightness": 0.6},
        "brightness 1.5": {"brightness": 1.5},
        "blur 2 px": {"blur_px": 2.0},
        "noise 8": {"noise_std": 8.0},
        "jpeg 30": {"jpeg_quality": 30},
        "pitch +0.05 rad": {"camera_pitch_rad": 0.05},
        "pitch -0.05 rad": {"camera_pitch_rad": -0.05},
        "height +2 cm": {"camera_height_m": 0.02},
    }


def test_cli_writes_the_table_and_the_heat_map(tmp_path, capsys):
    out = tmp_path / "rob"
    args = ["robustness", "--driver", "baseline", "--track", "Oval_track", "--track", "reinvent_base"]
    assert main([*args, "--laps", "1", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    table = json.loads((out / "robustness.json").read_text())
    assert printed == table
    assert table["tracks"] == ["Oval_track", "reinvent_base"] and list(table["perturbations"]) == list(PERTURBATIONS)
    assert len(table["cells"]) == 2 * len(PERTURBATIONS)
    assert table["attempted_laps"] == 2 * len(PERTURBATIONS) == table["completed_laps"]  # the baseline reads poses
    image = cv2.imread(str(out / "robustness.png"))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 300
    assert main(["robustness", "--driver", "baseline", "--track", "Nowhere", "--out", str(out)]) == 2
    assert "unknown track 'Nowhere'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    config = TrainConfig(
        steps=256, n_envs=2, image_width=40, image_height=40, network="small", batch_size=64,
        episodes_between_updates=2, epochs=1, eval_laps=1, checkpoint_every=256, eval_every=256,
        torch_threads=1, simtrace=False,
    )  # fmt: skip
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(config, out)
    return out


def test_a_policys_table_has_a_cell_per_track_and_perturbation(tiny_run, tmp_path):
    chosen = {name: PERTURBATIONS[name] for name in ("none", "brightness 0.6", "pitch +0.05 rad")}
    table = robustness_table(tiny_run, ["Oval_track"], laps=1, seed=1, perturbations=chosen)
    assert [(c["perturbation"], c["track"]) for c in table["cells"]] == [(n, "Oval_track") for n in chosen]
    for name in chosen:
        assert table["by_perturbation"][name]["attempted_laps"] == 1
    assert table["driver"].endswith("best_model.zip") and table["seed"] == 1
    assert write_heatmap(table, tmp_path / "map.png").is_file()
