"""Gymnasium envs beyond the race car that share the trainer; registered by id at import."""

from __future__ import annotations

import gymnasium as gym

PORTFOLIO_ID = "deepracer_rl/Portfolio-v0"
AUTOSCALING_ID = "deepracer_rl/AutoScaling-v0"
REACTION_ID = "deepracer_rl/ReactionOptimization-v0"

_ENTRY_POINTS = {
    PORTFOLIO_ID: "deepracer_rl.envs.portfolio:PortfolioEnv",
    AUTOSCALING_ID: "deepracer_rl.envs.autoscaling:AutoScalingEnv",
    REACTION_ID: "deepracer_rl.envs.reaction:ReactionOptimizationEnv",
}


def register_envs() -> None:
    """Register the seed envs with gymnasium; calling it again changes nothing."""
    for env_id, entry_point in _ENTRY_POINTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)


register_envs()
