"""tools/build_interfaces.py: a clear one-line error without the build tools, and the wheels' cmake fix."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "build_interfaces.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("build_interfaces", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_cmake_gives_one_line_saying_what_to_install(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path / "empty"))  # no cmake, g++ or make on PATH
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--prefix", str(tmp_path / "prefix"), "--build-dir", str(tmp_path / "build")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cmake" in proc.stderr and "apt-get install cmake g++ make" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_the_wheels_hard_coded_python_include_paths_are_pointed_at_this_python(tmp_path):
    tool = load_tool()
    cmake = tmp_path / "share" / "sensor_msgs" / "cmake" / "export_sensor_msgs__rosidl_generator_pyExport.cmake"
    cmake.parent.mkdir(parents=True)
    kept = str(tmp_path)  # an existing folder stays as it is
    cmake.write_text(
        "set_target_properties(sensor_msgs::sensor_msgs__rosidl_generator_py PROPERTIES\n"
        '  INTERFACE_INCLUDE_DIRECTORIES "/opt/python/cp311-cp311/include/python3.11;'
        f'/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include;{kept}"\n)\n'
    )
    assert tool.fix_export_include_paths(tmp_path) == [cmake]
    text = cmake.read_text()
    assert f'"{sysconfig.get_paths()["include"]};{np.get_include()};{kept}"' in text
    assert tool.fix_export_include_paths(tmp_path) == []  # idempotent


def test_a_package_is_up_to_date_only_for_the_sources_it_was_built_from(tmp_path):
    tool = load_tool()
    package = "tf2_msgs"
    assert not tool.is_up_to_date(package, tmp_path)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(tmp_path), "platbase": str(tmp_path)}))
    (site / package / "msg").mkdir(parents=True)
    (site / package / "msg" / "__init__.py").write_text("")
    stamp = tmp_path / "share" / package / tool.STAMP_NAME
    stamp.parent.mkdir(parents=True)
    stamp.write_text(tool.source_digest(REPO / "interfaces" / package, tmp_path) + "\n")
    assert tool.is_up_to_date(package, tmp_path)
    stamp.write_text("0" * 64 + "\n")  # built from other sources
    assert not tool.is_up_to_date(package, tmp_path)


def test_every_package_of_interfaces_is_built():
    tool = load_tool()
    folders = {p.parent.name for p in (REPO / "interfaces").glob("*/package.xml")}
    assert set(tool.PACKAGES) == folders
    assert "ros_gz_interfaces" in folders  # SetEntityPose of the bot-car node
