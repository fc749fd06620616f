"""Reaction optimisation as a gymnasium env: choose the next experiment's conditions from the
results so far (after Zhou, Li and Zare, "Optimizing Chemical Reactions with Deep Reinforcement
Learning", ACS Central Science 2017; docs/reaction.md).

Conditions live in the unit box ``[0, 1]^d`` (each axis a condition scaled from its lab range).
A *surface* maps conditions to a result (a yield-like number >= 0). Two kinds:

- ``"gaussians"``: the paper's simulated reactions, a mixture of ``n_components`` Gaussian bumps
  with random centres, widths and heights, drawn from a seed;
- ``"kinetics"``: a toy kinetics model, the yield of B in A -> B -> C (first order, Arrhenius
  rates, the first step catalysed) over temperature, time and catalyst loading, its constants
  drawn around nominal values from a seed (:class:`KineticsSurface`).

Training surfaces and held-out test surfaces come from disjoint seed streams (:func:`make_surface`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from deepracer_rl.envs.csvdata import CsvDataError, check_ranges, parse_number, read_rows

SURFACES = ("gaussians", "kinetics")
REWARDS = ("regret", "improvement", "experiments")
ACTIONS = ("model", "step")  # the action corrects the local model's proposal, or is a plain step
SPLITS = {"train": 0, "test": 1, "validation": 2}  # seed stream per split: disjoint surfaces
TOLERANCE = 0.05  # "found the optimum": the best result within 5 % of the surface's global optimum
WIDTH_RANGE = (0.1, 0.3)  # Gaussian widths (standard deviation per axis), in box units
HEIGHT_RANGE = (0.3, 1.0)  # Gaussian peak heights (result units)
MIN_STEP, MAX_STEP = 0.01, 1.0  # the step from the best conditions, in box units (log-scaled action)
FIRST_STEP = 0.3  # the proposal's step length before the local model can be fitted, box units
NEAREST = 8  # experiments nearest the best in the observation's local fits (at least 2 d + 2)
GAS_CONSTANT = 8.314  # J / (mol K)


class Surface:
    """A response surface over the unit box; ``optimum`` is its global maximum (result units)."""

    dim: int
    optimum: float
    argmax: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Results at conditions ``x`` (shape ``(..., dim)``, clipped into the box)."""
        raise NotImplementedError

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """The gradient at conditions ``x`` (shape ``(..., dim)``); central differences unless overridden."""
        x = np.asarray(x, dtype=float)
        h = 1e-6
        eye = np.eye(self.dim) * h
        return np.stack([(self(x + e) - self(x - e)) / (2 * h) for e in eye], axis=-1)

    def _find_optimum(self, starts: np.ndarray, grid: np.ndarray, top: int = 4, iterations: int = 400) -> None:
        """Set ``optimum``/``argmax`` by projected gradient ascent in the box, all starts at once,
        from ``starts`` and the ``top`` best points of ``grid``; each start's step grows 1.5x after
        a gain and halves otherwise. (NumPy only: SciPy's L-BFGS-B was 10x slower on a busy
        machine, its BLAS threads waiting for cores.)"""
        values = self(grid)
        x = np.concatenate([starts, grid[np.argsort(values)[::-1][:top]]])
        y = self(x)
        step = np.full(len(x), 0.01)
        for _ in range(iterations):
            g = self.gradient(x)
            norm = np.maximum(np.linalg.norm(g, axis=1), 1e-300)
            trial = np.clip(x + (step / norm)[:, None] * g, 0.0, 1.0)
            y_trial = self(trial)
            better = y_trial > y
            x[better], y[better] = trial[better], y_trial[better]
            step = np.where(better, np.minimum(step * 1.5, 0.5), step * 0.5)
            if np.all(step < 1e-9):
                break
        i = int(np.argmax(y))
        self.argmax, self.optimum = x[i], float(y[i])


def _grid(dim: int, per_axis: int, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    axes = np.meshgrid(*[np.linspace(low, high, per_axis)] * dim, indexing="ij")
    return np.stack([a.ravel() for a in axes], axis=1)


@dataclass
class GaussianMixture(Surface):
    """``f(x) = sum_i h_i exp(-0.5 sum_j ((x_j - m_ij) / w_ij)^2)``: heights ``h`` (result units),
    centres ``m`` and widths ``w`` (box units, per axis).

    The global optimum is the best of gradient ascents (analytic gradient) started at every
    centre and at the 4 best points of a grid of 11 per axis (up to 3 axes; 4096 seeded random
    points beyond): a mixture's maximum lies near a centre or between overlapping bumps, and
    is reached from one of these starts (checked against a dense grid in the tests).
    """

    heights: np.ndarray  # (n,)
    means: np.ndarray  # (n, d)
    widths: np.ndarray  # (n, d)
    optimum: float = field(init=False)
    argmax: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.heights = np.asarray(self.heights, dtype=float)
        self.means = np.atleast_2d(np.asarray(self.means, dtype=float))
        self.widths = np.atleast_2d(np.asarray(self.widths, dtype=float))
        n, d = self.means.shape
        if self.heights.shape != (n,) or self.widths.shape != (n, d):
            raise ValueError("heights, means and widths of a mixture differ in shape")
        if np.any(self.heights <= 0) or np.any(self.widths <= 0):
            raise ValueError("mixture heights and widths must be positive")
        self.dim = d
        grid = _grid(d, 11) if d <= 3 else np.random.default_rng(0).random((4096, d))
        self._find_optimum(np.clip(self.means, 0.0, 1.0), grid)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
        z = (x[..., None, :] - self.means) / self.widths
        return np.exp(-0.5 * np.sum(z * z, axis=-1)) @ self.heights

    def gradient(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
        z = (x[..., None, :] - self.means) / self.widths
        bumps = self.heights * np.exp(-0.5 * np.sum(z * z, axis=-1))
        return -np.sum(bumps[..., None] * z / self.widths, axis=-2)


def random_mixture(rng: np.random.Generator, dim: int = 3, n_components: int = 6) -> GaussianMixture:
    """A mixture with centres uniform in the box, widths in :data:`WIDTH_RANGE` per axis and heights
    in :data:`HEIGHT_RANGE`."""
    return GaussianMixture(
        heights=rng.uniform(*HEIGHT_RANGE, n_components),
        means=rng.random((n_components, dim)),
        widths=rng.uniform(*WIDTH_RANGE, (n_components, dim)),
    )


@dataclass
class KineticsSurface(Surface):
    """Toy kinetics: the yield of B (fraction of A charged, 0..1) from A -> B -> C in a batch.

    Both steps are first order; the first is catalysed, so ``k1 = A1 * c * exp(-E1 / (R T))``
    (``c`` the catalyst loading, mol %), ``k2 = A2 * exp(-E2 / (R T))``; rates in 1/min,
    activation energies in J/mol, ``R`` = 8.314 J/(mol K). After ``t`` minutes
    ``[B]/[A]0 = k1 / (k2 - k1) * (exp(-k1 t) - exp(-k2 t))``. The result is that yield minus
    ``catalyst_cost`` per mol % of catalyst, so that loading has an interior optimum. Box axes:
    temperature ``T_RANGE`` (K), time ``TIME_RANGE`` (min), loading ``LOADING_RANGE`` (mol %).
    With ``E1 < E2`` a cooler reaction is more selective but slower: within the time limit the
    best temperature is inside the range.
    """

    A1: float = 5.0e6  # 1/(min mol %)
    E1: float = 55_000.0  # J/mol
    A2: float = 2.0e9  # 1/min
    E2: float = 80_000.0  # J/mol
    catalyst_cost: float = 0.02  # result units per mol %
    T_RANGE = (293.15, 393.15)  # K (20 .. 120 deg C)
    TIME_RANGE = (1.0, 240.0)  # min
    LOADING_RANGE = (0.1, 5.0)  # mol % catalyst
    dim: int = field(default=3, init=False)
    optimum: float = field(init=False)
    argmax: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self._find_optimum(np.empty((0, 3)), _grid(3, 21))

    def conditions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Box coordinates to (temperature K, time min, loading mol %)."""
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
        lo, hi = np.array([r[0] for r in self._ranges()]), np.array([r[1] for r in self._ranges()])
        v = lo + x * (hi - lo)
        return v[..., 0], v[..., 1], v[..., 2]

    def _ranges(self) -> tuple[tuple[float, float], ...]:
        return (self.T_RANGE, self.TIME_RANGE, self.LOADING_RANGE)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        T, t, c = self.conditions(x)
        k1 = self.A1 * c * np.exp(-self.E1 / (GAS_CONSTANT * T))
        k2 = self.A2 * np.exp(-self.E2 / (GAS_CONSTANT * T))
        diff = k2 - k1
        same = np.abs(diff) < 1e-12 * np.maximum(k1, k2)
        safe = np.where(same, 1.0, diff)
        yield_b = np.where(same, k1 * t * np.exp(-k1 * t), k1 / safe * (np.exp(-k1 * t) - np.exp(-k2 * t)))
        return np.maximum(0.0, yield_b - self.catalyst_cost * c) + 0.0


def random_kinetics(rng: np.random.Generator) -> KineticsSurface:
    """Constants drawn around the nominal ones: pre-exponential factors x e^N(0, 0.5), activation
    energies +- 5 kJ/mol, catalyst cost 0.005..0.03 per mol %."""
    nominal = KineticsSurface.__dataclass_fields__
    return KineticsSurface(
        A1=nominal["A1"].default * math.exp(rng.normal(0.0, 0.5)),
        E1=nominal["E1"].default + rng.uniform(-5000.0, 5000.0),
        A2=nominal["A2"].default * math.exp(rng.normal(0.0, 0.5)),
        E2=nominal["E2"].default + rng.uniform(-5000.0, 5000.0),
        catalyst_cost=rng.uniform(0.005, 0.03),
    )


def make_surface(
    kind: str = "gaussians", split: str = "train", index: int = 0, dim: int = 3, n_components: int = 6, seed: int = 0
) -> Surface:
    """Surface ``index`` of a split's seed stream; train, test and validation streams never share a surface."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS[split], index]))
    return random_kinetics(rng) if kind == "kinetics" else random_mixture(rng, dim, n_components)


def load_mixture_csv(path: str | Path) -> GaussianMixture:
    """A mixture from a CSV with one component a row: ``height, mean_1..mean_d, width_1..width_d``.

    Means are box coordinates (0..1), widths positive box units, heights positive; an error
    names the file and the row.
    """
    path = Path(path)
    header: list[str] = []
    if path.is_file():
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            header = [h.strip() for h in next(csv.reader(f), [])]
    dim = sum(1 for h in header if h.startswith("mean_"))
    if path.is_file() and dim == 0:
        raise CsvDataError(path, 1, f"no mean_1.. columns; header is {header}")
    columns = ["height"] + [f"mean_{j + 1}" for j in range(dim)] + [f"width_{j + 1}" for j in range(dim)]
    heights, means, widths = [], [], []
    for row, values in read_rows(path, columns):
        v = {c: parse_number(path, row, c, values[c]) for c in columns}
        if v["height"] <= 0:
            raise CsvDataError(path, row, f"non-positive height {v['height']!r}")
        m = [v[f"mean_{j + 1}"] for j in range(dim)]
        w = [v[f"width_{j + 1}"] for j in range(dim)]
        if not all(0.0 <= x <= 1.0 for x in m):
            raise CsvDataError(path, row, f"mean {m} outside the unit box 0..1")
        if not all(x > 0 for x in w):
            raise CsvDataError(path, row, f"non-positive width in {w}")
        heights.append(v["height"])
        means.append(m)
        widths.append(w)
    if not heights:
        raise CsvDataError(path, None, "no components")
    return GaussianMixture(np.array(heights), np.array(means), np.array(widths))


def experiments_to_optimum(best: np.ndarray, optimum: float, tolerance: float = TOLERANCE) -> int:
    """Experiments until the best result so far is within ``tolerance`` of ``optimum``: the
    1-based index of the first ``best[i] >= (1 - tolerance) * optimum``; ``len(best) + 1`` when
    never (not within the budget)."""
    hits = np.flatnonzero(np.asarray(best) >= (1.0 - tolerance) * optimum)
    return int(hits[0]) + 1 if len(hits) else len(best) + 1


class ReactionOptimizationEnv(gym.Env):
    """Optimise a reaction in ``budget`` experiments; each step runs one experiment.

    Action (Box ``[-1, 1]^(d+1)``), a step from the best conditions so far. ``action="model"``
    (default): a correction to the local model's proposal (:meth:`proposal`, unit direction
    ``u``, length ``L``): ``x = clip(x_best + r * v / |v|, 0, 1)`` with ``v = u + 2 a[:d]`` and
    ``r = clip(L * 10 ** (1.5 a[d]), 0.01, 1)`` box units, so ``a = 0`` takes the proposal and
    the policy can turn, shorten or lengthen it up to a jump across the box.
    ``action="step"``: a plain step ``x = clip(x_best + r * a[:d], 0, 1)`` with
    ``r = MIN_STEP * (MAX_STEP / MIN_STEP) ** ((a[d] + 1) / 2)`` (0.01 .. 1, log scale).
    Observation (flat Box; results over the best so far but for the best itself): the fraction
    of the budget used, the best result (result units, clipped to 2), the best conditions (box
    mapped to -1..1), the experiments since the last improvement over the budget, a local plane
    and quadratic fit around the best (:meth:`_local_model`), then for each of the last
    ``history`` experiments, newest first, its offset from the best conditions, its result over
    the best result and a 1 (zeros for experiments not yet run).
    Reward: ``"regret"`` (default) minus the simple regret ``(optimum - best) / optimum`` after
    each experiment, whose sum is the area under the regret curve (finding the optimum sooner
    pays); ``"improvement"`` the paper's, the gain of the best result over the previous best,
    over the optimum; ``"experiments"`` -1 per experiment until the best is within
    :data:`TOLERANCE` of the optimum, which ends the episode (the return is minus the metric).
    The first experiment, run by ``reset``, is the centre of the box.
    Surfaces: a new one of the split's seed stream each episode (``options={"surface": i}``
    picks surface ``i``), or the one mixture of ``surface_csv``.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        surface: str = "gaussians",
        dim: int = 3,
        n_components: int = 6,
        budget: int = 100,
        history: int = 8,
        reward: str = "regret",
        action: str = "model",
        split: str = "train",
        n_test_surfaces: int = 50,
        data_seed: int = 0,
        surface_csv: str | Path | None = None,
        render_mode: str | None = None,
    ):
        if surface not in SURFACES:
            raise ValueError(f"ReactionOptimizationEnv: surface={surface!r}: expected one of {', '.join(SURFACES)}")
        if reward not in REWARDS:
            raise ValueError(f"ReactionOptimizationEnv: reward={reward!r}: expected one of {', '.join(REWARDS)}")
        if action not in ACTIONS:
            raise ValueError(f"ReactionOptimizationEnv: action={action!r}: expected one of {', '.join(ACTIONS)}")
        if split not in SPLITS:
            raise ValueError(f"ReactionOptimizationEnv: split={split!r}: expected one of {', '.join(SPLITS)}")
        if render_mode is not None:
            raise ValueError(f"no render modes; got render_mode={render_mode!r}")
        check_ranges(
            "ReactionOptimizationEnv",
            [
                ("dim", dim, 1, 10),
                ("n_components", n_components, 1, 100),
                ("budget", budget, 2, 100_000),
                ("history", history, 1, 1000),
                ("n_test_surfaces", n_test_surfaces, 1, 100_000),
                ("data_seed", data_seed, 0, 2**31),
            ],
        )
        counts = {"dim": dim, "n_components": n_components, "budget": budget, "history": history}
        for name, value in {**counts, "n_test_surfaces": n_test_surfaces}.items():
            if not float(value).is_integer():
                raise ValueError(f"ReactionOptimizationEnv: {name}={value!r}: expected a whole number")
        if surface == "kinetics" and dim != 3:
            raise ValueError(f"ReactionOptimizationEnv: dim={dim!r}: the kinetics surface has 3 conditions")
        self.fixed: Surface | None = load_mixture_csv(surface_csv) if surface_csv is not None else None
        self.kind, self.split, self.data_seed = surface, split, int(data_seed)
        self.dim = self.fixed.dim if self.fixed is not None else int(dim)
        self.n_components, self.budget, self.history = int(n_components), int(budget), int(history)
        self.reward_kind, self.action_kind, self.n_test_surfaces = reward, action, int(n_test_surfaces)
        self.render_mode = render_mode
        n_obs = 6 + 3 * self.dim + self.history * (self.dim + 2)
        self.observation_space = spaces.Box(-2.0, 2.0, shape=(n_obs,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.dim + 1,), dtype=np.float32)
        self.surface: Surface = self.fixed or self.make_surface(0)
        self._xs = np.zeros((self.budget, self.dim))
        self._ys = np.zeros(self.budget)
        self._n = 0
        self._best_i = 0
        self._since = 0
        self._local = np.zeros(2 * self.dim + 3)

    def make_surface(self, index: int) -> Surface:
        """Surface ``index`` of this env's split and settings (the CSV's mixture when one is given)."""
        if self.fixed is not None:
            return self.fixed
        return make_surface(self.kind, self.split, index, self.dim, self.n_components, self.data_seed)

    def conditions(self, action: np.ndarray) -> np.ndarray:
        """The box conditions an action asks for (see the class docstring)."""
        a = np.clip(np.asarray(action, dtype=float).reshape(-1), -1.0, 1.0)
        best_x = self._xs[self._best_i]
        if self.action_kind == "step":
            radius = MIN_STEP * (MAX_STEP / MIN_STEP) ** ((a[self.dim] + 1.0) / 2.0)
            return np.clip(best_x + radius * a[: self.dim], 0.0, 1.0)
        unit, length = self.proposal()
        direction = unit + 2.0 * a[: self.dim]
        norm = float(np.linalg.norm(direction))
        radius = float(np.clip(length * 10.0 ** (1.5 * a[self.dim]), MIN_STEP, MAX_STEP))
        return np.clip(best_x + radius * direction / max(norm, 1e-12), 0.0, 1.0)

    def proposal(self) -> tuple[np.ndarray, float]:
        """The local model's next step from the best conditions: (unit direction, length in box
        units). To the quadratic's maximum when it is fitted, else up the plane by the spread
        of the nearest experiments, else no direction and :data:`FIRST_STEP`."""
        d, local = self.dim, self._local
        if local[2 * d + 2] != 0.0 or np.any(local[d + 2 : 2 * d + 2]):
            return local[d + 2 : 2 * d + 2], 10.0 ** (2.0 * local[2 * d + 2])
        if np.any(local[:d]):
            return local[:d], 10.0 ** (2.0 * local[d + 1])
        return np.zeros(d), FIRST_STEP

    @property
    def best(self) -> float:
        """The best result so far (result units)."""
        return float(self._ys[self._best_i])

    def _run(self, x: np.ndarray) -> float:
        y = float(self.surface(x))
        self._xs[self._n], self._ys[self._n] = x, y
        if self._n == 0 or y > self._ys[self._best_i]:
            self._best_i, self._since = self._n, 0
        else:
            self._since += 1
        self._n += 1
        self._local = self._local_model()
        return y

    def _obs(self) -> np.ndarray:
        n, k, d = self._n, self.history, self.dim
        best_x, best_y = self._xs[self._best_i], self._ys[self._best_i]
        recent = np.zeros((k, d + 2))
        m = min(n, k)
        idx = np.arange(n - 1, n - 1 - m, -1)
        recent[:m, :d] = self._xs[idx] - best_x
        recent[:m, d] = self._ys[idx] / best_y if best_y > 0 else 0.0
        recent[:m, d + 1] = 1.0
        head = np.concatenate([[n / self.budget, best_y], 2.0 * best_x - 1.0, [self._since / self.budget]])
        return np.clip(np.concatenate([head, self._local, recent.ravel()]), -2.0, 2.0).astype(np.float32)

    def _local_model(self) -> np.ndarray:
        """Least-squares fits of the results (over the best) of the experiments nearest the best
        (``max(NEAREST, 2 d + 2)`` of them) against their offsets from it. A plane: its uphill unit
        direction (d values), log10 of its slope (per box unit) / 3 and log10 of those experiments'
        median distance / 2. A separable quadratic (with 2 d + 1 experiments or more): the unit
        direction to its maximum within the box and log10 of that distance / 2 (uphill by the
        median distance along axes where it curves up). Zeros before there are enough experiments."""
        n, d = self._n, self.dim
        out = np.zeros(2 * d + 3)
        if n < d + 1 or self._ys[self._best_i] <= 0:
            return out
        best_x = self._xs[self._best_i]
        offsets = self._xs[:n] - best_x
        dist = np.linalg.norm(offsets, axis=1)
        near = np.argsort(dist)[1 : max(NEAREST, 2 * d + 2) + 1]
        rel = self._ys[near] / self._ys[self._best_i] - 1.0
        slope = np.linalg.lstsq(offsets[near], rel, rcond=None)[0]
        size = float(np.linalg.norm(slope))
        spread = max(float(np.median(dist[near])), 1e-6)
        out[:d] = slope / size if size > 0 else 0.0
        out[d : d + 2] = math.log10(max(size, 1e-6)) / 3.0, math.log10(spread) / 2.0
        if len(near) < 2 * d:
            return out
        coef = np.linalg.lstsq(np.hstack([offsets[near], offsets[near] ** 2]), rel, rcond=None)[0]
        g, c = coef[:d], coef[d:]
        step = np.where(c < 0, -g / (2 * np.where(c < 0, c, -1.0)), np.sign(g) * spread)
        step = np.clip(best_x + step, 0.0, 1.0) - best_x
        length = float(np.linalg.norm(step))
        if length > 0:
            out[d + 2 : 2 * d + 2] = step / length
            out[2 * d + 2] = math.log10(max(length, 1e-6)) / 2.0
        return out

    def _info(self, y: float) -> dict[str, Any]:
        return {
            "experiment": self._n,
            "conditions": self._xs[self._n - 1].tolist(),
            "result": y,
            "best": self.best,
            "optimum": self.surface.optimum,
            "regret": self.regret,
        }

    @property
    def regret(self) -> float:
        """Simple regret of the best result so far, over the optimum (0: found it)."""
        return max(0.0, (self.surface.optimum - self.best) / self.surface.optimum)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw a surface (``options={"surface": i}``: surface ``i`` of the split) and run the first
        experiment at the centre of the box."""
        super().reset(seed=seed)
        if options and "surface" in options:
            index = int(options["surface"])
        else:
            index = int(self.np_random.integers(0, 2**31 - 1))
        self.surface = self.make_surface(index)
        self._n, self._best_i, self._since = 0, 0, 0
        y = self._run(np.full(self.dim, 0.5))
        return self._obs(), self._info(y)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._n >= self.budget:
            raise RuntimeError("ReactionOptimizationEnv: the budget is spent; call reset()")
        before = self.best
        y = self._run(self.conditions(action))
        found = self.regret <= TOLERANCE
        if self.reward_kind == "regret":
            reward = -self.regret
        elif self.reward_kind == "experiments":
            reward = 0.0 if found else -1.0
        else:
            reward = (self.best - before) / self.surface.optimum
        terminated = found and self.reward_kind == "experiments"
        return self._obs(), float(reward), terminated, self._n >= self.budget and not terminated, self._info(y)
