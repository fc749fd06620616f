"""`deepracer-rl train`: PPO or SAC on camera frames, with DeepRacer-style files and logs.

A run directory holds everything needed to understand, resume and judge a run:
config.json, a copy of the reward function and model_metadata.json, checkpoints written
atomically (write then rename), TensorBoard logs, per-iteration figures (progress.csv),
evaluation laps (evaluations.csv, best_model.zip) and simtrace CSVs in DeepRacer's layout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .action_space import ActionSpace
from .env import ObservationSpec, RaceCore
from .episode import EpisodeStatus
from .evaluate import LapReport, policy_driver, run_laps
from .logs import SimtraceWriter, simtrace_row
from .reward import RewardFunction, RewardFunctionError
from .sim import StartRules

CHECKPOINT = "checkpoints/latest.zip"
STATE = "checkpoints/state.json"
BEST = "best_model.zip"


class TrainingError(RuntimeError):
    """Training cannot start or had to stop; the message says why and what was kept."""


@dataclass
class TrainConfig:
    """Everything that defines a run (saved as config.json in the run directory)."""

    track: str = "reinvent_base"
    reward: str | None = None  # reward_function file; None = follow the centre line
    metadata: str | None = None  # model_metadata.json; None = the console default
    algo: str = "ppo"
    steps: int = 150_000
    n_envs: int = 8
    backend: str = "inprocess"
    ros_timeout: float | None = None  # --backend ros: s to wait for the simulator (None: the bridge's 15 s / 5 s)
    seed: int = 0
    image_width: int = 80
    image_height: int = 60
    grayscale: bool = True
    frame_stack: int = 1
    randomize: bool = False  # domain randomisation of the camera (camera.STANDARD_RANDOMIZATION)
    network: str = "shallow"
    # Hyperparameters, named as in the DeepRacer console.
    batch_size: int = 256
    learning_rate: float = 3e-4
    entropy: float = 0.01
    discount: float = 0.99
    epochs: int = 3
    episodes_between_updates: int = 20  # sets the rollout: episodes x ~100 steps, split over cars
    # Bookkeeping.
    checkpoint_every: int = 10_000  # env steps
    eval_every: int = 10_000  # env steps
    eval_laps: int = 1
    max_minutes: float | None = None
    stop_when_lapping: bool = False  # stop once an evaluation completes every lap
    simtrace: bool = True
    torch_threads: int = 2

    @property
    def rollout_steps(self) -> int:
        """Env steps per car between PPO updates."""
        total = math.ceil(self.episodes_between_updates * 100 / self.batch_size) * self.batch_size
        return max(32, math.ceil(total / self.n_envs))

    def observation(self) -> ObservationSpec:
        return ObservationSpec(self.image_width, self.image_height, self.grayscale, self.frame_stack)

    def save(self, path: Path) -> None:
        _atomic_write_text(path, json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_model_atomic(model, path: Path) -> None:
    """Save an SB3 model so that `path` is always either the old or the new file, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.zip")
    model.save(tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# ---- run directory ----------------------------------------------------------------------
def prepare_run(config: TrainConfig, out: Path, resume: bool) -> TrainConfig:
    """Create (or check, when resuming) the run directory; returns the config to use."""
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "config.json"
    if resume:
        if not config_path.exists() or not (out / CHECKPOINT).exists():
            raise TrainingError(f"{out}: nothing to resume (no config.json or {CHECKPOINT})")
        saved = TrainConfig.load(config_path)
        _check_same_run(saved, config, out)
        saved.steps = config.steps
        saved.max_minutes = config.max_minutes
        if config.ros_timeout is not None:
            saved.ros_timeout = config.ros_timeout
        return saved
    if (out / CHECKPOINT).exists():
        raise TrainingError(f"{out} already holds a run; use --resume to continue it or choose another --out")
    reward_src = Path(config.reward) if config.reward else RewardFunction().path
    shutil.copyfile(reward_src, out / "reward_function.py")
    ActionSpace.load(config.metadata).save(out / "model_metadata.json")
    config.save(config_path)
    return config


def _check_same_run(saved: TrainConfig, given: TrainConfig, out: Path) -> None:
    """Resuming with another track, reward or action space would silently mix two runs."""
    if given.track != saved.track and given.track != TrainConfig.track:
        raise TrainingError(f"{out}: the run trained on track {saved.track!r}, not {given.track!r}")
    if given.metadata is not None:
        run_space = ActionSpace.load(out / "model_metadata.json").to_metadata()
        if ActionSpace.load(given.metadata).to_metadata() != run_space:
            raise TrainingError(
                f"{out}: {given.metadata} differs from the run's model_metadata.json; "
                "a resumed run must keep its action space"
            )
    if given.reward is not None:
        if Path(given.reward).read_bytes() != (out / "reward_function.py").read_bytes():
            raise TrainingError(
                f"{out}: {given.reward} differs from the run's reward_function.py; "
                "start a new run (or copy the file into the run) to change the reward"
            )


# ---- envs -------------------------------------------------------------------------------
def core_kwargs(config: TrainConfig, out: Path) -> dict[str, Any]:
    """The env arguments of a run. The reward is the user's file while it exists, so errors
    name the file they edit; the run's copy is the record (and the fallback on resume)."""
    reward = Path(config.reward) if config.reward else None
    return dict(
        track=config.track,
        metadata=str(out / "model_metadata.json"),
        reward=str(reward if reward is not None and reward.exists() else out / "reward_function.py"),
        observation=config.observation(),
        **_randomization(config),
    )


def _randomization(config: TrainConfig) -> dict[str, Any]:
    if not config.randomize:
        return {}
    from .camera import STANDARD_RANDOMIZATION

    return {"randomization": STANDARD_RANDOMIZATION}


def make_env(config: TrainConfig, out: Path):
    """The training VecEnv for the chosen backend."""
    if config.backend == "inprocess":
        from .vec_env import RaceVecEnv

        return RaceVecEnv(n_envs=config.n_envs, seed=config.seed, **core_kwargs(config, out))
    if config.backend == "ros":
        from stable_baselines3.common.vec_env import DummyVecEnv

        from .ros.bridge import RosRaceEnv

        kwargs = core_kwargs(config, out)
        return DummyVecEnv([lambda: RosRaceEnv(**_ros_kwargs(kwargs, config.ros_timeout))])
    raise TrainingError(f"unknown backend {config.backend!r}; choose inprocess or ros")


def _ros_kwargs(kwargs: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """RosRaceEnv's arguments; `timeout` (s), when given, bounds both discovery and every answer."""
    ros = {
        "track": kwargs["track"],
        "model_metadata": kwargs["metadata"],
        "reward_function": kwargs["reward"],
        "observation": kwargs["observation"],
    }
    if timeout is not None:
        ros.update(timeout=timeout, connect_timeout=timeout)
    return ros


def _simulator_errors(config: TrainConfig) -> tuple[type[BaseException], ...]:
    """What the backend raises when its simulator is gone (nothing for the in-process one)."""
    if config.backend != "ros":
        return ()
    from .ros.bridge import SimulatorTimeout

    return (SimulatorTimeout,)


def dry_run(config: TrainConfig, kwargs: dict[str, Any], steps: int = 30) -> None:
    """A few steps with random actions, so a broken reward or metadata fails in seconds."""
    core = RaceCore(n_cars=2, seed=config.seed, **kwargs)
    rng = np.random.default_rng(config.seed)
    space = core.actions.gym_space()
    space.seed(int(rng.integers(1 << 31)))
    core.reset_cars(np.arange(2))
    for _ in range(steps):
        _, status, _ = core.step(np.stack([space.sample() for _ in range(2)]))
        done = np.flatnonzero([s.done for s in status])
        if len(done):
            core.reset_cars(done)


# ---- callbacks --------------------------------------------------------------------------
def _callbacks(config: TrainConfig, out: Path, state: dict[str, Any]):
    from stable_baselines3.common.callbacks import BaseCallback

    class RunCallback(BaseCallback):
        """Progress bar, per-iteration figures, simtrace, checkpoints and evaluation laps."""

        def __init__(self):
            super().__init__()
            self.started = time.time()
            self.start_steps = state.get("timesteps", 0)
            self.episodes = state.get("episodes", 0)
            self.iteration = state.get("iteration", 0)
            self.best = state.get("best")  # [mean_progress, best_lap_s]
            self.lapping = False
            self.stop_requested = False  # set by Ctrl-C (see _sigint_stops)
            self.next_checkpoint = self.start_steps + config.checkpoint_every
            self.next_eval = self.start_steps + config.eval_every
            self.ep_reward = np.zeros(config.n_envs)
            self.ep_episode_ids = np.arange(config.n_envs) + self.episodes
            self.iter_rewards: list[float] = []
            self.iter_progress: list[float] = []
            self.iter_complete: list[bool] = []
            self.recent_progress: list[float] = []
            self.simtrace = SimtraceWriter(out / "simtrace" / "training-simtrace.csv") if config.simtrace else None
            self.bar = None

        def _on_training_start(self) -> None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=config.steps,
                initial=self.start_steps,
                unit="step",
                dynamic_ncols=True,
                file=sys.stderr,
                smoothing=0.05,
            )

        def _on_step(self) -> bool:
            infos = self.locals["infos"]
            rewards = self.locals["rewards"]
            actions = self.locals.get("actions")
            dones = self.locals["dones"]
            self.ep_reward += rewards
            now = time.time() - self.started
            for i, info in enumerate(infos):
                params = info.get("params")
                if self.simtrace is not None and params:
                    action = actions[i] if actions is not None else ""
                    action = int(action) if np.ndim(action) == 0 else [round(float(a), 4) for a in action]
                    self.simtrace.write(
                        simtrace_row(
                            int(self.ep_episode_ids[i]),
                            params,
                            action,
                            float(rewards[i]),
                            bool(dones[i]),
                            info["episode_status"],
                            now,
                        )
                    )
                if dones[i]:
                    self.episodes += 1
                    self.iter_rewards.append(float(self.ep_reward[i]))
                    self.iter_progress.append(float(info["progress"]))
                    self.iter_complete.append(info["episode_status"] == EpisodeStatus.LAP_COMPLETE.value)
                    self.recent_progress = (self.recent_progress + [float(info["progress"])])[-100:]
                    self.ep_reward[i] = 0.0
                    self.ep_episode_ids[i] = self.episodes + config.n_envs - 1
            steps = self.num_timesteps
            if self.bar is not None:
                self.bar.update(steps - self.bar.n)
                if steps % (config.n_envs * 32) < config.n_envs:
                    mean = np.mean(self.recent_progress) if self.recent_progress else 0.0
                    self.bar.set_postfix(
                        episodes=self.episodes, progress=f"{mean:.1f}%", best=self._best_text(), refresh=False
                    )
            if steps >= self.next_eval:
                self.next_eval += config.eval_every
                self._evaluate()
            if steps >= self.next_checkpoint:
                self.next_checkpoint += config.checkpoint_every
                self.checkpoint()
            if config.max_minutes is not None and time.time() - self.started > config.max_minutes * 60:
                self._say(f"time budget of {config.max_minutes:g} min reached at {steps} steps")
                return False
            if self.stop_requested:
                self._say(f"Ctrl-C: stopping at {steps} steps with a checkpoint")
                return False
            if config.stop_when_lapping and self.lapping:
                self._say(f"evaluation completed every lap at {steps} steps: stopping early")
                return False
            return True

        def _on_rollout_end(self) -> None:
            self.iteration += 1
            if not self.iter_rewards:
                return
            row = {
                "iteration": self.iteration,
                "timesteps": self.num_timesteps,
                "episodes": self.episodes,
                "mean_reward": float(np.mean(self.iter_rewards)),
                "mean_progress": float(np.mean(self.iter_progress)),
                "completion_rate": float(np.mean(self.iter_complete)),
                "wall_s": round(time.time() - self.started, 2),
            }
            _append_csv(out / "progress.csv", row)
            self.logger.record("deepracer/mean_progress", row["mean_progress"])
            self.logger.record("deepracer/completion_rate", row["completion_rate"])
            self.logger.record("deepracer/episode_reward", row["mean_reward"])
            self.iter_rewards, self.iter_progress, self.iter_complete = [], [], []
            if self.simtrace is not None:
                self.simtrace.flush()

        def _on_training_end(self) -> None:
            if self.bar is not None:
                self.bar.close()
            if self.simtrace is not None:
                self.simtrace.close()
                self.simtrace = None

        def _best_text(self) -> str:
            if not self.best:
                return "-"
            progress, lap = self.best
            return f"{lap:.2f}s" if lap is not None else f"{progress:.0f}%"

        def _say(self, text: str) -> None:
            (self.bar.write if self.bar is not None else print)(text)

        def _evaluate(self) -> None:
            report = evaluate_model(self.model, config, out, laps=config.eval_laps)
            row = {"timesteps": self.num_timesteps, **report.as_dict()}
            row["lap_times_s"] = " ".join(str(t) for t in row["lap_times_s"])
            row["statuses"] = " ".join(row["statuses"])
            _append_csv(out / "evaluations.csv", row)
            key = [report.mean_progress, report.best_lap_s]
            if self.best is None or _better(key, self.best):
                self.best = key
                save_model_atomic(self.model, out / BEST)
            self.lapping = report.completed_laps == report.laps
            self.logger.record("deepracer/eval_progress", report.mean_progress)

        def checkpoint(self) -> None:
            save_model_atomic(self.model, out / CHECKPOINT)
            if self.simtrace is not None:
                self.simtrace.flush()
            state.update(timesteps=self.num_timesteps, episodes=self.episodes, iteration=self.iteration, best=self.best)
            _atomic_write_text(out / STATE, json.dumps(state) + "\n")

    return RunCallback()


@contextlib.contextmanager
def _sigint_stops(callback):
    """Ctrl-C (SIGINT) asks the run to stop at the next step instead of raising inside SB3 or
    rclpy's C code; repeats (`ros2 launch` forwards its own after the terminal's) change nothing.
    Only the main thread can set signal handlers: elsewhere Ctrl-C stays a KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        callback.stop_requested = True

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _better(key: list, best: list) -> bool:
    """Completion first, then lap time (a missing lap time is worst)."""
    (progress, lap), (best_progress, best_lap) = key, best
    if progress != best_progress:
        return progress > best_progress
    return (lap if lap is not None else math.inf) < (best_lap if best_lap is not None else math.inf)


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    import csv

    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def evaluate_model(
    model,
    config: TrainConfig,
    out: Path,
    laps: int = 1,
    track: str | None = None,
    trajectory_csv: Path | None = None,
    off_track_penalty: float | None = None,
) -> LapReport:
    """Evaluation laps of a model from the start line (in-process simulator)."""
    kwargs = core_kwargs(config, out)
    kwargs.pop("randomization", None)  # judged on the plain camera, as DeepRacer evaluates
    if track is not None:
        kwargs["track"] = track
    core = RaceCore(n_cars=1, start=StartRules(), **kwargs)
    return run_laps(
        core, policy_driver(model), laps=laps, off_track_penalty=off_track_penalty, trajectory_csv=trajectory_csv
    )


# ---- training ---------------------------------------------------------------------------
def build_model(config: TrainConfig, env, out: Path):
    from stable_baselines3 import PPO, SAC

    from .networks import DeepRacerCNN

    policy_kwargs = dict(
        features_extractor_class=DeepRacerCNN,
        features_extractor_kwargs=dict(network=config.network),
    )
    common = dict(
        learning_rate=config.learning_rate,
        gamma=config.discount,
        seed=config.seed,
        tensorboard_log=str(out / "tensorboard"),
        verbose=0,
    )
    if config.algo == "ppo":
        return PPO(
            "CnnPolicy",
            env,
            n_steps=config.rollout_steps,
            batch_size=config.batch_size,
            n_epochs=config.epochs,
            ent_coef=config.entropy,
            policy_kwargs=policy_kwargs,
            **common,
        )
    if config.algo == "sac":
        from gymnasium import spaces

        if not isinstance(env.action_space, spaces.Box):
            raise TrainingError(
                "SAC needs a continuous action space: give a model_metadata.json with "
                '"action_space_type": "continuous", or use --algo ppo'
            )
        return SAC(
            "CnnPolicy",
            env,
            batch_size=config.batch_size,
            buffer_size=50_000,
            ent_coef="auto" if config.entropy <= 0 else config.entropy,
            gradient_steps=max(1, config.epochs // 3),
            learning_starts=1_000,
            policy_kwargs=policy_kwargs,
            **common,
        )
    raise TrainingError(f"unknown algorithm {config.algo!r}; choose ppo or sac")


def load_model(path: Path, env=None):
    from stable_baselines3 import PPO, SAC

    errors = []
    for algo in (PPO, SAC):
        try:
            return algo.load(path, env=env, device="cpu")
        except Exception as exc:  # try the other algorithm's format
            errors.append(f"{algo.__name__}: {exc}")
    raise TrainingError(f"{path}: not a PPO or SAC model ({'; '.join(errors)})")


def train(config: TrainConfig, out: str | os.PathLike, resume: bool = False) -> dict[str, Any]:
    """Train (or resume) a run; returns a summary. Raises TrainingError with what was kept."""
    import torch

    out = Path(out)
    if config.backend == "ros":
        config.n_envs = 1  # one car: the simulator behind the topics
        if config.randomize:
            raise TrainingError(
                "--randomize applies to the in-process simulator; over ROS the "
                "simulator randomises its camera (sim_node randomize:=true)"
            )
    if config.ros_timeout is not None and not config.ros_timeout > 0:
        raise TrainingError(f"the ROS timeout must be a positive number of seconds, got {config.ros_timeout}")
    torch.set_num_threads(config.torch_threads)
    if not resume:  # a broken track, reward or metadata file fails before anything is written
        dry_run(
            config,
            dict(track=config.track, metadata=config.metadata, reward=config.reward, observation=config.observation()),
        )
    config = prepare_run(config, out, resume)
    if resume:
        dry_run(config, core_kwargs(config, out))
    env = make_env(config, out)
    simulator_gone = _simulator_errors(config)
    state: dict[str, Any] = {}
    if resume:
        state = json.loads((out / STATE).read_text(encoding="utf-8"))
        model = load_model(out / CHECKPOINT, env=env)
        model.tensorboard_log = str(out / "tensorboard")
    else:
        model = build_model(config, env, out)
    callback = _callbacks(config, out, state)
    remaining = config.steps - state.get("timesteps", 0)
    started = time.time()
    try:
        with _sigint_stops(callback):
            if remaining > 0:
                model.learn(remaining, callback=callback, reset_num_timesteps=not resume, tb_log_name="run")
            if callback.stop_requested:
                callback.checkpoint()
                raise TrainingError(
                    f"interrupted; checkpoint saved at step {model.num_timesteps}: continue with --resume"
                )
    except RewardFunctionError as exc:
        callback.checkpoint()
        raise TrainingError(
            f"the reward function failed at step {model.num_timesteps}; the run stopped and its "
            f"checkpoint is saved in {out / CHECKPOINT} (fix the file, then --resume):\n{exc}"
        ) from exc
    except simulator_gone as exc:
        kept = "nothing was trained"
        if model.num_timesteps > state.get("timesteps", 0):
            callback.checkpoint()
            kept = f"checkpoint saved at step {model.num_timesteps}: continue with --resume"
        raise TrainingError(f"the simulator did not answer ({kept}): {exc}") from exc
    except KeyboardInterrupt:  # not in the main thread: no handler of ours
        callback.checkpoint()
        raise TrainingError(
            f"interrupted; checkpoint saved at step {model.num_timesteps}: continue with --resume"
        ) from None
    finally:
        env.close()
        if callback.bar is not None:  # also when learn() stopped on an error
            callback.bar.close()
    callback.checkpoint()
    final = evaluate_model(model, config, out, laps=config.eval_laps)
    if callback.best is None or _better([final.mean_progress, final.best_lap_s], callback.best):
        callback.best = [final.mean_progress, final.best_lap_s]
        save_model_atomic(model, out / BEST)
        callback.checkpoint()
    return {
        "out": str(out),
        "timesteps": int(model.num_timesteps),
        "episodes": callback.episodes,
        "minutes": round((time.time() - started) / 60.0, 2),
        "best": callback.best,
    }
