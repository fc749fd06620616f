"""The training algorithms by name: how each builds its stable-baselines3 model from a `TrainConfig`.

Adding an algorithm means one `Algorithm` entry in `ALGORITHMS`; `--algo` choices, config
checks and model loading all come from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import TrainConfig


class AlgorithmError(ValueError):
    """An algorithm that is unknown or cannot train this action space; the message says what to use."""


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: its SB3 class name and how it is built."""

    name: str
    sb3_class: str  # attribute of stable_baselines3
    build: Callable[[TrainConfig, Any, dict[str, Any]], Any]  # (config, env, common kwargs) -> model
    description: str


def _policy(config: TrainConfig, env: Any) -> tuple[str, dict[str, Any]]:
    """SB3's policy name and kwargs for the env's observation, which the sensors decide
    (`sensors.observation_space`): one camera's Box -> CnnPolicy + `DeepRacerCNN`; several sensors'
    Dict -> MultiInputPolicy + `SensorsExtractor` (a CNN per camera, an MLP for the lidar)."""
    from gymnasium import spaces

    from .cnn import DeepRacerCNN, SensorsExtractor

    several = isinstance(env.observation_space, spaces.Dict)
    return "MultiInputPolicy" if several else "CnnPolicy", dict(
        features_extractor_class=SensorsExtractor if several else DeepRacerCNN,
        features_extractor_kwargs=dict(network=config.network),
    )


def _build_ppo(config: TrainConfig, env: Any, common: dict[str, Any]) -> Any:
    from stable_baselines3 import PPO

    cls = common.pop("model_class", None) or PPO
    policy, policy_kwargs = _policy(config, env)
    return cls(
        policy,
        env,
        n_steps=config.rollout_steps,
        batch_size=config.batch_size,
        n_epochs=config.epochs,
        ent_coef=config.entropy,
        target_kl=config.target_kl,
        policy_kwargs=policy_kwargs,
        **common,
    )


def _build_sac(config: TrainConfig, env: Any, common: dict[str, Any]) -> Any:
    from gymnasium import spaces
    from stable_baselines3 import SAC

    if not isinstance(env.action_space, spaces.Box):
        raise AlgorithmError(
            "SAC needs a continuous action space: give a model_metadata.json with "
            '"action_space_type": "continuous", or use --algo ppo'
        )
    policy, policy_kwargs = _policy(config, env)
    return SAC(
        policy,
        env,
        batch_size=config.batch_size,
        buffer_size=50_000,
        ent_coef="auto" if config.entropy <= 0 else config.entropy,
        gradient_steps=max(1, config.epochs // 3),
        learning_starts=1_000,
        policy_kwargs=policy_kwargs,
        **common,
    )


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("ppo", "PPO", _build_ppo, "PPO (DeepRacer's clipped PPO), discrete or continuous actions"),
        Algorithm("sac", "SAC", _build_sac, "SAC, continuous actions only"),
    )
}


def algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise AlgorithmError(f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]


def build_model(
    config: TrainConfig, env: Any, tensorboard_dir: Path | None = None, model_class: type | None = None
) -> Any:
    """A new model of the config's algorithm on `env`; `model_class`: a subclass of the algorithm's
    SB3 class to build instead (the Ray workers' `distributed.DistributedPPO`)."""
    common: dict[str, Any] = dict(
        learning_rate=config.learning_rate,
        gamma=config.discount,
        seed=config.seed,
        tensorboard_log=None if tensorboard_dir is None else str(tensorboard_dir),
        verbose=0,
    )
    if model_class is not None:
        common["model_class"] = model_class
    return algorithm(config.algo).build(config, env, common)


def load_model(path: Path, env: Any = None, algo: str | None = None, model_class: type | None = None) -> Any:
    """A saved model (`algo` when known, else whichever registered algorithm reads the file);
    `model_class`: load it as this subclass of the algorithm's SB3 class."""
    import stable_baselines3

    names = [algo] if algo is not None else list(ALGORITHMS)
    errors = []
    for name in names:
        cls = model_class or getattr(stable_baselines3, algorithm(name).sb3_class)
        try:
            return cls.load(path, env=env, device="cpu")
        except Exception as exc:
            errors.append(f"{cls.__name__}: {exc}")
    raise AlgorithmError(f"{path}: not a {' or '.join(n.upper() for n in names)} model ({'; '.join(errors)})")


# ---- reward scaling (TrainConfig.normalize_reward) ---------------------------------------------------


def scale_rewards(env: Any, discount: float, state: dict[str, Any] | None = None) -> Any:
    """`env` wrapped so the learner sees rewards divided by the running std of the discounted return
    (SB3's `VecNormalize` with observations untouched, clipped at +-10 std); `state`: the running
    statistics of a checkpoint (`reward_scale_state`) to continue from."""
    from stable_baselines3.common.vec_env import VecNormalize

    wrapped = VecNormalize(env, norm_obs=False, norm_reward=True, gamma=discount)
    if state:
        wrapped.ret_rms.mean = float(state["mean"])
        wrapped.ret_rms.var = float(state["var"])
        wrapped.ret_rms.count = float(state["count"])
    return wrapped


def reward_scale_state(model: Any) -> dict[str, float] | None:
    """The running statistics of the model's reward scaling (JSON-ready), None without scaling."""
    wrapper = model.get_vec_normalize_env()
    if wrapper is None:
        return None
    rms = wrapper.ret_rms
    return {"mean": float(rms.mean), "var": float(rms.var), "count": float(rms.count)}


def original_rewards(env: Any, rewards: Any) -> Any:
    """The reward function's own rewards of the last step: `rewards` as the learner got them, unless
    `env` scales them (`scale_rewards`: VecNormalize's `get_original_reward`, also through wrappers).
    Called every step: no import, one attribute lookup."""
    original = getattr(env, "get_original_reward", None)
    return rewards if original is None else original()
