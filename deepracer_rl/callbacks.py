"""Training as composition: small stable-baselines3 callbacks around one shared `TrainingProgress`.

`run_callbacks` puts them in a `CallbackList`, in this order (each reads what the earlier
ones of the same step wrote):

1. `SimtraceCallback`      every step of every car into DeepRacer's training simtrace; episode metrics
2. `EpisodeStatsCallback`  episodes, per-update figures (progress.csv, TensorBoard)
3. `EvaluationCallback`    evaluation laps every `eval_every` steps; keeps best_model.zip
4. `CheckpointCallback`    latest.zip + state.json every `checkpoint_every` steps
5. `ProgressBarCallback`   the tqdm bar: steps/s, episodes, mean progress, best lap
6. `StopCallback`          time budget, Ctrl-C (a flag set by the SIGINT handler), lapping
7. `CameraSnapshotCallback` (opt-in: `--camera-snapshot SECONDS`) car 0's camera as RUN/camera/latest.jpg
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from .algorithms import original_rewards, reward_scale_state
from .car import CarSpec
from .config import TrainConfig
from .episode import EpisodeStatus
from .evaluate import LapReport
from .logs import MetricsLog, TrainingSimtrace
from .rundir import RunDir, is_better, save_model_atomic, write_bytes_atomic


@dataclass
class TrainingProgress:
    """What the callbacks share, and what a checkpoint's state.json keeps of it."""

    timesteps: int = 0
    episodes: int = 0
    iteration: int = 0
    best: list | None = None  # [mean progress %, best lap s or None] of the best evaluation
    best_laps: int | None = None  # laps that evaluation drove (None: a checkpoint from before it was kept)
    lapping: bool = False  # the last evaluation completed every lap
    stop_requested: bool = False  # Ctrl-C
    recent_progress: list[float] = field(default_factory=list)  # of the last 100 episodes
    episode_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # per car
    started: float = field(default_factory=time.time)
    metrics: MetricsLog = field(default_factory=MetricsLog)  # metrics/TrainingMetrics.json

    @classmethod
    def from_state(cls, state: dict[str, Any], n_cars: int) -> TrainingProgress:
        progress = cls(
            timesteps=int(state.get("timesteps", 0)),
            episodes=int(state.get("episodes", 0)),
            iteration=int(state.get("iteration", 0)),
            best=state.get("best"),
            best_laps=state.get("best_laps"),
        )
        # Episode ids go on after every id the checkpointed run handed out (open episodes included).
        first_id = int(state.get("next_episode", progress.episodes))
        progress.episode_ids = np.arange(n_cars, dtype=np.int64) + first_id
        return progress

    def state(self, timesteps: int) -> dict[str, Any]:
        next_episode = int(self.episode_ids.max()) + 1 if len(self.episode_ids) else self.episodes
        return {
            "timesteps": int(timesteps),
            "episodes": self.episodes,
            "iteration": self.iteration,
            "best": self.best,
            "best_laps": self.best_laps,
            "next_episode": next_episode,
        }

    def consider(self, report: LapReport, run: RunDir, say: Callable[[str], None] | None = None) -> bool:
        """Whether `report` is the best evaluation so far (`rundir.is_better`); when it is, it
        becomes the record and the caller saves its model as best_model.zip. An evaluation of
        another number of laps (a resume with a new --eval-laps) is not comparable with the record:
        the record starts again from it, and the old best model is kept as best_model.previous.zip."""
        if self.best is not None and self.best_laps is not None and report.laps != self.best_laps:
            if run.best_model.exists():
                os.replace(run.best_model, run.previous_best_model)
            if say is not None:
                say(
                    f"the evaluation now drives {report.laps} laps, the best model was chosen on {self.best_laps}: "
                    f"the best-model record starts again (the previous best model is {run.previous_best_model})"
                )
            self.best = None
        if not is_better(report.selection_key, self.best):
            return False
        self.best, self.best_laps = report.selection_key, report.laps
        return True

    def best_text(self) -> str:
        if not self.best:
            return "-"
        progress, lap = self.best
        return f"{lap:.2f}s" if lap is not None else f"{progress:.0f}%"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _RunCallback(BaseCallback):
    def __init__(self, progress: TrainingProgress):
        super().__init__()
        self.progress = progress


class SimtraceCallback(_RunCallback):
    """Every step of every car into the run's training simtrace (`logs.TrainingSimtrace`: an
    episode is written whole when it ends); each finished episode into the metrics log."""

    def __init__(self, progress: TrainingProgress, run: RunDir, n_cars: int, clock_s: float = 0.0):
        super().__init__(progress)
        self.log = TrainingSimtrace(run, n_cars, clock_s)

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        rewards = original_rewards(self.training_env, self.locals["rewards"])
        actions = self.locals.get("actions")
        p = self.progress
        for i, info in enumerate(infos):
            if not info.get("params"):
                continue
            action = actions[i] if actions is not None else ""
            action = int(action) if np.ndim(action) == 0 else [round(float(a), 4) for a in action]
            episode = int(p.episode_ids[i])
            finished = self.log.step(i, episode, p.iteration, info, action, float(rewards[i]), bool(dones[i]))
            if finished is not None:
                p.metrics.add_training(finished)
        return True


class EpisodeStatsCallback(_RunCallback):
    """Counts episodes; per policy update writes mean reward, progress and completion (progress.csv, TensorBoard)."""

    def __init__(self, progress: TrainingProgress, run: RunDir, n_cars: int):
        super().__init__(progress)
        self.run = run
        self.episode_reward = np.zeros(n_cars)
        self.rewards: list[float] = []
        self.progresses: list[float] = []
        self.completed: list[bool] = []
        self.lap_times: list[float] = []  # s of sim time of the laps completed in this rollout
        self.per_track: dict[str, list[tuple[float, bool]]] = {}  # multi-track: (progress, lap) per episode

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        rewards = original_rewards(self.training_env, self.locals["rewards"])
        self.episode_reward += rewards
        p = self.progress
        for i in np.flatnonzero(dones):
            info = infos[i]
            p.episodes += 1
            self.rewards.append(float(self.episode_reward[i]))
            self.progresses.append(float(info["progress"]))
            self.completed.append(info["episode_status"] == EpisodeStatus.LAP_COMPLETE.value)
            if self.completed[-1] and "sim_time" in info:
                self.lap_times.append(float(info["sim_time"]))
            if "track" in info:
                self.per_track.setdefault(info["track"], []).append((self.progresses[-1], self.completed[-1]))
            p.recent_progress = [*p.recent_progress, float(info["progress"])][-100:]
            self.episode_reward[i] = 0.0
            p.episode_ids[i] = p.episode_ids.max() + 1  # ids are handed out in order, never twice
        return True

    def _on_rollout_end(self) -> None:
        self.progress.iteration += 1
        if not self.rewards:
            return
        row = {
            "iteration": self.progress.iteration,
            "timesteps": self.num_timesteps,
            "episodes": self.progress.episodes,
            "mean_reward": float(np.mean(self.rewards)),
            "mean_progress": float(np.mean(self.progresses)),
            "completion_rate": float(np.mean(self.completed)),
            "wall_s": round(time.time() - self.progress.started, 2),
        }
        self.run.append_csv(self.run.progress_csv, row)
        self.logger.record("deepracer/mean_progress", row["mean_progress"])
        self.logger.record("deepracer/completion_rate", row["completion_rate"])
        self.logger.record("deepracer/episode_reward", row["mean_reward"])
        if self.lap_times:
            self.logger.record("deepracer/lap_time_s", float(np.mean(self.lap_times)))
            self.logger.record("deepracer/best_lap_time_s", float(np.min(self.lap_times)))
        entropy = self._policy_entropy()
        if entropy is not None:
            self.logger.record("deepracer/entropy", entropy)
        for track, episodes in sorted(self.per_track.items()):
            progresses, completed = zip(*episodes)
            self.run.append_csv(
                self.run.progress_tracks_csv,
                {
                    "iteration": self.progress.iteration,
                    "timesteps": self.num_timesteps,
                    "track": track,
                    "episodes": len(episodes),
                    "mean_progress": float(np.mean(progresses)),
                    "completion_rate": float(np.mean(completed)),
                },
            )
        self.rewards, self.progresses, self.completed, self.lap_times = [], [], [], []
        self.per_track = {}

    def _policy_entropy(self, samples: int = 256) -> float | None:
        """Mean entropy (nats) of the policy's action distribution over up to `samples` observations
        of the rollout just collected, as the DeepRacer console plots it (on-policy algorithms only)."""
        buffer = getattr(self.model, "rollout_buffer", None)
        policy = getattr(self.model, "policy", None)
        if buffer is None or policy is None or not hasattr(policy, "get_distribution"):
            return None
        import torch

        def flat(values: np.ndarray) -> np.ndarray:
            values = np.asarray(values)
            values = values.reshape(-1, *values.shape[2:])
            return values[:: max(1, len(values) // samples)]

        stored = buffer.observations  # a dict of arrays by input name with several sensors
        chosen: Any = {k: flat(v) for k, v in stored.items()} if isinstance(stored, dict) else flat(stored)
        with torch.no_grad():
            tensor, _ = policy.obs_to_tensor(chosen)
            return float(policy.get_distribution(tensor).entropy().mean())


class EvaluationCallback(_RunCallback):
    """Evaluation laps every `every` steps; the best model by `rundir.is_better` is saved as best_model.zip."""

    def __init__(
        self, progress: TrainingProgress, run: RunDir, every: int, evaluate: Callable[[Any], LapReport], start: int
    ):
        super().__init__(progress)
        self.run = run
        self.every = every
        self.evaluate_model = evaluate
        self.next_at = start + every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_at:
            self.next_at += self.every
            self.evaluate_now()
        return True

    def evaluate_now(self) -> LapReport:
        report = self.evaluate_model(self.model)
        row = {"timesteps": self.num_timesteps, **report.as_dict()}
        row["lap_times_s"] = " ".join(str(t) for t in row["lap_times_s"])
        row["statuses"] = " ".join(row["statuses"])
        self.run.append_csv(self.run.evaluations_csv, row)
        self.progress.metrics.add_evaluation(report, self.progress.episodes, self.progress.iteration)
        if self.progress.consider(report, self.run, say=_say):
            save_model_atomic(self.model, self.run.best_model)
        self.progress.lapping = report.completed_laps == report.laps
        self.logger.record("deepracer/eval_progress", report.mean_progress)
        self.logger.record("deepracer/eval_completion", report.completed_laps / max(1, report.laps))
        if report.best_lap_s is not None:
            self.logger.record("deepracer/eval_best_lap_time_s", report.best_lap_s)
        return report


class CheckpointCallback(_RunCallback):
    """latest.zip and state.json every `every` steps (and on demand: `save`)."""

    def __init__(
        self, progress: TrainingProgress, run: RunDir, every: int, start: int, simtrace: SimtraceCallback | None
    ):
        super().__init__(progress)
        self.run = run
        self.every = every
        self.next_at = start + every
        self.simtrace = simtrace

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_at:
            self.next_at += self.every
            self.save()
        return True

    def save(self, model: Any = None) -> None:
        """Checkpoint `model` (default: the model being trained): the model, the metrics log, then
        state.json (last: what a resumed run continues from, including where the simtrace ends)."""
        model = self.model if model is None else model
        save_model_atomic(model, self.run.checkpoint)
        state = self.progress.state(model.num_timesteps)
        scale = reward_scale_state(model)
        if scale is not None:
            state["reward_scale"] = scale
        if self.simtrace is not None:
            state["simtrace"] = self.simtrace.log.checkpoint(self.progress.iteration)
        self.progress.metrics.save(self.run.training_metrics_path)
        self.run.save_state(state)


class ProgressBarCallback(_RunCallback):
    """A tqdm bar on stderr: steps, steps/s, episodes, mean progress of the last 100 episodes, best lap.

    When stderr is not a terminal (a log file, CI, `ros2 launch`), a plain line every
    `LOG_INTERVAL` seconds instead of a redraw many times a second.
    """

    LOG_INTERVAL = 30.0  # s between progress lines in a log

    def __init__(self, progress: TrainingProgress, total: int, start: int, n_cars: int):
        super().__init__(progress)
        self.total, self.start, self.n_cars = total, start, n_cars
        self.bar = None

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        terminal = sys.stderr.isatty()
        self.bar = tqdm(
            total=self.total,
            initial=self.start,
            unit="step",
            dynamic_ncols=terminal,
            file=sys.stderr,
            smoothing=0.05,
            mininterval=0.1 if terminal else self.LOG_INTERVAL,
            ascii=not terminal,
        )

    def _on_step(self) -> bool:
        steps = self.num_timesteps
        self.bar.update(steps - self.bar.n)
        if steps % (self.n_cars * 32) < self.n_cars:
            p = self.progress
            mean = np.mean(p.recent_progress) if p.recent_progress else 0.0
            self.bar.set_postfix(episodes=p.episodes, progress=f"{mean:.1f}%", best=p.best_text(), refresh=False)
        return True

    def say(self, text: str) -> None:
        (self.bar.write if self.bar is not None else print)(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _on_training_end(self) -> None:
        self.close()


class StopCallback(_RunCallback):
    """Stops training (False from `_on_step`) on the time budget, a Ctrl-C, or lapping when asked."""

    def __init__(self, progress: TrainingProgress, config: TrainConfig, say: Callable[[str], None]):
        super().__init__(progress)
        self.config = config
        self.say = say

    def _on_step(self) -> bool:
        p, config, steps = self.progress, self.config, self.num_timesteps
        reason = None
        if config.max_minutes is not None and time.time() - p.started > config.max_minutes * 60:
            reason = f"time budget of {config.max_minutes:g} min reached at {steps} steps"
        elif p.stop_requested:
            reason = f"Ctrl-C: stopping at {steps} steps with a checkpoint"
        elif config.stop_when_lapping and p.lapping:
            reason = f"evaluation completed every lap at {steps} steps: stopping early"
        if reason is None:
            return True
        self.say(reason)
        return False


class CameraSnapshotCallback(_RunCallback):
    """Car 0's camera image as the policy sees it (its newest frame) into `RunDir.camera_snapshot`, a
    JPEG rewritten atomically at most every `every_s` seconds of wall time: what the console shows live."""

    def __init__(self, progress: TrainingProgress, run: RunDir, every_s: float, grayscale: bool):
        super().__init__(progress)
        self.run = run
        self.every_s = every_s
        self.grayscale = grayscale
        self.last = -np.inf

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return True
        self.last = now
        image = camera_image(self.locals.get("new_obs"), self.grayscale)
        if image is not None:
            import cv2

            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if ok:
                write_bytes_atomic(self.run.camera_snapshot, data.tobytes())
        return True


def camera_image(observations: Any, grayscale: bool) -> np.ndarray | None:
    """Car 0's newest camera frame (H x W gray, or H x W x 3 BGR for OpenCV) from a batch of
    observations (channels first, stacked frames oldest first: 1 channel per frame when `grayscale`,
    else 3), or None when there is no image."""
    if isinstance(observations, dict):
        observations = next((v for v in observations.values() if np.ndim(v) == 4), None)
    if observations is None or np.ndim(observations) != 4:
        return None
    frame = np.asarray(observations[0])
    if grayscale or frame.shape[0] < 3:
        return np.ascontiguousarray(frame[-1], dtype=np.uint8)
    return np.ascontiguousarray(np.moveaxis(frame[-3:], 0, -1)[..., ::-1], dtype=np.uint8)


@dataclass
class RunCallbacks:
    """The callbacks of a run, by role, and the CallbackList SB3 runs."""

    progress: TrainingProgress
    simtrace: SimtraceCallback | None
    checkpoint: CheckpointCallback
    bar: ProgressBarCallback
    callbacks: CallbackList
    stats: EpisodeStatsCallback | None = None

    def abandon(self, cars: np.ndarray) -> None:
        """The open episodes of `cars` are lost (their Ray worker died): not logged, not counted;
        the cars go on with new episode ids."""
        p = self.progress
        for car in cars:
            if self.simtrace is not None:
                self.simtrace.log.abandon(int(car))
            if self.stats is not None:
                self.stats.episode_reward[car] = 0.0
            p.episode_ids[car] = p.episode_ids.max() + 1


def run_callbacks(
    config: TrainConfig, run: RunDir, progress: TrainingProgress, evaluate: Callable[[Any], LapReport]
) -> RunCallbacks:
    """The callbacks of a training run (see the module docstring for what each does, in order)."""
    start, cars = progress.timesteps, config.total_cars
    simtrace = None
    if config.simtrace:  # the cars' sim clocks go on from the checkpoint's (all cars tick together)
        clock_s = start / cars / CarSpec.from_urdf().control_hz
        simtrace = SimtraceCallback(progress, run, cars, clock_s)
    stats = EpisodeStatsCallback(progress, run, cars)
    evaluation = EvaluationCallback(progress, run, config.eval_every, evaluate, start)
    checkpoint = CheckpointCallback(progress, run, config.checkpoint_every, start, simtrace)
    bar = ProgressBarCallback(progress, config.steps, start, cars)
    stop = StopCallback(progress, config, bar.say)
    camera = None
    if config.camera_snapshot:
        camera = CameraSnapshotCallback(progress, run, config.camera_snapshot, config.grayscale)
    chain = [c for c in (simtrace, stats, evaluation, checkpoint, bar, stop, camera) if c is not None]
    return RunCallbacks(progress, simtrace, checkpoint, bar, CallbackList(chain), stats)
