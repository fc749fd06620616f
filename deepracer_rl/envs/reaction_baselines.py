"""What a chemist's optimiser would do instead of the policy, on the same surfaces and budget:
random search, Nelder-Mead (SciPy) and CMA-ES (``cma``), each counting every evaluation as an
experiment; and the per-surface figures the comparison reports (docs/reaction.md).

Every method's first experiment is the centre of the box, as the env's. Nelder-Mead and CMA-ES
restart from a random point when they converge with budget left (a converged simplex would
otherwise leave experiments unused).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deepracer_rl.envs.reaction import TOLERANCE, Surface, experiments_to_optimum

# One setting per method, chosen from these on training surfaces (tune_baselines), never on test ones.
SIMPLEX_SIZES = (0.05, 0.1, 0.2, 0.35)  # Nelder-Mead initial simplex edge, box units
SIGMA0S = (0.1, 0.2, 0.3, 0.5)  # CMA-ES initial step size, box units
DEFAULTS = {"nelder_mead": 0.2, "cma_es": 0.3}


class BudgetSpent(Exception):
    """Raised by :class:`Experiments` when a method asks for one experiment more than the budget."""


class Experiments:
    """A surface run as experiments: counts every evaluation and records the best result so far."""

    def __init__(self, surface: Surface, budget: int):
        self.surface, self.budget = surface, budget
        self.best: list[float] = []

    def __call__(self, x: np.ndarray) -> float:
        """The result at ``x`` (clipped into the box); BudgetSpent past the budget."""
        if len(self.best) >= self.budget:
            raise BudgetSpent
        y = float(self.surface(np.clip(np.asarray(x, dtype=float), 0.0, 1.0)))
        self.best.append(max(y, self.best[-1]) if self.best else y)
        return y

    def series(self) -> np.ndarray:
        """Best result after each experiment, padded with the last to the budget."""
        best = np.asarray(self.best, dtype=float)
        return np.concatenate([best, np.full(self.budget - len(best), best[-1])])


def random_search(run: Experiments, rng: np.random.Generator, setting: float | None = None) -> None:
    """The centre, then conditions uniform in the box until the budget is spent."""
    run(np.full(run.surface.dim, 0.5))
    while True:
        run(rng.random(run.surface.dim))


def nelder_mead(run: Experiments, rng: np.random.Generator, setting: float | None = None) -> None:
    """SciPy's bounded Nelder-Mead (maximising) from the centre, with an initial simplex of edge
    ``setting`` box units, restarted from a random point on convergence."""
    from scipy.optimize import minimize

    size = DEFAULTS["nelder_mead"] if setting is None else setting
    d = run.surface.dim
    x0 = np.full(d, 0.5)
    while True:
        steps = np.where(x0 + size <= 1.0, size, -size)  # each vertex one edge along an axis, inside the box
        simplex = np.vstack([x0, x0 + np.diag(steps)])
        minimize(
            lambda x: -run(x),
            x0,
            method="Nelder-Mead",
            bounds=[(0.0, 1.0)] * d,
            options={"initial_simplex": np.clip(simplex, 0.0, 1.0), "xatol": 1e-3, "fatol": 1e-4},
        )
        x0 = rng.random(d)


def cma_es(run: Experiments, rng: np.random.Generator, setting: float | None = None) -> None:
    """``cma``'s CMA-ES (default population, box bounds) around the centre, which it tries
    first, with initial step ``setting`` box units; restarted from a random point when it stops."""
    import cma

    sigma0 = DEFAULTS["cma_es"] if setting is None else setting
    d = run.surface.dim
    x0 = np.full(d, 0.5)
    run(x0)
    while True:
        opts = {"bounds": [0.0, 1.0], "seed": int(rng.integers(1, 2**31 - 1)), "verbose": -9, "tolfun": 1e-6}
        if d == 1:
            opts["CMA_on"] = 0  # cma needs 2+ axes for covariance learning
        es = cma.CMAEvolutionStrategy(x0, sigma0, opts)
        while not es.stop():
            xs = es.ask()
            es.tell(xs, [-run(x) for x in xs])
        x0 = rng.random(d)


Method = Callable[[Experiments, np.random.Generator, "float | None"], None]
METHODS: dict[str, Method] = {"random_search": random_search, "nelder_mead": nelder_mead, "cma_es": cma_es}


def run_method(method: Method, surface: Surface, budget: int, seed: int, setting: float | None = None) -> np.ndarray:
    """Best result so far after each of ``budget`` experiments of ``method`` on ``surface``."""
    run = Experiments(surface, budget)
    try:
        method(run, np.random.default_rng(seed), setting)
    except BudgetSpent:
        pass
    return run.series()


def summarise(curves: np.ndarray, optima: np.ndarray, tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Figures over surfaces from best-so-far curves ``(surfaces, budget)``: median experiments to
    within ``tolerance`` of the optimum (budget + 1 when not reached), the share reached within
    the budget, the mean final regret and the mean regret after each experiment."""
    budget = curves.shape[1]
    needed = np.array([experiments_to_optimum(c, o, tolerance) for c, o in zip(curves, optima)])
    regret = np.maximum(0.0, (optima[:, None] - curves) / optima[:, None])
    return {
        "metrics": {
            "median_experiments": float(np.median(needed)),
            "success_rate": float(np.mean(needed <= budget)),
            "mean_final_regret": float(regret[:, -1].mean()),
        },
        "series": {"experiments": needed.tolist(), "mean_regret": regret.mean(axis=0).tolist()},
    }


def tune_baselines(surfaces: list[Surface], budget: int, seed: int = 0) -> dict[str, float]:
    """The setting of Nelder-Mead and CMA-ES with the lowest median experiments on ``surfaces``
    (training ones; ties: the lower mean final regret)."""
    optima = np.array([s.optimum for s in surfaces])
    chosen = {}
    for name, grid in (("nelder_mead", SIMPLEX_SIZES), ("cma_es", SIGMA0S)):
        scores = {}
        for setting in grid:
            curves = np.array([run_method(METHODS[name], s, budget, seed + i, setting) for i, s in enumerate(surfaces)])
            m = summarise(curves, optima)["metrics"]
            scores[setting] = (m["median_experiments"], m["mean_final_regret"])
        chosen[name] = min(scores, key=scores.get)
    return chosen
