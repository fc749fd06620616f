"""`deepracer-rl train/evaluate/plot --env ID`: the seed envs through the same CLI as the car."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepracer_rl.cli import main
from deepracer_rl.envs import AUTOSCALING_ID, PORTFOLIO_ID
from deepracer_rl.envs.compare import COLUMNS, POLICY_NAME

CLI = [sys.executable, "-m", "deepracer_rl.cli"]
SMALL = {PORTFOLIO_ID: ["n_periods=400", "window=10", "episode_length=60"], AUTOSCALING_ID: ["n_days=10"]}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def env_args(env_id: str) -> list[str]:
    return [arg for pair in SMALL[env_id] for arg in ("--env-arg", pair)]


@pytest.mark.parametrize("env_id", [PORTFOLIO_ID, AUTOSCALING_ID])
def test_train_evaluate_json_and_plot_round_trip(tmp_path, env_id):
    run_dir = tmp_path / "run"
    result = run_cli(
        "train", "--env", env_id, "--steps", "300", "--out", str(run_dir), "--seed", "1", *env_args(env_id)
    )
    assert result.returncode == 0, result.stderr
    model = next(run_dir.glob("*_ppo.zip"))
    assert str(model) in result.stdout
    assert json.loads(model.with_suffix(".json").read_text())["env_kwargs"]  # the --env-arg settings

    result = run_cli("evaluate", "--env", env_id, str(run_dir), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    policies = report["policies"]
    assert POLICY_NAME in policies and len(policies) >= 3  # the policy and at least two baselines
    assert all(set(COLUMNS[report["kind"]]) <= set(m) for m in policies.values())
    assert "series" not in json.dumps(report)
    versus = report["versus_baseline"]
    assert versus["best_baseline"] in policies and versus["ahead"] in ("policy", "baseline")
    saved = Path(report["evaluation_json"])
    assert saved.parent == run_dir and "series" in json.loads(saved.read_text())["policies"][POLICY_NAME]

    result = run_cli("plot", "--env", env_id, str(run_dir))
    assert result.returncode == 0, result.stderr
    assert f"reusing {saved}" in result.stdout  # no second evaluation
    pngs = sorted((run_dir / "plots").glob("*.png"))
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" and str(p) in result.stdout for p in pngs)


def test_evaluate_prints_the_table_and_which_is_ahead_without_a_model(capsys):
    assert main(["evaluate", "--env", PORTFOLIO_ID, *env_args(PORTFOLIO_ID)]) == 0
    out = capsys.readouterr().out
    assert all(column in out for column in COLUMNS["portfolio"])
    assert "buy_and_hold" in out and "best baseline" in out


def test_unknown_env_id_lists_the_known_ones(capsys):
    assert main(["evaluate", "--env", "deepracer_rl/Nope-v0"]) == 2
    err = capsys.readouterr().err
    assert "Nope-v0" in err and PORTFOLIO_ID in err and AUTOSCALING_ID in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--env", PORTFOLIO_ID, "--steps", "10", "--out", "x", "--track", "reinvent_base"], "--track"),
        (["train", "--env", PORTFOLIO_ID, "--out", "x"], "--steps"),
        (["evaluate", "--env", PORTFOLIO_ID, "--env-arg", "no_such=1"], "no_such"),
        (["evaluate", "--env", PORTFOLIO_ID, "missing.zip"], "missing.zip"),
        (["plot", "run", "--seed", "3"], "--seed needs --env"),
    ],
)
def test_misused_options_get_one_line_errors(capsys, args, words):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.splitlines()) == 1


def test_a_model_of_the_other_env_is_refused(tmp_path, capsys):
    model = tmp_path / "autoscaling-v0_ppo.zip"
    model.write_bytes(b"")  # refused from its config before it is loaded
    model.with_suffix(".json").write_text(json.dumps({"env_id": AUTOSCALING_ID}))
    assert main(["evaluate", "--env", PORTFOLIO_ID, str(model)]) == 2
    assert f"trained on {AUTOSCALING_ID}" in capsys.readouterr().err
