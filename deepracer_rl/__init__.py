"""deepracer_rl: DeepRacer-style reinforcement learning on ROS 2, fast on a laptop.

Six layers that import downward only (docs/architecture.md): data, simulation, race,
learning, runs, interfaces. Nothing but the interfaces (`deepracer_rl.ros`, the CLI) imports
rclpy; the ROS simulator backend is found by name.
"""

__version__ = "0.1.0"


def _register_envs() -> None:
    """Make `gymnasium.make("deepracer_rl/Race-v0", ...)` work after `import deepracer_rl`."""
    try:
        import gymnasium
    except ImportError:  # the geometry core works without gymnasium
        return
    if "deepracer_rl/Race-v0" not in gymnasium.registry:
        gymnasium.register(
            id="deepracer_rl/Race-v0",
            entry_point="deepracer_rl.env:RaceEnv",
            vector_entry_point="deepracer_rl.gym_vector:RaceVectorEnv",
        )


_register_envs()
