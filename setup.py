"""ament_python package deepracer_rl (also pip-installable: `pip install -e .`)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "deepracer_rl"
SHARE = f"share/{PACKAGE}"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "benchmarks"]),
    package_data={PACKAGE: ["tracks/*", "rewards/*.py", "ros/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (SHARE, ["package.xml"]),
        (f"{SHARE}/launch", glob("launch/*.launch.py")),
        (f"{SHARE}/worlds", glob("worlds/*.sdf")),
        (f"{SHARE}/worlds/meshes", glob("worlds/meshes/*.obj") + glob("worlds/meshes/*.mtl")),
        (f"{SHARE}/urdf", glob("urdf/*.urdf")),
        (f"{SHARE}/config", glob("config/*.yaml") + glob("config/*.json")),
        (f"{SHARE}/tracks", glob(f"{PACKAGE}/tracks/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="deepracer_rl maintainers",
    maintainer_email="maintainers@deepracer-rl.invalid",
    description="DeepRacer-style RL on ROS 2: simulator, Gym bridge, training CLI, inference node.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "deepracer-rl = deepracer_rl.cli:main",
            "gz_control = deepracer_rl.ros.gz_control:main",
            "inference_node = deepracer_rl.ros.inference_node:main",
            "sim_node = deepracer_rl.ros.sim_node:main",
        ],
    },
)
