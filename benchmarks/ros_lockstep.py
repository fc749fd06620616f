"""Lockstep env steps/s through DDS (RosRaceEnv <-> sim_node) and of the in-process RaceEnv.

Run: python benchmarks/ros_lockstep.py [--steps 3000] [--no-pin] [--profile]
For each camera setting (160x120 mono8, 640x480 rgb8) starts `sim_node` with lockstep:=true
in its own process (pinned to one CPU when there are two or more; this process on another)
and drives RosRaceEnv with random actions of the default action space (seeded; episode
resets included, as in training). The policy's observation is 160x120 gray in every case,
so the 640x480 run also pays the resize. Then the in-process RaceEnv with the same actions.
Ends with one JSON line. Targets: >= 1,000 steps/s at 160x120 mono8, >= 100 at 640x480 rgb8
(a line says whether they were met; the exit code is 0 either way, as for the other benchmarks).
"""

from __future__ import annotations

import os

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 50))

import argparse
import json
import signal
import subprocess
import sys
import time

import numpy as np

from deepracer_rl.env import RaceEnv
from deepracer_rl.observation import ObservationSpec

TARGETS = {"steps_per_s_160": 1000.0, "steps_per_s_640": 100.0}
SETTINGS = (("steps_per_s_160", 160, 120, "mono8"), ("steps_per_s_640", 640, 480, "rgb8"))
OBSERVATION = ObservationSpec(160, 120, grayscale=True)


def run_steps(env, actions: np.ndarray) -> float:
    """Steps/s of `env` over `actions` (resetting at episode ends)."""
    env.reset(seed=0)
    for a in actions[:50]:  # warm-up: caches, DDS buffers
        if any(env.step(int(a))[2:4]):
            env.reset()
    env.reset(seed=1)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
    return len(actions) / (time.perf_counter() - start)


def start_sim(width: int, height: int, encoding: str, cpu: int | None) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "deepracer_rl.ros.sim_node",
        "--ros-args",
        "-p",
        "lockstep:=true",
        "-p",
        f"image_width:={width}",
        "-p",
        f"image_height:={height}",
        "-p",
        f"encoding:={encoding}",
        "--log-level",
        "warn",
    ]
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    return subprocess.Popen(cmd, start_new_session=True, preexec_fn=pin)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--no-pin", action="store_true", help="do not pin the two processes to CPUs")
    parser.add_argument("--profile", action="store_true", help="cProfile the bridge side of the 160x120 run")
    args = parser.parse_args()

    cpus = sorted(os.sched_getaffinity(0))
    sim_cpu = bench_cpu = None
    if not args.no_pin and len(cpus) >= 2:
        sim_cpu, bench_cpu = cpus[0], cpus[1]
        os.sched_setaffinity(0, {bench_cpu})
    from deepracer_rl.ros.bridge import RosRaceEnv

    env_probe = RaceEnv(observation=OBSERVATION)
    actions = np.random.default_rng(0).integers(env_probe.action_space.n, size=args.steps)
    env_probe.close()

    results: dict[str, float] = {}
    for key, width, height, encoding in SETTINGS:
        proc = start_sim(width, height, encoding, sim_cpu)
        env = None
        try:
            env = RosRaceEnv(observation=OBSERVATION, timeout=10.0)
            if args.profile and width == 160:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.enable()
                rate = run_steps(env, actions)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
            else:
                rate = run_steps(env, actions)
        finally:
            if env is not None:
                env.close()
            stop(proc)
        results[key] = round(rate, 1)
        print(
            f"lockstep over DDS, camera {width}x{height} {encoding} -> 160x120 gray: {rate:,.0f} steps/s "
            f"(target >= {TARGETS[key]:,.0f})",
            flush=True,
        )

    env = RaceEnv(observation=OBSERVATION)
    results["inprocess_steps_per_s"] = round(run_steps(env, actions), 1)
    env.close()
    print(f"in-process RaceEnv, 160x120 gray: {results['inprocess_steps_per_s']:,.0f} steps/s")
    missed = [k for k, v in TARGETS.items() if results[k] < v]
    print("targets met" if not missed else f"targets missed: {', '.join(missed)} (a busy machine? see --no-pin)")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
