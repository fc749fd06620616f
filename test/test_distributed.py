"""Training with Ray rollout workers (`--workers N`, distributed.py) on a real local Ray: the run
directory is the one of local training, a worker killed by its pid is restarted and the run reaches
its step count, and without --workers Ray is never imported."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from processes import REPO, SimProcess

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # a single-node Ray stays on 127.0.0.1
ray = pytest.importorskip("ray")

from deepracer_rl.config import TrainConfig  # noqa: E402
from deepracer_rl.distributed import worker_seed  # noqa: E402
from deepracer_rl.rundir import RunDir  # noqa: E402
from deepracer_rl.train import train  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One real local Ray for the module (2 CPUs: one per worker), shut down at its end."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def small_config(**changes) -> TrainConfig:
    config = TrainConfig(
        workers=2,
        n_envs=2,
        steps=3000,
        episodes_between_updates=10,
        eval_every=1500,
        checkpoint_every=1500,
        torch_threads=1,
        seed=3,
    )
    for name, value in changes.items():
        setattr(config, name, value)
    return config


def test_importing_training_and_the_cli_does_not_import_ray():
    code = "import sys, deepracer_rl.train, deepracer_rl.cli; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_worker_seeds_come_from_the_run_seed_and_differ_per_worker():
    assert worker_seed(3, 0) == worker_seed(3, 0)
    assert len({worker_seed(3, i) for i in range(8)}) == 8
    assert worker_seed(3, 0) != worker_seed(4, 0)


@pytest.fixture(scope="module")
def two_worker_run(tmp_path_factory):
    """A run trained 3000 steps by 2 workers of 2 cars: (its directory, train's summary, seconds)."""
    out = tmp_path_factory.mktemp("two_workers") / "run"
    started = time.monotonic()
    summary = train(small_config(), out)
    return out, summary, time.monotonic() - started


def test_two_workers_train_into_the_same_run_directory_as_local_training_and_resume(two_worker_run):
    out, summary, first_s = two_worker_run
    run = RunDir(out)
    assert summary["timesteps"] >= 3000
    assert run.checkpoint.is_file() and run.best_model.is_file()
    assert json.loads(run.config_path.read_text())["workers"] == 2
    state = run.load_state()
    assert state["timesteps"] >= 3000
    rows = run.progress_csv.read_text().splitlines()
    assert len(rows) >= 3  # header + one row per update (1000 steps per update of 4 cars)
    simtraces = run.training_simtraces()
    assert simtraces, "no training simtrace"
    import csv

    episodes = set()
    for _, path in simtraces:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                episodes.add(int(row["episode"]))
    assert len(episodes) >= 4
    metrics = json.loads(run.training_metrics_path.read_text())
    assert metrics["metrics"], "no TrainingMetrics episodes"
    assert run.evaluations_csv.is_file()
    # resume: the run goes on from its checkpoint with the same two workers
    resumed = train(small_config(steps=4000), out, resume=True)
    assert resumed["timesteps"] >= 4000
    assert run.load_state()["timesteps"] >= 4000
    print(f"2 workers: 3000 steps in {first_s:.1f} s")


def test_a_worker_killed_by_its_pid_is_restarted_and_the_run_reaches_its_step_count(tmp_path, local_ray):
    out = tmp_path / "run"
    args = ["deepracer_rl.cli", "train", "--workers", "2", "--n-envs", "2", "--steps", "3000"]
    args += ["--episodes-between-updates", "10", "--eval-every", "3000", "--threads", "1"]
    args += ["--out", str(out), "--ray-address", local_ray]
    proc = SimProcess(tmp_path / "train.log", args)
    try:
        deadline = time.monotonic() + 180
        while not (match := re.search(r"worker 1: pid (\d+)", proc.output())):
            assert proc.proc.poll() is None, proc.output()
            assert time.monotonic() < deadline, proc.output()
            time.sleep(0.2)
        pid = int(match.group(1))
        time.sleep(3.0)  # inside the first rollout (about 10 s on 2 cores)
        os.kill(pid, signal.SIGKILL)
        code = proc.proc.wait(timeout=400)
    finally:
        proc.interrupt()
    output = proc.output() if not proc.log.closed else (tmp_path / "train.log").read_text()
    assert code == 0, output
    restart = re.search(rf"Ray worker 1 \(pid {pid}\) died .* collected again", output)
    assert restart, output
    print(restart.group(0))
    assert RunDir(out).load_state()["timesteps"] >= 3000
    assert RunDir(out).checkpoint.is_file()


def test_a_run_with_workers_reproduces_from_its_seed(two_worker_run, tmp_path):
    import csv

    def updates(out) -> list[dict]:
        with open(RunDir(out).progress_csv, newline="") as handle:
            return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(handle)]

    train(small_config(), tmp_path / "again")
    again = updates(tmp_path / "again")
    assert len(again) >= 2
    assert updates(two_worker_run[0])[: len(again)] == again  # the same episodes, rewards, progress


def test_deepracer_utils_reads_the_training_simtrace_of_a_run_with_workers(two_worker_run):
    deepracer_logs = pytest.importorskip("deepracer.logs")
    run = RunDir(two_worker_run[0])
    state = run.load_state()
    log = deepracer_logs.DeepRacerLog(str(run.path))
    log.load_training_trace()
    df = log.dataframe()
    assert df["episode"].nunique() == state["episodes"]  # every finished episode of every worker's cars, once
    assert (df["episode_status"] == "prepare").sum() == state["episodes"]
    assert len(deepracer_logs.AnalysisUtils.simulation_agg(df)) == state["episodes"]


def test_evaluation_laps_as_ray_tasks_report_what_laps_in_this_process_report(two_worker_run):
    from deepracer_rl.evaluate_runs import evaluate_target

    out = two_worker_run[0]
    here = evaluate_target(out, laps=2, seed=5)
    spread = evaluate_target(out, laps=2, seed=5, workers=2)
    mine, theirs = here.as_dict(), spread.as_dict()
    assert mine.pop("simtrace") != theirs.pop("simtrace")
    assert mine == theirs
    import csv

    with open(spread.simtrace, newline="") as handle:
        episodes = {row["episode"] for row in csv.DictReader(handle)}
    assert episodes == {"0", "1"}


def test_validation_of_a_multi_track_run_on_the_workers_reports_what_it_reports_here(tmp_path):
    """Model selection with --workers: each validation lap (track, camera, start) runs on a worker, with
    the learner's weights; the table is the one validation in this process gives."""
    from deepracer_rl.algorithms import load_model
    from deepracer_rl.train import make_worker_env, validate_model

    out = tmp_path / "run"
    config = small_config(
        steps=2000,
        eval_every=1000,
        track_specs=["reinvent_base", "Oval_track"],
        val_track_specs=["Bowtie_track"],
        val_perturb=["brightness=0.7"],
        eval_laps=2,
    )
    train(config, out)
    run = RunDir(out)
    saved = run.load_config()
    rows = run.validation_csv.read_text().splitlines()
    assert rows[0].startswith("timesteps,track,camera")
    assert {r.split(",")[1] for r in rows[1:]} == {"Bowtie_track"}
    assert {r.split(",")[2] for r in rows[1:]} == {"plain", "brightness=0.7"}
    env = make_worker_env(saved, run)
    try:
        on_workers = load_model(run.checkpoint, env=env, algo=saved.algo)
        spread = validate_model(on_workers, saved, run)
    finally:
        env.close()
    here = validate_model(load_model(run.checkpoint, algo=saved.algo), saved, run)
    assert spread.laps == here.laps == 4  # 2 starts x (plain + one perturbation)
    assert spread.statuses == here.statuses
    assert spread.progress == pytest.approx(here.progress, abs=1e-6)
    assert spread.lap_times_s == pytest.approx(here.lap_times_s)


def test_ctrl_c_stops_a_run_with_workers_with_a_checkpoint_to_resume(tmp_path, local_ray):
    out = tmp_path / "run"
    args = ["deepracer_rl.cli", "train", "--workers", "2", "--n-envs", "2", "--steps", "100000"]
    args += ["--episodes-between-updates", "10", "--threads", "1", "--out", str(out), "--ray-address", local_ray]
    proc = SimProcess(tmp_path / "train.log", args)
    deadline = time.monotonic() + 180
    while not RunDir(out).progress_csv.exists():  # one update done
        assert proc.proc.poll() is None, proc.output()
        assert time.monotonic() < deadline, proc.output()
        time.sleep(0.2)
    code = proc.interrupt(timeout=120)
    output = (tmp_path / "train.log").read_text()
    assert code == 2, output
    assert "continue with --resume" in output, output
    assert RunDir(out).checkpoint.is_file() and RunDir(out).load_state()["timesteps"] >= 1000


def test_two_workers_over_the_ros_backend_race_their_own_simulators_in_their_own_domains(tmp_path, capsys):
    """--workers 2 --backend ros on real rclpy/DDS: each worker starts `deepracer-rl sim --lockstep` in
    ROS_DOMAIN_ID base + i and races it; the run trains; closing the pool ends both simulators."""
    pytest.importorskip("rclpy")
    domain = int(os.environ["ROS_DOMAIN_ID"])  # the session's (conftest.py)
    base = None if domain + 2 <= 101 else 1  # the default: this process's domain + 1
    out = tmp_path / "run"
    config = small_config(
        n_envs=1,
        backend="ros",
        ros_domain_base=base,
        ros_timeout=30.0,
        steps=800,
        episodes_between_updates=4,  # 400 steps per update: 200 per car
        eval_every=800,
        checkpoint_every=800,
        eval_laps=1,
        image_width=40,
        image_height=40,
        network="small",
        batch_size=64,
    )
    started = time.monotonic()
    summary = train(config, out)
    seconds = time.monotonic() - started
    err = capsys.readouterr().err
    workers = re.findall(r"worker (\d): pid (\d+) on \S+ \(ROS_DOMAIN_ID (\d+), simulator pid (\d+)\)", err)
    assert len(workers) == 2, err
    domains = [int(w[2]) for w in workers]
    assert domains == [(domain + 1 if base is None else base) + i for i in range(2)], err
    assert summary["timesteps"] >= 800
    saved = json.loads(RunDir(out).config_path.read_text())
    assert (saved["workers"], saved["n_envs"], saved["backend"]) == (2, 1, "ros")
    assert RunDir(out).load_state()["timesteps"] >= 800 and RunDir(out).checkpoint.is_file()
    assert RunDir(out).training_simtraces(), "no training simtrace"
    for _, worker_pid, _, sim_pid in workers:  # the pool closed: no simulator (nor worker) is left
        for pid in (int(sim_pid), int(worker_pid)):
            assert _gone_within(pid, 20.0), f"process {pid} still runs 20 s after the pool closed"
    print(f"2 ROS workers x 1 car: {summary['timesteps']} steps in {seconds:.1f} s, domains {domains}")


def _gone_within(pid: int, seconds: float) -> bool:
    """Whether process `pid` ends (or is a zombie: it ran to its end, its parent has not reaped it)
    within `seconds`; Ray ends a killed actor's process asynchronously."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def test_a_worker_killed_by_sigkill_leaves_no_simulator_running(tmp_path):
    """A process holding a `WorkerSimulator` dies by SIGKILL: its simulator notices (--parent-pid) and stops."""
    pytest.importorskip("rclpy")
    code = (
        "from deepracer_rl.distributed import WorkerSimulator; from deepracer_rl.track import Track\n"
        "sim = WorkerSimulator(Track.load('reinvent_base'), 1, True, 0, int(__import__('sys').argv[1]))\n"
        "sim.wait_ready(); print('simulator', sim.pid, flush=True); __import__('time').sleep(300)\n"
    )
    worker = SimProcess(tmp_path / "worker.log", ["-c", code, os.environ["ROS_DOMAIN_ID"]], module=False)
    try:
        deadline = time.monotonic() + 120
        while not (match := re.search(r"simulator (\d+)", worker.output())):
            assert worker.proc.poll() is None and time.monotonic() < deadline, worker.output()
            time.sleep(0.1)
        sim = int(match.group(1))
        os.kill(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(10)
        deadline = time.monotonic() + 10
        while _running(sim):  # the simulator is in its own group: only it can end itself
            assert time.monotonic() < deadline, "the simulator outlived its killed worker"
            time.sleep(0.05)
    finally:
        worker.interrupt()
        if "sim" in locals() and _running(sim):
            os.killpg(sim, signal.SIGKILL)


def _running(pid: int) -> bool:
    """The process exists and has not exited (a zombie waiting for init to reap it has)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workers", "2", "--algo", "sac"], "--workers trains PPO only"),
        (["--ray-address", "auto"], "give --workers too"),
        (["--workers", "-1"], "--workers -1"),
        (["--workers", "2", "--backend", "ros", "--ros-domain-base", "101"], "valid ids are 0..101"),
        (["--backend", "ros", "--ros-domain-base", "5"], "--ros-domain-base places the simulators"),
        (["--workers", "2", "--external-simulators"], "--external-simulators places the simulators"),
    ],
)
def test_bad_worker_options_are_refused_with_one_message(args, message, tmp_path, capsys):
    from deepracer_rl.cli import main

    assert main(["train", "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_workers_rollout_holds_what_the_learner_needs():
    from stable_baselines3 import PPO

    from deepracer_rl.distributed import PolicySpec, RolloutWorker, policy_weights, rollout_bytes
    from deepracer_rl.vec_env import RaceVecEnv

    kwargs = dict(track="reinvent_base", reward_isolation=None)
    learner_env = RaceVecEnv(n_envs=1, seed=0, **kwargs)
    worker = RolloutWorker(0, worker_seed(0, 0), 2, kwargs, 0.99)
    try:
        model = PPO("CnnPolicy", learner_env, n_steps=16, batch_size=16, device="cpu")
        rollout = worker.collect((PolicySpec.of(model), policy_weights(model.policy)), 20)
    finally:
        worker.close()
        learner_env.close()
    assert rollout["obs"].shape[:2] == (20, 2) and rollout["obs"].dtype == np.uint8
    for key in ("values", "log_probs", "rewards", "episode_starts", "dones", "bootstrap"):
        assert rollout[key].shape == (20, 2), key
    assert rollout["episode_starts"][0].all()
    info = rollout["infos"][0][0]
    assert "waypoints" not in info["params"] and "terminal_observation" not in info
    assert {"progress", "episode_status", "start_params"} <= set(info)
    assert rollout_bytes(rollout) > rollout["obs"].nbytes
    again = RolloutWorker(0, worker_seed(0, 0), 2, kwargs, 0.99)  # the same seed: the same rollout
    other = RolloutWorker(1, worker_seed(0, 1), 2, kwargs, 0.99)
    try:
        policy = (PolicySpec.of(model), policy_weights(model.policy))
        same, different = again.collect(policy, 20), other.collect(policy, 20)
    finally:
        again.close()
        other.close()
    assert np.array_equal(same["actions"], rollout["actions"]) and np.array_equal(same["rewards"], rollout["rewards"])
    assert not np.array_equal(different["actions"], rollout["actions"])


def sensor_metadata(folder, sensors: list[str]):
    """A model_metadata.json of the console's action space with these sensors."""
    from deepracer_rl.action_space import ActionSpace

    path = folder / "model_metadata.json"
    path.write_text(json.dumps({**ActionSpace.default().to_metadata(), "sensor": sensors}))
    return path


def test_a_workers_rollout_of_several_sensors_keeps_each_input_in_its_own_dtype(tmp_path):
    """A Dict observation travels per key (camera frames uint8, the lidar float32); the stereo pair alone
    is a Box of 2 uint8 channels, as in-process."""
    from stable_baselines3 import PPO

    from deepracer_rl.distributed import PolicySpec, RolloutWorker, join_cars, policy_weights, rollout_bytes, step_of
    from deepracer_rl.observation import ObservationSpec
    from deepracer_rl.vec_env import RaceVecEnv

    spec = ObservationSpec(40, 40)
    for sensors, policy_name in ((["STEREO_CAMERAS", "LIDAR"], "MultiInputPolicy"), (["STEREO_CAMERAS"], "CnnPolicy")):
        folder = tmp_path / "_".join(sensors)
        folder.mkdir()
        kwargs = dict(track="reinvent_base", reward_isolation=None, observation=spec)
        kwargs["metadata"] = str(sensor_metadata(folder, sensors))
        learner_env = RaceVecEnv(n_envs=1, seed=0, **kwargs)
        worker = RolloutWorker(0, worker_seed(0, 0), 2, kwargs, 0.99)
        try:
            model = PPO(policy_name, learner_env, n_steps=16, batch_size=16, device="cpu")
            rollout = worker.collect((PolicySpec.of(model), policy_weights(model.policy)), 12)
        finally:
            worker.close()
            learner_env.close()
        obs = rollout["obs"]
        if len(sensors) == 1:
            assert obs.shape == (12, 2, 2, 40, 40) and obs.dtype == np.uint8
            continue
        assert obs["STEREO_CAMERAS"].shape == (12, 2, 2, 40, 40) and obs["STEREO_CAMERAS"].dtype == np.uint8
        assert obs["LIDAR"].shape == (12, 2, 64) and obs["LIDAR"].dtype == np.float32
        assert rollout_bytes(rollout) > obs["STEREO_CAMERAS"].nbytes + obs["LIDAR"].nbytes
        joined = join_cars([obs, obs], axis=1)  # two workers' cars side by side
        assert joined["LIDAR"].shape == (12, 4, 64) and step_of(joined, 3)["STEREO_CAMERAS"].shape == (4, 2, 40, 40)


def test_two_workers_train_a_stereo_and_lidar_model_that_resumes_and_exports_two_named_inputs(tmp_path):
    import onnxruntime as ort

    from deepracer_rl.export import export_run

    out = tmp_path / "run"
    meta = sensor_metadata(tmp_path, ["STEREO_CAMERAS", "LIDAR"])
    small = dict(metadata=str(meta), image_width=40, image_height=40, network="small", batch_size=64, epochs=1)
    small.update(episodes_between_updates=1, eval_every=10_000, checkpoint_every=10_000)
    started = time.monotonic()
    summary = train(small_config(steps=128, **small), out)  # one update of 32 steps x 4 cars
    seconds = time.monotonic() - started
    assert summary["timesteps"] >= 128
    config = json.loads(RunDir(out).config_path.read_text())
    assert config["workers"] == 2 and config["sensors"] == ["STEREO_CAMERAS", "LIDAR"]
    resumed = train(small_config(steps=256, **small), out, resume=True)
    assert resumed["timesteps"] >= 256
    resumed_s = time.monotonic() - started - seconds
    export = export_run(out)
    session = ort.InferenceSession(str(export / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape[1:]) for i in session.get_inputs()] == [("STEREO_CAMERAS", [2, 40, 40]), ("LIDAR", [64])]
    export_s = time.monotonic() - started - seconds - resumed_s
    print(f"2 workers, STEREO_CAMERAS + LIDAR: 128 steps in {seconds:.1f} s, resumed in {resumed_s:.1f} s")
    print(f"(each with the workers' start-up and the final lap), exported in {export_s:.1f} s")


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["in_process", "workers"])
def test_the_ros_backend_with_other_sensors_is_refused_before_anything_is_written(workers, tmp_path, capsys):
    from deepracer_rl.cli import main

    meta = sensor_metadata(tmp_path, ["STEREO_CAMERAS", "LIDAR"])
    args = ["train", "--out", str(tmp_path / "run"), "--metadata", str(meta), "--backend", "ros", *workers]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{meta}: --backend ros trains on FRONT_FACING_CAMERA only; sensor(s) STEREO_CAMERAS, LIDAR" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--ray-address", "auto"], "give --workers too"),
        (["--workers", "2", "--video", "laps.mp4"], "no --video"),
    ],
)
def test_bad_evaluation_worker_options_are_refused_with_one_message(args, message, capsys):
    from deepracer_rl.cli import main

    assert main(["evaluate", "--driver", "baseline", "--laps", "1", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_ray_address_where_nothing_answers_is_refused_in_seconds():
    import socket

    from deepracer_rl.distributed import WorkerError, check_reachable

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(WorkerError, match="no Ray cluster answers there"):
        check_reachable(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 10
    with pytest.raises(WorkerError, match="expected auto or HOST:PORT"):
        check_reachable("head-node")
    check_reachable(ray.get_runtime_context().gcs_address)  # the module's Ray answers
