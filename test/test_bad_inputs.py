"""The bad-input suite (issue 18): each bad input or fault a user can cause, with its exact outcome.

Outcomes: a *clear error* (one message naming the file, field, option or topic and what was
expected; exit code 2 from the CLI; nothing written or lost) or *handled safely* (the input is
corrected or contained and the run goes on, or stops keeping its work). Cases tested next to the
code they concern are listed in `ELSEWHERE` and checked to exist, so this module is the index of
every case: `python -m pytest test/test_bad_inputs.py -q` runs the ones here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from processes import SimProcess
from test_train import tiny_config

from deepracer_rl.cli import main
from deepracer_rl.config import ConfigError, TrainConfig
from deepracer_rl.race import RaceCore
from deepracer_rl.reward import RewardFunctionError, sample_params
from deepracer_rl.reward_process import GRACE_S, IsolatedReward, RewardIsolation
from deepracer_rl.track import Track
from deepracer_rl.train import TrainingError, train

CLEAR, SAFE = "clear error", "handled safely"
# Every case of issue 18's list: (case, outcome, test). A test named without a module is in this one.
CASES = [
    # reward functions
    ("reward hangs mid-training", SAFE, "test_training_stops_with_a_checkpoint_when_the_reward_hangs_or_exits"),
    ("reward hangs in C code", SAFE, "test_a_reward_that_hangs_in_c_code_is_killed_by_the_parent"),
    (
        "Ctrl-C while the reward hangs",
        SAFE,
        "test_ctrl_c_while_the_reward_hangs_stops_training_at_once_with_a_checkpoint",
    ),
    ("reward calls os._exit", SAFE, "test_a_reward_calling_os_exit_is_reported_with_the_exit_code_and_params"),
    (
        "KeyboardInterrupt raised in the reward",
        CLEAR,
        "test_a_keyboard_interrupt_raised_by_the_reward_is_its_error_not_the_users_ctrl_c",
    ),
    (
        "reward mutates params",
        SAFE,
        "test_a_reward_that_changes_params_changes_neither_later_calls_nor_the_logged_params",
    ),
    (
        "reward allocates without bound",
        CLEAR,
        "test_a_reward_that_allocates_too_much_memory_gets_a_memory_error_naming_the_limit",
    ),
    ("reward deletes files (trusted code: documented)", CLEAR, "test_the_readme_says_reward_code_is_trusted"),
    (
        "reward raises / returns a bad value",
        CLEAR,
        "test_reward.py::test_a_broken_reward_function_is_refused_when_called",
    ),
    (
        "reward fails mid-training",
        SAFE,
        "test_train.py::test_reward_failing_mid_training_stops_with_its_error_and_a_checkpoint",
    ),
    ("broken reward file", CLEAR, "test_train.py::test_broken_reward_fails_before_training_with_the_file_and_line"),
    # runs
    ("--resume with an edited reward", CLEAR, "test_resume_refuses_an_edited_reward_with_a_diff_and_force_adopts_it"),
    ("--resume with a changed track file", CLEAR, "test_resume_refuses_a_track_file_changed_since_the_run_started"),
    ("--resume with changed settings", CLEAR, "test_resume_refuses_changed_settings_naming_each"),
    ("--resume with another action space", CLEAR, "test_train.py::test_resume_with_different_metadata_says_so"),
    ("--out is a directory of other files", CLEAR, "test_train_refuses_an_out_directory_holding_other_files"),
    (
        "two trainings into one --out",
        CLEAR,
        "test_architecture.py::test_train_refuses_a_second_training_into_the_same_run",
    ),
    (
        "stale lock of a dead process",
        SAFE,
        "test_architecture.py::test_a_run_directory_is_locked_while_training_writes_into_it",
    ),
    (
        "malformed config.json / state.json",
        CLEAR,
        "test_architecture.py::test_a_malformed_config_or_state_names_the_file",
    ),
    ("malformed or mismatching SHA256SUMS / export", CLEAR, "test_train.py::test_corrupt_export_gets_a_clear_error"),
    (
        "simtrace after kill -9 and resume",
        SAFE,
        "test_train.py::test_killed_run_resumes_losing_at_most_one_checkpoint_interval",
    ),
    # metadata
    (
        "action list reordered before export",
        CLEAR,
        "test_action_integrity.py::test_export_refuses_a_run_whose_action_list_was_reordered_after_training",
    ),
    (
        "export's actions edited",
        CLEAR,
        "test_action_integrity.py::test_the_policy_loader_refuses_an_export_whose_actions_were_edited",
    ),
    (
        "unknown sensor, network or algorithm name",
        CLEAR,
        "test_architecture.py::test_metadata_names_outside_deepracers_schema_are_refused_naming_the_field",
    ),
    (
        "sensor given as a string",
        CLEAR,
        "test_architecture.py::test_metadata_with_a_sensor_string_or_a_sensor_combination_deepracer_lacks_is_refused",
    ),
    (
        "--network deep exported as SHALLOW",
        SAFE,
        "test_architecture.py::test_the_export_names_every_network_as_deepracer_does",
    ),
    ("invalid action in metadata", CLEAR, "test_train.py::test_invalid_metadata_names_the_field"),
    ("non-UTF-8 metadata or CSV", CLEAR, "test_non_utf8_metadata_and_csv_files_are_named_in_the_error"),
    # tracks and numbers
    (
        "self-intersecting, NaN/inf, 1e12, too few points, 30 m wide ... track",
        CLEAR,
        "test_track.py::test_a_malformed_track_file_is_refused_naming_the_file",
    ),
    (
        "--steps -5, --n-envs 10000, --image-size 10000x10000 ...",
        CLEAR,
        "test_train_refuses_numbers_out_of_range_before_writing_anything",
    ),
    (
        "a rollout larger than memory",
        CLEAR,
        "test_a_rollout_buffer_larger_than_half_the_memory_is_refused_with_the_figure",
    ),
    ("evaluate --laps 0 / -3", CLEAR, "test_evaluate_refuses_laps_below_one"),
    # simulator and nodes
    (
        "/cmd_vel of 1e9 m/s",
        SAFE,
        "test_bounded_simulator.py::test_the_simulator_clamps_commands_to_the_cars_limits_and_counts_them",
    ),
    (
        "/initialpose off the track or in another frame",
        CLEAR,
        "test_bounded_simulator.py::test_sim_node_clamps_and_refuses_bad_poses_saying_why",
    ),
    (
        "black, white, noise or 1x1 frames to the inference node",
        SAFE,
        "test_frame_check.py::test_degenerate_frames_are_refused_with_the_reason",
    ),
    (
        "malformed images and commands",
        SAFE,
        "test_ros.py::test_malformed_images_and_commands_are_rejected_and_both_ends_keep_running",
    ),
    ("camera stops while driving", SAFE, "test_inference.py::test_watchdog_stops_the_car_when_the_camera_stops"),
    # seed envs
    ("AutoScaling load of 1e300", CLEAR, "test_a_load_of_1e300_is_refused_naming_the_file"),
    (
        "seed env arguments out of range (NaN, 0 machines, cost 2)",
        CLEAR,
        "test_seed_env_arguments_out_of_range_are_refused",
    ),
    ("prices jumping a thousandfold", CLEAR, "test_a_price_jump_of_a_thousandfold_is_a_data_error_naming_the_file"),
    # faults
    ("kill -9 during a checkpoint write", SAFE, "test_kill_9_while_a_checkpoint_is_written_leaves_a_whole_checkpoint"),
    (
        "simulator killed mid-training (--backend ros)",
        SAFE,
        "test_a_simulator_killed_mid_training_stops_the_run_resumably",
    ),
    ("disk full during export", CLEAR, "test_a_full_disk_during_export_is_named_and_keeps_the_previous_export"),
    # sensors (issue 15)
    (
        "unknown sensor, two lidar kinds, lidar_config sectors not dividing 64, a lidar without a camera",
        CLEAR,
        "test_sensors.py::test_cli_refuses_sensors_that_cannot_be_naming_the_file_and_field_writing_nothing",
    ),
    (
        "a sensor topic carrying another message type",
        CLEAR,
        "test_sensors.py::test_the_inference_node_refuses_a_topic_of_another_message_type",
    ),
]


def test_every_case_names_a_test_that_exists():
    import importlib

    for case, outcome, where in CASES:
        module_name, _, name = where.rpartition("::")
        module = importlib.import_module(module_name.removesuffix(".py")) if module_name else None
        found = getattr(module, name, None) if module else globals().get(name)
        assert callable(found), f"{case}: no test {where}"
        assert outcome in (CLEAR, SAFE)


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


# ---- reward isolation (item 1) -----------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
TINY_CLI = ["--image-size", "40x40", "--network", "small", "--n-envs", "2", "--batch-size", "64"]
TINY_CLI += ["--episodes-between-updates", "2", "--epochs", "1", "--threads", "1"]


def reward_file(tmp_path: Path, body: str, name: str = "reward.py") -> Path:
    """A reward file whose reward_function(params) runs `body` (indented by the caller's text)."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def sample(count: int = 4) -> list[dict]:
    params = sample_params(Track.load("reinvent_base"), count)
    for i, p in enumerate(params):
        p["steps"] = i
    return params


def test_a_reward_that_hangs_is_stopped_at_its_time_limit_naming_the_line_and_params(tmp_path):
    path = reward_file(
        tmp_path,
        """\
        def reward_function(params):
            while params["steps"] >= 2:
                pass
            return 1.0
        """,
    )
    with IsolatedReward(path, RewardIsolation(timeout_s=0.5)) as function:
        started = time.monotonic()
        with pytest.raises(RewardFunctionError) as caught:
            function.batch(sample())
        assert time.monotonic() - started < 0.5 + GRACE_S
    message = str(caught.value)
    assert f"{path}, line 2: reward_function did not return within 0.5 s" in message
    assert "steps=2" in message  # the params of the call that hung


def test_a_reward_that_hangs_in_c_code_is_killed_by_the_parent(tmp_path):
    # A call the child's own timer cannot interrupt: it swallows the timeout and goes on.
    path = reward_file(
        tmp_path,
        """\
        def reward_function(params):
            while True:
                try:
                    while True:
                        pass
                except BaseException:
                    pass
        """,
    )
    with IsolatedReward(path, RewardIsolation(timeout_s=0.3)) as function:
        pid = function.pid
        with pytest.raises(RewardFunctionError, match=r"did not return within 2.3 s and was stopped"):
            function.batch(sample(1))
        with pytest.raises(RewardFunctionError, match="the reward process has stopped: .* did not return"):
            function.batch(sample(1))  # a stopped reward says so, it does not hang again
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped


def test_a_reward_calling_os_exit_is_reported_with_the_exit_code_and_params(tmp_path):
    path = reward_file(
        tmp_path,
        """\
        import os
        def reward_function(params):
            if params["steps"] == 3:
                os._exit(7)
            return 1.0
        """,
    )
    with IsolatedReward(path) as function, pytest.raises(RewardFunctionError) as caught:
        function.batch(sample())
    assert "the reward process exited with code 7 while running reward_function" in str(caught.value)
    assert "steps=3" in str(caught.value)


def test_a_keyboard_interrupt_raised_by_the_reward_is_its_error_not_the_users_ctrl_c(tmp_path):
    path = reward_file(tmp_path, "def reward_function(params):\n    raise KeyboardInterrupt('mine')\n")
    with IsolatedReward(path) as function, pytest.raises(RewardFunctionError) as caught:
        function(sample(1)[0])
    assert f"{path}, line 2: reward_function raised KeyboardInterrupt: mine" in str(caught.value)


def test_a_reward_that_allocates_too_much_memory_gets_a_memory_error_naming_the_limit(tmp_path):
    path = reward_file(tmp_path, "def reward_function(params):\n    return len(bytearray(2 * 1024**3))\n")
    with IsolatedReward(path, RewardIsolation(memory_mb=512)) as function, pytest.raises(RewardFunctionError) as e:
        function(sample(1)[0])
    assert "line 2: reward_function raised MemoryError" in str(e.value)
    assert "memory limit is 512 MiB" in str(e.value)


@pytest.mark.parametrize("isolation", [None, RewardIsolation()], ids=["in-process", "isolated"])
def test_a_reward_that_changes_params_changes_neither_later_calls_nor_the_logged_params(isolation, tmp_path):
    path = reward_file(
        tmp_path,
        """\
        def reward_function(params):
            seen = len(params["waypoints"])
            params["waypoints"].clear()
            params["closest_waypoints"].append(99)
            params["x"] = float("nan")
            params["progress"] = 1e9
            return float(seen)
        """,
    )
    track = Track.load("reinvent_base")
    core = RaceCore.create(track, n_cars=3, reward=str(path), reward_isolation=isolation, sensors=False)
    try:
        core.reset_cars(np.arange(3))
        for _ in range(5):
            rewards, _, params = core.drive(np.zeros(3), np.full(3, 1.0))
            assert rewards.tolist() == [float(len(track.waypoints))] * 3  # every call saw every waypoint
            for p in params:  # what the logs write is what the simulator judged
                assert np.isfinite(p["x"]) and 0.0 <= p["progress"] <= 100.0
                assert len(p["waypoints"]) == len(track.waypoints) and len(p["closest_waypoints"]) == 2
    finally:
        core.close()


def test_the_reward_process_ends_with_the_race(tmp_path):
    core = RaceCore.create("reinvent_base", n_cars=1, reward_isolation=RewardIsolation(), sensors=False)
    pid = core.reward_fn.pid
    core.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_training_stops_with_a_checkpoint_when_the_reward_hangs_or_exits(tmp_path):
    for name, body, expected in (
        ("hangs", "    while True:\n        pass\n", "did not return within 1 s"),
        ("exits", "    import os\n    os._exit(3)\n", "the reward process exited with code 3"),
    ):
        path = tmp_path / f"{name}.py"
        # the dry run and the evaluations have reward processes of their own: count in the training one
        path.write_text(
            "calls = 0\ndef reward_function(params):\n    global calls\n    calls += 1\n"
            f"    if calls < 300:\n        return 1.0\n{body}"
        )
        out = tmp_path / name
        with pytest.raises(TrainingError) as caught:
            train(tiny_config(reward=str(path), steps=5000, reward_timeout=1.0), out)
        message = str(caught.value)
        assert "the reward function failed at step" in message and expected in message, message
        assert str(path) in message and "params: " in message
        assert (out / "checkpoints" / "latest.zip").is_file(), name  # nothing since the last checkpoint is lost


def test_ctrl_c_while_the_reward_hangs_stops_training_at_once_with_a_checkpoint(tmp_path):
    marker = tmp_path / "hanging"
    path = tmp_path / "reward.py"
    path.write_text(
        "import pathlib, time\ncalls = 0\ndef reward_function(params):\n    global calls\n    calls += 1\n"
        "    if calls < 300:\n        return 1.0\n"
        f"    pathlib.Path({str(marker)!r}).touch()\n    time.sleep(3600)\n"
    )
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--reward", str(path), "--steps", "5000", "--reward-timeout", "600", *TINY_CLI]
    process = SimProcess(tmp_path / "train.log", ["deepracer_rl.cli", *args])
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert process.proc.poll() is None, process.output()
            assert time.monotonic() < deadline, process.output()
            time.sleep(0.1)
        started = time.monotonic()
        code = process.interrupt(timeout=20)
    finally:
        process.interrupt()
    output = process.log_path.read_text()
    assert code == 2 and time.monotonic() - started < 10, output
    assert "interrupted; checkpoint saved at step" in output and "Traceback" not in output, output
    assert (out / "checkpoints" / "latest.zip").is_file()


def test_the_readme_says_reward_code_is_trusted():
    readme = (REPO / "README.md").read_text()
    assert "reward code is trusted Python" in readme


# ---- runs that cannot be mixed up (item 2) -------------------------------------------------------
@pytest.fixture(scope="module")
def inputs_run(tmp_path_factory) -> Path:
    """A tiny run trained on its own copies of a track file and a reward file."""
    root = tmp_path_factory.mktemp("inputs_run")
    track = root / "my_track.npy"
    shutil.copyfile(Track.load("reinvent_base").source, track)
    reward = root / "my_reward.py"
    reward.write_text("def reward_function(params):\n    return 1.0 - params['distance_from_center']\n")
    train(tiny_config(track=str(track), reward=str(reward), steps=256, checkpoint_every=128), root / "run")
    return root / "run"


def copy_run(run: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A copy of `run` with copies of its track and reward files, its config pointing at them."""
    out = tmp_path / "run"
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("*.lock"))
    config = json.loads((out / "config.json").read_text())
    track, reward = tmp_path / "my_track.npy", tmp_path / "my_reward.py"
    shutil.copyfile(config["track"], track)
    shutil.copyfile(config["reward"], reward)
    config.update(track=str(track), reward=str(reward))
    (out / "config.json").write_text(json.dumps(config))
    return out, track, reward


def test_resume_refuses_an_edited_reward_with_a_diff_and_force_adopts_it(inputs_run, tmp_path, capsys):
    out, track, reward = copy_run(inputs_run, tmp_path)
    reward.write_text("def reward_function(params):\n    return 2.0\n")
    resume = ["train", "--out", str(out), "--resume", "--steps", "384"]
    assert main(resume) == 2
    err = capsys.readouterr().err
    assert "refusing to resume with changed inputs" in err and f"reward: {reward} is not the reward" in err
    assert "+    return 2.0" in err and "--force" in err  # the diff, and the way on
    assert "distance_from_center" in (out / "reward_function.py").read_text()  # nothing changed in the run
    assert main([*resume, "--force"]) == 0
    assert (out / "reward_function.py").read_text() == reward.read_text()  # the run's record follows
    assert "resumed with --force after" in (out / "resumes.log").read_text()
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["timesteps"] >= 384


def test_resume_refuses_a_track_file_changed_since_the_run_started(inputs_run, tmp_path, capsys):
    out, track, _ = copy_run(inputs_run, tmp_path)
    np.save(track, np.load(track) * 1.01)
    assert main(["train", "--out", str(out), "--resume", "--steps", "384"]) == 2
    err = capsys.readouterr().err
    assert f"track: {track} changed since the run started (sha256" in err and "Traceback" not in err


def test_resume_refuses_changed_settings_naming_each(inputs_run, tmp_path, capsys):
    out, _, _ = copy_run(inputs_run, tmp_path)
    assert main(["train", "--out", str(out), "--resume", "--learning-rate", "0.001", "--seed", "5"]) == 2
    err = capsys.readouterr().err
    assert "--resume keeps the run's settings; these differ" in err
    assert "--learning-rate: the run has 0.0003, given 0.001" in err and "--seed: the run has 0, given 5" in err


def test_resume_takes_the_evaluation_and_checkpoint_cadence_given_and_keeps_the_rest(inputs_run, tmp_path, capsys):
    out, _, _ = copy_run(inputs_run, tmp_path)
    before = json.loads((out / "config.json").read_text())
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["best_laps"] == 1 and (out / "best_model.zip").exists()
    old_best = (out / "best_model.zip").read_bytes()
    cadence = ["--eval-laps", "2", "--eval-every", "128"]
    assert main(["train", "--out", str(out), "--resume", "--steps", "384", *cadence]) == 0
    # a record of 1-lap evaluations is not compared with 2-lap ones: it starts again, the old model kept
    assert "the best-model record starts again" in capsys.readouterr().err
    assert (out / "best_model.previous.zip").read_bytes() == old_best
    assert json.loads((out / "checkpoints" / "state.json").read_text())["best_laps"] == 2
    after = json.loads((out / "config.json").read_text())
    assert (after["eval_laps"], after["eval_every"]) == (2, 128)
    assert after["checkpoint_every"] == before["checkpoint_every"] == 128  # not given: the run's own
    rows = (out / "evaluations.csv").read_text().splitlines()
    assert rows[-1].split(",")[1] == "2"  # the resumed evaluations drove 2 laps


# ---- seed envs (item 5) ----------------------------------------------------------------------------
def test_a_load_of_1e300_is_refused_naming_the_file(tmp_path, capsys):
    csv_path = tmp_path / "load.csv"
    rows = ["timestamp,load"] + [
        f"2024-01-0{1 + i // 144}T{(i % 144) // 6:02d}:{(i % 6) * 10:02d},100" for i in range(5 * 144)
    ]
    rows[300] = rows[300].replace(",100", ",1e300")
    csv_path.write_text("\n".join(rows) + "\n")
    env = ["--env", "deepracer_rl/AutoScaling-v0", "--env-arg", f"csv_path={csv_path}"]
    assert main(["train", "--out", str(tmp_path / "run"), "--steps", "100", *env]) == 2
    err = capsys.readouterr().err
    assert f"{csv_path}: a load of 1e+300 is more than 100 times the full pool's capacity" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("env_id", "arg", "message"),
    [
        ("deepracer_rl/AutoScaling-v0", "capacity=NaN", "AutoScalingEnv: capacity=nan: expected a number within"),
        ("deepracer_rl/AutoScaling-v0", "min_machines=0", "AutoScalingEnv: min_machines=0: expected a number within"),
        ("deepracer_rl/Portfolio-v0", "cost=2", "PortfolioEnv: cost=2: expected a number within 0..0.5"),
        ("deepracer_rl/Portfolio-v0", "window=-1", "PortfolioEnv: window=-1: expected a number within"),
    ],
)
def test_seed_env_arguments_out_of_range_are_refused(env_id, arg, message, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run"), "--steps", "100", "--env", env_id, "--env-arg", arg]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_price_jump_of_a_thousandfold_is_a_data_error_naming_the_file(tmp_path):
    from deepracer_rl.envs.csvdata import CsvDataError
    from deepracer_rl.envs.portfolio import load_prices_csv

    csv_path = tmp_path / "prices.csv"
    csv_path.write_text("date,asset,close\n2020-01-01,A,10\n2020-01-02,A,10000\n2020-01-03,A,10\n")
    with pytest.raises(CsvDataError, match=r"prices.csv: prices of 'A' change by a factor of 1e\+03"):
        load_prices_csv(csv_path)


# ---- faults (item 6) -------------------------------------------------------------------------------
SAVE_LOOP = """
import json, sys, pathlib
from deepracer_rl.algorithms import load_model
from deepracer_rl.rundir import save_model_atomic, write_atomic
model = load_model(sys.argv[1], algo="ppo")
target = pathlib.Path(sys.argv[2])
pathlib.Path(sys.argv[3]).touch()
n = 0
while True:
    n += 1
    save_model_atomic(model, target)
    write_atomic(target.with_name("state.json"), json.dumps({"saves": n}))
"""


def test_kill_9_while_a_checkpoint_is_written_leaves_a_whole_checkpoint(inputs_run, tmp_path):
    from deepracer_rl.algorithms import load_model

    checkpoint = tmp_path / "checkpoints" / "latest.zip"
    checkpoint.parent.mkdir()
    shutil.copyfile(inputs_run / "checkpoints" / "latest.zip", checkpoint)
    rng = np.random.default_rng(0)
    for attempt in range(5):
        ready = tmp_path / f"ready{attempt}"
        args = ["-c", SAVE_LOOP, str(inputs_run / "checkpoints" / "latest.zip"), str(checkpoint), str(ready)]
        writer = SimProcess(tmp_path / f"writer{attempt}.log", args, module=False)
        try:
            deadline = time.monotonic() + 60
            while not ready.exists():
                assert writer.proc.poll() is None and time.monotonic() < deadline, writer.output()
                time.sleep(0.05)
            time.sleep(float(rng.uniform(0.05, 0.6)))  # somewhere inside a save
            os.killpg(writer.proc.pid, signal.SIGKILL)
            writer.proc.wait(10)
        finally:
            writer.interrupt()
        load_model(checkpoint, algo="ppo")  # whole: the old or the new file, never half of one
        state = checkpoint.parent / "state.json"
        assert not state.exists() or json.loads(state.read_text())["saves"] >= 1


def test_a_simulator_killed_mid_training_stops_the_run_resumably(simulators, tmp_path):
    lockstep = ("lockstep:=true", "image_width:=160", "image_height:=120", "encoding:=mono8")
    sim = simulators(params=lockstep)
    sim.wait_started()
    out = tmp_path / "run"
    args = ["train", "--backend", "ros", "--out", str(out), "--ros-timeout", "3", "--checkpoint-every", "128"]
    args += ["--image-size", "40x40", "--network", "small", "--batch-size", "64", "--episodes-between-updates", "1"]
    trainer = SimProcess(tmp_path / "train.log", ["deepracer_rl.cli", *args, "--steps", "100000"])
    state = out / "checkpoints" / "state.json"
    try:
        deadline = time.monotonic() + 180
        while not state.exists():
            assert trainer.proc.poll() is None and time.monotonic() < deadline, trainer.output() + sim.output()
            time.sleep(0.1)
        os.killpg(sim.proc.pid, signal.SIGKILL)  # the simulator dies mid-rollout
        code, output = trainer.run_to_end(timeout=60)
    finally:
        trainer.interrupt()
        sim.interrupt()
    assert code == 2, output
    assert "deepracer-rl train: error: the simulator did not answer (checkpoint saved at step" in output, output
    assert "continue with --resume" in output and "Traceback" not in output
    saved = json.loads(state.read_text())["timesteps"]
    assert saved >= 128

    sim = simulators(params=lockstep)  # a new simulator, and the run goes on from its checkpoint
    sim.wait_started()
    resumed = SimProcess(tmp_path / "resume.log", ["deepracer_rl.cli", *args, "--steps", str(saved + 128), "--resume"])
    code, output = resumed.run_to_end(timeout=180)
    assert code == 0, output + sim.output()
    assert json.loads(state.read_text())["timesteps"] >= saved + 128


def _limit_file_size() -> None:
    """In the child: files may grow to 20 kB only (writing more fails with EFBIG, as a full disk fails)."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_a_full_disk_during_export_is_named_and_keeps_the_previous_export(inputs_run, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "export"
    export = [sys.executable, "-m", "deepracer_rl.cli", "export", str(inputs_run), "--out", str(out)]
    first = subprocess.run(export, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    full = subprocess.run(export, capture_output=True, text=True, timeout=300, cwd=REPO, preexec_fn=_limit_file_size)
    assert full.returncode == 2, full.stderr
    assert f"deepracer-rl export: error: {out}: the export could not be written (File too large" in full.stderr
    assert "the previous export there, if any, is unchanged" in full.stderr and "Traceback" not in full.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no staging folder, no half file
