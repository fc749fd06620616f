"""PPO with Ray rollout workers: each worker is a Ray actor holding `K` cars (a `RaceVecEnv`) and a
CPU copy of the policy; the learner (this process) trains on what they collect.

Once per update the learner puts the policy's weights into Ray's object store (one `ray.put`,
read by every worker), each worker drives its cars `n_steps` steps with them and returns the
observations, actions, log-probs, values, rewards, episode starts and the step infos (without the
track's waypoints); `DistributedPPO.collect_rollouts` replays the steps through the run's
callbacks (simtrace, metrics, checkpoints, evaluation, progress bar) exactly as local training
calls them, fills SB3's `RolloutBuffer` (n_envs = workers x K) and computes the advantages.
A car with several sensors (`sensors.observation_space`: a Dict by input name) sends one array
per key, each in its own dtype (camera frames uint8, a lidar float32), and the learner's buffer is
SB3's `DictRolloutBuffer` (PPO picks it for a Dict space), as in-process.

A worker that dies (killed, out of memory, a crashed simulator) is restarted by Ray
(`max_restarts`) or, once Ray gives up, made again by `WorkerPool`; its partial rollout is
dropped and collected again, and the run says so in one line. Ray is imported only here and
only when a run has workers.

With `--backend ros` each worker races its own simulator behind the topic contract in a ROS domain
of its own (`worker_domain_ids`): it sets ROS_DOMAIN_ID before rclpy initialises in its process and
starts `deepracer-rl sim --lockstep --cars K` as a child (`WorkerSimulator`), which ends with the
worker even when the worker is killed; with `external_simulators` it races one the user started in
that domain (Gazebo).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from .config import TrainConfig
from .evaluate import LapReport

Observation = np.ndarray | dict[str, np.ndarray]  # one sensor's Box, or several sensors' Dict by input name
MAX_RESTARTS = 3  # restarts Ray makes of one worker actor before the pool makes a new one
MAX_FAILURES = 10  # deaths of one worker within one update before the run stops
STARTUP_TIMEOUT_S = 300.0  # s for the workers to be placed and build their cars
DROPPED_PARAMS = ("waypoints",)  # the track's, the same every step: not sent back per step
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
MAX_DOMAIN_ID = 101  # highest ROS_DOMAIN_ID every RMW takes on Linux (above it ports clash with ephemeral ones)
SIM_READY_TIMEOUT_S = 120.0  # s for a worker's simulator to start (imports, the track's renderer)
SIM_STOP_TIMEOUT_S = 10.0  # s a worker's simulator has to stop after SIGINT before its group is killed
SIM_IMAGE_SIZE = (160, 120)  # a worker's simulator camera: DeepRacer's policy image (camera.OBSERVATION_*)
SIM_READY = "lockstep (one period per /cmd_vel)"  # in sim_node's first log line: it publishes and listens


class WorkerError(RuntimeError):
    """Ray workers could not be started or keep dying; the message says why."""


def worker_seed(seed: int, index: int) -> int:
    """Worker `index`'s seed, derived from the run's seed (numpy's SeedSequence spawn keys), so a
    run with the same seed and worker count reproduces."""
    return int(np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1)[0])


def worker_domain_ids(workers: int, base: int | None = None, environ: Any = os.environ) -> list[int]:
    """The ROS_DOMAIN_ID of each worker of a `--backend ros` run: base + i for worker i. The default base
    is this (the learner's) process's ROS_DOMAIN_ID + 1 (1 when unset), so no worker shares the
    learner's domain. ValueError when an id falls outside 0..MAX_DOMAIN_ID."""
    if base is None:
        text = environ.get("ROS_DOMAIN_ID", "").strip() or "0"
        if not text.isdigit():
            raise ValueError(f"ROS_DOMAIN_ID={text!r} is not a domain id; give --ros-domain-base B")
        base = int(text) + 1
    ids = [base + i for i in range(workers)]
    if ids and not (0 <= ids[0] and ids[-1] <= MAX_DOMAIN_ID):
        raise ValueError(
            f"--workers {workers} --backend ros races in ROS_DOMAIN_ID {ids[0]}..{ids[-1]} (one per worker), but "
            f"valid ids are 0..{MAX_DOMAIN_ID}: give --ros-domain-base B with 0 <= B <= {MAX_DOMAIN_ID + 1 - workers}"
            + (" (or fewer workers)" if workers > MAX_DOMAIN_ID else "")
        )
    return ids


def use_ros_domain(domain_id: int) -> None:
    """This process's ROS domain (before rclpy initialises in it), discovery on this machine unless the
    user chose a range (a worker's simulator runs beside it)."""
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def track_rows(track: Any) -> np.ndarray:
    """A Track as DeepRacer's (N, 6) route array (a closed loop repeats its first row), for a `.npy` file."""
    rows = np.hstack([track.waypoints, track.inner, track.outer])
    return np.vstack([rows, rows[:1]]) if track.closed else rows


class WorkerSimulator:
    """A worker's own `deepracer-rl sim --lockstep --cars K` in the worker's ROS domain: a child process in
    a process group of its own, its output in a file of its temporary folder.

    It ends with the worker: `close()` sends SIGINT, waits `SIM_STOP_TIMEOUT_S`, then kills the group
    and reaps it; a worker that dies without closing (SIGKILL, out of memory) leaves it to notice it
    has a new parent (`sim --parent-pid`, checked every 0.1 s), and it stops by itself. A child
    process rather than a thread: the simulator renders and publishes on a core of its own, and a
    crash or hang in it cannot take the worker's Python down with it.
    """

    def __init__(self, track: Any, n_cars: int, grayscale: bool, seed: int, domain_id: int):
        from .track import Track
        from .track_set import TrackSet

        if isinstance(track, (str, os.PathLike)):
            track = Track.load(track)
        if isinstance(track, TrackSet):
            track = track.tracks[0]  # the ROS backend refuses several tracks
        self.domain_id = domain_id
        self.folder = Path(tempfile.mkdtemp(prefix="deepracer_rl_sim_"))
        track_file = self.folder / "track.npy"
        np.save(track_file, track_rows(track))
        width, height = SIM_IMAGE_SIZE
        command = [sys.executable, "-m", "deepracer_rl.cli", "sim", "--lockstep", "--cars", str(n_cars)]
        command += ["--track", str(track_file), "--size", f"{width}x{height}"]
        command += ["--encoding", "mono8" if grayscale else "rgb8", "--seed", str(seed % 2**31)]
        command += ["--parent-pid", str(os.getpid())]
        env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id))
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
        self.log_path = self.folder / "sim.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: close() stops all of it
            cwd=self.folder,
            env=env,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = SIM_READY_TIMEOUT_S) -> None:
        """Until the simulator has made its topics (its first log line), else stop it and raise a WorkerError."""
        deadline = time.monotonic() + timeout
        while SIM_READY not in self.output():
            code = self.proc.poll()
            if code is not None or time.monotonic() > deadline:
                why = f"exited with code {code}" if code is not None else f"did not start within {timeout:g} s"
                tail = self.output()[-2000:]
                self.close()
                raise WorkerError(f"the simulator of ROS_DOMAIN_ID {self.domain_id} {why}:\n{tail}")
            time.sleep(0.05)

    def close(self) -> None:
        """SIGINT, wait, then SIGKILL to the group and reap; remove the folder (safe to call twice)."""
        proc = self.proc
        try:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(SIM_STOP_TIMEOUT_S)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            self.log.close()
            shutil.rmtree(self.folder, ignore_errors=True)


def ray_module() -> Any:
    """`ray`, or a WorkerError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise WorkerError(
            "--workers needs Ray: pip install 'deepracer_rl[ray]' (or the ray version pinned in requirements.txt)"
        ) from None
    return ray


def connect(address: str | None, workers: int) -> bool:
    """Join the Ray cluster at `address` ("auto", HOST:PORT) or start a local one (at least one CPU
    per worker); True when this call connected (and the caller shuts Ray down), False when this
    process was already connected."""
    ray = ray_module()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a one-machine Ray stays on 127.0.0.1
    if address and address != "auto" and "://" not in address:
        check_reachable(address)
    try:
        if address:
            ray.init(address=address, logging_level="WARNING")
        else:
            ray.init(num_cpus=max(os.cpu_count() or 1, workers), include_dashboard=False, logging_level="WARNING")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise WorkerError(f"cannot reach the Ray cluster at {address or 'a new local Ray'}: {exc}") from None
    return True


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A WorkerError unless something listens at HOST:PORT (Ray itself retries an address that does
    not answer for minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise WorkerError(f"--ray-address {address!r}: expected auto or HOST:PORT (the head's GCS port, 6379 default)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise WorkerError(
            f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}); start one with "
            "ray start --head, or leave --ray-address out for a local Ray"
        ) from None


def strip_info(info: dict[str, Any]) -> dict[str, Any]:
    """A step's info as the learner needs it: no terminal observation (the worker bootstraps the
    value itself), no waypoints in the params."""
    out = {k: v for k, v in info.items() if k != "terminal_observation"}
    for key in ("params", "start_params"):
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if k not in DROPPED_PARAMS}
    return out


def inline_files(race_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Race arguments a worker on any node can use: the track and action space as objects, the
    reward file's text (`reward_source`) instead of paths this machine may alone have."""
    from .action_space import ActionSpace
    from .track import Track

    out = dict(race_kwargs)
    if isinstance(out["track"], (str, os.PathLike)):  # Tracks and TrackSets travel as they are
        out["track"] = Track.load(out["track"])
    if not isinstance(out.get("metadata"), ActionSpace):
        out["metadata"] = ActionSpace.load(out.get("metadata"))
    reward = out.pop("reward", None)
    if reward is not None:
        out["reward_source"] = Path(reward).read_text(encoding="utf-8")
    return out


def _materialise_reward(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """`inline_files`' reward text back into a file of this worker (a temporary folder)."""
    import tempfile

    out = dict(env_kwargs)
    source = out.pop("reward_source", None)
    if source is not None:
        path = Path(tempfile.mkdtemp(prefix="deepracer_rl_worker_")) / "reward_function.py"
        path.write_text(source, encoding="utf-8")
        out["reward"] = str(path)
        out["reward_folder"] = str(path.parent)
    return out


@dataclass
class PolicySpec:
    """How a worker builds its CPU copy of the learner's policy (weights come per update)."""

    policy_class: type
    observation_space: spaces.Space
    action_space: spaces.Space
    kwargs: dict[str, Any]

    @classmethod
    def of(cls, model: PPO) -> PolicySpec:
        return cls(
            model.policy_class,
            model.observation_space,
            model.action_space,
            dict(use_sde=model.use_sde, **model.policy_kwargs),
        )

    def build(self) -> Any:
        return self.policy_class(self.observation_space, self.action_space, lambda _: 0.0, **self.kwargs)


@dataclass(frozen=True)
class ValidationLap:
    """One validation lap for a worker: the track (a Track: it travels to other nodes), the start pose
    (x, y, yaw), the camera perturbation's changes (`CameraPerturbation` fields) and the race's seed."""

    track: Any
    start: tuple[float, float, float]
    perturbation: dict[str, float]
    seed: int | None


def policy_weights(policy: Any) -> dict[str, np.ndarray]:
    """The policy's parameters as numpy arrays (what goes into the object store once per update)."""
    return {k: v.detach().cpu().numpy() for k, v in policy.state_dict().items()}


class RolloutWorker:
    """One worker's cars and policy copy (run as a Ray actor by `WorkerPool`; plain Python here).

    `ros_domain` (with `backend="ros"`): the worker's ROS_DOMAIN_ID; it starts its own simulator there
    (`WorkerSimulator`) unless `start_simulator` is False (one the user started in that domain)."""

    def __init__(
        self,
        index: int,
        seed: int,
        n_cars: int,
        env_kwargs: dict[str, Any],
        gamma: float,
        ros_domain: int | None = None,
        start_simulator: bool = True,
    ):
        import cv2
        import torch

        from .vec_env import RaceVecEnv

        # one CPU per worker, as Ray reserves it: no OpenCV or torch thread pools that take the others'
        cv2.setNumThreads(1)
        torch.set_num_threads(1)
        self.index, self.seed, self.gamma = index, seed, gamma
        kwargs = _materialise_reward(env_kwargs)
        self.reward_folder = kwargs.pop("reward_folder", None)  # removed by close()
        self.ros_domain = ros_domain
        self.simulator: WorkerSimulator | None = None
        self.env: Any = None
        try:
            if ros_domain is not None:
                use_ros_domain(ros_domain)  # before rclpy initialises in this process
                kwargs["domain_id"] = ros_domain
                if start_simulator:
                    observation = kwargs.get("observation")
                    grayscale = True if observation is None else observation.grayscale
                    self.simulator = WorkerSimulator(kwargs["track"], n_cars, grayscale, seed, ros_domain)
                    self.simulator.wait_ready()
            self.env = RaceVecEnv(n_envs=n_cars, seed=seed, **kwargs)
        except BaseException:
            self.close()
            raise
        self.policy: Any = None  # built from the first rollout's PolicySpec
        self.last_obs: Observation | None = None
        self.episode_starts = np.ones(n_cars, dtype=bool)

    def describe(self) -> dict[str, Any]:
        """Where this worker runs: pid, host, the deepracer_rl it imported."""
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "package": str(Path(__file__).resolve().parent),
            "ros_domain_id": self.ros_domain,
            "simulator_pid": None if self.simulator is None else self.simulator.pid,
            "observation_space": self.env.observation_space,
            "action_space": self.env.action_space,
        }

    def reset(self) -> Observation:
        self.last_obs = self.env.reset()
        self.episode_starts = np.ones(self.env.num_envs, dtype=bool)
        return self.last_obs

    def collect(self, policy: tuple[PolicySpec, dict[str, np.ndarray]], n_steps: int) -> dict[str, Any]:
        """Drive the cars `n_steps` steps with the learner's policy (its spec and weights); the rollout."""
        import torch
        from stable_baselines3.common.utils import obs_as_tensor

        started = time.perf_counter()
        spec, weights = policy
        if self.policy is None:
            self.policy = spec.build()
            self.policy.set_training_mode(False)
            torch.manual_seed(self.seed)  # the actions sampled from here on depend on the seed alone
        self.policy.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
        if self.last_obs is None:
            self.reset()
        k, policy, space = self.env.num_envs, self.policy, self.env.action_space
        obs = steps_like(self.last_obs, n_steps)
        actions: list[np.ndarray] = []
        values = np.empty((n_steps, k), dtype=np.float32)
        log_probs = np.empty((n_steps, k), dtype=np.float32)
        rewards = np.empty((n_steps, k), dtype=np.float32)
        bootstrap = np.zeros((n_steps, k), dtype=np.float32)  # gamma x V(terminal obs) of truncated episodes
        starts = np.empty((n_steps, k), dtype=bool)
        dones = np.empty((n_steps, k), dtype=bool)
        infos: list[list[dict[str, Any]]] = []
        for t in range(n_steps):
            with torch.no_grad():
                action, value, log_prob = policy(obs_as_tensor(self.last_obs, "cpu"))
            action = action.numpy()
            sent = action
            if isinstance(space, spaces.Box):  # as SB3's collect_rollouts
                sent = policy.unscale_action(action) if policy.squash_output else np.clip(action, space.low, space.high)
            new_obs, reward, done, info = self.env.step(sent)
            for i in np.flatnonzero(done):
                if info[i].get("terminal_observation") is not None and info[i].get("TimeLimit.truncated", False):
                    terminal = policy.obs_to_tensor(info[i]["terminal_observation"])[0]
                    with torch.no_grad():
                        bootstrap[t, i] = self.gamma * float(policy.predict_values(terminal)[0])
            put_step(obs, t, self.last_obs)
            values[t], log_probs[t] = value.numpy().ravel(), log_prob.numpy().ravel()
            rewards[t], starts[t], dones[t] = reward, self.episode_starts, done
            actions.append(action)
            infos.append([strip_info(i) for i in info])
            self.last_obs, self.episode_starts = new_obs, done
        with torch.no_grad():
            last_values = policy.predict_values(obs_as_tensor(self.last_obs, "cpu")).numpy().ravel()
        return {
            "obs": obs,
            "actions": np.stack(actions),
            "values": values,
            "log_probs": log_probs,
            "rewards": rewards,
            "bootstrap": bootstrap,
            "episode_starts": starts,
            "dones": dones,
            "infos": infos,
            "last_values": last_values.astype(np.float32),
            "last_obs": self.last_obs,
            "seconds": time.perf_counter() - started,
        }

    def validation_laps(
        self, policy: tuple[PolicySpec, dict[str, np.ndarray]], jobs: list[ValidationLap]
    ) -> list[LapReport]:
        """Drive validation laps with the learner's policy (deterministic), one race per lap, with this
        worker's action space, reward and observation; the reports in the order of `jobs`."""
        import torch

        from .camera import CameraPerturbation
        from .evaluate import policy_driver, run_laps
        from .race import RaceCore

        spec, weights = policy
        if self.policy is None:
            self.policy = spec.build()
            self.policy.set_training_mode(False)
            torch.manual_seed(self.seed)
        self.policy.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
        core = self.env.core
        reports = []
        for job in jobs:
            camera = CameraPerturbation(**job.perturbation)
            options = {"perturbation": camera} if camera.enabled else {}
            race = RaceCore.create(
                job.track,
                n_cars=1,
                metadata=core.actions,
                reward=core.reward_fn,
                observation=core.obs_spec,
                seed=job.seed,
                **options,
            )
            try:
                reports.append(run_laps(race, policy_driver(self.policy), 1, starts=np.asarray(job.start)[None]))
            finally:
                race.close()
        return reports

    def close(self) -> None:
        """The cars (and their rclpy context), then the simulator, then the temporary files."""
        try:
            if self.env is not None:
                self.env.close()
        finally:
            if self.simulator is not None:
                self.simulator.close()
            if self.reward_folder is not None:
                shutil.rmtree(self.reward_folder, ignore_errors=True)


def _ros_note(where: dict[str, Any]) -> str:
    if where.get("ros_domain_id") is None:
        return ""
    sim = where.get("simulator_pid")
    return f" (ROS_DOMAIN_ID {where['ros_domain_id']}{f', simulator pid {sim}' if sim else ''})"


def rollout_bytes(rollout: dict[str, Any]) -> int:
    """Bytes of a rollout's arrays, a Dict observation's per key (what a worker sends per update, without
    the pickled infos)."""
    arrays = [a for v in rollout.values() for a in (v.values() if isinstance(v, dict) else [v])]
    return int(sum(a.nbytes for a in arrays if isinstance(a, np.ndarray)))


def steps_like(obs: Observation, n_steps: int) -> Observation:
    """Room for `n_steps` steps of the cars' observation `obs`: (n_steps, *shape) of its dtype, per key
    of a Dict observation (uint8 camera frames stay uint8, a lidar's float32)."""
    if isinstance(obs, dict):
        return {key: steps_like(value, n_steps) for key, value in obs.items()}
    return np.empty((n_steps, *obs.shape), dtype=obs.dtype)


def put_step(steps: Observation, t: int, obs: Observation) -> None:
    """Store the cars' observation `obs` as step `t` of `steps` (`steps_like`)."""
    if isinstance(steps, dict):
        for key, value in steps.items():
            value[t] = obs[key]  # type: ignore[index]
    else:
        steps[t] = obs


def join_cars(parts: list[Observation], axis: int = 0) -> Observation:
    """The workers' observations joined along the car axis (`axis`), per key of a Dict observation."""
    if isinstance(parts[0], dict):
        return {key: np.concatenate([p[key] for p in parts], axis=axis) for key in parts[0]}  # type: ignore[index]
    return np.concatenate(parts, axis=axis)  # type: ignore[arg-type]


def step_of(steps: Observation, t: int) -> Observation:
    """Step `t` of a rollout's observations (every car), per key of a Dict observation."""
    return {key: value[t] for key, value in steps.items()} if isinstance(steps, dict) else steps[t]


class WorkerPool:
    """`workers` Ray actors of `RolloutWorker` with `n_cars` cars each; restarts dead ones."""

    def __init__(
        self,
        workers: int,
        n_cars: int,
        seed: int,
        env_kwargs: dict[str, Any],
        gamma: float,
        say: Callable[[str], None] = print,
        ros_domains: list[int] | None = None,
        start_simulators: bool = True,
    ):
        ray = ray_module()
        self.ray, self.n_cars, self.say = ray, n_cars, say
        domains = ros_domains or [None] * workers
        self.args = [
            (i, worker_seed(seed, i), n_cars, env_kwargs, gamma, domains[i], start_simulators) for i in range(workers)
        ]
        self.actor_class = ray.remote(
            num_cpus=1,
            max_restarts=MAX_RESTARTS,
            max_task_retries=0,  # a rollout cut short is dropped and asked for again (by the pool, counted)
            # this process's deepracer_rl first (a source checkout on this machine; elsewhere: the installed one)
            runtime_env={"env_vars": {"PYTHONPATH": f"{PACKAGE_ROOT}{os.pathsep}${{PYTHONPATH}}"}},
        )(RolloutWorker)
        self.actors = [self.actor_class.remote(*a) for a in self.args]
        self.where: list[dict[str, Any]] = [{} for _ in self.actors]
        self.restarts = 0
        self.last_bytes = 0
        self.last_collect_s: list[float] = []
        try:
            for i, actor in enumerate(self.actors):
                self.where[i] = ray.get(actor.describe.remote(), timeout=STARTUP_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise WorkerError(
                f"{workers} Ray workers were not placed within {STARTUP_TIMEOUT_S:.0f} s: each needs one CPU and the "
                f"cluster has {ray.cluster_resources().get('CPU', 0):g}; use fewer --workers or add nodes"
            ) from None
        except ray.exceptions.RayActorError as exc:
            self.close()
            raise WorkerError(f"a Ray worker failed to start: {exc}") from None

    @property
    def num_cars(self) -> int:
        return self.n_cars * len(self.actors)

    def describe(self) -> str:
        """One line: each worker's pid and host (and ROS domain, simulator pid)."""
        return ", ".join(
            f"worker {i}: pid {w.get('pid')} on {w.get('host')}{_ros_note(w)}" for i, w in enumerate(self.where)
        )

    def reset(self) -> Observation:
        """Reset every worker's cars; their first observations, workers in order."""
        return join_cars(self._gather(lambda i, actor: actor.reset.remote()))

    def collect(
        self,
        spec: PolicySpec,
        weights: dict[str, np.ndarray],
        n_steps: int,
        on_restart: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """One rollout of every worker with the policy `spec` and `weights` (put once into the object
        store). A worker that dies is restarted and collects again (`on_restart(index)` first: its
        episodes are gone)."""
        ref = self.ray.put((spec, weights))
        rollouts = self._gather(lambda i, actor: actor.collect.remote(ref, n_steps), on_restart)
        self.last_bytes = sum(w.nbytes for w in weights.values()) * len(self.actors)
        self.last_bytes += sum(rollout_bytes(r) for r in rollouts)
        self.last_collect_s = [float(r["seconds"]) for r in rollouts]
        return rollouts

    def validate(self, spec: PolicySpec, weights: dict[str, np.ndarray], jobs: list[ValidationLap]) -> list[LapReport]:
        """Validation laps spread over the workers (job k on worker k mod N, one Ray call per worker);
        the reports in the order of `jobs`. A worker that dies is restarted and drives its laps again."""
        ref = self.ray.put((spec, weights))
        n = len(self.actors)
        shares = [jobs[i::n] for i in range(n)]
        results = self._gather(lambda i, actor: actor.validation_laps.remote(ref, shares[i]))
        out: list[LapReport] = [None] * len(jobs)  # type: ignore[list-item]
        for i, reports in enumerate(results):
            out[i::n] = reports
        return out

    def _gather(self, call: Callable[[int, Any], Any], on_restart: Callable[[int], None] | None = None) -> list[Any]:
        """`call(i, actor)` on every worker; the results in worker order (dead workers revived, asked again)."""
        ray = self.ray
        pending = {i: call(i, actor) for i, actor in enumerate(self.actors)}
        results: dict[int, Any] = {}
        failures = [0] * len(self.actors)
        while pending:
            i = next(iter(pending))
            try:
                results[i] = ray.get(pending.pop(i))
            except ray.exceptions.RayActorError as exc:
                failures[i] += 1
                if failures[i] > MAX_FAILURES:
                    raise WorkerError(f"Ray worker {i} died {failures[i]} times in one update: {exc}") from None
                self._revive(i, exc)
                if on_restart is not None:
                    on_restart(i)
                pending[i] = call(i, self.actors[i])
        return [results[i] for i in range(len(self.actors))]

    def _revive(self, i: int, exc: BaseException) -> None:
        """Worker `i` died: wait for Ray's restart of it (while Ray says it is unavailable), else make
        a new actor (Ray gave up: it is dead for good); say so in one line."""
        ray, old = self.ray, self.where[i].get("pid")
        self.restarts += 1
        how = "restarted by Ray"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                self.where[i] = ray.get(self.actors[i].describe.remote(), timeout=STARTUP_TIMEOUT_S)
                break
            except ray.exceptions.ActorUnavailableError:  # being restarted
                if time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                pass
            with contextlib.suppress(Exception):  # gone already
                ray.kill(self.actors[i], no_restart=True)
            self.actors[i] = self.actor_class.remote(*self.args[i])
            self.where[i] = ray.get(self.actors[i].describe.remote(), timeout=STARTUP_TIMEOUT_S)
            how = "made again by the learner"
            break
        self.say(
            f"Ray worker {i} (pid {old}) died ({type(exc).__name__}); {how} as pid {self.where[i]['pid']} on "
            f"{self.where[i]['host']}: its partial rollout is dropped and collected again"
        )

    def close(self) -> None:
        """Close every worker's cars (reward processes, temporary files), then end the actors."""
        with contextlib.suppress(Exception):  # a worker that is gone or hangs is killed all the same
            self.ray.get([actor.close.remote() for actor in self.actors], timeout=30)
        for actor in self.actors:
            with contextlib.suppress(Exception):  # gone already
                self.ray.kill(actor, no_restart=True)
        self.actors = []


class WorkerVecEnv(VecEnv):
    """The learner's env: the spaces and car count of a `WorkerPool` (n_envs = workers x K). It only
    resets; `DistributedPPO` collects through `pool` instead of stepping it."""

    def __init__(self, pool: WorkerPool):
        where = pool.where[0]
        super().__init__(pool.num_cars, where["observation_space"], where["action_space"])
        self.pool = pool
        self.on_restart: Callable[[np.ndarray], None] | None = None  # the cars whose episodes a restart dropped

    def reset(self) -> VecEnvObs:
        self._reset_seeds()
        return self.pool.reset()

    def collect(self, spec: PolicySpec, weights: dict[str, np.ndarray], n_steps: int) -> list[dict[str, Any]]:
        """One rollout of every worker (`WorkerPool.collect`)."""
        k = self.pool.n_cars

        def dropped(index: int) -> None:
            if self.on_restart is not None:
                self.on_restart(np.arange(index * k, (index + 1) * k))

        return self.pool.collect(spec, weights, n_steps, dropped)

    def step_async(self, actions: np.ndarray) -> None:
        raise NotImplementedError("the Ray workers step their own cars: use DistributedPPO")

    def step_wait(self) -> VecEnvStepReturn:
        raise NotImplementedError("the Ray workers step their own cars: use DistributedPPO")

    def close(self) -> None:
        self.pool.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * self._count(indices)
        raise AttributeError(f"the Ray workers' cars have no attribute {attr_name!r} here")

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError("the Ray workers' cars cannot be changed from the learner")

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        raise AttributeError(f"the Ray workers' cars cannot run {method_name!r} from the learner")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * self._count(indices)

    def _count(self, indices: VecEnvIndices) -> int:
        if indices is None:
            return self.num_envs
        return 1 if isinstance(indices, int) else len(list(indices))


class DistributedPPO(PPO):
    """PPO whose rollouts come from Ray workers (`WorkerVecEnv`); training is SB3's own."""

    def collect_rollouts(
        self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer, n_rollout_steps: int
    ) -> bool:
        import torch

        assert isinstance(env, WorkerVecEnv), "DistributedPPO collects from a WorkerVecEnv"
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        callback.on_rollout_start()
        parts = env.collect(PolicySpec.of(self), policy_weights(self.policy), n_rollout_steps)
        per_step = ("actions", "values", "log_probs", "rewards", "bootstrap", "episode_starts", "dones")
        joined = {key: np.concatenate([p[key] for p in parts], axis=1) for key in per_step}
        obs = join_cars([p["obs"] for p in parts], axis=1)
        last_values = np.concatenate([p["last_values"] for p in parts])
        if isinstance(self.action_space, spaces.Discrete):
            joined["actions"] = joined["actions"].reshape(n_rollout_steps, env.num_envs)
        for t in range(n_rollout_steps):
            infos = [info for p in parts for info in p["infos"][t]]
            actions, dones = joined["actions"][t], joined["dones"][t]
            rewards = joined["rewards"][t].copy()
            self.num_timesteps += env.num_envs
            callback.update_locals({"infos": infos, "rewards": rewards, "dones": dones, "actions": actions})
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            buffer_actions = actions.reshape(-1, 1) if isinstance(self.action_space, spaces.Discrete) else actions
            rollout_buffer.add(
                step_of(obs, t),  # type: ignore[arg-type]
                buffer_actions,
                rewards + joined["bootstrap"][t],
                joined["episode_starts"][t],
                torch.as_tensor(joined["values"][t]),
                torch.as_tensor(joined["log_probs"][t]),
            )
        self._last_obs = join_cars([p["last_obs"] for p in parts])  # type: ignore[assignment]
        self._last_episode_starts = joined["dones"][-1]
        rollout_buffer.compute_returns_and_advantage(
            last_values=torch.as_tensor(last_values), dones=joined["dones"][-1]
        )
        callback.update_locals({"dones": joined["dones"][-1]})
        callback.on_rollout_end()
        return True


def make_pool_env(config: TrainConfig, env_kwargs: dict[str, Any], say: Callable[[str], None] = print) -> WorkerVecEnv:
    """The run's Ray workers (`config.workers` x `config.n_envs` cars, seeds from `worker_seed`)
    behind a `WorkerVecEnv`; `env_kwargs`: the `RaceVecEnv` arguments besides cars and seed. With the
    ROS backend each worker races in its own domain (`worker_domain_ids`)."""
    domains = None
    if env_kwargs.get("backend") == "ros":
        try:
            domains = worker_domain_ids(config.workers, config.ros_domain_base)
        except ValueError as exc:
            raise WorkerError(str(exc)) from None
    pool = WorkerPool(
        config.workers,
        config.n_envs,
        config.seed,
        env_kwargs,
        config.discount,
        say,
        ros_domains=domains,
        start_simulators=not config.external_simulators,
    )
    return WorkerVecEnv(pool)
