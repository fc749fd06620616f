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
# The portfolio on its default (shipped monthly stock) data, two walk-forward folds.
SMALL = {PORTFOLIO_ID: ["n_folds=2"], AUTOSCALING_ID: ["n_days=10"]}


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
    full = json.loads(saved.read_text())
    per_step = full["folds"][-1]["policies"] if "folds" in full else full["policies"]  # portfolio: per fold
    assert saved.parent == run_dir and "series" in per_step[POLICY_NAME]
    if report["kind"] == "portfolio":
        assert len(report["folds"]) == 2 and 0 <= versus["folds_policy_ahead"] <= 2
        assert all(POLICY_NAME in f["policies"] for f in report["folds"])

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
    assert "fold 1: train 2001-01-01..2009-03-01, test 2009-03-01..2010-03-01" in out
    assert all(name in out for name in ("equal_weight", "min_variance", "momentum", "mean over 2 folds"))


def _prices_csv(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (["date,asset,price", "2024-01-02,AAA,10"], "row 1: missing column(s) ['close']"),
        (["date,asset,close", "2024-01-02,AAA,10", "2024-01-03,AAA,ten"], "row 3: bad number 'ten' in column 'close'"),
        (
            ["date,asset,close"] + [f"2024-01-{d:02d},AAA,{10 + d}" for d in range(1, 11)],
            "9 periods are too few for 5 walk-forward folds",
        ),
    ],
)
def test_bad_price_csv_is_one_line_naming_the_file(tmp_path, capsys, lines, words):
    csv = _prices_csv(tmp_path / "prices.csv", lines)
    assert main(["evaluate", "--env", PORTFOLIO_ID, "--env-arg", f"csv_path={csv}", "--env-arg", "max_gap=1"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "max_gap" in err  # unknown argument first
    assert main(["evaluate", "--env", PORTFOLIO_ID, "--env-arg", f"csv_path={csv}"]) == 2
    err = capsys.readouterr().err
    assert csv in err and words in err and len(err.splitlines()) == 1 and "Traceback" not in err


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
        (["evaluate", "--env", PORTFOLIO_ID, "--env-arg", "fold=1"], "fold: set per fold"),
        (["evaluate", "--env", PORTFOLIO_ID, "--env-arg", "max_cash=2"], "max_cash=2: expected a number within 0..1"),
        (["evaluate", "--env", PORTFOLIO_ID, "--env-arg", "action_mode=tilt"], "action_mode='tilt': expected one of"),
        (["evaluate", "--env", PORTFOLIO_ID, "--env-arg", 'assets=["GOOG", "MSFT"]'], "stocks.csv: row"),
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
