"""Head-to-head: two drivers on one track, in evaluation laps and in training.

`run_head_to_head` drives DeepRacer's head-to-head evaluation: the two cars of a pair
(`RaceCore(head_to_head=True)`, two cars) start staggered (`opponents.staggered_starts`, the
leader alternating lap by lap), each with its own driver; a collision costs each car involved
COLLISION_PENALTY s (5) and puts the car behind back STAGGER_M behind the other, in the other
lane; an off-track costs `off_track_penalty` s (or ends that car's lap without one). A car that
finished its lap (or whose lap ended) leaves the track, so the other drives on alone.

`HeadToHeadVecEnv` trains against opponents: the simulator holds 2N cars, the learner's N
(even rows) are the VecEnv's, the N opponent cars (odd rows) are driven by an `OpponentPool`: a
fixed model, the scripted driver, or frozen snapshots of the learner (self-play), one drawn per
opponent episode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvObs, VecEnvStepReturn

from .action_space import ActionSpace
from .env import step_result
from .episode import EpisodeStatus, start_line_pose
from .evaluate import LapReport, baseline_driver
from .opponents import ahead_of, staggered_starts
from .race import RaceCore
from .sensors import observation_space
from .vec_env import RaceVecEnv

# A row driver: commands (steering degrees, + = left; speed m/s), each (len(rows),), for cars
# `rows` of the race.
RowDriver = Callable[[RaceCore, np.ndarray], tuple[np.ndarray, np.ndarray]]
PARKED = np.array([1.0e4, 1.0e4, 0.0])  # where a car whose lap is over waits, far off the track (m)


def take_rows(observation: np.ndarray | dict[str, np.ndarray], rows: np.ndarray) -> Any:
    """The observations of cars `rows` (a Box's array or a Dict's arrays by key), copied."""
    if isinstance(observation, dict):
        return {key: value[rows].copy() for key, value in observation.items()}
    return observation[rows].copy()


def policy_rows(model: Any, actions: ActionSpace, deterministic: bool = True) -> RowDriver:
    """A row driver from anything with SB3's `predict(obs, deterministic)` and its own action space."""

    def drive(core: RaceCore, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        action, _ = model.predict(take_rows(core.stack, rows), deterministic=deterministic)
        return actions.to_commands(action)

    return drive


def baseline_rows() -> RowDriver:
    """The scripted driver (`evaluate.baseline_driver`, which sees the other car) as a row driver."""
    drive_all = baseline_driver()

    def drive(core: RaceCore, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        steer, speed = drive_all(core)
        return steer[rows], speed[rows]

    return drive


@dataclass
class HeadToHeadReport:
    """Two cars' laps of a head-to-head evaluation: per car a `LapReport`, per lap who led at the
    start and who finished first (None: neither completed the lap)."""

    cars: list[LapReport]
    leaders: list[int] = field(default_factory=list)
    firsts: list[int | None] = field(default_factory=list)

    @property
    def winner(self) -> int | None:
        """The race's winner: more completed laps, then less time over them (penalties in); None for a tie."""
        keys = [(-r.completed_laps, round(sum(r.lap_times_s), 6)) for r in self.cars]
        if keys[0] == keys[1]:
            return None
        return int(keys[1] < keys[0])

    def as_dict(self, labels: Sequence[str] = ("car 0", "car 1")) -> dict[str, Any]:
        cars = []
        for k, (label, report) in enumerate(zip(labels, self.cars)):
            cars.append({"car": k, "driver": label, **report.as_dict(), "laps_won": self.firsts.count(k)})
        return {
            "race_type": "head_to_head",
            "laps": len(self.leaders),
            "cars": cars,
            "per_lap": [
                {"lap": lap, "leader_at_start": lead, "finished_first": first}
                for lap, (lead, first) in enumerate(zip(self.leaders, self.firsts))
            ],
            "winner": self.winner,
        }


def run_head_to_head(
    core: RaceCore,
    drivers: Sequence[RowDriver],
    laps: int = 3,
    off_track_penalty: float | None = None,
    max_seconds: float = 120.0,
    starts: np.ndarray | None = None,
    collision_penalty: float | None = None,
) -> HeadToHeadReport:
    """Drive `laps` head-to-head laps of two drivers (car 0: drivers[0], car 1: drivers[1]) from the
    start line, or lap k from `starts[k]` (x, y, yaw: the leader's start), and report (see the module
    docstring). `collision_penalty`: s per collision (None: DeepRacer's 5 s in evaluation)."""
    if core.n != 2 or not core.head_to_head:
        raise ValueError("a head-to-head evaluation races the two cars of RaceCore(head_to_head=True)")
    if len(drivers) != 2:
        raise ValueError(f"a head-to-head evaluation takes two drivers, got {len(drivers)}")
    if starts is not None and len(starts) != laps:
        raise ValueError(f"{len(starts)} start poses for {laps} laps")
    was_evaluation, core.evaluation = core.evaluation, True
    if collision_penalty is None:
        collision_penalty = core.penalties()[1]
    reports = [LapReport(laps=laps), LapReport(laps=laps)]
    out = HeadToHeadReport(reports)
    track, judge, both = core.track_set.tracks[0], core.judge, np.arange(2)
    try:
        for lap in range(laps):
            start = start_line_pose(track) if starts is None else np.asarray(starts[lap], dtype=np.float64)
            leader = lap % 2
            core.reset_cars(both, pose=staggered_starts(track, start, core.car, leader=leader), reverse=False)
            started = core.backend.states().sim_time
            penalty = np.zeros(2)
            racing = np.ones(2, dtype=bool)
            finish = [np.inf, np.inf]
            statuses = [EpisodeStatus.IN_PROGRESS] * 2
            totals = np.zeros(2)
            for _ in range(int(max_seconds * core.control_hz)):
                steer, speed = np.zeros(2), np.zeros(2)
                for k in np.flatnonzero(racing):
                    s, v = drivers[k](core, np.array([k]))
                    steer[k], speed[k] = float(np.ravel(s)[0]), float(np.ravel(v)[0])
                rewards, status, _ = core.drive(steer, speed)
                totals += np.where(racing, rewards, 0.0)
                crashed = [k for k in np.flatnonzero(racing) if status[k] is EpisodeStatus.CRASHED]
                if crashed:
                    _crash(core, crashed, reports, penalty, collision_penalty, track)
                for k in np.flatnonzero(racing):
                    st = status[k]
                    if st is EpisodeStatus.CRASHED:
                        continue
                    if st is EpisodeStatus.OFF_TRACK:
                        reports[k].off_track += 1
                        if off_track_penalty is not None:
                            penalty[k] += off_track_penalty
                            reports[k].penalty_s += off_track_penalty
                            core.put_back_on_track(int(k))
                            continue
                    if st.done:
                        statuses[k] = st
                        racing[k] = False
                        seconds = core.backend.states().sim_time - started + penalty[k]
                        if st is EpisodeStatus.LAP_COMPLETE:
                            finish[k] = seconds
                        _park(core, int(k), seconds, reports[k], judge, st, float(totals[k]))
                if not racing.any():
                    break
                core.observe(both)
            for k in np.flatnonzero(racing):  # time up: the lap ends where the car is
                seconds = core.backend.states().sim_time - started + penalty[k]
                _park(core, int(k), seconds, reports[k], judge, EpisodeStatus.TIME_UP, float(totals[k]))
            out.leaders.append(leader)
            done = [k for k in range(2) if np.isfinite(finish[k])]
            out.firsts.append(min(done, key=lambda k: finish[k]) if done else None)
    finally:
        core.evaluation = was_evaluation
    return out


def _crash(
    core: RaceCore, crashed: list[int], reports: list[LapReport], penalty: np.ndarray, seconds: float, track: Any
) -> None:
    """Collision of the pair: each crashed car gets `seconds`; the car behind goes back behind the
    other (`RaceCore.crash_reset`), the car ahead stops where it is."""
    gap = ahead_of(track, core.poses(), core.car)
    for k in crashed:
        reports[k].collisions += 1
        reports[k].penalty_s += seconds
        penalty[k] += seconds
    behind = [k for k in crashed if gap[k] >= 0.0] or crashed[:1]
    for k in crashed:
        if k in behind:
            core.crash_reset(int(k))
        else:  # stopped where it is (same episode)
            core.backend.reset_cars(np.array([k]), core.poses()[k : k + 1].copy(), new_episode=False)


def _park(
    core: RaceCore, k: int, seconds: float, report: LapReport, judge: Any, status: EpisodeStatus, total: float
) -> None:
    """Car k's lap is over: record it and move the car off the track (PARKED)."""
    progress = float(min(100.0, judge.best[k] / judge.lap_length[k] * 100.0))
    report.progress.append(progress)
    report.statuses.append(status.value)
    report.seconds.append(float(seconds))
    report.rewards.append(total)
    if status is EpisodeStatus.LAP_COMPLETE:
        report.completed_laps += 1
        report.lap_times_s.append(float(seconds))
    core.backend.reset_cars(np.array([k]), PARKED[None] + np.array([[50.0 * k, 0.0, 0.0]]), new_episode=False)


class OpponentPool:
    """Who drives the opponent cars of a head-to-head training: a pool of row drivers, one drawn
    (uniformly, from `seed`) for each opponent episode; `add` puts a driver in and keeps the newest
    `keep` (self-play's snapshots). It may start empty, but needs a driver before the first episode."""

    def __init__(self, drivers: Sequence[RowDriver], keep: int | None = None, seed: int | None = None):
        self.drivers: list[RowDriver] = list(drivers)
        self.labels: list[str] = [f"opponent {i}" for i in range(len(self.drivers))]
        self.keep = keep
        self.rng = np.random.default_rng(seed)
        self.assigned: dict[int, int] = {}  # opponent car row -> index into drivers
        self.drawn: list[str] = []  # the label of every driver drawn, in order (for tests and logs)

    def add(self, driver: RowDriver, label: str) -> None:
        """Put `driver` in the pool (the newest), dropping the oldest beyond `keep`."""
        self.drivers.append(driver)
        self.labels.append(label)
        if self.keep is not None and len(self.drivers) > self.keep:
            drop = len(self.drivers) - self.keep
            del self.drivers[:drop], self.labels[:drop]
            self.assigned = {row: max(0, i - drop) for row, i in self.assigned.items()}

    def new_episodes(self, rows: np.ndarray) -> None:
        """Draw a driver for each opponent car in `rows` starting an episode."""
        if not self.drivers:
            raise ValueError("the opponent pool is empty: add a driver before the race starts")
        for row in np.asarray(rows, dtype=np.intp).reshape(-1):
            index = int(self.rng.integers(len(self.drivers)))
            self.assigned[int(row)] = index
            self.drawn.append(self.labels[index])

    def act(self, core: RaceCore, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Commands for opponent cars `rows`, each from its drawn driver (batched per driver)."""
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        steer, speed = np.zeros(len(rows)), np.zeros(len(rows))
        which = np.array([self.assigned.get(int(r), 0) for r in rows])
        for index in np.unique(which):
            mine = np.flatnonzero(which == index)
            s, v = self.drivers[int(index)](core, rows[mine])
            steer[mine], speed[mine] = s, v
        return steer, speed


class HeadToHeadVecEnv(RaceVecEnv):
    """N learner cars, each racing an opponent car of an `OpponentPool`, as one SB3 VecEnv.

    The race holds 2N cars: learner k is car 2k, its opponent car 2k + 1. Only the learners'
    observations, rewards and infos reach SB3; an opponent's episode ends and restarts on its own
    (behind the learner, `RaceCore.reset_cars`) and draws a new driver from the pool.
    """

    def __init__(self, opponents: OpponentPool, n_envs: int = 8, seed: int | None = None, **core_kwargs: Any):
        self.core = RaceCore.create(n_cars=2 * n_envs, seed=seed, head_to_head=True, **core_kwargs)
        space = observation_space(self.core.backend.sensors, self.core.obs_spec)
        VecEnv.__init__(self, n_envs, space, self.core.actions.gym_space())
        self._actions: np.ndarray | None = None
        self.opponents = opponents
        self.learners = np.arange(0, 2 * n_envs, 2)
        self.others = self.learners + 1

    def reset(self) -> VecEnvObs:
        if self._seeds and self._seeds[0] is not None:
            self.core.reseed(self._seeds[0])
        self._reset_seeds()
        self.core.reset_cars(np.arange(self.core.n))
        self.opponents.new_episodes(self.others)
        return take_rows(self.core.stack, self.learners)

    def step_wait(self) -> VecEnvStepReturn:
        core = self.core
        steer, speed = np.zeros(core.n), np.zeros(core.n)
        steer[self.learners], speed[self.learners] = core.actions.to_commands(self._actions)
        steer[self.others], speed[self.others] = self.opponents.act(core, self.others)
        rewards, status, params = core.drive(steer, speed)
        done = np.array([s.done for s in status])
        core.observe(np.arange(core.n))
        infos: list[dict[str, Any]] = []
        for i in self.learners.tolist():
            _, truncated, info = step_result(status[i], params[i])
            if params[i]["steps"] == 1:
                info["start_params"] = core.judge.start_params(i)
            if done[i]:
                info["terminal_observation"] = core.observation(i)
                info["TimeLimit.truncated"] = truncated
            infos.append(info)
        if done.any():
            ended = np.flatnonzero(done)
            core.reset_cars(ended)
            self.opponents.new_episodes(ended[ended % 2 == 1])
        learners = self.learners
        return take_rows(core.stack, learners), rewards[learners].astype(np.float32), done[learners], infos
