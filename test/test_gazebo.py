"""The Gazebo Harmonic path, checked without running Gazebo.

Worlds regenerate byte for byte and draw exactly the .npy tracks; worlds and URDF are
well-formed and pass the strictest SDFormat/URDF validation available here (`ign sdf` or
`gz sdf`, `check_urdf`, a walk of every element against the installed SDFormat spec);
plugin file and element names are the ones Gazebo Harmonic documents; the URDF plugin
figures are the URDF's own joints; the bridge YAML is the topic contract with valid
ROS/gz type pairs; gz_control's reset/lockstep logic runs against a stand-in Gazebo; the
launch files name only executables, parameters, files and arguments that exist (and the
commands they run only console scripts and CLI flags that exist).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import math
import re
import runpy
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import setuptools
import yaml

from deepracer_rl import gazebo_tags
from deepracer_rl.camera import DASH_LENGTH, DASH_PERIOD, LINE_WIDTH
from deepracer_rl.car import (
    BASE_LINK,
    CAMERA_LINK,
    CAMERA_OPTICAL_LINK,
    FRONT_WHEEL_JOINTS,
    REAR_WHEEL_JOINTS,
    STEERING_JOINTS,
    CarSpec,
    default_urdf_path,
)
from deepracer_rl.cli import main as cli_main
from deepracer_rl.track import Track, available_tracks
from deepracer_rl.world import (
    CAR_NAME,
    MATERIAL_FILE,
    MESH_DIR,
    PARTS,
    build_world,
    gz_sim_args,
    mesh_path,
    parse_obj,
    physics_step,
    start_pose,
)

REPO = Path(__file__).resolve().parents[1]
WORLDS = REPO / "worlds"
URDF = default_urdf_path()
BRIDGE_YAML = REPO / "config" / "ros_gz_bridge.yaml"
LAUNCH_DIR = REPO / "launch"
PACKAGE = "deepracer_rl"
COORD_TOL = 0.0005 + 1e-9  # mesh coordinates are written in millimetres

# The topic contract of DESIGN.md ("Topic contract" table): name -> ROS type.
CONTRACT = {
    "/camera/image_raw": "sensor_msgs/msg/Image",
    "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
    "/odom": "nav_msgs/msg/Odometry",
    "/cmd_vel": "geometry_msgs/msg/Twist",
    "/clock": "rosgraph_msgs/msg/Clock",
    "/initialpose": "geometry_msgs/msg/PoseWithCovarianceStamped",
}

# Gazebo Harmonic systems and the parameters their headers document (gz-sim 8:
# src/systems/<system>/<System>.hh "System Parameters"; the world systems from
# examples/worlds/*.sdf). Elements not listed here are not read by Harmonic.
HARMONIC_SYSTEMS = {
    "gz-sim-physics-system": ("gz::sim::systems::Physics", {"engine"}),
    "gz-sim-user-commands-system": ("gz::sim::systems::UserCommands", set()),
    "gz-sim-scene-broadcaster-system": ("gz::sim::systems::SceneBroadcaster", set()),
    "gz-sim-sensors-system": (
        "gz::sim::systems::Sensors",
        {"render_engine", "background_color", "ambient_light", "disable_on_drained_battery"},
    ),
    "gz-sim-ackermann-steering-system": (
        "gz::sim::systems::AckermannSteering",
        {
            "steering_only",
            "use_actuator_msg",
            "actuator_number",
            "steer_p_gain",
            "left_joint",
            "right_joint",
            "left_steering_joint",
            "right_steering_joint",
            "wheel_separation",
            "kingpin_width",
            "wheel_base",
            "steering_limit",
            "wheel_radius",
            "odom_publish_frequency",
            "min_velocity",
            "max_velocity",
            "min_acceleration",
            "max_acceleration",
            "min_jerk",
            "max_jerk",
            "topic",
            "sub_topic",
            "odom_topic",
            "tf_topic",
            "frame_id",
            "child_frame_id",
        },
    ),
    "gz-sim-odometry-publisher-system": (
        "gz::sim::systems::OdometryPublisher",
        {
            "odom_frame",
            "robot_base_frame",
            "odom_publish_frequency",
            "odom_topic",
            "odom_covariance_topic",
            "tf_topic",
            "dimensions",
            "xyz_offset",
            "rpy_offset",
            "gaussian_noise",
        },
    ),
    "gz-sim-joint-state-publisher-system": ("gz::sim::systems::JointStatePublisher", {"topic", "joint_name"}),
}
WORLD_SYSTEMS = {
    "gz-sim-physics-system",
    "gz-sim-user-commands-system",
    "gz-sim-scene-broadcaster-system",
    "gz-sim-sensors-system",
}
CAR_SYSTEMS = {
    "gz-sim-ackermann-steering-system",
    "gz-sim-odometry-publisher-system",
    "gz-sim-joint-state-publisher-system",
}
# Elements Harmonic reads that Debian's older SDFormat spec (12) does not list:
# gz_frame_id is read by gz-sensors 8 (src/Sensor.cc); camera_info_topic is in
# sdformat 14's SDF 1.9 camera spec (sdf/1.9/camera.sdf).
HARMONIC_EXTRA_ELEMENTS = {("sensor", "gz_frame_id"), ("camera", "camera_info_topic")}

# ROS <-> gz message pairs the Jazzy bridge supports (ros_gz_bridge README, jazzy branch),
# for the types of the contract; and the YAML keys it reads (src/bridge_config.cpp).
BRIDGE_PAIRS = {
    ("rosgraph_msgs/msg/Clock", "gz.msgs.Clock"),
    ("sensor_msgs/msg/Image", "gz.msgs.Image"),
    ("sensor_msgs/msg/CameraInfo", "gz.msgs.CameraInfo"),
    ("nav_msgs/msg/Odometry", "gz.msgs.Odometry"),
    ("nav_msgs/msg/Odometry", "gz.msgs.OdometryWithCovariance"),
    ("geometry_msgs/msg/Twist", "gz.msgs.Twist"),
    ("geometry_msgs/msg/TwistStamped", "gz.msgs.Twist"),
    ("geometry_msgs/msg/PoseStamped", "gz.msgs.Pose"),
}
BRIDGE_KEYS = {
    "topic_name",
    "ros_topic_name",
    "gz_topic_name",
    "ros_type_name",
    "gz_type_name",
    "direction",
    "publisher_queue",
    "subscriber_queue",
    "lazy",
}
BRIDGE_DIRECTIONS = {"BIDIRECTIONAL", "GZ_TO_ROS", "ROS_TO_GZ"}

# Executables, parameters and launch files of other packages the launch files use, as the
# Jazzy releases define them: ros_gz_sim src/create.cpp (declare_parameter) and
# launch/gz_sim.launch.py.in (DeclareLaunchArgument); ros_gz_bridge src/ros_gz_bridge.cpp
# and src/parameter_bridge.cpp; robot_state_publisher src/robot_state_publisher.cpp.
# Every rclcpp/rclpy node also has use_sim_time.
EXTERNAL_EXECUTABLES = {
    ("ros_gz_sim", "create"): {
        "world",
        "file",
        "string",
        "topic",
        "name",
        "allow_renaming",
        "x",
        "y",
        "z",
        "R",
        "P",
        "Y",
    },
    ("ros_gz_bridge", "parameter_bridge"): {
        "config_file",
        "expand_gz_topic_names",
        "override_timestamps_with_wall_time",
        "subscription_heartbeat",
        "lazy",
    },
    ("robot_state_publisher", "robot_state_publisher"): {
        "robot_description",
        "publish_frequency",
        "ignore_timestamp",
        "frame_prefix",
    },
}
EXTERNAL_LAUNCH_FILES = {
    ("ros_gz_sim", "launch/gz_sim.launch.py"): {
        "gz_args",
        "gz_version",
        "ign_args",
        "ign_version",
        "debugger",
        "on_exit_shutdown",
    },
}
COMMON_NODE_PARAMETERS = {"use_sim_time"}
# The launch API names the launch files may import (ros2/launch and ros2/launch_ros, Jazzy).
LAUNCH_API = {
    "launch": {"LaunchDescription", "LaunchContext"},
    "launch.actions": {
        "DeclareLaunchArgument",
        "IncludeLaunchDescription",
        "OpaqueFunction",
        "ExecuteProcess",
        "GroupAction",
        "LogInfo",
        "SetLaunchConfiguration",
        "Shutdown",
        "TimerAction",
    },
    "launch.conditions": {"IfCondition", "UnlessCondition", "LaunchConfigurationEquals"},
    "launch.launch_description_sources": {"PythonLaunchDescriptionSource"},
    "launch.substitutions": {"LaunchConfiguration", "PathJoinSubstitution", "PythonExpression", "TextSubstitution"},
    "launch_ros.actions": {"Node", "SetParameter"},
    "launch_ros.substitutions": {"FindPackageShare", "ExecutableInPackage"},
    "ament_index_python.packages": {"get_package_share_directory"},
}


# ---- helpers -----------------------------------------------------------------------------------


def urdf_root() -> ET.Element:
    return ET.parse(URDF).getroot()


def plugin(root: ET.Element, filename: str) -> ET.Element:
    found = [p for p in root.iter("plugin") if p.get("filename") == filename]
    assert len(found) == 1, f"expected one <plugin filename='{filename}'>, found {len(found)}"
    return found[0]


def values(elem: ET.Element, tag: str) -> list[str]:
    return [(e.text or "").strip() for e in elem.findall(tag)]


def value(elem: ET.Element, tag: str) -> str:
    found = values(elem, tag)
    assert len(found) == 1, f"<{elem.tag}> should have one <{tag}>, has {len(found)}"
    return found[0]


def gz_topic(name: str) -> str:
    """gz-transport's fully qualified form of a topic name (relative names get a leading '/')."""
    return name if name.startswith("/") else "/" + name


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


@cache
def sdf_tool() -> tuple[str, ...] | None:
    """The SDFormat command line here: `gz sdf` (Gazebo) or `ign sdf` (Debian's sdformat 12)."""
    for tool in ("gz", "ign"):
        exe = shutil.which(tool)
        if exe is None:
            continue
        probe = subprocess.run([exe, "sdf", "--help"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0 and "--check" in probe.stdout + probe.stderr:
            return (exe, "sdf")
    return None


def needs_sdf_tool() -> tuple[str, ...]:
    tool = sdf_tool()
    if tool is None:
        pytest.skip("no SDFormat command line (Debian: apt-get install libsdformat-dev ignition-tools ruby)")
    return tool


@cache
def sdf_spec() -> ET.Element:
    """The aggregated SDF 1.9 specification of the installed SDFormat (`sdf -d 1.9`)."""
    out = subprocess.run([*needs_sdf_tool(), "-d", "1.9"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return ET.fromstring(out.stdout)


def spec_violations(doc: ET.Element) -> list[str]:
    """Elements and attributes of `doc` that the SDF 1.9 spec does not define (custom ones excepted)."""
    spec = sdf_spec()
    definitions: dict[str, ET.Element] = {}
    for e in spec.iter("element"):
        if e.get("name") and e.findall("element") and e.get("name") not in definitions:
            definitions[e.get("name")] = e
    problems: list[str] = []

    def walk(node: ET.Element, rule: ET.Element, path: str) -> None:
        attrs = {a.get("name") for a in rule.findall("attribute")}
        for attr in node.attrib:
            if attr not in attrs:
                problems.append(f"{path}: attribute '{attr}' is not in the SDF spec")
        children: dict[str, ET.Element] = {}
        for e in rule.findall("element"):
            if e.get("copy_data") == "true":
                return  # free-form content (plugins): Gazebo's own systems read it
            name = e.get("name") or e.get("ref")
            children[name] = definitions.get(name, e) if e.get("ref") else e
        for child in node:
            where = f"{path}/{child.tag}" + (f"[{child.get('name')}]" if child.get("name") else "")
            if child.tag in children:
                walk(child, children[child.tag], where)
            elif (node.tag, child.tag) not in HARMONIC_EXTRA_ELEMENTS and ":" not in child.tag:
                problems.append(f"{where}: element not in the SDF spec")

    assert doc.tag == "sdf"
    walk(doc, spec, "sdf")
    return problems


def run_sdf_check(paths: list[Path]) -> list[tuple[Path, subprocess.CompletedProcess]]:
    tool = needs_sdf_tool()
    procs = [
        (p, subprocess.Popen([*tool, "-k", str(p)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for p in paths
    ]
    results = []
    for path, proc in procs:
        out, _ = proc.communicate(timeout=120)
        results.append((path, subprocess.CompletedProcess(proc.args, proc.returncode, out, "")))
    return results


@cache
def setup_kwargs() -> dict:
    """The keyword arguments setup.py passes to setuptools.setup (data_files, entry points)."""
    captured: dict = {}
    original = setuptools.setup
    here = Path.cwd()
    try:
        setuptools.setup = lambda **kw: captured.update(kw)
        import os

        os.chdir(REPO)  # setup.py globs relative paths
        runpy.run_path(str(REPO / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = original
        import os

        os.chdir(here)
    return captured


def installed_share_files() -> set[str]:
    """Paths relative to share/deepracer_rl that setup.py installs."""
    prefix = f"share/{PACKAGE}"
    files = set()
    for dest, sources in setup_kwargs()["data_files"]:
        if dest == prefix or dest.startswith(prefix + "/"):
            rel = dest[len(prefix) :].strip("/")
            files |= {f"{rel}/{Path(s).name}".strip("/") for s in sources}
    return files


def console_scripts() -> dict[str, str]:
    """pyproject.toml's [project.scripts]: console script name -> "module:function"."""
    import tomllib

    return dict(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])


# ---- worlds ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracks() -> dict[str, Track]:
    return {name: Track.load(name) for name in available_tracks()}


@pytest.fixture(scope="module")
def car() -> CarSpec:
    return CarSpec.from_urdf()


def test_every_shipped_track_has_a_world_and_its_meshes(tracks):
    assert {p.stem for p in WORLDS.glob("*.sdf")} == set(tracks)
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


# ---- URDF ----------------------------------------------------------------------------------------


def test_urdf_gazebo_tags_are_generated_and_up_to_date():
    assert gazebo_tags.current_block(URDF) == gazebo_tags.render(URDF), (
        "run `python -m deepracer_rl.gazebo_tags` to regenerate the URDF's Gazebo tags"
    )
    assert gazebo_tags.main(["--check", str(URDF)]) == 0


def test_a_joint_edit_makes_the_tags_stale_until_regenerated(tmp_path, capsys):
    copy = tmp_path / "car.urdf"
    text = URDF.read_text()
    copy.write_text(
        text.replace('<origin xyz="0.082311 0.079601 0.011751"', '<origin xyz="0.092311 0.079601 0.011751"').replace(
            '<origin xyz="0.082311 -0.079601 0.011751"', '<origin xyz="0.092311 -0.079601 0.011751"'
        )
    )
    assert gazebo_tags.main(["--check", str(copy)]) == 1
    assert gazebo_tags.update(copy) is True
    assert gazebo_tags.main(["--check", str(copy)]) == 0
    wheel_base = float(value(plugin(ET.parse(copy).getroot(), "gz-sim-ackermann-steering-system"), "wheel_base"))
    assert wheel_base == pytest.approx(CarSpec.from_urdf(copy).wheelbase, abs=1e-6)
    assert wheel_base == pytest.approx(CarSpec.from_urdf().wheelbase + 0.01, abs=1e-6)
    capsys.readouterr()


def test_ackermann_plugin_figures_are_the_urdf_joints(car):
    root = urdf_root()
    p = plugin(root, "gz-sim-ackermann-steering-system")
    joints = {j.get("name"): j for j in root.findall("joint")}

    def origin(name):
        return np.array([float(v) for v in joints[name].find("origin").get("xyz").split()])

    assert values(p, "left_joint") == [REAR_WHEEL_JOINTS[0], FRONT_WHEEL_JOINTS[0]]
    assert values(p, "right_joint") == [REAR_WHEEL_JOINTS[1], FRONT_WHEEL_JOINTS[1]]
    assert value(p, "left_steering_joint") == STEERING_JOINTS[0]
    assert value(p, "right_steering_joint") == STEERING_JOINTS[1]
    for name in values(p, "left_joint") + values(p, "right_joint"):
        assert joints[name].get("type") == "continuous"
    for name in STEERING_JOINTS:
        assert joints[name].get("type") == "revolute"
        assert joints[name].find("axis").get("xyz") == "0 0 1"
    # left wheels are at +y: the plugin's left/right must match the joints' sides
    assert origin(REAR_WHEEL_JOINTS[0])[1] > 0 > origin(REAR_WHEEL_JOINTS[1])[1]
    assert origin(STEERING_JOINTS[0])[1] > 0 > origin(STEERING_JOINTS[1])[1]

    def num(tag):
        return float(value(p, tag))

    assert num("wheel_base") == pytest.approx(car.wheelbase, abs=1e-6)
    assert num("wheel_separation") == pytest.approx(car.rear_track, abs=1e-6)
    assert num("wheel_radius") == pytest.approx(car.wheel_radius, abs=1e-6)
    kingpins = origin(STEERING_JOINTS[0])[1] - origin(STEERING_JOINTS[1])[1]  # hinges share the chassis frame
    assert num("kingpin_width") == pytest.approx(kingpins, abs=1e-6)
    # the plugin's tightest turn is wheel_base / sin(limit), steering the centre wheel to
    # atan(sin(limit)): that centre angle must be the URDF hinge limit
    assert math.atan(math.sin(num("steering_limit"))) == pytest.approx(car.max_steer, abs=1e-6)
    assert num("min_velocity") < 0 < num("max_velocity")
    assert num("min_acceleration") < 0 < num("max_acceleration")
    assert gz_topic(value(p, "topic")) == "/cmd_vel"


def test_odometry_and_joint_state_plugins_publish_the_contract_frames(car):
    root = urdf_root()
    odom = plugin(root, "gz-sim-odometry-publisher-system")
    assert value(odom, "odom_frame") == "odom"
    assert value(odom, "robot_base_frame") == BASE_LINK
    assert float(value(odom, "odom_publish_frequency")) == car.camera.rate_hz
    assert gz_topic(value(odom, "odom_topic")) == "/odom"
    joint_states = plugin(root, "gz-sim-joint-state-publisher-system")
    assert value(joint_states, "topic")


def test_urdf_plugins_use_documented_harmonic_names_and_elements():
    root = urdf_root()
    found = {p.get("filename") for p in root.iter("plugin")}
    assert found == CAR_SYSTEMS
    for p in root.iter("plugin"):
        name, elements = HARMONIC_SYSTEMS[p.get("filename")]
        assert p.get("name") == name
        assert {c.tag for c in p} <= elements, {c.tag for c in p} - elements
    for gazebo in root.findall("gazebo"):
        assert gazebo.get("reference") in (None, CAMERA_LINK)


def test_camera_sensor_topics_and_frame_are_the_bridged_ones():
    sensor = urdf_root().find(f"gazebo[@reference='{CAMERA_LINK}']/sensor[@type='camera']")
    assert value(sensor, "gz_frame_id") == CAMERA_OPTICAL_LINK
    gz_topics = {e["gz_topic_name"]: e["ros_topic_name"] for e in yaml.safe_load(BRIDGE_YAML.read_text())}
    assert gz_topics[gz_topic(value(sensor, "topic"))] == "/camera/image_raw"
    assert gz_topics[gz_topic(value(sensor.find("camera"), "camera_info_topic"))] == "/camera/camera_info"
    assert value(sensor.find("camera"), "image/format") == "R8G8B8"  # the bridge's rgb8


def test_urdf_passes_check_urdf():
    exe = shutil.which("check_urdf")
    if exe is None:
        pytest.skip("check_urdf not installed (Debian: apt-get install liburdfdom-tools)")
    result = subprocess.run([exe, str(URDF)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Successfully Parsed XML" in result.stdout, result.stdout + result.stderr


def test_urdf_converts_to_valid_sdf_with_the_plugins_and_camera(tmp_path):
    tool = needs_sdf_tool()
    ((path, check),) = run_sdf_check([URDF])
    assert check.returncode == 0 and "Valid" in check.stdout, check.stdout
    printed = subprocess.run([*tool, "-p", str(URDF)], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    sdf = ET.fromstring(printed.stdout)
    assert spec_violations(sdf) == []
    model = sdf.find("model")
    assert {p.get("filename") for p in model.findall("plugin")} == CAR_SYSTEMS
    joints = {j.get("name") for j in model.findall("joint")}
    for p in model.findall("plugin"):
        for tag in ("left_joint", "right_joint", "left_steering_joint", "right_steering_joint"):
            assert set(values(p, tag)) <= joints  # joints survive fixed-joint lumping
    (sensor,) = list(model.iter("sensor"))
    pose = [float(v) for v in value(sensor, "pose").split()]
    cam = CarSpec.from_urdf().camera
    assert pose[:3] == pytest.approx([cam.x, cam.y, cam.z], abs=1e-6)
    assert pose[4] == pytest.approx(cam.pitch, abs=1e-6)


# ---- bridge --------------------------------------------------------------------------------------


def design_contract() -> dict[str, str] | None:
    """The topic table of DESIGN.md when the shared folder sits beside the repository."""
    for design in (REPO.parent / "shared" / "DESIGN.md", REPO / "DESIGN.md"):
        if design.is_file():
            text = design.read_text()
            section = text.split("## Topic contract", 1)[1].split("\n## ", 1)[0]
            rows = re.findall(r"^\| `(/[^`]+)` \| ([\w/]+) \|", section, re.M)
            return {name: kind.replace("/", "/msg/") for name, kind in rows}
    return None


def test_the_contract_here_is_the_design_contract():
    contract = design_contract()
    if contract is None:
        pytest.skip("DESIGN.md is not beside the repository")
    assert contract == CONTRACT


def test_bridge_topics_are_the_contract_except_initialpose():
    from deepracer_rl.ros.contract import INITIALPOSE

    entries = yaml.safe_load(BRIDGE_YAML.read_text())
    ros_topics = [e["ros_topic_name"] for e in entries]
    assert len(ros_topics) == len(set(ros_topics))
    assert set(ros_topics) | {INITIALPOSE} == set(CONTRACT)
    assert INITIALPOSE not in ros_topics  # gz_control serves it through set_pose


def test_bridge_entries_are_valid_ros_gz_pairs_in_the_right_direction():
    for e in yaml.safe_load(BRIDGE_YAML.read_text()):
        assert set(e) <= BRIDGE_KEYS, set(e) - BRIDGE_KEYS
        assert e["ros_type_name"] == CONTRACT[e["ros_topic_name"]]
        assert (e["ros_type_name"], e["gz_type_name"]) in BRIDGE_PAIRS
        assert e["direction"] in BRIDGE_DIRECTIONS
        expected = "ROS_TO_GZ" if e["ros_topic_name"] == "/cmd_vel" else "GZ_TO_ROS"
        assert e["direction"] == expected, e
        package, kind, name = e["ros_type_name"].split("/")
        assert kind == "msg" and hasattr(importlib.import_module(f"{package}.msg"), name)


def test_bridge_gz_topics_are_the_ones_gazebo_publishes():
    root = urdf_root()
    sensor = root.find(f"gazebo[@reference='{CAMERA_LINK}']/sensor[@type='camera']")
    published = {
        gz_topic(value(sensor, "topic")),
        gz_topic(value(sensor.find("camera"), "camera_info_topic")),
        gz_topic(value(plugin(root, "gz-sim-odometry-publisher-system"), "odom_topic")),
        "/clock",  # gz-sim's SimulationRunner publishes the clock on /clock
    }
    subscribed = {gz_topic(value(plugin(root, "gz-sim-ackermann-steering-system"), "topic"))}
    for e in yaml.safe_load(BRIDGE_YAML.read_text()):
        pool = subscribed if e["direction"] == "ROS_TO_GZ" else published
        assert e["gz_topic_name"] in pool, e


# ---- gz_control ----------------------------------------------------------------------------------


class StandInGazebo:
    """Records what gz_control asks of Gazebo; delivers commands like the gz /cmd_vel topic."""

    def __init__(self, world, cmd_topic, timeout_ms):
        self.world, self.cmd_topic, self.timeout_ms = world, cmd_topic, timeout_ms
        self.calls: list[tuple] = []
        self.command_callback = None

    def set_pose(self, name, pose):
        self.calls.append(("set_pose", name, pose))
        return True

    def step(self, steps):
        self.calls.append(("step", steps))
        return True

    def stop_car(self):
        self.calls.append(("stop",))
        if self.command_callback:  # gz-transport delivers own publications to local subscribers
            self.command_callback(0.0, 0.0)

    def on_command(self, callback):
        self.command_callback = callback


@pytest.fixture
def ros():
    rclpy = pytest.importorskip("rclpy")
    context = rclpy.context.Context()
    rclpy.init(context=context)
    yield rclpy, context
    rclpy.shutdown(context=context)


def make_node(ros, **params):
    from rclpy.parameter import Parameter

    from deepracer_rl.ros.gz_control import GzControl

    _, context = ros
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    return GzControl(backend_factory=StandInGazebo, context=context, parameter_overrides=overrides)


def publish_initialpose(ros, node, x, y, yaw):
    rclpy, context = ros
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from rclpy.executors import SingleThreadedExecutor

    pub_node = rclpy.create_node("test_initialpose", context=context)
    pub = pub_node.create_publisher(PoseWithCovarianceStamped, "/initialpose", 10)
    msg = PoseWithCovarianceStamped()
    msg.header.frame_id = "odom"
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + 10.0
    while not any(c[0] == "set_pose" for c in node.backend.calls) and time.monotonic() < deadline:
        pub.publish(msg)
        executor.spin_once(timeout_sec=0.05)
    executor.remove_node(node)
    pub_node.destroy_node()


def test_gz_control_lockstep_steps_one_period_per_command_and_resets(ros, car):
    node = make_node(ros, world="Oval_track", lockstep=True)
    try:
        steps = physics_step(car.camera.rate_hz).steps_per_control
        assert node.steps_per_control == steps
        assert (node.backend.world, node.backend.cmd_topic) == ("Oval_track", "/cmd_vel")
        node.backend.command_callback(1.0, 0.2)
        node.backend.command_callback(1.5, -0.1)
        node.wait_idle()
        assert node.backend.calls == [("step", steps), ("step", steps)]
        node.backend.calls.clear()
        publish_initialpose(ros, node, 2.0, -1.0, 0.5)
        node.wait_idle()
        kinds = [c[0] for c in node.backend.calls]
        assert kinds[:2] == ["stop", "set_pose"]  # its own zero command is not stepped for
        assert node.backend.calls[-1] == ("step", steps)  # one period: fresh image and odometry
        _, name, pose = node.backend.calls[1]
        assert name == CAR_NAME
        assert (pose.x, pose.y, pose.z) == pytest.approx((2.0, -1.0, 0.0))
        assert 2 * math.atan2(pose.qz, pose.qw) == pytest.approx(0.5)
        node.backend.command_callback(0.0, 0.0)  # a real zero command from the agent still steps
        node.wait_idle()
        assert node.backend.calls[-1] == ("step", steps)
    finally:
        node.destroy_node()


def test_gz_control_free_run_only_teleports(ros):
    node = make_node(ros, world="Oval_track")
    try:
        assert node.backend.command_callback is None
        publish_initialpose(ros, node, 1.0, 1.0, 0.0)
        node.wait_idle()
        assert [c[0] for c in node.backend.calls] == ["stop", "set_pose"]
    finally:
        node.destroy_node()


def test_gz_control_needs_a_world(ros):
    with pytest.raises(ValueError, match="world"):
        make_node(ros)


def test_gz_control_without_gz_bindings_says_what_to_install():
    from deepracer_rl.ros.gz_control import GzTransportBackend, GzUnavailable

    try:
        importlib.import_module("gz.transport13")
    except ImportError:
        pass
    else:
        pytest.skip("the gz-transport Python bindings are installed here")
    with pytest.raises(GzUnavailable, match="python3-gz-transport13"):
        GzTransportBackend("Oval_track", "/cmd_vel", 1000)


# ---- launch files --------------------------------------------------------------------------------


class LaunchFile:
    """What a launch file names, read from its syntax tree (no launch packages needed)."""

    def __init__(self, path: Path):
        self.path = path
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.constants = {
            t.id: n.value.value
            for n in self.tree.body
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            for t in n.targets
            if isinstance(t, ast.Name)
        }

    def literal(self, node):
        """A constant string (or a name bound to one at module level); None when dynamic."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        return None

    def calls(self, name: str) -> list[ast.Call]:
        return [
            n
            for n in ast.walk(self.tree)
            if isinstance(n, ast.Call)
            and (
                (isinstance(n.func, ast.Name) and n.func.id == name)
                or (isinstance(n.func, ast.Attribute) and n.func.attr == name)
            )
        ]

    def keyword(self, call: ast.Call, name: str):
        return next((k.value for k in call.keywords if k.arg == name), None)

    def declared_arguments(self) -> set[str]:
        return {self.literal(c.args[0]) for c in self.calls("DeclareLaunchArgument")}

    def used_arguments(self) -> set[str]:
        return {self.literal(c.args[0]) for c in self.calls("LaunchConfiguration")}

    def nodes(self) -> list[tuple[str, str, set[str]]]:
        """(package, executable, parameter names) of every Node action."""
        found = []
        for call in self.calls("Node"):
            package = self.literal(self.keyword(call, "package"))
            executable = self.literal(self.keyword(call, "executable"))
            names = set()
            params = self.keyword(call, "parameters")
            if params is not None:
                assert isinstance(params, ast.List), f"{self.path}: write parameters as a list of dicts"
                for d in params.elts:
                    assert isinstance(d, ast.Dict), f"{self.path}: write parameters as a list of dicts"
                    names |= {self.literal(k) for k in d.keys}
            found.append((package, executable, names))
        return found

    def share_files(self) -> list[tuple[str, list]]:
        """(package, [path parts, None where dynamic]) of every _share(...) call."""
        return [
            (self.literal(c.args[0]), [self.literal(a) if not isinstance(a, ast.JoinedStr) else a for a in c.args[1:]])
            for c in self.calls("_share")
        ]

    def includes(self) -> list[tuple[tuple[str, str] | None, set[str]]]:
        """((package, relative file) of the included launch file, launch argument names)."""
        found = []
        for call in self.calls("IncludeLaunchDescription"):
            shares = [
                n for n in ast.walk(call.args[0]) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "_share"
            ]
            target = None
            if shares:
                parts = [self.literal(a) for a in shares[0].args]
                target = (parts[0], "/".join(str(p) for p in parts[1:]))
            args = self.keyword(call, "launch_arguments")
            names = set()
            if args is not None:
                mapping = (
                    args.func.value if isinstance(args, ast.Call) and isinstance(args.func, ast.Attribute) else args
                )
                assert isinstance(mapping, ast.Dict), f"{self.path}: write launch_arguments as {{...}}.items()"
                names = {self.literal(k) for k in mapping.keys}
            found.append((target, names))
        return found

    def include_arguments(self, rel: str) -> dict:
        """name -> literal value (None where dynamic) of the launch arguments given to an included launch file."""
        for call in self.calls("IncludeLaunchDescription"):
            shares = [
                n for n in ast.walk(call.args[0]) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "_share"
            ]
            if shares and "/".join(str(self.literal(a)) for a in shares[0].args[1:]) == rel:
                mapping = self.keyword(call, "launch_arguments").func.value
                return {self.literal(k): self.literal(v) for k, v in zip(mapping.keys, mapping.values)}
        raise AssertionError(f"{self.path.name} does not include {rel}")

    def processes(self) -> list[list[list]]:
        """The command of every ExecuteProcess, as segments of elements (literal strings; ast nodes where dynamic).

        The command is a list literal, or a name bound to one and extended with `+=` list
        literals (optional flags): one segment per literal, in the file's order.
        """
        found = []
        for call in self.calls("ExecuteProcess"):
            cmd = self.keyword(call, "cmd") or call.args[0]
            if isinstance(cmd, ast.List):
                segments = [cmd.elts]
            else:
                assert isinstance(cmd, ast.Name), f"{self.path.name}: give ExecuteProcess cmd as a list or a name"
                segments = [
                    n.value.elts
                    for n in ast.walk(self.tree)
                    if (
                        (
                            isinstance(n, ast.Assign)
                            and any(isinstance(t, ast.Name) and t.id == cmd.id for t in n.targets)
                        )
                        or (
                            isinstance(n, ast.AugAssign)
                            and isinstance(n.target, ast.Name)
                            and n.target.id == cmd.id
                            and isinstance(n.op, ast.Add)
                        )
                    )
                ]
                assert segments and all(isinstance(seg, list) for seg in segments), (
                    f"{self.path.name}: build the command '{cmd.id}' from list literals (=, +=)"
                )
            found.append([[self.literal(e) if self.literal(e) is not None else e for e in seg] for seg in segments])
        return found

    def executable(self, element) -> tuple[str | None, str]:
        """(package or None, name) of a command's first element: a literal or ExecutableInPackage(...)."""
        if isinstance(element, str):
            return None, element
        assert isinstance(element, ast.Call) and getattr(element.func, "id", "") == "ExecutableInPackage", (
            f"{self.path.name}: a command starts with a literal executable or ExecutableInPackage(...)"
        )
        return self.literal(self.keyword(element, "package")), self.literal(self.keyword(element, "executable"))


def launch_files() -> list[Path]:
    return sorted(LAUNCH_DIR.glob("*.launch.py"))


def node_parameters(module: str) -> set[str]:
    """Parameters a deepracer_rl node declares (declare_parameter or its local declare helper)."""
    path = REPO / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text())
    names = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", None)) in (
            "declare_parameter",
            "declare",
        ):
            if n.args and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str):
                names.add(n.args[0].value)
    return names


def check_cli_command(name: str, scripts: dict, segments: list[list]) -> None:
    """A console script of setup.py, a subcommand its build_parser() knows, then only its flags with valid values."""
    exe = segments[0][0]
    assert exe in scripts, f"{name}: {exe} is not a console_script of setup.py"
    module = importlib.import_module(scripts[exe].split(":")[0])
    assert hasattr(module, "build_parser"), f"{name}: {exe} has no argparse parser to check against"
    parser = module.build_parser()
    (subcommands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    sub = segments[0][1]
    assert sub in subcommands.choices, f"{name}: {exe} has no subcommand {sub!r}"
    options = subcommands.choices[sub]._option_string_actions
    for seg in [segments[0][2:], *segments[1:]]:
        i = 0
        while i < len(seg):
            flag = seg[i]
            shown = ast.unparse(flag) if isinstance(flag, ast.AST) else repr(flag)
            assert isinstance(flag, str) and flag.startswith("--"), f"{name}: expected a flag, got {shown}"
            assert flag in options, f"{name}: `{exe} {sub}` has no option {flag}"
            action = options[flag]
            if action.nargs == 0:  # store_true and the like
                i += 1
                continue
            assert i + 1 < len(seg), f"{name}: {flag} needs a value"
            value = seg[i + 1]
            if isinstance(value, str):
                if action.choices is not None:
                    assert value in action.choices, f"{name}: {flag} {value!r} is not one of {list(action.choices)}"
                if action.type is not None:
                    action.type(value)
            i += 2


def test_gazebo_launch_file_exists_and_declares_its_arguments():
    lf = LaunchFile(LAUNCH_DIR / "gazebo.launch.py")
    assert lf.declared_arguments() == {"track", "headless", "lockstep"}
    assert {exe for _, exe, _ in lf.nodes()} == {"robot_state_publisher", "create", "parameter_bridge", "gz_control"}


def test_sim_launch_file_starts_the_embedded_simulator_or_includes_gazebo():
    lf = LaunchFile(LAUNCH_DIR / "sim.launch.py")
    assert lf.declared_arguments() == {
        "simulator",
        "track",
        "lockstep",
        "headless",
        "encoding",
        "randomize",
        "seed",
        "policy",
        "max_speed",
    }
    assert {exe for _, exe, _ in lf.nodes()} == {"sim_node", "inference_node"}
    assert [target for target, _ in lf.includes()] == [(PACKAGE, "launch/gazebo.launch.py")]
    assert set(lf.include_arguments("launch/gazebo.launch.py")) == {"track", "headless", "lockstep"}
    default = next(c for c in lf.calls("DeclareLaunchArgument") if lf.literal(c.args[0]) == "simulator")
    assert lf.literal(lf.keyword(default, "default_value")) == "embedded"


def test_train_launch_file_runs_the_cli_through_the_bridge_against_a_lockstep_simulator():
    lf = LaunchFile(LAUNCH_DIR / "train.launch.py")
    assert lf.declared_arguments() == {
        "simulator",
        "track",
        "headless",
        "reward",
        "metadata",
        "steps",
        "out",
        "ros_timeout",
    }
    assert lf.nodes() == []
    assert [target for target, _ in lf.includes()] == [(PACKAGE, "launch/sim.launch.py")]
    given = lf.include_arguments("launch/sim.launch.py")
    assert set(given) == {"simulator", "track", "headless", "lockstep"} and given["lockstep"] == "true"
    (segments,) = lf.processes()
    assert lf.executable(segments[0][0]) == (PACKAGE, "deepracer-rl")
    assert segments[0][1:4] == ["train", "--backend", "ros"]
    flags = {e for seg in segments for e in seg if isinstance(e, str) and e.startswith("--")}
    assert flags == {"--backend", "--track", "--steps", "--out", "--reward", "--metadata", "--ros-timeout"}


def test_the_command_check_rejects_unknown_flags_and_bad_values():
    scripts = console_scripts()
    check_cli_command("ok", scripts, [["deepracer-rl", "train", "--backend", "ros", "--steps", ast.Name("n")]])
    for bad, match in (
        ([["deepracer-rl", "train", "--backends", "ros"]], "no option --backends"),
        ([["deepracer-rl", "train", "--backend", "gazebo"]], "not one of"),
        ([["deepracer-rl", "trian"]], "no subcommand"),
        ([["deepracer_rl", "train"]], "not a console_script"),
        ([["deepracer-rl", "train", "--steps"]], "needs a value"),
    ):
        with pytest.raises(AssertionError, match=match):
            check_cli_command("bad", scripts, bad)
    with pytest.raises(ValueError):
        check_cli_command("bad", scripts, [["deepracer-rl", "train", "--steps", "many"]])


@pytest.mark.parametrize("path", launch_files(), ids=lambda p: p.name)
def test_launch_file_imports_only_the_jazzy_launch_api(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names = {a.name for a in node.names}
            assert names <= LAUNCH_API.get(node.module, set()), (node.module, names)
        elif isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= {"os"}, ast.dump(node)
        elif isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):  # imports inside functions: deepracer_rl's own modules
                if isinstance(inner, ast.ImportFrom):
                    assert inner.module in LAUNCH_API or inner.module.startswith("deepracer_rl."), inner.module
                    if inner.module.startswith("deepracer_rl."):
                        module = importlib.import_module(inner.module)
                        assert all(hasattr(module, a.name) for a in inner.names), inner.module


def test_launch_files_are_installed():
    installed = installed_share_files()
    for path in launch_files():
        assert f"launch/{path.name}" in installed


@pytest.mark.parametrize("path", launch_files(), ids=lambda p: p.name)
def test_launch_file_names_only_things_that_exist(path):
    lf = LaunchFile(path)
    declared = lf.declared_arguments()
    assert None not in declared
    assert lf.used_arguments() <= declared, lf.used_arguments() - declared
    scripts = console_scripts()
    installed = installed_share_files()
    for package, executable, params in lf.nodes():
        assert package and executable, f"{path.name}: Node package/executable must be literal"
        if package == PACKAGE:
            assert executable in scripts, f"{executable} is not a console_script of setup.py"
            module = scripts[executable].split(":")[0]
            known = node_parameters(module) | COMMON_NODE_PARAMETERS
        else:
            assert (package, executable) in EXTERNAL_EXECUTABLES, (package, executable)
            known = EXTERNAL_EXECUTABLES[(package, executable)] | COMMON_NODE_PARAMETERS
        assert params <= known, f"{path.name}: {package}/{executable} has no parameter(s) {params - known}"
    for package, parts in lf.share_files():
        if package == PACKAGE:
            literal = [p for p in parts if isinstance(p, str)]
            if len(literal) == len(parts):
                assert "/".join(parts) in installed, f"{path.name}: {'/'.join(parts)} is not installed by setup.py"
            else:  # a dynamic file name, e.g. worlds/<track>.sdf: its folder is installed
                folder = "/".join(literal[: parts.index(next(p for p in parts if not isinstance(p, str)))])
                assert any(f.startswith(folder + "/") for f in installed), folder
    for target, names in lf.includes():
        assert target is not None, f"{path.name}: include launch files through _share(package, ...)"
        package, rel = target
        if package == PACKAGE:
            assert rel in installed
            known = LaunchFile(REPO / rel).declared_arguments()
        else:
            assert target in EXTERNAL_LAUNCH_FILES, target
            known = EXTERNAL_LAUNCH_FILES[target]
        assert names <= known, f"{path.name}: {rel} declares no {names - known}"
    for segments in lf.processes():
        package, executable = lf.executable(segments[0][0])
        assert package in (None, PACKAGE), f"{path.name}: {package}/{executable} is not this package's"
        check_cli_command(path.name, scripts, [[executable, *segments[0][1:]], *segments[1:]])


def test_every_track_a_launch_can_name_has_an_installed_world():
    installed = installed_share_files()
    for name in available_tracks():
        assert f"worlds/{name}.sdf" in installed
        for part in PARTS:
            assert f"worlds/{mesh_path(name, part)}" in installed
    assert f"worlds/{MESH_DIR}/{MATERIAL_FILE}" in installed
    assert "config/ros_gz_bridge.yaml" in installed
    assert "urdf/deepracer.urdf" in installed


def test_gz_control_is_a_console_script():
    assert console_scripts()["gz_control"] == "deepracer_rl.ros.gz_control:main"
    assert node_parameters("deepracer_rl.ros.gz_control") >= {"world", "model", "lockstep", "steps_per_control"}
