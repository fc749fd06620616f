"""ament_python package deepracer_rl (also pip-installable: `pip install -e .`).

The metadata, console scripts and package data are in pyproject.toml (PEP 621); this file adds
what only setup.py can give colcon: the files installed under share/deepracer_rl and the
ament index marker.
"""

from glob import glob
from os.path import isdir

from setuptools import setup

PACKAGE = "deepracer_rl"
SHARE = f"share/{PACKAGE}"

setup(
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (SHARE, ["package.xml"]),
        (f"{SHARE}/launch", glob("launch/*.launch.py")),
        (f"{SHARE}/worlds", glob("worlds/*.sdf")),
        (f"{SHARE}/worlds/meshes", glob("worlds/meshes/*.obj") + glob("worlds/meshes/*.mtl")),
        (f"{SHARE}/urdf", glob("urdf/*.urdf")),
        (f"{SHARE}/config", glob("config/*.yaml") + glob("config/*.json")),
        (f"{SHARE}/tracks", glob(f"{PACKAGE}/tracks/*")),
        *[(f"{SHARE}/{folder}", glob(f"{folder}/*")) for folder in sorted(glob("models/*")) if isdir(folder)],
    ],
    zip_safe=False,
)
