"""Time to a first complete lap of reinvent_base, training speed and lap time vs the baseline.

Trains the demo configuration (`deepracer_rl.demo.demo_config`: what `make demo` trains) from
scratch with several seeds, stopping each run as soon as an evaluation lap (from the start line,
deterministic policy) completes; then, with `--full`, trains seed 0 for the demo's budget and
evaluates its best model over 3 laps as the demo does. The time to the first lap includes the run's
start (environments, reward process) and is bounded below by the evaluation interval: a lap is only
seen at an evaluation. Ends with one JSON line:
{"minutes_to_first_lap": median, "steps_to_first_lap": median, "train_steps_per_s": …, "best_lap_s": …,
 "baseline_lap_s": …}

`--against KEY=VALUE …` also trains the demo configuration with these TrainConfig fields changed
(e.g. `eval_every=2000 learning_rate=0.001`), alternately with the demo's own per seed (and per full
run) in the same process, and adds "variant" (the same figures), "overrides" and the ratios variant /
demo (`minutes_to_first_lap_ratio`, ...) to the JSON line.

`--isolation` instead measures what reward isolation costs: the demo configuration trained for
`--isolation-steps` with the reward in a child process and in the training process, alternately,
`--repeats` times each, in one run (no evaluations or checkpoints during training; the wall time of
train() includes its start and its final evaluation lap, the same for both). One JSON line:
{"isolated_steps_per_s", "in_process_steps_per_s", "isolated_over_in_process", and the same per CPU second}
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from deepracer_rl.algorithms import load_model
from deepracer_rl.config import TrainConfig
from deepracer_rl.demo import DEMO_TRACK
from deepracer_rl.demo import demo_config as make_demo_config
from deepracer_rl.evaluate_runs import evaluate_target
from deepracer_rl.rundir import RunDir
from deepracer_rl.train import evaluate_model, train


def demo_config(
    seed: int, steps: int, minutes: float, stop_when_lapping: bool, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """The demo's training run, with `overrides` (TrainConfig fields) applied."""
    config = dataclasses.replace(
        make_demo_config(seed, steps, minutes), stop_when_lapping=stop_when_lapping, **(overrides or {})
    )
    config.validate()
    return config


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE items as TrainConfig fields, each value converted to the field's default's type."""
    defaults = TrainConfig()
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--against {item}: expected FIELD=VALUE with a TrainConfig field")
        default = getattr(defaults, key)
        kind = type(default) if default is not None else float
        overrides[key] = (text.lower() in ("1", "true", "yes")) if kind is bool else kind(text)
    return overrides


def first_lap(out: Path) -> tuple[int | None, float | None]:
    """Steps and lap time (s) of the run's first evaluation that completed every lap (evaluations.csv)."""
    path = RunDir(out).evaluations_csv
    if path.exists():
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if int(row["completed_laps"]) == int(row["laps"]):
                    return int(row["timesteps"]), min(float(t) for t in row["lap_times_s"].split())
    return None, None


def to_first_lap(seed: int, args: argparse.Namespace, overrides: dict[str, Any], out: Path) -> dict[str, Any]:
    """One run from scratch until its first evaluation lap: minutes (inf without a lap), steps, steps/s."""
    started = time.time()
    summary = train(demo_config(seed, args.steps, args.minutes, True, overrides), out)
    elapsed = (time.time() - started) / 60.0
    step, lap = first_lap(out)
    return {
        "minutes": elapsed if step is not None else float("inf"),
        "steps": step,
        "lap_s": lap,
        "rate": summary["timesteps"] / max(1e-9, elapsed * 60.0),
    }


def full_run(args: argparse.Namespace, overrides: dict[str, Any], out: Path) -> dict[str, Any]:
    """Seed 0 for the demo's budget, its best model evaluated over 3 laps as the demo does."""
    train(demo_config(0, args.steps, args.minutes, False, overrides), out)
    run = RunDir(out)
    report = evaluate_model(load_model(run.model_to_use()), run.load_config(), run, laps=3)
    return report.as_dict()


def figures(runs: list[dict[str, Any]], full: dict[str, Any] | None) -> dict[str, Any]:
    steps = [r["steps"] for r in runs]
    result: dict[str, Any] = {
        "minutes_to_first_lap": round(statistics.median(r["minutes"] for r in runs), 2),
        "minutes_to_first_lap_per_seed": [round(r["minutes"], 2) for r in runs],
        "steps_to_first_lap": statistics.median(steps) if None not in steps else None,
        "steps_to_first_lap_per_seed": steps,
        "train_steps_per_s": round(statistics.median(r["rate"] for r in runs), 1),
    }
    if full is not None:
        times = full["lap_times_s"]
        result.update(
            full_completed_laps=full["completed_laps"],
            full_lap_times_s=times,
            full_mean_lap_s=round(sum(times) / len(times), 3) if times else None,
        )
    return result


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
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per run (default: the demo's)")
    parser.add_argument("--steps", type=int, default=300_000, help="steps per run at most (default: the demo's)")
    parser.add_argument("--against", nargs="+", metavar="FIELD=VALUE", help="also train the demo with these changes")
    parser.add_argument("--full", action="store_true", help="also train seed 0 for the whole budget")
    parser.add_argument("--isolation", action="store_true", help="measure the cost of reward isolation instead")
    parser.add_argument("--isolation-steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.isolation:
        isolation_cost(args.isolation_steps, args.repeats)
        return

    overrides = parse_overrides(args.against or [])
    variants = [("demo", {})] + ([("variant", overrides)] if args.against else [])
    baseline = evaluate_target(None, track=DEMO_TRACK, laps=1, driver="baseline").report
    baseline_lap = baseline.best_lap_s
    print(f"baseline pure-pursuit lap of {DEMO_TRACK}: {baseline_lap:.2f} s")

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
    fulls: dict[str, dict[str, Any] | None] = {name: None for name, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name, changes in variants:
                result = to_first_lap(seed, args, changes, Path(tmp) / f"{name}_seed{seed}")
                runs[name].append(result)
                print(
                    f"{name} seed {seed}: first lap after {result['minutes']:.2f} min, {result['steps']} steps "
                    f"({result['rate']:.0f} steps/s), lap {result['lap_s']} s",
                    flush=True,
                )
        if args.full:
            for name, changes in variants:
                fulls[name] = full_run(args, changes, Path(tmp) / f"{name}_full")
                print(f"{name} full budget seed 0: {fulls[name]}", flush=True)

    result = figures(runs["demo"], fulls["demo"])
    laps = [r["lap_s"] for rs in runs.values() for r in rs if r["lap_s"]]
    laps += [t for full in fulls.values() if full for t in full["lap_times_s"]]
    result["best_lap_s"] = round(min(laps), 2) if laps else None
    result["baseline_lap_s"] = round(baseline_lap, 2)
    if args.against:
        variant = figures(runs["variant"], fulls["variant"])
        result.update(variant=variant, overrides=overrides)
        for key in ("minutes_to_first_lap", "steps_to_first_lap", "train_steps_per_s", "full_mean_lap_s"):
            old, new = result.get(key), variant.get(key)
            if old and new and old != float("inf") and new != float("inf"):
                result[f"{key}_ratio"] = round(new / old, 3)
    print(json.dumps(result))
    sys.exit(0 if all(r["minutes"] != float("inf") for rs in runs.values() for r in rs) else 1)


if __name__ == "__main__":
    main()
