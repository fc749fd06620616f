"""Objects on the track of DeepRacer's object-avoidance and head-to-bot races, for N worlds at once.

DeepRacer's simapp (aws-deepracer-community/deepracer-simapp, `bundle/markov/agent_ctrl/
obstacles_agent_ctrl.py`, `bot_cars_agent_ctrl.py`, `track_geom/track_data.py`) is the model:

- `RaceObjects`: the world-config values (DeepRacer's key names, defaults and meanings),
  parsed from a mapping (a YAML world config) with errors that name the key.
- `ObjectWorld`: W independent worlds (one per learner car, as each DeepRacer worker has its
  own Gazebo world), each with its obstacles (placed fixed, random or from `OBJECT_POSITIONS`)
  and bot cars (driving a lane at `BOT_CAR_SPEED`, changing lanes at random times), reset per
  world and stepped together with `dt`.
- `collisions`: learner car footprints against the objects of their world (oriented rectangles).
- `objects_params`: the `objects_*` reward params, `closest_objects` and `object_in_camera`,
  as `TrackData.get_object_reward_params` builds them.
- `crash_reset_pose`: where DeepRacer puts a car back after it hit an obstacle.

Poses are (x, y, yaw) in metres and radians, world (track) frame. Object poses are the centre
of the object's footprint (DeepRacer's model origin). A learner car's pose is the project's
`base_link` (rear axle, see `car.py`); DeepRacer's car model origin is midway between the
axles, so `car_centres` moves half a wheelbase forward.
"""

from __future__ import annotations

import difflib
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .car import CarSpec
from .track import Track

# ---- DeepRacer facts ----------------------------------------------------------------------

# Obstacle models' box sizes (length along x, width along y, height; metres): the <box> or the
# mesh <scale> of `bundle/models/<type>/model.sdf` (the meshes are unit boxes scaled to size).
OBSTACLE_SIZES: dict[str, tuple[float, float, float]] = {
    "box_obstacle": (0.4, 0.3, 0.25),
    "deepracer_box_obstacle": (0.36, 0.265, 0.24),
    "amazon_box_obstacle": (0.4, 0.3, 0.25),
}
OBSTACLE_TYPES = tuple(OBSTACLE_SIZES)
# Footprints DeepRacer uses for collisions and the camera test (`track_geom/constants.py`
# ObstacleDimensions, applied in `TrackData.get_object_bounding_rect`): (along the object's
# heading, across it), metres. Every obstacle type gets the box footprint (the SDF box plus a
# 0.1 m buffer); bot cars and the learner cars get the car footprint.
BOX_FOOTPRINT = (0.5, 0.4)
CAR_FOOTPRINT = (0.32352, 0.1961)
# Heights of an object's origin above the ground (`agent_ctrl/constants.py` OBSTACLE_Z, BOT_CAR_Z).
OBSTACLE_Z = 0.1
BOT_CAR_Z = 0.0
# A bot car's visible box height (m): the camera's height on the car (the camera sits on top;
# the same stand-in as `camera.car_box`).
BOT_CAR_HEIGHT = 0.13
# The reward params' car point is the front of the car: 0.14 m ahead of the model origin
# (`agent_ctrl/constants.py` RELATIVE_POSITION_OF_FRONT_OF_CAR).
FRONT_OF_CAR = 0.14
# The frustum of `object_in_camera` (`cameras/frustum.py`): near and far planes (m) and the
# image aspect (height / width); pose, pitch and field of view are the car's camera (CarSpec,
# equal to the simapp's figures within a millimetre).
FRUSTUM_NEAR = 0.2
FRUSTUM_FAR = 300.0
FRUSTUM_ASPECT = 480.0 / 640.0
# Colours the in-process camera draws objects in (RGB): stand-ins for the models' textures (the
# white box, the DeepRacer-branded box, the cardboard Amazon box, the bot car's shell), not
# measured from DeepRacer's meshes.
OBSTACLE_RGB: dict[str, tuple[int, int, int]] = {
    "box_obstacle": (225, 225, 225),
    "deepracer_box_obstacle": (120, 70, 190),
    "amazon_box_obstacle": (190, 140, 90),
}
BOT_CAR_RGB = (200, 45, 45)
# Obstacles keep this much track (m, along the centre line, both ways) clear around a
# learner car's start when placed at random; not a DeepRacer figure (DeepRacer only starts
# its layout MIN_DISTANCE_BETWEEN_OBSTACLES after the start line).
START_CLEARANCE = 1.0
# A start that touches an object, or has one within START_CLEARANCE ahead, moves back this far at a time, at most so
# often (`clear_start`; not a DeepRacer figure: DeepRacer's cars start on the line).
START_BACKOFF_M, START_BACKOFF_STEPS = 0.1, 20
MAX_PLACEMENT_TRIES = 200
# Two obstacles in opposite lanes must leave this much road between them (m, along the centre line, end
# to end) in a random layout: the car crosses the road in that space. DeepRacer's placement keeps only
# MIN_DISTANCE_BETWEEN_OBSTACLES (2 % of the length: 0.35 m on reinvent_base) between centres, so it can
# put a box in each lane 0.3 m apart on a 0.76 m road, a layout no car can pass; ours draws such a
# layout again (not a DeepRacer figure: two car lengths).
SLALOM_GAP = 2.0 * CAR_FOOTPRINT[0]

OBSTACLE, BOT_CAR = "obstacle", "bot_car"


class WorldConfigError(ValueError):
    """A world-config value is missing, malformed or out of range; the message names the key."""


class PlacementError(ValueError):
    """Objects cannot be placed as asked (too many for the track)."""


# ---- the world config ---------------------------------------------------------------------


def _to_bool(key: str, value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise WorldConfigError(f"{key}: expected true or false, got {value!r}")


def _to_int(key: str, value: object, low: int = 0) -> int:
    if isinstance(value, bool):
        raise WorldConfigError(f"{key}: expected a whole number >= {low}, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise WorldConfigError(f"{key}: expected a whole number >= {low}, got {value!r}") from None
    if not math.isfinite(number) or number != int(number) or number < low:
        raise WorldConfigError(f"{key}: expected a whole number >= {low}, got {value!r}")
    return int(number)


def _to_float(key: str, value: object, low: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool):
        raise WorldConfigError(f"{key}: expected a number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise WorldConfigError(f"{key}: expected a number, got {value!r}") from None
    if not math.isfinite(number) or number < low or (strict and number == low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise WorldConfigError(f"{key}: expected a finite number {bound}, got {value!r}")
    return number


def _to_positions(key: str, value: object) -> tuple[tuple[float, int], ...]:
    """DeepRacer's OBJECT_POSITIONS: a list of "progress,lane" strings (progress a fraction of the
    track length in [0, 1), lane 1 = inner, -1 = outer); pairs [progress, lane] are accepted too."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise WorldConfigError(f'{key}: expected a list of "progress,lane" items, got {value!r}')
    out = []
    for n, item in enumerate(value):
        parts = item.split(",") if isinstance(item, str) else item
        where = f"{key}[{n}]"
        if isinstance(parts, str) or not isinstance(parts, Sequence) or len(parts) != 2:
            raise WorldConfigError(f'{where}: expected "progress,lane" (e.g. "0.25,1"), got {item!r}')
        fraction = _to_float(where, parts[0])
        if fraction >= 1.0:
            raise WorldConfigError(f"{where}: progress is a fraction of the track length in [0, 1), got {parts[0]!r}")
        try:
            lane = int(float(parts[1]))
        except (TypeError, ValueError):
            lane = 0
        if lane not in (1, -1) or float(parts[1]) != lane:
            raise WorldConfigError(f"{where}: lane is 1 (inner) or -1 (outer), got {parts[1]!r}")
        out.append((fraction, lane))
    return tuple(out)


@dataclass(frozen=True)
class RaceObjects:
    """DeepRacer's world-config values for obstacles, bot cars and their penalties.

    Field names are DeepRacer's keys in lower case; defaults are the simapp's. Two defaults
    depend on the phase and are None here: `penalty_seconds` (2 s in evaluation, 0 in training)
    and `collision_penalty` (5 s in evaluation, 0 in training); `penalties()` resolves them.
    `min_distance_between_obstacles` is a percentage of the track length (as the simapp reads
    it), `min_distance_between_bot_cars` metres.
    """

    number_of_obstacles: int = 0
    randomize_obstacle_locations: bool = False
    object_positions: tuple[tuple[float, int], ...] = ()  # overrides the two above
    obstacle_type: str = "box_obstacle"
    is_obstacle_bot_car: bool = False
    min_distance_between_obstacles: float = 2.0
    number_of_bot_cars: int = 0
    bot_car_speed: float = 0.2
    randomize_bot_car_locations: bool = False
    is_lane_change: bool = False
    lower_lane_change_time: float = 3.0
    upper_lane_change_time: float = 5.0
    lane_change_distance: float = 1.0
    min_distance_between_bot_cars: float = 2.0
    penalty_seconds: float | None = None
    collision_penalty: float | None = None
    reset_behind_dist: float = 1.0

    def __post_init__(self) -> None:
        key = self.key
        object.__setattr__(self, "number_of_obstacles", _to_int(key("number_of_obstacles"), self.number_of_obstacles))
        object.__setattr__(self, "number_of_bot_cars", _to_int(key("number_of_bot_cars"), self.number_of_bot_cars))
        for name in ("randomize_obstacle_locations", "is_obstacle_bot_car", "randomize_bot_car_locations"):
            object.__setattr__(self, name, _to_bool(key(name), getattr(self, name)))
        object.__setattr__(self, "is_lane_change", _to_bool(key("is_lane_change"), self.is_lane_change))
        object.__setattr__(self, "object_positions", _to_positions(key("object_positions"), self.object_positions))
        if self.obstacle_type not in OBSTACLE_SIZES:
            raise WorldConfigError(
                f"{key('obstacle_type')}: {self.obstacle_type!r} is not a DeepRacer obstacle; one of {OBSTACLE_TYPES}"
            )
        object.__setattr__(self, "bot_car_speed", _to_float(key("bot_car_speed"), self.bot_car_speed, strict=True))
        object.__setattr__(
            self,
            "lane_change_distance",
            _to_float(key("lane_change_distance"), self.lane_change_distance, strict=True),
        )
        for name in (
            "min_distance_between_obstacles",
            "lower_lane_change_time",
            "upper_lane_change_time",
            "min_distance_between_bot_cars",
            "reset_behind_dist",
        ):
            object.__setattr__(self, name, _to_float(key(name), getattr(self, name)))
        for name in ("penalty_seconds", "collision_penalty"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _to_float(key(name), getattr(self, name)))
        if self.upper_lane_change_time < self.lower_lane_change_time:
            raise WorldConfigError(
                f"{key('upper_lane_change_time')}: {self.upper_lane_change_time:g} s is below "
                f"{key('lower_lane_change_time')} ({self.lower_lane_change_time:g} s)"
            )

    @staticmethod
    def key(name: str) -> str:
        """DeepRacer's world-config key of a field."""
        return name.upper()

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object], strict: bool = True) -> RaceObjects:
        """Read DeepRacer's keys (e.g. `NUMBER_OF_OBSTACLES: 3`) from a world-config mapping.

        Keys are matched case-insensitively. With `strict`, a key this class does not know is an
        error naming it (and the closest known keys); without, other keys are ignored (a full
        DRfC world config has many more).
        """
        if not isinstance(mapping, Mapping):
            raise WorldConfigError(f"world config: expected a mapping of DeepRacer keys, got {type(mapping).__name__}")
        known = {f.name.upper(): f.name for f in fields(cls)}
        values: dict[str, object] = {}
        for raw, value in mapping.items():
            name = str(raw).strip().upper()
            if name not in known:
                if strict:
                    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
                    hint = f"; did you mean {' or '.join(close)}?" if close else ""
                    raise WorldConfigError(f"{raw}: not a world-config key of obstacles or bot cars{hint}")
                continue
            values[known[name]] = value
        return cls(**values)  # type: ignore[arg-type]

    def to_mapping(self) -> dict[str, object]:
        """DeepRacer's keys and values (OBJECT_POSITIONS as "progress,lane" strings)."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "object_positions":
                value = [f"{p:g},{lane}" for p, lane in value]
            out[self.key(f.name)] = value
        return out

    @property
    def obstacle_count(self) -> int:
        """Obstacles in the world: OBJECT_POSITIONS' length when given, else NUMBER_OF_OBSTACLES."""
        return len(self.object_positions) if self.object_positions else self.number_of_obstacles

    @property
    def count(self) -> int:
        return self.obstacle_count + self.number_of_bot_cars

    def penalties(self, evaluation: bool) -> tuple[float, float]:
        """(PENALTY_SECONDS, COLLISION_PENALTY) in seconds: DeepRacer's defaults are 2 and 5 in
        evaluation (`evaluation_worker.py`), 0 and 0 in training (`rollout_worker.py`)."""
        penalty = self.penalty_seconds if self.penalty_seconds is not None else (2.0 if evaluation else 0.0)
        collision = self.collision_penalty if self.collision_penalty is not None else (5.0 if evaluation else 0.0)
        return penalty, collision


# DeepRacer's other world-config / training-params keys (DRfC's `run.env` DR_* settings and the
# simapp's training params), accepted in a --world-config file and left to other options.
OTHER_WORLD_KEYS = frozenset(
    {
        "WORLD_NAME",
        "RACE_TYPE",
        "CHANGE_START_POSITION",
        "ALTERNATE_DRIVING_DIRECTION",
        "START_POSITION_OFFSET",
        "REVERSE_DIR",
        "ENABLE_DOMAIN_RANDOMIZATION",
        "NUMBER_OF_EPISODES",
        "NUMBER_OF_TRIALS",
        "NUMBER_OF_RESETS",
        "OFF_TRACK_PENALTY",
        "IS_CONTINUOUS",
        "CAR_NAME",
        "DISPLAY_NAME",
        "RACER_NAME",
        "BODY_SHELL_TYPE",
        "CAR_COLOR",
        "SIMTRACE_S3_BUCKET",
        "SIMTRACE_S3_PREFIX",
        "METRICS_S3_BUCKET",
        "METRICS_S3_OBJECT_KEY",
        "MODEL_METADATA_FILE_S3_KEY",
        "SAGEMAKER_SHARED_S3_BUCKET",
        "SAGEMAKER_SHARED_S3_PREFIX",
        "AWS_REGION",
        "KINESIS_VIDEO_STREAM_NAME",
        "VIDEO_JOB_TYPE",
        "MP4_S3_BUCKET",
        "MP4_S3_OBJECT_PREFIX",
        "ROBOMAKER_SIMULATION_JOB_ACCOUNT_ID",
        "LEADERBOARD_TYPE",
        "LEADERBOARD_NAME",
    }
)


RACE_TYPES = ("time_trial", "object_avoidance", "head_to_bot")
# What a race type brings when the config does not say: DRfC's run.env defaults
# (DR_OA_NUMBER_OF_OBSTACLES=6, DR_H2B_NUMBER_OF_BOT_CARS=3).
RACE_TYPE_DEFAULTS: dict[str, dict[str, object]] = {
    "time_trial": {},
    "object_avoidance": {"NUMBER_OF_OBSTACLES": 6},
    "head_to_bot": {"NUMBER_OF_BOT_CARS": 3},
}


def read_world_config(path: str | Path) -> dict[str, object]:
    """The keys of a world-config file (YAML, or JSON by its .json suffix), upper-cased: DeepRacer's
    obstacle and bot-car keys and RACE_TYPE; DeepRacer's other keys (`OTHER_WORLD_KEYS`: WORLD_NAME,
    ...) are dropped. Errors name the file."""
    import json

    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorldConfigError(f"{path}: cannot read the world config ({exc.strerror or exc})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise WorldConfigError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise WorldConfigError(f"{path}: expected a mapping of DeepRacer keys (NUMBER_OF_OBSTACLES: 3, ...)")
    out: dict[str, object] = {}
    for raw, value in data.items():
        key = str(raw).strip().upper()
        if key == "RACE_TYPE" or key not in OTHER_WORLD_KEYS:
            out[key] = value
    return out


def world_objects_for(
    race_type: str | None,
    mapping: Mapping[str, object],
    where: str = "world config",
    race_type_name: str = "--race-type",
) -> RaceObjects:
    """The obstacles and bot cars of a race type (time_trial, object_avoidance, head_to_bot; or
    the mapping's RACE_TYPE) and DeepRacer's keys in `mapping`, which override the type's
    defaults (`RACE_TYPE_DEFAULTS`). Without a type, the keys alone decide. A time trial with
    objects, an object-avoidance race without obstacles or a head-to-bot race without bot cars
    is an error naming `where` and the key; `race_type_name` is how errors name `race_type` (the
    CLI's option, sim_node's parameter)."""
    values = {str(k).strip().upper(): v for k, v in mapping.items()}
    given = values.pop("RACE_TYPE", None)
    if given is not None:
        text = str(given).strip().lower()
        if text not in RACE_TYPES:
            raise WorldConfigError(
                f"{where}: RACE_TYPE {given!r} is not one of {', '.join(t.upper() for t in RACE_TYPES)}"
            )
        if race_type is not None and race_type != text:
            raise WorldConfigError(f"{where}: RACE_TYPE {given} disagrees with {race_type_name} {race_type}")
        race_type = text
    if race_type is not None and race_type not in RACE_TYPES:
        raise WorldConfigError(f"{race_type_name} {race_type!r} is not one of {', '.join(RACE_TYPES)}")
    try:
        objects = RaceObjects.from_mapping({**RACE_TYPE_DEFAULTS.get(race_type or "", {}), **values})
    except WorldConfigError as exc:
        raise WorldConfigError(f"{where}: {exc}") from None
    if race_type == "time_trial" and objects.count:
        raise WorldConfigError(
            f"{where}: a time trial has no obstacles or bot cars, but NUMBER_OF_OBSTACLES/OBJECT_POSITIONS give "
            f"{objects.obstacle_count} and NUMBER_OF_BOT_CARS {objects.number_of_bot_cars}; choose object_avoidance "
            "or head_to_bot"
        )
    if race_type == "object_avoidance" and objects.obstacle_count == 0:
        raise WorldConfigError(f"{where}: an object-avoidance race needs NUMBER_OF_OBSTACLES of at least 1")
    if race_type == "head_to_bot" and objects.number_of_bot_cars == 0:
        raise WorldConfigError(f"{where}: a head-to-bot race needs NUMBER_OF_BOT_CARS of at least 1")
    return objects


def race_objects_from(
    race_type: str | None,
    path: str | Path | None,
    options: Mapping[str, object],
    label: Callable[[str], str],
    options_name: str = "the race options",
) -> RaceObjects | None:
    """A race's obstacles and bot cars from a race type, a world-config file and per-key values
    (DeepRacer's key -> value, which override the file's): the `--race-type`, `--world-config` and
    per-key options of the CLI, and the same parameters of `sim_node`. None when none is given.

    Each value is checked alone first, so a bad one is named by `label(key)` (the option or the
    parameter: "--number-of-obstacles", "parameter 'number_of_obstacles'"); other errors name the
    file and/or `options_name`."""
    checked: dict[str, object] = {}
    for key, value in options.items():
        try:
            RaceObjects.from_mapping({key: value})
        except WorldConfigError as exc:
            shown = " ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
            raise WorldConfigError(f"{label(key)} {shown}: {str(exc).removeprefix(key + ': ')}") from None
        checked[key] = value
    if path is None and race_type is None and not checked:
        return None
    mapping = read_world_config(path) if path is not None else {}
    where = " and ".join(
        part for part in (str(path) if path else "", options_name if checked or race_type else "") if part
    )
    return world_objects_for(race_type, {**mapping, **checked}, where=where, race_type_name=label("RACE_TYPE"))


def load_world_config(path: str | Path) -> RaceObjects:
    """`RaceObjects` from a world-config file with DeepRacer's keys (e.g. DRfC's training params:
    NUMBER_OF_OBSTACLES: 3; RACE_TYPE: OBJECT_AVOIDANCE brings DRfC's defaults); DeepRacer's other
    keys (`OTHER_WORLD_KEYS`: WORLD_NAME, ...) are ignored; any other key is an error that names
    it and the file, as is every bad value."""
    return world_objects_for(None, read_world_config(path), where=str(path))


# ---- geometry helpers ---------------------------------------------------------------------


def car_centres(poses: np.ndarray, car: CarSpec) -> np.ndarray:
    """(N, 3) DeepRacer model origins (midway between the axles) of base_link poses (N, 3)."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
    ahead = car.wheelbase / 2.0
    out = poses.copy()
    out[:, 0] += ahead * np.cos(poses[:, 2])
    out[:, 1] += ahead * np.sin(poses[:, 2])
    return out


def rectangle_corners(centres: np.ndarray, half: np.ndarray) -> np.ndarray:
    """(..., 4, 2) corners of oriented rectangles: centres (..., 3) x, y, yaw; half (..., 2) half
    sizes along and across the yaw. Counter-clockwise from the back right corner."""
    centres = np.asarray(centres, dtype=np.float64)
    half = np.broadcast_to(np.asarray(half, dtype=np.float64), centres.shape[:-1] + (2,))
    c, s = np.cos(centres[..., 2]), np.sin(centres[..., 2])
    signs = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    a = signs[:, 0] * half[..., None, 0]  # along
    b = signs[:, 1] * half[..., None, 1]  # across
    x = centres[..., None, 0] + c[..., None] * a - s[..., None] * b
    y = centres[..., None, 1] + s[..., None] * a + c[..., None] * b
    return np.stack([x, y], axis=-1)


def rectangles_overlap(a: np.ndarray, half_a: np.ndarray, b: np.ndarray, half_b: np.ndarray) -> np.ndarray:
    """True where oriented rectangles a and b (broadcast) intersect: separating-axis test.

    a, b: (..., 3) centre x, y and yaw; half_a, half_b: (..., 2) half sizes along and across.
    Touching edges count as overlapping.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ha = np.asarray(half_a, dtype=np.float64)
    hb = np.asarray(half_b, dtype=np.float64)
    ua = np.stack([np.cos(a[..., 2]), np.sin(a[..., 2])], axis=-1)  # along a
    va = np.stack([-ua[..., 1], ua[..., 0]], axis=-1)  # across a
    ub = np.stack([np.cos(b[..., 2]), np.sin(b[..., 2])], axis=-1)
    vb = np.stack([-ub[..., 1], ub[..., 0]], axis=-1)
    d = b[..., :2] - a[..., :2]
    separated = np.zeros(np.broadcast_shapes(d.shape[:-1], ua.shape[:-1], ub.shape[:-1]), dtype=bool)
    for axis in (ua, va, ub, vb):
        dist = np.abs(np.sum(d * axis, axis=-1))
        ra = ha[..., 0] * np.abs(np.sum(ua * axis, axis=-1)) + ha[..., 1] * np.abs(np.sum(va * axis, axis=-1))
        rb = hb[..., 0] * np.abs(np.sum(ub * axis, axis=-1)) + hb[..., 1] * np.abs(np.sum(vb * axis, axis=-1))
        separated |= dist > ra + rb
    return ~separated


def corners_inside(a: np.ndarray, half_a: np.ndarray, b: np.ndarray, half_b: np.ndarray) -> np.ndarray:
    """DeepRacer's collision rule (`TrackData.get_collided_object_name`): True where a corner
    of rectangle a lies strictly inside rectangle b (broadcast, same arguments as
    `rectangles_overlap`). It misses a corner of b poking into a's side; `rectangles_overlap`
    does not."""
    corners = rectangle_corners(np.asarray(a, dtype=np.float64), half_a)  # (..., 4, 2)
    b = np.asarray(b, dtype=np.float64)[..., None, :]
    hb = np.asarray(half_b, dtype=np.float64)[..., None, :]
    d = corners - b[..., :2]
    c, s = np.cos(b[..., 2]), np.sin(b[..., 2])
    along = d[..., 0] * c + d[..., 1] * s
    across = -d[..., 0] * s + d[..., 1] * c
    return ((np.abs(along) < hb[..., 0]) & (np.abs(across) < hb[..., 1])).any(axis=-1)


def _segments_nearest(points: np.ndarray, line: np.ndarray, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Nearest points on a polyline (M, 2) to points (P, 2), and the direction (rad) of its segment."""
    ring = np.vstack([line, line[:1]]) if closed else line
    a, d = ring[:-1], np.diff(ring, axis=0)
    dd = np.maximum(np.einsum("ij,ij->i", d, d), 1e-18)
    r = points[:, None, :] - a[None]
    t = np.clip(np.einsum("pij,ij->pi", r, d) / dd, 0.0, 1.0)
    near = a[None] + t[..., None] * d[None]
    k = np.argmin(np.sum((points[:, None, :] - near) ** 2, axis=-1), axis=1)
    rows = np.arange(len(points))
    return near[rows, k], np.arctan2(d[k, 1], d[k, 0])


class Lanes:
    """DeepRacer's two lanes of a track (`TrackData.inner_lane`, `outer_lane`): the midpoints of
    the centre line and each border, waypoint by waypoint, in the track's driving direction."""

    INNER, OUTER = 0, 1

    def __init__(self, track: Track):
        self.track = track
        self.lines = ((track.waypoints + track.inner) / 2.0, (track.waypoints + track.outer) / 2.0)
        # As the simapp's TrackSpline: each lane point is parameterised by its projection on the
        # centre line, made monotonic across the start of a loop.
        length = track.length
        self.params = []
        for line in self.lines:
            u = track.project(line).arc_length.copy()
            if track.closed:
                i = 0
                while i < len(u) and u[i] >= 0.5 * length:
                    u[i] -= length
                    i += 1
                j = len(u) - 1
                while j > 0 and u[j] <= 0.5 * length:
                    u[j] += length
                    j -= 1
                u = np.append(u, u[0] + length)
                line = np.vstack([line, line[:1]])
            self.params.append((np.maximum.accumulate(u), line))

    def obstacle_pose(self, arc: np.ndarray, lane: np.ndarray) -> np.ndarray:
        """(M, 3) DeepRacer's obstacle poses: the point of `lane` nearest to the centre line's point
        at `arc` metres, facing along that lane segment (`lane.interpolate(lane.project(...))`)."""
        arc = np.asarray(arc, dtype=np.float64).reshape(-1)
        lane = np.asarray(lane).reshape(-1)
        centre, _ = self.track.point_at(arc)
        out = np.zeros((len(arc), 3))
        for k in (self.INNER, self.OUTER):
            rows = np.flatnonzero(lane == k)
            if len(rows):
                xy, yaw = _segments_nearest(centre[rows], self.lines[k], self.track.closed)
                out[rows, :2], out[rows, 2] = xy, yaw
        return out

    def point(self, arc: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """(..., 2) points at centre-line arc `arc` (m, wrapping on loops) between the lanes:
        offset 0 = inner lane, 1 = outer lane. Each lane is its points, parameterised by their
        centre-line projection (the simapp fits a cubic spline through them; this is linear)."""
        arc = np.asarray(arc, dtype=np.float64)
        length = self.track.length
        out = []
        for u, line in self.params:
            s = u[0] + np.mod(arc - u[0], length) if self.track.closed else arc
            out.append(np.stack([np.interp(s, u, line[:, 0]), np.interp(s, u, line[:, 1])], axis=-1))
        w = np.asarray(offset, dtype=np.float64)[..., None]
        return out[0] + w * (out[1] - out[0])


# ---- the objects of N worlds --------------------------------------------------------------


@dataclass
class ObjectState:
    """The objects of W worlds: obstacles first, then bot cars (DeepRacer's object order).

    poses (W, K, 3) centre x, y, yaw; speeds (W, K) m/s; kinds (K,) OBSTACLE or BOT_CAR;
    footprint (K, 2) DeepRacer's collision footprint (along, across), metres; size (K, 3) the
    visible box (length, width, height), metres; z (K,) origin height (m).
    """

    poses: np.ndarray
    speeds: np.ndarray
    kinds: tuple[str, ...]
    footprint: np.ndarray
    size: np.ndarray
    z: np.ndarray

    colours: np.ndarray | None = None  # (K, 3) RGB the camera draws each object in

    @property
    def count(self) -> int:
        return len(self.kinds)

    def take(self, rows: np.ndarray) -> ObjectState:
        """The objects of worlds `rows` (in that order)."""
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        return ObjectState(
            self.poses[rows], self.speeds[rows], self.kinds, self.footprint, self.size, self.z, self.colours
        )

    def box_params(self) -> np.ndarray:
        """(W, K, 6) the camera's boxes (`camera.CarBoxes.params`): x, y, yaw, length, width, height."""
        w, k = self.poses.shape[:2]
        out = np.empty((w, k, 6))
        out[..., :3] = self.poses
        out[..., 3:] = self.size[None]
        return out


@dataclass
class _BotCars:
    """Bot-car state of W worlds, B cars each (distances are unwrapped centre-line metres)."""

    start: np.ndarray  # (W, B) distance at episode start
    lane: np.ndarray  # (W, B) current lane 0 inner / 1 outer
    elapsed: np.ndarray  # (W,) seconds driven (pauses excluded)
    time: np.ndarray  # (W,) seconds since the episode start
    pause: np.ndarray  # (W,) seconds left standing
    change_from: np.ndarray  # (W, B) distance where the next lane change starts
    change_to: np.ndarray  # (W, B) ... and ends (inf: none scheduled)
    change_at: np.ndarray  # (W, B) time of the next lane-change check (inf: never)


class ObjectWorld:
    """Obstacles and bot cars of W worlds on one track (one world per learner car).

    `reset(rows, ...)` places a fresh layout in the given worlds (a new episode); `step(dt)`
    drives every world's bot cars; `state()` gives the objects. Random choices come from one
    generator seeded at construction (`reseed` to change), so a seed gives the same layouts.
    """

    def __init__(self, config: RaceObjects, track: Track, worlds: int, seed: int | None = None):
        if worlds < 1:
            raise ValueError(f"worlds must be >= 1, got {worlds}")
        self.config = config
        self.track = track
        self.lanes = Lanes(track)
        self.worlds = worlds
        self.rng = np.random.default_rng(seed)
        n_obs, n_bot = config.obstacle_count, config.number_of_bot_cars
        obstacle_bot = config.is_obstacle_bot_car
        car_size = (*CAR_FOOTPRINT, BOT_CAR_HEIGHT)
        obstacle_size = car_size if obstacle_bot else OBSTACLE_SIZES[config.obstacle_type]
        obstacle_foot = CAR_FOOTPRINT if obstacle_bot else BOX_FOOTPRINT
        self.kinds = (OBSTACLE,) * n_obs + (BOT_CAR,) * n_bot
        self.footprint = np.array([obstacle_foot] * n_obs + [CAR_FOOTPRINT] * n_bot, dtype=np.float64).reshape(-1, 2)
        self.size = np.array([obstacle_size] * n_obs + [car_size] * n_bot, dtype=np.float64).reshape(-1, 3)
        self.z = np.array([BOT_CAR_Z if obstacle_bot else OBSTACLE_Z] * n_obs + [BOT_CAR_Z] * n_bot, dtype=np.float64)
        obstacle_rgb = BOT_CAR_RGB if obstacle_bot else OBSTACLE_RGB[config.obstacle_type]
        self.colours = np.array([obstacle_rgb] * n_obs + [BOT_CAR_RGB] * n_bot, dtype=np.float32).reshape(-1, 3)
        self.obstacles = np.zeros((worlds, n_obs, 3))
        b = n_bot
        self.bots = _BotCars(
            start=np.zeros((worlds, b)),
            lane=np.zeros((worlds, b), dtype=np.int8),
            elapsed=np.zeros(worlds),
            time=np.zeros(worlds),
            pause=np.zeros(worlds),
            change_from=np.full((worlds, b), np.inf),
            change_to=np.full((worlds, b), np.inf),
            change_at=np.full((worlds, b), np.inf),
        )
        self.reset(np.arange(worlds))

    def reseed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    # -- obstacles --
    def obstacle_layout(self, keep_clear: Sequence[float] = ()) -> np.ndarray:
        """(K, 3) one layout of the obstacles, DeepRacer's `_compute_obstacle_poses`.

        OBJECT_POSITIONS: each at its fraction of the track length in its lane. Otherwise K
        distances evenly spaced from MIN_DISTANCE_BETWEEN_OBSTACLES (percent of the length) to
        1 m before the end, in lanes inner, outer, inner, ...; with RANDOMIZE_OBSTACLE_LOCATIONS
        each distance moves at random between its neighbours (keeping the minimum distance) and
        each lane is a coin flip. A random layout is drawn again until no two footprints overlap,
        none lies within START_CLEARANCE of an arc in `keep_clear` (the learner's start) and
        every two neighbours in opposite lanes leave SLALOM_GAP between them (ours, not DeepRacer's).
        """
        cfg, length = self.config, self.track.length
        n = cfg.obstacle_count
        if n == 0:
            return np.zeros((0, 3))
        if cfg.object_positions:
            arcs = np.array([p for p, _ in cfg.object_positions]) * length
            lanes = np.array([Lanes.OUTER if lane == -1 else Lanes.INNER for _, lane in cfg.object_positions])
            return self.lanes.obstacle_pose(arcs, lanes)
        gap = cfg.min_distance_between_obstacles / 100.0 * length
        first, last = gap, length - 1.0
        even = np.linspace(first, last, n)
        if not cfg.randomize_obstacle_locations:
            return self.lanes.obstacle_pose(even, np.arange(n) % 2)
        half = self.footprint[:n] / 2.0
        for _ in range(MAX_PLACEMENT_TRIES):
            arcs = even.copy()
            for i in self.rng.permutation(n):
                lo = first if i == 0 else arcs[i - 1] + gap
                hi = last if i == n - 1 else arcs[i + 1] - gap
                if lo < hi:
                    arcs[i] = self.rng.uniform(lo, hi)
            lanes = self.rng.integers(0, 2, n)
            # The cheap rules on arcs and lanes first, then the poses and the exact overlap.
            if not self._passable(arcs, lanes, half[:, 0]) or not self._start_clear(arcs, half, keep_clear):
                continue
            poses = self.lanes.obstacle_pose(arcs, lanes)
            if self._apart(poses, half):
                return poses
        raise PlacementError(
            f"cannot place {n} obstacles at random on {self.track.name} ({length:.1f} m) without overlaps "
            f"and {START_CLEARANCE:g} m clear of the start after {MAX_PLACEMENT_TRIES} tries; use fewer obstacles"
        )

    def _passable(self, arcs: np.ndarray, lanes: np.ndarray, half_length: np.ndarray) -> bool:
        """Whether every two neighbouring obstacles in opposite lanes leave SLALOM_GAP between them."""
        order = np.argsort(arcs)
        arcs, lanes, half_length = arcs[order], lanes[order], half_length[order]
        ends = np.diff(arcs) - half_length[1:] - half_length[:-1]
        opposite = lanes[1:] != lanes[:-1]
        if self.track.closed and len(arcs) > 1:
            ends = np.append(ends, arcs[0] + self.track.length - arcs[-1] - half_length[0] - half_length[-1])
            opposite = np.append(opposite, lanes[0] != lanes[-1])
        return not (opposite & (ends < SLALOM_GAP)).any()

    def _start_clear(self, arcs: np.ndarray, half: np.ndarray, keep_clear: Sequence[float]) -> bool:
        """Whether every obstacle is START_CLEARANCE (plus its half length) along the track from each arc
        of `keep_clear`."""
        if not len(keep_clear):
            return True
        d = np.abs(arcs[:, None] - np.asarray(keep_clear, dtype=np.float64)[None])
        if self.track.closed:
            d = np.minimum(d, self.track.length - d)
        return not (d < START_CLEARANCE + half[:, :1]).any()

    def _apart(self, poses: np.ndarray, half: np.ndarray) -> bool:
        """Whether no two obstacle footprints (half sizes `half`) at `poses` overlap."""
        n = len(poses)
        # Only boxes whose circumscribed circles meet can overlap: the exact test for those alone.
        reach = np.hypot(half[:, 0], half[:, 1])
        apart = np.hypot(*(poses[:, None, :2] - poses[None, :, :2]).transpose(2, 0, 1))
        near = apart < reach[:, None] + reach[None]
        near[np.arange(n), np.arange(n)] = False
        if not near.any():
            return True
        overlap = rectangles_overlap(poses[:, None], half[:, None], poses[None], half[None])
        overlap[np.arange(n), np.arange(n)] = False
        return not overlap.any()

    # -- bot cars --
    def _bot_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """Start distances and lanes of the bot cars, DeepRacer's `_compute_bot_car_initial_states`."""
        cfg = self.config
        n = cfg.number_of_bot_cars
        gap, last = cfg.min_distance_between_bot_cars, self.track.length - 1.0
        arcs = np.linspace(gap, last, n)
        if not cfg.randomize_bot_car_locations:
            return arcs, (np.arange(n) % 2).astype(np.int8)
        for i in self.rng.permutation(n):
            lo = gap if i == 0 else arcs[i - 1] + gap
            hi = last if i == n - 1 else arcs[i + 1] - gap
            if lo < hi:
                arcs[i] = self.rng.uniform(lo, hi)
        return arcs, self.rng.integers(0, 2, n).astype(np.int8)

    def reset(self, rows: Sequence[int] | np.ndarray, keep_clear: Sequence[float] | None = None) -> None:
        """New episodes in worlds `rows`: new obstacle layouts and bot cars back at their starts.

        `keep_clear`: one centre-line arc (m) per row, the learner car's start there (random
        layouts keep START_CLEARANCE around it); default: the start line (arc 0).
        """
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        clear = [0.0] * len(rows) if keep_clear is None else list(np.asarray(keep_clear, dtype=np.float64).reshape(-1))
        if len(clear) != len(rows):
            raise ValueError(f"keep_clear needs one arc per reset world ({len(rows)}), got {len(clear)}")
        cfg, bots = self.config, self.bots
        for r, arc in zip(rows.tolist(), clear):
            self.obstacles[r] = self.obstacle_layout([arc])
            if cfg.number_of_bot_cars:
                bots.start[r], bots.lane[r] = self._bot_layout()
        bots.elapsed[rows] = 0.0
        bots.time[rows] = 0.0
        bots.pause[rows] = 0.0
        bots.change_from[rows] = np.inf
        bots.change_to[rows] = np.inf
        # DeepRacer checks lane changes from time 0 when IS_LANE_CHANGE (end time 0), never otherwise.
        bots.change_at[rows] = 0.0 if cfg.is_lane_change else np.inf
        if cfg.is_lane_change and cfg.number_of_bot_cars:
            self._schedule_lane_changes(rows)

    def _schedule_lane_changes(self, rows: np.ndarray) -> None:
        """DeepRacer's `_compute_bot_car_lane_changes` for the bot cars whose check time has come:
        finish the change under way (swap lanes), then start the next one after a uniform
        LOWER..UPPER_LANE_CHANGE_TIME wait, taking LANE_CHANGE_DISTANCE of track."""
        cfg, bots = self.config, self.bots
        due = (bots.time[rows, None] >= bots.change_at[rows]) & np.isfinite(bots.change_at[rows])
        if not due.any():
            return
        w, b = np.nonzero(due)
        w = rows[w]
        finished = np.isfinite(bots.change_to[w, b])
        bots.lane[w[finished], b[finished]] ^= 1
        wait = self.rng.uniform(cfg.lower_lane_change_time, cfg.upper_lane_change_time, len(w))
        duration = cfg.lane_change_distance / cfg.bot_car_speed
        travelled = bots.start[w, b] + bots.elapsed[w] * cfg.bot_car_speed
        bots.change_from[w, b] = travelled + wait * cfg.bot_car_speed
        bots.change_to[w, b] = bots.change_from[w, b] + cfg.lane_change_distance
        bots.change_at[w, b] = bots.time[w] + wait + duration

    def step(self, dt: float) -> None:
        """Advance every world's bot cars by dt seconds of sim time (pauses first run out)."""
        if dt < 0:
            raise ValueError(f"dt must be >= 0, got {dt}")
        bots = self.bots
        standing = np.minimum(bots.pause, dt)
        bots.pause -= standing
        bots.elapsed += dt - standing
        bots.time += dt
        if self.config.is_lane_change and self.config.number_of_bot_cars:
            self._schedule_lane_changes(np.arange(self.worlds))

    def pause_bots(self, rows: Sequence[int] | np.ndarray, seconds: float) -> None:
        """Stop the bot cars of worlds `rows` for `seconds` (DeepRacer: PENALTY_SECONDS after a
        learner car that is ahead is hit by a bot car); pending lane changes wait as long."""
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        self.bots.pause[rows] += seconds
        self.bots.change_at[rows] += seconds

    def bot_poses(self) -> np.ndarray:
        """(W, B, 3) bot car poses: on their lane at their distance, blended across during a change."""
        cfg, bots = self.config, self.bots
        if not cfg.number_of_bot_cars:
            return np.zeros((self.worlds, 0, 3))
        travelled = bots.start + bots.elapsed[:, None] * cfg.bot_car_speed
        changing = np.isfinite(bots.change_to)
        start = np.where(changing, bots.change_from, 0.0)
        span = np.where(changing, bots.change_to - start, 1.0)
        lane = bots.lane.astype(np.float64)

        def offset(at: np.ndarray) -> np.ndarray:
            s = np.clip((at - start) / span, 0.0, 1.0)
            s = np.where(changing, s * s * (3.0 - 2.0 * s), 0.0)  # smooth start and end
            return lane + (1.0 - 2.0 * lane) * s

        eps = 0.05  # m ahead, for the heading
        here = self.lanes.point(travelled, offset(travelled))
        ahead = self.lanes.point(travelled + eps, offset(travelled + eps))
        yaw = np.arctan2(ahead[..., 1] - here[..., 1], ahead[..., 0] - here[..., 0])
        return np.concatenate([here, yaw[..., None]], axis=-1)

    def params(self, car_poses: np.ndarray, car: CarSpec, track: Track | None = None) -> list[dict[str, object]]:
        """`objects_params` of the learner cars (car w in world w) on `track` (default: the
        world's track; give its `reversed()` for cars driving the other way)."""
        speed = self.config.bot_car_speed if self.config.number_of_bot_cars else None
        return objects_params(self.track if track is None else track, car_poses, self.state(), car, speed)

    def state(self) -> ObjectState:
        """The objects of every world now."""
        n_bot = self.config.number_of_bot_cars
        poses = np.concatenate([self.obstacles, self.bot_poses()], axis=1)
        speeds = np.zeros(poses.shape[:2])
        if n_bot:
            moving = (self.bots.pause <= 0.0).astype(np.float64)
            speeds[:, -n_bot:] = self.config.bot_car_speed * moving[:, None]
        return ObjectState(poses, speeds, self.kinds, self.footprint, self.size, self.z, self.colours)


# ---- collisions, params, resets -----------------------------------------------------------


def collisions(
    car_poses: np.ndarray, objects: ObjectState, car: CarSpec, rule: str = "overlap"
) -> tuple[np.ndarray, np.ndarray]:
    """Which learner cars touch an object of their world: (W,) bool and (W,) the first object's
    index (-1 for none). car_poses (W, 3) are base_link poses; the car's footprint is DeepRacer's
    (CAR_FOOTPRINT round the model origin). rule "overlap": the rectangles intersect; rule
    "deepracer": a car corner lies inside the object (the simapp's test, see `corners_inside`)."""
    centres = car_centres(car_poses, car)
    if objects.count == 0:
        return np.zeros(len(centres), dtype=bool), np.full(len(centres), -1)
    test = {"overlap": rectangles_overlap, "deepracer": corners_inside}.get(rule)
    if test is None:
        raise ValueError(f"rule must be 'overlap' or 'deepracer', got {rule!r}")
    car_half = np.array(CAR_FOOTPRINT) / 2.0
    hit = test(centres[:, None], car_half, objects.poses, objects.footprint[None] / 2.0)  # (W, K)
    first = np.where(hit.any(axis=1), np.argmax(hit, axis=1), -1)
    return hit.any(axis=1), first


def _inside(points: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon for points (P, 2) and a closed ring (M, 2)."""
    a, b = ring, np.roll(ring, -1, axis=0)
    px, py = points[:, 0:1], points[:, 1:2]
    straddles = (a[:, 1] > py) != (b[:, 1] > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = a[:, 0] + (py - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return np.count_nonzero(straddles & (px < x_cross), axis=1) % 2 == 1


def objects_left_of_center(track: Track, points: np.ndarray) -> np.ndarray:
    """DeepRacer's `objects_left_of_center`: inside the region between the centre line and the
    inner border, XOR the inner border being on the right (a clockwise loop, or a reversed one).

    On a loop the region is the polygon of the centre line minus that of the inner border; on an
    open track it is the centre line and the inner border walked back, as the simapp builds it.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    centre, inner = track.waypoints, track.inner
    if track.closed:
        region = _inside(points, centre) ^ _inside(points, inner)
        x, y = centre[:, 0], centre[:, 1]
        inner_left = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)) > 0  # counter-clockwise
    else:
        region = _inside(points, np.vstack([centre, inner[::-1]]))
        d = np.diff(centre, axis=0)
        r = inner[:-1] - centre[:-1]
        inner_left = float(np.sum(d[:, 0] * r[:, 1] - d[:, 1] * r[:, 0])) > 0
    return region ^ (not inner_left)


def in_camera(car_poses: np.ndarray, points: np.ndarray, car: CarSpec) -> np.ndarray:
    """(W, P) True where 3D points (W, P, 3) lie inside the camera frustum of car W at base_link
    pose (W, 3): the simapp's `Frustum` (near FRUSTUM_NEAR, far FRUSTUM_FAR, the camera's
    horizontal FOV and pitch, FRUSTUM_ASPECT), strict inequalities as its plane test."""
    cam = car.camera
    poses = np.asarray(car_poses, dtype=np.float64).reshape(-1, 3)
    c, s = np.cos(poses[:, 2]), np.sin(poses[:, 2])
    origin = np.stack([poses[:, 0] + c * cam.x - s * cam.y, poses[:, 1] + s * cam.x + c * cam.y], axis=-1)
    v = np.asarray(points, dtype=np.float64)
    dx, dy, dz = v[..., 0] - origin[:, None, 0], v[..., 1] - origin[:, None, 1], v[..., 2] - cam.z
    ahead = dx * c[:, None] + dy * s[:, None]
    left = -dx * s[:, None] + dy * c[:, None]
    cp, sp = math.cos(cam.pitch), math.sin(cam.pitch)
    forward = ahead * cp - dz * sp  # pitched down by cam.pitch
    up = ahead * sp + dz * cp
    tan_h = math.tan(cam.hfov / 2.0)
    return (
        (forward > FRUSTUM_NEAR)
        & (forward < FRUSTUM_FAR)
        & (np.abs(left) < forward * tan_h)
        & (np.abs(up) < forward * tan_h * FRUSTUM_ASPECT)
    )


_ON_TRACK_CACHE: OrderedDict[tuple[int, bytes], tuple[Track, tuple[np.ndarray, np.ndarray, np.ndarray]]] = OrderedDict()
ON_TRACK_CACHE_SIZE = 16  # layouts kept (one per world and direction of a race; bot cars miss every step)


def _objects_on_track(track: Track, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W, K) arc length along the centre line (m), distance from it (m) and left of it of the
    objects at `xy` (W, K, 2); standing obstacles are measured once per layout, not every step."""
    key = (id(track), np.ascontiguousarray(xy, dtype=np.float64).tobytes())
    hit = _ON_TRACK_CACHE.get(key)
    if hit is not None and hit[0] is track:
        _ON_TRACK_CACHE.move_to_end(key)
        return hit[1]
    w_count, k = xy.shape[:2]
    flat = xy.reshape(-1, 2)
    proj = track.project(flat)
    value = (
        proj.arc_length.reshape(w_count, k),
        proj.distance.reshape(w_count, k),
        objects_left_of_center(track, flat).reshape(w_count, k),
    )
    for array in value:
        array.flags.writeable = False
    _ON_TRACK_CACHE[key] = (track, value)  # the track is held, so its id is not reused while cached
    while len(_ON_TRACK_CACHE) > ON_TRACK_CACHE_SIZE:
        _ON_TRACK_CACHE.popitem(last=False)
    return value


def objects_params(
    track: Track, car_poses: np.ndarray, objects: ObjectState, car: CarSpec, bot_car_speed: float | None = None
) -> list[dict[str, object]]:
    """The object params of each learner car, as `TrackData.get_object_reward_params` builds them.

    track: the track in the car's driving direction (`Track.reversed()` when reversed);
    car_poses (W, 3): base_link poses, car w sees the objects of world w. Keys:
    `objects_location` [[x, y], ...] (m); `objects_left_of_center` [bool]; `objects_distance`
    (m along the centre line from its start, not sorted); `objects_distance_from_center` (m);
    `objects_heading` (radians, the simapp's yaw) and `objects_speed` (m/s): in a race with bot
    cars (`bot_car_speed` given: BOT_CAR_SPEED) every object's yaw and that speed, standing or
    not, as the simapp reports them; else 0.0 for all;
    `closest_objects` [previous, next] indices of the objects behind and ahead of the front of
    the car along the centre line (wrapping); `object_in_camera`: the next object (one footprint
    corner or its centre) is in the camera frustum. Without objects the dict is empty, as the
    simapp's (the caller keeps its defaults).

    The simapp compares the next object's index with indices of a list that also holds the
    learner car itself, so its `object_in_camera` answers for the object before the next one;
    this follows the evident intent (the next object) instead.
    """
    poses = np.asarray(car_poses, dtype=np.float64).reshape(-1, 3)
    w_count, k = len(poses), objects.count
    if k == 0:
        return [{} for _ in range(w_count)]
    pdist, centre_dist, left = _objects_on_track(track, objects.poses[..., :2])
    centres = car_centres(poses, car)
    front = centres[:, :2] + FRONT_OF_CAR * np.stack([np.cos(centres[:, 2]), np.sin(centres[:, 2])], axis=-1)
    car_pdist = track.project(front).arc_length
    order = np.argsort(pdist, axis=1, kind="stable")
    sorted_d = np.take_along_axis(pdist, order, axis=1)
    nxt = np.sum(sorted_d <= car_pdist[:, None], axis=1)  # bisect_right
    prev = (nxt - 1) % k
    nxt = nxt % k
    rows = np.arange(w_count)
    prev_i, next_i = order[rows, prev], order[rows, nxt]
    # The next object's camera test points: its footprint corners and its centre, at its z.
    nxt_pose = objects.poses[rows, next_i]
    corners = rectangle_corners(nxt_pose, objects.footprint[next_i] / 2.0)  # (W, 4, 2)
    pts2 = np.concatenate([corners, nxt_pose[:, None, :2]], axis=1)
    pts = np.concatenate([pts2, np.broadcast_to(objects.z[next_i][:, None, None], (w_count, 5, 1))], axis=-1)
    seen = in_camera(poses, pts, car).any(axis=1)
    bot_race = bot_car_speed is not None
    headings = objects.poses[..., 2] if bot_race else np.zeros((w_count, k))
    speeds = np.full((w_count, k), float(bot_car_speed) if bot_race else 0.0)
    out = []
    for w in range(w_count):
        out.append(
            {
                "closest_objects": [int(prev_i[w]), int(next_i[w])],
                "objects_location": objects.poses[w, :, :2].tolist(),
                "objects_left_of_center": left[w].tolist(),
                "objects_speed": speeds[w].tolist(),
                "objects_heading": headings[w].tolist(),
                "objects_distance_from_center": centre_dist[w].tolist(),
                "objects_distance": pdist[w].tolist(),
                "object_in_camera": bool(seen[w]),
            }
        )
    return out


def clear_start(
    track: Track, pose: np.ndarray, objects: ObjectState, car: CarSpec, rule: str = "overlap"
) -> np.ndarray:
    """A learner car's start among the objects of its world (`objects` of one world): `pose`, or moved back
    along the centre line in START_BACKOFF_M steps while it touches an object or has one less than
    START_CLEARANCE ahead, where no car could steer round it (on narrow tracks DeepRacer's first
    obstacle, 2 % in, reaches the start line). Used by the race's starts, sim_node and the Gazebo spawn."""
    pose = np.asarray(pose, dtype=np.float64)
    arc = track.project(pose[None, :2]).arc_length
    object_arcs = track.project(objects.poses[0, :, :2]).arc_length
    for step in range(1, START_BACKOFF_STEPS + 1):
        ahead = object_arcs - track.project(pose[None, :2]).arc_length[0]
        if track.closed:
            ahead = np.mod(ahead + 0.5 * track.length, track.length) - 0.5 * track.length
        close = ((ahead > 0.0) & (ahead < START_CLEARANCE)).any()
        if not close and not collisions(pose[None], objects, car, rule)[0][0]:
            break
        (point,), (heading,) = track.point_at(arc - step * START_BACKOFF_M)
        pose = np.array([point[0], point[1], heading])
    return pose


def crash_reset_pose(track: Track, obstacle: np.ndarray, reset_behind_dist: float = 1.0) -> np.ndarray:
    """(3,) where DeepRacer puts a car back after it hit an obstacle at `obstacle` (x, y, ...):
    RESET_BEHIND_DIST metres before it along the centre line, in the other lane (outer when the
    obstacle is nearer the inner border), facing along that lane (`_get_car_reset_model_state`)."""
    point = np.asarray(obstacle, dtype=np.float64)[:2].reshape(1, 2)
    arc = track.project(point).arc_length[0] - reset_behind_dist
    near_inner = _segments_nearest(point, track.inner, track.closed)[0]
    near_outer = _segments_nearest(point, track.outer, track.closed)[0]
    is_inner = np.linalg.norm(point - near_inner) < np.linalg.norm(point - near_outer)
    lane = Lanes.OUTER if is_inner else Lanes.INNER
    return Lanes(track).obstacle_pose(np.array([arc]), np.array([lane]))[0]


def sample_params_with_objects(
    track: Track, objects: RaceObjects, car: CarSpec, count: int = 200, seed: int = 0
) -> list[dict[str, object]]:
    """Reward params from many real positions in a race with objects (validate-reward): those of
    `reward.sample_params`, every other one moved to 0.2-3 m behind an object in a fresh layout,
    each with its layout's `objects_*` keys, `object_in_camera` and `is_crashed` (the car touches
    an object), as a race fills them."""
    from .reward import params_at, sample_params

    rng = np.random.default_rng(seed + 1)
    worlds: dict[bool, ObjectWorld] = {}
    bot_speed = objects.bot_car_speed if objects.number_of_bot_cars else None
    out = []
    for i, params in enumerate(sample_params(track, count, seed)):
        reverse = bool(params["is_reversed"])
        direction = track.reversed() if reverse else track
        world = worlds.get(reverse)
        if world is None:
            world = worlds[reverse] = ObjectWorld(objects, direction, 1, seed + int(reverse))
        world.reset([0])
        state = world.state()
        if i % 2 == 0 and state.count:  # close behind an object, anywhere across the road
            k = int(rng.integers(state.count))
            arc = direction.project(state.poses[0, k : k + 1, :2]).arc_length[0] - rng.uniform(0.2, 3.0)
            params = params_at(track, direction, arc % direction.length, rng.uniform(-0.5, 0.5) * direction.width, rng)
        pose = np.array([[params["x"], params["y"], math.radians(float(params["heading"]))]])
        params.update(objects_params(direction, pose, state, car, bot_speed)[0])
        params["is_crashed"] = bool(collisions(pose, state, car)[0][0])
        out.append(params)
    return out


def has_close_opposite_pair(track: Track, poses: np.ndarray, within: float = 1.5) -> bool:
    """Whether two obstacles at `poses` (K, 3) stand in opposite lanes less than `within` m apart
    along the centre line (neighbours, wrapping on a loop): a slalom, the hardest layouts to drive
    (`benchmarks/race_types.py` counts them). Random layouts keep such a pair at least SLALOM_GAP
    apart end to end, so a car can pass it."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
    if len(poses) < 2:
        return False
    projection = track.project(poses[:, :2])
    order = np.argsort(projection.arc_length)
    arcs, left = projection.arc_length[order], projection.is_left[order]
    gaps = np.diff(arcs)
    pairs = left[1:] != left[:-1]
    if track.closed:
        gaps = np.append(gaps, arcs[0] + track.length - arcs[-1])
        pairs = np.append(pairs, left[-1] != left[0])
    return bool((pairs & (gaps < within)).any())
