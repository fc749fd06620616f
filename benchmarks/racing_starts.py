"""How robust a fast policy is: laps of a run's model from standing starts spread round the track.

Run: python benchmarks/racing_starts.py [RUN_OR_EXPORT] [--starts 16] [--model PATH.zip] [--track T]
An evaluation lap (`deepracer-rl evaluate`) starts on the start line only, and the policy acts
deterministically, so one lucky line can lap fast while the policy fails elsewhere. This drives
a run's best model (or --model, e.g. RUN/checkpoints/latest.zip), or an export dir (default: the
shipped models/racing_reinvent_base on --track reinvent_base), from --starts standing starts
spread evenly round the track (the training start schedule, `episode.StartRules`), deterministic,
one lap or until it leaves the track, and prints one JSON line: laps completed, their mean time (s
from standstill), mean progress and each start's status. Used for docs/racing.md ("Training
toward the limit").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from deepracer_rl.algorithms import load_model
from deepracer_rl.inference import load_policy
from deepracer_rl.rundir import RunDir
from deepracer_rl.train import race_kwargs
from deepracer_rl.vec_env import RaceVecEnv

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "racing_reinvent_base"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default=str(SHIPPED), help="a run directory or an export dir")
    parser.add_argument("--starts", type=int, default=16)
    parser.add_argument("--model", default=None, help="a model .zip of the run (default: its best model)")
    parser.add_argument("--track", default="reinvent_base", help="for an export dir (a run drives its own)")
    args = parser.parse_args()
    if (Path(args.run) / "model.onnx").exists():
        model = load_policy(args.run)
        model_path = args.run
        kwargs = dict(track=args.track, metadata=model.actions, observation=model.observation)
    else:
        run = RunDir(args.run)
        config = run.load_config()
        model_path = args.model or run.model_to_use()
        kwargs = race_kwargs(config, run)
        kwargs["reward_isolation"] = None
        model = load_model(model_path, algo=config.algo)
    env = RaceVecEnv(n_envs=args.starts, seed=123, **kwargs)
    obs = env.reset()
    ended = np.zeros(args.starts, dtype=bool)
    results: list[tuple[str, float, int] | None] = [None] * args.starts
    for _ in range(600):  # 40 s of driving: every lap ends long before
        action, _ = model.predict(obs, deterministic=True)
        obs, _, done, infos = env.step(action)
        for i in np.flatnonzero(done & ~ended):
            params = infos[i]["params"]
            results[i] = (infos[i]["episode_status"], float(params["progress"]), int(params["steps"]))
            ended[i] = True
        if ended.all():
            break
    env.close()
    laps = [steps / env.core.control_hz for status, _, steps in filter(None, results) if status == "lap_complete"]
    print(
        json.dumps(
            {
                "model": str(model_path),
                "starts": args.starts,
                "completed": len(laps),
                "mean_lap_s": round(float(np.mean(laps)), 3) if laps else None,
                "mean_progress": round(float(np.mean([r[1] if r else 0.0 for r in results])), 1),
                "statuses": [r[0] if r else "running" for r in results],
            }
        )
    )


if __name__ == "__main__":
    main()
