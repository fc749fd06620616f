"""Helpers shared by the Gazebo test modules (worlds, URDF Gazebo tags, bridge config, gz_control, launch files).

Paths of the repository's Gazebo files, the Gazebo Harmonic systems and the elements they
read, small XML accessors, the SDFormat command line (`gz sdf` / `ign sdf`) and a walk of a
document against its SDF 1.9 spec, and what pyproject.toml and the nodes' sources declare
(console scripts, node parameters).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest

from deepracer_rl.car import default_urdf_path

REPO = Path(__file__).resolve().parents[1]
URDF = default_urdf_path()
BRIDGE_YAML = REPO / "config" / "ros_gz_bridge.yaml"

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
# Elements Harmonic reads that Debian's older SDFormat spec (12) does not list:
# gz_frame_id is read by gz-sensors 8 (src/Sensor.cc); camera_info_topic is in
# sdformat 14's SDF 1.9 camera spec (sdf/1.9/camera.sdf).
HARMONIC_EXTRA_ELEMENTS = {("sensor", "gz_frame_id"), ("camera", "camera_info_topic")}


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


def console_scripts() -> dict[str, str]:
    """pyproject.toml's [project.scripts]: console script name -> "module:function"."""
    import tomllib

    return dict(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])


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
