"""Training, checkpoints, resume, export parity, evaluation and plots of a run (real SB3, tiny)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deepracer_rl.config import TrainConfig
from deepracer_rl.rundir import RunDir
from deepracer_rl.simtrace import SIMTRACE_COLUMNS
from deepracer_rl.train import TrainingError, train

CHECKPOINT = str(RunDir("").checkpoint)  # run-relative paths of the run directory's layout
STATE = str(RunDir("").state_path)

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "deepracer_rl.cli"]
TINY = dict(
    n_envs=2,
    image_width=40,
    image_height=40,
    network="small",
    batch_size=64,
    episodes_between_updates=2,
    epochs=1,
    eval_laps=1,
    torch_threads=1,
)


def tiny_config(**overrides) -> TrainConfig:
    values = {
        **TINY,
        "steps": 512,
        "checkpoint_every": 256,
        "eval_every": 256,
        "metadata": str(REPO / "config" / "model_metadata.json"),
        **overrides,
    }
    return TrainConfig(**values)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_config(), out)
    return out


def test_run_directory_holds_config_reward_metadata_checkpoint_and_logs(trained_run):
    for name in (
        "config.json",
        "reward_function.py",
        "model_metadata.json",
        CHECKPOINT,
        STATE,
        "best_model.zip",
        "progress.csv",
        "evaluations.csv",
    ):
        assert (trained_run / name).exists(), name
    assert json.loads((trained_run / STATE).read_text())["timesteps"] >= 512
    assert list((trained_run / "tensorboard").rglob("events.out.tfevents.*"))


def test_tensorboard_has_the_consoles_graphs(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in (trained_run / "tensorboard").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    wanted = {"deepracer/episode_reward", "deepracer/mean_progress", "deepracer/completion_rate", "deepracer/entropy"}
    assert wanted | {"deepracer/eval_progress", "deepracer/eval_completion"} <= tags, sorted(tags)
    entropy = [
        e.value
        for events in (trained_run / "tensorboard").rglob("events.out.tfevents.*")
        for e in _scalars(events, "deepracer/entropy")
    ]
    n_actions = len(json.loads((trained_run / "model_metadata.json").read_text())["action_space"])
    assert entropy and all(0.0 < v <= np.log(n_actions) + 1e-6 for v in entropy)  # nats, at most uniform


def _scalars(events: Path, tag: str) -> list:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    return accumulator.Scalars(tag) if tag in accumulator.Tags()["scalars"] else []


def read_training_simtrace(run: Path) -> dict[int, list[dict[str, str]]]:
    """The rows of each iteration's training simtrace file, checking DeepRacer's header."""
    files = {}
    for iteration, path in RunDir(run).training_simtraces():
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            files[iteration] = list(reader)
        assert tuple(reader.fieldnames) == SIMTRACE_COLUMNS, path
    return files


def test_training_simtrace_is_deepracers_one_file_per_iteration_each_episode_whole(trained_run):
    files = read_training_simtrace(trained_run)
    state = json.loads((trained_run / STATE).read_text())
    assert sorted(files) == list(range(len(files))) and len(files) >= 2  # 0-iteration.csv, 1-iteration.csv...
    rows = [r for iteration in sorted(files) for r in files[iteration]]
    statuses = {r["episode_status"] for r in rows}
    assert statuses <= {"prepare", "in_progress", "off_track", "lap_complete", "reversed", "immobilized", "time_up"}
    assert all(0.0 <= float(r["progress"]) <= 100.0 for r in rows)
    episodes: dict[str, list[dict[str, str]]] = {}
    for iteration, file_rows in files.items():
        for r in file_rows:
            assert r["episode"] not in episodes or episodes[r["episode"]][0]["iteration"] == iteration
            episodes.setdefault(r["episode"], []).append({**r, "iteration": iteration})
    assert len(episodes) == state["episodes"]  # every finished episode, each in one file
    steps = 0
    for rows in episodes.values():
        first, last = rows[0], rows[-1]
        assert (first["episode_status"], first["steps"], first["reward"]) == ("prepare", "0", "0.0")
        assert [int(r["steps"]) for r in rows] == list(range(len(rows)))
        assert [r["done"] for r in rows] == ["False"] * (len(rows) - 1) + ["True"]
        # tstamp: the car's sim clock in s, 1/15 s a step from the prepare row on
        assert float(last["tstamp"]) - float(first["tstamp"]) == pytest.approx((len(rows) - 1) / 15, abs=2e-4)
        steps += len(rows) - 1
    assert 0.5 * state["timesteps"] < steps <= state["timesteps"]  # open episodes at the end are not written


def test_broken_reward_fails_before_training_with_the_file_and_line(tmp_path):
    bad = tmp_path / "bad_reward.py"
    bad.write_text("def reward_function(params):\n    return params['speed'] / 0\n")
    started = time.time()
    result = run_cli("train", "--out", str(tmp_path / "run"), "--reward", str(bad), "--steps", "1000")
    assert result.returncode != 0
    assert "bad_reward.py, line 2" in result.stderr and "ZeroDivisionError" in result.stderr
    assert time.time() - started < 60
    assert not (tmp_path / "run" / CHECKPOINT).exists()


def test_reward_failing_mid_training_stops_with_its_error_and_a_checkpoint(tmp_path):
    late = tmp_path / "late_failure.py"
    late.write_text(  # fails on its 200th call: after the 60 calls of the dry run
        "calls = 0\n"
        "def reward_function(params):\n"
        "    global calls\n"
        "    calls += 1\n"
        "    if calls > 200:\n"
        "        raise RuntimeError('boom at call %d' % calls)\n"
        "    return 1.0\n"
    )
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as caught:
        train(tiny_config(reward=str(late), steps=5000), out)
    message = str(caught.value)
    assert "late_failure.py, line 6" in message and "boom" in message and "--resume" in message
    assert (out / CHECKPOINT).exists()


def test_invalid_metadata_names_the_field(tmp_path):
    meta = tmp_path / "model_metadata.json"
    meta.write_text(json.dumps({"action_space": [{"steering_angle": 45, "speed": 1.0}]}))
    result = run_cli("train", "--out", str(tmp_path / "run"), "--metadata", str(meta))
    assert result.returncode != 0
    assert "action_space[0].steering_angle" in result.stderr and "45" in result.stderr


def test_resume_with_different_metadata_says_so(trained_run, tmp_path):
    other = tmp_path / "other.json"
    other.write_text((REPO / "config" / "model_metadata_continuous.json").read_text())
    with pytest.raises(TrainingError, match="action space"):
        train(tiny_config(metadata=str(other)), trained_run, resume=True)
    with pytest.raises(TrainingError, match="--resume"):
        train(tiny_config(), trained_run)


def test_killed_run_resumes_losing_at_most_one_checkpoint_interval(tmp_path):
    out = tmp_path / "run"
    interval = 128
    args = [
        "train",
        "--out",
        str(out),
        "--steps",
        "100000",
        "--n-envs",
        "2",
        "--image-size",
        "40x40",
        "--network",
        "small",
        "--batch-size",
        "64",
        "--episodes-between-updates",
        "2",
        "--epochs",
        "1",
        "--checkpoint-every",
        str(interval),
        "--eval-every",
        "100000",
        "--metadata",
        str(REPO / "config" / "model_metadata.json"),
    ]
    proc = subprocess.Popen(
        CLI + args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if (out / STATE).exists() and json.loads((out / STATE).read_text())["timesteps"] >= 3 * interval:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint within 120 s")
        time.sleep(0.7)  # let it run on past the checkpoint
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    saved = json.loads((out / STATE).read_text())["timesteps"]
    with open(out / "progress.csv", newline="") as handle:
        logged = max(int(r["timesteps"]) for r in csv.DictReader(handle))
    assert logged - saved <= interval  # what the run had done beyond its checkpoint
    from deepracer_rl.algorithms import load_model

    load_model(out / CHECKPOINT)  # whole, never half written
    checkpoint_iteration = json.loads((out / STATE).read_text())["iteration"]
    summary = train(tiny_config(steps=saved + 256), out, resume=True)
    assert summary["timesteps"] >= saved + 256
    state = json.loads((out / STATE).read_text())
    assert state["timesteps"] >= saved + 256
    # The simtrace goes on from the checkpoint: what the killed run wrote after it is cut, not repeated.
    files = read_training_simtrace(out)
    assert sorted(files) == list(range(len(files))) and max(files) >= checkpoint_iteration  # numbering goes on
    pairs = [(r["episode"], r["steps"]) for rows in files.values() for r in rows]
    assert len(pairs) == len(set(pairs))
    assert len({episode for episode, _ in pairs}) == state["episodes"]


def test_atomic_save_keeps_the_old_checkpoint_when_writing_fails(trained_run, tmp_path):
    from deepracer_rl.algorithms import load_model
    from deepracer_rl.rundir import save_model_atomic

    model = load_model(trained_run / CHECKPOINT)
    target = tmp_path / "latest.zip"
    save_model_atomic(model, target)
    before = target.read_bytes()
    (tmp_path / "latest.tmp.zip").mkdir()  # the temporary file cannot be written: like a full disk
    with pytest.raises(OSError):
        save_model_atomic(model, target)
    assert target.read_bytes() == before


@pytest.mark.parametrize("metadata", ["model_metadata.json", "model_metadata_continuous.json"])
def test_exported_onnx_matches_the_torch_policy(tmp_path, metadata):
    from deepracer_rl.algorithms import build_model
    from deepracer_rl.export import export_policy, torch_outputs
    from deepracer_rl.policy import OnnxPolicy
    from deepracer_rl.train import make_env, prepare_run

    config = tiny_config(metadata=str(REPO / "config" / metadata))
    out = tmp_path / "run"
    config = prepare_run(config, out, resume=False)
    env = make_env(config, out)
    model = build_model(config, env, out)
    export_policy(model, config.observation(), model_actions(out), tmp_path / "export")
    policy = OnnxPolicy(tmp_path / "export")
    frames = np.random.default_rng(0).integers(0, 256, (100, 1, 40, 40)).astype(np.float32)
    difference = np.abs(policy.outputs(frames) - torch_outputs(model, frames)).max()
    assert difference <= 1e-5


def model_actions(run: Path):
    from deepracer_rl.action_space import ActionSpace

    return ActionSpace.load(run / "model_metadata.json")


def test_export_evaluate_plot_and_rescore_from_the_cli(trained_run, tmp_path):
    result = run_cli("export", str(trained_run), "--out", str(tmp_path / "export"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "export" / "model.onnx").exists() and (tmp_path / "export" / "SHA256SUMS").exists()
    for target in (str(trained_run), str(tmp_path / "export")):
        result = run_cli("evaluate", target, "--laps", "1", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert set(report) >= {"laps", "completed_laps", "lap_times_s", "mean_progress", "off_track"}
    trajectory = tmp_path / "trajectory.csv"
    result = run_cli("evaluate", str(trained_run), "--laps", "1", "--trajectory", str(trajectory))
    assert result.returncode == 0 and trajectory.exists()
    (trained_run / "evaluation").mkdir(exist_ok=True)
    trajectory.replace(trained_run / "evaluation" / "trajectory.csv")
    result = run_cli("plot", str(trained_run))
    assert result.returncode == 0, result.stderr
    names = {p.name for p in (trained_run / "plots").glob("*.png")}
    assert names == {"training_progress.png", "best_lap.png", "reward_heatmap.png", "action_histogram.png"}
    result = run_cli("rescore", str(trained_run), "--reward", str(REPO / "deepracer_rl/rewards/zigzag_penalty.py"))
    assert result.returncode == 0, result.stderr
    assert "rescored" in result.stdout


def test_corrupt_export_gets_a_clear_error(trained_run, tmp_path):
    from deepracer_rl.export import export_run
    from deepracer_rl.policy import OnnxPolicy, PolicyLoadError

    export = export_run(trained_run, tmp_path / "export")
    (export / "model.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(PolicyLoadError, match="checksum mismatch"):
        OnnxPolicy(export)
    (export / "SHA256SUMS").unlink()
    with pytest.raises(PolicyLoadError, match="model.onnx"):
        OnnxPolicy(export)
    meta = json.loads((export / "model_metadata.json").read_text())
    del meta["observation"]
    (export / "model_metadata.json").write_text(json.dumps(meta))
    with pytest.raises(PolicyLoadError, match="observation"):
        OnnxPolicy(export)


def test_sac_trains_a_continuous_policy_and_refuses_a_discrete_space(tmp_path):
    continuous = str(REPO / "config" / "model_metadata_continuous.json")
    summary = train(tiny_config(algo="sac", metadata=continuous, steps=300, batch_size=32), tmp_path / "sac")
    assert summary["timesteps"] >= 300
    from deepracer_rl.algorithms import load_model

    assert type(load_model(tmp_path / "sac" / CHECKPOINT)).__name__ == "SAC"
    with pytest.raises(TrainingError, match="continuous action space"):
        train(tiny_config(algo="sac"), tmp_path / "sac_discrete")


def _first_rollout_rewards(run: Path) -> list[float]:
    with (run / "training-simtrace" / "0-iteration.csv").open(newline="") as handle:
        return [float(row["reward"]) for row in csv.DictReader(handle)]


def test_normalize_reward_scales_what_ppo_learns_from_but_logs_the_reward_functions_values(tmp_path):
    """--normalize-reward: the first rollout (same seed, same initial policy) logs the same rewards as a
    plain run, the checkpoint carries the running return statistics, and a resumed run continues them."""
    plain, scaled = tmp_path / "plain", tmp_path / "scaled"
    reward = tmp_path / "reward.py"
    reward.write_text("def reward_function(params):\n    return 100.0 if params['all_wheels_on_track'] else 50.0\n")
    common = dict(steps=256, eval_every=10**6, reward=str(reward))
    train(tiny_config(**common), plain)
    train(tiny_config(**common, normalize_reward=True, target_kl=0.02), scaled)
    assert _first_rollout_rewards(scaled) == _first_rollout_rewards(plain)
    # the reward function's values, not the learner's (clipped at 10 running stds of the return)
    assert set(_first_rollout_rewards(scaled)) <= {0.0, 50.0, 100.0} and 100.0 in _first_rollout_rewards(scaled)
    state = json.loads((scaled / STATE).read_text())
    assert "reward_scale" not in json.loads((plain / STATE).read_text())
    assert state["reward_scale"]["count"] == pytest.approx(state["timesteps"], abs=1)
    assert state["reward_scale"]["var"] > 0
    train(tiny_config(**dict(common, steps=512), normalize_reward=True, target_kl=0.02), scaled, resume=True)
    resumed = json.loads((scaled / STATE).read_text())
    assert resumed["reward_scale"]["count"] == pytest.approx(resumed["timesteps"], abs=1)  # went on, not restarted
    assert json.loads((scaled / "config.json").read_text())["normalize_reward"] is True


def test_target_kl_and_normalize_reward_refuse_what_they_cannot_do(tmp_path):
    continuous = str(REPO / "config" / "model_metadata_continuous.json")
    with pytest.raises(TrainingError, match="--target-kl limits PPO"):
        train(tiny_config(algo="sac", metadata=continuous, target_kl=0.02), tmp_path / "sac")
    with pytest.raises(TrainingError, match="--normalize-reward is not built for --workers"):
        train(tiny_config(workers=2, normalize_reward=True), tmp_path / "workers")
    result = run_cli("train", "--out", str(tmp_path / "bad"), "--target-kl", "-1")
    assert result.returncode == 2 and "--target-kl -1.0: expected a number within" in result.stderr
    assert not (tmp_path / "bad").exists()


def test_a_time_trials_evaluation_laps_are_the_laps_evaluate_drives(trained_run):
    """Model selection with --eval-laps N drives what `evaluate --laps N` reports: N starts spread round
    the track, the first on the start line; from the start line alone every lap would be the same."""
    from deepracer_rl.evaluate import baseline_driver
    from deepracer_rl.evaluate_runs import evaluate_target
    from deepracer_rl.train import evaluate_driver

    run = RunDir(trained_run)
    config = run.load_config()
    spread = evaluate_driver(baseline_driver(), config, run, laps=3, spread_starts=True)
    from_the_line = evaluate_driver(baseline_driver(), config, run, laps=3)
    (evaluated,) = evaluate_target(None, track=config.track, laps=3, driver="baseline", simtrace=False).results
    assert spread.completed_laps == 3 and spread.lap_times_s == pytest.approx(evaluated.report.lap_times_s)
    assert len({round(t, 3) for t in from_the_line.lap_times_s}) == 1
    assert len({round(t, 3) for t in spread.lap_times_s}) > 1


def test_model_selection_drives_the_laps_evaluate_drives(trained_run):
    """validate_model of a one-track time trial with eval_laps 3 reports the laps `evaluate --laps 3` reports."""
    import dataclasses

    from deepracer_rl.algorithms import load_model
    from deepracer_rl.evaluate_runs import evaluate_target
    from deepracer_rl.train import validate_model

    run = RunDir(trained_run)
    config = dataclasses.replace(run.load_config(), eval_laps=3)
    selected = validate_model(load_model(run.best_model, algo=config.algo), config, run)
    (evaluated,) = evaluate_target(str(run.path), track=config.track, laps=3, simtrace=False).results
    assert selected.laps == 3 and selected.statuses == evaluated.report.statuses
    assert selected.progress == pytest.approx(evaluated.report.progress, abs=1e-6)
    assert len({round(p, 3) for p in selected.progress}) > 1  # three starts, not one lap three times
