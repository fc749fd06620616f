"""The racing recipe of issue 19, item 4 (docs/racing.md, "Training toward the limit"): its action
space holds the racing line's actions plus the recovery actions, its reward embeds the shipped line
and prefers the racing line, the other tracks' inputs are what `actions --recovery` and `raceline
--reward-pace` generate, a shipped model (models/racing_reinvent_base/) is intact and laps
reinvent_base within 15 % of the driven optimum, and benchmarks/racing.py's evaluation path and
training records work."""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from deepracer_rl.action_space import ActionSpace
from deepracer_rl.config import TrainConfig
from deepracer_rl.raceline import compute_raceline
from deepracer_rl.racing import (
    CORRECTION_MARGIN,
    RECOVERY_ACTIONS,
    _clipped_needs,
    _steer_limit,
    raceline_action_space,
    read_training_record,
    recipe_action_space,
    recipe_continuous_space,
    recovery_actions,
    reward_source,
    score_along_lines,
    training_record,
    write_training_record,
)
from deepracer_rl.reward import EXAMPLES_DIR, RewardFunction
from deepracer_rl.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]
METADATA = REPO / "config" / "racing_reinvent_base.json"
REWARD = REPO / "config" / "racing_reinvent_base_reward.py"
MODEL = REPO / "models" / "racing_reinvent_base"
DRIVEN_OPTIMUM_S = 4.867  # docs/racing.md: reinvent_base's line driven from standstill


OTHER_TRACKS = ("Oval_track", "Bowtie_track", "reInvent2019_track")  # the recipe's other tracks


@functools.cache
def _line(track: str = "reinvent_base", reverse: bool = False):
    return compute_raceline(track, reverse=reverse)


def _assignments(path: Path) -> dict:
    return _assignments_of(path.read_text(encoding="utf-8"))


# The optimiser's floating point differs between CPUs (BLAS kernels): the same code moved
# reinvent_base's line by 7 mm and reInvent2019_track's by 26 mm between the machine that made the
# shipped files and an AMD EPYC, and the greedy choice of 10 actions from the line's needs then
# picks other, equally good, pairs. So the shipped inputs are checked to that tolerance: the line
# within LINE_TOLERANCE_M, and the line's actions covering the fresh line's needs as well as the
# generator's own choice does (COVERAGE_SLACK).
LINE_TOLERANCE_M = 0.05
COVERAGE_SLACK = 1.1


def _largest_gap(actions: np.ndarray, line) -> float:
    """The need of `line` farthest from `actions`, in the units the generator chooses actions in
    (steering of the steering limit, speed of the top speed)."""
    needs = _clipped_needs(line)
    scale = np.array([_steer_limit(line), line.limits.max_speed])
    return float(np.linalg.norm((needs[:, None] - np.asarray(actions)[None]) / scale, axis=2).min(axis=1).max())


def _assert_line_actions_cover(shipped: np.ndarray, line) -> None:
    generated = raceline_action_space(line, n=10).actions
    assert len(shipped) == len(generated) == 10
    assert _largest_gap(shipped, line) <= COVERAGE_SLACK * _largest_gap(generated, line), (shipped, generated)


def test_recipe_actions_are_the_lines_plus_recovery():
    pairs = [tuple(a) for a in ActionSpace.load(METADATA).actions]
    assert len(pairs) == 13
    _assert_line_actions_cover(np.array(pairs[:10]), _line())
    assert pairs[10:] == [(-15.0, 2.0), (25.0, 1.5), (20.0, 2.2)]
    # `actions --recovery` makes it: the line's actions, then the recovery actions
    assert [tuple(a) for a in recipe_action_space(_line(), n=10).actions[10:]] == pairs[10:]


def test_recovery_min_speed_leaves_out_the_slow_recovery_actions(tmp_path, capsys):
    """Bowtie_track's variant (docs/racing.md): `actions --recovery --recovery-min-speed 2` drops (25°, 1.5 m/s)."""
    from deepracer_rl.cli import main

    full = recipe_action_space(_line(), n=10).actions
    fast = recipe_action_space(_line(), n=10, recovery_min_speed=2.0).actions
    assert [tuple(a) for a in fast[10:]] == [(-15.0, 2.0), (20.0, 2.2)]
    assert np.allclose(fast[:10], full[:10])
    out = tmp_path / "fast.json"
    assert (
        main(
            [
                "actions",
                "--from-raceline",
                "reinvent_base",
                "--recovery",
                "--recovery-min-speed",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert np.allclose(ActionSpace.load(out).actions, fast)
    assert main(["actions", "--from-raceline", "reinvent_base", "--recovery-min-speed", "2", "--out", str(out)]) != 0
    assert "needs --recovery" in capsys.readouterr().err


def test_recovery_actions_turn_the_way_the_line_turns():
    assert recovery_actions(_line()) == list(RECOVERY_ACTIONS)  # reinvent_base: counter-clockwise
    assert recovery_actions(_line("reinvent_base", reverse=True)) == [(15.0, 2.0), (-25.0, 1.5), (-20.0, 2.2)]


def _function_source(text: str) -> list[str]:
    """The reward file's imports and functions (all but its docstring and RACELINE), as ast dumps."""
    tree = ast.parse(text)
    return [ast.dump(node) for node in tree.body if isinstance(node, (ast.FunctionDef, ast.Import))]


@pytest.mark.parametrize("track", ("reinvent_base", *OTHER_TRACKS))
def test_recipe_inputs_are_generated(track):
    """config/racing_<track>.json and _reward.py are `actions --from-raceline TRACK --n 10 --recovery`
    and `raceline TRACK --reward-file F --reward-pace`, to the optimiser's floating point on this CPU
    (LINE_TOLERANCE_M, COVERAGE_SLACK)."""
    line = _line(track)
    pairs = ActionSpace.load(REPO / "config" / f"racing_{track}.json").actions
    fresh_pairs = recipe_action_space(line, n=10).actions
    assert len(pairs) == len(fresh_pairs)
    _assert_line_actions_cover(pairs[:10], line)
    assert np.allclose(pairs[10:], fresh_pairs[10:])  # the recovery actions
    shipped_text = (REPO / "config" / f"racing_{track}_reward.py").read_text(encoding="utf-8")
    generated = reward_source(line, pace=True)
    assert _function_source(shipped_text) == _function_source(generated)
    shipped = np.array(_assignments_of(shipped_text)["RACELINE"])
    fresh = np.array(_assignments_of(generated)["RACELINE"])
    assert shipped.shape == fresh.shape
    assert np.abs(shipped[:, :2] - fresh[:, :2]).max() < LINE_TOLERANCE_M


def test_bowtie_continuous_space_is_generated(tmp_path, capsys):
    """config/racing_Bowtie_track_continuous.json is `actions --from-raceline Bowtie_track --continuous
    --recovery`: the line's needs (-7..12°, 2.8..4 m/s) widened by the recipe's room for corrections."""
    from deepracer_rl.cli import main

    line = _line("Bowtie_track")
    needs = raceline_action_space(line, continuous=True)
    shipped = ActionSpace.load(REPO / "config" / "racing_Bowtie_track_continuous.json")
    assert shipped.kind == "continuous" and (shipped.steering_range, shipped.speed_range) == ((-12.0, 20.0), (2.2, 4.0))
    fresh = recipe_continuous_space(line)  # the line is left-turning overall: 8° more to the left
    assert np.allclose(fresh.steering_range, shipped.steering_range, atol=1.0)  # a needed degree may round either way
    assert np.allclose(fresh.speed_range, shipped.speed_range, atol=0.1)
    away, toward, slower = CORRECTION_MARGIN
    assert fresh.steering_range == (needs.steering_range[0] - away, needs.steering_range[1] + toward)
    assert fresh.speed_range == (pytest.approx(needs.speed_range[0] - slower), needs.speed_range[1])
    out = tmp_path / "continuous.json"
    assert main(["actions", "--from-raceline", "Bowtie_track", "--continuous", "--recovery", "--out", str(out)]) == 0
    assert ActionSpace.load(out).to_metadata() == fresh.to_metadata()
    args = ["actions", "--from-raceline", "Bowtie_track", "--continuous", "--recovery", "--recovery-min-speed", "2"]
    assert main([*args, "--out", str(out)]) != 0
    assert "not with --continuous" in capsys.readouterr().err
    mirrored = recipe_continuous_space(_line("Bowtie_track", reverse=True))
    assert mirrored.steering_range[0] < -needs.steering_range[1]  # reversed: the extra room on the right


def _assignments_of(text: str) -> dict:
    tree = ast.parse(text)
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }


def test_recipe_reward_embeds_the_shipped_line_and_prefers_it():
    assert _assignments(REWARD)["RACELINE"] == _assignments(EXAMPLES_DIR / "raceline_distance.py")["RACELINE"]
    scores = score_along_lines(RewardFunction(REWARD), _line())
    assert scores["raceline"]["lap_reward"] > scores["centerline"]["lap_reward"]
    assert scores["raceline"]["mean_reward"] > scores["centerline"]["mean_reward"]


# docs/racing.md: each track's line driven from standstill (reInvent2019_track: 5.800-5.867 s by CPU)
DRIVEN_S = {"reinvent_base": DRIVEN_OPTIMUM_S, "Oval_track": 5.333, "Bowtie_track": 4.933, "reInvent2019_track": 5.8}


@pytest.mark.parametrize("track", ("reinvent_base", *OTHER_TRACKS))
def test_shipped_recipe_model_is_intact_and_laps_within_15_percent(track, capsys):
    from deepracer_rl.cli import main

    model = REPO / "models" / f"racing_{track}"
    for line in (model / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((model / name.lstrip("*")).read_bytes()).hexdigest() == digest, name
    assert main(["evaluate", str(model), "--track", track, "--laps", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["completed_laps"] == 1
    assert max(report["lap_times_s"]) <= 1.15 * DRIVEN_S[track]
    assert np.isfinite(report["lap_times_s"]).all()


def _benchmark():
    spec = importlib.util.spec_from_file_location("racing_benchmark", REPO / "benchmarks" / "racing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not MODEL.exists(), reason="no recipe model shipped")
def test_benchmark_evaluates_a_shipped_model():
    """benchmarks/racing.py's evaluation path (`evaluate MODEL`) and training record of a shipped model."""
    bench = _benchmark()
    laps = bench.learned_laps(MODEL, "reinvent_base", laps=1)
    assert laps["learned_completed_laps"] == laps["learned_attempted_laps"] == 1
    assert laps["learned_lap_s"] == laps["learned_lap_times_s"][0] <= 1.15 * DRIVEN_OPTIMUM_S
    for track in bench.TRACKS:
        record = read_training_record(REPO / "models" / f"racing_{track}")
        assert record["track"] == track and record["minutes"] > 0 and record["best"]["lap_s"] > 0


def test_training_record_reads_the_runs_records(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.save_config(TrainConfig(track="Oval_track", seed=3))
    for row in (
        {"timesteps": 2048, "wall_s": 30.0},
        {"timesteps": 4096, "wall_s": 60.0},
        {"timesteps": 6144, "wall_s": 90.0},
    ):
        run.append_csv(run.progress_csv, {"iteration": 1, **row})
    for steps, times, progress in ((2000, "", 40.0), (4000, "6.2", 100.0), (6000, "6.5", 100.0)):
        run.append_csv(run.evaluations_csv, {"timesteps": steps, "lap_times_s": times, "mean_progress": progress})
    record = training_record(run.path)
    assert record["track"] == "Oval_track" and record["seed"] == 3
    assert (record["timesteps"], record["minutes"]) == (6144, 1.5)
    assert record["best"] == {"timesteps": 4000, "lap_s": 6.2, "progress": 100.0, "minutes": 1.0}
    assert record["evaluation_laps"] == [[2000, None], [4000, 6.2], [6000, 6.5]]
    with pytest.raises(FileNotFoundError, match="no model.onnx"):
        write_training_record(run.path, tmp_path / "export")
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "model.onnx").write_bytes(b"")
    write_training_record(run.path, tmp_path / "export")
    assert read_training_record(tmp_path / "export") == record
    assert read_training_record(tmp_path) == {}


def test_training_record_ranks_as_the_run_selected(tmp_path):
    """With --select-by mean_lap the record's best evaluation is the best mean lap, as best_model.zip."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.save_config(TrainConfig(track="Bowtie_track", eval_laps=3, select_by="mean_lap"))
    run.append_csv(run.progress_csv, {"iteration": 1, "timesteps": 6144, "wall_s": 90.0})
    for steps, times in ((2000, "5.4 5.5 6.4"), (4000, "5.7 5.7 5.7"), (6000, "5.3 6.5 6.5")):
        run.append_csv(run.evaluations_csv, {"timesteps": steps, "lap_times_s": times, "mean_progress": 100.0})
    record = training_record(run.path)
    assert record["best"]["timesteps"] == 4000 and record["best"]["lap_s"] == pytest.approx(5.7)
    assert record["evaluation_laps"][0] == [2000, 5.767]  # the mean, to the ms
