"""`deepracer-rl console`: the real server (a CLI process) over HTTP on loopback, and its pages in a
real headless Chromium (Debian's chromium + chromium-driver: tools/install_browser.sh)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import signal
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from processes import SimProcess, run_cli

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FIRST_POINT_S = 10.0  # a training started from the API shows its first curve points within this long


def first_point_budget() -> float:
    """FIRST_POINT_S on a machine with a core to spare; stretched by how oversubscribed the CPUs are
    (load average over cores: the new process gets that much less of a core), as on a busy CI box."""
    return FIRST_POINT_S * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


# One action straight ahead at two speeds: on Straight_track even a few hundred steps complete laps.
STRAIGHT_ACTIONS = {
    "action_space": [{"steering_angle": 0.0, "speed": 1.0}, {"steering_angle": 0.0, "speed": 2.0}],
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "clipped_ppo",
    "action_space_type": "discrete",
    "version": "5",
}
SMALL = ["--n-envs", "2", "--image-size", "40x40", "--network", "small", "--batch-size", "64", "--epochs", "1"]
SMALL_OPTIONS = {  # the same as form/API options of a training
    "n_envs": 2,
    "image_size": "40x40",
    "network": "small",
    "batch_size": 64,
    "epochs": 1,
    "episodes_between_updates": 1,
    "checkpoint_every": 256,
    "eval_every": 1000,
    "reward_isolation": False,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs directory with `demo`: a short real training on Straight_track, evaluated with video."""
    root = tmp_path_factory.mktemp("console")
    runs = root / "runs"
    runs.mkdir()
    metadata = root / "straight.json"
    metadata.write_text(json.dumps(STRAIGHT_ACTIONS))
    demo = runs / "demo"
    code, out = run_cli(
        root / "train.log",
        *("train", "--out", str(demo), "--track", "Straight_track", "--metadata", str(metadata), "--steps", "400"),
        *(*SMALL, "--episodes-between-updates", "1", "--eval-every", "200", "--checkpoint-every", "200"),
        "--no-reward-isolation",
        timeout=180,
    )
    assert code == 0, out
    code, out = run_cli(
        root / "evaluate.log", "evaluate", str(demo), "--laps", "1", "--video-in-run", "--json", timeout=180
    )
    assert code == 0, out
    return runs


class Console:
    """`deepracer-rl console` as a process (its own group): its URL, and requests to it."""

    def __init__(self, runs: Path, log: Path, *args: str):
        self.proc = SimProcess(log, ["deepracer_rl.cli", "console", "--runs", str(runs), "--port", "0", *args])
        deadline = time.monotonic() + 60
        while not (match := re.search(r"on (http://[^ ]+?:(\d+)/)(\?token=(\S+))? ", self.proc.output())):
            assert self.proc.proc.poll() is None, self.proc.output()
            assert time.monotonic() < deadline, f"the console did not start: {self.proc.output()}"
            time.sleep(0.1)
        self.port = int(match.group(2))
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = match.group(4)

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        """(status, headers, body bytes) of one request; `path` is sent as is (no normalisation)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        data = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json"} if body is not None else {}
        sent.update(headers or {})
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return response.status, dict(response.getheaders()), payload

    def get(self, path: str, **kwargs):
        status, _, payload = self.request("GET", path, **kwargs)
        return status, json.loads(payload) if payload.startswith((b"{", b"[")) else payload

    def post(self, path: str, body: dict):
        status, _, payload = self.request("POST", path, body)
        return status, json.loads(payload)

    def stop(self) -> None:
        code = self.proc.interrupt(timeout=90)  # stops its jobs (trainings checkpoint) before it exits
        assert code == 0, self.proc.output()
        assert not self.proc.group_alive()


@pytest.fixture(scope="module")
def console(runs, tmp_path_factory):
    server = Console(runs, tmp_path_factory.mktemp("console_log") / "console.log")
    yield server
    server.stop()


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)


def job_done(console: Console, job_id: str) -> dict | None:
    _, job = console.get(f"/api/jobs/{job_id}")
    return job if job["status"] not in ("running", "stopping") else None


# ---- the API --------------------------------------------------------------------------------------
def test_api_lists_the_run_with_its_best_lap_and_its_evaluation_video(runs, console):
    status, listed = console.get("/api/runs")
    assert status == 200
    demo = {row["name"]: row for row in listed}["demo"]
    evaluation = json.loads(next(runs.glob("demo/evaluation-*/evaluation.json")).read_text())
    laps = list(evaluation["lap_times_s"])
    for line in (runs / "demo" / "evaluations.csv").read_text().splitlines()[1:]:
        laps += [float(t) for t in line.split(",")[3].split()]
    assert laps, "the straight-ahead policy completes laps"
    assert demo["best_lap_s"] == round(min(laps), 3)
    assert demo["tracks"] == ["Straight_track"] and demo["algo"] == "ppo"
    assert demo["sensors"] == ["FRONT_FACING_CAMERA"] and demo["status"] == "done" and demo["steps"] >= 400
    status, evaluations = console.get("/api/runs/demo/evaluations")
    assert status == 200 and evaluations[-1]["result"]["completed_laps"] == evaluation["completed_laps"]
    video = runs / "demo" / evaluations[-1]["id"] / "video.mp4"
    status, headers, payload = console.request("GET", evaluations[-1]["video_url"], headers={"Range": "bytes=0-99"})
    assert status == 206 and headers["Content-Type"] == "video/mp4" and headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Range"] == f"bytes 0-99/{video.stat().st_size}"
    assert payload == video.read_bytes()[:100]
    status, curves = console.get("/api/runs/demo/progress")
    assert status == 200 and [row["timesteps"] for row in curves["progress"]] == sorted(
        row["timesteps"] for row in curves["progress"]
    )
    assert len(curves["evaluations"]) == 2 and curves["evaluations"][0]["best_lap_s"] is not None
    status, actions = console.get("/api/runs/demo/actions")
    assert status == 200 and actions["kind"] == "action" and len(actions["counts"]) == 2 and sum(actions["counts"])
    status, board = console.get("/api/leaderboard?track=Straight_track")
    assert status == 200 and board["entries"][0]["run"] == "demo"
    assert board["entries"][0]["best_lap_s"] == demo["best_lap_s"]


def test_export_from_the_api_downloads_as_one_archive(console):
    status, missing = console.get("/api/runs/demo/export.zip")
    assert status == 404 and "no export yet" in missing["error"]
    status, job = console.post("/api/runs/demo/export", {"format": "onnx"})
    assert status == 202
    job = wait_for(lambda: job_done(console, job["id"]), 120, "the export")
    assert job["status"] == "finished", job["output"]
    status, headers, payload = console.request("GET", "/api/runs/demo/export.zip")
    assert status == 200 and headers["Content-Type"] == "application/zip"
    names = set(zipfile.ZipFile(io.BytesIO(payload)).namelist())
    assert {"demo/model.onnx", "demo/model_metadata.json", "demo/SHA256SUMS"} <= names


def test_an_evaluation_from_the_api_adds_its_result_and_video(console):
    _, before = console.get("/api/runs/demo/evaluations")
    status, job = console.post("/api/runs/demo/evaluate", {"laps": 1, "track": "Straight_track"})
    assert status == 202 and "--video-in-run" in job["command"]
    job = wait_for(lambda: job_done(console, job["id"]), 120, "the evaluation")
    assert job["status"] == "finished", job["output"]
    _, after = console.get("/api/runs/demo/evaluations")
    assert len(after) == len(before) + 1
    newest = after[-1]
    assert newest["result"]["track"] == "Straight_track" and newest["result"]["video"] == "video.mp4"
    assert newest["video_url"].endswith(f"/evaluations/{newest['id']}/video.mp4")
    status, reply = console.post("/api/runs/demo/evaluate", {"laps": 0})
    assert status == 400 and reply["error"] == "deepracer-rl evaluate: error: --laps must be at least 1, got 0"


def test_a_form_error_is_the_clis_own_message(console, tmp_path):
    status, reply = console.post("/api/train", {"name": "bad", "options": {"batch_size": "x"}})
    code, out = run_cli(tmp_path / "cli.log", "train", "--out", str(tmp_path / "r"), "--batch-size", "x", timeout=60)
    assert status == 400 and code == 2
    assert (
        reply["error"]
        == out.strip().splitlines()[-1]
        == ("deepracer-rl train: error: argument --batch-size: invalid int value: 'x'")
    )
    status, reply = console.post("/api/train", {"name": "bad", "options": {"discount": 2}})
    assert status == 400 and reply["error"].startswith("deepracer-rl train: error: --discount 2")
    nan_reward = "def reward_function(params):\n    return float('nan')\n"
    status, reply = console.post("/api/train", {"name": "bad", "reward": nan_reward})
    assert status == 400 and "reward_function returned nan" in reply["error"]
    status, reply = console.post("/api/train", {"name": "bad", "race_type": "drag_race"})
    assert status == 400 and reply["error"].startswith(
        "deepracer-rl train: error: argument --race-type: invalid choice: 'drag_race'"
    )
    status, reply = console.post("/api/train", {"name": "bad", "options": {"select_by": "luck"}})
    assert status == 400 and "argument --select-by: invalid choice" in reply["error"]
    status, reply = console.post("/api/train", {"name": "bad", "options": {"normalize_reward": "yes"}})
    assert status == 400 and reply["error"] == "options.normalize_reward: expected true or false"
    status, reply = console.post("/api/train", {"name": "bad", "options": {"no_such": 1}})
    assert status == 400 and reply["error"].startswith("options.no_such: not a training setting")
    status, reply = console.post("/api/train", {"name": "demo"})
    assert status == 409 and "already exists" in reply["error"]


def test_a_training_started_from_the_api_shows_points_within_10_s_and_stops_resumable(runs, console):
    started = time.monotonic()
    options = {"steps": 2000, **SMALL_OPTIONS, "normalize_reward": True, "target_kl": 0.05, "select_by": "mean_lap"}
    status, job = console.post("/api/train", {"name": "live", "options": options})
    assert status == 202 and job["command"][:2] == ["deepracer-rl", "train"]
    assert "--normalize-reward" in job["command"] and "--target-kl" in job["command"]
    assert job["command"][job["command"].index("--select-by") + 1] == "mean_lap"

    def points():
        status, curves = console.get("/api/runs/live/progress")
        return len(curves["progress"]) if status == 200 else 0

    budget = first_point_budget()
    wait_for(points, budget, f"the first points of the curve (budget {budget:.1f} s)", interval=0.25)
    first = time.monotonic() - started
    _, summary = console.get("/api/runs/live")
    assert summary["status"] == "training" and summary["pid"] == job["pid"]  # it holds run.lock
    status, stopped = console.post("/api/runs/live/stop", {})
    assert status == 202 and stopped[0]["id"] == job["id"]
    job = wait_for(lambda: job_done(console, job["id"]), 60, "the training to stop")
    assert job["status"] == "stopped" and job["exit_code"] == 2
    assert "checkpoint saved at step" in job["output"] and "continue with --resume" in job["output"]
    _, summary = console.get("/api/runs/live")
    assert summary["status"] == "stopped" and summary["resumable"] and summary["steps"] < 2000, (first, summary)
    status, camera = console.get("/api/runs/live/camera.jpg")
    assert status == 200 and camera[:2] == b"\xff\xd8"  # a JPEG of car 0's camera, written by the trainer
    status, job = console.post("/api/runs/live/resume", {"reward_isolation": False})
    assert status == 202 and "--resume" in job["command"]
    job = wait_for(lambda: job_done(console, job["id"]), 120, "the resumed training")
    assert job["status"] == "finished", job["output"]
    _, summary = console.get("/api/runs/live")
    assert summary["status"] == "done" and summary["steps"] >= 2000
    shutil.rmtree(runs / "live")


def test_the_camera_snapshot_is_car_0s_newest_frame():
    from deepracer_rl.callbacks import camera_image

    gray = np.arange(2 * 3 * 6 * 8, dtype=np.uint8).reshape(2, 3, 6, 8)  # 2 cars, a stack of 3 gray frames
    assert np.array_equal(camera_image(gray, grayscale=True), gray[0, -1])
    colour = np.arange(2 * 6 * 6 * 8, dtype=np.uint8).reshape(2, 6, 6, 8)  # a stack of 2 RGB frames
    bgr = camera_image(colour, grayscale=False)
    assert (
        bgr.shape == (6, 8, 3)
        and np.array_equal(bgr[..., 0], colour[0, 5])
        and np.array_equal(bgr[..., 2], colour[0, 3])
    )
    assert camera_image(None, grayscale=True) is None


def test_a_csv_row_being_written_is_not_served(tmp_path):
    from deepracer_rl.run_views import read_csv_rows

    path = tmp_path / "progress.csv"
    path.write_text("iteration,timesteps,mean_reward\n1,128,2.5\n2,25")  # the trainer is mid-row
    assert read_csv_rows(path) == [{"iteration": 1, "timesteps": 128, "mean_reward": 2.5}]
    assert read_csv_rows(tmp_path / "not_yet.csv") == []


# ---- security -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/../../etc/passwd",
        "/api/runs/..%2F..%2Fetc/progress",
        "/api/runs/%2E%2E/progress",
        "/static/../console.py",
        "/runs/..%2Fdemo",
        "/api/runs/demo/evaluations/..%2F..%2Fconfig.json/video.mp4",
        "/api/runs/demo/evaluations/../config.json/video.mp4",
    ],
)
def test_dot_dot_paths_are_refused(console, path):
    status, _, payload = console.request("GET", path)
    assert status in (400, 404)
    assert b"root:" not in payload and b"reward_function" not in payload and b'"algo"' not in payload
    assert "error" in json.loads(payload)


def test_a_run_name_leaving_the_runs_directory_is_refused(console):
    status, reply = console.post("/api/train", {"name": "../outside"})
    assert status == 400 and reply["error"].startswith("name: ")
    status, reply = console.post("/api/runs/..%2Fdemo/stop", {})
    assert status == 400
    for track in ("/etc/passwd", "@/etc/passwd", "../runs/demo/x.npy"):
        status, reply = console.post("/api/train", {"name": "elsewhere", "track": [track]})
        assert status == 400 and "takes no file paths" in reply["error"] and "root:" not in reply["error"]
    status, reply = console.post("/api/runs/demo/evaluate", {"track": "/etc/passwd"})
    assert status == 400 and "takes no file paths" in reply["error"]


def test_requests_addressed_to_another_host_and_non_json_posts_are_refused(console):
    status, reply = console.get("/api/runs", headers={"Host": "attacker.example:8765"})
    assert status == 403 and "localhost only" in reply["error"]
    status, _, payload = console.request("POST", "/api/train", headers={"Content-Type": "text/plain"})
    assert status == 415


def test_a_non_loopback_host_needs_the_token(runs, tmp_path):
    server = Console(runs, tmp_path / "open.log", "--host", "0.0.0.0")
    try:
        assert server.token, "a console on another host prints the token it requires"
        status, reply = server.get("/api/runs")
        assert status == 401 and "token is required" in reply["error"]
        status, _ = server.get("/api/runs", headers={"Authorization": "Bearer wrong"})
        assert status == 401
        status, listed = server.get("/api/runs", headers={"Authorization": f"Bearer {server.token}"})
        assert status == 200 and "demo" in [row["name"] for row in listed]
        status, headers, _ = server.request("GET", f"/?token={server.token}")
        assert status == 200 and "HttpOnly" in headers["Set-Cookie"]
    finally:
        server.stop()


# ---- the pages in headless Chromium ------------------------------------------------------------------
@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (tools/install_browser.sh, run by make test)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    service = Service(
        str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"), popen_kw={"start_new_session": True}
    )
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
        process = service.process
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(10)


def chart_points(driver, chart: str) -> int:
    return int(driver.find_element("id", chart).get_attribute("data-points") or 0)


def test_the_run_page_shows_the_reward_curve_and_the_evaluation_video(console, browser):
    browser.get(console.url + "/")
    row = wait_for(lambda: browser.find_elements("css selector", 'tr[data-run="demo"]'), 20, "the run's row")
    assert "Straight_track" in row[0].text and "done" in row[0].text
    browser.get(console.url + "/runs/demo")
    wait_for(lambda: chart_points(browser, "chart-reward") > 0, 30, "the reward curve")
    assert browser.find_elements("css selector", "#chart-reward polyline.series")
    assert chart_points(browser, "chart-laps") > 0
    video = wait_for(lambda: browser.find_elements("css selector", "#evaluations video"), 30, "the video")[0]
    assert "/evaluations/evaluation-" in video.get_attribute("src")
    ready = wait_for(
        lambda: browser.execute_script("return arguments[0].readyState >= 1 && arguments[0].duration > 0", video),
        30,
        "the video's metadata",
    )
    assert ready and browser.execute_script("return arguments[0].videoWidth", video) > 0
    wait_for(lambda: chart_points(browser, "chart-actions") == 2, 30, "the action histogram")
    assert int(browser.find_element("id", "heatmap").get_attribute("data-steps")) > 0


def test_start_a_training_from_the_form_watch_the_curve_grow_and_stop_it(runs, console, browser):
    browser.get(console.url + "/new")
    form = browser.find_element("id", "train-form")
    fields = {
        "name": "fromform",
        "track": "reinvent_base",
        "steps": "3000",
        "n_envs": "2",
        "image_size": "40x40",
        "batch_size": "64",
        "epochs": "1",
        "episodes_between_updates": "1",
        "eval_every": "100000",
        "checkpoint_every": "256",
    }
    for name, value in fields.items():
        box = form.find_element("name", name)
        box.clear()
        box.send_keys(value)
    from selenium.webdriver.support.ui import Select

    Select(form.find_element("name", "network")).select_by_visible_text("small")
    browser.find_element("id", "start").click()
    wait_for(lambda: browser.current_url.endswith("/runs/fromform"), 60, "the run page of the new training")
    wait_for(lambda: chart_points(browser, "chart-reward") > 0, 60, "the first points")
    shown = chart_points(browser, "chart-reward")
    wait_for(lambda: chart_points(browser, "chart-reward") > shown, 30, "the curve to grow while training runs")
    wait_for(lambda: browser.find_element("id", "camera").get_attribute("src"), 20, "the live camera")
    browser.find_element("id", "stop").click()
    wait_for(lambda: browser.find_element("id", "status").text == "stopped", 60, "the run to stop")
    assert browser.find_element("id", "resume").is_enabled()
    assert (runs / "fromform" / "checkpoints" / "latest.zip").is_file()
    shutil.rmtree(runs / "fromform")


def test_the_console_refuses_a_missing_runs_directory(tmp_path):
    code, out = run_cli(tmp_path / "c.log", "console", "--runs", str(tmp_path / "nope"), timeout=60)
    assert code == 2 and "no such runs directory" in out and "Traceback" not in out
