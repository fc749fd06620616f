"""`deepracer-rl console`: a local web console over a runs directory (docs/console.md).

Pages (server-rendered HTML, one small script in `console_static/`, no build step, nothing from
the internet) and a JSON API under `/api/` read the run directories through `run_views` (nothing
here writes into a run). Trainings, evaluations and exports run as subprocesses of the real CLI
(`python -m deepracer_rl.cli ...`), each in its own process group; a request is first checked with
the CLI's own parser and checks, so a form gets the CLI's exit-2 message at once. Stop = SIGINT to
the group: the trainer checkpoints and the run can be resumed.

Safe by default: bound to 127.0.0.1, answering only requests addressed to localhost; another
`--host` needs a token (given or generated) on every request. Run names and evaluation ids are
plain folder names inside the runs directory; uploaded reward files go through the CLI's
validation in an isolated child process (`reward_process.IsolatedReward`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import io
import ipaddress
import json
import mimetypes
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import console_pages as pages
from . import run_views
from .rundir import RunDir

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"
LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
STATE_DIR = ".console"  # inside the runs directory: uploaded files and job logs (no run's files)
STATIC_DIR = Path(__file__).with_name("console_static")
TOKEN_COOKIE = "deepracer_console_token"
TOKEN_ENV = "DEEPRACER_CONSOLE_TOKEN"
CAMERA_SNAPSHOT_S = 1.0  # trainings started here write car 0's camera this often (train --camera-snapshot)
STOP_TIMEOUT_S = 60.0  # a stopped job's grace to checkpoint and exit before its group is killed
MAX_BODY = 1 << 20  # bytes of a request body (a reward file, an action space, a world config)
REWARD_SAMPLES = 50  # positions an uploaded reward is tried on before a training starts (as validate-reward)
# Form fields of a new training -> the train option they become (the CLI validates their values).
TRAIN_OPTIONS = {
    "direction": "--direction",
    "algo": "--algo",
    "steps": "--steps",
    "n_envs": "--n-envs",
    "seed": "--seed",
    "image_size": "--image-size",
    "network": "--network",
    "frame_stack": "--frame-stack",
    "randomize": "--randomize",
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "entropy": "--entropy",
    "discount": "--discount",
    "epochs": "--epochs",
    "target_kl": "--target-kl",
    "episodes_between_updates": "--episodes-between-updates",
    "checkpoint_every": "--checkpoint-every",
    "eval_every": "--eval-every",
    "eval_laps": "--eval-laps",
    "select_by": "--select-by",
    "max_minutes": "--max-minutes",
    "threads": "--threads",
    "reward_timeout": "--reward-timeout",
    "reward_memory_mb": "--reward-memory",
}
# true/false training settings: (the train flag, the value that adds it)
TRAIN_SWITCHES = {
    "reward_isolation": ("--no-reward-isolation", False),
    "normalize_reward": ("--normalize-reward", True),
}


def _switch_flag(key: str, value: Any, label: str) -> list[str]:
    """A true/false setting of TRAIN_SWITCHES as train's flag: [flag] when it differs from the default."""
    if not isinstance(value, bool):
        raise ConsoleError(HTTPStatus.BAD_REQUEST, f"{label}: expected true or false")
    flag, when = TRAIN_SWITCHES[key]
    return [flag] if value is when else []


RESUME_OPTIONS = {"steps": "--steps", "max_minutes": "--max-minutes", "threads": "--threads"}
_ARGPARSE_LOCK = threading.Lock()


class ConsoleError(Exception):
    """A request the console refuses: the HTTP status and a message naming the field and what is expected."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# ---- jobs: the CLI as subprocesses ---------------------------------------------------------------
@dataclass
class Job:
    """A CLI command started by the console, in its own process group, its output in a log file."""

    id: str
    kind: str  # train | resume | evaluate | export
    run: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen
    started: float = field(default_factory=time.time)
    stop_requested: bool = False

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self, tail: int = 4000) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return text[-tail:]

    def as_dict(self) -> dict[str, Any]:
        code = self.proc.poll()
        if code is None:
            status = "stopping" if self.stop_requested else "running"
        else:
            status = "finished" if code == 0 else ("stopped" if self.stop_requested else "failed")
        output = self.output()
        errors = [line for line in output.splitlines() if ": error: " in line or line.startswith("deepracer-rl ")]
        return {
            "id": self.id,
            "kind": self.kind,
            "run": self.run,
            "command": ["deepracer-rl", *self.argv],
            "pid": self.proc.pid,
            "status": status,
            "exit_code": code,
            "started": self.started,
            "message": errors[-1] if errors and code not in (None, 0) else None,
            "output": output,
        }


class Jobs:
    """The console's jobs; at most one training and one other job per run at a time."""

    def __init__(self, logs: Path, cwd: Path | None = None):
        self.logs = logs
        self.cwd = cwd
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()

    def start(self, kind: str, run: str, argv: list[str]) -> Job:
        with self.lock:
            for job in self.jobs.values():
                if (
                    job.run == run
                    and job.running
                    and (job.kind in ("train", "resume")) == (kind in ("train", "resume"))
                ):
                    raise ConsoleError(HTTPStatus.CONFLICT, f"run {run!r}: a {job.kind} job is running ({job.id})")
            job_id = f"{int(time.time() * 1000):x}-{secrets.token_hex(3)}"
            self.logs.mkdir(parents=True, exist_ok=True)
            log_path = self.logs / f"{job_id}.log"
            env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"), PYTHONUNBUFFERED="1")
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "deepracer_rl.cli", *argv],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own process group: SIGINT reaches it and its children
                    cwd=self.cwd,
                    env=env,
                )
            threading.Thread(target=proc.wait, daemon=True).start()  # reaped when it ends, watched or not
            job = Job(job_id, kind, run, argv, log_path, proc)
            self.jobs[job_id] = job
            return job

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise ConsoleError(HTTPStatus.NOT_FOUND, f"job {job_id!r}: no such job")
        return job

    def for_run(self, run: str) -> list[Job]:
        return [job for job in self.jobs.values() if job.run == run]

    def stop(self, job: Job) -> None:
        """SIGINT to the job's group (Ctrl-C: a training checkpoints and exits); reaped in the background,
        killed with its group when it has not exited after STOP_TIMEOUT_S."""
        if not job.running:
            return
        job.stop_requested = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.proc.pid, signal.SIGINT)
        threading.Thread(target=self._reap, args=(job, STOP_TIMEOUT_S), daemon=True).start()

    @staticmethod
    def _reap(job: Job, timeout: float) -> None:
        try:
            job.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            job.proc.wait(5)

    def close(self) -> None:
        """Stop every running job (each training checkpoints) and reap them."""
        running = [job for job in self.jobs.values() if job.running]
        for job in running:
            job.stop_requested = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.proc.pid, signal.SIGINT)
        for job in running:
            self._reap(job, STOP_TIMEOUT_S)


# ---- checking a request with the CLI's own parser and checks ------------------------------------
def parse_cli(cli: Any, argv: list[str]) -> argparse.Namespace:
    """`argv` parsed by the CLI's parser (`cli.build_parser()`); its exit-2 message (e.g. "argument
    --batch-size: invalid int value: 'x'") as a ConsoleError."""
    parser = cli.build_parser()
    captured = io.StringIO()
    with _ARGPARSE_LOCK, contextlib.redirect_stderr(captured):
        try:
            return parser.parse_args(argv)
        except SystemExit:
            pass
    lines = [line for line in captured.getvalue().splitlines() if line.strip()]
    raise ConsoleError(HTTPStatus.BAD_REQUEST, lines[-1] if lines else f"invalid arguments {argv}")


def _text_field(body: dict[str, Any], name: str, limit: int = MAX_BODY) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConsoleError(HTTPStatus.BAD_REQUEST, f"{name}: expected the file's text as a string")
    if len(value) > limit:
        raise ConsoleError(HTTPStatus.BAD_REQUEST, f"{name}: larger than {limit} bytes")
    return value


def _list_field(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        value = [v.strip() for v in re.split(r"[,\n]", value) if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConsoleError(HTTPStatus.BAD_REQUEST, f"{name}: expected a track name or a list of track names")
    return value


TRACK_VALUE = re.compile(r"[A-Za-z0-9_*?\[\]-][A-Za-z0-9_.*?\[\]-]*|random:\d+(:\d+)?")


def _track_value(name: str, value: str) -> str:
    """A track as the console accepts it: a shipped name, a glob of them, `all` or `random:N[:SEED]`;
    no file paths and no @LIST files (a request's paths stay inside the runs directory)."""
    if not TRACK_VALUE.fullmatch(value):
        raise ConsoleError(
            HTTPStatus.BAD_REQUEST,
            f"{name} {value!r}: expected a shipped track name, a glob of them, all, or random:N[:SEED] "
            "(the console takes no file paths)",
        )
    return value


def _option_value(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConsoleError(HTTPStatus.BAD_REQUEST, f"{name}: expected a number or a word, got {value!r}")
    return str(value).strip()


class Console:
    """The console's state: the runs directory, its jobs, the token. `cli` is the deepracer_rl.cli
    module (handed over by it: the console checks requests with its parser, `config_from_args` and
    `CliError` without importing it, so there is no import circle)."""

    def __init__(self, runs: Path, cli: Any, token: str | None = None, cwd: Path | None = None):
        self.runs = Path(runs)
        self.cli = cli
        self.token = token
        self.state = self.runs / STATE_DIR
        self.jobs = Jobs(self.state / "logs", cwd)

    # ---- security -----------------------------------------------------------------------------
    def authorized(self, headers: Any, query: dict[str, list[str]]) -> tuple[bool, bool]:
        """(allowed, set the cookie): the token in the Authorization header, the cookie or ?token=."""
        if self.token is None:
            return True, False
        given = []
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given.append(auth[7:].strip())
        cookie = SimpleCookie()
        with contextlib.suppress(Exception):
            cookie.load(headers.get("Cookie", ""))
        if TOKEN_COOKIE in cookie:
            given.append(cookie[TOKEN_COOKIE].value)
        from_query = query.get("token", [])
        given.extend(from_query)
        ok = any(hmac.compare_digest(g.encode(), self.token.encode()) for g in given)
        return ok, ok and bool(from_query)

    # ---- uploads --------------------------------------------------------------------------------
    def _upload(self, text: str, suffix: str) -> Path:
        """An uploaded file kept by its content (state dir, outside every run): the CLI reads it from there."""
        digest = hashlib.sha256(text.encode()).hexdigest()[:20]
        path = self.state / "uploads" / f"{digest}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        return path

    # ---- actions ----------------------------------------------------------------------------------
    def train_argv(self, body: dict[str, Any]) -> tuple[str, list[str]]:
        """A new training's `train` arguments from a form, checked as the CLI checks them."""
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ConsoleError(HTTPStatus.BAD_REQUEST, "name: expected the new run's name (letters, digits, . _ -)")
        try:
            path = run_views.run_path(self.runs, name)
        except run_views.RunViewError as exc:
            raise ConsoleError(HTTPStatus.BAD_REQUEST, f"name: {exc}") from None
        if path.exists() and any(path.iterdir()):
            raise ConsoleError(
                HTTPStatus.CONFLICT, f"name: run {name!r} already exists; resume it or choose another name"
            )
        argv = ["train", "--out", str(path), "--camera-snapshot", str(CAMERA_SNAPSHOT_S)]
        tracks = [_track_value("track", t) for t in _list_field(body, "track")]
        for track in tracks:
            argv += ["--track", track]
        for track in _list_field(body, "val_track"):
            argv += ["--val-track", _track_value("val_track", track)]
        reward = _text_field(body, "reward")
        reward_path = self._upload(reward, ".py") if reward else None
        if reward_path is not None:
            argv += ["--reward", str(reward_path)]
        metadata = _text_field(body, "action_space")
        if metadata:
            argv += ["--metadata", str(self._upload(metadata, ".json"))]
        race_type = body.get("race_type")
        if race_type:  # the CLI's --race-type: its choices, its default obstacles and bot cars
            argv += ["--race-type", _option_value("race_type", race_type)]
        world = _text_field(body, "world_config")
        if world:  # DeepRacer's world-config keys, YAML or JSON, as train --world-config FILE
            suffix = ".json" if world.lstrip().startswith("{") else ".yaml"
            argv += ["--world-config", str(self._upload(world, suffix))]
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise ConsoleError(HTTPStatus.BAD_REQUEST, "options: expected an object of training settings")
        for key, value in options.items():
            if key in TRAIN_SWITCHES:
                argv += _switch_flag(key, value, f"options.{key}")
                continue
            if key not in TRAIN_OPTIONS:
                raise ConsoleError(
                    HTTPStatus.BAD_REQUEST,
                    f"options.{key}: not a training setting; expected one of "
                    f"{', '.join(sorted([*TRAIN_OPTIONS, *TRAIN_SWITCHES]))}",
                )
            if value is None or value == "":
                continue
            argv += [TRAIN_OPTIONS[key], _option_value(key, value)]
        self.check_train(argv, reward_path, tracks)
        return name, argv

    def check_train(self, argv: list[str], reward_path: Path | None, tracks: list[str]) -> None:
        """What `deepracer-rl train` checks before it starts (its parser, the settings, the world
        config, the action space, the reward in an isolated process), with its messages."""
        from .action_space import ActionSpace
        from .reward import RewardFunctionError, validate_reward
        from .reward_process import IsolatedReward
        from .track import Track, TrackError, available_tracks
        from .train import TrainingError, check_config

        args = parse_cli(self.cli, argv)
        prefix = "deepracer-rl train: error: "
        try:
            config = self.cli.config_from_args(args)
            check_config(config)
            if config.metadata:
                ActionSpace.load(config.metadata)
            if reward_path is not None:
                first = tracks[0] if tracks and tracks[0] in available_tracks() else "reinvent_base"
                with IsolatedReward(str(reward_path)) as function:
                    validate_reward(str(reward_path), Track.load(first), count=REWARD_SAMPLES, function=function)
        except (
            TrainingError,
            self.cli.CliError,
            RewardFunctionError,
            TrackError,
            ValueError,
            FileNotFoundError,
        ) as exc:
            raise ConsoleError(HTTPStatus.BAD_REQUEST, prefix + str(exc)) from None

    def start_training(self, body: dict[str, Any]) -> Job:
        name, argv = self.train_argv(body)
        return self.jobs.start("train", name, argv)

    def resume(self, name: str, body: dict[str, Any]) -> Job:
        run = self._run(name)
        pid = run_views.training_pid(run)
        if pid is not None:
            raise ConsoleError(HTTPStatus.CONFLICT, f"run {name!r} is training (process {pid}); stop it first")
        if not run.has_checkpoint():
            raise ConsoleError(HTTPStatus.CONFLICT, f"run {name!r}: nothing to resume (no checkpoint yet)")
        argv = ["train", "--out", str(run.path), "--resume", "--camera-snapshot", str(CAMERA_SNAPSHOT_S)]
        for key, value in body.items():
            if key == "reward_isolation":
                argv += _switch_flag(key, value, key)
                continue
            if key not in RESUME_OPTIONS:
                raise ConsoleError(
                    HTTPStatus.BAD_REQUEST,
                    f"{key}: a resumed run keeps its settings; expected only {', '.join(RESUME_OPTIONS)} "
                    "or reward_isolation",
                )
            if value is not None and value != "":
                argv += [RESUME_OPTIONS[key], _option_value(key, value)]
        if not body.get("steps"):  # train's --steps default is no run's target: keep the run's own
            argv += ["--steps", str(run.load_config().steps)]
        self.check_train(argv, None, [])
        return self.jobs.start("resume", name, argv)

    def stop(self, name: str) -> list[Job]:
        self._run(name)
        running = [job for job in self.jobs.for_run(name) if job.running]
        if not running:
            pid = run_views.training_pid(self._run(name))
            where = f" (process {pid} holds it: press Ctrl-C where it runs)" if pid else ""
            raise ConsoleError(HTTPStatus.CONFLICT, f"run {name!r}: no job of this console is running{where}")
        for job in running:
            self.jobs.stop(job)
        return running

    def evaluate(self, name: str, body: dict[str, Any]) -> Job:
        run = self._run(name)
        argv = ["evaluate", str(run.path), "--video-in-run", "--json"]
        laps = body.get("laps", 1)
        argv += ["--laps", _option_value("laps", laps)]
        track = body.get("track")
        if track:
            argv += ["--track", _track_value("track", _option_value("track", track))]
        args = parse_cli(self.cli, argv)
        if args.laps < 1:
            raise ConsoleError(
                HTTPStatus.BAD_REQUEST, f"deepracer-rl evaluate: error: --laps must be at least 1, got {args.laps}"
            )
        if args.track:
            from .track import Track, TrackError

            try:
                Track.load(args.track[0])
            except (TrackError, FileNotFoundError, ValueError) as exc:
                raise ConsoleError(HTTPStatus.BAD_REQUEST, f"deepracer-rl evaluate: error: {exc}") from None
        if not (run.best_model.is_file() or run.checkpoint.is_file()):
            raise ConsoleError(HTTPStatus.CONFLICT, f"run {name!r} has no model yet (no checkpoint)")
        return self.jobs.start("evaluate", name, argv)

    def export(self, name: str, body: dict[str, Any]) -> Job:
        run = self._run(name)
        argv = ["export", str(run.path), "--format", _option_value("format", body.get("format", "onnx"))]
        parse_cli(self.cli, argv)
        if not (run.best_model.is_file() or run.checkpoint.is_file()):
            raise ConsoleError(HTTPStatus.CONFLICT, f"run {name!r} has no model yet (no checkpoint)")
        return self.jobs.start("export", name, argv)

    def _run(self, name: str) -> RunDir:
        try:
            run = RunDir(run_views.run_path(self.runs, name))
        except run_views.RunViewError as exc:
            raise ConsoleError(HTTPStatus.BAD_REQUEST, str(exc)) from None
        if not run.is_run():
            raise ConsoleError(HTTPStatus.NOT_FOUND, f"run {name!r}: no such run in {self.runs}")
        return run


# ---- HTTP ------------------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None  # served with range requests


def json_reply(data: Any, status: int = 200) -> Reply:
    return Reply(status, (json.dumps(data) + "\n").encode())


def html_reply(text: str) -> Reply:
    return Reply(body=text.encode(), content_type="text/html; charset=utf-8")


def _segments(path: str) -> list[str]:
    """The URL path's segments, decoded; a `.` or `..` segment (or an encoded slash) is refused."""
    parts = [unquote(p) for p in path.split("/") if p]
    for part in parts:
        if part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise ConsoleError(HTTPStatus.BAD_REQUEST, f"path segment {part!r}: not allowed (no '..', no slashes)")
    return parts


class Handler(BaseHTTPRequestHandler):
    server_version = "deepracer-rl-console"
    console: Console  # set on the subclass made by `make_server`

    def log_message(self, format: str, *args: Any) -> None:  # quiet: errors only
        if args and str(args[1] if len(args) > 1 else "").startswith(("4", "5")):
            sys.stderr.write(f"console: {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            set_cookie = self._check_access(query)
            reply = self._route(method, _segments(url.path), query)
            if set_cookie:
                reply.headers["Set-Cookie"] = f"{TOKEN_COOKIE}={self.console.token}; Path=/; HttpOnly; SameSite=Strict"
        except ConsoleError as exc:
            reply = json_reply({"error": exc.message}, exc.status)
        except run_views.RunViewError as exc:
            reply = json_reply({"error": str(exc)}, HTTPStatus.NOT_FOUND)
        except (FileNotFoundError, ValueError) as exc:
            reply = json_reply({"error": str(exc)}, HTTPStatus.NOT_FOUND if isinstance(exc, FileNotFoundError) else 400)
        except Exception as exc:  # a file being rewritten, a run in a state nobody foresaw: say what, not a traceback
            sys.stderr.write(f"console: {method} {url.path}: {type(exc).__name__}: {exc}\n")
            reply = json_reply({"error": f"{type(exc).__name__}: {exc}"}, HTTPStatus.INTERNAL_SERVER_ERROR)
        try:
            self._send(reply, method)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _check_access(self, query: dict[str, list[str]]) -> bool:
        console = self.console
        if console.token is None:  # loopback only: a page of another site reaching us by DNS is refused
            host = self.headers.get("Host", "")
            hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
            if hostname not in LOCAL_NAMES:
                raise ConsoleError(
                    HTTPStatus.FORBIDDEN,
                    f"Host {host!r}: this console answers to localhost only (start it with --host)",
                )
        ok, set_cookie = console.authorized(self.headers, query)
        if not ok:
            raise ConsoleError(
                HTTPStatus.UNAUTHORIZED,
                "a token is required: open the URL with ?token=TOKEN printed by deepracer-rl console, "
                "or send 'Authorization: Bearer TOKEN'",
            )
        return set_cookie

    def _body(self) -> dict[str, Any]:
        kind = self.headers.get("Content-Type", "").split(";")[0].strip()
        if kind != "application/json":  # also what keeps other sites' forms out (no CORS preflight for them)
            raise ConsoleError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "expected a JSON body (Content-Type: application/json)"
            )
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ConsoleError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body larger than {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise ConsoleError(HTTPStatus.BAD_REQUEST, f"request body: not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise ConsoleError(HTTPStatus.BAD_REQUEST, "request body: expected a JSON object")
        return body

    def _route(self, method: str, parts: list[str], query: dict[str, list[str]]) -> Reply:
        console, runs = self.console, self.console.runs
        if method == "POST":
            body = self._body()
            if parts == ["api", "train"]:
                return json_reply(console.start_training(body).as_dict(), HTTPStatus.ACCEPTED)
            if len(parts) == 4 and parts[:2] == ["api", "runs"]:
                name, action = parts[2], parts[3]
                if action == "stop":
                    return json_reply([job.as_dict() for job in console.stop(name)], HTTPStatus.ACCEPTED)
                actions = {"resume": console.resume, "evaluate": console.evaluate, "export": console.export}
                if action in actions:
                    return json_reply(actions[action](name, body).as_dict(), HTTPStatus.ACCEPTED)
            if len(parts) == 4 and parts[:2] == ["api", "jobs"] and parts[3] == "stop":
                job = console.jobs.get(parts[2])
                console.jobs.stop(job)
                return json_reply(job.as_dict(), HTTPStatus.ACCEPTED)
            raise ConsoleError(HTTPStatus.NOT_FOUND, f"POST /{'/'.join(parts)}: no such action")
        if not parts:
            return html_reply(pages.index_page(runs))
        if parts == ["favicon.ico"]:
            return Reply(HTTPStatus.NO_CONTENT, content_type="image/x-icon")
        head = parts[0]
        if head == "static" and len(parts) == 2:
            return static_file(parts[1])
        if head == "runs" and len(parts) == 2:
            console._run(parts[1])
            return html_reply(pages.run_page(runs, parts[1]))
        if head == "new" and len(parts) == 1:
            return html_reply(pages.new_page())
        if head == "leaderboard" and len(parts) == 1:
            return html_reply(pages.leaderboard_page(runs, query.get("track", [""])[0]))
        if head == "api":
            return self._api(parts[1:], query)
        raise ConsoleError(HTTPStatus.NOT_FOUND, f"/{'/'.join(parts)}: no such page")

    def _api(self, parts: list[str], query: dict[str, list[str]]) -> Reply:
        console, runs = self.console, self.console.runs
        if parts == ["runs"]:
            return json_reply([run_views.run_summary(runs, name) for name in run_views.run_names(runs)])
        if parts == ["jobs"]:
            return json_reply([job.as_dict() for job in console.jobs.jobs.values()])
        if len(parts) == 2 and parts[0] == "jobs":
            return json_reply(console.jobs.get(parts[1]).as_dict())
        if parts == ["tracks"]:
            from .track import available_tracks

            return json_reply(available_tracks())
        if parts == ["leaderboard"]:
            track = query.get("track", [""])[0]
            if not track:
                return json_reply({"tracks": run_views.leaderboard_tracks(runs)})
            return json_reply({"track": track, "entries": run_views.leaderboard(runs, track)})
        if len(parts) >= 2 and parts[0] == "runs":
            name = parts[1]
            run = console._run(name)
            rest = parts[2:]
            if not rest:
                details = run_views.run_details(runs, name)
                details["jobs"] = [job.as_dict() for job in console.jobs.for_run(name)]
                return json_reply(details)
            if rest == ["progress"]:
                return json_reply(run_views.curves(runs, name))
            if rest == ["actions"]:
                return json_reply(run_views.actions(runs, name))
            if rest == ["heatmap"]:
                return json_reply(run_views.heatmap(runs, name))
            if rest == ["evaluations"]:
                found = run_views.evaluations(run)
                for item in found:
                    item["video_url"] = (
                        f"/api/runs/{name}/evaluations/{item['id']}/video.mp4" if item["video"] else None
                    )
                return json_reply(found)
            if len(rest) == 3 and rest[0] == "evaluations" and rest[2] == "video.mp4":
                return Reply(content_type="video/mp4", file=run_views.evaluation_video(run, rest[1]))
            if rest == ["camera.jpg"]:
                if not run.camera_snapshot.is_file():
                    raise ConsoleError(
                        HTTPStatus.NOT_FOUND,
                        f"run {name!r}: no camera snapshot (trainings started by the console write one; "
                        "from the CLI: train --camera-snapshot SECONDS)",
                    )
                reply = Reply(body=run.camera_snapshot.read_bytes(), content_type="image/jpeg")
                reply.headers["Cache-Control"] = "no-store"
                return reply
            if rest == ["export.zip"]:
                reply = Reply(body=run_views.export_archive(runs, name), content_type="application/zip")
                reply.headers["Content-Disposition"] = f'attachment; filename="{name}-export.zip"'
                return reply
        raise ConsoleError(HTTPStatus.NOT_FOUND, f"/api/{'/'.join(parts)}: no such resource")

    def _send(self, reply: Reply, method: str) -> None:
        body = reply.body
        status = reply.status
        headers = dict(reply.headers)
        if reply.file is not None:  # a video: range requests (the browser's <video> seeks with them)
            size = reply.file.stat().st_size
            start, end = 0, size - 1
            wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
            if wanted and (wanted.group(1) or wanted.group(2)):
                if wanted.group(1):
                    start = int(wanted.group(1))
                    end = min(int(wanted.group(2)), size - 1) if wanted.group(2) else size - 1
                else:
                    start = max(0, size - int(wanted.group(2)))
                if start > end or start >= size:
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = HTTPStatus.PARTIAL_CONTENT
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            with open(reply.file, "rb") as handle:
                handle.seek(start)
                body = handle.read(end - start + 1)
            headers["Accept-Ranges"] = "bytes"
        self.send_response(status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        headers.setdefault("Cache-Control", "no-cache")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)


def static_file(name: str) -> Reply:
    """A file of the package's console_static/ folder (by plain name only)."""
    if not re.fullmatch(r"[a-z0-9_-]+\.(js|css|svg)", name) or not (STATIC_DIR / name).is_file():
        raise ConsoleError(HTTPStatus.NOT_FOUND, f"/static/{name}: no such file")
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Reply(body=(STATIC_DIR / name).read_bytes(), content_type=f"{kind}; charset=utf-8")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _warm_up() -> None:
    """Import what checking a training imports (torch, SB3) before the first form arrives."""
    with contextlib.suppress(Exception):
        from . import train  # noqa: F401


def is_loopback(host: str) -> bool:
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def make_server(
    runs: Path, cli: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str | None = None
) -> ThreadingHTTPServer:
    """A ThreadingHTTPServer of a `Console` over `runs` (`cli`: see `Console`); a host other than
    loopback needs `token`."""
    if not is_loopback(host) and not token:
        raise ValueError(
            f"--host {host}: a console reachable from other machines needs a token (--token or {TOKEN_ENV})"
        )
    console = Console(Path(runs), cli, token=token or None)
    handler = type("ConsoleHandler", (Handler,), {"console": console})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.console = console  # type: ignore[attr-defined]
    return server


def run_console(
    runs: str, cli: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str | None = None
) -> int:
    """Serve until Ctrl-C (or SIGTERM); then stop the console's jobs (each training checkpoints)."""
    runs_path = Path(runs)
    if not runs_path.is_dir():
        raise FileNotFoundError(
            f"{runs_path}: no such runs directory (train one: deepracer-rl train --out {runs}/NAME)"
        )
    token = token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and not token:
        token = secrets.token_urlsafe(24)
    server = make_server(runs_path, cli, host, port, token)
    # Ctrl-C and SIGTERM stop the console (also when started in the background, where SIGINT comes
    # ignored: the jobs would inherit that and could not be stopped).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    threading.Thread(target=_warm_up, daemon=True).start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{server.server_address[1]}/" + (f"?token={token}" if token else "")
    print(f"deepracer-rl console: serving {runs_path} on {url} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.console.jobs.close()  # type: ignore[attr-defined]
    print("deepracer-rl console: stopped", flush=True)
    return 0
