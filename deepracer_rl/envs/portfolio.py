"""Portfolio management as a gymnasium env: reallocate across K assets plus cash each period.

The reward is the period's log return of the portfolio value after proportional
transaction costs (optionally less a variance penalty), so the episode return is the log
growth of wealth. Prices come, by default, from the monthly closes of four US stocks
2000-2010 shipped in the ``vega_datasets`` package (:func:`load_stocks`), or from a
long-format CSV (``date, asset, close``), or from a seeded regime-switching generator.
Walk-forward folds (:func:`walk_forward_folds`) test on consecutive later blocks, each
after training on all earlier periods.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from deepracer_rl.envs.csvdata import CsvDataError, check_ranges, parse_number, parse_time, read_rows

PERIODS_PER_YEAR = 252  # of the generated (trading-day) data; others are inferred from the dates
MIN_PRICE, MAX_PRICE = 1e-6, 1e12  # a close outside these is a unit or data error
MAX_DAILY_RATIO = 100.0  # a close more than 100x (or under 1/100 of) the one before is a data error
REGIMES = ("bull", "bear", "volatile")
SELL, HOLD, BUY = 0, 1, 2
# vega_datasets' stocks.csv: monthly closes (split-adjusted, USD) of AAPL, AMZN, GOOG, IBM, MSFT,
# Jan 2000 - Mar 2010; GOOG only from Aug 2004, so the default leaves it out (full period).
STOCKS_PACKAGE, STOCKS_FILE = "vega_datasets", "_data/stocks.csv"
STOCKS_COLUMNS = ("date", "symbol", "price")  # date, asset, close in the file's own names
STOCKS_DATE_FORMAT = "%b %d %Y"  # "Jan 1 2000"
STOCKS_ASSETS = ("AAPL", "AMZN", "IBM", "MSFT")
SOURCES = ("stocks", "synthetic")
REWARDS = ("log_return", "mean_variance", "excess_log_return", "differential_sharpe")
ACTION_MODES = ("weights", "discrete", "residual")
DSR_CLIP = 10.0  # bound on one period's differential Sharpe ratio (a near-zero variance estimate blows it up)
DSR_MIN_VARIANCE = 1e-6  # floor of the return variance (per period, squared fraction) in its denominator


def periods_per_year(dates: np.ndarray) -> int:
    """Periods per year of a calendar, from its median spacing: 252 for trading days, 52 weekly, 12 monthly."""
    if len(dates) < 2:
        return PERIODS_PER_YEAR
    days = float(np.median(np.diff(np.asarray(dates, dtype="datetime64[D]")).astype(float)))
    return PERIODS_PER_YEAR if days <= 1.5 else max(1, round(365.25 / days))


@dataclass(frozen=True)
class PriceData:
    """Close prices on a common calendar: ``prices[t, k]`` for ``dates[t]`` and ``assets[k]``."""

    dates: np.ndarray  # datetime64[D], strictly increasing
    assets: tuple[str, ...]
    prices: np.ndarray  # (T, K) float64, > 0
    regimes: np.ndarray | None = None  # (T,) regime index for generated data
    source: str = "prices"  # the file (or "generated") the prices came from, for error messages

    def __post_init__(self) -> None:
        if self.prices.ndim != 2 or self.prices.shape != (len(self.dates), len(self.assets)):
            raise ValueError(f"prices shape {self.prices.shape} does not match dates x assets")
        if not np.all(np.isfinite(self.prices)) or np.any(self.prices <= 0):
            raise ValueError("prices must be finite and positive")
        if np.any(self.prices < MIN_PRICE) or np.any(self.prices > MAX_PRICE):
            raise ValueError(f"prices must be within {MIN_PRICE:g}..{MAX_PRICE:g}")
        if len(self.prices) > 1:
            ratio = np.abs(np.diff(np.log(self.prices), axis=0))
            t, k = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
            if ratio[t, k] > np.log(MAX_DAILY_RATIO):
                raise ValueError(
                    f"prices of {self.assets[k]!r} change by a factor of {np.exp(ratio[t, k]):.3g} from "
                    f"{self.dates[t]} to {self.dates[t + 1]}; more than {MAX_DAILY_RATIO:g} between rows is a "
                    "data error (a split or a unit change?)"
                )

    @property
    def periods_per_year(self) -> int:
        return periods_per_year(self.dates)


def load_prices_csv(
    path: str | Path,
    max_gap_days: float | None = None,
    *,
    columns: tuple[str, str, str] = ("date", "asset", "close"),
    date_format: str | None = None,
    assets: tuple[str, ...] | list[str] | None = None,
) -> PriceData:
    """Read long-format ``date, asset, close`` rows into a PriceData.

    ``columns`` names the date, asset and close columns of the file; ``date_format`` is a
    strptime format (ISO 8601 if None); ``assets`` keeps only these assets' rows.
    Rejects, naming the file and row: bad numbers or dates, non-positive closes, dates
    not increasing within an asset (unsorted or duplicated), a date some asset lacks,
    and a jump between consecutive dates longer than ``max_gap_days`` (default
    ``max(5, 3 * median spacing)`` days, which lets weekends and holidays through).
    """
    date_col, asset_col, close_col = columns
    series: dict[str, list[tuple[datetime, float, int]]] = {}
    for row, values in read_rows(path, columns):
        if assets is not None and values[asset_col] not in assets:
            continue
        date = parse_time(path, row, date_col, values[date_col], date_format)
        close = parse_number(path, row, close_col, values[close_col])
        if close <= 0:
            raise CsvDataError(path, row, f"non-positive {close_col} {close!r}")
        rows = series.setdefault(values[asset_col], [])
        if rows and date <= rows[-1][0]:
            what = "duplicate" if date == rows[-1][0] else "unsorted"
            raise CsvDataError(
                path,
                row,
                f"{what} date {values[date_col]} for asset '{values[asset_col]}' "
                f"(previous row {rows[-1][2]} has {rows[-1][0].date()}); rows must increase by date",
            )
        rows.append((date, close, row))
    absent = [a for a in assets or () if a not in series]
    if absent:
        raise CsvDataError(path, None, f"no rows for asset(s) {absent}; the file has {sorted(series) or 'none'}")
    if not series:
        raise CsvDataError(path, None, "no data rows")
    all_dates = sorted({d for rows in series.values() for d, _, _ in rows})
    for asset, rows in series.items():
        have = {d for d, _, _ in rows}
        missing = [d for d in all_dates if d not in have]
        if missing:
            first = missing[0]
            after = next((r for d, _, r in rows if d > first), rows[-1][2])
            raise CsvDataError(
                path,
                after,
                f"gap: asset '{asset}' has no close for {first.date()} "
                f"({len(missing)} missing date(s)) that other assets have",
            )
    days = np.array([np.datetime64(d.date(), "D") for d in all_dates])
    if len(days) < 2:
        raise CsvDataError(path, None, "need at least two dates")
    spacing = np.diff(days).astype(float)
    limit = max_gap_days if max_gap_days is not None else max(5.0, 3.0 * float(np.median(spacing)))
    jumps = np.flatnonzero(spacing > limit)
    if len(jumps):
        i = int(jumps[0])
        row = next(r for rows in series.values() for d, _, r in rows if d == all_dates[i + 1])
        raise CsvDataError(
            path,
            row,
            f"gap: {spacing[i]:.0f} days between {days[i]} and {days[i + 1]} "
            f"(more than {limit:g}; pass max_gap_days to allow)",
        )
    names = tuple(sorted(series))
    prices = np.array([[c for _, c, _ in series[a]] for a in names], dtype=np.float64).T
    try:
        return PriceData(dates=days, assets=names, prices=prices, source=str(path))
    except ValueError as exc:
        raise CsvDataError(path, None, str(exc)) from None


def load_stocks(assets: tuple[str, ...] | list[str] = STOCKS_ASSETS) -> PriceData:
    """Monthly closes of ``assets`` from the ``stocks.csv`` the vega_datasets package ships.

    Read from the installed package (no download) through :func:`load_prices_csv`, so a
    damaged file is reported by row. The assets must cover the same months: GOOG (from
    Aug 2004) cannot be mixed with the others' Jan 2000 start.
    """
    try:
        files = resources.files(STOCKS_PACKAGE)
    except ModuleNotFoundError:
        raise ValueError(
            f"source='stocks' reads {STOCKS_FILE} of the {STOCKS_PACKAGE} package: pip install vega_datasets==0.9.0"
        ) from None
    with resources.as_file(files / STOCKS_FILE) as path:
        data = load_prices_csv(path, columns=STOCKS_COLUMNS, date_format=STOCKS_DATE_FORMAT, assets=tuple(assets))
    return replace(data, source=f"{STOCKS_PACKAGE}/{STOCKS_FILE}")


def walk_forward_folds(n_periods: int, window: int, n_folds: int, test_periods: int, source: str = "prices") -> list:
    """``(train_first, test_first, test_last)`` period indices of each walk-forward fold.

    The last ``n_folds * test_periods`` of the ``n_periods`` periods form consecutive test
    blocks; fold i trains on every period from ``window`` up to its test block (an
    expanding window). A ValueError naming ``source`` when a fold would train on fewer
    than ``test_periods`` periods.
    """
    first_test = n_periods - n_folds * test_periods
    if first_test - window < test_periods:
        raise ValueError(
            f"{source}: {n_periods} periods are too few for {n_folds} walk-forward folds of {test_periods} "
            f"test periods after a window of {window} and at least {test_periods} training periods "
            f"(need {window + (n_folds + 1) * test_periods}); use fewer folds or shorter test blocks"
        )
    return [(window, first_test + i * test_periods, first_test + (i + 1) * test_periods) for i in range(n_folds)]


def generate_prices(n_periods: int = 2520, n_assets: int = 4, seed: int = 0, start: str = "2010-01-04") -> PriceData:
    """Correlated daily price paths whose drift, volatility and correlation switch regime.

    Regimes bull/bear/volatile follow a persistent Markov chain (mean stays of roughly
    100/50/33 trading days); assets differ in volatility and drift so allocation matters.
    """
    rng = np.random.default_rng(seed)
    mu = np.array([0.22, -0.28, 0.0])  # annual drift per regime
    vol = np.array([0.12, 0.24, 0.38])  # annual volatility per regime
    rho = np.array([0.3, 0.65, 0.5])  # pairwise correlation per regime
    stay = np.array([0.99, 0.98, 0.97])
    transition = np.empty((3, 3))
    for i in range(3):
        transition[i] = (1 - stay[i]) / 2
        transition[i, i] = stay[i]
    vol_scale = np.linspace(0.7, 1.4, n_assets)  # asset risk from defensive to aggressive
    beta = np.linspace(0.6, 1.3, n_assets)  # drift sensitivity to the regime
    alpha = rng.normal(0.0, 0.03, n_assets)  # idiosyncratic annual drift
    regimes = np.empty(n_periods, dtype=np.int64)
    regimes[0] = 0
    for t in range(1, n_periods):
        regimes[t] = rng.choice(3, p=transition[regimes[t - 1]])
    chols = [np.linalg.cholesky((1 - r) * np.eye(n_assets) + r * np.ones((n_assets, n_assets))) for r in rho]
    z = rng.standard_normal((n_periods, n_assets))
    log_ret = np.zeros((n_periods, n_assets))
    for t in range(1, n_periods):
        g = regimes[t]
        sigma = vol[g] * vol_scale / np.sqrt(PERIODS_PER_YEAR)
        drift = (beta * mu[g] + alpha) / PERIODS_PER_YEAR - 0.5 * sigma**2
        log_ret[t] = drift + sigma * (chols[g] @ z[t])
    prices = 100.0 * np.exp(np.cumsum(log_ret, axis=0))
    dates = np.busday_offset(np.datetime64(start, "D"), np.arange(n_periods), roll="forward")
    assets = tuple(f"asset{k}" for k in range(n_assets))
    return PriceData(dates=dates, assets=assets, prices=prices, regimes=regimes, source="generated")


def action_to_weights(action: np.ndarray) -> np.ndarray:
    """Map a Box action in [-1, 1]^(K+1) (cash first) to portfolio weights by normalisation.

    ``w_i = (a_i + 1) / sum_j (a_j + 1)``: every point of the simplex is reachable, -1
    means "none of this", and an all -1 action means all cash.
    """
    u = (np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0) + 1.0) / 2.0
    total = u.sum()
    if total <= 1e-12:
        w = np.zeros_like(u)
        w[0] = 1.0
        return w
    return u / total


def residual_to_weights(action: np.ndarray, tilt_scale: float, max_cash: float) -> np.ndarray:
    """Map a Box action in [-1, 1]^(K+1) (cash first) to weights as a bounded tilt on equal weight.

    Asset k gets ``1/K + tilt_scale * (a_k - mean_j a_j)`` (floored at 0, renormalised),
    scaled by ``1 - cash`` with ``cash = max_cash * max(a_0, 0)``: the all-zero action
    is equal weight, fully invested; ``tilt_scale`` is weight (fraction of the portfolio)
    per unit of action.
    """
    a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    k = len(a) - 1
    assets = np.clip(1.0 / k + tilt_scale * (a[1:] - a[1:].mean()), 0.0, None)
    total = assets.sum()
    assets = assets / total if total > 1e-12 else np.full(k, 1.0 / k)
    cash = max_cash * max(float(a[0]), 0.0)
    return np.concatenate([[cash], (1.0 - cash) * assets])


def differential_sharpe(r: float, mean: float, second: float) -> float:
    """Moody & Saffell's (1998) differential Sharpe ratio of return ``r`` (a fraction) given the
    moving estimates ``mean`` and ``second`` (of r and r squared) before it; clipped to +-DSR_CLIP.

    ``D = (B dA - A dB / 2) / (B - A^2)^1.5`` with ``dA = r - A``, ``dB = r^2 - B``: the first-order
    change of the Sharpe ratio of the moving estimates when r joins them (per unit adaptation rate).
    """
    variance = max(second - mean**2, DSR_MIN_VARIANCE)
    d = (second * (r - mean) - 0.5 * mean * (r**2 - second)) / variance**1.5
    return float(np.clip(d, -DSR_CLIP, DSR_CLIP))


def weights_to_action(weights: np.ndarray) -> np.ndarray:
    """The Box action that :func:`action_to_weights` maps back to ``weights``."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    return (2.0 * w / w.max() - 1.0).astype(np.float32)


def portfolio_metrics(values: np.ndarray, periods_per_year: int = PERIODS_PER_YEAR) -> dict[str, float]:
    """Total and annualised (compound) return, annualised volatility, Sharpe and max drawdown.

    Sharpe = mean / standard deviation of the period returns times sqrt(periods per year),
    with a zero risk-free rate (cash earns nothing in the env either); 0 without variation.
    Returns and drawdown are fractions (0.1 = 10 %).
    """
    values = np.asarray(values, dtype=np.float64)
    ret = values[1:] / values[:-1] - 1.0
    std = float(ret.std(ddof=1)) if len(ret) > 1 else 0.0
    peak = np.maximum.accumulate(values)
    growth = float(values[-1] / values[0])
    return {
        "total_return": growth - 1.0,
        "annual_return": growth ** (periods_per_year / max(len(ret), 1)) - 1.0,
        "annual_volatility": std * float(np.sqrt(periods_per_year)),
        "sharpe": float(ret.mean() / std * np.sqrt(periods_per_year)) if std > 1e-12 else 0.0,
        "max_drawdown": float(np.max(1.0 - values / peak)),
    }


class PortfolioEnv(gym.Env):
    """Allocate wealth over K assets plus cash; reward = log return after transaction costs.

    Data: ``data`` (a PriceData), else ``csv_path``, else ``source`` ("stocks": the
    shipped monthly closes of ``assets``, default :data:`STOCKS_ASSETS`; "synthetic":
    :func:`generate_prices` with ``n_periods``, ``n_assets``, ``data_seed``).
    Observation (flat Box): current weights (cash first, K+1 values in [0, 1]) then the
    last ``window`` log returns of each asset, divided by ``return_scale`` (default
    0.02 per trading day, scaled by sqrt(time): about 0.09 a month) and clipped to [-5, 5].
    Action: ``action_mode="weights"`` is a Box of K+1 target weights mapped by
    :func:`action_to_weights`; ``"residual"`` is a Box of K+1 values mapped by
    :func:`residual_to_weights` (a tilt of up to ``tilt_scale`` per unit on equal weight, and
    up to ``max_cash`` in cash; action 0 = equal weight, fully invested; the defaults 0.1 and
    0 were the best residual settings on the validation splits, docs/portfolio.md); ``"discrete"`` is
    MultiDiscrete of sell/hold/buy per asset, each moving ``trade_fraction`` of the
    portfolio between the asset and cash.
    Costs: ``cost * sum_k |target_k - current_k|`` of the value (0.001 = 10 bp of turnover).
    Reward: ``"log_return"`` (the log growth after costs), ``"mean_variance"`` (that
    minus ``risk_aversion / 2`` times its square), ``"excess_log_return"`` (that minus
    the log growth of equal weight over the same period, before costs) or
    ``"differential_sharpe"`` (:func:`differential_sharpe` of the return after costs, the
    moving estimates adapting at ``dsr_rate`` per period and starting from equal weight's
    returns over the observation window). ``tilt_penalty`` subtracts that times the
    squared distance of the target weights (cash first) from equal weight, fully invested.
    Splits: with ``fold=None`` the first ``train_fraction`` of the periods is ``"train"``
    and the rest ``"test"``. With ``fold=i`` (of ``n_folds`` walk-forward folds whose test
    blocks last ``test_years``), ``"test"`` is fold i's block, ``"train"`` every earlier
    period, ``"fit"`` the train periods but the last block's worth and ``"validation"``
    that last block (for choosing settings without the test data). Reset starts at a
    random period of the split; episodes last ``episode_length`` periods (None: the split).
    ``shuffle_assets`` (training splits only) deals the assets to the observation and
    action slots in a random order each episode, so a policy learns rules that hold for
    any asset (trend, risk) rather than which of the few assets did well.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        data: PriceData | None = None,
        csv_path: str | Path | None = None,
        source: str = "stocks",
        assets: list[str] | None = None,
        split: str = "train",
        fold: int | None = None,
        n_folds: int = 5,
        test_years: float = 1.0,
        train_fraction: float = 0.8,
        window: int = 12,
        episode_length: int | None = 24,
        cost: float = 0.001,
        reward: str = "log_return",
        risk_aversion: float = 0.0,
        dsr_rate: float = 1.0 / 12.0,
        tilt_penalty: float = 0.0,
        action_mode: str = "weights",
        tilt_scale: float = 0.1,
        max_cash: float = 0.0,
        shuffle_assets: bool = True,
        trade_fraction: float = 0.1,
        return_scale: float | None = None,
        n_assets: int = 4,
        n_periods: int = 2520,
        data_seed: int = 0,
        render_mode: str | None = None,
    ):
        check_ranges(
            "PortfolioEnv",
            [
                ("train_fraction", train_fraction, 0.01, 0.99),
                ("n_folds", n_folds, 1, 1000),
                ("test_years", test_years, 1e-3, 1000.0),
                ("window", window, 1, 10_000),
                ("cost", cost, 0.0, 0.5),
                ("risk_aversion", risk_aversion, 0.0, 1000.0),
                ("dsr_rate", dsr_rate, 1e-4, 1.0),
                ("tilt_penalty", tilt_penalty, 0.0, 1000.0),
                ("tilt_scale", tilt_scale, 0.0, 10.0),
                ("max_cash", max_cash, 0.0, 1.0),
                ("trade_fraction", trade_fraction, 1e-6, 1.0),
                ("n_assets", n_assets, 1, 1000),
                ("n_periods", n_periods, 3, 10_000_000),
            ]
            + ([("episode_length", episode_length, 1, 10_000_000)] if episode_length is not None else [])
            + ([("return_scale", return_scale, 1e-6, 10.0)] if return_scale is not None else [])
            + ([("fold", fold, 0, n_folds - 1)] if fold is not None else []),
        )
        for name, value, allowed in (
            ("source", source, SOURCES),
            ("reward", reward, REWARDS),
            ("action_mode", action_mode, ACTION_MODES),
            ("split", split, ("train", "test") if fold is None else ("train", "fit", "validation", "test")),
        ):
            if value not in allowed:
                raise ValueError(f"PortfolioEnv: {name}={value!r}: expected one of {', '.join(allowed)}")
        if render_mode is not None:
            raise ValueError(f"no render modes; got render_mode={render_mode!r}")
        if data is None:
            if csv_path is not None:
                data = load_prices_csv(csv_path, assets=assets)
            elif source == "stocks":
                data = load_stocks(assets or STOCKS_ASSETS)
            else:
                data = generate_prices(n_periods, n_assets, data_seed)
        self.render_mode = render_mode
        self.data = data
        self.window = window
        self.cost = cost
        self.reward_kind = reward
        self.risk_aversion = risk_aversion
        self.action_mode = action_mode
        self.trade_fraction = trade_fraction
        self.dsr_rate = dsr_rate
        self.tilt_penalty = tilt_penalty
        self.tilt_scale = tilt_scale
        self.max_cash = max_cash
        self._dsr_mean = self._dsr_second = 0.0
        self.periods_per_year = ppy = data.periods_per_year
        self.n_assets = k = len(data.assets)
        log_ret = np.zeros_like(data.prices)
        log_ret[1:] = np.diff(np.log(data.prices), axis=0)
        self._log_ret = log_ret
        scale = return_scale if return_scale is not None else 0.02 * np.sqrt(PERIODS_PER_YEAR / ppy)
        self._features = np.clip(log_ret / scale, -5.0, 5.0).astype(np.float32)
        self._relatives = np.exp(log_ret)  # price t / price t-1
        self._data_features, self._data_relatives = self._features, self._relatives
        self.shuffle_assets = bool(shuffle_assets) and split in ("train", "fit")
        # Period t moves prices from t to t+1; the observation at t sees returns up to t.
        n_periods_total = len(data.dates) - 1
        if fold is None:
            cut = int(round(train_fraction * n_periods_total))
            self.first, self.last = (window, cut) if split == "train" else (max(cut, window), n_periods_total)
            self.folds = None
        else:
            block = max(1, round(test_years * ppy))
            self.folds = walk_forward_folds(n_periods_total, window, n_folds, block, data.source)
            train_first, test_first, test_last = self.folds[fold]
            self.first, self.last = {
                "train": (train_first, test_first),
                "fit": (train_first, test_first - block),
                "validation": (test_first - block, test_first),
                "test": (test_first, test_last),
            }[split]
        span = self.last - self.first
        self.episode_length = span if episode_length is None else min(episode_length, span)
        if self.episode_length < 1:
            raise ValueError(f"{data.source}: split '{split}' has {span} periods; need at least one (window={window})")
        low = np.concatenate([np.zeros(k + 1), np.full(window * k, -5.0)]).astype(np.float32)
        high = np.concatenate([np.ones(k + 1), np.full(window * k, 5.0)]).astype(np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        if action_mode in ("weights", "residual"):
            self.action_space = spaces.Box(-1.0, 1.0, shape=(k + 1,), dtype=np.float32)
        else:
            self.action_space = spaces.MultiDiscrete(np.full(k, 3))
        self._t = self._end = self.first
        self._weights = np.eye(k + 1)[0]
        self._value = 1.0

    def _obs(self) -> np.ndarray:
        window = self._features[self._t - self.window + 1 : self._t + 1].ravel()
        return np.concatenate([self._weights.astype(np.float32), window])

    def _info(self) -> dict[str, Any]:
        return {
            "value": self._value,
            "weights": self._weights.copy(),
            "date": str(self.data.dates[self._t]),
            "period": self._t,
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start all in cash at a random period of the split (``options={"start": i}`` fixes
        the offset ``i`` into the split)."""
        super().reset(seed=seed)
        latest = self.last - self.episode_length
        if options and "start" in options:
            self._t = min(self.first + int(options["start"]), latest)
        else:
            self._t = int(self.np_random.integers(self.first, latest + 1))
        self._end = self._t + self.episode_length
        if self.shuffle_assets:
            order = self.np_random.permutation(self.n_assets)
            self._features, self._relatives = self._data_features[:, order], self._data_relatives[:, order]
        self._weights = np.eye(self.n_assets + 1)[0]
        self._value = 1.0
        equal = self._relatives[self._t - self.window + 1 : self._t + 1].mean(axis=1) - 1.0
        self._dsr_mean, self._dsr_second = float(equal.mean()), float((equal**2).mean())
        return self._obs(), self._info()

    def target_weights(self, action: np.ndarray) -> np.ndarray:
        """Weights (cash first) the action asks for, given the current weights."""
        if self.action_mode == "weights":
            return action_to_weights(action)
        if self.action_mode == "residual":
            return residual_to_weights(action, self.tilt_scale, self.max_cash)
        action = np.asarray(action)
        w = self._weights.copy()
        sells = np.minimum(w[1:], self.trade_fraction) * (action == SELL)
        w[1:] -= sells
        w[0] += sells.sum()
        buys = self.trade_fraction * (action == BUY)
        if buys.sum() > w[0]:
            buys *= w[0] / buys.sum()
        w[1:] += buys
        w[0] = max(0.0, w[0] - buys.sum())
        return w / w.sum()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        target = self.target_weights(action)
        turnover = float(np.abs(target[1:] - self._weights[1:]).sum())
        paid = self.cost * turnover
        relatives = np.concatenate([[1.0], self._relatives[self._t + 1]])
        growth = float(target @ relatives)
        log_return = float(np.log1p(-paid) + np.log(growth))
        self._value *= float(np.exp(log_return))
        self._weights = target * relatives / growth
        self._t += 1
        info = self._info()
        info.update(turnover=turnover, cost=paid, log_return=log_return)
        return self._obs(), self._reward(log_return, target, relatives), False, self._t >= self._end, info

    def _reward(self, log_return: float, target: np.ndarray, relatives: np.ndarray) -> float:
        """The period's reward (see the class docstring) for its log return after costs."""
        reward = log_return
        if self.reward_kind == "mean_variance":
            reward -= 0.5 * self.risk_aversion * log_return**2
        elif self.reward_kind == "excess_log_return":
            reward -= float(np.log(relatives[1:].mean()))
        elif self.reward_kind == "differential_sharpe":
            r = float(np.expm1(log_return))
            reward = differential_sharpe(r, self._dsr_mean, self._dsr_second)
            self._dsr_mean += self.dsr_rate * (r - self._dsr_mean)
            self._dsr_second += self.dsr_rate * (r**2 - self._dsr_second)
        if self.tilt_penalty:
            equal = np.concatenate([[0.0], np.full(self.n_assets, 1.0 / self.n_assets)])
            reward -= self.tilt_penalty * float(((target - equal) ** 2).sum())
        return reward
