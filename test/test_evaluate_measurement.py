"""`deepracer-rl evaluate` as a measurement: several tracks (shipped or .npy files anywhere), N laps
from N start poses spread round each track (seeded), the plain camera unless perturbed or randomised
on request, one JSON object with the summed laps and a row per track; a checkpoint .zip of a run.

The baseline driver and a tiny trained run drive the real in-process simulator.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_train import tiny_config

from deepracer_rl.cli import main
from deepracer_rl.episode import evaluation_start_poses, start_line_pose
from deepracer_rl.evaluate_runs import evaluate_target
from deepracer_rl.rundir import RunDir
from deepracer_rl.track import TRACKS_DIR, Track
from deepracer_rl.train import train

TRACK_FIELDS = {"track", "completed_laps", "attempted_laps", "lap_times_s", "off_track"}


def cli_json(capsys, *args: str) -> dict:
    assert main(["evaluate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_laps_start_evenly_round_the_track_first_on_the_line_or_seeded():
    track = Track.load("reinvent_base")
    starts = evaluation_start_poses(track, 4)
    np.testing.assert_allclose(starts[0], start_line_pose(track))
    arcs = track.project(starts[:, :2]).arc_length
    np.testing.assert_allclose(np.diff(arcs), track.length / 4, atol=1e-6)
    seeded = evaluation_start_poses(track, 4, seed=7)
    np.testing.assert_array_equal(seeded, evaluation_start_poses(track, 4, seed=7))  # reproducible
    assert not np.allclose(seeded, starts) and not np.allclose(seeded, evaluation_start_poses(track, 4, seed=8))
    seeded_arcs = np.sort(track.project(seeded[:, :2]).arc_length)
    np.testing.assert_allclose(np.diff(seeded_arcs), track.length / 4, atol=1e-6)
    on_track = track.contains(seeded[:, :2])
    assert on_track.all()
    straight = Track.load("Straight_track")  # an open track: every lap from its start line
    np.testing.assert_allclose(evaluation_start_poses(straight, 3), [start_line_pose(straight)] * 3)


def test_several_tracks_and_a_file_outside_the_package_give_one_summed_json_object(capsys, tmp_path):
    mine = tmp_path / "elsewhere" / "my_canada.npy"
    mine.parent.mkdir()
    shutil.copy(TRACKS_DIR / "Canada_Training.npy", mine)
    out = cli_json(
        capsys, "--driver", "baseline", "--track", "reinvent_base", "--track", "2022_april_open",
        "--track", str(mine), "--laps", "2", "--seed", "3",
    )  # fmt: skip
    assert [row["track"] for row in out["tracks"]] == ["reinvent_base", "2022_april_open", "my_canada"]
    for row in out["tracks"]:
        assert set(row) >= TRACK_FIELDS
        assert row["attempted_laps"] == 2 and row["completed_laps"] == 2 and row["off_track"] == 0
        assert len(row["lap_times_s"]) == 2 and all(t > 5 for t in row["lap_times_s"])
    assert out["attempted_laps"] == 6 and out["completed_laps"] == 6
    assert out["seed"] == 3 and out["randomize"] is False and out["perturbation"] == {}
    assert "track" not in out  # several tracks: per track in "tracks"


def test_one_track_keeps_the_flat_fields(capsys):
    out = cli_json(capsys, "--driver", "baseline", "--laps", "1")
    assert out["track"] == "reinvent_base" and out["laps"] == out["attempted_laps"] == 1
    assert set(out) >= {"completed_laps", "lap_times_s", "mean_progress", "off_track", "statuses", "tracks"}
    assert out["tracks"][0]["lap_times_s"] == out["lap_times_s"]


def test_a_measurement_reproduces_and_randomisation_is_off_unless_asked():
    plain = [evaluate_target(None, "Oval_track", laps=2, driver="baseline").as_dict() for _ in range(2)]
    assert plain[0] == plain[1]
    randomised = [
        evaluate_target(None, "Oval_track", laps=2, driver="baseline", seed=5, randomize=True).as_dict()
        for _ in range(2)
    ]
    assert randomised[0] == randomised[1] and randomised[0]["randomize"] is True


def test_perturbations_are_reported_and_bad_ones_refused(capsys):
    out = cli_json(
        capsys, "--driver", "baseline", "--laps", "1", "--perturb", "brightness=0.6", "--perturb", "jpeg_quality=30"
    )
    assert out["perturbation"] == {"brightness": 0.6, "jpeg_quality": 30} and out["completed_laps"] == 1
    for bad, message in (
        (["--perturb", "brightnes=2"], "NAME one of brightness"),
        (["--perturb", "blur_px=-1"], "blur_px must be a number in [0, 20]"),
        (["--perturb", "noise_std=8", "--backend", "ros"], "not --backend ros"),
        (["--track", "reinvent_base", "--track", "Oval_track", "--video", "x.mp4"], "name one track"),
        (["--track", "reInvent2019_Track"], "did you mean 'reInvent2019_track'"),
    ):
        assert main(["evaluate", "--driver", "baseline", *bad]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> RunDir:
    config = tiny_config(steps=256, simtrace=False, metadata=None)  # the console's default action space
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(config, out)
    return RunDir(out)


def test_a_checkpoint_zip_of_a_run_is_evaluated_with_its_runs_settings(tiny_run, tmp_path, capsys):
    checkpoint = tiny_run.checkpoint
    assert checkpoint.parent != tiny_run.path  # checkpoints/latest.zip: the run is a folder up
    out = cli_json(capsys, str(checkpoint), "--laps", "1", "--track", "Oval_track", "--track", "reinvent_base")
    assert out["driver"] == str(checkpoint) and out["attempted_laps"] == 2
    assert [row["track"] for row in out["tracks"]] == ["Oval_track", "reinvent_base"]
    loose = tmp_path / "loose.zip"
    shutil.copy(checkpoint, loose)
    assert main(["evaluate", str(loose), "--laps", "1"]) == 2
    assert "a model .zip outside a run directory" in capsys.readouterr().err


def test_a_shipped_model_is_evaluated_and_loaded_by_its_name(capsys):
    from deepracer_rl.inference import load_policy, shipped_models

    assert "racing_reinvent_base" in shipped_models()
    assert load_policy("racing_reinvent_base").actions is not None  # what the inference node's model:= takes
    assert main(["evaluate", "racing_reinvent_base", "--laps", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["attempted_laps"] == 1 and out["tracks"][0]["track"] == "reinvent_base"
    assert main(["evaluate", "no_such_model", "--laps", "1"]) == 2
    assert "shipped model (" in capsys.readouterr().err
