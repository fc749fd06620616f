"""Numbers the CLI takes are range-checked before any work starts: one clear line, exit code 2,
nothing written (issue 18: `--steps -5`, `--n-envs 10000`, `--image-size 10000x10000`, `--laps 0`)."""

from __future__ import annotations

import pytest

from deepracer_rl.cli import main
from deepracer_rl.config import ConfigError, TrainConfig


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "-5"], "--steps -5: expected a number within 1..1e+10"),
        (["--steps", "0"], "--steps 0: expected a number within"),
        (["--n-envs", "10000"], "--n-envs 10000: expected a number within 1..256"),
        (["--image-size", "10000x10000"], "--image-size 10000x10000: each side must be within 36..1280 pixels"),
        (["--image-size", "20x20"], "--image-size 20x20: each side must be within 36..1280 pixels"),
        (["--image-size", "big"], "--image-size 'big': expected WIDTHxHEIGHT"),
        (["--discount", "2"], "--discount 2.0: expected a number within"),
        (["--learning-rate", "0"], "--learning-rate 0.0: expected a number within"),
        (["--max-minutes", "-1"], "--max-minutes -1.0: expected a positive number of minutes"),
        (["--batch-size", "0"], "--batch-size 0: expected a number within"),
    ],
)
def test_train_refuses_numbers_out_of_range_before_writing_anything(args, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepracer-rl train: error: ") and message in err, err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("laps", ["0", "-3"])
def test_evaluate_refuses_laps_below_one(laps, capsys):
    assert main(["evaluate", "--driver", "baseline", "--laps", laps]) == 2
    assert f"--laps must be at least 1, got {laps}" in capsys.readouterr().err


def test_a_rollout_buffer_larger_than_half_the_memory_is_refused_with_the_figure():
    config = TrainConfig(n_envs=64, image_width=1280, image_height=960)
    with pytest.raises(ConfigError, match=r"the rollout buffer alone needs [\d.]+ GiB, more than half of this machine"):
        config.validate(memory_limit=8 * 2**30)
    TrainConfig().validate(memory_limit=8 * 2**30)  # the defaults need a few tens of MB


def test_train_refuses_an_out_directory_holding_other_files(tmp_path, capsys):
    out = tmp_path / "my_documents"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert main(["train", "--out", str(out), "--steps", "100"]) == 2
    err = capsys.readouterr().err
    assert "is not a run directory and not empty (thesis.tex)" in err and "nothing was written" in err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
    assert (out / "thesis.tex").read_text() == "precious"


def test_training_into_a_log_writes_a_few_plain_progress_lines_and_takes_threads(tmp_path):
    """stderr that is not a terminal (a log, CI, ros2 launch) gets plain lines, not a redraw 10 times a second."""
    import json
    import subprocess
    import sys

    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--steps", "600", "--image-size", "40x40", "--network", "small"]
    args += ["--n-envs", "2", "--batch-size", "64", "--episodes-between-updates", "2", "--threads", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "deepracer_rl.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    redraws = result.stderr.count("\r")
    assert redraws <= 4, result.stderr  # the first and last state, not one per update
    assert "step" in result.stderr
    assert json.loads((out / "config.json").read_text())["torch_threads"] == 1


def test_non_utf8_metadata_and_csv_files_are_named_in_the_error(tmp_path, capsys):
    from deepracer_rl.envs.csvdata import CsvDataError, read_rows

    metadata = tmp_path / "model_metadata.json"
    metadata.write_bytes(b'{"action_space": [{"steering_angle": 0, "speed": 1, "name": "\xe9t\xe9"}]}')
    assert main(["train", "--out", str(tmp_path / "run"), "--metadata", str(metadata), "--steps", "10"]) == 2
    err = capsys.readouterr().err
    assert f"{metadata}: not UTF-8 text (byte" in err and "Traceback" not in err
    prices = tmp_path / "prices.csv"
    prices.write_bytes(b"date,close\n2020-01-01,1\xff0\n")
    with pytest.raises(CsvDataError, match=r"prices.csv: not UTF-8 text \(byte"):
        list(read_rows(prices, ["date", "close"]))
