"""The architecture of docs/architecture.md holds: layers import downward only, no import circles,
no ROS below the interfaces; the backend, sensor and algorithm registries and the run directory
behave as documented."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "deepracer_rl"
ARCHITECTURE = REPO / "docs" / "architecture.md"


# ---- the static import graph ---------------------------------------------------------------------


def module_files() -> dict[str, Path]:
    """deepracer_rl module name (without the package prefix; "deepracer_rl" for the package) -> file."""
    mods = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE).with_suffix("").parts
        if parts[0] == "rewards":  # example reward_function files: data, not modules of the package
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts) or "deepracer_rl"] = f
    return mods


def imports_of(name: str, path: Path) -> set[str]:
    """Every import statement's target (module level and inside functions; not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    is_package = path.name == "__init__.py"
    own = [] if name == "deepracer_rl" else name.split(".")
    base = own if is_package else own[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                stem = base[: len(base) - (node.level - 1)]
                module = ".".join(["deepracer_rl", *stem, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


def package_edges() -> dict[str, set[str]]:
    """Module -> the deepracer_rl modules it imports (names as in module_files)."""
    mods = module_files()
    edges = {}
    for name, path in mods.items():
        out = set()
        for target in imports_of(name, path):
            if target != "deepracer_rl" and not target.startswith("deepracer_rl."):
                continue
            short = target.removeprefix("deepracer_rl").lstrip(".") or "deepracer_rl"
            while short not in mods and "." in short:
                short = short.rpartition(".")[0]
            if short in mods and short != name:
                out.add(short)
        edges[name] = out
    return edges


def documented_layers() -> dict[str, int]:
    """Module -> layer number, from the layer table of docs/architecture.md."""
    layers = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*(\d+)\s*\|\s*[a-z ]+\|(.*)\|\s*$", line)
        if match:
            for module in re.findall(r"`([a-z_.]+)`", match.group(2)):
                layers[module] = int(match.group(1))
    return layers


def test_every_module_has_a_documented_layer_and_the_table_names_only_real_modules():
    layers, mods = documented_layers(), module_files()
    assert len(set(layers.values())) == 6, layers
    assert set(mods) - set(layers) == set(), "modules missing from docs/architecture.md's layer table"
    assert set(layers) - set(mods) == set(), "docs/architecture.md names modules that do not exist"


def test_layers_import_downward_only():
    layers = documented_layers()
    upward = [
        f"{name} (layer {layers[name]}) imports {target} (layer {layers[target]})"
        for name, targets in package_edges().items()
        for target in targets
        if layers[target] > layers[name]
    ]
    assert upward == []


def test_no_import_circles():
    edges = package_edges()
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert circles == []


def test_nothing_below_the_interfaces_imports_ros():
    leaks = []
    for name, path in module_files().items():
        if name == "cli" or name == "ros" or name.startswith("ros."):
            continue
        for target in imports_of(name, path):
            if target.split(".")[0] == "rclpy" or target.startswith("deepracer_rl.ros"):
                leaks.append(f"{name} -> {target}")
    assert leaks == []


def test_every_public_function_has_type_hints():
    """Arguments and return of every public function and method (and __init__'s arguments)."""
    missing = []
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if node.name.startswith("_") and node.name != "__init__":
                continue
            args = [a for a in [*node.args.args, *node.args.kwonlyargs] if a.arg not in ("self", "cls")]
            args += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
            bare = [a.arg for a in args if a.annotation is None]
            if bare or (node.returns is None and node.name != "__init__"):
                missing.append(f"{name}.{node.name} (line {node.lineno}): {bare or 'return'}")
    assert missing == []


def test_importing_the_core_and_training_loads_no_rclpy():
    code = (
        "import sys; import deepracer_rl.train, deepracer_rl.evaluate_runs, deepracer_rl.export, "
        "deepracer_rl.vec_env; print('rclpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# ---- registries ------------------------------------------------------------------------------------


def test_backends_are_found_by_name_and_an_unknown_one_is_refused():
    from deepracer_rl.backend import available_backends, backend_class
    from deepracer_rl.inprocess import InProcessBackend

    assert {"inprocess", "ros"} <= set(available_backends())
    assert backend_class("inprocess") is InProcessBackend
    with pytest.raises(ValueError, match="unknown backend 'gazebo9'; choose one of"):
        backend_class("gazebo9")


def test_the_ros_backend_class_comes_from_the_ros_package():
    pytest.importorskip("rclpy")
    from deepracer_rl.backend import backend_class

    cls = backend_class("ros")
    assert cls.__module__ == "deepracer_rl.ros.backend" and cls.errors


def test_sensor_registry_derives_the_observation_and_refuses_what_cannot_be():
    from deepracer_rl.observation import ObservationSpec
    from deepracer_rl.sensors import SENSORS, SensorError, check_sensor_names, observation_space, sensors_for

    (camera,) = sensors_for(["FRONT_FACING_CAMERA"])
    assert camera is SENSORS["FRONT_FACING_CAMERA"] and camera.input_name == "observation"
    assert observation_space([camera], ObservationSpec(80, 60)).shape == (1, 60, 80)
    assert check_sensor_names(["FRONT_FACING_CAMERA", "LIDAR"]) == ("FRONT_FACING_CAMERA", "LIDAR")
    with pytest.raises(SensorError, match="has no camera"):
        check_sensor_names(["LIDAR"])
    with pytest.raises(SensorError, match="unknown sensor 'SONAR'"):
        check_sensor_names(["SONAR"])
    with pytest.raises(SensorError, match="must be a list"):
        check_sensor_names("FRONT_FACING_CAMERA")


def test_metadata_with_a_sensor_string_or_a_sensor_combination_deepracer_lacks_is_refused(tmp_path):
    from deepracer_rl.action_space import ActionSpace, MetadataError
    from deepracer_rl.race import RaceCore
    from deepracer_rl.sensors import SensorError

    base = ActionSpace.default().to_metadata()
    path = tmp_path / "model_metadata.json"
    path.write_text(json.dumps({**base, "sensor": "FRONT_FACING_CAMERA"}))
    with pytest.raises(MetadataError, match="field 'sensor' must be a non-empty list"):
        ActionSpace.load(path)
    path.write_text(json.dumps({**base, "sensor": ["FRONT_FACING_CAMERA", "STEREO_CAMERAS"]}))
    with pytest.raises(SensorError, match="names 2 camera kinds"):
        RaceCore.create(metadata=path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("neural_network", "DEEP_RESNET", "field 'neural_network' is 'DEEP_RESNET'; DeepRacer's values are"),
        ("training_algorithm", "dqn", "field 'training_algorithm' is 'dqn'; DeepRacer's values are clipped_ppo, sac"),
        ("version", "9", "field 'version' is '9'; DeepRacer's metadata versions are 1, 2, 3, 4, 5"),
        ("version", "five", "field 'version' is 'five'; DeepRacer's metadata versions are"),
    ],
)
def test_metadata_names_outside_deepracers_schema_are_refused_naming_the_field(field, value, message, tmp_path):
    from deepracer_rl.action_space import ActionSpace, MetadataError

    path = tmp_path / "model_metadata.json"
    path.write_text(json.dumps({**ActionSpace.default().to_metadata(), field: value}))
    with pytest.raises(MetadataError, match=message):
        ActionSpace.load(path)
    for version in ("3", 4, "5.0"):  # what DeepRacer and the community tools write
        path.write_text(json.dumps({**ActionSpace.default().to_metadata(), "version": version}))
        ActionSpace.load(path)


def test_the_export_names_every_network_as_deepracer_does():
    from deepracer_rl.action_space import NEURAL_NETWORKS
    from deepracer_rl.networks import DEEPRACER_NETWORK_NAMES, NETWORKS

    assert set(DEEPRACER_NETWORK_NAMES) == set(NETWORKS)
    assert set(DEEPRACER_NETWORK_NAMES.values()) <= set(NEURAL_NETWORKS)
    assert DEEPRACER_NETWORK_NAMES["deep"] != DEEPRACER_NETWORK_NAMES["shallow"]


def test_algorithm_registry_builds_by_name_and_refuses_unknown_names():
    from deepracer_rl.algorithms import ALGORITHMS, AlgorithmError, algorithm

    assert set(ALGORITHMS) == {"ppo", "sac"}
    with pytest.raises(AlgorithmError, match="unknown algorithm 'dqn'; choose one of ppo, sac"):
        algorithm("dqn")


# ---- the run directory -------------------------------------------------------------------------------


def test_best_model_rule_is_completion_then_lap_time():
    from deepracer_rl.rundir import is_better

    assert is_better([50.0, None], None)
    assert is_better([100.0, 9.0], [80.0, None])
    assert is_better([100.0, 8.0], [100.0, 9.0])
    assert not is_better([100.0, 9.5], [100.0, 9.0])
    assert not is_better([90.0, None], [100.0, 12.0])


def test_among_objects_selection_ranks_the_mean_lap_with_its_collision_penalties():
    """A policy with one clean lap and one that hit a box (5 s) loses to one whose laps are all clean
    though slower; in a time trial the best lap still decides."""
    from deepracer_rl.config import TrainConfig
    from deepracer_rl.evaluate import LapReport
    from deepracer_rl.rundir import is_better
    from deepracer_rl.train import ranked_for_selection

    def report(times):
        return LapReport(laps=len(times), completed_laps=len(times), lap_times_s=list(times), progress=[100.0] * 2)

    boxes = TrainConfig(world_config={"NUMBER_OF_OBSTACLES": 3, "RANDOMIZE_OBSTACLE_LOCATIONS": True})
    lucky, steady = [9.5, 16.0], [10.4, 10.6]  # a collision: +5 s and the reset behind the box
    assert ranked_for_selection(report(lucky), boxes).selection_key == [100.0, 12.75]
    assert is_better(ranked_for_selection(report(steady), boxes).selection_key, [100.0, 12.75])
    time_trial = TrainConfig()
    assert ranked_for_selection(report(lucky), time_trial).selection_key == [100.0, 9.5]
    assert not is_better(ranked_for_selection(report(steady), time_trial).selection_key, [100.0, 9.5])
    # --select-by says it either way: the racing recipe ranks a time trial's laps by their mean
    by_mean = TrainConfig(select_by="mean_lap")
    assert ranked_for_selection(report(lucky), by_mean).selection_key == [100.0, 12.75]
    assert is_better(ranked_for_selection(report(steady), by_mean).selection_key, [100.0, 12.75])
    by_best = dataclasses.replace(boxes, select_by="best_lap")
    assert ranked_for_selection(report(lucky), by_best).selection_key == [100.0, 9.5]


def test_a_run_directory_is_locked_while_training_writes_into_it(tmp_path):
    from deepracer_rl.rundir import RunDir, RunError

    run = RunDir(tmp_path / "run")
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from deepracer_rl.rundir import RunDir\n"
            f"with RunDir({str(run.path)!r}).lock():\n    print('locked', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert other.stdout.readline().strip() == "locked"
        with pytest.raises(RunError, match="another process is training into this run"):
            with run.lock():
                pass
    finally:
        other.kill()
        other.wait(10)
    with run.lock():  # released when its holder is gone
        assert run.lock_path.read_text().strip() == str(__import__("os").getpid())


def test_train_refuses_a_second_training_into_the_same_run(tmp_path):
    from deepracer_rl.config import TrainConfig
    from deepracer_rl.rundir import RunDir
    from deepracer_rl.train import TrainingError, train

    run = RunDir(tmp_path / "run")
    with run.lock():
        with pytest.raises(TrainingError, match="another process is training into this run"):
            train(TrainConfig(steps=10), run.path)
    assert not run.config_path.exists()  # nothing was written


def test_a_malformed_config_or_state_names_the_file(tmp_path):
    from deepracer_rl.rundir import RunDir, RunError

    run = RunDir(tmp_path)
    run.config_path.write_text("{not json")
    with pytest.raises(RunError, match=r"config.json: not valid JSON"):
        run.load_config()
    run.state_path.parent.mkdir()
    run.state_path.write_text("[1, 2]")
    with pytest.raises(RunError, match=r"state.json: expected a JSON object"):
        run.load_state()


# ---- one race core over the in-process backend ------------------------------------------------------


def test_the_race_core_is_the_same_over_a_backend_made_by_name_or_by_hand():
    from deepracer_rl.action_space import ActionSpace
    from deepracer_rl.inprocess import InProcessBackend
    from deepracer_rl.observation import ObservationSpec
    from deepracer_rl.race import RaceCore
    from deepracer_rl.reward import RewardFunction
    from deepracer_rl.sensors import sensors_for
    from deepracer_rl.track import Track

    track, actions = Track.load("reinvent_base"), ActionSpace.default()
    by_name = RaceCore.create(track, 2, actions, seed=3)
    backend = InProcessBackend(track, 2, ObservationSpec(), sensors_for(actions.sensor), seed=3)
    by_hand = RaceCore(backend, actions, RewardFunction(), seed=3)
    rng = np.random.default_rng(0)
    for core in (by_name, by_hand):
        core.reset_cars(np.arange(2))
    for _ in range(40):
        action = rng.integers(0, len(actions.actions), 2)
        a, b = by_name.step(action), by_hand.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[2] == b[2]
        by_name.observe(np.arange(2))
        by_hand.observe(np.arange(2))
        np.testing.assert_array_equal(by_name.stack, by_hand.stack)
