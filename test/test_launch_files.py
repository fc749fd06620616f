"""The launch files (launch/*.launch.py), checked statically without the launch packages.

Each declares the arguments it should and uses only those; imports only the Jazzy launch
API; names only executables, parameters, installed share files and included launch
arguments that exist; the commands it runs are console scripts with subcommands and flags
their CLI parser knows. setup.py installs the launch files and every world a launch can name.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import runpy
from functools import cache
from pathlib import Path

import pytest
import setuptools
from gazebo_helpers import REPO, console_scripts, node_parameters
from track_sets import WORLD_TRACKS

from deepracer_rl.world import MATERIAL_FILE, MESH_DIR, PARTS, mesh_path

LAUNCH_DIR = REPO / "launch"
PACKAGE = "deepracer_rl"

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
    # The DeepRacer's own nodes car.launch.py starts as its launcher does (aws-deepracer-launcher and the
    # community's deepracer-custom-car): camera_pkg src/camera_node.cpp declares resize_images.
    ("camera_pkg", "camera_node"): {"resize_images"},
    **{
        (package, executable): set()
        for package, executable in (
            ("ctrl_pkg", "ctrl_node"),
            ("deepracer_systems_pkg", "software_update_node"),
            ("deepracer_systems_pkg", "model_loader_node"),
            ("deepracer_systems_pkg", "otg_control_node"),
            ("deepracer_systems_pkg", "network_monitor_node"),
            ("deepracer_systems_pkg", "deepracer_systems_scripts_node"),
            ("device_info_pkg", "device_info_node"),
            ("i2c_pkg", "battery_node"),
            ("model_optimizer_pkg", "model_optimizer_node"),
            ("sensor_fusion_pkg", "sensor_fusion_node"),
            ("servo_pkg", "servo_node"),
            ("status_led_pkg", "status_led_node"),
            ("usb_monitor_pkg", "usb_monitor_node"),
            ("webserver_pkg", "webserver_publisher_node"),
            ("web_video_server", "web_video_server"),
        )
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
    assert lf.declared_arguments() == {"track", "headless", "lockstep", "race_type", "world_config", "seed"}
    assert {exe for _, exe, _ in lf.nodes()} == {
        "robot_state_publisher",
        "create",
        "parameter_bridge",
        "gz_control",
        "bot_cars_node",
    }


def test_gazebo_launch_file_drives_the_objects_of_the_world_variant_it_starts():
    """With objects, bot_cars_node gets the track, race type, world config and seed the world variant was made
    from (the same variables), the world's name; the bridge gets the world's set_pose service as an argument."""
    lf = LaunchFile(LAUNCH_DIR / "gazebo.launch.py")
    (node,) = [c for c in lf.calls("Node") if lf.literal(lf.keyword(c, "executable")) == "bot_cars_node"]
    params = lf.keyword(node, "parameters").elts[0]
    given = {lf.literal(k): v for k, v in zip(params.keys, params.values)}
    names = {k: v.id for k, v in given.items() if isinstance(v, ast.Name)}
    assert names == {
        "track": "track",
        "world": "track",
        "race_type": "race_type",
        "world_config": "world_config",
        "seed": "seed",
    }
    assert lf.literal(given["use_sim_time"]) is True
    (world_call,) = lf.calls("find_world")  # the variant is found with those very variables
    assert world_call.args[0].id == "track"
    assert {k.arg: k.value.id for k in world_call.keywords} == {"race": "race", "seed": "seed"}
    (race_call,) = lf.calls("race_objects_from")
    assert [ast.unparse(a) for a in race_call.args[:2]] == ["race_type or None", "world_config or None"]
    (bridge,) = [c for c in lf.calls("Node") if lf.literal(lf.keyword(c, "executable")) == "parameter_bridge"]
    arguments = ast.unparse(lf.keyword(bridge, "arguments"))
    assert arguments == "[set_pose_bridge_argument(track)] if objects else []"
    assert "if objects:" in ast.unparse(lf.tree) and "objects = race is not None and race.count > 0" in ast.unparse(
        lf.tree
    )
    from deepracer_rl.ros.contract import set_pose_bridge_argument

    assert set_pose_bridge_argument("reinvent_base") == (
        "/world/reinvent_base/set_pose@ros_gz_interfaces/srv/SetEntityPose@gz.msgs.Pose@gz.msgs.Boolean"
    )


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
        "sensors",
        "race_type",
        "world_config",
        "policy",
        "max_speed",
    }
    assert {exe for _, exe, _ in lf.nodes()} == {"sim_node", "inference_node"}
    assert [target for target, _ in lf.includes()] == [(PACKAGE, "launch/gazebo.launch.py")]
    assert set(lf.include_arguments("launch/gazebo.launch.py")) == {
        "track",
        "headless",
        "lockstep",
        "race_type",
        "world_config",
        "seed",
    }
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


def test_car_launch_file_replaces_the_stock_inference_and_navigation_nodes():
    lf = LaunchFile(LAUNCH_DIR / "car.launch.py")
    assert lf.declared_arguments() == {"model", "throttle_scale", "max_speed", "watchdog_timeout", "stock_nodes"}
    started = {(package, executable) for package, executable, _ in lf.nodes()}
    assert (PACKAGE, "inference_node") in started
    assert {("camera_pkg", "camera_node"), ("ctrl_pkg", "ctrl_node"), ("servo_pkg", "servo_node")} <= started
    # ctrl_pkg waits for the model optimizer's service; the stock inference and navigation nodes are replaced.
    assert ("model_optimizer_pkg", "model_optimizer_node") in started
    assert not {p for p, _ in started} & {"inference_pkg", "deepracer_navigation_pkg"}
    (ours,) = [c for c in lf.calls("Node") if lf.literal(lf.keyword(c, "package")) == PACKAGE]
    params = lf.keyword(ours, "parameters").elts[0]
    profile = dict(zip((lf.literal(k) for k in params.keys), params.values))["profile"]
    assert lf.literal(profile) == "car"


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
                named = "/".join(parts)  # an installed file, or a folder of installed files
                assert named in installed or any(f.startswith(named + "/") for f in installed), (
                    f"{path.name}: {named} is not installed by setup.py"
                )
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


def test_the_representative_worlds_are_installed():
    # Other shipped tracks' worlds are generated on demand (world.world_file, test_worlds.py).
    installed = installed_share_files()
    for name in WORLD_TRACKS:
        assert f"worlds/{name}.sdf" in installed
        for part in PARTS:
            assert f"worlds/{mesh_path(name, part)}" in installed
    assert f"worlds/{MESH_DIR}/{MATERIAL_FILE}" in installed
    assert "config/ros_gz_bridge.yaml" in installed
    assert "urdf/deepracer.urdf" in installed
