"""A run's logs in DeepRacer's formats, so deepracer-utils (`DeepRacerLog(RUN)`) reads a run as it
reads the model folder of a local DeepRacer training; and rescoring a run with another reward.

- `TrainingSimtrace`: `training-simtrace/<N>-iteration.csv`, one file per iteration (policy
  update). A car's episode is kept until it ends, then appended whole, after its `prepare`
  row, to the file of the iteration it started in. `tstamp` is the car's simulation clock (s).
- `MetricsLog`: `metrics/TrainingMetrics.json`, DeepRacer's per-episode JSON (training and
  evaluation episodes: reward, completion, status, sim time).
- `write_deepracer_files`: `model/model_metadata.json` and `ip/hyperparameters.json`.

A resumed run continues all of them from its checkpoint: rows written after the checkpoint
(by a run that was killed) are cut (`restore_training_logs`), episode ids and iteration
numbers go on from the checkpoint's.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .action_space import ActionSpace
from .config import TrainConfig
from .evaluate import LapReport
from .reward_process import RewardIsolation, make_reward
from .rundir import RunDir, RunError, write_atomic
from .simtrace import PREPARE, SimtraceWriter, prepare_row, simtrace_row


@dataclass
class FinishedEpisode:
    """A training episode as the metrics log keeps it (times in s of the car's sim clock)."""

    episode: int
    iteration: int
    reward: float
    progress: float
    status: str
    start_s: float
    end_s: float


class TrainingSimtrace:
    """Writes the training simtrace of `n_cars` cars into `run` (see the module docstring)."""

    def __init__(self, run: RunDir, n_cars: int, clock_s: float = 0.0):
        self.run = run
        self.rows: list[list[dict[str, Any]]] = [[] for _ in range(n_cars)]
        self.iteration_of = [0] * n_cars  # the iteration each car's open episode started in
        self.clock = [float(clock_s)] * n_cars  # each car's sim clock at its episode's start (s)
        self.skipping = [False] * n_cars  # an episode whose start was not seen is not logged

    def step(
        self, car: int, episode: int, iteration: int, info: dict[str, Any], action: Any, reward: float, done: bool
    ) -> FinishedEpisode | None:
        """Log one step of `car` (its info from the env); returns the episode when this step ended it."""
        params = info["params"]
        rows = self.rows[car]
        now = time.time()
        if not rows and not self.skipping[car]:
            start = info.get("start_params")
            if start is None:  # joined mid-episode: log from its next episode on
                self.skipping[car] = True
            else:
                self.iteration_of[car] = iteration
                rows.append(prepare_row(episode, start, params, action, self.clock[car], now))
        tstamp = self.clock[car] + float(params["sim_time"])
        if not self.skipping[car]:
            rows.append(simtrace_row(episode, params, action, reward, done, info["episode_status"], tstamp, 0.0, now))
        if not done:
            return None
        self.clock[car] = tstamp
        self.rows[car] = []
        if self.skipping[car]:
            self.skipping[car] = False
            return None
        with SimtraceWriter(self.run.training_simtrace(self.iteration_of[car])) as writer:
            writer.write_rows(rows)
        return FinishedEpisode(
            episode=episode,
            iteration=self.iteration_of[car],
            reward=sum(r["reward"] for r in rows),
            progress=float(params["progress"]),
            status=info["episode_status"],
            start_s=float(rows[0]["tstamp"]),
            end_s=tstamp,
        )

    def abandon(self, car: int) -> None:
        """Forget `car`'s open episode (its Ray worker died: the episode's rows are not written)."""
        self.rows[car] = []
        self.skipping[car] = False

    def checkpoint(self, iteration: int) -> dict[str, Any]:
        """What `restore_training_logs` needs to cut the simtrace back to now: the sizes of the
        files an episode may still be appended to (those from the oldest open episode's iteration on)."""
        open_iterations = [it for it, rows in zip(self.iteration_of, self.rows) if rows]
        first = min([*open_iterations, iteration])
        sizes = {
            str(it): path.stat().st_size
            for it, path in self.run.training_simtraces(include_legacy=False)
            if it >= first
        }
        return {"from_iteration": first, "sizes": sizes}


def restore_training_logs(run: RunDir, state: dict[str, Any]) -> None:
    """Cut the training simtrace back to the checkpoint `state` (state.json) was saved with:
    a run killed after its checkpoint wrote rows its resumption writes again."""
    saved = state.get("simtrace")
    if not saved:
        return
    try:
        first, sizes = int(saved["from_iteration"]), {int(k): int(v) for k, v in saved["sizes"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise RunError(f"{run.state_path}: malformed 'simtrace' entry {saved!r}") from None
    for iteration, path in run.training_simtraces(include_legacy=False):
        if iteration < first:
            continue
        if iteration not in sizes:
            path.unlink()
        elif path.stat().st_size > sizes[iteration]:
            with open(path, "r+b") as handle:
                handle.truncate(sizes[iteration])


# ---- metrics/TrainingMetrics.json --------------------------------------------------------------
STATUS_LABELS = {  # DeepRacer's metrics name episode statuses so
    "lap_complete": "Lap complete",
    "off_track": "Off track",
    "crashed": "Crashed",
    "reversed": "Reversed",
    "immobilized": "Immobilized",
    "time_up": "Time up",
    "in_progress": "In progress",
}


class MetricsLog:
    """DeepRacer's TrainingMetrics JSON: {"metrics": [one entry per episode]}.

    An entry has DeepRacer's keys (`episode` 1-based, `trial` 1-based within its iteration,
    `phase` training/evaluation, `reward_score`, `completion_percentage`, `episode_status`,
    `elapsed_time_in_milliseconds`, `start_time`/`metric_time` in ms of the sim clock) and
    `iteration`, the policy update it started in (deepracer-utils derives its own from
    episode and trial, assuming a fixed number of episodes per iteration, which PPO's
    fixed-step rollouts do not have).
    """

    def __init__(self, entries: list[dict[str, Any]] | None = None):
        self.entries = list(entries or [])
        self.trials = Counter(e["iteration"] for e in self.entries if e.get("phase") == "training")

    @classmethod
    def load(cls, path: Path, next_episode: int | None = None) -> MetricsLog:
        """The log at `path` ({} when absent), without training episodes from `next_episode` on."""
        if not path.exists():
            return cls()
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))["metrics"]
            if next_episode is not None:
                entries = [e for e in entries if e["phase"] != "training" or e["episode"] <= next_episode]
            return cls(entries)
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise RunError(f"{path}: not DeepRacer's metrics JSON ({exc!r})") from None

    def add_training(self, finished: FinishedEpisode) -> None:
        self.trials[finished.iteration] += 1
        self.entries.append(
            _entry(
                episode=finished.episode + 1,
                trial=self.trials[finished.iteration],
                phase="training",
                reward=finished.reward,
                progress=finished.progress,
                status=finished.status,
                start_s=finished.start_s,
                end_s=finished.end_s,
                iteration=finished.iteration,
            )
        )

    def add_evaluation(self, report: LapReport, episodes: int, iteration: int) -> None:
        """One entry per evaluation lap, after `episodes` training episodes (times from the last entry on)."""
        clock = max((e["metric_time"] for e in self.entries), default=0) / 1000.0
        for reward, done, status, duration in zip(report.rewards, report.progress, report.statuses, report.seconds):
            self.entries.append(
                _entry(max(1, episodes), 1, "evaluation", reward, done, status, clock, clock + duration, iteration)
            )
            clock += duration

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps({"metrics": self.entries}) + "\n")


def _entry(
    episode: int,
    trial: int,
    phase: str,
    reward: float,
    progress: float,
    status: str,
    start_s: float,
    end_s: float,
    iteration: int,
) -> dict[str, Any]:
    return {
        "reward_score": int(round(reward)),
        "metric_time": int(round(end_s * 1000)),
        "start_time": int(round(start_s * 1000)),
        "elapsed_time_in_milliseconds": int(round((end_s - start_s) * 1000)),
        "episode": int(episode),
        "trial": int(trial),
        "phase": phase,
        "completion_percentage": int(progress),
        "episode_status": STATUS_LABELS.get(status, status),
        "iteration": int(iteration),
    }


# ---- model/ and ip/ ----------------------------------------------------------------------------
def deepracer_hyperparameters(config: TrainConfig, actions: ActionSpace) -> dict[str, Any]:
    """The run's hyperparameters under the names of DeepRacer's hyperparameters.json.

    DeepRacer's knobs that have no counterpart here (e_greedy_value, epsilon_steps,
    term_cond_*; exploration_type of a continuous space) are left out rather than invented.
    `num_episodes_between_training` is the episodes a rollout is sized for
    (`--episodes-between-updates`): PPO updates every `rollout_steps` steps per car, not
    after a fixed number of episodes.
    """
    values: dict[str, Any] = {
        "batch_size": config.batch_size,
        "beta_entropy": config.entropy,
        "discount_factor": config.discount,
        "loss_type": "mean squared error",  # SB3's value (PPO) and critic (SAC) losses
        "lr": config.learning_rate,
        "num_episodes_between_training": config.episodes_between_updates,
        "num_epochs": config.epochs,
        "stack_size": config.frame_stack,
    }
    if actions.kind == "discrete":  # the policy samples its categorical distribution, as DeepRacer's
        values["exploration_type"] = "categorical"
    return dict(sorted(values.items()))


def write_deepracer_files(run: RunDir, config: TrainConfig) -> None:
    """model/model_metadata.json (a copy of the run's) and ip/hyperparameters.json."""
    run.deepracer_metadata_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run.metadata_path, run.deepracer_metadata_path)
    values = deepracer_hyperparameters(config, ActionSpace.load(run.metadata_path))
    write_atomic(run.hyperparameters_path, json.dumps(values, indent=2) + "\n")


# ---- reading and rescoring ---------------------------------------------------------------------
def read_simtrace(paths: list[Path] | Path) -> Iterator[dict[str, str]]:
    """The rows of simtrace files, in order (`prepare` rows included)."""
    for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        with open(path, newline="", encoding="utf-8") as handle:
            yield from csv.DictReader(handle)


def rescore_run(
    run: str | os.PathLike,
    reward_file: str | os.PathLike,
    out: str | os.PathLike | None = None,
    isolation: RewardIsolation | None = RewardIsolation(),
) -> dict:
    """Recompute a run's training rewards with another reward function, step by step
    (in a child process with `isolation`'s limits; None: in this process).

    Params are rebuilt from each simtrace row (pose, action, progress, wheels, status), as
    deepracer-utils does; the result CSV has the old and the new reward of every step
    (`prepare` rows are no steps: they are skipped).
    """
    from .car import CarSpec
    from .run_tracks import track_path
    from .track import Track

    run_dir = RunDir(run).require()
    files = [path for _, path in run_dir.training_simtraces()]
    if not files:
        raise FileNotFoundError(f"{run_dir.training_simtrace_dir}: no simtrace to rescore")
    config = run_dir.load_config()
    if config.tracks:
        raise ValueError(
            f"{run_dir.path}: a multi-track run ({len(config.tracks)} tracks); its simtrace does not say which "
            "track each step was on, so its params cannot be rebuilt for rescoring"
        )
    track = Track.load(track_path(config.track, run_dir))
    control_hz = CarSpec.from_urdf().control_hz
    out_path = Path(out) if out else run_dir.path / f"rescore-{Path(reward_file).stem}.csv"
    function = make_reward(reward_file, isolation)
    try:
        return _rescore(files, track, control_hz, function, out_path)
    finally:
        function.close()


def _rescore(files: list[Path], track: Any, control_hz: float, function: Any, out_path: Path) -> dict:
    import numpy as np

    from .reward import build_params

    old_totals: dict[str, float] = {}
    new_totals: dict[str, float] = {}
    rows = 0
    with open(out_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["episode", "steps", "old_reward", "new_reward"])
        for row in read_simtrace(files):
            if row["episode_status"] == PREPARE:
                continue
            params = build_params(
                track,
                x=float(row["X"]),
                y=float(row["Y"]),
                yaw=np.radians(float(row["yaw"])),
                speed=float(row["throttle"]),
                steering_angle=float(row["steer"]),
                steps=int(row["steps"]),
                progress=float(row["progress"]),
                all_wheels_on_track=row["all_wheels_on_track"] == "True",
                is_offtrack=row["episode_status"] == "off_track",
                is_reversed=False,
                sim_time=float(row["steps"]) / control_hz,
            )
            new = function(params)
            episode = row["episode"]
            old_totals[episode] = old_totals.get(episode, 0.0) + float(row["reward"])
            new_totals[episode] = new_totals.get(episode, 0.0) + new
            writer.writerow([episode, row["steps"], row["reward"], round(new, 6)])
            rows += 1
    episodes = max(1, len(old_totals))
    return {
        "rows": rows,
        "episodes": len(old_totals),
        "old_mean": sum(old_totals.values()) / episodes,
        "new_mean": sum(new_totals.values()) / episodes,
        "out": str(out_path),
    }
