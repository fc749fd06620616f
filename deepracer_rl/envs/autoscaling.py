"""Predictive auto scaling as a gymnasium env: add or remove machines ahead of the load.

New machines boot for ``boot_delay`` periods (and are billed meanwhile) before they
serve, so reacting to the current load alone is late on the daily ramp; the time of
day/week features and the load history let a policy scale ahead. Loads come from a
CSV trace (``timestamp, load``) or a seeded generator with daily/weekly cycles, noise
and spikes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from deepracer_rl.envs.csvdata import CsvDataError, check_ranges, parse_number, parse_time, read_rows

DELTAS = (-4, -2, -1, 0, 1, 2, 4)  # machines removed/added by each Discrete action
HOLD_ACTION = DELTAS.index(0)
MINUTES_PER_DAY = 24 * 60
MAX_LOAD_OVER_POOL = 100.0  # the largest load, in full-pool capacities, the env accepts (rewards stay finite)


@dataclass(frozen=True)
class LoadTrace:
    """Transactions arriving in each period of ``step_minutes`` starting at ``timestamps[t]``."""

    timestamps: np.ndarray  # datetime64[m], evenly spaced
    load: np.ndarray  # (T,) float64 >= 0
    step_minutes: int

    def __post_init__(self) -> None:
        if self.load.shape != self.timestamps.shape:
            raise ValueError("load and timestamps differ in length")
        if not np.all(np.isfinite(self.load)) or np.any(self.load < 0):
            raise ValueError("load must be finite and non-negative")
        if MINUTES_PER_DAY % self.step_minutes:
            raise ValueError(f"step_minutes={self.step_minutes} must divide a day")

    @property
    def steps_per_day(self) -> int:
        return MINUTES_PER_DAY // self.step_minutes

    def time_features(self) -> np.ndarray:
        """(T, 4) sin/cos of the time of day and of the time of week."""
        minutes = self.timestamps.astype("datetime64[m]").astype(np.int64)
        day = (minutes % MINUTES_PER_DAY) / MINUTES_PER_DAY
        week = (((minutes // MINUTES_PER_DAY) + 3) % 7 + day) / 7.0  # 1970-01-01 was a Thursday
        return np.stack(
            [np.sin(2 * np.pi * day), np.cos(2 * np.pi * day), np.sin(2 * np.pi * week), np.cos(2 * np.pi * week)],
            axis=1,
        )


def load_trace_csv(path: str | Path) -> LoadTrace:
    """Read ``timestamp, load`` rows; the spacing of the first two rows sets the period.

    Rejects, naming the file and row: bad numbers or timestamps, negative loads,
    timestamps that do not increase (unsorted or duplicated), and gaps or irregular
    spacing.
    """
    times, loads = [], []
    step = None
    for row, values in read_rows(path, ("timestamp", "load")):
        ts = parse_time(path, row, "timestamp", values["timestamp"])
        load = parse_number(path, row, "load", values["load"])
        if load < 0:
            raise CsvDataError(path, row, f"negative load {load!r}")
        if times:
            delta = ts - times[-1]
            if delta.total_seconds() <= 0:
                what = "duplicate" if delta.total_seconds() == 0 else "unsorted"
                raise CsvDataError(path, row, f"{what} timestamp {values['timestamp']}: not after {times[-1]}")
            if step is None:
                step = delta
            elif delta > step:
                raise CsvDataError(path, row, f"gap: {delta} since {times[-1]}, expected {step} (from the first rows)")
            elif delta != step:
                raise CsvDataError(path, row, f"irregular spacing: {delta} since {times[-1]}, expected {step}")
        times.append(ts)
        loads.append(load)
    if step is None:
        raise CsvDataError(path, None, "need at least two rows")
    minutes = step.total_seconds() / 60
    if minutes != int(minutes) or MINUTES_PER_DAY % int(minutes):
        raise CsvDataError(path, 3, f"period {step} must be whole minutes dividing a day")
    stamps = np.array([np.datetime64(t, "m") for t in times])
    try:
        return LoadTrace(timestamps=stamps, load=np.array(loads), step_minutes=int(minutes))
    except ValueError as exc:
        raise CsvDataError(path, None, str(exc)) from None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def generate_load(
    n_days: int = 56, step_minutes: int = 10, peak: float = 3000.0, seed: int = 0, start: str = "2024-01-01"
) -> LoadTrace:
    """Business-like load: sharp morning ramp, evening decline, quiet weekends, day-to-day
    level changes, AR(1) multiplicative noise and occasional decaying spikes."""
    rng = np.random.default_rng(seed)
    spd = MINUTES_PER_DAY // step_minutes
    n = n_days * spd
    stamps = np.datetime64(start, "m") + np.arange(n) * np.timedelta64(step_minutes, "m")
    hour = (np.arange(n) % spd) * step_minutes / 60.0
    weekday = ((stamps.astype("datetime64[D]").astype(np.int64) + 3) % 7).astype(int)  # Monday = 0
    daytime = _sigmoid((hour - 8.0) / 0.5) * (1.0 - 0.75 * _sigmoid((hour - 18.5) / 1.0))
    daytime *= 1.0 - 0.12 * np.exp(-0.5 * ((hour - 12.5) / 0.6) ** 2)  # lunch dip
    week_level = np.array([1.0, 1.0, 1.0, 0.97, 0.9, 0.45, 0.35])[weekday]
    day_level = np.repeat(np.exp(rng.normal(0.0, 0.08, n_days)), spd)
    trend = 1.0 + 0.1 * np.arange(n) / n
    base = peak * trend * day_level * (0.12 + 0.88 * week_level * daytime)
    noise = np.empty(n)
    noise[0] = 0.0
    shocks = rng.normal(0.0, 0.05, n)
    for t in range(1, n):
        noise[t] = 0.7 * noise[t - 1] + shocks[t]
    spikes = np.zeros(n)
    for t0 in np.flatnonzero(rng.random(n) < 1.0 / (3 * spd)):
        height = rng.uniform(0.3, 1.0) * base[t0]
        length = min(n - t0, 12)
        spikes[t0 : t0 + length] += height * np.exp(-np.arange(length) / 3.0)
    load = np.maximum(0.0, base * np.exp(noise) + spikes)
    return LoadTrace(timestamps=stamps, load=load, step_minutes=step_minutes)


class AutoScalingEnv(gym.Env):
    """Scale a pool of machines to a stream of transactions; each period serves up to
    ``capacity`` transactions per active machine and loses the rest.

    Action: Discrete index into :data:`DELTAS` (remove 4/2/1, hold, add 1/2/4). Added
    machines serve ``boot_delay`` periods later; removals cancel booting machines first.
    Reward per period, in units of one fully used machine-period over ``reward_scale``:
    ``(served - lost_penalty * lost) / capacity - machine_cost * (active + booting)``.
    Observation (flat Box; loads over full-pool capacity, machines over ``max_machines``):
    last load, last lost, active, booting per remaining boot period, the ``history``
    loads before that, yesterday's loads over the coming boot window, and sin/cos of the
    time of day and week of the period about to be served.
    Periods split by time: ``"train"`` the first ``train_fraction``, ``"test"`` the rest;
    an episode lasts ``episode_days`` (None: the whole split) from a random start.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        trace: LoadTrace | None = None,
        csv_path: str | Path | None = None,
        split: str = "train",
        train_fraction: float = 0.75,
        episode_days: float | None = 1.0,
        capacity: float = 100.0,
        max_machines: int = 60,
        min_machines: int = 1,
        boot_delay: int = 3,
        machine_cost: float = 0.3,
        lost_penalty: float = 2.0,
        reward_scale: float = 10.0,
        history: int = 6,
        n_days: int = 56,
        data_seed: int = 0,
        render_mode: str | None = None,
    ):
        check_ranges(
            "AutoScalingEnv",
            [
                ("train_fraction", train_fraction, 0.01, 0.99),
                ("capacity", capacity, 1e-6, 1e12),
                ("max_machines", max_machines, 1, 100_000),
                ("min_machines", min_machines, 1, max_machines),
                ("boot_delay", boot_delay, 0, 1000),
                ("machine_cost", machine_cost, 0.0, 1e6),
                ("lost_penalty", lost_penalty, 0.0, 1e6),
                ("reward_scale", reward_scale, 1e-6, 1e12),
                ("history", history, 1, 10_000),
                ("n_days", n_days, 2, 100_000),
            ]
            + ([("episode_days", episode_days, 1e-3, 1e6)] if episode_days is not None else []),
        )
        if trace is None:
            trace = load_trace_csv(csv_path) if csv_path is not None else generate_load(n_days, seed=data_seed)
        peak = float(trace.load.max(initial=0.0))
        if peak > MAX_LOAD_OVER_POOL * capacity * max_machines:
            raise ValueError(
                f"{csv_path or 'the load trace'}: a load of {peak:g} is more than {MAX_LOAD_OVER_POOL:g} times the "
                f"full pool's capacity ({max_machines} machines x {capacity:g}); raise capacity or max_machines, or "
                "scale the load"
            )
        if render_mode is not None:
            raise ValueError(f"no render modes; got render_mode={render_mode!r}")
        self.render_mode = render_mode
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', not {split!r}")
        self.trace = trace
        self.capacity = capacity
        self.max_machines = max_machines
        self.min_machines = min_machines
        self.boot_delay = boot_delay
        self.machine_cost = machine_cost
        self.lost_penalty = lost_penalty
        self.reward_scale = reward_scale
        self.history = history
        self._day = trace.steps_per_day
        self._load = trace.load
        self._norm_load = trace.load / (capacity * max_machines)
        self._time = trace.time_features().astype(np.float32)
        earliest = max(self._day, history + 1)
        cut = int(round(train_fraction * len(trace.load)))
        # The observation needs the time features of the next period, so the last one is not served.
        self.first, self.last = (earliest, cut) if split == "train" else (max(cut, earliest), len(trace.load) - 1)
        span = self.last - self.first
        if span < 1:
            raise ValueError(f"split '{split}' has no periods after the first day of history")
        self.episode_length = span if episode_days is None else max(1, min(int(episode_days * self._day), span))
        n_obs = 3 + boot_delay + history + (boot_delay + 2) + 4
        self.observation_space = spaces.Box(-1.0, 5.0, shape=(n_obs,), dtype=np.float32)
        self.action_space = spaces.Discrete(len(DELTAS))
        self._t = self._end = self.first
        self._active = min_machines
        self._booting = np.zeros(boot_delay, dtype=np.int64)  # [k]: serve after k+1 more periods
        self._lost = 0.0

    def _obs(self) -> np.ndarray:
        t, m = self._t, self.max_machines
        loads = self._norm_load
        parts = [
            [loads[t - 1], self._lost / (self.capacity * m), self._active / m],
            self._booting / m,
            loads[t - 1 - self.history : t - 1][::-1],
            loads[t - self._day : t - self._day + self.boot_delay + 2],
            self._time[t],
        ]
        return np.clip(np.concatenate(parts), -1.0, 5.0).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        return {
            "active": self._active,
            "booting": int(self._booting.sum()),
            "last_load": float(self._load[self._t - 1]),
            "timestamp": str(self.trace.timestamps[self._t]),
            "period": self._t,
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start at a random period of the split (``options={"start": i}`` fixes the offset
        ``i``) with enough machines for the last load at 75 % utilisation, none booting."""
        super().reset(seed=seed)
        latest = self.last - self.episode_length
        if options and "start" in options:
            self._t = min(self.first + int(options["start"]), latest)
        else:
            self._t = int(self.np_random.integers(self.first, latest + 1))
        self._end = self._t + self.episode_length
        needed = math.ceil(self._load[self._t - 1] / (0.75 * self.capacity))
        self._active = int(np.clip(needed, self.min_machines, self.max_machines))
        self._booting[:] = 0
        self._lost = 0.0
        return self._obs(), self._info()

    def _scale(self, delta: int) -> None:
        if delta > 0:
            delta = min(delta, self.max_machines - self._active - int(self._booting.sum()))
            if self.boot_delay:
                self._booting[-1] += delta
            else:
                self._active += delta
            return
        remove = min(-delta, self._active + int(self._booting.sum()) - self.min_machines)
        for k in range(self.boot_delay - 1, -1, -1):  # cancel the latest-started first
            cancel = min(remove, int(self._booting[k]))
            self._booting[k] -= cancel
            remove -= cancel
        self._active -= remove

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._scale(DELTAS[int(action)])
        billed = self._active + int(self._booting.sum())
        load = float(self._load[self._t])
        capacity = self._active * self.capacity
        served = min(load, capacity)
        lost = load - served
        served_at = str(self.trace.timestamps[self._t])
        reward = ((served - self.lost_penalty * lost) / self.capacity - self.machine_cost * billed) / self.reward_scale
        if self.boot_delay:
            self._active += int(self._booting[0])
            self._booting[:-1] = self._booting[1:]
            self._booting[-1] = 0
        self._lost = lost
        self._t += 1
        info = self._info()  # the state the next action sees, plus what this period did
        info.update(served_timestamp=served_at, load=load, served=served, lost=lost, capacity=capacity, billed=billed)
        obs = self._obs()
        if not (math.isfinite(reward) and np.all(np.isfinite(obs))):  # checked inputs make this unreachable
            raise ValueError(f"AutoScalingEnv: a non-finite reward or observation at period {served_at}")
        return obs, float(reward), False, self._t >= self._end, info


class TargetTracking:
    """Baseline like cloud target-tracking policies: keep utilisation near ``set_point``.

    Wants ``ceil(last load / (capacity * set_point))`` machines counting booting ones;
    scales out at once; scales in only after ``scale_in_cooldown`` periods without
    scaling (0 by default: flapping costs nothing extra here, and a cooldown lost reward).
    """

    def __init__(self, capacity: float, set_point: float = 0.7, scale_in_cooldown: int = 0):
        self.capacity = capacity
        self.set_point = set_point
        self.scale_in_cooldown = scale_in_cooldown
        self._since_scaling = 0

    def reset(self) -> None:
        self._since_scaling = 0

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        """Discrete action for an AutoScalingEnv given its last info."""
        current = info["active"] + info["booting"]
        wanted = math.ceil(info["last_load"] / (self.capacity * self.set_point))
        diff = wanted - current
        self._since_scaling += 1
        if diff < 0 and self._since_scaling <= self.scale_in_cooldown:
            return HOLD_ACTION
        action = int(np.argmin([abs(diff - d) + (0.5 if abs(d) > abs(diff) else 0) for d in DELTAS]))
        if DELTAS[action] != 0:
            self._since_scaling = 0
        return action
