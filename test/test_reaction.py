"""Reaction optimisation env: seeded surfaces, their optimum, the env's rules, the baselines'
experiment counts, the metric, and the CLI (errors and a tiny train/evaluate/plot)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from deepracer_rl.cli import main
from deepracer_rl.envs import REACTION_ID
from deepracer_rl.envs.csvdata import CsvDataError
from deepracer_rl.envs.reaction import (
    FIRST_STEP,
    GAS_CONSTANT,
    MAX_STEP,
    MIN_STEP,
    GaussianMixture,
    KineticsSurface,
    ReactionOptimizationEnv,
    experiments_to_optimum,
    load_mixture_csv,
    make_surface,
)
from deepracer_rl.envs.reaction_baselines import METHODS, Experiments, run_method, summarise

SMALL = {"budget": 12, "n_test_surfaces": 3}


def test_surfaces_are_seeded_and_the_splits_disjoint():
    a, b = make_surface("gaussians", "test", 4), make_surface("gaussians", "test", 4)
    np.testing.assert_array_equal(a.means, b.means)
    assert a.optimum == b.optimum
    train = [make_surface("gaussians", "train", i).means.tobytes() for i in range(20)]
    test = [make_surface("gaussians", "test", i).means.tobytes() for i in range(20)]
    assert not set(train) & set(test) and len(set(train)) == 20
    assert make_surface("gaussians", "test", 4, seed=1).optimum != a.optimum


@pytest.mark.parametrize("index", range(4))
def test_the_mixture_optimum_is_the_maximum_of_a_dense_grid(index):
    surface = make_surface("gaussians", "validation", index, dim=2)
    axis = np.linspace(0.0, 1.0, 601)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    assert surface.optimum >= surface(grid).max() - 1e-12
    assert surface.optimum - surface(grid).max() < 1e-3 * surface.optimum  # the grid comes close
    assert float(surface(surface.argmax)) == pytest.approx(surface.optimum)


def test_the_mixture_gradient_matches_differences():
    surface = make_surface("gaussians", "train", 1)
    x = np.array([0.3, 0.6, 0.45])
    numeric = [(surface(x + e) - surface(x - e)) / 2e-6 for e in np.eye(3) * 1e-6]
    np.testing.assert_allclose(surface.gradient(x), numeric, rtol=1e-5, atol=1e-8)


def test_kinetics_is_the_consecutive_first_order_yield_and_its_optimum_beats_a_grid():
    k = KineticsSurface()
    T, t, c = 350.0, 60.0, 2.0
    x = np.array([(v - lo) / (hi - lo) for v, (lo, hi) in zip((T, t, c), (k.T_RANGE, k.TIME_RANGE, k.LOADING_RANGE))])
    k1 = k.A1 * c * math.exp(-k.E1 / (GAS_CONSTANT * T))
    k2 = k.A2 * math.exp(-k.E2 / (GAS_CONSTANT * T))
    expected = k1 / (k2 - k1) * (math.exp(-k1 * t) - math.exp(-k2 * t)) - k.catalyst_cost * c
    assert float(k(x)) == pytest.approx(expected)
    axis = np.linspace(0.0, 1.0, 41)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    assert k.optimum >= k(grid).max() - 1e-12
    assert 0.0 < k.argmax[0] < 1.0  # cooler is more selective but slower: the best temperature is inside


def test_env_passes_the_checker_and_spends_exactly_its_budget():
    env = gym.make(REACTION_ID, budget=10).unwrapped
    check_env(env)
    obs, info = env.reset(seed=0, options={"surface": 2})
    assert env.observation_space.contains(obs) and info["experiment"] == 1 and info["conditions"] == [0.5] * 3
    steps = 0
    truncated = False
    while not truncated:
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert not terminated and env.observation_space.contains(obs)
    assert steps == 9 and info["experiment"] == 10
    with pytest.raises(RuntimeError, match="budget"):
        env.step(env.action_space.sample())


def test_a_step_action_moves_from_the_best_conditions_on_a_log_radius():
    env = ReactionOptimizationEnv(action="step")
    env.reset(seed=0, options={"surface": 0})
    np.testing.assert_allclose(env.conditions([1.0, 0.0, -1.0, -1.0]), [0.5 + MIN_STEP, 0.5, 0.5 - MIN_STEP])
    np.testing.assert_allclose(env.conditions([0.3, 0.0, -1.0, 1.0]), [0.5 + 0.3 * MAX_STEP, 0.5, 0.0])


def test_a_model_action_corrects_the_local_models_proposal():
    env = ReactionOptimizationEnv()
    env.reset(seed=0, options={"surface": 0})
    unit, length = env.proposal()  # nothing fitted yet: no direction, the first step's length
    assert not unit.any() and length == FIRST_STEP
    np.testing.assert_allclose(env.conditions([0.5, 0.0, 0.0, 0.0]), [0.5 + FIRST_STEP, 0.5, 0.5])
    np.testing.assert_allclose(env.conditions([0.0, -0.5, 0.0, 1.0]), [0.5, 0.0, 0.5])  # 31 x longer: clipped
    env.action_space.seed(0)
    for _ in range(10):
        env.step(env.action_space.sample())
    unit, length = env.proposal()
    assert np.linalg.norm(unit) == pytest.approx(1.0) and MIN_STEP / 10 < length <= 2.0
    best = np.array(env._xs[env._best_i])
    np.testing.assert_allclose(env.conditions(np.zeros(4)), np.clip(best + min(length, MAX_STEP) * unit, 0, 1))


@pytest.mark.parametrize("reward", ["regret", "improvement", "experiments"])
def test_reward_is_minus_the_regret_the_improvement_or_minus_one_per_experiment(reward):
    env = ReactionOptimizationEnv(reward=reward, budget=60)
    env.action_space.seed(3)
    _, info = env.reset(seed=3, options={"surface": 5})
    first, total = info["best"], 0.0
    for _ in range(59):
        before = env.best
        _, r, terminated, truncated, info = env.step(env.action_space.sample())
        total += r
        opt = env.surface.optimum
        regret = (opt - info["best"]) / opt
        assert info["regret"] == pytest.approx(regret)
        expected = {
            "regret": -regret,
            "improvement": (info["best"] - before) / opt,
            "experiments": -float(regret > 0.05),
        }
        assert r == pytest.approx(expected[reward])
        assert terminated == (reward == "experiments" and regret <= 0.05)
        if terminated or truncated:
            break
    if reward == "improvement":
        assert total == pytest.approx((env.best - first) / env.surface.optimum)


class Counting(GaussianMixture):
    calls = 0

    def __call__(self, x):
        if np.asarray(x).ndim == 1:  # the methods' experiments, not the optimum search (batched)
            Counting.calls += 1
        return super().__call__(x)


@pytest.mark.parametrize("name", list(METHODS))
def test_each_baseline_runs_exactly_the_budget_from_the_centre(name):
    surface = Counting(heights=[1.0, 0.5], means=[[0.2, 0.8, 0.5], [0.7, 0.3, 0.4]], widths=np.full((2, 3), 0.15))
    Counting.calls = 0
    curve = run_method(METHODS[name], surface, 17, seed=0)
    assert Counting.calls == 17 and len(curve) == 17
    assert np.all(np.diff(curve) >= 0)
    assert curve[0] == pytest.approx(float(surface(np.full(3, 0.5))))


def test_experiments_refuse_one_past_the_budget():
    from deepracer_rl.envs.reaction_baselines import BudgetSpent

    run = Experiments(make_surface("gaussians", "train", 0), 2)
    run(np.zeros(3))
    run(np.ones(3))
    with pytest.raises(BudgetSpent):
        run(np.zeros(3))
    assert len(run.series()) == 2


def test_metric_counts_experiments_to_within_five_percent():
    assert experiments_to_optimum([0.1, 0.5, 0.95, 1.0], 1.0) == 3
    assert experiments_to_optimum([0.1, 0.5, 0.9], 1.0) == 4  # never: the budget + 1
    curves = np.array([[0.1, 0.96, 0.96], [0.1, 0.2, 0.3], [0.97, 0.97, 1.0]])
    res = summarise(curves, np.ones(3))
    assert res["series"]["experiments"] == [2, 4, 1]
    assert res["metrics"]["median_experiments"] == 2 and res["metrics"]["success_rate"] == pytest.approx(2 / 3)
    assert res["metrics"]["mean_final_regret"] == pytest.approx((0.04 + 0.7 + 0.0) / 3)
    np.testing.assert_allclose(res["series"]["mean_regret"][0], (0.9 + 0.9 + 0.03) / 3)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_mixture_csv_feeds_the_env(tmp_path):
    path = _write(
        tmp_path / "surface.csv", ["height,mean_1,mean_2,width_1,width_2", "1,0.2,0.7,0.1,0.2", "2,0.6,0.4,0.1,0.1"]
    )
    surface = load_mixture_csv(path)
    assert surface.dim == 2 and surface.optimum == pytest.approx(2.0, rel=1e-3)
    env = ReactionOptimizationEnv(surface_csv=str(path))
    assert env.reset(seed=0)[0].shape == env.observation_space.shape and env.action_space.shape == (3,)


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("1,0.2,1.5,0.1,0.1", "outside the unit box"),
        ("0,0.2,0.5,0.1,0.1", "non-positive height"),
        ("1,0.2,0.5,0,0.1", "non-positive width"),
        ("1,x,0.5,0.1,0.1", "bad number"),
    ],
)
def test_a_bad_mixture_csv_names_file_and_row(tmp_path, row, words):
    path = _write(tmp_path / "bad.csv", ["height,mean_1,mean_2,width_1,width_2", "1,0.5,0.5,0.1,0.1", row])
    with pytest.raises(CsvDataError, match=rf"{re.escape(str(path))}: row 3: .*{words}"):
        load_mixture_csv(path)


@pytest.mark.parametrize(
    ("env_arg", "words"),
    [
        ("dim=0", "dim=0"),
        ("budget=1", "budget=1"),
        ("surface=soup", "surface='soup'"),
        ("action=jump", "action='jump'"),
        ("budget=2.5", "budget=2.5"),
        ("surface=kinetics --env-arg dim=2", "kinetics"),
        ("n_components=0", "n_components=0"),
        ("no_such=1", "no_such"),
        ("surface_csv=missing.csv", "missing.csv"),
    ],
)
def test_bad_env_args_get_one_line_errors(capsys, env_arg, words):
    assert main(["evaluate", "--env", REACTION_ID, "--env-arg", *env_arg.split(" ")]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.splitlines()) == 1


def test_a_bad_surface_file_through_the_cli_names_file_and_row(tmp_path, capsys):
    path = _write(tmp_path / "bad.csv", ["height,mean_1,width_1", "1,0.5,0.1", "1,2,0.1"])
    assert main(["evaluate", "--env", REACTION_ID, "--env-arg", f"surface_csv={path}"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: row 3" in err and len(err.splitlines()) == 1


def test_tiny_train_evaluate_plot_through_the_cli(tmp_path, capsys):
    args = [a for k, v in SMALL.items() for a in ("--env-arg", f"{k}={v}")]
    run_dir = tmp_path / "run"
    assert main(["train", "--env", REACTION_ID, "--steps", "256", "--out", str(run_dir), *args]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--env", REACTION_ID, str(run_dir)]) == 0
    out = capsys.readouterr().out
    for word in ("median_experiments", "success_rate", "mean_final_regret", "random_search", "nelder_mead", "cma_es"):
        assert word in out
    assert "ppo median_experiments" in out and "tuned on training surfaces" in out
    saved = json.loads((run_dir / "reactionoptimization-v0_evaluation.json").read_text())
    assert saved["n_surfaces"] == 3 and len(saved["policies"]["ppo"]["series"]["mean_regret"]) == 12
    assert main(["plot", "--env", REACTION_ID, str(run_dir)]) == 0
    png = run_dir / "plots" / "reactionoptimization-v0_regret.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and str(png) in capsys.readouterr().out


def test_fewer_experiments_is_ahead_in_the_verdict():
    from deepracer_rl.envs.compare import best_baseline, format_verdict, versus_baseline

    def metrics(median):
        return {"metrics": {"median_experiments": median, "success_rate": 1.0, "mean_final_regret": 0.0}}

    results = {"kind": "reaction", "policies": {"ppo": metrics(20), "nelder_mead": metrics(28), "cma_es": metrics(70)}}
    assert best_baseline(results) == "nelder_mead"
    assert versus_baseline(results)["ahead"] == "policy"
    results["policies"]["ppo"] = metrics(28)  # a tie is not ahead
    assert versus_baseline(results)["ahead"] == "baseline" and "baseline ahead" in format_verdict(results)
