"""The `deepracer-rl` console script: `tracks` and `validate-reward`, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepracer_rl.reward import EXAMPLES_DIR
from deepracer_rl.track import TRACKS_DIR, Track, available_tracks

# The console script installed next to this interpreter (the project's venv).
SCRIPT = Path(sys.executable).parent / "deepracer-rl"


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "deepracer_rl.cli"]
    kwargs.setdefault("capture_output", True)
    return subprocess.run([*command, *args], text=True, timeout=60, **kwargs)


def test_tracks_json_lists_every_shipped_track():
    result = run("tracks", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == available_tracks()
    for row in rows:
        assert set(row) == {"name", "waypoints", "length_m", "width_m", "closed"}
        track = Track.load(row["name"])
        assert row["waypoints"] == len(track.waypoints)
        assert row["length_m"] == pytest.approx(track.length, abs=1e-3)
        assert row["width_m"] == pytest.approx(track.width, abs=1e-3)
        assert row["closed"] is track.closed
    assert {row["name"]: row["closed"] for row in rows}["Straight_track"] is False


def test_tracks_json_reads_a_user_file(tmp_path):
    path = tmp_path / "my_loop.npy"
    np.save(path, np.load(TRACKS_DIR / "reinvent_base.npy"))
    result = run("tracks", "--json", str(path), "Straight_track")
    assert result.returncode == 0, result.stderr
    mine, straight = json.loads(result.stdout)
    assert mine == dict(Track.load("reinvent_base").summary(), name="my_loop")
    assert straight["name"] == "Straight_track" and straight["closed"] is False


def test_tracks_prints_a_table():
    result = run("tracks")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "waypoints", "length_m", "width_m", "closed"]
    assert [line.split()[0] for line in lines[1:]] == available_tracks()
    reinvent = next(line for line in lines if line.startswith("reinvent_base "))
    assert reinvent.split()[1:] == ["118", "17.71", "0.762", "True"]


def test_tracks_refuses_a_broken_file_naming_it(tmp_path):
    path = tmp_path / "broken.npy"
    path.write_bytes(b"not numpy")
    result = run("tracks", str(path))
    assert result.returncode != 0
    assert result.stdout == ""
    assert f"deepracer-rl tracks: error: {path}: not a .npy file" in result.stderr
    assert "Traceback" not in result.stderr


def test_tracks_refuses_an_unknown_name_pointing_to_the_shipped_ones():
    result = run("tracks", "Monza")
    assert result.returncode == 2
    assert "unknown track 'Monza'" in result.stderr
    assert "`deepracer-rl tracks` lists the 95 shipped tracks" in result.stderr and "Traceback" not in result.stderr
    result = run("tracks", "reinvent2019_track_ccw")  # DeepRacer world names are case-sensitive
    assert result.returncode == 2
    assert "did you mean 'reInvent2019_track_ccw'" in result.stderr and "Traceback" not in result.stderr


def test_validate_reward_passes_a_good_file_with_a_summary():
    path = EXAMPLES_DIR / "waypoint_heading.py"
    result = run("validate-reward", str(path), "--track", "Oval_track", "--samples", "40")
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith(f"OK {path}: 40 calls on Oval_track, reward min ")
    assert " mean " in line and " max " in line


def test_validate_reward_fails_a_broken_file_with_the_clear_error(tmp_path):
    path = tmp_path / "reward.py"
    path.write_text(
        "def reward_function(params):\n"
        "    width = params['track_width']\n"
        "    return width / params['distance_from_centre']\n"
    )
    result = run("validate-reward", str(path))
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"deepracer-rl validate-reward: error: {path}, line 3: reward_function raised KeyError: 'distance_from_centre'"
    )
    assert "params: all_wheels_on_track=" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_reward_fails_a_syntax_error_with_its_line(tmp_path):
    path = tmp_path / "reward.py"
    path.write_text("def reward_function(params)\n    return 1.0\n")
    result = run("validate-reward", str(path))
    assert result.returncode != 0
    assert f"{path}, line 1: syntax error" in result.stderr


def test_validate_reward_fails_a_missing_file(tmp_path):
    result = run("validate-reward", str(tmp_path / "nope.py"))
    assert result.returncode != 0
    assert f"{tmp_path / 'nope.py'}: no such reward file" in result.stderr


def test_output_to_a_closed_pipe_is_not_a_traceback():
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone, as after `deepracer-rl tracks | head -0`
    try:
        result = run("tracks", "--json", stdout=write_end, stderr=subprocess.PIPE, capture_output=False)
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1)
