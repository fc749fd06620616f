"""The ROS 2 package: `colcon build` of a copy of the repository installs what `ros2 run` and
`ros2 launch` need, and package.xml declares the ROS interfaces the nodes use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from deepracer_rl.track import available_tracks

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "deepracer_rl"
BIN = Path(sys.executable).parent  # the venv's bin: colcon and its extensions live here
# Directories whose untracked files belong to the package (work not yet committed).
PACKAGE_DIRS = ("deepracer_rl", "urdf", "launch", "worlds", "config", "resource")
ROS_INTERFACES = {
    "rclpy",
    "sensor_msgs",
    "nav_msgs",
    "geometry_msgs",
    "std_msgs",
    "std_srvs",
    "rosgraph_msgs",
}


def package_files() -> list[str]:
    """Tracked files plus untracked, not ignored files of the package directories."""
    git = ["git", "-C", str(REPO)]
    tracked = subprocess.run([*git, "ls-files"], capture_output=True, text=True, check=True)
    untracked = subprocess.run(
        [*git, "ls-files", "--others", "--exclude-standard", "--", *PACKAGE_DIRS],
        capture_output=True,
        text=True,
        check=True,
    )
    names = set(tracked.stdout.splitlines()) | set(untracked.stdout.splitlines())
    return sorted(n for n in names if (REPO / n).is_file())  # skip files deleted in the tree


@pytest.fixture(scope="module")
def colcon_build(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, list[str]]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the git checkout to list the package files")
    colcon = BIN / "colcon"
    if not colcon.exists():
        pytest.skip(f"colcon is not installed next to {sys.executable}")
    root = tmp_path_factory.mktemp("ws")
    src = root / "src" / PACKAGE
    files = package_files()
    for name in files:
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["COLCON_HOME"] = str(root / "colcon_home")  # no user defaults or mixins
    env.pop("COLCON_DEFAULTS_FILE", None)
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [
            str(colcon),
            "--log-base",
            str(root / "log"),
            "build",
            "--base-paths",
            str(root / "src"),
            "--build-base",
            str(root / "build"),
            "--install-base",
            str(root / "install"),
            "--event-handlers",
            "console_cohesion+",
            "desktop_notification-",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, root / "install" / PACKAGE, files


def test_colcon_finds_an_ament_python_package(tmp_path):
    src = tmp_path / "src" / PACKAGE
    src.mkdir(parents=True)
    for name in ("package.xml", "setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    env = dict(
        os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", COLCON_HOME=str(tmp_path / "colcon_home")
    )
    result = subprocess.run(
        [str(BIN / "colcon"), "--log-base", str(tmp_path / "log"), "list", "--base-paths", str(tmp_path / "src")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [PACKAGE, str(src), "(ros.ament_python)"]


def test_colcon_build_succeeds(colcon_build):
    result, _, _ = colcon_build
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Summary: 1 package finished" in result.stdout, result.stdout[-4000:]


def test_the_install_holds_what_ros2_run_and_launch_need(colcon_build):
    result, install, files = colcon_build
    assert result.returncode == 0, result.stdout[-4000:]
    share = install / "share" / PACKAGE
    assert (share / "package.xml").read_bytes() == (REPO / "package.xml").read_bytes()
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()
    installed_tracks = {p.stem for p in (share / "tracks").glob("*.npy")}
    assert installed_tracks == set(available_tracks())
    for notice in ("LICENSE", "NOTICE"):
        assert (share / "tracks" / notice).is_file()
    urdf_files = {Path(f).name for f in files if f.startswith("urdf/") and f.count("/") == 1}
    if urdf_files:
        assert {p.name for p in (share / "urdf").iterdir()} >= urdf_files
    script = install / "lib" / PACKAGE / "deepracer-rl"
    assert script.is_file() and os.access(script, os.X_OK)


def test_the_installed_console_script_runs_from_the_install(colcon_build):
    result, install, _ = colcon_build
    assert result.returncode == 0, result.stdout[-4000:]
    site = next((install / "lib").glob("python3*/site-packages"))
    env = dict(os.environ, PYTHONPATH=str(site))  # ahead of the venv's editable install
    where = subprocess.run(
        [sys.executable, "-c", "import deepracer_rl.track as t; print(t.__file__)"],
        env=env,
        cwd=install,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(where.stdout.strip()).is_relative_to(install), where.stdout + where.stderr
    run = subprocess.run(
        [str(install / "lib" / PACKAGE / "deepracer-rl"), "tracks", "--json"],
        env=env,
        cwd=install,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert [row["name"] for row in json.loads(run.stdout)] == available_tracks()


def test_package_xml_is_format_3_with_the_ros_dependencies():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == PACKAGE
    assert root.findtext("export/build_type") == "ament_python"
    exec_depends = {e.text for e in root.findall("exec_depend")}
    exec_depends |= {e.text for e in root.findall("depend")}
    assert ROS_INTERFACES <= exec_depends, ROS_INTERFACES - exec_depends
    for tag in ("version", "description", "license"):
        assert (root.findtext(tag) or "").strip(), tag
    maintainer = root.find("maintainer")
    assert maintainer is not None and maintainer.get("email")


def test_package_xml_passes_the_ros_parser():
    catkin_pkg = pytest.importorskip("catkin_pkg.package")
    package = catkin_pkg.parse_package(str(REPO / "package.xml"))
    package.validate()
    assert package.package_format == 3
    assert ROS_INTERFACES <= {d.name for d in package.exec_depends}


def test_colcon_never_builds_the_vendored_interface_packages(tmp_path):
    """interfaces/ holds DeepRacer's and tf2_msgs' definitions for the venv build only: COLCON_IGNORE keeps a
    workspace build from shadowing the car's own deepracer_interfaces_pkg (whose layout may differ)."""
    env = dict(
        os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", COLCON_HOME=str(tmp_path / "colcon_home")
    )
    if not (BIN / "colcon").exists():
        pytest.skip(f"colcon is not installed next to {sys.executable}")
    result = subprocess.run(
        [str(BIN / "colcon"), "--log-base", str(tmp_path / "log"), "list", "--base-paths", str(REPO / "interfaces")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []
    assert (REPO / "interfaces" / "COLCON_IGNORE").is_file()
