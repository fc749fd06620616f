"""Race types' speed: camera-observation env steps/s of a time trial, object avoidance and head-to-bot.

Run: python benchmarks/race_types.py [--track reinvent_base] [--cars 16] [--steps 200] [--repeats 3]
One process, pinned to one CPU where the OS allows it (as benchmarks/sim.py); steps/s count env
steps (one car, one control period, 160x120 grayscale observation, the default reward and
discrete action space, random actions, episodes reset as they end) per CPU second of this
process. The three races run in the same process, one after the other, so their figures compare.
Object avoidance: 6 boxes at random (RANDOMIZE_OBSTACLE_LOCATIONS); head-to-bot: 3 bot cars
changing lanes (IS_LANE_CHANGE). Also the fraction of steps that end an episode (crashes end
episodes early in the races with objects). The stereo + lidar row is a time trial whose
model_metadata.json asks for ["STEREO_CAMERAS", "LIDAR"] (two 160x120 grey views and the 64-beam
scan per car and step).

The scripted driver (`baseline.PurePursuitDriver`, which steers round objects) as the reference of
the races with objects: `--baseline-laps` evaluation laps (DeepRacer's evaluation rules: a
collision costs 5 s and puts the car back behind the object), each on a new layout of 3 random
boxes, and with 3 bot cars changing lanes: laps completed, laps without a collision, collisions,
and how many layouts hold two boxes in opposite lanes closer than `CLOSE_PAIR_M` centre to centre
(a slalom, the hardest layouts; random layouts keep such pairs `world_objects.SLALOM_GAP` apart end
to end, so a car can pass them). Ends with one JSON line.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sim import best_rate, pin_to_one_core  # noqa: E402

from deepracer_rl.action_space import ActionSpace  # noqa: E402
from deepracer_rl.env import RaceEnv  # noqa: E402
from deepracer_rl.evaluate import baseline_driver, run_laps  # noqa: E402
from deepracer_rl.race import RaceCore  # noqa: E402
from deepracer_rl.track import Track  # noqa: E402
from deepracer_rl.vec_env import RaceVecEnv  # noqa: E402
from deepracer_rl.world_objects import BOT_CAR, has_close_opposite_pair  # noqa: E402

RACES = {
    "time_trial": None,
    "object_avoidance_6_boxes": {"NUMBER_OF_OBSTACLES": 6, "RANDOMIZE_OBSTACLE_LOCATIONS": True},
    "head_to_bot_3_bots": {"NUMBER_OF_BOT_CARS": 3, "IS_LANE_CHANGE": True},
}
SENSOR_RACES = {"stereo_cameras_and_lidar": ["STEREO_CAMERAS", "LIDAR"]}  # time trials with other sensors


def batched(
    track: Track, cars: int, steps: int, repeats: int, objects: dict | None, metadata: str | None = None
) -> tuple[float, float, float]:
    env = RaceVecEnv(n_envs=cars, seed=0, track=track, objects=objects, metadata=metadata)
    env.reset()
    actions = np.random.default_rng(0).integers(0, env.action_space.n, (steps, cars))
    resets = 0

    def run() -> None:
        nonlocal resets
        for action in actions:
            resets += int(env.step(action)[2].sum())

    try:
        run()  # warm-up
        resets = 0
        cpu, wall = best_rate(run, steps * cars, repeats)
    finally:
        env.close()
    return cpu, wall, resets / (repeats * steps * cars)


SCRIPTED_RACES = {
    "object_avoidance_3_random_boxes": {"NUMBER_OF_OBSTACLES": 3, "RANDOMIZE_OBSTACLE_LOCATIONS": True},
    "head_to_bot_3_bots": {"NUMBER_OF_BOT_CARS": 3, "IS_LANE_CHANGE": True},
}
CLOSE_PAIR_M = 1.5  # boxes in opposite lanes nearer than this (centre to centre, along the track)
LEARNED_MODEL = "object_avoidance"  # models/object_avoidance: trained on 3 random boxes, seed 0
LEARNED_RACE = SCRIPTED_RACES["object_avoidance_3_random_boxes"]
UNSEEN_SEED = 1000  # its evaluation layouts: a stream the training never drew from


def close_opposite_pair(core: RaceCore) -> bool:
    """Whether the car's layout has two boxes in opposite lanes within CLOSE_PAIR_M of each other."""
    objects = core.car_objects()
    if objects is None or BOT_CAR in objects.kinds:
        return False
    return has_close_opposite_pair(core.track, objects.poses[0], CLOSE_PAIR_M)


def laps_among_objects(core: RaceCore, driver, laps: int) -> dict:
    """`laps` evaluation laps of one car, one layout each: completed, without a collision, collisions,
    layouts with a close opposite pair and how the other layouts went."""
    out = {"laps": laps, "completed": 0, "without_collision": 0, "collisions": 0, "close_pair_layouts": 0}
    clean_elsewhere = 0
    try:
        for _ in range(laps):
            report = run_laps(core, driver, laps=1)
            close = close_opposite_pair(core)
            clean = report.completed_laps == 1 and report.collisions == 0
            out["completed"] += report.completed_laps
            out["without_collision"] += int(clean)
            out["collisions"] += report.collisions
            out["close_pair_layouts"] += int(close)
            clean_elsewhere += int(not close and clean)
    finally:
        core.close()
    others = laps - out["close_pair_layouts"]
    out["without_collision_other_layouts"] = f"{clean_elsewhere}/{others}"
    return out


def scripted(track: Track, laps: int, objects: dict) -> dict:
    """The scripted driver's evaluation laps, one layout each (seed 0)."""
    core = RaceCore.create(track, n_cars=1, sensors=False, seed=0, objects=objects)
    return laps_among_objects(core, baseline_driver(), laps)


def learned(track: Track, laps: int, name: str = LEARNED_MODEL) -> dict | None:
    """The shipped object-avoidance policy (camera only) on layouts of `UNSEEN_SEED`, which its
    training (seed 0) never drew; None when the model is not shipped."""
    from deepracer_rl.evaluate_runs import load_subject
    from deepracer_rl.inference import shipped_models

    if name not in shipped_models():
        return None
    subject = load_subject(name)
    kwargs = {k: v for k, v in subject.race.items() if k != "track"}
    core = RaceCore.create(track, n_cars=1, seed=UNSEEN_SEED, objects=LEARNED_RACE, **kwargs)
    return laps_among_objects(core, subject.drive, laps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="reinvent_base")
    parser.add_argument("--cars", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200, help="control steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-laps", type=int, default=30, help="scripted-driver laps per race with objects")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*render_mode.*")
    where = pin_to_one_core()
    track = Track.load(args.track)
    RaceEnv(track).reset(seed=0)  # the ground texture, outside the timings
    print(f"track {track.name}, {where}, {args.cars} cars, best of {args.repeats} runs of {args.steps} control steps")
    out: dict = {"track": track.name, "cars": args.cars}
    for name, objects in RACES.items():
        cpu, wall, ends = batched(track, args.cars, args.steps, args.repeats, objects)
        out[name] = {"steps_per_s_cpu": round(cpu), "steps_per_s_wall": round(wall), "episode_ends": round(ends, 4)}
        print(f"  {name:26s} {cpu:8,.0f} steps/s CPU ({wall:,.0f} wall), {100 * ends:.1f} % of steps end an episode")
    with tempfile.TemporaryDirectory() as tmp:
        for name, sensors in SENSOR_RACES.items():
            metadata = Path(tmp) / f"{name}.json"
            metadata.write_text(json.dumps({**ActionSpace.default().to_metadata(), "sensor": sensors}))
            cpu, wall, ends = batched(track, args.cars, args.steps, args.repeats, None, str(metadata))
            out[name] = {"steps_per_s_cpu": round(cpu), "steps_per_s_wall": round(wall), "episode_ends": round(ends, 4)}
            print(
                f"  {name:26s} {cpu:8,.0f} steps/s CPU ({wall:,.0f} wall), {100 * ends:.1f} % of steps end an episode"
            )
    base = out["time_trial"]["steps_per_s_cpu"]
    for name in [*RACES, *SENSOR_RACES]:
        out[name]["of_time_trial"] = round(out[name]["steps_per_s_cpu"] / base, 3)
    out["scripted_driver"] = {}
    for name, objects in SCRIPTED_RACES.items():
        row = out["scripted_driver"][name] = scripted(track, args.baseline_laps, objects)
        print(
            f"  scripted driver, {name}: {row['completed']}/{row['laps']} laps completed, "
            f"{row['without_collision']} without a collision ({row['collisions']} collisions); "
            f"{row['close_pair_layouts']} layouts with boxes in opposite lanes < {CLOSE_PAIR_M} m apart, "
            f"the others {row['without_collision_other_layouts']} without a collision"
        )
    row = out["learned_policy"] = learned(track, args.baseline_laps)
    if row is None:
        print(f"  learned policy: models/{LEARNED_MODEL} is not shipped")
    else:
        print(
            f"  learned policy ({LEARNED_MODEL}, unseen layouts of 3 random boxes): {row['completed']}/{row['laps']} "
            f"laps completed, {row['without_collision']} without a collision ({row['collisions']} collisions); "
            f"{row['close_pair_layouts']} close-pair layouts, the others {row['without_collision_other_layouts']}"
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
