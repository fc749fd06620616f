"""The generated Gazebo worlds (worlds/), checked without running Gazebo.

worlds/ holds the worlds of the tracks in `track_sets.WORLD_TRACKS` (a world is 40-300 kB; all
95 tracks would be 7 MB), any other shipped track's world is generated on demand
(`world.world_file`); regenerating them (and `deepracer-rl world`) is byte-identical; the worlds
are well-formed SDF 1.9 with the documented Harmonic world systems and a physics step that divides
the control period, pass `gz sdf`/`ign sdf --check` and a walk against the installed SDFormat
spec; the meshes draw exactly the .npy tracks (road, border lines, dashed centre line, all facing
up); the start pose and gz sim arguments.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from gazebo_helpers import HARMONIC_SYSTEMS, REPO, run_sdf_check, spec_violations, value
from track_sets import WORLD_TRACKS

from deepracer_rl.camera import DASH_LENGTH, DASH_PERIOD, LINE_WIDTH
from deepracer_rl.cli import main as cli_main
from deepracer_rl.track import Track, TrackError, available_tracks
from deepracer_rl.world import (
    MATERIAL_FILE,
    MESH_DIR,
    PARTS,
    VARIANT_WORLDS,
    build_world,
    gz_sim_args,
    mesh_path,
    object_layout,
    object_model_names,
    object_model_z,
    parse_obj,
    physics_step,
    spawn_pose,
    start_pose,
    variant_race,
    world_file,
)
from deepracer_rl.world_objects import (
    BOT_CAR_HEIGHT,
    CAR_FOOTPRINT,
    OBSTACLE_RGB,
    OBSTACLE_SIZES,
    RaceObjects,
    collisions,
)

WORLDS = REPO / "worlds"
COORD_TOL = 0.0005 + 1e-9  # mesh coordinates are written in millimetres
WORLD_SYSTEMS = {
    "gz-sim-physics-system",
    "gz-sim-user-commands-system",
    "gz-sim-scene-broadcaster-system",
    "gz-sim-sensors-system",
}


def covered(vertices: np.ndarray, triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """True where a point lies in at least one (counter-clockwise) triangle."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))

    def side(o, q):
        return (q[None, :, 0] - o[None, :, 0]) * (points[:, None, 1] - o[None, :, 1]) - (
            q[None, :, 1] - o[None, :, 1]
        ) * (points[:, None, 0] - o[None, :, 0])

    return ((side(a, b) >= 0) & (side(b, c) >= 0) & (side(c, a) >= 0)).any(axis=1)


def distance_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    a = line[:-1]
    d = line[1:] - a
    rel = points[:, None, :] - a[None]
    t = np.clip(np.einsum("msk,sk->ms", rel, d) / np.einsum("sk,sk->s", d, d), 0.0, 1.0)
    off = rel - t[..., None] * d[None]
    return np.sqrt(np.einsum("msk,msk->ms", off, off)).min(axis=1)


def ring(track: Track, points: np.ndarray) -> np.ndarray:
    return np.vstack([points, points[:1]]) if track.closed else points


def triangle_areas(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


@pytest.fixture(scope="module")
def tracks() -> dict[str, Track]:
    return {name: Track.load(name) for name in WORLD_TRACKS}


def test_the_committed_worlds_are_the_representative_ones_with_their_meshes(tracks):
    assert set(WORLD_TRACKS) <= set(available_tracks())
    variants = {f"{name}_{race_type}" for name, race_type in VARIANT_WORLDS}
    assert {p.stem for p in WORLDS.glob("*.sdf")} == set(tracks) | variants
    expected = {mesh_path(n, part).split("/", 1)[1] for n in tracks for part in PARTS} | {MATERIAL_FILE}
    assert {p.name for p in (WORLDS / MESH_DIR).iterdir()} == expected


def test_regenerating_every_world_is_byte_identical(tracks, car):
    for _name, track in tracks.items():
        for rel, text in build_world(track, car).items():
            assert (WORLDS / rel).read_bytes() == text.encode("utf-8"), (
                f"worlds/{rel} is stale: run `deepracer-rl world --all`"
            )


def test_world_cli_writes_the_same_files(tmp_path, capsys):
    assert cli_main(["world", "Oval_track", "Straight_track", "--out", str(tmp_path)]) == 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert len(written) == 2 + 2 * len(PARTS) + 1
    for rel in written:
        assert (tmp_path / rel).read_bytes() == (WORLDS / rel).read_bytes()
    assert "wrote" in capsys.readouterr().out
    assert cli_main(["world", "--out", str(tmp_path)]) == 2  # no track named


def test_a_track_without_a_committed_world_gets_one_generated_on_demand(tmp_path, car):
    assert world_file("reinvent_base", WORLDS, tmp_path) == WORLDS / "reinvent_base.sdf"  # installed
    assert not list(tmp_path.iterdir())
    name = "2022_april_open"
    assert not (WORLDS / f"{name}.sdf").exists()
    path = world_file(name, WORLDS, tmp_path / "cache")
    assert path == tmp_path / "cache" / f"{name}.sdf"
    for rel, text in build_world(Track.load(name), car).items():
        assert (tmp_path / "cache" / rel).read_text(encoding="utf-8") == text
    with pytest.raises(TrackError, match="did you mean '2022_april_open'"):
        world_file("2022_April_open", WORLDS, tmp_path / "cache")


def test_committed_worlds_stay_small():
    total = sum(p.stat().st_size for p in WORLDS.rglob("*") if p.is_file())
    assert total < 400_000, f"worlds/ holds {total} bytes"


def test_worlds_are_well_formed_sdf_with_the_harmonic_systems(tracks, car):
    step = physics_step(car.camera.rate_hz)
    for name in tracks:
        root = ET.parse(WORLDS / f"{name}.sdf").getroot()
        assert root.tag == "sdf" and root.get("version") == "1.9"
        world = root.find("world")
        assert world.get("name") == name  # gz_control and ros_gz_sim create address /world/<track>
        plugins = {p.get("filename"): p for p in world.findall("plugin")}
        assert set(plugins) == WORLD_SYSTEMS
        for filename, elem in plugins.items():
            assert elem.get("name") == HARMONIC_SYSTEMS[filename][0]
            assert {c.tag for c in elem} <= HARMONIC_SYSTEMS[filename][1]
        assert value(plugins["gz-sim-sensors-system"], "render_engine") == "ogre2"
        physics = world.find("physics")
        step_s = float(value(physics, "max_step_size"))
        assert int(step_s * 1e9) == step.step_ns  # gz-sim's truncating duration_cast
        for mesh in world.iter("mesh"):
            uri = value(mesh, "uri")
            assert not uri.startswith("/") and "://" not in uri  # resolved next to the world file
            assert (WORLDS / uri).is_file()
            assert re.search(r"^mtllib (\S+)$", (WORLDS / uri).read_text(), re.M).group(1) == MATERIAL_FILE


def test_physics_step_divides_the_control_period_in_gazebo_nanoseconds(car):
    step = physics_step(car.camera.rate_hz)
    assert car.camera.rate_hz == 15
    assert step.step_ns * step.steps_per_control == int(1e9 / 15)  # 66666666 ns, as gz holds 1/15 s
    assert 0.5e6 <= step.step_ns <= 2e6
    assert int(float(step.max_step_size) * 1e9) == step.step_ns
    for rate in (10.0, 20.0, 30.0):
        s = physics_step(rate)
        assert s.step_ns * s.steps_per_control == int(1e9 / rate)
    with pytest.raises(ValueError):
        physics_step(0.0)


def test_worlds_pass_the_sdformat_checker(tracks):
    for path, result in run_sdf_check([WORLDS / f"{n}.sdf" for n in tracks]):
        assert result.returncode == 0 and "Valid" in result.stdout, f"{path}:\n{result.stdout}"


def test_world_elements_are_all_in_the_sdformat_spec(tracks):
    for name in tracks:
        problems = spec_violations(ET.parse(WORLDS / f"{name}.sdf").getroot())
        assert problems == [], f"{name}: {problems}"


def test_the_spec_walk_rejects_a_misspelt_element():
    doc = ET.fromstring(
        '<sdf version="1.9"><world name="w"><physics name="p" type="dart">'
        "<max_step_sise>0.001</max_step_sise></physics></world></sdf>"
    )
    assert spec_violations(doc) == ["sdf/world[w]/physics[p]/max_step_sise: element not in the SDF spec"]


def test_road_mesh_vertices_are_the_track_borders(tracks):
    for name, track in tracks.items():
        mesh = parse_obj((WORLDS / mesh_path(name, "road")).read_text())
        n = len(track.inner)
        assert np.abs(mesh.vertices[:n] - track.inner).max() <= COORD_TOL
        assert np.abs(mesh.vertices[n:] - track.outer).max() <= COORD_TOL
        assert len(mesh.vertices) == 2 * n


def test_road_mesh_covers_exactly_the_road(tracks):
    rng = np.random.default_rng(7)
    for name, track in tracks.items():
        mesh = parse_obj((WORLDS / mesh_path(name, "road")).read_text())
        pts = np.vstack([track.inner, track.outer])
        points = rng.uniform(pts.min(axis=0) - 0.2, pts.max(axis=0) + 0.2, size=(3000, 2))
        near_border = (
            np.minimum(
                distance_to_polyline(points, ring(track, track.inner)),
                distance_to_polyline(points, ring(track, track.outer)),
            )
            < 0.002
        )
        on_mesh = covered(mesh.vertices, mesh.triangles, points)
        on_road = track.contains(points)
        assert on_road.sum() > 300
        wrong = (on_mesh != on_road) & ~near_border
        assert not wrong.any(), f"{name}: {wrong.sum()} points disagree, e.g. {points[wrong][:3]}"


def test_every_triangle_faces_up(tracks):
    for name in tracks:
        for part in PARTS:
            mesh = parse_obj((WORLDS / mesh_path(name, part)).read_text())
            areas = triangle_areas(mesh.vertices, mesh.triangles)
            assert (areas > 0).all(), f"{name} {part}: {np.sum(areas <= 0)} triangles face down"


def test_border_lines_are_line_width_strips_on_the_borders(tracks):
    for name, track in tracks.items():
        mesh = parse_obj((WORLDS / mesh_path(name, "borders")).read_text())
        dist = np.minimum(
            distance_to_polyline(mesh.vertices, ring(track, track.inner)),
            distance_to_polyline(mesh.vertices, ring(track, track.outer)),
        )
        assert dist.max() <= LINE_WIDTH + COORD_TOL  # mitres at most twice the half width
        assert np.median(dist) == pytest.approx(LINE_WIDTH / 2, abs=0.002)
        midpoints = [(r[1:] + r[:-1]) / 2 for r in (ring(track, track.inner), ring(track, track.outer))]
        assert covered(mesh.vertices, mesh.triangles, np.vstack(midpoints)).all()
        length = sum(np.linalg.norm(np.diff(ring(track, b), axis=0), axis=1).sum() for b in (track.inner, track.outer))
        area = triangle_areas(mesh.vertices, mesh.triangles).sum()
        assert area == pytest.approx(length * LINE_WIDTH, rel=0.1)


def test_centre_line_is_dashed_along_the_waypoints(tracks):
    for name, track in tracks.items():
        mesh = parse_obj((WORLDS / mesh_path(name, "centre")).read_text())
        line = ring(track, track.waypoints)
        assert distance_to_polyline(mesh.vertices, line).max() <= LINE_WIDTH + COORD_TOL
        area = triangle_areas(mesh.vertices, mesh.triangles).sum()
        assert area == pytest.approx(track.length * DASH_LENGTH / DASH_PERIOD * LINE_WIDTH, rel=0.1)
        first_dash = line[0] + (line[1] - line[0]) / np.linalg.norm(line[1] - line[0]) * (DASH_LENGTH / 2)
        first_gap = line[0] + (line[1] - line[0]) / np.linalg.norm(line[1] - line[0]) * (DASH_LENGTH * 1.5)
        if np.linalg.norm(line[1] - line[0]) > DASH_PERIOD:  # a straight first segment
            assert covered(mesh.vertices, mesh.triangles, np.array([first_dash, first_gap])).tolist() == [True, False]


def test_start_pose_is_on_the_road_facing_along_it(tracks):
    for track in tracks.values():
        x, y, yaw = start_pose(track)
        assert track.contains(np.array([[x, y]]))[0]
        assert math.degrees(yaw) == pytest.approx(track.heading(np.array([[x, y]]))[0], abs=1e-6)


def test_gz_sim_args_run_free_or_paused_with_or_without_gui():
    assert gz_sim_args("/w/a.sdf", headless=False, lockstep=False).split() == ["-r", "-v", "2", "/w/a.sdf"]
    assert gz_sim_args("/w/a.sdf", headless=True, lockstep=True).split() == [
        "-s",
        "--headless-rendering",
        "-v",
        "2",
        "/w/a.sdf",
    ]


# ---- races with objects -----------------------------------------------------------------------


def _models(root: ET.Element) -> dict[str, ET.Element]:
    return {m.get("name"): m for m in root.find("world").findall("model")}


def test_the_committed_variants_regenerate_byte_identical_and_pass_the_sdformat_checks(car):
    paths = []
    for name, race_type in VARIANT_WORLDS:
        files = build_world(Track.load(name), car, race=variant_race(race_type), seed=0)
        rel = f"{name}_{race_type}.sdf"
        assert rel in files
        assert (WORLDS / rel).read_bytes() == files[rel].encode("utf-8"), (
            f"worlds/{rel} is stale: run `deepracer-rl world {name} --race-type {race_type}`"
        )
        for other, text in files.items():  # the meshes are the track's own
            if other != rel:
                assert (WORLDS / other).read_bytes() == text.encode("utf-8")
        paths.append(WORLDS / rel)
        assert spec_violations(ET.parse(WORLDS / rel).getroot()) == []
    for path, check in run_sdf_check(paths):
        assert check.returncode == 0 and "Valid" in check.stdout, (path, check.stdout, check.stderr)


def test_object_avoidance_world_has_deepracers_boxes_where_world_objects_places_them(car):
    """DRfC's default 6 boxes (RACE_TYPE_DEFAULTS), fixed layout: static boxes of OBSTACLE_SIZES standing on
    the floor at `ObjectWorld`'s poses, in the embedded camera's colour; the plain world stays the same."""
    track = Track.load("reinvent_base")
    race = variant_race("object_avoidance")
    assert race.obstacle_count == 6 and race.number_of_bot_cars == 0
    root = ET.parse(WORLDS / "reinvent_base_object_avoidance.sdf").getroot()
    assert root.find("world").get("name") == "reinvent_base"  # gz_control and the spawner name the track
    models = _models(root)
    boxes = [models[f"obstacle_{i}"] for i in range(6)]
    assert set(models) == {"floor", "track"} | {f"obstacle_{i}" for i in range(6)}
    expected = object_layout(track, race, seed=0).poses[0]
    size = OBSTACLE_SIZES[race.obstacle_type]
    for box, (x, y, yaw) in zip(boxes, expected):
        assert value(box, "static") == "true"
        pose = [float(v) for v in value(box, "pose").split()]
        assert pose == pytest.approx([x, y, size[2] / 2, 0, 0, yaw], abs=6e-4)
        for part in ("collision", "visual"):
            dims = [float(v) for v in value(box.find("link").find(part), "geometry/box/size").split()]
            assert dims == pytest.approx(size, abs=6e-4)
        diffuse = [float(v) for v in value(box.find("link/visual"), "material/diffuse").split()]
        assert diffuse[:3] == pytest.approx([c / 255 for c in OBSTACLE_RGB[race.obstacle_type]], abs=6e-4)
    # DeepRacer's first box (2 % in) reaches the start line: the car spawns behind it, clear of every box
    state = object_layout(track, race, seed=0)
    assert collisions(np.array([start_pose(track)]), state, car)[0][0]
    spawn = spawn_pose(track, race, seed=0, car=car)
    assert not collisions(np.array([spawn]), state, car)[0][0]
    assert spawn_pose(track) == start_pose(track) == spawn_pose(track, variant_race("head_to_bot"), car=car)


def test_head_to_bot_world_starts_the_bot_cars_at_their_start_poses_as_movable_visuals(car):
    """The bot cars stand where `ObjectWorld` starts them (the bot-car node moves them from there): static models
    (gz-sim's set_pose moves those) named as the node names them, with a visual and no collision shape."""
    track = Track.load("reinvent_base")
    race = variant_race("head_to_bot")
    root = ET.parse(WORLDS / "reinvent_base_head_to_bot.sdf").getroot()
    models = _models(root)
    state = object_layout(track, race, seed=0)
    assert object_model_names(state.kinds) == ["bot_car_0", "bot_car_1", "bot_car_2"]
    assert set(models) == {"floor", "track", *object_model_names(state.kinds)}
    for i, (x, y, yaw) in enumerate(state.poses[0]):
        model = models[f"bot_car_{i}"]
        pose = [float(v) for v in value(model, "pose").split()]
        assert pose == pytest.approx([x, y, BOT_CAR_HEIGHT / 2, 0, 0, yaw], abs=6e-4)
        assert object_model_z(state)[i] == pytest.approx(BOT_CAR_HEIGHT / 2)  # the node's set_pose height
        dims = [float(v) for v in value(model, "link/visual/geometry/box/size").split()]
        assert dims == pytest.approx([*CAR_FOOTPRINT, BOT_CAR_HEIGHT], abs=6e-4)
        assert value(model, "static") == "true" and model.find("link/collision") is None
    assert "bot_cars_node drives them by set_pose" in (WORLDS / "reinvent_base_head_to_bot.sdf").read_text()
    mixed = object_layout(track, RaceObjects(number_of_obstacles=2, number_of_bot_cars=1), seed=0)
    assert object_model_names(mixed.kinds) == ["obstacle_0", "obstacle_1", "bot_car_0"]


def test_world_variants_follow_the_seed_and_options_and_are_generated_on_demand(tmp_path, capsys):
    track = Track.load("reinvent_base")
    race = RaceObjects(number_of_obstacles=3, randomize_obstacle_locations=True)
    a, b = (object_layout(track, race, seed).poses for seed in (1, 2))
    assert not np.allclose(a, b) and np.allclose(a, object_layout(track, race, seed=1).poses)
    # the committed variant is used for the race type's defaults at seed 0, any other is generated
    assert world_file("reinvent_base", WORLDS, tmp_path, race=variant_race("head_to_bot")) == (
        WORLDS / "reinvent_base_head_to_bot.sdf"
    )
    path = world_file("reinvent_base", WORLDS, tmp_path, race=race, seed=1)
    assert path == tmp_path / "reinvent_base_object_avoidance.sdf"
    assert path.read_text() == build_world(track, race=race, seed=1)["reinvent_base_object_avoidance.sdf"]
    assert "3 box_obstacle (random, seed 1)" in path.read_text()
    assert world_file("reinvent_base", WORLDS, tmp_path, race=RaceObjects()) == WORLDS / "reinvent_base.sdf"
    # the CLI: the same race options as train/evaluate, bad ones named
    out = tmp_path / "cli"
    args = ["world", "reinvent_base", "--out", str(out), "--number-of-obstacles", "3"]
    assert cli_main([*args, "--randomize-obstacle-locations", "--seed", "1"]) == 0
    assert (out / "reinvent_base_object_avoidance.sdf").read_text() == path.read_text()
    assert (
        cli_main(
            ["world", "reinvent_base", "--out", str(out), "--race-type", "head_to_bot", "--number-of-bot-cars", "0"]
        )
        == 2
    )
    assert "a head-to-bot race needs NUMBER_OF_BOT_CARS of at least 1" in capsys.readouterr().err
