"""Training head-to-head: the opponents of a run, fixed (`--opponent MODEL|baseline`) or self-play.

Self-play (`--self-play`) is the game-playing RL recipe: the opponents are frozen earlier copies
of the policy. The run starts with one snapshot, the initial (untrained) policy, so the first
opponents drive at random; every `snapshot_every` env steps (all learner cars' steps, as SB3
counts them) the policy is saved as a snapshot and joins the pool, and each opponent episode
draws its driver uniformly from the newest `opponent_pool` snapshots. Snapshots are files of
the run (`opponents/step_<steps>.zip`; older ones beyond the pool are deleted), so `--resume`
restores the pool as it was at the checkpoint's step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from .action_space import ActionSpace
from .algorithms import load_model
from .config import TrainConfig
from .head_to_head import OpponentPool, RowDriver, baseline_rows, policy_rows
from .inference import load_policy, resolve_model, shipped_models
from .observation import ObservationSpec
from .policy import ONNX_NAME, OPENVINO_XML
from .rundir import RunDir, find_run

SNAPSHOTS = "opponents"  # the run's folder of self-play snapshots
BASELINE = "baseline"  # --opponent baseline: the scripted driver


@dataclass
class Opponent:
    """A loaded opponent: its row driver, a label, and what its policy sees (None: the scripted driver)."""

    driver: RowDriver
    label: str
    observation: ObservationSpec | None
    sensors: tuple[str, ...] | None


def load_opponent(ref: str | os.PathLike) -> Opponent:
    """`--opponent`'s model: `baseline`, a run directory, a model .zip of a run, an export dir or a
    shipped model's name (as `evaluate` takes MODEL). FileNotFoundError names what was not found."""
    if str(ref) == BASELINE:
        return Opponent(baseline_rows(), BASELINE, None, None)
    path = resolve_model(ref)
    if not path.exists():
        shipped = ", ".join(shipped_models()) or "none"
        raise FileNotFoundError(
            f"--opponent {ref}: no such run directory, model .zip, export dir or shipped model ({shipped}), "
            "and not 'baseline'"
        )
    if (path / ONNX_NAME).exists() or (path / OPENVINO_XML).exists() or path.suffix in (".onnx", ".xml"):
        policy = load_policy(path)
        sensors = tuple(policy.actions.sensor)
        return Opponent(policy_rows(policy, policy.actions), str(path), policy.observation, sensors)
    run, model_path = find_run(path)
    config = run.load_config()
    actions = ActionSpace.load(run.metadata_path)
    model = load_model(model_path, algo=config.algo)
    return Opponent(policy_rows(model, actions), str(model_path), config.observation(), tuple(actions.sensor))


def check_opponent(opponent: Opponent, observation: ObservationSpec, sensors: tuple[str, ...]) -> None:
    """Refuse an opponent whose policy sees otherwise than the learner (the simulator renders one camera
    for both cars), naming both."""
    if opponent.observation is None:
        return
    if opponent.observation != observation or tuple(opponent.sensors or ()) != tuple(sensors):
        raise ValueError(
            f"--opponent {opponent.label} sees {opponent.observation.as_dict()} with sensors "
            f"{list(opponent.sensors or ())}, the learner {observation.as_dict()} with {list(sensors)}: "
            "both cars of a head-to-head race see through the same camera settings"
        )


def snapshot_paths(run: RunDir) -> list[Path]:
    """The run's self-play snapshots, oldest first."""
    folder = run.path / SNAPSHOTS
    return sorted(folder.glob("step_*.zip")) if folder.is_dir() else []


def opponent_pool(config: TrainConfig, run: RunDir) -> OpponentPool:
    """The opponents of a head-to-head run: the fixed `--opponent`, or (self-play) the run's newest
    `opponent_pool` snapshots (none yet at a fresh start: `SelfPlaySnapshots.start` adds the first)."""
    actions = ActionSpace.load(run.metadata_path)
    if not config.self_play:
        if config.opponent is None:
            raise ValueError("a head-to-head run trains against --opponent MODEL|baseline or --self-play")
        opponent = load_opponent(config.opponent)
        check_opponent(opponent, config.observation(), tuple(actions.sensor))
        pool = OpponentPool([opponent.driver], seed=config.seed)
        pool.labels = [opponent.label]
        return pool
    pool = OpponentPool([], keep=config.opponent_pool, seed=config.seed)
    for path in snapshot_paths(run)[-config.opponent_pool :]:
        pool.add(policy_rows(load_model(path, algo=config.algo), actions), path.name)
    return pool


class SelfPlaySnapshots(BaseCallback):
    """Every `every` env steps, the policy as it is now joins the opponent pool (saved in the run)."""

    def __init__(self, config: TrainConfig, run: RunDir, pool: OpponentPool, start_step: int = 0):
        super().__init__()
        self.config, self.run, self.pool = config, run, pool
        self.actions = ActionSpace.load(run.metadata_path)
        self.next = (start_step // config.snapshot_every + 1) * config.snapshot_every

    def start(self, model: Any) -> None:
        """A fresh run's first snapshot: the initial policy (the pool is empty until then)."""
        if not self.pool.drivers:
            self.snapshot(model, int(model.num_timesteps))

    def snapshot(self, model: Any, steps: int) -> Path:
        """Save `model` as snapshot `steps`, load its frozen copy into the pool, delete snapshots beyond it."""
        folder = self.run.path / SNAPSHOTS
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step_{steps:010d}.zip"
        model.save(path)
        self.pool.add(policy_rows(load_model(path, algo=self.config.algo), self.actions), path.name)
        for old in snapshot_paths(self.run)[: -self.config.opponent_pool]:
            old.unlink(missing_ok=True)
        return path

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next:
            self.snapshot(self.model, int(self.num_timesteps))
            self.next += self.config.snapshot_every
        return True
