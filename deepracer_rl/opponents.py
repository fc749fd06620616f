"""Head-to-head pairs: two cars of one simulator racing each other, each the other's object.

DeepRacer's head-to-head race puts two learner cars on one track; each car's camera sees the
other and its `objects_*` params list the other as an object, and touching it is a collision
(crashed in training; `COLLISION_PENALTY` s and a reset in evaluation). Here the simulator's cars
are paired: car i races car `i ^ 1` (0 with 1, 2 with 3, ...). The opponent is an object of kind
bot car (`world_objects.BOT_CAR`, DeepRacer's car footprint and height) whose pose each step is
the other car's (`opponent_state`); the race (`race.RaceCore(head_to_head=True)`) judges, renders
and resets the pairs with these functions.
"""

from __future__ import annotations

import numpy as np

from .car import CarSpec
from .track import Track
from .world_objects import (
    BOT_CAR,
    BOT_CAR_HEIGHT,
    BOT_CAR_Z,
    CAR_FOOTPRINT,
    Lanes,
    ObjectState,
    car_centres,
    rectangles_overlap,
)

HEAD_TO_HEAD = "head_to_head"  # the race type's name (`--race-type head_to_head`)
# The second car of a pair starts this far (m along the centre line) behind the first, in the
# other lane: our choice for a staggered start (DeepRacer's own grid offset is not reproduced).
STAGGER_M = 1.0
# A car (re)starting alone starts STAGGER_M behind its opponent; while that pose touches the
# opponent it moves back this far, at most this often.
BACKOFF_M, BACKOFF_STEPS = 0.1, 20
OPPONENT_RGB = (40, 90, 210)  # the colour the camera draws the other car in (a stand-in, as BOT_CAR_RGB)


def opponents(n_cars: int) -> np.ndarray:
    """(N,) the index of each car's opponent: car i races car i ^ 1. N must be even."""
    if n_cars < 2 or n_cars % 2:
        raise ValueError(f"a head-to-head race pairs its cars: expected an even number of cars, got {n_cars}")
    return np.arange(n_cars) ^ 1


def opponent_state(poses: np.ndarray, speeds: np.ndarray, car: CarSpec) -> ObjectState:
    """The object each car of the pairs sees (W = N worlds of one object): its opponent, a bot-car
    object at the opponent's model origin (`car_centres`), moving at the opponent's speed (m/s).
    poses (N, 3) base_link x, y (m), yaw (rad); speeds (N,) m/s."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
    other = opponents(len(poses))
    centres = car_centres(poses, car)[other]
    return ObjectState(
        poses=centres[:, None, :],
        speeds=np.asarray(speeds, dtype=np.float64).reshape(-1)[other][:, None],
        kinds=(BOT_CAR,),
        footprint=np.array([CAR_FOOTPRINT], dtype=np.float64),
        size=np.array([[*CAR_FOOTPRINT, BOT_CAR_HEIGHT]], dtype=np.float64),
        z=np.array([BOT_CAR_Z], dtype=np.float64),
        colours=np.array([OPPONENT_RGB], dtype=np.float32),
    )


def lane_pose(track: Track, arc: float, lane: int, car: CarSpec) -> np.ndarray:
    """(3,) the base_link pose of a car whose model origin sits in `lane` (Lanes.INNER / OUTER) at
    centre-line arc `arc` (m), facing along the lane."""
    centre = Lanes(track).obstacle_pose(np.array([arc]), np.array([lane]))[0]
    back = car.wheelbase / 2.0  # base_link is this far behind the model origin (`car_centres`)
    return np.array([centre[0] - back * np.cos(centre[2]), centre[1] - back * np.sin(centre[2]), centre[2]])


def staggered_starts(track: Track, start: np.ndarray, car: CarSpec, leader: int = 0) -> np.ndarray:
    """(2, 3) the start poses of a pair at `start` (x, y, yaw on `track`, the driving direction):
    car `leader` (0 or 1) in the inner lane at the start's arc, the other STAGGER_M behind it in
    the outer lane."""
    arc = float(track.project(np.asarray(start, dtype=np.float64)[None, :2]).arc_length[0])
    out = np.empty((2, 3))
    out[leader] = lane_pose(track, arc, Lanes.INNER, car)
    out[1 - leader] = lane_pose(track, arc - STAGGER_M, Lanes.OUTER, car)
    return out


def start_behind(track: Track, opponent: np.ndarray, car: CarSpec) -> np.ndarray:
    """(3,) where a car starts alone: STAGGER_M behind its opponent's pose (base_link x, y, yaw) along
    the centre line of `track` (the driving direction), in the lane the opponent is not nearer to,
    moved back BACKOFF_M at a time (at most BACKOFF_STEPS) while the two footprints overlap."""
    opponent = np.asarray(opponent, dtype=np.float64).reshape(3)
    where = track.project(car_centres(opponent[None], car)[:, :2])
    arc = float(where.arc_length[0])
    lane = Lanes.OUTER if bool(where.is_left[0]) == _inner_is_left(track) else Lanes.INNER
    half = np.array(CAR_FOOTPRINT) / 2.0
    other = car_centres(opponent[None], car)
    pose = lane_pose(track, arc - STAGGER_M, lane, car)
    for step in range(1, BACKOFF_STEPS + 1):
        if not rectangles_overlap(car_centres(pose[None], car)[:, None], half, other[None], half[None])[0, 0]:
            break
        pose = lane_pose(track, arc - STAGGER_M - step * BACKOFF_M, lane, car)
    return pose


def _inner_is_left(track: Track) -> bool:
    """Whether the inner border lies left of the centre line in the track's driving direction."""
    d = np.diff(track.waypoints[:2], axis=0)[0]
    r = track.inner[0] - track.waypoints[0]
    return float(d[0] * r[1] - d[1] * r[0]) > 0.0


def ahead_of(track: Track, poses: np.ndarray, car: CarSpec) -> np.ndarray:
    """(N,) m along the centre line from each car's model origin forward to its opponent's (wrapping
    on a loop to -L/2..L/2): positive where the opponent is ahead."""
    centres = car_centres(np.asarray(poses, dtype=np.float64).reshape(-1, 3), car)
    arcs = track.project(centres[:, :2]).arc_length
    gap = arcs[opponents(len(arcs))] - arcs
    if track.closed:
        gap = np.mod(gap + 0.5 * track.length, track.length) - 0.5 * track.length
    return gap
