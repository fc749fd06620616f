"""Multi-track training (issue 14, item 2): --track forms, generated tracks, a track per car per
episode in the race core, the simulator's renderers per track, and the run's validation split."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepracer_rl.camera import CameraRenderer
from deepracer_rl.config import TrainConfig
from deepracer_rl.procedural import LENGTH_RANGE_M, MIN_RADIUS_M, WIDTH_RANGE_M, random_tracks
from deepracer_rl.race import RaceCore
from deepracer_rl.run_tracks import resolve_run_tracks
from deepracer_rl.sim import Simulator
from deepracer_rl.track import Track, available_tracks
from deepracer_rl.track_set import TrackSet, TrackSpecError, orientation, resolve_track_specs

REPO = Path(__file__).resolve().parents[1]
THREE = ["reinvent_base", "Oval_track", "Bowtie_track"]


# ---- --track forms ----------------------------------------------------------------------------
def test_names_globs_list_files_and_all_resolve_in_order_without_repeats(tmp_path: Path) -> None:
    assert resolve_track_specs(["Oval_track", "reinvent_base", "Oval_track"]) == ["Oval_track", "reinvent_base"]
    reinvent = resolve_track_specs(["reInvent2019_*"])
    assert reinvent and all(n.startswith("reInvent2019_") for n in reinvent)
    assert resolve_track_specs(["all"]) == available_tracks()
    route = tmp_path / "mine.npy"
    np.save(route, np.load(REPO / "deepracer_rl" / "tracks" / "Oval_track.npy"))
    listing = tmp_path / "tracks.txt"
    listing.write_text("# my tracks\nreinvent_base\nmine.npy  # next to the list\n\n", encoding="utf-8")
    assert resolve_track_specs([f"@{listing}"]) == ["reinvent_base", str(tmp_path / "mine.npy")]
    assert resolve_track_specs([str(tmp_path / "*.npy")]) == [str(route)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("nosuch*", "no shipped track name matches it"),
        ("reinvent_bas", "did you mean 'reinvent_base'"),
        ("random:0", "random:N or random:N:SEED"),
        ("random:two", "random:N or random:N:SEED"),
        ("/nonexistent/x.npy", "no such track file"),
        ("@/nonexistent/list.txt", "cannot read the list file"),
        ("", "expected a track name"),
    ],
)
def test_a_value_that_names_no_track_is_refused_naming_it(spec: str, expected: str, tmp_path: Path) -> None:
    with pytest.raises(TrackSpecError, match="--track") as caught:
        resolve_track_specs([spec], generated_dir=tmp_path)
    assert expected in str(caught.value)


def test_a_bad_line_of_a_list_file_is_named_with_its_line(tmp_path: Path) -> None:
    listing = tmp_path / "tracks.txt"
    listing.write_text("reinvent_base\nnot_a_track_at_all\n", encoding="utf-8")
    with pytest.raises(TrackSpecError, match=r"tracks.txt, line 2"):
        resolve_track_specs([f"@{listing}"])


# ---- generated tracks -------------------------------------------------------------------------
def test_random_tracks_are_deepracer_like_valid_and_reproducible(tmp_path: Path) -> None:
    drawn = random_tracks(12, seed=3)
    again = random_tracks(12, seed=3)
    for (name, rows), (name2, rows2) in zip(drawn, again):
        assert name == name2 and np.array_equal(rows, rows2)
        track = Track.from_array(rows, name)  # the unchanged checks of every shipped track
        assert track.closed
        assert LENGTH_RANGE_M[0] - 1 <= track.length <= LENGTH_RANGE_M[1] + 1
        assert WIDTH_RANGE_M[0] - 1e-6 <= np.median(track.widths) <= WIDTH_RANGE_M[1] + 1e-6
        p = track.waypoints
        a, b, c = np.roll(p, 2, axis=0), p, np.roll(p, -2, axis=0)
        cross = np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
        sides = [np.linalg.norm(u - v, axis=1) for u, v in ((b, a), (c, b), (a, c))]
        assert np.min(sides[0] * sides[1] * sides[2] / np.maximum(2 * cross, 1e-12)) >= MIN_RADIUS_M - 1e-6
    assert not np.array_equal(random_tracks(1, seed=4)[0][1], drawn[0][1])
    paths = resolve_track_specs(["random:2:7"], generated_dir=tmp_path)
    assert [Path(p).name for p in paths] == ["random_7_000.npy", "random_7_001.npy"]
    assert np.array_equal(np.load(paths[0]), random_tracks(1, seed=7)[0][1])


# ---- directions -------------------------------------------------------------------------------
def test_directions_drive_each_track_the_asked_way_round() -> None:
    tracks = TrackSet.load(THREE).tracks
    for direction in ("ccw", "cw"):
        chosen = TrackSet(tracks, direction)
        for k, track in enumerate(tracks):
            driven = track.reversed() if chosen.reverse_for(k) else track
            assert orientation(driven) == direction
    both = TrackSet(tracks, "both")
    rng = np.random.default_rng(0)
    draws = [both.draw(rng) for _ in range(200)]
    assert {k for k, _ in draws} == {0, 1, 2} and {r for _, r in draws} == {False, True}
    with pytest.raises(ValueError, match="direction"):
        TrackSet(tracks, "sideways")


# ---- the race core with a track per car ---------------------------------------------------------
def _drive_straight(core: RaceCore, steps: int) -> list[dict]:
    params = []
    for _ in range(steps):
        _, _, p = core.drive(np.zeros(core.n), np.full(core.n, 1.0))
        params.append(p)
    return params


def test_each_car_draws_a_track_per_episode_and_is_judged_and_rendered_on_it() -> None:
    core = RaceCore.create(THREE, n_cars=6, seed=1)
    try:
        seen: set[int] = set()
        for _ in range(4):
            core.reset_cars(np.arange(core.n))
            seen |= set(core.judge.car_track.tolist())
            assert np.array_equal(core.judge.car_track, core.backend.sim.car_track)
            (params,) = _drive_straight(core, 1)
            for i, p in enumerate(params):
                track = core.car_track(i)
                assert p["track_length"] == pytest.approx(track.length)
                assert len(p["waypoints"]) == len(track.waypoints)
                # the frame is that track's view from the car's pose
                pose = core.poses()[i : i + 1]
                alone = CameraRenderer(track, core.car.camera, width=160, height=120, grayscale=True)
                expected = alone.render(pose)[0]
                got = core.backend.sim.renderer_for(int(core.judge.car_track[i])).render(pose, [i])[0]
                assert np.array_equal(got, expected)
        assert seen == {0, 1, 2}
    finally:
        core.close()


def test_the_draws_are_seeded() -> None:
    def draws(seed: int) -> list[list[int]]:
        core = RaceCore.create(THREE, n_cars=4, seed=seed, sensors=False, direction="both")
        try:
            out = []
            for _ in range(5):
                core.reset_cars(np.arange(4))
                out.append(core.judge.car_track.tolist() + core.judge.reverse.astype(int).tolist())
            return out
        finally:
            core.close()

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)


def test_progress_grows_on_every_track_as_cars_drive_their_own() -> None:
    core = RaceCore.create(THREE, n_cars=3, seed=0, sensors=False)
    try:
        for k in range(3):
            core.reset_cars(np.array([k]), pose=None, track_index=k)
        steps = _drive_straight(core, 8)
        for i in range(3):
            assert core.judge.car_track[i] == i
            assert steps[-1][i]["progress"] > steps[0][i]["progress"] > 0 or steps[-1][i]["progress"] > 0
    finally:
        core.close()


def test_one_track_as_a_list_races_exactly_as_the_track_alone() -> None:
    def run(track: object) -> list:
        core = RaceCore.create(track, n_cars=2, seed=3)
        try:
            core.reset_cars(np.arange(2))
            return [p["progress"] for step in _drive_straight(core, 10) for p in step] + [core.stack.sum()]
        finally:
            core.close()

    assert run("reinvent_base") == run(["reinvent_base"])


def test_the_ros_backend_refuses_several_tracks() -> None:
    with pytest.raises(ValueError, match="races on one track"):
        RaceCore.create(THREE, n_cars=1, backend="ros", sensors=False, timeout=0.1, connect_timeout=0.1)


def test_renderers_of_tracks_no_car_is_on_stay_within_the_cache_bound() -> None:
    tracks = TrackSet.load(THREE).tracks
    sim = Simulator(tracks, n_cars=1, image_size=(80, 60), renderer_cache_bytes=0)
    for k in (1, 2, 1):
        sim.place_car(0, np.array([*tracks[k].waypoints[0], 0.0]), track_index=k)
        sim.render()
    assert set(sim._renderers) == {0, 1}  # track 0's (the default) and the one the car is on
    assert sim.renderers_built == 4  # 0, 1, 2, then 1 again: it had been dropped
    roomy = Simulator(tracks, n_cars=1, image_size=(80, 60))
    for k in (1, 2, 1):
        roomy.place_car(0, np.array([*tracks[k].waypoints[0], 0.0]), track_index=k)
    assert roomy.renderers_built == 3


# ---- the run's split ------------------------------------------------------------------------------
def test_a_large_training_set_holds_out_a_seeded_tenth_for_validation(tmp_path: Path) -> None:
    config = TrainConfig(track_specs=["all"], seed=2)
    resolved, notes = resolve_run_tracks(config, tmp_path)
    assert len(resolved.val_tracks) == 8 and not set(resolved.val_tracks) & set(resolved.tracks)
    assert len(resolved.tracks) + len(resolved.val_tracks) == len(available_tracks())
    assert any("held out" in note for note in notes)
    assert resolve_run_tracks(config, tmp_path)[0].val_tracks == resolved.val_tracks
    small, _ = resolve_run_tracks(TrainConfig(track_specs=THREE), tmp_path)
    assert small.val_tracks == THREE and small.tracks == THREE
    given, _ = resolve_run_tracks(TrainConfig(track_specs=["all"], val_track_specs=["Oval_track"]), tmp_path)
    assert given.val_tracks == ["Oval_track"] and "Oval_track" in given.tracks


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE")
    return subprocess.run(
        [sys.executable, "-m", "deepracer_rl.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_cli_trains_on_several_tracks_validates_on_held_out_ones_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = ["--out", str(out), "--n-envs", "4", "--eval-every", "2048", "--no-reward-isolation"]
    first = _cli(
        "train", *common, "--track", "reinvent_base", "--track", "Oval_track", "--track", "random:2",
        "--val-track", "random:1:9", "--direction", "both", "--eval-laps", "2", "--steps", "2048", cwd=tmp_path,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["tracks"] == ["reinvent_base", "Oval_track", "tracks/random_0_000.npy", "tracks/random_0_001.npy"]
    assert config["val_tracks"] == ["tracks/random_9_000.npy"] and config["direction"] == "both"
    assert sorted(p.name for p in (out / "tracks").iterdir()) == [
        "random_0_000.npy",
        "random_0_001.npy",
        "random_9_000.npy",
    ]
    assert "validation at" in first.stderr and "random_9_000" in first.stderr
    validation = (out / "validation.csv").read_text().splitlines()
    assert validation[0].startswith("timesteps,track,camera,completed_laps,laps")
    assert config["eval_laps"] == 2 and validation[1].split(",")[4] == "2"  # two starts per validation track
    per_track = (out / "progress_tracks.csv").read_text()
    assert "Oval_track" in per_track and "random_0_000" in per_track
    resumed = _cli("train", *common, "--resume", "--steps", "4096", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    plots = _cli("plot", str(out), cwd=tmp_path)
    assert plots.returncode == 0 and (out / "plots" / "training_tracks.png").exists(), plots.stderr
    measured = _cli("evaluate", str(out), "--laps", "1", "--json", cwd=tmp_path)  # on its validation tracks
    assert measured.returncode == 0, measured.stderr
    assert [t["track"] for t in json.loads(measured.stdout)["tracks"]] == ["random_9_000"]
    rescore = _cli("rescore", str(out), "--reward", str(REPO / "config/general/reward_function.py"), cwd=tmp_path)
    assert rescore.returncode == 2 and "multi-track run" in rescore.stderr


def test_cli_refuses_a_track_value_that_names_nothing_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _cli("train", "--out", str(out), "--track", "reinvent_base", "--track", "nosuch*", cwd=tmp_path)
    assert result.returncode == 2
    assert "--track nosuch*: no shipped track name matches it" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "config.json").exists()


def test_cli_refuses_several_tracks_over_ros_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _cli(
        "train", "--out", str(out), "--track", "reinvent_base", "--track", "Oval_track", "--backend", "ros",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "--backend ros races on one track" in result.stderr and "Traceback" not in result.stderr
    assert not (out / "config.json").exists()
