"""Head-to-head: learner env steps/s against opponents, and races between two drivers.

Run: python benchmarks/head_to_head.py [--cars 8] [--steps 150] [--repeats 2] [--laps 10]
One process, pinned to one CPU where the OS allows it (as benchmarks/sim.py). Steps/s count
learner env steps (one learner car, one control period, 160x120 grayscale observation, random
learner actions, episodes reset as they end) per CPU second of this process, for: a time trial
of `--cars` cars; head-to-head against the scripted driver (2 x cars in the simulator); and
head-to-head against a frozen policy (self-play's opponent: a fresh PPO policy, one batched
predict for the opponent cars per step). The rows run one after the other in one process, so
they compare. Then `--laps` head-to-head evaluation laps of the scripted driver against itself
and of the shipped `general` model against `racing_reinvent_base`, from starts spread round
reinvent_base (seed 0), the leader alternating. Ends with one JSON line.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sim import best_rate, pin_to_one_core  # noqa: E402

from deepracer_rl.head_to_head import HeadToHeadVecEnv, OpponentPool, baseline_rows, policy_rows  # noqa: E402
from deepracer_rl.head_to_head_runs import evaluate_head_to_head  # noqa: E402
from deepracer_rl.vec_env import RaceVecEnv  # noqa: E402


def rate(env, cars: int, steps: int, repeats: int) -> tuple[float, float]:
    """Learner steps per CPU second and the fraction of learner steps that end an episode."""
    env.reset()
    actions = np.random.default_rng(0).integers(0, env.action_space.n, (steps, cars))
    ends = 0

    def run() -> None:
        nonlocal ends
        for action in actions:
            ends += int(env.step(action)[2].sum())

    try:
        run()  # warm-up
        ends = 0
        cpu, _ = best_rate(run, steps * cars, repeats)
    finally:
        env.close()
    return cpu, ends / (repeats * steps * cars)


def frozen_policy_pool(cars: int) -> OpponentPool:
    """Self-play's first opponent: a fresh PPO policy of the default network (as a run starts)."""
    from deepracer_rl.algorithms import build_model
    from deepracer_rl.config import TrainConfig

    scratch = RaceVecEnv(n_envs=1, seed=0)
    try:
        model = build_model(TrainConfig(n_envs=1), scratch, None)
        actions = scratch.core.actions
    finally:
        scratch.close()
    return OpponentPool([policy_rows(model, actions)], seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cars", type=int, default=8, help="learner cars")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--laps", type=int, default=10)
    args = parser.parse_args()
    print(pin_to_one_core())
    rows = {}
    rows["time_trial"] = rate(RaceVecEnv(n_envs=args.cars, seed=0), args.cars, args.steps, args.repeats)
    baseline = OpponentPool([baseline_rows()], seed=0)
    rows["head_to_head_vs_baseline"] = rate(
        HeadToHeadVecEnv(baseline, n_envs=args.cars, seed=0), args.cars, args.steps, args.repeats
    )
    rows["head_to_head_vs_frozen_policy"] = rate(
        HeadToHeadVecEnv(frozen_policy_pool(args.cars), n_envs=args.cars, seed=0), args.cars, args.steps, args.repeats
    )
    base = rows["time_trial"][0]
    for name, (cpu, ends) in rows.items():
        print(f"{name:32s} {cpu:8.0f} learner steps/s  {cpu / base:5.2f} x  {100 * ends:4.1f} % of steps end episodes")
    races = {}
    for first, second in (("baseline", "baseline"), ("general", "racing_reinvent_base")):
        driver = "baseline" if first == "baseline" else "policy"
        result = evaluate_head_to_head(None if first == "baseline" else first, second, driver, laps=args.laps, seed=0)
        out = result.as_dict()
        races[f"{first}_vs_{second}"] = out
        for car in out["cars"]:
            print(
                f"{first} vs {second}: car {car['car']} {car['driver']}: {car['completed_laps']}/{car['laps']} laps, "
                f"mean lap {np.mean(car['lap_times_s']) if car['lap_times_s'] else float('nan'):.2f} s, "
                f"{car['collisions']} collisions, {car['off_track']} off track, won {car['laps_won']} laps"
            )
        print(f"  winner: {out['winner']}")
    print(json.dumps({"steps_per_s": {k: round(v[0]) for k, v in rows.items()}, "races": races}))


if __name__ == "__main__":
    main()
