"""Behaviour cloning of the pure-pursuit baseline into an SB3 PPO policy ("the baseline-cloned policy").

The baseline (`baseline.PurePursuitDriver`) reads the pose; the clone sees only the camera.
Cars drive in the in-process simulator while the baseline says what it would do at every
step; those (observation, action) pairs fit the PPO policy's action distribution by
maximum likelihood (cross-entropy over the discrete actions, Gaussian log-likelihood for a
continuous space). Round 0 is driven by the baseline with a wandering steering offset, so the
data holds recoveries from off-centre poses; later rounds are driven by the clone itself
(DAgger: the states the clone visits, labelled by the baseline).

The result is an ordinary run directory (config.json, model_metadata.json, best_model.zip,
checkpoints/latest.zip), so `deepracer-rl export`, `evaluate` and `train --resume` work on it.
It is a quick, legitimate policy for tests and demos of the inference path, not a
substitute for reinforcement learning.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .action_space import ActionSpace
from .algorithms import build_model
from .baseline import PurePursuitDriver
from .config import TrainConfig
from .episode import StartRules
from .networks import NETWORKS
from .race import RaceCore
from .rundir import RunDir, save_model_atomic, write_atomic
from .train import evaluate_model, prepare_run, race_kwargs


@dataclass
class CloneConfig:
    """How much data, noise and fitting the cloning does."""

    cars: int = 8  # cars driving at once while recording
    steps: int = 300  # control steps per car and round
    rounds: int = 3  # round 0: the baseline drives; then the clone drives (DAgger)
    epochs: int = 3  # passes over all data gathered so far, after every round
    batch_size: int = 128
    learning_rate: float = 1e-3
    steer_noise_deg: float = 10.0  # std of the wandering steering offset added while recording
    noise_hold_steps: int = 10  # steps one offset is held (a drift, not jitter)
    expert_fraction: float = 0.3  # DAgger rounds: chance per step that the baseline drives a car
    late_fraction: float = 0.2  # chance per step that a car keeps its last command (a late message)
    seed: int = 0
    eval_laps: int = 1


def expert_labels(actions: ActionSpace, steering_deg: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """The baseline's commands as policy actions: nearest discrete action, or values in [-1, 1]."""
    steering_deg = np.asarray(steering_deg, dtype=np.float64).reshape(-1)
    speed = np.asarray(speed, dtype=np.float64).reshape(-1)
    if actions.kind == "discrete":
        table = actions.actions
        steer_scale = max(np.ptp(table[:, 0]), 1.0)
        speed_scale = max(np.ptp(table[:, 1]), 0.1)
        d_steer = (steering_deg[:, None] - table[None, :, 0]) / steer_scale
        d_speed = (speed[:, None] - table[None, :, 1]) / speed_scale
        # Steering matters more than speed for staying on the track.
        return np.argmin(4.0 * d_steer**2 + d_speed**2, axis=1).astype(np.int64)
    (s_lo, s_hi), (v_lo, v_hi) = actions.steering_range, actions.speed_range
    steer = 2.0 * (steering_deg - s_lo) / (s_hi - s_lo) - 1.0
    velocity = 2.0 * (speed - v_lo) / (v_hi - v_lo) - 1.0
    return np.clip(np.stack([steer, velocity], axis=1), -1.0, 1.0).astype(np.float32)


def _expert(core: RaceCore) -> PurePursuitDriver:
    """The baseline limited to the speeds the action space can command."""
    acts = core.actions
    low = float(acts.actions[:, 1].min()) if acts.kind == "discrete" else acts.speed_range[0]
    return PurePursuitDriver(core, max_speed=acts.max_speed, min_speed=low)


class _Dataset:
    """Observations (uint8) and labels gathered over all rounds."""

    def __init__(self):
        self.obs: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []

    def add(self, obs: np.ndarray, labels: np.ndarray) -> None:
        self.obs.append(obs.copy())
        self.labels.append(labels.copy())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.obs), np.concatenate(self.labels)


def record(core: RaceCore, config: CloneConfig, rng: np.random.Generator, data: _Dataset, learner: Any = None) -> dict:
    """Drive every car `config.steps` steps, recording (observation, baseline action) pairs."""
    expert = _expert(core)
    n = core.n
    core.reset_cars(np.arange(n))
    offset = np.zeros(n)
    last_steer, last_speed = np.zeros(n), np.zeros(n)
    episodes = laps = 0
    for step in range(config.steps):
        steer, speed = expert.act()
        data.add(core.stack, expert_labels(core.actions, steer, speed))
        if learner is not None:
            action, _ = learner.predict(core.stack, deterministic=True)
            l_steer, l_speed = core.actions.to_commands(action)
            use_expert = rng.random(n) < config.expert_fraction
            steer = np.where(use_expert, steer, l_steer)
            speed = np.where(use_expert, speed, l_speed)
        if step % config.noise_hold_steps == 0:
            offset = rng.normal(0.0, config.steer_noise_deg, n)
        late = rng.random(n) < config.late_fraction
        steer = np.where(late, last_steer, steer + offset)
        speed = np.where(late, last_speed, speed)
        last_steer, last_speed = steer, speed
        _, statuses, _ = core.drive(steer, speed)
        core.observe(np.arange(n))
        done = np.flatnonzero([s.done for s in statuses])
        if len(done):
            episodes += len(done)
            laps += sum(statuses[i].value == "lap_complete" for i in done)
            core.reset_cars(done)
    return {"episodes_ended": int(episodes), "laps": int(laps)}


def fit(model: Any, obs: np.ndarray, labels: np.ndarray, config: CloneConfig, rng: np.random.Generator) -> float:
    """Maximum-likelihood fit of the policy's action distribution; returns the last epoch's loss."""
    import torch

    policy = model.policy
    policy.set_training_mode(True)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
    discrete = model.action_space.__class__.__name__ == "Discrete"
    loss_sum = 0.0
    for _ in range(config.epochs):
        order = rng.permutation(len(obs))
        loss_sum, batches = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            frames = torch.as_tensor(obs[idx], dtype=torch.float32)
            target = torch.as_tensor(labels[idx])
            _, log_prob, _ = policy.evaluate_actions(frames, target if discrete else target.float())
            loss = -log_prob.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
            batches += 1
        loss_sum /= max(batches, 1)
    policy.set_training_mode(False)
    return loss_sum


def clone_baseline(
    train_config: TrainConfig, out: str | Path, config: CloneConfig | None = None, log: Callable[[str], None] = print
) -> dict:
    """Clone the baseline into a new run directory `out`; returns a summary with the lap report."""
    import torch

    from .vec_env import RaceVecEnv

    config = config or CloneConfig()
    run = RunDir(out)
    torch.set_num_threads(train_config.torch_threads)
    torch.manual_seed(config.seed)
    train_config = prepare_run(train_config, run, resume=False)
    kwargs = race_kwargs(train_config, run)
    env = RaceVecEnv(n_envs=1, seed=train_config.seed, **kwargs)  # the spaces the policy is built for
    model = build_model(train_config, env, run.tensorboard)
    env.close()
    rng = np.random.default_rng(config.seed)
    start = StartRules(lateral_noise=0.1, heading_noise=0.2)
    core = RaceCore.create(n_cars=config.cars, seed=config.seed, start=start, **kwargs)
    data = _Dataset()
    started = time.time()
    report = None
    for round_ in range(config.rounds):
        stats = record(core, config, rng, data, learner=model if round_ else None)
        obs, labels = data.arrays()
        loss = fit(model, obs, labels, config, rng)
        report = evaluate_model(model, train_config, run, laps=config.eval_laps)
        log(
            f"round {round_}: {len(obs)} samples, loss {loss:.3f}, recording {stats}, "
            f"evaluation {report.completed_laps}/{report.laps} laps, progress {report.mean_progress:.1f} % "
            f"({time.time() - started:.0f} s)"
        )
    save_model_atomic(model, run.best_model)
    save_model_atomic(model, run.checkpoint)
    best = [report.mean_progress, report.best_lap_s]
    run.save_state({"timesteps": 0, "episodes": 0, "iteration": 0, "best": best})
    write_atomic(run.path / "clone.json", json.dumps({"clone": asdict(config), **report.as_dict()}) + "\n")
    return {
        "out": str(run.path),
        "samples": int(len(data.arrays()[0])),
        "seconds": round(time.time() - started, 1),
        **report.as_dict(),
    }


def main(argv: list[str] | None = None) -> None:
    """`python -m deepracer_rl.clone --out runs/clone`: clone the baseline, then export the policy."""
    import argparse

    from .export import export_run

    parser = argparse.ArgumentParser(
        description="Behaviour-clone the pure-pursuit baseline into a PPO run and export it."
    )
    parser.add_argument("--out", required=True, help="new run directory (the export goes to OUT/export)")
    parser.add_argument("--track", default=TrainConfig.track)
    parser.add_argument("--metadata", help="model_metadata.json (default: the console's action space)")
    parser.add_argument("--network", default=TrainConfig.network, choices=sorted(NETWORKS))
    parser.add_argument("--rounds", type=int, default=CloneConfig.rounds)
    parser.add_argument("--steps", type=int, default=CloneConfig.steps, help="steps per car and round")
    parser.add_argument("--seed", type=int, default=CloneConfig.seed)
    args = parser.parse_args(argv)
    config = TrainConfig(
        track=args.track,
        metadata=args.metadata,
        network=args.network,
        seed=args.seed,
        n_envs=1,
        torch_threads=1,
        simtrace=False,
    )
    summary = clone_baseline(config, args.out, CloneConfig(rounds=args.rounds, steps=args.steps, seed=args.seed))
    export = export_run(args.out, Path(args.out) / "export")
    print(
        f"exported {export}: {summary['completed_laps']}/{summary['laps']} evaluation laps, "
        f"lap times {summary['lap_times_s']} s"
    )


if __name__ == "__main__":
    main()
