"""What a practitioner would run instead of the portfolio policy, on the same env and costs.

Each baseline is a policy ``(obs, info) -> Box action`` for a ``weights``-mode
:class:`~deepracer_rl.envs.portfolio.PortfolioEnv`, fully invested in the assets (no
cash), trading to its target weights once a month (every period on monthly data) and
letting the weights drift in between. Whatever a baseline estimates it estimates from
periods before the one it trades in (minimum variance: from the training periods only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deepracer_rl.envs.portfolio import PortfolioEnv, weights_to_action


class Rebalance:
    """Trade to ``target(t)`` (asset weights, summing to 1) every ``every`` periods; hold in between.

    ``every=None`` trades once, at the first step after :meth:`reset`.
    """

    def __init__(self, n_assets: int, target: Callable[[int], np.ndarray], every: int | None = 1):
        self.n_assets = n_assets
        self.target = target
        self.every = every
        self._steps = 0

    def reset(self) -> None:
        self._steps = 0

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        due = self._steps == 0 or (self.every is not None and self._steps % self.every == 0)
        self._steps += 1
        if not due:
            return weights_to_action(info["weights"])
        return weights_to_action(np.concatenate([[0.0], self.target(int(info["period"]))]))


def equal_weights(n_assets: int) -> np.ndarray:
    """1/K in each asset."""
    return np.full(n_assets, 1.0 / n_assets)


def min_variance_weights(returns: np.ndarray) -> np.ndarray:
    """Long-only weights summing to 1 with the least variance of the sample covariance of ``returns`` (T, K).

    Solved with SLSQP from equal weights; a small ridge (1e-8) keeps the covariance positive definite.
    """
    from scipy.optimize import minimize

    k = returns.shape[1]
    cov = np.cov(returns, rowvar=False).reshape(k, k) + 1e-8 * np.eye(k)
    solved = minimize(
        lambda w: w @ cov @ w,
        equal_weights(k),
        jac=lambda w: 2.0 * cov @ w,
        bounds=[(0.0, 1.0)] * k,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        method="SLSQP",
    )
    w = np.clip(solved.x, 0.0, None)
    return w / w.sum()


def momentum_weights(log_ret: np.ndarray, t: int, lookback: int, skip: int) -> np.ndarray:
    """Equal weights in the better half of the assets by log return from ``t - lookback`` to ``t - skip``.

    ``log_ret[s]`` is the log return into period s, so only returns up to ``t`` are read;
    equal weights in all assets while there is not yet ``lookback`` periods of history.
    """
    k = log_ret.shape[1]
    if t - lookback < 0:
        return equal_weights(k)
    score = log_ret[t - lookback + 1 : t - skip + 1].sum(axis=0)
    top = np.argsort(-score, kind="stable")[: (k + 1) // 2]
    w = np.zeros(k)
    w[top] = 1.0 / len(top)
    return w


def baselines(env: PortfolioEnv) -> dict[str, Rebalance]:
    """The practitioners' baselines for ``env`` (whose split is the one to trade), by name.

    ``equal_weight`` (rebalanced monthly), ``buy_and_hold`` (equal weights bought once),
    ``min_variance`` (long-only, covariance of the simple returns of every period before
    the split), ``momentum`` (12-1 month: the better half by return over the past year
    without the last month, equal weights, monthly).
    """
    k, ppy = env.n_assets, env.periods_per_year
    month = max(1, round(ppy / 12))
    simple = np.expm1(env._log_ret[1 : env.first + 1])
    min_var = min_variance_weights(simple) if len(simple) > k else equal_weights(k)
    return {
        "equal_weight": Rebalance(k, lambda t: equal_weights(k), month),
        "buy_and_hold": Rebalance(k, lambda t: equal_weights(k), None),
        "min_variance": Rebalance(k, lambda t: min_var, month),
        "momentum": Rebalance(k, lambda t: momentum_weights(env._log_ret, t, ppy, month), month),
    }
