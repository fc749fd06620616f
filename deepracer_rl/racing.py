"""Racing-line tools behind `deepracer-rl raceline`, `actions --from-raceline` and `validate-reward --along-raceline`.

`RacelineDriver` tracks a `raceline.Raceline` in a race (pure pursuit on the line with its
speed profile); `verify_raceline` drives it in the in-process simulator through
`evaluate.run_laps` (evaluation laps: from standstill on the start line). Action spaces and
reward files are made from the line's needs, and rewards are scored along the line and along
the centre line.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .action_space import SPEED_MIN, STEERING_LIMIT_DEG, ActionSpace
from .evaluate import run_laps
from .race import RaceCore
from .raceline import Raceline
from .reward import build_params_batch
from .rundir import RunDir, is_better
from .track import Track


class RacelineDriver:
    """Commands (steering degrees, speed m/s) that keep one car on a racing line at its profile's speed.

    Steering: pure pursuit toward the line point `lookahead_s` seconds of travel ahead (at least
    `min_lookahead` m), from the pose predicted over the servo lag and half a control period.
    Speed: the profile's speed where the car will be, plus the speed lag times the profile's
    acceleration there (so the lagging speed follows the profile).
    """

    def __init__(self, core: RaceCore, line: Raceline, lookahead_s: float = 0.12, min_lookahead: float = 0.25):
        self.core = core
        self.line = line
        self.lookahead_s = lookahead_s
        self.min_lookahead = min_lookahead
        dynamics = core.backend.dynamics
        self.steer_lag = dynamics.steer_time_constant  # s
        self.speed_lag = 1.0 / line.limits.speed_rate  # s
        self.dt = 1.0 / core.control_hz
        self.s = line.s
        self.length = line.length
        self.points = line.points
        speed = line.speed
        closed = line.closed
        ds = line.timing.ds
        ahead = np.roll(speed, -1) if closed else np.append(speed[1:], speed[-1])
        steps = ds if closed else np.append(ds, 1.0)
        self.accel = (ahead**2 - speed**2) / (2.0 * np.maximum(steps, 1e-9))  # m/s^2 toward the next point
        self.last = 0  # index of the line point last nearest the car
        self.prev_yaw: float | None = None  # rad, the car's yaw at the last command

    def _nearest(self, xy: np.ndarray) -> int:
        """Index of the line point nearest `xy`, searched near the last one (lines may pass close to themselves)."""
        n = len(self.points)
        window = np.arange(self.last - 20, self.last + 60)
        window = window % n if self.line.closed else np.clip(window, 0, n - 1)
        d = np.linalg.norm(self.points[window] - xy, axis=1)
        if d.min() > 0.5:  # lost (a new lap, a reset): search everywhere
            window = np.arange(n)
            d = np.linalg.norm(self.points - xy, axis=1)
        self.last = int(window[np.argmin(d)])
        return self.last

    def _at(self, s: float) -> tuple[np.ndarray, int]:
        """The line point (m) `s` metres along it (wrapping on loops) and the index before it."""
        s = s % self.length if self.line.closed else min(max(s, 0.0), self.s[-1])
        i = int(np.searchsorted(self.s, s, side="right") - 1)
        j = (i + 1) % len(self.points) if self.line.closed else min(i + 1, len(self.points) - 1)
        seg = self.s[i + 1] - self.s[i] if i + 1 < len(self.s) else self.length - self.s[i]
        t = 0.0 if seg <= 0 else (s - self.s[i]) / seg
        return self.points[i] + t * (self.points[j] - self.points[i]), i

    def act(self) -> tuple[np.ndarray, np.ndarray]:
        """One car's commands: (steering degrees (1,), speed m/s (1,))."""
        states = self.core.backend.states()
        x, y, yaw = states.poses[0]
        v = float(states.speeds[0])
        # Where the car will be when the command takes effect.
        lag = self.steer_lag + 0.5 * self.dt
        # The yaw rate from the last step's turn (0 on a lap's first step).
        yaw_rate = 0.0 if self.prev_yaw is None else _wrap(yaw - self.prev_yaw) / self.dt
        self.prev_yaw = yaw if v > 0.05 else None
        yaw_mid = yaw + 0.5 * yaw_rate * lag
        px, py = x + v * lag * math.cos(yaw_mid), y + v * lag * math.sin(yaw_mid)
        heading = yaw + yaw_rate * lag
        i = self._nearest(np.array([px, py]))
        lookahead = max(self.min_lookahead, v * self.lookahead_s + self.min_lookahead)
        target, _ = self._at(self.s[i] + lookahead)
        dx, dy = target[0] - px, target[1] - py
        alpha = math.atan2(dy, dx) - heading
        distance = max(math.hypot(dx, dy), 1e-3)
        curvature = 2.0 * math.sin(alpha) / distance
        max_steer = self.core.car.max_steer
        steer = max(-max_steer, min(max_steer, math.atan(curvature * self.core.car.wheelbase)))
        # Speed: the profile where the car is half a period from now, led by the speed lag.
        _, k = self._at(self.s[i] + v * 0.5 * self.dt)
        command = self.line.speed[k] + self.speed_lag * self.accel[k]
        command = max(SPEED_MIN, min(self.line.limits.max_speed, command))
        return np.array([math.degrees(steer)]), np.array([command])

    def __call__(self, core: RaceCore) -> tuple[np.ndarray, np.ndarray]:
        """The `evaluate.Driver` interface."""
        return self.act()


def verify_raceline(line: Raceline, laps: int = 1, trajectory_csv: str | os.PathLike | None = None) -> dict[str, Any]:
    """Drive `laps` evaluation laps of `line` in the in-process simulator; the driven lap times (s)."""
    core = RaceCore.create(track=line.track, n_cars=1, sensors=False)
    try:
        driver = RacelineDriver(core, line)
        report = run_laps(core, driver, laps=laps, trajectory_csv=trajectory_csv)
    finally:
        core.close()
    best = report.best_lap_s
    return {
        "driven_lap_s": None if best is None else round(best, 3),
        "driven_laps": report.as_dict(),
    }


def _wrap(angle: float) -> float:
    """An angle (rad) into -pi..pi."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


# ---- files of a line ---------------------------------------------------------------------------
def raceline_stem(line: Raceline) -> str:
    """The file name stem of a line's outputs: `<track>_raceline` or `<track>_reversed_raceline`."""
    name = line.track.name.replace(" (reversed)", "_reversed")
    return f"{name}_raceline"


def write_raceline(line: Raceline, out: str | os.PathLike) -> dict[str, Path]:
    """The line's `.npy` route, CSV and PNG in directory `out`; their paths by kind."""
    from .plots import plot_raceline

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = raceline_stem(line)
    title = (
        f"Racing line on {line.track.name}: {line.predicted_lap_s:.2f} s from standstill"
        + (f", {line.timing.flying_lap_s:.2f} s at speed" if line.timing.flying_lap_s is not None else "")
        + f" (margin {line.margin:.3f} m)"
    )
    return {
        "npy": line.save_npy(out / f"{stem}.npy"),
        "csv": line.save_csv(out / f"{stem}.csv"),
        "png": plot_raceline(line.track, line.points, line.speed, title, out / f"{stem}.png"),
    }


# ---- action spaces from the line ---------------------------------------------------------------
def raceline_action_space(line: Raceline, n: int = 10, continuous: bool = False) -> ActionSpace:
    """An action space covering the (steering degrees, speed m/s) pairs the line needs.

    Discrete: the straight-ahead top speed, the hardest turn each way at its speed, then greedy
    k-centre selection: each further action is the need farthest from all actions so far
    (steering in units of the steering limit, speed of the top speed), so no need is far from
    an action (at most twice the best possible largest gap). Continuous: the needs' ranges. Everything is
    within the car's limits (URDF steering, `sim.Dynamics` top speed, DeepRacer's 0.1 m/s floor).
    """
    if continuous:
        needs = _clipped_needs(line)
        steer_lo, steer_hi = math.floor(needs[:, 0].min()), math.ceil(needs[:, 0].max())
        if steer_hi <= steer_lo:
            steer_lo, steer_hi = steer_lo - 1, steer_hi + 1
        speed_lo = math.floor(needs[:, 1].min() * 10) / 10
        speed_hi = math.ceil(needs[:, 1].max() * 10) / 10
        limit = _steer_limit(line)
        speed_lo = max(SPEED_MIN, speed_lo)
        speed_hi = min(line.limits.max_speed, max(speed_hi, speed_lo + 0.1))
        metadata = {
            "action_space_type": "continuous",
            "action_space": {
                "steering_angle": {"low": max(-limit, steer_lo), "high": min(limit, steer_hi)},
                "speed": {"low": speed_lo, "high": speed_hi},
            },
        }
        return ActionSpace.from_metadata(metadata, f"the action space of {line.track.name}'s racing line")
    if n < 3:
        raise ValueError(f"--n {n}: a discrete space from a racing line needs at least 3 actions")
    needs = _clipped_needs(line)
    scale = np.array([_steer_limit(line), line.limits.max_speed])
    unit = needs / scale
    top = np.array([0.0, needs[:, 1].max()])
    left, right = needs[np.argmax(needs[:, 0])], needs[np.argmin(needs[:, 0])]
    # the fixed actions as written (0.1°, 0.01 m/s): a track that never turns right has its
    # hardest right turn at straight ahead, which must not become a second straight-ahead action
    fixed = np.array([top, left, right])
    fixed = np.unique(np.column_stack([np.round(fixed[:, 0], 1), np.round(fixed[:, 1], 2)]), axis=0) / scale
    chosen = fixed
    for _ in range(n - len(fixed)):  # k-centre: add the need farthest from every action so far
        gap = np.linalg.norm(unit[:, None] - chosen[None], axis=2).min(axis=1)
        chosen = np.vstack([chosen, unit[np.argmax(gap)]])
    actions = chosen * scale
    actions[:, 0] = np.round(actions[:, 0], 1)
    actions[:, 1] = np.clip(np.round(actions[:, 1], 2), SPEED_MIN, line.limits.max_speed)
    actions = actions[np.lexsort((actions[:, 1], actions[:, 0]))]
    metadata = {
        "action_space_type": "discrete",
        "action_space": [{"steering_angle": float(s), "speed": float(v)} for s, v in actions],
    }
    return ActionSpace.from_metadata(metadata, f"the action space of {line.track.name}'s racing line")


def coverage_gaps(space: ActionSpace, line: Raceline) -> tuple[float, float]:
    """(steering degrees, speed m/s) of the need farthest from a discrete space's actions (in the
    units the actions are chosen in: steering of the steering limit, speed of the top speed)."""
    needs = _clipped_needs(line)
    scale = np.array([_steer_limit(line), line.limits.max_speed])
    gaps = np.linalg.norm((needs[:, None] - space.actions[None]) / scale, axis=2)
    worst = int(np.argmax(gaps.min(axis=1)))
    nearest = space.actions[int(np.argmin(gaps[worst]))]
    return float(abs(needs[worst, 0] - nearest[0])), float(abs(needs[worst, 1] - nearest[1]))


# The training recipe's recovery actions (docs/racing.md, "Training toward the limit"), for a line
# that turns left overall (a counter-clockwise loop): a counter-steer and two slow hard turns that
# brake into the bends. `recovery_actions` mirrors them for a line that turns right overall.
RECOVERY_ACTIONS = ((-15.0, 2.0), (25.0, 1.5), (20.0, 2.2))


def turning_direction(line: Raceline) -> int:
    """+1 when the line turns left overall (its signed curvature integrated along it: a loop
    driven counter-clockwise), -1 when it turns right."""
    ds, curvature = line.timing.ds, line.curvature
    n = min(len(ds), len(curvature))
    return 1 if float(np.sum(curvature[:n] * ds[:n])) >= 0.0 else -1


def recovery_actions(line: Raceline) -> list[tuple[float, float]]:
    """`RECOVERY_ACTIONS` turned the way the line turns overall ((steering degrees, speed m/s))."""
    sign = turning_direction(line)
    return [(sign * steer if steer else 0.0, speed) for steer, speed in RECOVERY_ACTIONS]


def recipe_action_space(line: Raceline, n: int = 10, recovery_min_speed: float = 0.0) -> ActionSpace:
    """The training recipe's discrete space: the line's `n` actions then `recovery_actions(line)`
    (those already among the line's are not repeated, those slower than `recovery_min_speed` m/s
    left out: Bowtie_track's variant drops the (25°, 1.5 m/s) one, docs/racing.md)."""
    base = raceline_action_space(line, n=n)
    pairs = [(float(s), float(v)) for s, v in base.actions]
    extra = [pair for pair in recovery_actions(line) if pair not in pairs and pair[1] >= recovery_min_speed]
    metadata = {
        "action_space_type": "discrete",
        "action_space": [{"steering_angle": s, "speed": v} for s, v in pairs + extra],
    }
    return ActionSpace.from_metadata(metadata, f"the racing recipe's action space of {line.track.name}")


# Room a continuous recipe space leaves beyond the line's needs for corrections: degrees of steering
# away from the way the line turns overall, degrees toward it, m/s below its slowest need.
CORRECTION_MARGIN = (5.0, 8.0, 0.6)


def recipe_continuous_space(line: Raceline) -> ActionSpace:
    """The training recipe's continuous space: the line's needs (`raceline_action_space(continuous=True)`)
    widened by `CORRECTION_MARGIN`, within the car's limits and DeepRacer's speed floor (Bowtie_track:
    -7..12° and 2.8..4 m/s become -12..20° and 2.2..4 m/s)."""
    needs = raceline_action_space(line, continuous=True)
    away, toward, slower = CORRECTION_MARGIN
    low, high = (away, toward) if turning_direction(line) > 0 else (toward, away)
    limit = _steer_limit(line)
    metadata = {
        "action_space_type": "continuous",
        "action_space": {
            "steering_angle": {
                "low": max(-limit, needs.steering_range[0] - low),
                "high": min(limit, needs.steering_range[1] + high),
            },
            "speed": {"low": round(max(SPEED_MIN, needs.speed_range[0] - slower), 2), "high": needs.speed_range[1]},
        },
    }
    return ActionSpace.from_metadata(metadata, f"the racing recipe's continuous space of {line.track.name}")


def _steer_limit(line: Raceline) -> float:
    """Degrees: the car's steering limit (URDF), at most DeepRacer's metadata limit."""
    return min(STEERING_LIMIT_DEG, math.degrees(math.atan(line.limits.max_curvature * line.limits.wheelbase)))


def _clipped_needs(line: Raceline) -> np.ndarray:
    """(N, 2) the line's (steering degrees, speed m/s) within the car's and DeepRacer's limits."""
    needs = line.needs()
    limit = _steer_limit(line)
    needs[:, 0] = np.clip(needs[:, 0], -limit, limit)
    needs[:, 1] = np.clip(needs[:, 1], SPEED_MIN, line.limits.max_speed)
    return needs


# ---- reward files with the line embedded -------------------------------------------------------
# The line and the nearest-point search every raceline reward file embeds (a reward file stands alone).
_RACELINE_CODE = '''RACELINE = [
{points}
]


def _nearest(x, y):
    """Distance (m) from (x, y) to the line, and the index of the line point nearest it."""
    best, index = float("inf"), 0
    for i, (px, py, _) in enumerate(RACELINE):
        d = (px - x) ** 2 + (py - y) ** 2
        if d < best:
            best, index = d, i
    n = len(RACELINE)
    distance = math.sqrt(best)
    for j in ((index - 1) % n, (index + 1) % n):  # the segments either side of the nearest point
        ax, ay, _ = RACELINE[index]
        bx, by, _ = RACELINE[j]
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        if length2 > 0.0:
            t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / length2))
            distance = min(distance, math.hypot(ax + t * dx - x, ay + t * dy - y))
    return distance, index
'''


REWARD_TEMPLATE = '''"""Race on the optimal line of {track}: {what}.

Generated by `deepracer-rl raceline {command} --reward-file FILE
--reward-speed-weight {weight:g}` (docs/racing.md); generate it again rather than edit the list.
The DeepRacer console's reward functions cannot read files, so the line is embedded: RACELINE
holds its points [x m, y m, speed m/s], the minimum-time line of the simulator's car model
{margin:.3f} m from the borders (predicted lap {lap:.2f} s from standstill).

The reward is 1 on the line, falling to 0 half a track width from it (squared){speed_text};
off the track it is 1e-3. On another track, or driven the other way, this line does not fit:
generate one for that track and direction.
"""

import math

SPEED_WEIGHT = {weight!r}  # share of the reward that is speed vs the line's profile (0: distance only)

{raceline_code}

def reward_function(params):
    if params["is_offtrack"]:
        return 1e-3
    distance, index = _nearest(params["x"], params["y"])
    half_width = 0.5 * params["track_width"]
    near = max(0.0, 1.0 - distance / half_width) ** 2
    target = RACELINE[index][2]
    speed = max(0.0, 1.0 - abs(params["speed"] - target) / target)
    reward = near * ((1.0 - SPEED_WEIGHT) + SPEED_WEIGHT * speed)
    return float(max(reward, 1e-3))
'''


PACE_REWARD_TEMPLATE = '''"""Race {track} on its racing line: per step, nearness to the line times speed.

The reward of the training recipe in docs/racing.md ("Training toward the limit"). Generated by
`deepracer-rl raceline {command} --reward-file FILE --reward-pace`; generate it again rather than
edit the list. RACELINE holds the points [x m, y m, speed m/s] of the minimum-time line of the
simulator's car model {margin:.3f} m from the borders (predicted lap {lap:.2f} s from standstill),
for this track and direction only (DeepRacer's reward functions cannot read files).

Per step (0.1 + near) x speed, near = 1 on the line falling (squared) to 0 half a track width
from it; 1e-3 off the track. Unlike a reward of at most 1 per step (where a slower lap with more
steps earns more), this one grows with speed: a lap earns about the same total at any pace but
sooner when faster, so with discounting the policy learns to hurry, and leaving the track (which
ends the episode) forfeits the rest of the lap.
"""

import math

{raceline_code}

def reward_function(params):
    if params["is_offtrack"]:
        return 1e-3
    distance, _ = _nearest(params["x"], params["y"])
    half_width = 0.5 * params["track_width"]
    near = max(0.0, 1.0 - distance / half_width) ** 2
    return float(max((0.1 + near) * params["speed"], 1e-3))
'''


def reward_source(line: Raceline, speed_weight: float = 0.5, pace: bool = False) -> str:
    """A DeepRacer reward file (Python source) with the line embedded: distance to it, and speed vs
    its profile; with `pace`, the training recipe's reward instead ((0.1 + nearness) x speed, no
    speed weight)."""
    if not (math.isfinite(speed_weight) and 0.0 <= speed_weight <= 1.0):
        raise ValueError(f"the speed weight must be within 0..1, got {speed_weight}")
    reverse = line.track.name.endswith(" (reversed)")
    name = line.track.name.removesuffix(" (reversed)")
    command = name + (" --reverse" if reverse else "")
    speed = np.maximum(line.speed, SPEED_MIN)
    points = "\n".join(f"    [{x:.3f}, {y:.3f}, {v:.2f}]," for (x, y), v in zip(line.points, speed))
    raceline_code = _RACELINE_CODE.format(points=points)
    if pace:
        return PACE_REWARD_TEMPLATE.format(
            track=line.track.name,
            command=command,
            margin=line.margin,
            lap=line.predicted_lap_s,
            raceline_code=raceline_code,
        )
    return REWARD_TEMPLATE.format(
        track=line.track.name,
        what="near the racing line" + (" at the line's speed" if speed_weight > 0 else ""),
        command=command,
        margin=line.margin,
        lap=line.predicted_lap_s,
        speed_text=(
            ",\ntimes (1 - SPEED_WEIGHT) + SPEED_WEIGHT x how close the speed is to the line's there (1 at its\n"
            "speed, 0 at standstill or twice its speed)"
            if speed_weight > 0
            else ""
        ),
        weight=float(speed_weight),
        raceline_code=raceline_code,
    )


def write_reward_file(line: Raceline, path: str | os.PathLike, speed_weight: float = 0.5, pace: bool = False) -> Path:
    """Write `reward_source(line, speed_weight, pace)` to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reward_source(line, speed_weight, pace), encoding="utf-8")
    return path


# ---- how a reward scores along the racing line and along the centre line ----------------------
def params_along(track: Track, points: np.ndarray, speed: np.ndarray, steering_deg: np.ndarray) -> list[dict]:
    """DeepRacer params of a car driving a loop or route through `points` (m) at `speed` (m/s), one
    per control period (the car's 15 Hz) for one lap, all wheels on the track."""
    from .car import CarSpec

    closed = track.closed
    line = np.vstack([points, points[:1]]) if closed else points
    v = np.append(speed, speed[:1]) if closed else speed.copy()
    steer = np.append(steering_deg, steering_deg[:1]) if closed else steering_deg
    ds = np.linalg.norm(np.diff(line, axis=0), axis=1)
    mean = np.maximum(0.5 * (v[:-1] + v[1:]), 1e-3)
    times = np.concatenate([[0.0], np.cumsum(ds / mean)])
    dt = 1.0 / CarSpec.from_urdf().control_hz
    t = np.arange(1, int(times[-1] / dt) + 1) * dt
    x, y = np.interp(t, times, line[:, 0]), np.interp(t, times, line[:, 1])
    heading = np.unwrap(np.arctan2(np.diff(line[:, 1]), np.diff(line[:, 0])))
    yaw = np.interp(t, times[:-1] + 0.5 * np.diff(times), heading)
    n = len(t)
    return build_params_batch(
        track,
        x=x,
        y=y,
        yaw=yaw,
        speed=np.interp(t, times, v),
        steering_angle=np.interp(t, times, steer),
        steps=np.arange(1, n + 1),
        progress=np.minimum(100.0, 100.0 * track.project(np.column_stack([x, y])).arc_length / track.length),
        all_wheels_on_track=np.ones(n, dtype=bool),
        is_offtrack=np.zeros(n, dtype=bool),
        is_reversed=track.name.endswith(" (reversed)"),
        sim_time=t,
    )


def score_along_lines(function: Any, line: Raceline) -> dict[str, dict[str, float]]:
    """The reward `function` along the racing line and along the centre line, each driven at its own
    speed profile for one lap (15 Hz steps): steps, mean reward per step, reward per lap."""
    centre = line.centerline
    steer_centre = line.limits.steering_deg(centre.curvature)
    cases = {
        "raceline": (line.points, line.speed, line.limits.steering_deg(line.curvature), line.timing),
        "centerline": (centre.points, centre.speed, steer_centre, centre),
    }
    out = {}
    for name, (points, speed, steer, timing) in cases.items():
        params = params_along(line.track, points, speed, steer)
        rewards = np.array([function(p) for p in params], dtype=np.float64)
        lap = timing.flying_lap_s if timing.flying_lap_s is not None else timing.lap_s
        out[name] = {
            "lap_s": round(float(lap), 3),
            "steps": int(len(rewards)),
            "mean_reward": float(rewards.mean()) if len(rewards) else 0.0,
            "lap_reward": float(rewards.sum()),
        }
    return out


# ---- what a shipped model's training took ------------------------------------------------------
TRAINING_RECORD = "training.json"  # beside an export's model.onnx: `training_record` of its run


def training_record(run: str | os.PathLike) -> dict[str, Any]:
    """What a run's records (config.json, progress.csv, evaluations.csv) say its training took:
    steps and wall minutes in all, and the evaluation lap its best model was kept for (the
    best-model rule `rundir.is_better` over the evaluation rows), with the minutes trained by then
    (the first rollout that ended at or after that step)."""
    run_dir = RunDir(run).require()
    config = run_dir.load_config()
    progress = _csv_rows(run_dir.progress_csv)
    if not progress:
        raise ValueError(f"{run_dir.path}: no {run_dir.progress_csv.name} (has it trained?)")
    best: list | None = None
    best_row: dict[str, str] | None = None
    laps = []
    mean = config.selects_by_mean_lap  # the rule of a one-track run (`train.ranked_for_selection`)
    for row in _csv_rows(run_dir.evaluations_csv):
        times = [float(t) for t in row["lap_times_s"].split()]
        lap = (round(float(np.mean(times)), 3) if mean else min(times)) if times else None
        laps.append([int(row["timesteps"]), lap])
        if is_better([float(row["mean_progress"]), lap], best):
            best, best_row = [float(row["mean_progress"]), lap], row
    record: dict[str, Any] = {
        "run": run_dir.path.name,
        "track": config.track,
        "seed": config.seed,
        "timesteps": int(progress[-1]["timesteps"]),
        "minutes": round(float(progress[-1]["wall_s"]) / 60.0, 2),
        "best": None,
        "evaluation_laps": laps,
    }
    if best_row is not None:
        steps = int(best_row["timesteps"])
        wall = next(
            (float(r["wall_s"]) for r in progress if int(r["timesteps"]) >= steps), float(progress[-1]["wall_s"])
        )
        record["best"] = {"timesteps": steps, "lap_s": best[1], "progress": best[0], "minutes": round(wall / 60.0, 2)}
    return record


def write_training_record(run: str | os.PathLike, model_dir: str | os.PathLike | None = None) -> Path:
    """Write `training_record(run)` as `TRAINING_RECORD` into an export dir (default:
    models/racing_<the run's track> under the current directory)."""
    record = training_record(run)
    out = Path(model_dir) if model_dir is not None else Path("models") / f"racing_{record['track']}"
    if not (out / "model.onnx").exists():
        raise FileNotFoundError(f"{out}: no model.onnx (export the run there first)")
    path = out / TRAINING_RECORD
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def read_training_record(model_dir: str | os.PathLike) -> dict[str, Any]:
    """An export dir's `TRAINING_RECORD`, {} when it has none."""
    path = Path(model_dir) / TRAINING_RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
