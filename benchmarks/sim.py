"""Embedded simulator speed: camera-observation env steps/s, 640x480 render fps, memory per car.

Run: python benchmarks/sim.py [--track reinvent_base] [--cars 16] [--seconds 3]
Everything runs on one core (the process is pinned to one CPU where the OS allows it;
OpenCV and BLAS use one thread). Steps/s count env steps (one car, one control period,
160x120 grayscale observation, the default reward and discrete action space, random
actions, episodes reset as they end) per CPU second of this process: the figure on one
core, whatever else the machine runs. Memory per car is the traced (tracemalloc)
memory of a 16-car env minus that of a 1-car env, divided by 15.
Ends with one JSON line. Target: >= 5,000 steps/s with 16 batched cars at 160x120.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads its BLAS

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import warnings  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from deepracer_rl.env import RaceEnv  # noqa: E402
from deepracer_rl.track import Track  # noqa: E402
from deepracer_rl.vec_env import RaceVecEnv  # noqa: E402

TARGET_STEPS_PER_S_16 = 5000


def pin_to_one_core() -> str:
    """Pin this process to one CPU if allowed; returns a note saying which."""
    cv2.setNumThreads(1)
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted
        return f"not pinned ({exc.__class__.__name__}); CPU time still counts one core"


def best_rate(run, units: float, repeats: int) -> tuple[float, float]:
    """Best units per CPU second and per wall second over `repeats` runs of `run()`."""
    cpu_best = wall_best = 0.0
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        run()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        cpu_best = max(cpu_best, units / max(cpu, 1e-9))
        wall_best = max(wall_best, units / max(wall, 1e-9))
    return cpu_best, wall_best


def one_car(track: Track, steps: int, repeats: int) -> tuple[float, float]:
    env = RaceEnv(track)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, env.action_space.n, steps).tolist()

    def run() -> None:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()

    run()  # warm-up
    return best_rate(run, steps, repeats)


def batched(track: Track, cars: int, steps: int, repeats: int) -> tuple[float, float, float]:
    env = RaceVecEnv(n_envs=cars, seed=0, track=track)
    env.reset()
    actions = np.random.default_rng(0).integers(0, env.action_space.n, (steps, cars))
    resets = 0

    def run() -> None:
        nonlocal resets
        for action in actions:
            resets += int(env.step(action)[2].sum())

    run()  # warm-up
    resets = 0
    cpu, wall = best_rate(run, steps * cars, repeats)
    return cpu, wall, resets / (repeats * steps * cars)


def render_fps(track: Track, frames: int, repeats: int) -> tuple[float, float, tuple[int, int]]:
    env = RaceEnv(track, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()  # builds the full-size renderer
    return (*best_rate(lambda: [env.render() for _ in range(frames)], frames, repeats), frame.shape[1::-1])


def traced_mb(track: Track, cars: int) -> float:
    """Traced memory (MB) held by a `cars`-car env after a reset and a few steps."""
    gc.collect()
    tracemalloc.start()
    env = RaceVecEnv(n_envs=cars, seed=0, track=track)
    env.reset()
    for action in np.random.default_rng(0).integers(0, env.action_space.n, (5, cars)):
        env.step(action)
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del env
    return current / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="reinvent_base")
    parser.add_argument("--cars", type=int, default=16)
    parser.add_argument("--steps", type=int, default=300, help="control steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*render_mode.*")  # SB3's VecEnv notice
    where = pin_to_one_core()

    track = Track.load(args.track)
    RaceEnv(track).reset(seed=0)  # build the track's ground texture once, outside the timings
    print(f"track {track.name}, {where}, best of {args.repeats} runs of {args.steps} control steps")

    s1_cpu, s1_wall = one_car(track, args.steps, args.repeats)
    print(
        f"  1 car   RaceEnv     160x120 gray  {s1_cpu:8,.0f} steps/s CPU ({s1_wall:,.0f} wall)"
        f"  {1e3 / s1_cpu:6.3f} ms/step"
    )
    sn_cpu, sn_wall, reset_rate = batched(track, args.cars, args.steps, args.repeats)
    print(
        f"  {args.cars} cars RaceVecEnv  160x120 gray  {sn_cpu:8,.0f} steps/s CPU ({sn_wall:,.0f} wall)"
        f"  {1e3 * args.cars / sn_cpu:6.3f} ms/batch, {100 * reset_rate:.1f} % of steps end an episode"
    )
    fps_cpu, fps_wall, (w, h) = render_fps(track, args.steps // 3, args.repeats)
    print(f"  render  RaceEnv.render {w}x{h} RGB {fps_cpu:8,.0f} fps CPU ({fps_wall:,.0f} wall)")

    mb_1 = traced_mb(track, 1)
    mb_n = traced_mb(track, args.cars)
    per_car = (mb_n - mb_1) / (args.cars - 1) if args.cars > 1 else mb_1
    print(
        f"  memory  {mb_1:.2f} MB traced with 1 car (track texture shared), {mb_n:.2f} MB with "
        f"{args.cars}: {per_car:.3f} MB per extra car"
    )
    verdict = "meets" if sn_cpu >= TARGET_STEPS_PER_S_16 else "MISSES"
    print(f"  {verdict} the target of {TARGET_STEPS_PER_S_16:,} steps/s with {args.cars} batched cars")
    print(
        json.dumps(
            {
                "steps_per_s_1": round(s1_cpu),
                f"steps_per_s_{args.cars}": round(sn_cpu),
                "render_fps_640": round(fps_cpu),
                "mb_per_car": round(per_car, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
