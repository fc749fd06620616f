"""The racing line (issue 19, items 1-3): on every shipped track in both directions the line keeps
the margin from the borders, obeys the car model's limits, beats the centre line's own speed
profile and is driven in the simulator within 5 % of its prediction; its files load; action
spaces made from it cover what it needs; the shipped raceline rewards are the generator's and
prefer the racing line to the centre line."""

from __future__ import annotations

import ast
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from track_sets import REPRESENTATIVE_TRACKS

from deepracer_rl.action_space import SPEED_MIN, ActionSpace
from deepracer_rl.car import CarSpec
from deepracer_rl.cli import main
from deepracer_rl.raceline import CSV_COLUMNS, CarLimits, RacelineError, compute_raceline, curvature_of
from deepracer_rl.racing import raceline_action_space, reward_source, score_along_lines, verify_raceline
from deepracer_rl.reward import EXAMPLES_DIR, RewardFunction
from deepracer_rl.sim import GRAVITY, Dynamics
from deepracer_rl.track import Track

REPO = Path(__file__).resolve().parents[1]
# Every shipped track in both directions is checked by `benchmarks/raceline.py --reverse`; the suite drives
# the representative set (track_sets.py): about 2 s per line.
CASES = [(name, reverse) for name in REPRESENTATIVE_TRACKS for reverse in (False, True)]
# Its hairpin made the lap-time step turn tighter than the steering allows (with one BLAS thread): kept here.
CASES.append(("Tokyo_Training_track", True))
_LINES: dict = {}


def line_of(name: str, reverse: bool = False):
    """The racing line of a shipped track (computed once per session)."""
    key = (name, reverse)
    if key not in _LINES:
        _LINES[key] = compute_raceline(name, reverse=reverse)
    return _LINES[key]


def distance_to_borders(track: Track, points: np.ndarray) -> np.ndarray:
    """Metres from each point to the nearest border segment."""
    rings = [np.vstack([b, b[:1]]) if track.closed else b for b in (track.inner, track.outer)]
    a = np.concatenate([r[:-1] for r in rings])
    d = np.concatenate([r[1:] for r in rings]) - a
    rel = points[:, None] - a[None]
    t = np.clip(np.einsum("pek,ek->pe", rel, d) / np.einsum("ek,ek->e", d, d), 0.0, 1.0)
    return np.linalg.norm(rel - t[..., None] * d[None], axis=2).min(axis=1)


@pytest.mark.parametrize(("name", "reverse"), CASES, ids=[f"{n}{'-reversed' if r else ''}" for n, r in CASES])
def test_the_line_keeps_the_margin_obeys_the_car_and_beats_the_centre_line(name, reverse):
    line = line_of(name, reverse)
    limits = CarLimits.of()
    assert line.margin == pytest.approx(CarSpec.from_urdf().width / 2 + 0.02)
    # Inside the borders less the margin (the line's points and the midpoints between them).
    # An open route's first and last points lie on its ends (the start and finish lines).
    inside = line.points if line.closed else line.points[1:-1]
    dense = np.vstack([inside, 0.5 * (line.points[1:] + line.points[:-1])])
    assert line.track.contains(dense).all()
    assert distance_to_borders(line.track, dense).min() >= line.margin - 0.01
    # The car model's limits: grip, top speed, steering; braking and accelerating between points.
    v, k, ds = line.speed, line.curvature, line.timing.ds
    assert v.max() <= Dynamics().max_speed + 1e-9
    assert np.all(v**2 * np.abs(k) <= Dynamics().grip * GRAVITY + 1e-6)
    assert np.abs(k).max() <= limits.max_curvature
    following = np.roll(v, -1)[: len(ds)] if line.closed else v[1:]
    dv2 = following**2 - v[: len(ds)] ** 2
    assert np.all(dv2 <= 2 * Dynamics().max_accel * ds + 1e-6)
    assert np.all(-dv2 <= 2 * Dynamics().max_brake * ds + 1e-6)
    # Faster than the centre line driven at its own speed profile (a straight: as fast).
    if line.closed:
        assert line.predicted_lap_s < line.centerline.lap_s
        assert line.timing.flying_lap_s < line.centerline.flying_lap_s
    else:
        assert line.predicted_lap_s <= line.centerline.lap_s * 1.005


def test_the_centre_line_profile_matches_the_issues_rough_bound():
    """Issue 19 puts the centre line's profile at 5.26 s on reinvent_base (without the speed lag); ours
    adds the lag, so a little slower, and the racing line is well below both."""
    line = line_of("reinvent_base")
    assert 5.26 <= line.centerline.flying_lap_s < 5.26 * 1.05
    assert line.timing.flying_lap_s < 0.85 * 5.26


@pytest.mark.parametrize(("name", "reverse"), CASES, ids=[f"{n}{'-reversed' if r else ''}" for n, r in CASES])
def test_the_line_is_driven_in_the_simulator_within_5_percent_of_its_prediction(name, reverse):
    line = line_of(name, reverse)
    driven = verify_raceline(line)
    assert driven["driven_laps"]["statuses"] == ["lap_complete"]
    assert driven["driven_lap_s"] == pytest.approx(line.predicted_lap_s, rel=0.05)


def test_raceline_cli_verify_json_prints_predicted_and_driven(tmp_path, capsys):
    reward = tmp_path / "reward.py"
    args = ["raceline", "reinvent_base", "--verify", "--json", "--out", str(tmp_path), "--reward-file", str(reward)]
    code = main(args)
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    result = json.loads(out[0])
    assert result["driven_lap_s"] == pytest.approx(result["predicted_lap_s"], rel=0.05)
    assert result["predicted_lap_s"] < result["centerline_lap_s"]
    files = {kind: Path(path) for kind, path in result["files"].items()}
    assert set(files) == {"npy", "csv", "png", "reward"} and all(p.stat().st_size > 0 for p in files.values())
    # The .npy is a DeepRacer route whose centre line is the racing line.
    route = Track.load(files["npy"])
    line = line_of("reinvent_base")
    assert route.closed and np.allclose(route.waypoints, line.points, atol=1e-9)
    assert route.contains(line.points).all()
    # The CSV: x, y, speed, curvature, s; one row per point.
    with open(files["csv"], newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(line.points) + 1
    table = np.array(rows[1:], dtype=float)
    assert np.allclose(table[:, 2], line.speed, atol=1e-4) and np.allclose(table[:, 4], line.s, atol=1e-4)
    assert np.allclose(table[:, 3], curvature_of(line.points, True), atol=1e-4)


def test_reversed_line_drives_the_other_way():
    forward, backward = line_of("reinvent_base"), line_of("reinvent_base", True)
    assert backward.track.name == "reinvent_base (reversed)"
    assert np.mean(forward.curvature) * np.mean(backward.curvature) < 0  # one turns left overall, the other right


@pytest.mark.parametrize("margin", ["0.5", "-0.1", "nan"])
def test_a_margin_that_leaves_no_road_is_refused_in_one_line(margin):
    with pytest.raises(RacelineError):
        compute_raceline("reinvent_base", margin=float(margin))
    result = subprocess.run(
        [sys.executable, "-m", "deepracer_rl.cli", "raceline", "reinvent_base", "--margin", margin],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "margin" in result.stderr


# ---- action spaces from the line ------------------------------------------------------------
def _unit(pairs: np.ndarray) -> np.ndarray:
    return pairs / np.array([math.degrees(CarSpec.from_urdf().max_steer), Dynamics().max_speed])


def test_actions_from_raceline_cover_what_the_line_needs(tmp_path):
    out = tmp_path / "model_metadata.json"
    assert main(["actions", "--from-raceline", "reinvent_base", "--n", "10", "--out", str(out)]) == 0
    space = ActionSpace.load(out)
    line = line_of("reinvent_base")
    needs = line.needs()
    needs[:, 1] = np.maximum(needs[:, 1], SPEED_MIN)
    assert space.kind == "discrete" and len(space.actions) == 10
    actions = space.actions
    # Straight ahead at the top speed, and the hardest turn either way.
    assert [0.0, round(needs[:, 1].max(), 2)] in actions.tolist()
    assert np.isclose(actions[:, 0].max(), needs[:, 0].max(), atol=0.05)
    assert np.isclose(actions[:, 0].min(), needs[:, 0].min(), atol=0.05)
    # Every need is near some action (steering in units of the limit, speed of the top speed).
    gaps = np.linalg.norm(_unit(needs)[:, None] - _unit(actions)[None], axis=2).min(axis=1)
    assert gaps.max() < 0.1 and gaps.mean() < 0.04, (gaps.max(), gaps.mean())
    assert np.abs(actions[:, 0]).max() <= math.degrees(CarSpec.from_urdf().max_steer)
    assert actions[:, 1].max() <= Dynamics().max_speed


def test_continuous_actions_from_raceline_bound_what_the_line_needs(tmp_path):
    out = tmp_path / "model_metadata.json"
    assert main(["actions", "--from-raceline", "Oval_track", "--continuous", "--out", str(out)]) == 0
    space = ActionSpace.load(out)
    needs = line_of("Oval_track").needs()
    assert space.kind == "continuous"
    low, high = space.steering_range
    assert low <= needs[:, 0].min() and needs[:, 0].max() <= high and high - low < 30
    low, high = space.speed_range
    assert low <= max(needs[:, 1].min(), SPEED_MIN) and needs[:, 1].max() <= high <= Dynamics().max_speed


def test_too_few_discrete_actions_are_refused():
    with pytest.raises(ValueError, match="at least 3"):
        raceline_action_space(line_of("reinvent_base"), n=2)


# ---- rewards along the line -----------------------------------------------------------------
SHIPPED = {"raceline_distance.py": 0.0, "raceline_speed.py": 0.5}


@pytest.mark.parametrize(("name", "weight"), SHIPPED.items())
def test_shipped_raceline_rewards_are_the_generators(name, weight):
    """The embedded line is reinvent_base's (to 1 cm; regenerate with the command in the file)."""
    path = EXAMPLES_DIR / name
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    generated = ast.parse(reward_source(line_of("reinvent_base"), weight))
    expected = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in generated.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    assert values["SPEED_WEIGHT"] == weight
    shipped, fresh = np.array(values["RACELINE"]), np.array(expected["RACELINE"])
    assert shipped.shape == fresh.shape
    assert np.abs(shipped[:, :2] - fresh[:, :2]).max() < 0.01
    # The speed follows the curvature (a second derivative of the line), which moves with the optimiser's
    # last digits (BLAS threads): a few points may differ by a tenth of a m/s, the profile as a whole not.
    speed_gap = np.abs(shipped[:, 2] - fresh[:, 2])
    assert speed_gap.max() < 0.25 and speed_gap.mean() < 0.02


@pytest.mark.parametrize("name", SHIPPED)
def test_raceline_rewards_prefer_the_racing_line(name):
    scores = score_along_lines(RewardFunction(EXAMPLES_DIR / name), line_of("reinvent_base"))
    race, centre = scores["raceline"], scores["centerline"]
    assert race["mean_reward"] > 0.9 > centre["mean_reward"]
    assert race["lap_reward"] > centre["lap_reward"]
    assert race["steps"] < centre["steps"]


def test_validate_reward_along_raceline_reports_both_lines(capsys):
    path = EXAMPLES_DIR / "raceline_speed.py"
    assert main(["validate-reward", str(path), "--along-raceline", "--samples", "20"]) == 0
    out = capsys.readouterr().out
    assert "along the racing line" in out and "along the centre line" in out
    assert "prefers the racing line per step and the racing line per lap" in out
