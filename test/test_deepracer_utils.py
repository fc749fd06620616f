"""deepracer-utils (the DeepRacer community's log analysis, a pinned test dependency) reads our runs
as it reads a local DeepRacer training's model folder: unmodified, through its own classes."""

from __future__ import annotations

import ast
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from deepracer.logs import AnalysisUtils, DeepRacerLog, LogFolderType, TrainingMetrics
from test_train import tiny_config

from deepracer_rl.action_space import ActionSpace
from deepracer_rl.evaluate import baseline_driver
from deepracer_rl.evaluate_runs import evaluate_target
from deepracer_rl.rundir import RunDir
from deepracer_rl.train import evaluate_driver, train

PACKAGE = Path(__file__).resolve().parents[1] / "deepracer_rl"
CONTROL_HZ = 15.0


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory) -> Path:
    """A tiny PPO run of 512 steps, resumed to 768 (the simtrace numbering goes on across it)."""
    out = tmp_path_factory.mktemp("dru") / "tiny"
    train(tiny_config(), out)
    train(tiny_config(steps=768), out, resume=True)
    return out


@pytest.fixture
def lapping_run(cloned_policy, tmp_path) -> RunDir:
    """A copy of the session's baseline-cloned run, which completes laps."""
    run = tmp_path / "cloned"
    shutil.copytree(Path(cloned_policy).parent / "run", run, ignore=shutil.ignore_patterns("evaluation-*"))
    return RunDir(run)


def rows_of(paths: list[Path]) -> list[dict[str, str]]:
    rows = []
    for path in paths:
        with open(path, newline="") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def test_a_training_run_is_a_drfc_model_folder_with_its_iterations_episodes_and_steps(resumed_run):
    run = RunDir(resumed_run)
    state = run.load_state()
    written = run.training_simtraces()
    rows = rows_of([path for _, path in written])

    log = DeepRacerLog(str(resumed_run))
    assert log.fh.type is LogFolderType.DRFC_MODEL_SINGLE_WORKERS
    log.load_training_trace()
    df = log.dataframe()
    assert sorted(df["iteration"].unique()) == [iteration for iteration, _ in written]
    assert max(df["iteration"]) >= 2  # iterations 0, 1 before the resumption, 2 after it
    assert len(df) == len(rows)
    assert df["episode"].nunique() == state["episodes"]  # every finished episode
    # Its unique_episode (derived from iteration 0's episode count) is one per episode here.
    assert df.groupby("unique_episode")["episode"].nunique().max() == 1
    assert df["unique_episode"].nunique() == state["episodes"]
    assert (df["episode_status"] == "prepare").sum() == state["episodes"]

    agg = AnalysisUtils.simulation_agg(df)
    assert len(agg) == state["episodes"]
    assert agg["steps"].sum() - len(agg) == sum(r["episode_status"] != "prepare" for r in rows)
    # Its episode time comes from tstamp: the car's sim clock, 1/15 s per step.
    np.testing.assert_allclose(agg["time"], (agg["steps"] - 1) / CONTROL_HZ, atol=1e-3)
    last = df.groupby(["iteration", "episode"])["episode_status"].last().reset_index()
    assert agg.merge(last)["complete"].tolist() == (last["episode_status"] == "lap_complete").astype(int).tolist()

    config = run.load_config()
    assert log.hyperparameters()["batch_size"] == config.batch_size
    assert log.hyperparameters()["lr"] == config.learning_rate
    assert log.action_space() == ActionSpace.load(run.metadata_path).to_metadata()["action_space"]
    assert log.agent_and_network()["network"] == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"


def test_training_metrics_json_is_read_by_its_training_metrics(resumed_run):
    run = RunDir(resumed_run)
    metrics = TrainingMetrics(None, fname=str(run.training_metrics_path))
    training, evaluation = metrics.getTraining(), metrics.getEvaluation()
    assert len(training) == run.load_state()["episodes"]
    with open(run.evaluations_csv, newline="") as handle:
        assert len(evaluation) == sum(int(r["laps"]) for r in csv.DictReader(handle))
    steps = {}
    for row in rows_of([path for _, path in run.training_simtraces()]):
        steps[int(row["episode"])] = int(row["steps"])
    by_episode = training.set_index("episode")["time"]
    np.testing.assert_allclose([by_episode[e + 1] for e in steps], [s / CONTROL_HZ for s in steps.values()], atol=2e-3)


def test_lap_times_of_an_evaluation_simtrace_match_the_evaluation(lapping_run):
    first = evaluate_target(lapping_run.path, laps=2)
    second = evaluate_target(lapping_run.path, laps=1)
    assert first.report.completed_laps == 2 and second.report.completed_laps == 1
    assert [first.simtrace, second.simtrace] == lapping_run.evaluation_simtraces()

    log = DeepRacerLog(str(lapping_run.path))
    assert log.fh.type is LogFolderType.DRFC_MODEL_UPLOAD  # a cloned run has no training simtrace
    log.load_evaluation_trace()
    df = log.dataframe()
    assert df["stream"].nunique() == 2  # one per evaluation (the folder's time stamp)
    agg = AnalysisUtils.simulation_agg(df, firstgroup="stream", is_eval=True)
    assert agg["complete"].tolist() == [1, 1, 1]
    ours = first.report.lap_times_s + second.report.lap_times_s
    np.testing.assert_allclose(agg.sort_values(["stream", "episode"])["time"], ours, rtol=0.01)


def test_off_track_penalties_are_in_the_simtrace_lap_time(lapping_run):
    """A driver that swerves off the track at 2 s: put back with a 3 s penalty, as DeepRacer's races."""
    drive = baseline_driver()

    def swerving(core):
        steer, speed = drive(core)
        if 30 <= core.judge.steps[0] < 45:
            return np.full(1, 30.0), np.full(1, 4.0)
        return steer, speed

    simtrace = lapping_run.new_evaluation_simtrace()
    config = lapping_run.load_config()
    report = evaluate_driver(swerving, config, lapping_run, laps=1, off_track_penalty=3.0, simtrace_csv=simtrace)
    assert report.off_track >= 1 and report.completed_laps == 1

    log = DeepRacerLog(str(lapping_run.path))
    log.load_evaluation_trace()
    agg = AnalysisUtils.simulation_agg(log.dataframe(), firstgroup="stream", is_eval=True)
    assert agg["off_track"].tolist() == [report.off_track] and agg["complete"].tolist() == [1]
    assert agg["time"].iloc[0] == pytest.approx(report.lap_times_s[0], rel=0.01)
    assert log.dataframe()["pause_duration"].max() == pytest.approx(3.0 * report.off_track)


def test_the_package_does_not_import_deepracer_utils():
    """deepracer-utils is a test dependency: analysis of our logs, never needed to make them."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            assert not any(n == "deepracer" or n.startswith("deepracer.") for n in names), path


def test_hyperparameters_json_uses_deepracer_names(resumed_run):
    values = json.loads(RunDir(resumed_run).hyperparameters_path.read_text())
    config = RunDir(resumed_run).load_config()
    assert values == {
        "batch_size": config.batch_size,
        "beta_entropy": config.entropy,
        "discount_factor": config.discount,
        "exploration_type": "categorical",
        "loss_type": "mean squared error",
        "lr": config.learning_rate,
        "num_episodes_between_training": config.episodes_between_updates,
        "num_epochs": config.epochs,
        "stack_size": config.frame_stack,
    }
