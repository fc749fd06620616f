"""Processes started by tests: each in its own process group, stopped with SIGINT, then killed and reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class SimProcess:
    """A process (`python -m ...`: the simulator, a node, the CLI) in its own process group, its output in a file."""

    def __init__(self, log: Path, args: list[str], module: bool = True):
        """`python -m ARGS` (or `python ARGS` when `module` is False, e.g. ["-c", code, ...])."""
        self.log_path = log
        self.log = open(log, "w")
        command = [sys.executable, "-m", *args] if module else [sys.executable, *args]
        self.proc = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait_started(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "reinvent_base:" not in self.output():
            assert self.proc.poll() is None, f"the simulator exited: {self.output()}"
            assert time.monotonic() < deadline, f"the simulator did not start: {self.output()}"
            time.sleep(0.05)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def interrupt(self, timeout: float = 10.0) -> int | None:
        """SIGINT (Ctrl-C) to the group and wait; SIGKILL and reap whatever is left. The exit code (None: hung)."""
        code = None
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGINT)
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            code = self.proc.wait(timeout)
        finally:
            if self.group_alive():
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            self.log.close()
        return code

    def run_to_end(self, timeout: float) -> tuple[int | None, str]:
        """Wait for the process to end; (exit code, output). None when it did not end within
        `timeout` (then it is interrupted, killed if need be, and reaped)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            self.interrupt()
        assert not self.group_alive()
        return code, self.log_path.read_text()


def run_cli(log: Path, *args: str, timeout: float) -> tuple[int | None, str]:
    """`deepracer-rl ARGS` in its own process group, run to its end: (exit code, output), see `run_to_end`."""
    return SimProcess(log, ["deepracer_rl.cli", *args]).run_to_end(timeout)
