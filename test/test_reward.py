"""Reward functions: DeepRacer-style files run on params from real track positions, the
params dict has every DeepRacer key with the right types and values, and every kind of
broken file is refused with a message naming the file (and the line where there is one).
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from track_sets import REPRESENTATIVE_TRACKS

from deepracer_rl.reward import (
    DEFAULT_REWARD,
    EXAMPLES_DIR,
    PARAM_KEYS,
    RewardFunction,
    RewardFunctionError,
    build_params,
    sample_params,
    validate_reward,
)
from deepracer_rl.track import Track

DATA = Path(__file__).resolve().parent / "data" / "rewards"

# The params keys of the DeepRacer developer guide (reward functions, "Input parameters").
DESIGN_KEYS = {
    "all_wheels_on_track",
    "x",
    "y",
    "heading",
    "distance_from_center",
    "is_left_of_center",
    "is_offtrack",
    "is_crashed",
    "is_reversed",
    "progress",
    "steps",
    "speed",
    "steering_angle",
    "track_width",
    "track_length",
    "waypoints",
    "closest_waypoints",
    "projection_distance",
    "sim_time",
}
OBJECT_LISTS = {
    "objects_distance",
    "objects_heading",
    "objects_left_of_center",
    "objects_location",
    "objects_speed",
}

# The shipped examples (centre line, all wheels on track, zig-zag penalty, waypoint heading,
# progress per step, centre line + speed) and the ones written for the tests.
REWARD_FILES = sorted(EXAMPLES_DIR.glob("*.py")) + sorted(DATA.glob("*.py"))


@pytest.fixture(scope="module", params=REPRESENTATIVE_TRACKS)  # 120 params per track: track_sets.py
def track_params(request) -> tuple[Track, list[dict]]:
    track = Track.load(request.param)
    return track, sample_params(track, count=120, seed=7)


def write(tmp_path: Path, source: str, name: str = "reward.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return path


# ---- good reward functions ----------------------------------------------------------------
def test_the_examples_cover_the_developer_guide_styles():
    names = {p.stem for p in REWARD_FILES}
    assert {
        "follow_centerline",
        "all_wheels_on_track",
        "zigzag_penalty",
        "waypoint_heading",
        "progress_per_step",
    } <= names
    assert len(REWARD_FILES) >= 5


@pytest.mark.parametrize("path", REWARD_FILES, ids=lambda p: p.stem)
def test_reward_functions_return_finite_numbers_on_real_positions(path, track_params):
    track, params = track_params
    function = RewardFunction(path)
    rewards = [function(p) for p in params]
    assert all(isinstance(r, float) and math.isfinite(r) for r in rewards)
    assert min(rewards) >= 0.0


@pytest.mark.parametrize("path", REWARD_FILES, ids=lambda p: p.stem)
def test_validate_reward_summarises_the_calls(path):
    summary = validate_reward(path, Track.load("reinvent_base"), count=50)
    assert summary["file"] == str(path)
    assert summary["track"] == "reinvent_base"
    assert summary["calls"] == 50
    assert summary["min"] <= summary["mean"] <= summary["max"]


def test_rewards_respond_to_the_params_as_the_guide_intends():
    track = Track.load("reinvent_base")
    params = sample_params(track, count=200, seed=3)
    centred = [p for p in params if p["distance_from_center"] < 0.05 * p["track_width"]]
    near_edge = [p for p in params if 0.3 * p["track_width"] < p["distance_from_center"] < 0.45 * p["track_width"]]
    assert centred and near_edge
    follow = RewardFunction(EXAMPLES_DIR / "follow_centerline.py")
    assert {follow(p) for p in centred} == {1.0}
    assert {follow(p) for p in near_edge} == {0.1}
    zigzag = RewardFunction(EXAMPLES_DIR / "zigzag_penalty.py")
    hard = dict(centred[0], steering_angle=25.0)
    soft = dict(centred[0], steering_angle=5.0)
    assert zigzag(hard) < zigzag(soft)
    heading = RewardFunction(EXAMPLES_DIR / "waypoint_heading.py")
    along = dict(centred[0])  # point the car exactly along its segment
    prev, nxt = along["closest_waypoints"]
    (x0, y0), (x1, y1) = along["waypoints"][prev], along["waypoints"][nxt]
    along["heading"] = math.degrees(math.atan2(y1 - y0, x1 - x0))
    across = dict(along, heading=(along["heading"] + 180.0 + 90.0) % 360.0 - 180.0)
    assert heading(along) == 1.0 and heading(across) == 0.5
    avoid = RewardFunction(DATA / "avoid_objects.py")
    p = centred[0]
    with_object = dict(
        p,
        closest_objects=[0, 0],
        objects_location=[(p["x"] + 0.3, p["y"])],
        objects_left_of_center=[p["is_left_of_center"]],
    )
    assert avoid(with_object) < avoid(p)


def test_the_default_reward_is_follow_the_centre_line():
    assert RewardFunction().path == DEFAULT_REWARD == EXAMPLES_DIR / "follow_centerline.py"


def test_module_level_imports_work(tmp_path):
    path = write(
        tmp_path,
        """
        import math
        from math import hypot

        SCALE = math.sqrt(4.0)

        def reward_function(params):
            return float(hypot(3.0, 4.0) / SCALE + math.cos(0.0))
        """,
    )
    assert RewardFunction(path)({}) == 3.5


# ---- the params dict ----------------------------------------------------------------------
def test_params_have_every_deepracer_key_with_the_right_types(track_params):
    track, params = track_params
    n = len(track.waypoints)
    assert any(p["is_reversed"] for p in params) == track.closed  # loops are driven both ways
    for p in params:
        assert DESIGN_KEYS | OBJECT_LISTS <= set(p) == set(PARAM_KEYS)
        for key in ("all_wheels_on_track", "is_left_of_center", "is_offtrack", "is_crashed", "is_reversed"):
            assert type(p[key]) is bool, key
        for key in (
            "x",
            "y",
            "heading",
            "distance_from_center",
            "progress",
            "speed",
            "steering_angle",
            "track_width",
            "track_length",
            "projection_distance",
            "sim_time",
        ):
            assert type(p[key]) is float and math.isfinite(p[key]), key
        assert type(p["steps"]) is int and p["steps"] >= 1
        assert -180.0 <= p["heading"] <= 180.0
        assert 0.0 <= p["progress"] <= 100.0
        assert -30.0 <= p["steering_angle"] <= 30.0
        assert p["speed"] > 0 and p["distance_from_center"] >= 0 and p["track_width"] > 0
        assert p["track_length"] == pytest.approx(track.length)
        assert 0.0 <= p["projection_distance"] <= track.length
        waypoints = p["waypoints"]
        assert isinstance(waypoints, list) and len(waypoints) == n
        assert all(type(w) is tuple and len(w) == 2 and type(w[0]) is float for w in waypoints)
        prev, nxt = p["closest_waypoints"]
        assert type(prev) is int and type(nxt) is int
        assert 0 <= prev < n and 0 <= nxt < n
        assert nxt == (prev + 1) % n if track.closed else nxt == prev + 1
        for key in OBJECT_LISTS:
            assert p[key] == []
        assert not (p["all_wheels_on_track"] and p["is_offtrack"])


def test_params_agree_with_the_track_geometry(track_params):
    track, params = track_params
    for p in params:
        direction = track.reversed() if p["is_reversed"] else track
        point = np.array([[p["x"], p["y"]]])
        proj = direction.project(point)
        assert p["distance_from_center"] == pytest.approx(proj.distance[0], abs=1e-9)
        assert p["is_left_of_center"] == bool(proj.is_left[0])
        assert p["projection_distance"] == pytest.approx(proj.arc_length[0], abs=1e-9)
        assert p["closest_waypoints"] == direction.closest_waypoints(point)[0].tolist()
        assert p["waypoints"][0] == tuple(direction.waypoints[0])
        assert p["is_offtrack"] == (not track.contains(point)[0])


def test_build_params_wraps_the_heading_and_reports_the_pose():
    track = Track.load("reinvent_base")
    x, y = track.waypoints[10]
    params = build_params(
        track,
        x=float(x),
        y=float(y),
        yaw=3.5,
        speed=1.5,
        steering_angle=-12.0,
        steps=1,
        progress=0.0,
        all_wheels_on_track=True,
        is_offtrack=False,
        is_reversed=False,
        sim_time=0.0,
    )
    assert params["heading"] == pytest.approx(math.degrees(3.5) - 360.0)
    assert params["distance_from_center"] == pytest.approx(0.0, abs=1e-9)
    assert params["closest_waypoints"] in ([9, 10], [10, 11])
    assert params["steering_angle"] == -12.0 and params["steps"] == 1


# ---- broken reward files ------------------------------------------------------------------
BROKEN_AT_LOAD = {
    "no reward_function": (
        """
        def reward(params):
            return 1.0
        """,
        ": defines no function named reward_function(params)",
    ),
    "no arguments": (
        """
        def reward_function():
            return 1.0
        """,
        ": reward_function must take exactly one argument (params), its signature is reward_function()",
    ),
    "two arguments": (
        """
        def reward_function(params, previous):
            return 1.0
        """,
        "its signature is reward_function(params, previous)",
    ),
    "not a function": (
        """
        reward_function = 1.0
        """,
        ": reward_function is not a function",
    ),
    "syntax error": (
        """
        def reward_function(params):
            reward = 1.0
            if reward > 0.5
                reward = 2.0
            return reward
        """,
        ", line 3: syntax error",
    ),
    "module-level error": (
        """
        import math

        WEIGHT = math.sqrt(-1)

        def reward_function(params):
            return WEIGHT
        """,
        ", line 3: error while loading the file: ValueError: math domain error",
    ),
    "module-level import of a missing module": (
        """
        import numpy_but_misspelt

        def reward_function(params):
            return 1.0
        """,
        ", line 1: error while loading the file: ModuleNotFoundError",
    ),
    "sys.exit at module level": (
        """
        import sys
        sys.exit(3)
        """,
        ", line 2: error while loading the file: SystemExit: 3",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_AT_LOAD))
def test_a_broken_reward_file_is_refused_when_loaded(case, tmp_path):
    source, message = BROKEN_AT_LOAD[case]
    path = write(tmp_path, source)
    with pytest.raises(RewardFunctionError) as info:
        RewardFunction(path)
    text = str(info.value)
    assert text.startswith(str(path)), text
    assert message in text, text


BROKEN_WHEN_CALLED = {
    "raises inside": (
        """
        def reward_function(params):
            speed = params["speed"]
            return speed / params["no_such_key"]
        """,
        ", line 3: reward_function raised KeyError: 'no_such_key'",
    ),
    "divides by zero": (
        """
        def reward_function(params):
            return 1.0 / (params["steps"] - params["steps"])
        """,
        ", line 2: reward_function raised ZeroDivisionError",
    ),
    "returns None": (
        """
        def reward_function(params):
            reward = 1.0
        """,
        ": reward_function returned None (NoneType); expected a finite number",
    ),
    "returns a string": (
        """
        def reward_function(params):
            return "1.0"
        """,
        ": reward_function returned '1.0' (str); expected a finite number",
    ),
    "returns a bool": (
        """
        def reward_function(params):
            return params["all_wheels_on_track"] or True
        """,
        ": reward_function returned True (bool); expected a finite number",
    ),
    "returns NaN": (
        """
        def reward_function(params):
            return float("nan")
        """,
        ": reward_function returned nan; expected a finite number",
    ),
    "returns inf": (
        """
        import math
        def reward_function(params):
            return math.inf
        """,
        ": reward_function returned inf; expected a finite number",
    ),
    "returns 1e6": (
        """
        def reward_function(params):
            return 1e6
        """,
        ": reward_function returned 1000000.0; expected a finite number within",
    ),
    "calls sys.exit": (
        """
        import sys
        def reward_function(params):
            sys.exit("giving up")
        """,
        ", line 3: reward_function raised SystemExit: giving up",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_WHEN_CALLED))
def test_a_broken_reward_function_is_refused_when_called(case, tmp_path):
    source, message = BROKEN_WHEN_CALLED[case]
    path = write(tmp_path, source)
    function = RewardFunction(path)  # loads fine
    with pytest.raises(RewardFunctionError) as info:
        validate_reward(path, Track.load("reinvent_base"), count=10)
    text = str(info.value)
    assert text.startswith(str(path)), text
    assert message in text, text
    assert "\n  params: all_wheels_on_track=" in text and "x=" in text  # what it was given
    assert " waypoints=" not in text  # long and the same for every call
    assert function.path == path


def test_a_missing_reward_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "reward.py"
    with pytest.raises(RewardFunctionError, match="no such reward file") as info:
        RewardFunction(path)
    assert str(info.value).startswith(str(path))


def test_a_reward_file_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "reward.py"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(RewardFunctionError, match="cannot read reward file"):
        RewardFunction(path)


def test_validate_reward_needs_at_least_one_position():
    with pytest.raises(ValueError, match="at least 1"):
        validate_reward(DEFAULT_REWARD, Track.load("reinvent_base"), count=0)


# ---- the core does not need ROS -----------------------------------------------------------
def test_track_and_reward_do_not_import_rclpy():
    code = (
        "import sys\n"
        "import deepracer_rl.track, deepracer_rl.reward\n"
        "from deepracer_rl.track import Track\n"
        "from deepracer_rl.reward import validate_reward, DEFAULT_REWARD\n"
        "validate_reward(DEFAULT_REWARD, Track.load('reinvent_base'), count=3)\n"
        "ros = sorted(m for m in sys.modules if m.split('.')[0] in ('rclpy', 'rosidl_parser', 'rmw'))\n"
        "print('ROS modules:', ros)\n"
        "sys.exit(1 if ros else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
