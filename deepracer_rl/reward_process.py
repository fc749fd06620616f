"""`IsolatedReward`: the user's `reward_function(params)` run in a child process.

An accident in reward code (an endless loop, a crash, `os._exit`, runaway memory, a
`KeyboardInterrupt` it raises itself, params it changes) then stops the run with one message
naming the file, the line where known and the params of the call, instead of hanging the run,
ending it without a word or corrupting later calls and the logs. This guards against accidents,
not attacks: reward code is trusted Python and can do whatever the user can (README).

The child ignores SIGINT: Ctrl-C belongs to the parent, which stops the child. One step of M cars
is one round trip over a socket pair (`multiprocessing.connection` framing, pickle):

    parent -> child  ("batch", {token: waypoint list sent for the first time}, [(token, params), ...])
    child -> parent  ("ready", None) once loaded | ("ok", [reward, ...]) | ("error", message)

The waypoint list, the same for every call of a direction, crosses once. The child writes the
index of the call it is in to a shared 8-byte file, so a crash or a hang in C code that the child
cannot report itself is still pinned to one car's params.
"""

from __future__ import annotations

import argparse
import math
import mmap
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from .reward import DEFAULT_REWARD, RewardFunction, RewardFunctionError, checked_reward, describe_params, fresh_params

DEFAULT_TIMEOUT_S = 5.0  # s one reward_function call may take
DEFAULT_MEMORY_MB = 2048  # MiB of address space for the child (RLIMIT_AS)
MIN_MEMORY_MB = 256  # the child's Python and numpy need about 150 MiB of address space
START_TIMEOUT_S = 60.0  # s for the child to start and load the file (module-level code included)
GRACE_S = 2.0  # s past the time limit before the parent kills a child that did not stop itself
POLL_S = 0.05  # s between the parent's checks while it waits
_INDEX = struct.Struct("<q")


@dataclass(frozen=True)
class RewardIsolation:
    """How the reward function is isolated: its time limit per call and its memory limit."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout_s, (int, float)) and math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ValueError(f"the reward time limit must be a positive number of seconds, got {self.timeout_s!r}")
        if not isinstance(self.memory_mb, int) or self.memory_mb < MIN_MEMORY_MB:
            raise ValueError(f"the reward memory limit must be at least {MIN_MEMORY_MB} MiB, got {self.memory_mb!r}")


class RewardTimeout(BaseException):
    """Raised inside the child when a call runs past its time limit (a BaseException, so that
    reward code's `except Exception` does not swallow it)."""


def make_reward(reward: str | os.PathLike | None, isolation: RewardIsolation | None) -> RewardFunction | IsolatedReward:
    """The reward function of file `reward` (None: the default), in a child process when
    `isolation` is given, else in this process."""
    return RewardFunction(reward) if isolation is None else IsolatedReward(reward, isolation)


class IsolatedReward:
    """`RewardFunction`'s interface (`__call__`, `batch`, `close`, `path`) over a child process."""

    def __init__(self, path: str | os.PathLike | None = None, isolation: RewardIsolation | None = None):
        self.path = Path(path) if path is not None else DEFAULT_REWARD
        self.isolation = isolation or RewardIsolation()
        self.should_stop: Callable[[], bool] = lambda: False  # checked while waiting: True -> KeyboardInterrupt
        self._tokens: dict[int, int] = {}
        self._kept: list[list] = []  # the waypoint lists sent: kept alive so that their ids stay theirs
        self._stopped: str | None = None
        progress_file = tempfile.TemporaryFile()
        progress_file.truncate(_INDEX.size)
        self._progress = mmap.mmap(progress_file.fileno(), _INDEX.size)
        parent_end, child_end = socket.socketpair()
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        env["PYTHONUNBUFFERED"] = "1"  # the reward's prints appear at once and are not lost if it is stopped
        package_root = str(Path(__file__).resolve().parents[1])
        command = [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {package_root!r}); "
            "from deepracer_rl.reward_process import child_main; sys.exit(child_main())",
            "--conn-fd",
            str(child_end.fileno()),
            "--progress-fd",
            str(progress_file.fileno()),
            "--timeout-s",
            repr(float(self.isolation.timeout_s)),
            "--memory-mb",
            str(self.isolation.memory_mb),
            str(self.path),
        ]
        try:
            self._process = subprocess.Popen(command, pass_fds=(child_end.fileno(), progress_file.fileno()), env=env)
        finally:
            child_end.close()
            progress_file.close()  # the mapping stays
        self._conn = Connection(parent_end.detach())
        self._finalizer = weakref.finalize(self, _stop_child, self._process, self._conn)
        kind, payload = self._receive(None, START_TIMEOUT_S)
        if kind != "ready":
            self.close()
            raise RewardFunctionError(payload)

    # ---- calls ----------------------------------------------------------------------------
    def __call__(self, params: dict[str, Any]) -> float:
        return float(self.batch([params])[0])

    def batch(self, params: list[dict[str, Any]]) -> np.ndarray:
        """The rewards of one step of several cars, in their order (float64), from one round trip."""
        if self._stopped is not None:
            raise RewardFunctionError(self._stopped)
        if not params:
            return np.zeros(0, dtype=np.float64)
        new_lists: dict[int, list] = {}
        items = []
        for p in params:
            waypoints = p.get("waypoints")
            token = None
            if isinstance(waypoints, list):
                token = self._tokens.get(id(waypoints))
                if token is None:
                    token = self._tokens[id(waypoints)] = len(self._kept)
                    self._kept.append(waypoints)
                    new_lists[token] = waypoints
            items.append((token, {k: v for k, v in p.items() if k != "waypoints"}))
        _INDEX.pack_into(self._progress, 0, -1)
        try:
            self._conn.send(("batch", new_lists, items))
        except OSError:  # the child is gone: _receive says how it ended
            pass
        kind, payload = self._receive(params, self.isolation.timeout_s + GRACE_S)
        if kind != "ok":
            raise RewardFunctionError(payload)
        return np.asarray(payload, dtype=np.float64)

    def _receive(self, params: list[dict[str, Any]] | None, limit_s: float) -> tuple[str, Any]:
        """The child's next message. A child that dies, or stays in one call past `limit_s`, is
        stopped and reported as a RewardFunctionError naming the call's params."""
        index, since = -2, time.monotonic()
        while not self._conn.poll(POLL_S):
            if self.should_stop():
                self._halt("the run was interrupted while reward_function was running")
                raise KeyboardInterrupt
            now = time.monotonic()
            current = _INDEX.unpack_from(self._progress, 0)[0] if params is not None else -2
            if current != index:
                index, since = current, now
            elif now - since > limit_s:
                what = "did not start" if params is None else "did not return"
                message = (
                    f"{self.path}: reward_function {what} within {limit_s:g} s and was stopped "
                    f"(an endless loop or a blocking call?)" + self._params_note(params, index)
                )
                self._halt(message)
                raise RewardFunctionError(message)
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            code = self._process.wait(timeout=10)
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            message = (
                f"{self.path}: the reward process {how} while running reward_function (os._exit, sys.exit in a "
                f"thread, a crash in C code, or the memory limit of {self.isolation.memory_mb} MiB)"
                + self._params_note(params, _INDEX.unpack_from(self._progress, 0)[0])
            )
            self._halt(message)
            return "error", message

    @staticmethod
    def _params_note(params: list[dict[str, Any]] | None, index: int) -> str:
        if params is None or not 0 <= index < len(params):
            return ""
        return f"\n  params: {describe_params(params[index])}"

    def _halt(self, why: str) -> None:
        self._stopped = f"{self.path}: the reward process has stopped: {why.split(chr(10))[0]}"
        self.close()

    # ---- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the child (at once if it is busy); later calls raise RewardFunctionError."""
        if self._stopped is None:
            self._stopped = f"{self.path}: the reward function was closed"
        self._finalizer()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._process.pid

    def __enter__(self) -> IsolatedReward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stop_child(process: subprocess.Popen, conn: Connection) -> None:
    """Close the connection (an idle child ends on it), then kill a child that is still busy."""
    conn.close()
    try:
        process.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ---- the child ------------------------------------------------------------------------------
def child_main(argv: list[str] | None = None) -> int:
    """The child process: load the reward file, then answer batches until the parent closes."""
    parser = argparse.ArgumentParser(prog="deepracer_rl.reward_process")
    parser.add_argument("--conn-fd", type=int, required=True)
    parser.add_argument("--progress-fd", type=int, required=True)
    parser.add_argument("--timeout-s", type=float, required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("path")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent
    conn = Connection(args.conn_fd)
    progress = mmap.mmap(args.progress_fd, _INDEX.size)
    try:
        import resource

        limit = args.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not on this OS, or a lower hard limit: keep it
        pass

    def time_is_up(signum: int, frame: object) -> None:
        raise RewardTimeout

    signal.signal(signal.SIGALRM, time_is_up)
    try:
        function = RewardFunction(args.path)
    except RewardFunctionError as exc:
        conn.send(("error", str(exc)))
        return 0
    except MemoryError:
        conn.send(("error", f"{args.path}: loading the file ran out of the memory limit of {args.memory_mb} MiB"))
        return 0
    conn.send(("ready", None))
    where = str(function.path)
    lists: dict[int, list] = {}
    while True:
        try:
            kind, new_lists, items = conn.recv()
        except (EOFError, OSError):
            return 0
        lists.update(new_lists)
        rewards: list[float] = []
        params: dict[str, Any] = {}
        try:
            for index, (token, params) in enumerate(items):
                _INDEX.pack_into(progress, 0, index)
                if token is not None:
                    params["waypoints"] = lists[token]
                signal.setitimer(signal.ITIMER_REAL, args.timeout_s)
                try:
                    value = function.function(fresh_params(params))
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                rewards.append(checked_reward(where, value, params))
            answer: tuple[str, Any] = ("ok", rewards)
        except RewardFunctionError as exc:
            answer = ("error", str(exc))
        except RewardTimeout as exc:
            answer = (
                "error",
                f"{where}, line {function.user_line(exc)}: reward_function did not return within "
                f"{args.timeout_s:g} s and was stopped\n  params: {describe_params(params)}",
            )
        except MemoryError as exc:
            message = str(function.call_error(exc, params))
            answer = ("error", message + f"\n  (the reward process's memory limit is {args.memory_mb} MiB)")
        except BaseException as exc:  # KeyboardInterrupt or SystemExit raised by the reward code itself
            answer = ("error", str(function.call_error(exc, params)))
        conn.send(answer)
