"""How training scales with Ray rollout workers (`--workers N`), measured in one run on this machine.

On one local Ray (`ray.init(num_cpus=2)`; every worker is one CPU):

- `collect_1`, `collect_2`: collection env steps/s of 1 and 2 workers of `--cars` cars each, the
  learner idle (one pool of 2 workers: worker 0 alone, then both, alternately; medians of
  `--repeats` rounds after a warm-up rollout).
- `train_local`, `train_workers_2`: end-to-end training steps/s of `deepracer-rl train` with the
  same cars in all (2 x `--cars`) in this process, and on 2 workers of `--cars`: from the run's
  progress.csv, first to last update (Ray's and the run's start-up and the final evaluation are
  not counted).
- `bytes_per_update`: what crosses the object store per update with 2 workers: the weights once
  per worker, the rollouts' arrays and their pickled step infos.
- `learner_share`: the fraction of an update the learner spends in PPO's train() (2 workers).
- `predicted_speedup_8`, `predicted_speedup_32`: training speed-up over 1 worker with N workers on
  N cores of their own, Amdahl's law over `learner_share`: the learner's time per update stays,
  the collection time divides by N (at the 2-worker collection efficiency `collect_2 / (2
  collect_1)`). The bytes per update grow with N (docs/scaling.md).

`--sensors STEREO_CAMERAS,LIDAR` measures all of it for a model of those sensors (a metadata file of
the console's action space with that "sensor" list): the workers then send a Dict observation per key.

One JSON line with those keys (and `cores`, `cars_per_worker`, `sensors`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a single-node Ray stays on 127.0.0.1

import ray

from deepracer_rl.config import TrainConfig
from deepracer_rl.distributed import PolicySpec, WorkerPool, policy_weights, rollout_bytes
from deepracer_rl.train import train


def config(workers: int, cars: int, steps: int, metadata: str | None = None) -> TrainConfig:
    return TrainConfig(
        metadata=metadata,
        workers=workers,
        n_envs=cars,
        steps=steps,
        eval_every=10 * steps,
        checkpoint_every=10 * steps,
        torch_threads=1,
        simtrace=True,
        reward_isolation=True,
    )


def collection(cars: int, steps: int, repeats: int, metadata: str | None = None) -> tuple[float, float, int]:
    """(env steps/s of 1 worker, of 2 workers, bytes per update of 2 workers), the learner idle: one
    pool of 2 workers; each round times worker 0 alone, then both together (medians over `repeats`
    rounds, after a warm-up rollout: a shared machine's load changes between rounds)."""
    from stable_baselines3 import PPO

    from deepracer_rl.algorithms import build_model
    from deepracer_rl.vec_env import RaceVecEnv

    settings = config(2, cars, steps, metadata)
    kwargs = dict(track="reinvent_base", observation=settings.observation(), reward_isolation=settings.isolation())
    kwargs["metadata"] = metadata
    pool = WorkerPool(2, cars, 0, kwargs, 0.99, say=lambda text: print(text, file=sys.stderr))
    env = RaceVecEnv(n_envs=1, seed=0, **kwargs)
    try:
        model: PPO = build_model(settings, env)
        spec, weights = PolicySpec.of(model), policy_weights(model.policy)
        pool.collect(spec, weights, steps)  # warm-up: policies built, first episodes under way
        ref = ray.put((spec, weights))
        one, two = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            ray.get(pool.actors[0].collect.remote(ref, steps))
            one.append(cars * steps / (time.perf_counter() - started))
            started = time.perf_counter()
            rollouts = pool.collect(spec, weights, steps)
            two.append(2 * cars * steps / (time.perf_counter() - started))
        infos = sum(len(pickle.dumps(r["infos"])) for r in rollouts)
        sent = sum(w.nbytes for w in weights.values()) * 2
        return statistics.median(one), statistics.median(two), sent + sum(rollout_bytes(r) for r in rollouts) + infos
    finally:
        pool.close()
        env.close()


def training_rate(workers: int, cars: int, steps: int, metadata: str | None = None) -> tuple[float, float]:
    """(training steps/s from progress.csv, the learner's share of an update) of one run."""
    import deepracer_rl.distributed as distributed

    learn_s = {"s": 0.0}
    original = distributed.DistributedPPO.train

    def timed(self: distributed.DistributedPPO) -> None:
        started = time.perf_counter()
        original(self)
        learn_s["s"] += time.perf_counter() - started

    distributed.DistributedPPO.train = timed  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            train(config(workers, cars, steps, metadata), out)
            with open(out / "progress.csv", newline="") as handle:
                rows = list(csv.DictReader(handle))
    finally:
        distributed.DistributedPPO.train = original  # type: ignore[method-assign]
    first, last = rows[0], rows[-1]
    seconds = float(last["wall_s"]) - float(first["wall_s"])
    rate = (int(last["timesteps"]) - int(first["timesteps"])) / seconds
    updates = len(rows)
    return rate, (learn_s["s"] * (updates - 1) / updates) / seconds if workers else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cars", type=int, default=4, help="cars per worker (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=256, help="steps per car per rollout (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rollouts per worker count (default: %(default)s)")
    parser.add_argument("--train-steps", type=int, default=12_288, help="steps of each run (default: %(default)s)")
    parser.add_argument("--sensors", help='model_metadata.json "sensor" list, comma-separated (default: the camera)')
    args = parser.parse_args()
    metadata = None
    if args.sensors:
        from deepracer_rl.action_space import ActionSpace

        metadata = str(Path(tempfile.mkdtemp(prefix="scale_")) / "model_metadata.json")
        sensors = args.sensors.split(",")
        Path(metadata).write_text(json.dumps({**ActionSpace.default().to_metadata(), "sensor": sensors}))
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        collect_1, collect_2, bytes_2 = collection(args.cars, args.steps, args.repeats, metadata)
        train_workers_2, learner_share = training_rate(2, args.cars, args.train_steps, metadata)
    finally:
        ray.shutdown()
    train_local, _ = training_rate(0, 2 * args.cars, args.train_steps, metadata)  # the same cars in all
    efficiency = collect_2 / (2 * collect_1)
    collect_share = 1.0 - learner_share

    def speedup(n: int) -> float:
        # update time with N workers relative to the measured 2-worker update, over 1 worker's
        at_1 = learner_share + collect_share * 2 * efficiency
        return at_1 / (learner_share + collect_share * 2 / n)

    print(
        json.dumps(
            {
                "collect_1": round(collect_1, 1),
                "collect_2": round(collect_2, 1),
                "collect_2_over_1": round(collect_2 / collect_1, 2),
                "train_local": round(train_local, 1),
                "train_workers_2": round(train_workers_2, 1),
                "bytes_per_update": int(bytes_2),
                "learner_share": round(learner_share, 3),
                "predicted_speedup_8": round(speedup(8), 2),
                "predicted_speedup_32": round(speedup(32), 2),
                "cores": os.cpu_count(),
                "cars_per_worker": args.cars,
                "sensors": args.sensors or "FRONT_FACING_CAMERA",
            }
        )
    )


if __name__ == "__main__":
    main()
