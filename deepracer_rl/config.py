"""`TrainConfig`: everything that defines a training run (saved as the run directory's config.json)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .observation import TRAINING_IMAGE_SIZE, ObservationSpec
from .reward_process import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, MIN_MEMORY_MB, RewardIsolation
from .sensors import DEFAULT_SENSORS
from .track_set import DIRECTIONS

MAX_CARS = 256  # cars of one run (--n-envs)
MAX_WORKERS = 1024  # Ray rollout workers of one run (--workers)
SELECT_BY = ("best_lap", "mean_lap")  # --select-by: what model selection ranks completed laps by
MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 36, 1280  # pixels: the CNNs need 36; DeepRacer's camera is 640x480


def _memory_bytes() -> int | None:
    """Physical memory of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


class ConfigError(ValueError):
    """A run's config.json is missing, unreadable or malformed; the message names the file and field."""


@dataclass
class TrainConfig:
    """Everything that defines a run. Hyperparameters are named as in the DeepRacer console."""

    track: str = "reinvent_base"  # the (first) training track: evaluations default to it
    track_specs: list[str] = field(default_factory=list)  # --track values as given (several: multi-track)
    tracks: list[str] = field(default_factory=list)  # the training tracks they resolved to (run-relative paths
    # for generated ones); empty: `track` alone
    direction: str = "as-is"  # as-is | ccw | cw | both (drawn per episode)
    world_config: dict[str, Any] | None = None  # obstacles and bot cars: DeepRacer's world-config keys
    # (`world_objects.RaceObjects.to_mapping`, from --world-config FILE); None: a time trial
    head_to_head: bool = False  # --race-type head_to_head: each car races an opponent car (docs/races.md)
    opponent: str | None = None  # --opponent MODEL|baseline: the fixed opponent of a head-to-head run
    self_play: bool = False  # --self-play: the opponents are frozen snapshots of the policy (self_play.py)
    opponent_pool: int = 5  # --opponent-pool N: self-play draws opponents from the newest N snapshots
    snapshot_every: int = 20_000  # --snapshot-every STEPS: env steps between self-play snapshots
    val_track_specs: list[str] = field(default_factory=list)  # --val-track values as given
    val_tracks: list[str] = field(default_factory=list)  # the validation tracks (model selection); empty: `track`
    val_perturb: list[str] = field(default_factory=list)  # NAME=VALUE camera perturbations validated under too
    reward: str | None = None  # reward_function file; None = follow the centre line
    metadata: str | None = None  # model_metadata.json; None = the console default
    algo: str = "ppo"  # a name of `algorithms.ALGORITHMS`
    steps: int = 150_000
    n_envs: int = 8  # cars simulated together (per Ray worker with --workers)
    workers: int = 0  # Ray rollout workers (distributed.py); 0: the cars run in this process
    ray_address: str | None = None  # --ray-address: a running Ray cluster ("auto", HOST:PORT); None: start one
    backend: str = "inprocess"  # a name of `backend.available_backends()`
    ros_timeout: float | None = None  # --backend ros: s to wait for the simulator (None: the backend's 15 s / 5 s)
    ros_domain_base: int | None = None  # --workers + --backend ros: worker i races in ROS_DOMAIN_ID base + i
    # (None: this process's ROS_DOMAIN_ID + 1, distributed.worker_domain_ids)
    external_simulators: bool = False  # --workers + --backend ros: race simulators the user started per domain
    seed: int = 0
    image_width: int = TRAINING_IMAGE_SIZE[0]
    image_height: int = TRAINING_IMAGE_SIZE[1]
    grayscale: bool = True
    frame_stack: int = 1
    randomize: bool | str = (
        False  # camera randomisation: a preset name of camera.RANDOMIZATION_PRESETS (True: standard)
    )
    randomization: dict[str, Any] | None = None  # the randomisation's values, recorded when the run starts
    network: str = "shallow"  # a name of `networks.NETWORKS`
    sensors: list[str] = field(default_factory=lambda: list(DEFAULT_SENSORS))  # from the metadata's "sensor"
    action_space_sha256: str | None = None  # ActionSpace.digest() of the actions the policy was built for
    input_sha256: dict[str, str] | None = None  # sha256 of the reward, track and metadata files (resume.py)
    # Hyperparameters, named as in the DeepRacer console.
    batch_size: int = 256
    learning_rate: float = 3e-4
    entropy: float = 0.01
    discount: float = 0.99
    epochs: int = 3
    # PPO learns from rewards divided by the running std of the discounted return (SB3's VecNormalize,
    # rewards only: the critic's targets stay near 1 whatever the reward function's scale); the logs,
    # plots and evaluations keep the reward function's own values
    normalize_reward: bool = False
    target_kl: float | None = None  # PPO: an update stops its epochs once the approximate KL passes 1.5 x this
    episodes_between_updates: int = 20  # sets the rollout: episodes x ~100 steps, split over cars
    # Bookkeeping.
    checkpoint_every: int = 10_000  # env steps
    eval_every: int = 10_000  # env steps
    eval_laps: int = 1
    # what model selection ranks completed laps by (SELECT_BY): the fastest lap or the mean lap of an
    # evaluation; None: the mean in a race with objects or over several tracks, else the fastest lap
    select_by: str | None = None
    max_minutes: float | None = None
    stop_when_lapping: bool = False  # stop once an evaluation completes every lap
    simtrace: bool = True
    camera_snapshot: float | None = None  # s between JPEGs of car 0's camera in the run (camera/latest.jpg)
    torch_threads: int = 2
    reward_isolation: bool = True  # the reward function runs in a child process (reward_process)
    reward_timeout: float = DEFAULT_TIMEOUT_S  # s one reward_function call may take (isolated only)
    reward_memory_mb: int = DEFAULT_MEMORY_MB  # MiB of address space for the reward process

    @property
    def total_cars(self) -> int:
        """Cars of the run: `n_envs`, on each of the `workers` when there are Ray workers."""
        return self.n_envs * max(1, self.workers)

    @property
    def rollout_steps(self) -> int:
        """Env steps per car between PPO updates."""
        total = math.ceil(self.episodes_between_updates * 100 / self.batch_size) * self.batch_size
        return max(32, math.ceil(total / self.total_cars))

    @property
    def selects_by_mean_lap(self) -> bool:
        """Model selection of a one-track evaluation ranks its mean lap (else its fastest lap)."""
        return self.select_by == "mean_lap" or (self.select_by is None and self.world_config is not None)

    def rollout_bytes(self) -> int:
        """Memory of the rollout buffer's observations (float32), the largest array a run allocates."""
        frames = self.rollout_steps * self.total_cars if self.algo == "ppo" else 50_000
        return frames * self.observation().channels * self.image_width * self.image_height * 4

    def validate(self, memory_limit: int | None = None) -> None:
        """Refuse values no run can use, naming the option (as the CLI spells it) and the range."""
        ranges = (
            ("steps", self.steps, 1, 10**10),
            ("n_envs", self.n_envs, 1, MAX_CARS),
            ("workers", self.workers, 0, MAX_WORKERS),
            ("frame_stack", self.frame_stack, 1, 16),
            ("batch_size", self.batch_size, 1, 2**20),
            ("learning_rate", self.learning_rate, 1e-9, 1.0),
            ("entropy", self.entropy, 0.0, 1.0),
            ("discount", self.discount, 1e-6, 1.0),
            ("epochs", self.epochs, 1, 1000),
            ("episodes_between_updates", self.episodes_between_updates, 1, 10**5),
            ("checkpoint_every", self.checkpoint_every, 1, 10**10),
            ("eval_every", self.eval_every, 1, 10**10),
            ("eval_laps", self.eval_laps, 1, 100),
            ("threads", self.torch_threads, 1, 256),
            ("reward_timeout", self.reward_timeout, 1e-3, 3600.0),
            ("reward_memory_mb", self.reward_memory_mb, MIN_MEMORY_MB, 2**24),
            ("opponent_pool", self.opponent_pool, 1, 100),
            ("snapshot_every", self.snapshot_every, 1, 10**10),
        )
        for name, value, low, high in ranges:
            if not (isinstance(value, (int, float)) and low <= value <= high):
                raise ConfigError(f"--{name.replace('_', '-')} {value}: expected a number within {low:g}..{high:g}")
        sides = (self.image_width, self.image_height)
        if not all(isinstance(v, int) and MIN_IMAGE_SIDE <= v <= MAX_IMAGE_SIDE for v in sides):
            raise ConfigError(
                f"--image-size {self.image_width}x{self.image_height}: each side must be within "
                f"{MIN_IMAGE_SIDE}..{MAX_IMAGE_SIDE} pixels (the CNN needs {MIN_IMAGE_SIDE})"
            )
        if self.select_by is not None and self.select_by not in SELECT_BY:
            raise ConfigError(f"--select-by {self.select_by}: expected one of {', '.join(SELECT_BY)}")
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"--direction {self.direction}: expected one of {', '.join(DIRECTIONS)}")
        if self.world_config is not None:
            from .world_objects import RaceObjects

            try:
                RaceObjects.from_mapping(self.world_config)
            except ValueError as exc:
                raise ConfigError(f"--world-config: {exc}") from None
        self._validate_head_to_head()
        if self.camera_snapshot is not None and not (
            isinstance(self.camera_snapshot, (int, float)) and 0.1 <= self.camera_snapshot <= 3600
        ):
            raise ConfigError(f"--camera-snapshot {self.camera_snapshot}: expected seconds within 0.1..3600")
        if self.target_kl is not None and not (
            isinstance(self.target_kl, (int, float)) and 1e-6 <= self.target_kl <= 10
        ):
            raise ConfigError(f"--target-kl {self.target_kl}: expected a number within 1e-06..10")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"--max-minutes {self.max_minutes}: expected a positive number of minutes")
        limit = memory_limit if memory_limit is not None else _memory_bytes()
        need = self.rollout_bytes()
        if limit and need > limit // 2:
            raise ConfigError(
                f"--image-size {self.image_width}x{self.image_height} with --n-envs {self.n_envs}: the rollout "
                f"buffer alone needs {need / 2**30:.1f} GiB, more than half of this machine's "
                f"{limit / 2**30:.1f} GiB; use a smaller image or fewer cars"
            )

    def _validate_head_to_head(self) -> None:
        """A head-to-head run trains against --opponent or --self-play (one of them), in-process, on one
        track driven as-is, without obstacles; the opponent options need the race type."""
        if not self.head_to_head:
            for flag, given in (("--self-play", self.self_play), ("--opponent", self.opponent is not None)):
                if given:
                    raise ConfigError(f"{flag} races an opponent car: it needs --race-type head_to_head")
            return
        if self.self_play == (self.opponent is not None):
            raise ConfigError(
                "--race-type head_to_head trains against a fixed --opponent MODEL|baseline or with --self-play: "
                "give one of them"
            )
        where = (
            ("--world-config or obstacle/bot-car options", self.world_config is not None),
            ("--workers", self.workers > 0),
            ("--backend " + self.backend, self.backend != "inprocess"),
            ("several --track", len(self.track_specs) > 1 or len(self.tracks) > 1),
            ("--direction " + self.direction, self.direction != "as-is"),
        )
        for flag, given in where:
            if given:
                raise ConfigError(
                    f"--race-type head_to_head: not with {flag} (two cars on one in-process track, as-is)"
                )

    def isolation(self) -> RewardIsolation | None:
        """How the reward function runs: in a child process with these limits, or None (in process)."""
        if not self.reward_isolation:
            return None
        return RewardIsolation(float(self.reward_timeout), int(self.reward_memory_mb))

    @property
    def training_tracks(self) -> list[str]:
        """The training tracks' references (names or paths; generated ones relative to the run)."""
        return list(self.tracks) or [self.track]

    def observation(self) -> ObservationSpec:
        return ObservationSpec(self.image_width, self.image_height, self.grayscale, self.frame_stack)

    def to_json(self) -> str:
        """config.json: every field, plus the observation the policy sees (derived, for readers)."""
        data: dict[str, Any] = dataclasses.asdict(self)
        data["observation"] = self.observation().as_dict()
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str | Path = "config.json") -> TrainConfig:
        """A config from config.json text; unknown keys (derived ones, newer versions) are ignored."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object of settings")
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None
