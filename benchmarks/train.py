"""Time to a first complete lap of reinvent_base, training speed and lap time vs the baseline.

Trains the demo configuration from scratch with several seeds, stopping each run as soon as
an evaluation lap (from the start line, deterministic policy) completes; then trains one
seed for the full budget to report its best lap. Ends with one JSON line:
{"minutes_to_first_lap": median, "train_steps_per_s": …, "best_lap_s": …, "baseline_lap_s": …}

`--isolation` instead measures what reward isolation costs: the demo configuration trained for
`--isolation-steps` with the reward in a child process and in the training process, alternately,
`--repeats` times each, in one run (no evaluations or checkpoints during training; the wall time of
train() includes its start and its final evaluation lap, the same for both). One JSON line:
{"isolated_steps_per_s", "in_process_steps_per_s", "isolated_over_in_process", and the same per CPU second}
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from deepracer_rl.algorithms import load_model
from deepracer_rl.config import TrainConfig
from deepracer_rl.demo import DEMO_REWARD, DEMO_TRACK
from deepracer_rl.evaluate_runs import evaluate_target
from deepracer_rl.resources import share_path
from deepracer_rl.rundir import RunDir
from deepracer_rl.train import evaluate_model, train


def demo_config(seed: int, steps: int, minutes: float, stop_when_lapping: bool) -> TrainConfig:
    return TrainConfig(
        track=DEMO_TRACK,
        reward=str(DEMO_REWARD),
        metadata=str(share_path("config", "model_metadata.json")),
        steps=steps,
        seed=seed,
        max_minutes=minutes,
        stop_when_lapping=stop_when_lapping,
        eval_every=5_000,
        checkpoint_every=50_000,
        simtrace=False,
    )


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (the reward processes), s."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def isolation_cost(steps: int, repeats: int) -> None:
    """Training steps per wall second and per CPU second with the reward isolated and in process,
    alternately, in one run. CPU seconds (the reward process's included) are what the isolation
    costs; wall seconds also carry whatever else the machine is doing."""
    rates: dict[bool, list[float]] = {True: [], False: []}
    cpu_rates: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            for isolated in (True, False):
                config = demo_config(0, steps, 60.0, False)
                config.eval_every = config.checkpoint_every = steps + 1
                config.reward_isolation = isolated
                out = Path(tmp) / f"{'isolated' if isolated else 'in_process'}{repeat}"
                started, cpu_started = time.perf_counter(), _cpu_seconds()  # train()'s "minutes" is rounded
                summary = train(config, out)
                rate = summary["timesteps"] / (time.perf_counter() - started)
                cpu_rate = summary["timesteps"] / (_cpu_seconds() - cpu_started)
                rates[isolated].append(rate)
                cpu_rates[isolated].append(cpu_rate)
                label = "isolated  " if isolated else "in process"
                print(f"{label} {rate:7.1f} steps/s, {cpu_rate:7.1f} steps per CPU s", flush=True)
    wall = {k: statistics.median(v) for k, v in rates.items()}
    cpu = {k: statistics.median(v) for k, v in cpu_rates.items()}
    print(
        json.dumps(
            {
                "isolated_steps_per_s": round(wall[True], 1),
                "in_process_steps_per_s": round(wall[False], 1),
                "isolated_over_in_process": round(wall[True] / wall[False], 3),
                "isolated_steps_per_cpu_s": round(cpu[True], 1),
                "in_process_steps_per_cpu_s": round(cpu[False], 1),
                "isolated_over_in_process_cpu": round(cpu[True] / cpu[False], 3),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--minutes", type=float, default=12.0, help="budget per run")
    parser.add_argument("--steps", type=int, default=400_000)
    parser.add_argument("--full", action="store_true", help="also train seed 0 for the whole budget")
    parser.add_argument("--isolation", action="store_true", help="measure the cost of reward isolation instead")
    parser.add_argument("--isolation-steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.isolation:
        isolation_cost(args.isolation_steps, args.repeats)
        return

    baseline = evaluate_target(None, track=DEMO_TRACK, laps=1, driver="baseline").report
    baseline_lap = baseline.best_lap_s
    print(f"baseline pure-pursuit lap of {DEMO_TRACK}: {baseline_lap:.2f} s")

    minutes, rates, best_laps = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            out = Path(tmp) / f"seed{seed}"
            started = time.time()
            summary = train(demo_config(seed, args.steps, args.minutes, True), out)
            elapsed = (time.time() - started) / 60.0
            run = RunDir(out)
            report = evaluate_model(load_model(run.model_to_use()), run.load_config(), run, laps=1)
            lapped = report.completed_laps == 1
            rate = summary["timesteps"] / max(1e-9, elapsed * 60.0)
            rates.append(rate)
            minutes.append(elapsed if lapped else float("inf"))
            if report.best_lap_s:
                best_laps.append(report.best_lap_s)
            print(
                f"seed {seed}: {'first lap' if lapped else 'NO lap'} after {elapsed:.2f} min, "
                f"{summary['timesteps']} steps ({rate:.0f} steps/s), lap {report.best_lap_s}",
                flush=True,
            )
        if args.full:
            out = Path(tmp) / "full"
            train(demo_config(0, args.steps, args.minutes, False), out)
            run = RunDir(out)
            report = evaluate_model(load_model(run.model_to_use()), run.load_config(), run, laps=3)
            print(f"full budget seed 0: {report.as_dict()}")
            if report.best_lap_s:
                best_laps.append(report.best_lap_s)

    result = {
        "minutes_to_first_lap": round(statistics.median(minutes), 2),
        "train_steps_per_s": round(statistics.median(rates), 1),
        "best_lap_s": round(min(best_laps), 2) if best_laps else None,
        "baseline_lap_s": round(baseline_lap, 2),
    }
    print(json.dumps(result))
    sys.exit(0 if result["best_lap_s"] is not None else 1)


if __name__ == "__main__":
    main()
