"""Gazebo Harmonic worlds generated from DeepRacer tracks (SDF 1.9 + OBJ meshes), no ROS.

`build_world(track)` returns the text of `worlds/<track>.sdf` and of its meshes under
`worlds/meshes/`: the road surface (triangles between the two borders), the white border
lines and the dashed centre line, flat meshes laid just above a floor plane and coloured
like the embedded renderer (`camera.py` holds those colours and widths). The physics step
divides the control period (the camera rate in the URDF) exactly, in Gazebo's integer
nanoseconds. Output is byte-for-byte reproducible: fixed float formatting, no timestamps.

The repository's `worlds/` holds the worlds of a representative set of tracks (a world is
40-300 kB; all 95 shipped tracks would be 7 MB); `world_file` generates any other shipped
track's world on demand into a cache folder, which is what the Gazebo launch file uses.

Races with objects (docs/races.md): `build_world(track, race=RaceObjects(...), seed=...)` writes the
variant `<track>_<race type>.sdf` (object_avoidance, head_to_bot; the track's meshes are shared) with
the layout `world_objects.ObjectWorld` draws for that seed (the learner's start line kept clear):
each obstacle a static box of its DeepRacer size, each bot car a static box of the car's footprint
and height (the stand-in the embedded camera draws), in the embedded renderer's colours, named by
`object_model_names`. The bot cars stand at their start poses in the file; in a run the bot-car node
(`deepracer_rl.ros.bot_cars_node`) drives them: it steps the same `ObjectWorld` (same config and
seed) on sim time and moves each model with the world's set_pose service (gz-sim moves a static
model's pose on set_pose: a one-time pose change, no dynamics). A bot car has no <collision>: moved
by pose into the learner's car, a static collision shape would throw the car out of the overlap; it
is seen by the cameras and the lidar (both render visuals), and a touch is judged from /objects by
the client, as with the embedded simulator. `VARIANT_WORLDS` are committed (DRfC's defaults, seed 0);
others are generated.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera import (
    BORDER_RGB,
    CENTRE_RGB,
    DASH_LENGTH,
    DASH_PERIOD,
    FLOOR_MARGIN,
    FLOOR_RGB,
    LINE_WIDTH,
    ROAD_RGB,
    SKY_RGB,
)
from .car import CarSpec
from .episode import start_line_pose
from .sim import GRAVITY
from .track import Track
from .world_objects import BOT_CAR, OBSTACLE, ObjectState, ObjectWorld, RaceObjects, clear_start, world_objects_for

SDF_VERSION = "1.9"  # Gazebo Harmonic (sdformat 14) reads it; Debian's sdformat 12 validates it
MESH_DIR = "meshes"  # relative to the world file; gz-sim resolves relative mesh URIs from there
MATERIAL_FILE = "track.mtl"  # shared by every track's OBJ files
CAR_NAME = "deepracer"  # entity name of the spawned car (set_pose, topics under /model/<name>)
DECIMALS = 3  # mesh coordinates and colours: millimetres
ROAD_Z = 0.001  # road surface above the floor plane, metres
PAINT_Z = 0.002  # border lines and centre dashes above the floor plane
TARGET_STEP_NS = 1_000_000  # physics step wanted near 1 ms
PARTS = ("road", "borders", "centre")  # mesh files per track, in drawing order
PART_RGB = {"road": ROAD_RGB, "borders": BORDER_RGB, "centre": CENTRE_RGB}
# Committed world variants with objects: (track, race type), DRfC's defaults of the type, seed 0.
VARIANT_WORLDS = (("reinvent_base", "object_avoidance"), ("reinvent_base", "head_to_bot"))


@dataclass(frozen=True)
class Mesh:
    """A flat triangle mesh: vertices (V, 2) x, y in metres and triangles (F, 3) vertex indices."""

    vertices: np.ndarray
    triangles: np.ndarray


@dataclass(frozen=True)
class PhysicsStep:
    """Gazebo's physics step, and how many of them make one control period."""

    step_ns: int  # step size as gz-sim holds it (integer nanoseconds)
    steps_per_control: int  # world control multi_step for one control period
    control_hz: float

    @property
    def max_step_size(self) -> str:
        """The SDF <max_step_size> text; gz-sim truncates it to exactly `step_ns` nanoseconds."""
        text = repr(self.step_ns / 1e9)
        if int(float(text) * 1e9) != self.step_ns:  # guard the double -> ns truncation
            text = repr((self.step_ns + 0.5) / 1e9)
        return text


def physics_step(control_hz: float) -> PhysicsStep:
    """The physics step near 1 ms that divides the control period exactly in integer ns.

    gz-sim stores the step and sensor/odometry periods as integer nanoseconds (a
    truncating duration_cast), so the period 1/15 s is 66666666 ns and 66 steps of
    1010101 ns make exactly one period: odometry published at the control rate lands on
    the step that ends each period, and `multi_step` of `steps_per_control` advances
    exactly one period.
    """
    if not control_hz > 0:
        raise ValueError(f"control rate must be positive, got {control_hz}")
    period_ns = int(1e9 / control_hz)
    fewest, most = -(-period_ns // (2 * TARGET_STEP_NS)), period_ns // (TARGET_STEP_NS // 2)
    candidates = [k for k in range(max(1, fewest), most + 1) if period_ns % k == 0]
    if not candidates:
        raise ValueError(
            f"no physics step between 0.5 and 2 ms divides the control period {period_ns} ns "
            f"({control_hz} Hz) exactly; choose another camera rate in the URDF"
        )
    k = min(candidates, key=lambda c: abs(period_ns // c - TARGET_STEP_NS))
    return PhysicsStep(step_ns=period_ns // k, steps_per_control=k, control_hz=float(control_hz))


# ---- geometry --------------------------------------------------------------------------


def _ring(points: np.ndarray, closed: bool) -> np.ndarray:
    return np.vstack([points, points[:1]]) if closed else points


def _dedupe(line: np.ndarray, closed: bool, tol: float = 1e-3) -> np.ndarray:
    """Drop points within `tol` of the previous kept one (and a closing repeat on a loop)."""
    kept = [line[0]]
    for point in line[1:]:
        if np.linalg.norm(point - kept[-1]) > tol:
            kept.append(point)
    line = np.array(kept)
    if closed and len(line) > 1 and np.linalg.norm(line[-1] - line[0]) <= tol:
        line = line[:-1]
    return line


def _orient_up(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Triangles wound counter-clockwise seen from above (normal +z), degenerate ones dropped."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = np.abs(cross) > 1e-12
    tri = triangles[keep].copy()
    flip = cross[keep] < 0
    tri[flip] = tri[flip][:, [0, 2, 1]]
    return tri


def _band(left: np.ndarray, right: np.ndarray, closed: bool) -> Mesh:
    """Triangles filling the quads between two polylines of equal length."""
    n = len(left)
    i = np.arange(n if closed else n - 1)
    j = (i + 1) % n
    triangles = np.concatenate([np.stack([i, n + i, n + j], 1), np.stack([i, n + j, j], 1)])
    vertices = np.vstack([left, right])
    return Mesh(vertices, _orient_up(vertices, triangles))


def _strip(line: np.ndarray, half_width: float, closed: bool) -> Mesh:
    """A band of constant width centred on a polyline (mitred joints, mitre at most 2x)."""
    line = _dedupe(np.asarray(line, dtype=np.float64), closed)
    if len(line) < 2:
        return Mesh(np.zeros((0, 2)), np.zeros((0, 3), dtype=np.int64))
    pts = _ring(line, closed)
    d = np.diff(pts, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    normals = np.stack([-d[:, 1], d[:, 0]], axis=1)  # left of each segment
    if closed:
        before, after = np.roll(normals, 1, axis=0), normals
    else:
        before = np.vstack([normals[:1], normals])
        after = np.vstack([normals, normals[-1:]])
    mitre = before + after
    length = np.linalg.norm(mitre, axis=1, keepdims=True)
    mitre = np.where(length > 1e-9, mitre / np.maximum(length, 1e-12), after)
    scale = half_width / np.maximum(np.einsum("ij,ij->i", mitre, after), 0.5)
    offset = mitre * scale[:, None]
    return _band(line + offset, line - offset, closed)


def _merge(meshes: list[Mesh]) -> Mesh:
    vertices, triangles, base = [], [], 0
    for mesh in meshes:
        vertices.append(mesh.vertices)
        triangles.append(mesh.triangles + base)
        base += len(mesh.vertices)
    return Mesh(np.vstack(vertices), np.vstack(triangles))


def road_mesh(track: Track) -> Mesh:
    """The road surface: two triangles per segment between the inner and outer border points."""
    return _band(track.inner, track.outer, track.closed)


def border_mesh(track: Track) -> Mesh:
    """White lines LINE_WIDTH wide centred on both borders (as the embedded renderer draws them)."""
    return _merge([_strip(b, LINE_WIDTH / 2.0, track.closed) for b in (track.inner, track.outer)])


def centre_dashes(track: Track) -> list[np.ndarray]:
    """Polylines of the centre-line dashes: DASH_LENGTH painted in every DASH_PERIOD from waypoint 0."""
    line = _ring(track.waypoints, track.closed)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    total = float(s[-1])
    dashes = []
    for k in range(int(math.ceil(total / DASH_PERIOD))):
        a, b = k * DASH_PERIOD, min(k * DASH_PERIOD + DASH_LENGTH, total)
        if b - a < 1e-3:
            continue
        inside = (s > a) & (s < b)
        stations = np.concatenate([[a], s[inside], [b]])
        dashes.append(np.stack([np.interp(stations, s, line[:, 0]), np.interp(stations, s, line[:, 1])], 1))
    return dashes


def centre_mesh(track: Track) -> Mesh:
    """The dashed centre line, LINE_WIDTH wide."""
    return _merge([_strip(d, LINE_WIDTH / 2.0, closed=False) for d in centre_dashes(track)])


def _as_written(mesh: Mesh) -> Mesh:
    """The mesh with vertices rounded as the OBJ writes them, re-checked for upward faces."""
    vertices = np.round(mesh.vertices, DECIMALS)
    return Mesh(vertices, _orient_up(vertices, mesh.triangles))


def track_meshes(track: Track) -> dict[str, Mesh]:
    """The road, border and centre-line meshes of a track, as written to the OBJ files."""
    meshes = {"road": road_mesh(track), "borders": border_mesh(track), "centre": centre_mesh(track)}
    return {part: _as_written(mesh) for part, mesh in meshes.items()}


# ---- text formats --------------------------------------------------------------------------


def _num(value: float, decimals: int = DECIMALS) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


def _short(value: float) -> str:
    """A compact, fixed representation of a parameter (at most 6 decimals, no trailing zeros)."""
    text = _num(value, 6).rstrip("0").rstrip(".")
    return text or "0"


def _rgb(rgb: tuple[int, int, int]) -> str:
    return " ".join(_num(c / 255.0) for c in rgb)


def mesh_to_obj(mesh: Mesh, title: str, material: str) -> str:
    """Wavefront OBJ text: vertices at z = 0, one shared up normal, triangles."""
    lines = [
        f"# {title}",
        "# generated by `deepracer-rl world`: do not edit",
        f"mtllib {MATERIAL_FILE}",
        f"o {material}",
        f"usemtl {material}",
        "vn 0 0 1",
    ]
    lines += [f"v {_num(x)} {_num(y)} 0" for x, y in mesh.vertices]
    lines += [f"f {a + 1}//1 {b + 1}//1 {c + 1}//1" for a, b, c in mesh.triangles]
    return "\n".join(lines) + "\n"


def parse_obj(text: str) -> Mesh:
    """Read back an OBJ written by `mesh_to_obj` (vertices x, y and triangles, 0-based)."""
    vertices, triangles = [], []
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "v":
            vertices.append((float(parts[1]), float(parts[2]), float(parts[3])))
        elif parts[0] == "f":
            if len(parts) != 4:
                raise ValueError(f"not a triangle: {line!r}")
            triangles.append(tuple(int(p.split("/")[0]) - 1 for p in parts[1:]))
    v = np.array(vertices, dtype=np.float64).reshape(-1, 3)
    if np.any(v[:, 2] != 0.0):
        raise ValueError("mesh vertices must lie at z = 0 (height comes from the visual pose)")
    return Mesh(v[:, :2], np.array(triangles, dtype=np.int64).reshape(-1, 3))


def material_file() -> str:
    """The shared MTL file: the embedded renderer's colours for road, borders and centre line."""
    lines = ["# colours of deepracer_rl.camera; generated by `deepracer-rl world`: do not edit"]
    for part in PARTS:
        lines += [f"newmtl {part}", f"Ka {_rgb(PART_RGB[part])}", f"Kd {_rgb(PART_RGB[part])}", "Ks 0 0 0", "d 1"]
    return "\n".join(lines) + "\n"


def mesh_path(track_name: str, part: str) -> str:
    """Mesh file of a track part, relative to the world file."""
    return f"{MESH_DIR}/{track_name}_{part}.obj"


def start_pose(track: Track) -> tuple[float, float, float]:
    """x, y, yaw of the car at waypoint 0 facing along the track (where the launch file spawns it)."""
    x, y, yaw = start_line_pose(track)
    return float(x), float(y), float(yaw)


def spawn_pose(
    track: Track, race: RaceObjects | None = None, seed: int = 0, car: CarSpec | None = None
) -> tuple[float, float, float]:
    """Where the launch file spawns the car: `start_pose`, moved back off the objects of a race's world
    (`world_objects.clear_start`, as the race's own starts: DeepRacer's first obstacle reaches the line)."""
    pose = start_pose(track)
    if race is None or not race.count:
        return pose
    car = CarSpec.from_urdf() if car is None else car
    x, y, yaw = clear_start(track, np.array(pose), object_layout(track, race, seed), car)
    return float(x), float(y), float(yaw)


def _material(rgb: tuple[int, int, int], indent: str) -> str:
    c = _rgb(rgb)
    return (
        f"{indent}<material>\n"
        f"{indent}  <ambient>{c} 1</ambient>\n"
        f"{indent}  <diffuse>{c} 1</diffuse>\n"
        f"{indent}  <specular>0 0 0 1</specular>\n"
        f"{indent}</material>\n"
    )


def race_variant(race: RaceObjects) -> str:
    """The variant name of a race with objects: head_to_bot with bot cars, else object_avoidance."""
    return "head_to_bot" if race.number_of_bot_cars else "object_avoidance"


def variant_race(race_type: str) -> RaceObjects:
    """DRfC's default objects of a race type (`world_objects.RACE_TYPE_DEFAULTS`)."""
    return world_objects_for(race_type, {})


def object_layout(track: Track, race: RaceObjects, seed: int = 0) -> ObjectState:
    """The objects of one world of `race` on `track` as `ObjectWorld` draws them for `seed` (bot cars at
    their start poses, random obstacles clear of the start line)."""
    return ObjectWorld(race, track, 1, seed=seed).state().take(np.array([0]))


def object_model_names(kinds: tuple[str, ...]) -> list[str]:
    """Gazebo model names of a world's objects in `ObjectState` order (obstacles first, then bot cars):
    obstacle_0, obstacle_1, ..., bot_car_0, ... (the SDF's models; the bot-car node's set_pose names)."""
    seen = {OBSTACLE: 0, BOT_CAR: 0}
    names = []
    for kind in kinds:
        names.append(f"{kind}_{seen[kind]}")
        seen[kind] += 1
    return names


def object_model_z(objects: ObjectState) -> np.ndarray:
    """(K,) height (m) of each object model's origin in Gazebo: the box's centre, half its height above the floor."""
    return objects.size[:, 2] / 2.0


def _object_models(objects: ObjectState) -> str:
    """Static box models of the objects, each standing on the floor at its pose (bot cars without a collision)."""
    out = ""
    heights = object_model_z(objects)
    for k, (kind, name) in enumerate(zip(objects.kinds, object_model_names(objects.kinds))):
        x, y, yaw = (float(v) for v in objects.poses[0, k])
        length, width, height = (float(v) for v in objects.size[k])
        rgb = tuple(int(c) for c in objects.colours[k]) if objects.colours is not None else (200, 200, 200)
        size = f"{_num(length)} {_num(width)} {_num(height)}"
        collision = (
            ""
            if kind == BOT_CAR
            else (
                f'        <collision name="collision">\n'
                f"          <geometry>\n"
                f"            <box>\n"
                f"              <size>{size}</size>\n"
                f"            </box>\n"
                f"          </geometry>\n"
                f"        </collision>\n"
            )
        )
        out += (
            f'    <model name="{name}">\n'
            f"      <static>true</static>\n"
            f"      <pose>{_num(x)} {_num(y)} {_num(float(heights[k]))} 0 0 {_num(yaw)}</pose>\n"
            f'      <link name="body">\n' + collision + f'        <visual name="visual">\n'
            f"          <geometry>\n"
            f"            <box>\n"
            f"              <size>{size}</size>\n"
            f"            </box>\n"
            f"          </geometry>\n" + _material(rgb, "          ") + "        </visual>\n"
            "      </link>\n"
            "    </model>\n"
        )
    return out


def world_sdf(track: Track, car: CarSpec, objects: ObjectState | None = None, note: str = "") -> str:
    """The SDF text of the track's world (floor, lights, physics, system plugins, road visuals) and,
    for a race with objects, the obstacles' and bot cars' static models (`note` says which)."""
    step = physics_step(car.camera.rate_hz)
    pts = np.vstack([track.waypoints, track.inner, track.outer])
    lo, hi = pts.min(axis=0) - FLOOR_MARGIN, pts.max(axis=0) + FLOOR_MARGIN
    centre, size = (lo + hi) / 2.0, hi - lo
    floor_pose = f"{_num(centre[0])} {_num(centre[1])} 0 0 0 0"
    floor_size = f"{_num(size[0])} {_num(size[1])}"
    name = track.name
    visuals = ""
    for part in PARTS:
        z = ROAD_Z if part == "road" else PAINT_Z
        visuals += (
            f'        <visual name="{part}">\n'
            f"          <pose>0 0 {_short(z)} 0 0 0</pose>\n"
            f"          <cast_shadows>false</cast_shadows>\n"
            f"          <geometry>\n"
            f"            <mesh>\n"
            f"              <uri>{mesh_path(name, part)}</uri>\n"
            f"            </mesh>\n"
            f"          </geometry>\n" + _material(PART_RGB[part], "          ") + "        </visual>\n"
        )
    sky = _rgb(SKY_RGB)
    return (
        '<?xml version="1.0"?>\n'
        f"<!-- Gazebo Harmonic world of the DeepRacer track '{name}': generated by\n"
        f"     `deepracer-rl world {name}` from the route {name}.npy; do not edit.\n"
        f"     Physics: {step.steps_per_control} steps of {step.step_ns} ns make one control period "
        f"(1/{_short(step.control_hz)} s).{note} -->\n"
        f'<sdf version="{SDF_VERSION}">\n'
        f'  <world name="{name}">\n'
        f'    <physics name="control_substeps" type="dart">\n'
        f"      <max_step_size>{step.max_step_size}</max_step_size>\n"
        f"      <real_time_factor>1</real_time_factor>\n"
        f"    </physics>\n"
        f"    <gravity>0 0 {_short(-GRAVITY)}</gravity>\n"
        f'    <plugin filename="gz-sim-physics-system" name="gz::sim::systems::Physics"/>\n'
        f'    <plugin filename="gz-sim-user-commands-system" name="gz::sim::systems::UserCommands"/>\n'
        f'    <plugin filename="gz-sim-scene-broadcaster-system" name="gz::sim::systems::SceneBroadcaster"/>\n'
        f'    <plugin filename="gz-sim-sensors-system" name="gz::sim::systems::Sensors">\n'
        f"      <render_engine>ogre2</render_engine>\n"
        f"    </plugin>\n"
        f"    <scene>\n"
        f"      <ambient>0.5 0.5 0.5 1</ambient>\n"
        f"      <background>{sky} 1</background>\n"
        f"      <shadows>false</shadows>\n"
        f"      <grid>false</grid>\n"
        f"    </scene>\n"
        f'    <light type="directional" name="sun">\n'
        f"      <pose>0 0 10 0 0 0</pose>\n"
        f"      <cast_shadows>false</cast_shadows>\n"
        f"      <diffuse>0.8 0.8 0.8 1</diffuse>\n"
        f"      <specular>0.1 0.1 0.1 1</specular>\n"
        f"      <direction>-0.3 0.2 -1</direction>\n"
        f"    </light>\n"
        f'    <model name="floor">\n'
        f"      <static>true</static>\n"
        f"      <pose>{floor_pose}</pose>\n"
        f'      <link name="floor">\n'
        f'        <collision name="floor_collision">\n'
        f"          <geometry>\n"
        f"            <plane>\n"
        f"              <normal>0 0 1</normal>\n"
        f"              <size>{floor_size}</size>\n"
        f"            </plane>\n"
        f"          </geometry>\n"
        f"        </collision>\n"
        f'        <visual name="floor_visual">\n'
        f"          <cast_shadows>false</cast_shadows>\n"
        f"          <geometry>\n"
        f"            <plane>\n"
        f"              <normal>0 0 1</normal>\n"
        f"              <size>{floor_size}</size>\n"
        f"            </plane>\n"
        f"          </geometry>\n" + _material(FLOOR_RGB, "          ") + "        </visual>\n"
        "      </link>\n"
        "    </model>\n"
        '    <model name="track">\n'
        "      <static>true</static>\n"
        '      <link name="paint">\n' + visuals + "      </link>\n"
        "    </model>\n" + ("" if objects is None else _object_models(objects)) + "  </world>\n"
        "</sdf>\n"
    )


def world_name(track_name: str, race: RaceObjects | None = None) -> str:
    """The world file's name: `<track>.sdf`, or `<track>_<variant>.sdf` for a race with objects."""
    return f"{track_name}.sdf" if race is None or not race.count else f"{track_name}_{race_variant(race)}.sdf"


def build_world(
    track: Track, car: CarSpec | None = None, race: RaceObjects | None = None, seed: int = 0
) -> dict[str, str]:
    """Every file of a track's world: relative path (from the worlds/ directory) -> text. With a
    race with objects, the variant world (its layout drawn with `seed`) and the track's meshes."""
    car = CarSpec.from_urdf() if car is None else car
    objects, note = None, ""
    if race is not None and race.count:
        objects = object_layout(track, race, seed)
        parts = []
        if race.obstacle_count:
            random = race.randomize_obstacle_locations and not race.object_positions
            where = f"random, seed {seed}" if random else ("at OBJECT_POSITIONS" if race.object_positions else "fixed")
            parts.append(f"{race.obstacle_count} {race.obstacle_type} ({where})")
        if race.number_of_bot_cars:
            parts.append(
                f"{race.number_of_bot_cars} bot cars at their start poses (bot_cars_node drives them by set_pose; "
                "no collision)"
            )
        note = (
            f"\n     {race_variant(race)}: " + " and ".join(parts) + ";\n     written by the same command with "
            "the race type and options and the seed (no double hyphen in an XML comment)."
        )
    files = {
        world_name(track.name, race): world_sdf(track, car, objects, note),
        f"{MESH_DIR}/{MATERIAL_FILE}": material_file(),
    }
    for part, mesh in track_meshes(track).items():
        files[mesh_path(track.name, part)] = mesh_to_obj(mesh, f"{track.name} {part}", part)
    return files


def write_world(
    track: Track,
    out_dir: str | os.PathLike,
    car: CarSpec | None = None,
    race: RaceObjects | None = None,
    seed: int = 0,
) -> list[Path]:
    """Write a track's world files under `out_dir` (created as needed); returns the paths written,
    the world first."""
    out = Path(out_dir)
    written = []
    for rel, text in build_world(track, car, race, seed).items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        written.append(path)
    return written


def world_cache_dir() -> Path:
    """Where worlds generated on demand go: $XDG_CACHE_HOME (default ~/.cache)/deepracer_rl/worlds."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deepracer_rl" / "worlds"


def world_file(
    track: str,
    installed_dir: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    race: RaceObjects | None = None,
    seed: int = 0,
) -> Path:
    """The world file of a track (a shipped name or a .npy): `installed_dir/<name>.sdf` when it is
    there, else generated (written afresh, so never stale, in well under a second) into `cache_dir`
    (default `world_cache_dir()`). A bad track name raises TrackError naming the closest names.
    With a race with objects: the installed variant when it is a committed one (`VARIANT_WORLDS`:
    the race type's defaults, seed 0), else generated."""
    if race is not None and not race.count:
        race = None
    installed = Path(installed_dir) / world_name(track, race)
    committed = race is None or (
        seed == 0 and (track, race_variant(race)) in VARIANT_WORLDS and race == variant_race(race_variant(race))
    )
    if committed and installed.is_file():
        return installed
    loaded = Track.load(track)
    return write_world(loaded, world_cache_dir() if cache_dir is None else cache_dir, race=race, seed=seed)[0]


def gz_sim_args(world_file: str | os.PathLike, headless: bool, lockstep: bool, verbosity: int = 2) -> str:
    """The `gz sim` argument string: run at once unless lockstep (then paused, stepped by gz_control)."""
    args = [] if lockstep else ["-r"]
    if headless:
        args += ["-s", "--headless-rendering"]
    args += ["-v", str(int(verbosity)), str(world_file)]
    return " ".join(args)
