"""The console's HTML pages (`deepracer-rl console`): server-rendered from `run_views`, made live by
`console_static/console.js` (polling the JSON API; no build step, nothing from the internet)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from . import run_views


def _page(title: str, body: str, data: dict[str, Any] | None = None) -> str:
    attrs = "".join(f' data-{k}="{escape(str(v))}"' for k, v in (data or {}).items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} - deepracer-rl console</title>
<link rel="stylesheet" href="/static/console.css"></head>
<body{attrs}>
<header><a class="brand" href="/">deepracer-rl console</a>
<nav><a href="/">Runs</a> <a href="/new">New training</a> <a href="/leaderboard">Leaderboard</a></nav></header>
<main>
{body}
</main>
<script src="/static/console.js"></script>
</body></html>
"""


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    return f"{value}{unit}"


def _best_validation(summary: dict[str, Any]) -> str:
    best = summary.get("best_validation")
    if not best:
        return "-"
    lap = best.get("best_lap_s")
    return f"{best['mean_progress']:.1f} %" + (f", {lap:.2f} s" if lap is not None else "")


def _best_lap(summary: dict[str, Any]) -> str:
    lap = summary.get("best_lap_s")
    if lap is None:
        return "-"
    several = len(summary.get("tracks") or []) > 1 or summary.get("best_lap_track") not in summary.get("tracks", [])
    return f"{lap:.2f} s" + (f" ({summary['best_lap_track']})" if several and summary.get("best_lap_track") else "")


def _tracks_text(tracks: list[str]) -> str:
    return ", ".join(tracks[:3]) + (f" (+{len(tracks) - 3})" if len(tracks) > 3 else "")


def index_page(runs: Path) -> str:
    rows = []
    for name in run_views.run_names(runs):
        s = run_views.run_summary(runs, name)
        if s.get("status") == "broken":
            rows.append(
                f'<tr data-run="{escape(name)}"><td>{escape(name)}</td><td colspan="7">{escape(s["error"])}</td></tr>'
            )
            continue
        rows.append(
            f'<tr data-run="{escape(name)}"><td><a href="/runs/{escape(name)}">{escape(name)}</a></td>'
            f"<td>{escape(_tracks_text(s['tracks']))}</td><td>{escape(s['algo'])}</td>"
            f"<td>{escape(', '.join(s['sensors']))}</td>"
            f'<td class="steps">{s["steps"]} / {s["target_steps"]}</td>'
            f"<td>{escape(_best_validation(s))}</td>"
            f'<td class="best-lap">{escape(_best_lap(s))}</td>'
            f'<td class="status status-{escape(s["status"])}">{escape(s["status"])}</td></tr>'
        )
    table = (
        '<table id="runs"><thead><tr><th>run</th><th>track(s)</th><th>algorithm</th><th>sensors</th><th>steps</th>'
        "<th>best validation</th><th>best lap</th><th>status</th></tr></thead><tbody>"
        + ("".join(rows) or '<tr><td colspan="8">no runs yet: <a href="/new">start a training</a></td></tr>')
        + "</tbody></table>"
    )
    body = f'<h1>Runs in {escape(str(runs))}</h1>{table}<h2>Jobs</h2><div id="jobs">-</div>'
    return _page("Runs", body, {"page": "index"})


def run_page(runs: Path, name: str) -> str:
    s = run_views.run_details(runs, name)
    config = s.get("config") or {}
    settings = ", ".join(
        f"{k} {escape(str(config.get(k)))}"
        for k in ("algo", "network", "n_envs", "batch_size", "learning_rate", "entropy", "discount", "epochs")
        if k in config
    )
    chart = '<svg id="{}" class="chart" viewBox="0 0 480 220" data-points="0"></svg>'
    figures = "".join(
        f"<figure><figcaption>{caption}</figcaption>{inner}</figure>\n"
        for caption, inner in (
            ("Reward (mean per episode, per policy update)", chart.format("chart-reward")),
            ("Progress % and laps completed % (training), evaluation progress %", chart.format("chart-progress")),
            ("Lap time (best per evaluation, s)", chart.format("chart-laps")),
            (
                "Camera of car 0 (live while training)",
                '<img id="camera" alt="car 0\'s camera" hidden><p id="camera-none">no camera snapshot: trainings '
                "started here write one (from the CLI: train --camera-snapshot 1)</p>",
            ),
            (f"Actions taken (newest {run_views.SIMTRACE_ITERATIONS} iterations)", chart.format("chart-actions")),
            ("Reward over the track (heat map)", '<canvas id="heatmap" width="480" height="320"></canvas>'),
        )
    )
    figures = f'<section class="grid">{figures}</section>'
    body = f"""
<h1>Run <span id="run-name">{escape(name)}</span>
 <span id="status" class="status">{escape(s.get("status", "-"))}</span></h1>
<p class="summary">Track(s): {escape(_tracks_text(s.get("tracks", [])))}
&middot; sensors {escape(", ".join(s.get("sensors", [])))}
&middot; <span id="steps">{s.get("steps", 0)}</span> / {s.get("target_steps", "-")} steps
&middot; best validation <span id="best-validation">{escape(_best_validation(s))}</span>
&middot; best lap <span id="best-lap">{escape(_best_lap(s))}</span></p>
<p class="settings">{settings}</p>
<section class="controls">
 <button id="stop" type="button">Stop</button>
 <label>steps <input id="resume-steps" type="number" min="1" placeholder="{s.get("target_steps", "")}"></label>
 <button id="resume" type="button">Resume</button>
 <label>track <input id="eval-track" placeholder="{escape((s.get("tracks") or [""])[0])}"></label>
 <label>laps <input id="eval-laps" type="number" min="1" max="20" value="1"></label>
 <button id="evaluate" type="button">Evaluate (with video)</button>
 <select id="export-format"><option>onnx</option><option>openvino</option></select>
 <button id="export" type="button">Export</button>
 <a id="download" href="/api/runs/{escape(name)}/export.zip">Download export (.zip)</a>
 <div id="job-message" role="status"></div>
</section>
{figures}
<h2>Evaluations</h2>
<div id="evaluations">-</div>
"""
    return _page(f"Run {name}", body, {"page": "run", "run": name})


def new_page() -> str:
    from .algorithms import ALGORITHMS
    from .networks import NETWORKS
    from .track import available_tracks
    from .world_objects import RACE_TYPES

    tracks = "".join(f'<option value="{escape(t)}">' for t in available_tracks())
    options = lambda names, default: "".join(  # noqa: E731
        f"<option{' selected' if n == default else ''}>{escape(n)}</option>" for n in names
    )
    body = f"""
<h1>New training</h1>
<form id="train-form">
<fieldset><legend>Run</legend>
 <label>name <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9_.-]*"></label>
 <label>track(s), comma separated <input name="track" list="track-names" value="reinvent_base"></label>
 <datalist id="track-names">{tracks}</datalist>
 <label>race type <select name="race_type">{options(RACE_TYPES, "time_trial")}</select></label>
 <label>world config (YAML/JSON, DeepRacer's keys; empty: the race type's defaults)
  <textarea name="world_config" rows="3"></textarea></label>
</fieldset>
<fieldset><legend>Reward function (reward_function(params); empty: follow the centre line)</legend>
 <label>upload a .py <input type="file" data-into="reward" accept=".py,text/x-python"></label><br>
 <textarea name="reward" rows="10" cols="80" placeholder="def reward_function(params):&#10;    return 1.0"></textarea>
</fieldset>
<fieldset><legend>Action space (model_metadata.json; empty: the DeepRacer console's default)</legend>
 <label>upload a .json <input type="file" data-into="action_space" accept=".json,application/json"></label><br>
 <textarea name="action_space" rows="5" cols="80"></textarea>
</fieldset>
<fieldset><legend>Training</legend>
 <label>algorithm <select name="algo">{options(sorted(ALGORITHMS), "ppo")}</select></label>
 <label>network <select name="network">{options(sorted(NETWORKS), "shallow")}</select></label>
 <label>steps <input name="steps" type="number" value="20000"></label>
 <label>cars (--n-envs) <input name="n_envs" type="number" placeholder="8"></label>
 <label>max minutes <input name="max_minutes" type="number" step="any"></label>
 <label>image size <input name="image_size" placeholder="80x60"></label>
</fieldset>
<fieldset><legend>Hyperparameters (DeepRacer console names)</legend>
 <label>batch size <input name="batch_size" placeholder="256"></label>
 <label>learning rate <input name="learning_rate" placeholder="0.0003"></label>
 <label>entropy <input name="entropy" placeholder="0.01"></label>
 <label>discount <input name="discount" placeholder="0.99"></label>
 <label>epochs <input name="epochs" placeholder="3"></label>
 <label>episodes between updates <input name="episodes_between_updates" placeholder="20"></label>
 <label>evaluate every (steps) <input name="eval_every" placeholder="10000"></label>
 <label>checkpoint every (steps) <input name="checkpoint_every" placeholder="10000"></label>
</fieldset>
<button type="submit" id="start">Start training</button>
<pre id="form-error" role="alert"></pre>
</form>
"""
    return _page("New training", body, {"page": "new"})


def leaderboard_page(runs: Path, track: str) -> str:
    tracks = run_views.leaderboard_tracks(runs)
    track = track or (tracks[0] if tracks else "")
    choices = "".join(
        f"<option{' selected' if t == track else ''}>{escape(t)}</option>" for t in sorted({*tracks, track} - {""})
    )
    rows = "".join(
        f'<tr><td>{r["rank"]}</td><td><a href="/runs/{escape(r["run"])}">{escape(r["run"])}</a></td>'
        f"<td>{r['best_lap_s']:.3f} s</td><td>{r['laps']}</td><td>{escape(r['algo'])}</td>"
        f"<td>{escape(_tracks_text(r['trained_on']))}</td></tr>"
        for r in (run_views.leaderboard(runs, track) if track else [])
    )
    body = f"""<h1>Leaderboard</h1>
<form method="get" action="/leaderboard"><label>track <select name="track">{choices}</select></label>
<button>show</button></form>
<table id="leaderboard"><thead><tr><th>#</th><th>run</th><th>best lap</th><th>laps</th><th>algorithm</th>
<th>trained on</th></tr></thead>
<tbody>{rows or '<tr><td colspan="6">no completed laps on this track yet</td></tr>'}</tbody></table>"""
    return _page("Leaderboard", body, {"page": "leaderboard"})
