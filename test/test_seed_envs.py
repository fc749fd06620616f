"""Portfolio and auto-scaling envs: API conformance, economics, CSV errors, train/evaluate/plot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from deepracer_rl.envs import AUTOSCALING_ID, PORTFOLIO_ID, register_envs
from deepracer_rl.envs.autoscaling import (
    DELTAS,
    HOLD_ACTION,
    AutoScalingEnv,
    TargetTracking,
    generate_load,
    load_trace_csv,
)
from deepracer_rl.envs.csvdata import CsvDataError
from deepracer_rl.envs.portfolio import (
    STOCKS_ASSETS,
    PortfolioEnv,
    PriceData,
    action_to_weights,
    differential_sharpe,
    generate_prices,
    load_prices_csv,
    load_stocks,
    portfolio_metrics,
    residual_to_weights,
    walk_forward_folds,
    weights_to_action,
)
from deepracer_rl.envs.portfolio_baselines import baselines, min_variance_weights, momentum_weights

SMALL_PORTFOLIO = {"source": "synthetic", "n_periods": 400, "window": 10, "episode_length": 60}
# Two walk-forward folds of 50 trading days on the small generated prices.
SMALL_FOLDS = {**SMALL_PORTFOLIO, "n_folds": 2, "test_years": 50 / 252}
SMALL_SCALING = {"n_days": 10}
ADD_1, REMOVE_1 = DELTAS.index(1), DELTAS.index(-1)


@pytest.mark.parametrize("action_mode", ["weights", "discrete", "residual"])
def test_portfolio_passes_env_checker(action_mode):
    check_env(gym.make(PORTFOLIO_ID, action_mode=action_mode, **SMALL_PORTFOLIO).unwrapped)


def test_autoscaling_passes_env_checker():
    check_env(gym.make(AUTOSCALING_ID, **SMALL_SCALING).unwrapped)


def test_register_envs_is_idempotent():
    register_envs()
    register_envs()
    assert gym.spec(PORTFOLIO_ID).entry_point.endswith(":PortfolioEnv")
    assert gym.spec(AUTOSCALING_ID).entry_point.endswith(":AutoScalingEnv")


def test_weight_mapping_round_trips_and_all_minus_one_is_cash():
    w = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(action_to_weights(weights_to_action(w)), w, atol=1e-6)
    np.testing.assert_array_equal(action_to_weights(-np.ones(4)), [1, 0, 0, 0])


def test_portfolio_reward_sign_is_sign_of_return():
    env = PortfolioEnv(**SMALL_PORTFOLIO)
    env.action_space.seed(1)
    _, info = env.reset(seed=1)
    for _ in range(50):
        before = info["value"]
        _, reward, _, truncated, info = env.step(env.action_space.sample())
        assert np.sign(reward) == np.sign(info["value"] / before - 1.0)
        assert reward == pytest.approx(np.log(info["value"] / before))
        if truncated:
            break


def test_transaction_costs_reduce_reward_by_log_of_cost():
    free, costly = PortfolioEnv(cost=0.0, **SMALL_PORTFOLIO), PortfolioEnv(cost=0.01, **SMALL_PORTFOLIO)
    free.reset(seed=3)
    costly.reset(seed=3)
    buy = weights_to_action(np.array([0.0, 0.25, 0.25, 0.25, 0.25]))
    _, r_free, _, _, _ = free.step(buy)
    _, r_costly, _, _, info = costly.step(buy)
    assert info["turnover"] == pytest.approx(1.0)
    assert r_costly == pytest.approx(r_free + np.log(1 - 0.01))
    hold = weights_to_action(info["weights"])  # no trade, no cost
    free.step(hold)
    _, _, _, _, info = costly.step(hold)
    assert info["cost"] < 1e-9


def test_discrete_actions_buy_hold_sell_move_trade_fraction():
    env = PortfolioEnv(action_mode="discrete", trade_fraction=0.1, cost=0.0, **SMALL_PORTFOLIO)
    env.reset(seed=0)
    np.testing.assert_allclose(env.target_weights(np.array([2, 1, 1, 2])), [0.8, 0.1, 0, 0, 0.1])
    env.step(np.array([2, 1, 1, 1]))
    w = env.target_weights(np.array([0, 1, 1, 1]))  # sell everything of asset 0 (less than 0.1)
    assert w[1] == pytest.approx(max(0.0, env._weights[1] - 0.1))


def test_portfolio_splits_by_time_and_starts_randomly():
    train, test = PortfolioEnv(**SMALL_PORTFOLIO), PortfolioEnv(split="test", **SMALL_PORTFOLIO)
    assert train.last <= test.first
    starts = {train.reset(seed=s)[1]["period"] for s in range(10)}
    assert len(starts) > 1 and all(train.first <= s <= train.last - train.episode_length for s in starts)
    _, info = test.reset(seed=0)
    assert np.datetime64(info["date"]) >= train.data.dates[train.last]


def _two_asset_env(prices: list[list[float]], **kwargs) -> PortfolioEnv:
    dates = np.datetime64("2020-01-01", "M") + np.arange(len(prices))
    data = PriceData(dates=dates.astype("datetime64[D]"), assets=("A", "B"), prices=np.array(prices, dtype=float))
    return PortfolioEnv(data=data, window=1, episode_length=None, cost=0.0, train_fraction=0.5, **kwargs)


def _run_through(env: PortfolioEnv, policy) -> list[dict]:
    policy.reset()
    obs, info = env.reset(seed=0, options={"start": 0})
    infos = []
    for _ in range(env.episode_length):
        obs, _, _, _, info = env.step(policy(obs, info))
        infos.append(info)
    return infos


def test_equal_weight_and_buy_and_hold_match_hand_computed_values():
    # A doubles then stays, B halves then doubles: test periods 2 and 3.
    env = _two_asset_env([[1, 1], [1, 1], [2, 0.5], [2, 1]], split="test")
    assert (env.first, env.last, env.periods_per_year) == (2, 3, 12)
    env = _two_asset_env([[1, 1], [1, 1], [1, 1], [2, 0.5], [2, 1]], split="test")
    assert (env.first, env.last) == (2, 4)
    policies = baselines(env)
    equal = _run_through(env, policies["equal_weight"])
    # Rebalanced: 0.5*2 + 0.5*0.5 = 1.25, then 0.5*1 + 0.5*2 = 1.5 -> 1.875.
    assert [i["value"] for i in equal] == pytest.approx([1.25, 1.875])
    held = _run_through(env, policies["buy_and_hold"])
    # Held: 0.5*2 + 0.5*0.5 = 1.25, then 0.5*2 + 0.5*1 = 1.5.
    assert [i["value"] for i in held] == pytest.approx([1.25, 1.5])
    assert sum(i["turnover"] for i in held[1:]) < 1e-6


def test_min_variance_is_long_only_sums_to_one_and_prefers_the_calm_asset():
    rng = np.random.default_rng(0)
    returns = rng.normal(0.0, [0.01, 0.05, 0.10], size=(200, 3))
    w = min_variance_weights(returns)
    assert w.sum() == pytest.approx(1.0) and np.all(w >= 0)
    assert w[0] > 0.8  # mostly the low-volatility asset
    # Perfectly anti-correlated equal-risk pair: half each.
    x = rng.normal(0, 0.02, 100)
    np.testing.assert_allclose(min_variance_weights(np.stack([x, -x], axis=1)), [0.5, 0.5], atol=1e-3)


def test_momentum_picks_the_better_half_over_the_past_year_but_the_last_month():
    log_ret = np.zeros((30, 4))
    log_ret[10:22, 2] = 0.05  # asset 2 rose through the year before t=23
    log_ret[10:22, 0] = 0.02
    log_ret[23, 3] = 0.5  # asset 3 only in the skipped latest month
    np.testing.assert_allclose(momentum_weights(log_ret, 23, lookback=12, skip=1), [0.5, 0, 0.5, 0])
    np.testing.assert_allclose(momentum_weights(log_ret, 5, lookback=12, skip=1), [0.25] * 4)  # too little history


def test_metrics_are_annualised_with_zero_risk_free_rate():
    values = np.array([1.0, 1.1, 0.99, 1.089])  # +10 %, -10 %, +10 % in three months
    m = portfolio_metrics(values, periods_per_year=12)
    ret = np.array([0.1, -0.1, 0.1])
    assert m["total_return"] == pytest.approx(0.089)
    assert m["annual_return"] == pytest.approx(1.089**4 - 1)
    assert m["annual_volatility"] == pytest.approx(ret.std(ddof=1) * np.sqrt(12))
    assert m["sharpe"] == pytest.approx(ret.mean() / ret.std(ddof=1) * np.sqrt(12))
    assert m["max_drawdown"] == pytest.approx(0.1)
    assert portfolio_metrics(np.ones(5), 12)["sharpe"] == 0.0  # all cash


def test_shipped_stocks_are_monthly_2000_to_2010():
    data = load_stocks()
    assert data.assets == STOCKS_ASSETS and data.periods_per_year == 12
    assert (str(data.dates[0]), str(data.dates[-1]), len(data.dates)) == ("2000-01-01", "2010-03-01", 123)
    assert data.prices[0, STOCKS_ASSETS.index("MSFT")] == pytest.approx(39.81)
    goog = load_stocks(["GOOG"])
    assert str(goog.dates[0]) == "2004-08-01"


def test_mixing_goog_with_the_full_period_names_the_file_and_row():
    with pytest.raises(CsvDataError, match=r"stocks\.csv: row \d+: gap: asset 'GOOG' has no close for 2000-01-01"):
        load_stocks(["GOOG", "MSFT"])
    with pytest.raises(CsvDataError, match=r"stocks\.csv: no rows for asset\(s\) \['NOPE'\]"):
        load_stocks(["NOPE"])


def test_walk_forward_folds_are_consecutive_and_train_only_on_earlier_periods():
    folds = walk_forward_folds(122, window=12, n_folds=5, test_periods=12)
    assert folds[0] == (12, 62, 74) and folds[-1] == (12, 110, 122)
    assert all(a[2] == b[1] for a, b in zip(folds, folds[1:]))
    with pytest.raises(ValueError, match=r"prices.csv: 50 periods are too few for 5 walk-forward folds"):
        walk_forward_folds(50, window=12, n_folds=5, test_periods=12, source="prices.csv")
    env = PortfolioEnv(fold=4, split="test")
    assert (env.first, env.last) == (110, 122)
    fit, val = PortfolioEnv(fold=4, split="fit"), PortfolioEnv(fold=4, split="validation")
    assert (fit.first, fit.last, val.first, val.last) == (12, 98, 98, 110)


def test_shuffled_assets_keep_the_economics_and_only_in_training():
    env = PortfolioEnv(shuffle_assets=True, fold=0, cost=0.0, episode_length=12)
    shuffled = 0
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        latest, truth = obs[-4:], env._data_features[env._t]
        np.testing.assert_array_equal(np.sort(latest), np.sort(truth))
        shuffled += not np.array_equal(latest, truth)
        _, reward, _, _, _ = env.step(weights_to_action(np.array([0, 0.25, 0.25, 0.25, 0.25])))
        t = env._t
        assert reward == pytest.approx(np.log(np.mean(np.exp(env._log_ret[t]))))  # equal weights: any order
    assert shuffled > 0
    assert not PortfolioEnv(shuffle_assets=True, fold=0, split="test").shuffle_assets


def _pass(env: PortfolioEnv, policy) -> tuple[np.ndarray, list[float], list[dict]]:
    """Values, rewards and infos of one pass through the env's split from its first period."""
    obs, info = env.reset(seed=0, options={"start": 0})
    values, rewards, infos, done = [1.0], [], [], False
    while not done:
        obs, reward, _, done, info = env.step(policy(obs, info))
        values.append(info["value"])
        rewards.append(reward)
        infos.append(info)
    return np.array(values), rewards, infos


def test_residual_action_zero_is_the_equal_weight_baseline():
    env = PortfolioEnv(fold=4, split="validation", episode_length=None, action_mode="residual", max_cash=0.5)
    assert env.action_space.shape == (5,)
    values, _, infos = _pass(env, lambda obs, info: np.zeros(5))
    weights_env = PortfolioEnv(fold=4, split="validation", episode_length=None)
    equal = baselines(weights_env)["equal_weight"]
    equal.reset()
    np.testing.assert_allclose(values, _pass(weights_env, equal)[0], rtol=1e-12)
    assert infos[0]["turnover"] == pytest.approx(1.0) and infos[1]["turnover"] < 0.2  # rebalanced monthly


def test_residual_tilt_is_bounded_and_cash_optional():
    w = residual_to_weights(np.array([0.5, 1.0, -1.0, -1.0, -1.0]), tilt_scale=0.25, max_cash=1.0)
    np.testing.assert_allclose(w, [0.5, 0.3125, 0.0625, 0.0625, 0.0625])  # 1/4 + 0.25 * 1.5 and 1/4 - 0.25 * 0.5
    assert residual_to_weights(np.array([1.0, 1, -1, -1, -1]), 0.25, max_cash=0.0)[0] == 0.0  # no cash allowed
    default = PortfolioEnv(**SMALL_PORTFOLIO, action_mode="residual")  # chosen on validation: 0.1, no cash
    np.testing.assert_allclose(default.target_weights(np.array([1.0, 1, -1, -1, -1])), [0, 0.4, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(residual_to_weights(np.array([-1.0, 9, 0, 0, 0]), 0.0, 1.0), [0, 0.25, 0.25, 0.25, 0.25])
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = residual_to_weights(rng.uniform(-1, 1, 5), rng.uniform(0, 2), rng.uniform(0, 1))
        assert w.sum() == pytest.approx(1.0) and np.all(w >= 0.0)


def test_excess_reward_is_the_log_return_less_equal_weights():
    env = PortfolioEnv(fold=0, action_mode="residual", reward="excess_log_return", cost=0.0, episode_length=12)
    env.reset(seed=3)
    for _ in range(12):
        _, reward, _, _, _ = env.step(np.zeros(5))  # equal weight: nothing in excess
        assert reward == pytest.approx(0.0, abs=1e-12)
    env.reset(seed=3)
    _, reward, _, _, info = env.step(np.array([0.0, 1, -1, -1, -1]))
    equal = np.log(np.exp(env._log_ret[env._t]).mean())  # the mean over the assets: in any order
    assert reward == pytest.approx(info["log_return"] - equal)
    assert reward != pytest.approx(0.0)


def test_differential_sharpe_is_the_first_order_change_of_the_moving_sharpe():
    def sharpe(a: float, b: float) -> float:
        return a / np.sqrt(b - a * a)

    a, b, eta = 0.01, 0.005, 1e-5
    for r in (-0.1, -0.01, 0.0, 0.02, 0.15):
        change = sharpe(a + eta * (r - a), b + eta * (r * r - b)) - sharpe(a, b)
        assert differential_sharpe(r, a, b) == pytest.approx(change / eta, rel=1e-3)
    assert differential_sharpe(0.5, 0.01, 1e-4) == -10.0  # a degenerate variance is clipped, not infinite
    env = PortfolioEnv(fold=0, action_mode="residual", reward="differential_sharpe", dsr_rate=0.5, episode_length=6)
    env.reset(seed=1)
    mean, second = env._dsr_mean, env._dsr_second
    assert second > mean**2 > 0.0  # started from equal weight's returns in the observation window
    for _ in range(6):
        _, reward, _, _, info = env.step(np.zeros(5))
        r = np.expm1(info["log_return"])
        assert reward == pytest.approx(differential_sharpe(r, mean, second))
        mean, second = mean + 0.5 * (r - mean), second + 0.5 * (r * r - second)


def test_tilt_penalty_charges_the_squared_distance_from_equal_weight():
    kwargs = {"fold": 0, "action_mode": "residual", "episode_length": 6, "tilt_scale": 0.25, "max_cash": 1.0}
    plain, charged = PortfolioEnv(**kwargs), PortfolioEnv(**kwargs, tilt_penalty=2.0)
    action = np.array([0.4, 1.0, -1.0, 0.0, 0.0])
    plain.reset(seed=2)
    charged.reset(seed=2)
    _, reward, _, _, _ = plain.step(action)
    _, penalised, _, _, _ = charged.step(action)
    distance = residual_to_weights(action, 0.25, 1.0) - np.array([0, 0.25, 0.25, 0.25, 0.25])
    assert reward - penalised == pytest.approx(2.0 * (distance**2).sum()) and reward > penalised


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"action_mode": "tilt"}, "action_mode='tilt': expected one of weights, discrete, residual"),
        ({"reward": "sharpe"}, "reward='sharpe': expected one of log_return, mean_variance, excess_log_return"),
        ({"tilt_scale": -0.1}, "tilt_scale=-0.1: expected a number within 0..10"),
        ({"max_cash": 1.5}, "max_cash=1.5: expected a number within 0..1"),
        ({"dsr_rate": 0.0}, "dsr_rate=0.0: expected a number within 0.0001..1"),
        ({"tilt_penalty": float("nan")}, "tilt_penalty=nan"),
    ],
)
def test_bad_portfolio_arguments_are_named(kwargs, words):
    with pytest.raises(ValueError, match=re.escape(f"PortfolioEnv: {words}")):
        PortfolioEnv(**SMALL_PORTFOLIO, **kwargs)


def test_boot_delay_delays_new_capacity_but_bills_at_once():
    env = AutoScalingEnv(boot_delay=3, **SMALL_SCALING)
    _, info = env.reset(seed=0)
    active = info["active"]
    _, _, _, _, info = env.step(ADD_1)
    assert info["billed"] == active + 1 and info["booting"] == 1
    capacities = [info["capacity"]]
    for _ in range(3):
        _, _, _, _, info = env.step(HOLD_ACTION)
        capacities.append(info["capacity"])
    assert capacities == [active * env.capacity] * 3 + [(active + 1) * env.capacity]


def test_no_boot_delay_serves_at_once_and_removal_cancels_booting_first():
    env = AutoScalingEnv(boot_delay=0, **SMALL_SCALING)
    _, info = env.reset(seed=0)
    _, _, _, _, after = env.step(ADD_1)
    assert after["capacity"] == (info["active"] + 1) * env.capacity
    env = AutoScalingEnv(boot_delay=2, **SMALL_SCALING)
    _, info = env.reset(seed=0)
    env.step(ADD_1)
    _, _, _, _, after = env.step(REMOVE_1)
    assert after["booting"] == 0 and after["active"] == info["active"]


def test_scaling_reward_pays_for_served_charges_lost_and_machines():
    env = AutoScalingEnv(boot_delay=0, **SMALL_SCALING)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(HOLD_ACTION)
    expected = (
        (info["served"] - env.lost_penalty * info["lost"]) / env.capacity - env.machine_cost * info["billed"]
    ) / env.reward_scale
    assert reward == pytest.approx(expected)
    assert abs(reward) < 10  # O(1) scale


def test_target_tracking_keeps_utilisation_near_set_point():
    env = AutoScalingEnv(split="test", episode_days=None, boot_delay=0, **SMALL_SCALING)
    tracker = TargetTracking(env.capacity, set_point=0.7)
    obs, info = env.reset(seed=0, options={"start": 0})
    served = capacity = 0.0
    for _ in range(env.episode_length):
        obs, _, _, truncated, info = env.step(tracker(obs, info))
        served, capacity = served + info["served"], capacity + info["capacity"]
        if truncated:
            break
    assert 0.55 < served / capacity < 0.8


def test_load_generator_is_seeded_with_daily_cycle():
    a, b = generate_load(n_days=7, seed=5), generate_load(n_days=7, seed=5)
    np.testing.assert_array_equal(a.load, b.load)
    by_hour = a.load[: 5 * a.steps_per_day].reshape(5, 24, -1).mean(axis=(0, 2))
    assert by_hour[11] > 3 * by_hour[3]  # weekday midday far above the night


def test_price_generator_is_seeded_and_switches_regimes():
    a, b = generate_prices(2000, 3, seed=7), generate_prices(2000, 3, seed=7)
    np.testing.assert_array_equal(a.prices, b.prices)
    assert set(np.unique(a.regimes)) == {0, 1, 2}
    assert np.all(a.prices > 0)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _price_lines() -> list[str]:
    lines = ["date,asset,close"]
    for day in ("2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"):
        lines += [f"{day},AAA,10.5", f"{day},BBB,20"]
    return lines


def test_price_csv_loads_and_feeds_the_env(tmp_path):
    data = generate_prices(300, 2, seed=1)
    lines = ["date,asset,close"] + [
        f"{d},{a},{float(p)!r}" for t, d in enumerate(data.dates) for a, p in zip(data.assets, data.prices[t])
    ]
    path = _write(tmp_path / "prices.csv", lines)
    loaded = load_prices_csv(path)
    assert loaded.assets == data.assets
    np.testing.assert_array_equal(loaded.prices, data.prices)
    env = PortfolioEnv(csv_path=path, window=5, episode_length=20)
    assert env.reset(seed=0)[0].shape == env.observation_space.shape


@pytest.mark.parametrize(
    ("edit", "row", "words"),
    [
        (lambda ls: ls[:6] + ls[7:], 8, "gap"),  # BBB lacks 2024-01-04
        (lambda ls: ls[:3] + ["2024-01-03,AAA,0"] + ls[4:], 4, "non-positive"),
        (lambda ls: ls[:5] + ["2024-01-02,AAA,10"] + ls[6:], 6, "unsorted"),
        (lambda ls: ls[:7] + ["2024-01-05,AAA,1O.5"] + ls[8:], 8, "bad number"),
        (lambda ls: ls + ["2024-02-01,AAA,10", "2024-02-01,BBB,20"], 12, "gap"),  # weeks missing
    ],
)
def test_bad_price_csv_names_file_and_row(tmp_path, edit, row, words):
    path = _write(tmp_path / "bad_prices.csv", edit(_price_lines()))
    with pytest.raises(CsvDataError, match=rf"{re.escape(str(path))}: row {row}: .*{words}"):
        load_prices_csv(path)


def _trace_lines() -> list[str]:
    return ["timestamp,load"] + [f"2024-01-01T00:{m:02d}:00,{100 + m}" for m in range(0, 60, 10)]


def test_trace_csv_loads_with_its_period(tmp_path):
    trace = load_trace_csv(_write(tmp_path / "trace.csv", _trace_lines()))
    assert trace.step_minutes == 10 and trace.steps_per_day == 144
    np.testing.assert_array_equal(trace.load, [100, 110, 120, 130, 140, 150])


@pytest.mark.parametrize(
    ("edit", "row", "words"),
    [
        (lambda ls: ls[:4] + ls[5:], 5, "gap"),
        (lambda ls: ls[:3] + ["2024-01-01T00:20:00,-5"] + ls[4:], 4, "negative"),
        (lambda ls: ls[:3] + ["2024-01-01T00:05:00,1"] + ls[4:], 4, "unsorted"),
        (lambda ls: ls[:2] + ["2024-01-01T00:10:00,abc"] + ls[3:], 3, "bad number"),
    ],
)
def test_bad_trace_csv_names_file_and_row(tmp_path, edit, row, words):
    path = _write(tmp_path / "bad_trace.csv", edit(_trace_lines()))
    with pytest.raises(CsvDataError, match=rf"{re.escape(str(path))}: row {row}: .*{words}"):
        load_trace_csv(path)


@pytest.mark.parametrize(
    ("env_id", "env_kwargs"),
    [
        (PORTFOLIO_ID, SMALL_FOLDS),
        (PORTFOLIO_ID, {**SMALL_FOLDS, "action_mode": "residual", "reward": "excess_log_return"}),
        (AUTOSCALING_ID, SMALL_SCALING),
    ],
)
def test_tiny_train_evaluate_plot_round_trip(tmp_path, env_id, env_kwargs):
    from deepracer_rl.envs.compare import evaluate_seed_env, plot_seed_env, train_seed_env

    model = train_seed_env(env_id, 300, tmp_path, seed=0, env_kwargs=env_kwargs)
    config = json.loads(model.with_suffix(".json").read_text())
    assert model.is_file() and config["env_id"] == env_id and config["env_kwargs"] == env_kwargs
    results = evaluate_seed_env(env_id, model, seed=0)
    json.dumps(results)  # serialisable for the CLI
    assert "ppo" in results["policies"] and len(results["policies"]) >= 3
    key = "sharpe" if results["kind"] == "portfolio" else "total_reward"
    assert all(np.isfinite(p["metrics"][key]) for p in results["policies"].values())
    paths = plot_seed_env(results, tmp_path / "plots")
    assert paths and all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
