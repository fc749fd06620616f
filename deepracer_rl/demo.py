"""`make demo`: train on reinvent_base from scratch, evaluate 3 laps (with their video), export, plot, report."""

from __future__ import annotations

import json
import shutil
import time
from typing import TYPE_CHECKING

from .resources import share_path
from .reward import EXAMPLES_DIR

if TYPE_CHECKING:
    from .config import TrainConfig

DEMO_TRACK = "reinvent_base"
DEMO_REWARD = EXAMPLES_DIR / "centerline_speed.py"


def demo_config(seed: int = 0, steps: int = 300_000, minutes: float = 10.0) -> TrainConfig:
    """The demo's training run (benchmarks/train.py measures this configuration)."""
    from .config import TrainConfig

    return TrainConfig(
        track=DEMO_TRACK,
        reward=str(DEMO_REWARD),
        metadata=str(share_path("config", "model_metadata.json")),
        steps=steps,
        seed=seed,
        max_minutes=minutes,
        stop_when_lapping=False,
        # rewards on a scale the critic can fit and no update that wrecks the policy: the first lap in
        # half the minutes, no late collapse (docs/racing.md, "Faster to the first lap")
        normalize_reward=True,
        target_kl=0.02,
    )


def run_demo(out: str, minutes: float = 10.0, steps: int = 300_000, seed: int = 0) -> int:
    from .algorithms import load_model
    from .evaluate_runs import video_observer
    from .export import export_run
    from .plots import plot_run
    from .rundir import EVALUATION_RESULT, EVALUATION_VIDEO, RunDir
    from .train import evaluate_model, train
    from .video import Mp4Writer

    run = RunDir(out)
    if run.path.exists():
        shutil.rmtree(run.path)  # the demo always starts from scratch
    started = time.time()
    config = demo_config(seed, steps, minutes)
    print(f"[demo] training PPO on {DEMO_TRACK} for up to {minutes:g} min / {steps} steps -> {run.path}")
    summary = train(config, run.path)
    print(f"[demo] trained {summary['timesteps']} steps, {summary['episodes']} episodes in {summary['minutes']} min")
    model = load_model(run.model_to_use(), algo=config.algo)
    folder = run.evaluation_trajectory.parent
    folder.mkdir(parents=True, exist_ok=True)
    writer = Mp4Writer(folder / EVALUATION_VIDEO)
    try:
        report = evaluate_model(
            model,
            run.load_config(),
            run,
            laps=3,
            trajectory_csv=run.evaluation_trajectory,
            simtrace_csv=run.new_evaluation_simtrace(),
            observer=lambda core: video_observer(core, writer),
        )
    finally:
        writer.close()
    result = {"track": DEMO_TRACK, **report.as_dict(), "video": EVALUATION_VIDEO}
    (folder / EVALUATION_RESULT).write_text(json.dumps(result, indent=2) + "\n")
    export = export_run(run.path, run.export_dir)
    plots = plot_run(run.path)
    print(
        f"[demo] evaluation on {DEMO_TRACK}: {report.completed_laps}/3 laps completed, "
        f"mean progress {report.mean_progress:.1f} %, off track {report.off_track}x"
    )
    if report.lap_times_s:
        print(
            f"[demo] lap times s: {', '.join(f'{t:.2f}' for t in report.lap_times_s)} (best {report.best_lap_s:.2f} s)"
        )
    print(f"[demo] run directory: {run.path}")
    print(f"[demo] evaluation video: {folder / EVALUATION_VIDEO}")
    print(f"[demo] exported policy: {export / 'model.onnx'} + {export / 'model_metadata.json'}")
    for path in plots:
        print(f"[demo] plot: {path}")
    print(
        f"[demo] watch it in the web console: deepracer-rl console --runs {run.path.parent} "
        f"-> http://127.0.0.1:8765/runs/{run.path.name}"
    )
    print(f"[demo] total time {(time.time() - started) / 60:.1f} min")
    print(
        json.dumps(
            {
                "completed_laps": report.completed_laps,
                "laps": 3,
                "best_lap_s": report.best_lap_s,
                "mean_progress": round(report.mean_progress, 2),
            }
        )
    )
    return 0 if report.completed_laps > 0 else 1
