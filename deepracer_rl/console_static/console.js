// deepracer-rl console: polls the JSON API and draws the curves as plain SVG (no libraries, no build step).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const page = document.body.dataset.page;
const runName = document.body.dataset.run;

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {}));
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
  if (!response.ok) { throw new Error((data && data.error) || response.statusText); }
  return data;
}

function post(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
}

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) { node.setAttribute(k, v); }
  if (parent) { parent.appendChild(node); }
  return node;
}

// A line chart of several series [{name, color, points: [[x, y], ...]}] into an <svg viewBox="0 0 480 220">.
function lineChart(svg, series, xLabel) {
  while (svg.firstChild) { svg.removeChild(svg.firstChild); }
  const W = 480, H = 220, L = 48, R = 10, T = 10, B = 30;
  const all = series.flatMap((s) => s.points).filter((p) => p[1] !== null && isFinite(p[1]));
  svg.dataset.points = String(all.length);
  if (!all.length) {
    el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#888" }, svg).textContent = "no data yet";
    return;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x0 === x1) { x1 = x0 + 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999" }, svg);
  el("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#999" }, svg);
  for (const [y, label] of [[y0, y0], [y1, y1]]) {
    el("text", { x: L - 4, y: sy(y) + 4, "text-anchor": "end", "font-size": 10, fill: "#555" }, svg).textContent = fmt(label);
  }
  el("text", { x: L, y: H - 8, "font-size": 10, fill: "#555" }, svg).textContent = fmt(x0);
  el("text", { x: W - R, y: H - 8, "text-anchor": "end", "font-size": 10, fill: "#555" }, svg).textContent = fmt(x1) + " " + xLabel;
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => p[1] !== null && isFinite(p[1]));
    if (pts.length) {
      el("polyline", { points: pts.map((p) => sx(p[0]) + "," + sy(p[1])).join(" "), fill: "none", stroke: s.color, "stroke-width": 1.8, class: "series" }, svg);
      for (const p of pts.slice(-200)) { el("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2, fill: s.color }, svg); }
    }
    el("text", { x: L + 8 + i * 150, y: T + 10, "font-size": 11, fill: s.color }, svg).textContent = s.name;
  });
}

function fmt(v) {
  if (v === null || v === undefined) { return "-"; }
  const a = Math.abs(v);
  return a >= 10000 ? (v / 1000).toFixed(0) + "k" : a >= 100 ? v.toFixed(0) : v.toFixed(2);
}

function barChart(svg, labels, counts, title) {
  while (svg.firstChild) { svg.removeChild(svg.firstChild); }
  const W = 480, H = 220, L = 40, B = 40, T = 10;
  const max = Math.max(1, ...counts);
  const w = (W - L - 10) / Math.max(1, counts.length);
  svg.dataset.points = String(counts.length);
  counts.forEach((c, i) => {
    const h = (c / max) * (H - T - B);
    const bar = el("rect", { x: L + i * w + 1, y: H - B - h, width: Math.max(1, w - 2), height: h, fill: "#2e8b57" }, svg);
    el("title", {}, bar).textContent = labels[i] + ": " + c + " steps";
    if (counts.length <= 21) {
      el("text", { x: L + i * w + w / 2, y: H - B + 12, "text-anchor": "middle", "font-size": 9, fill: "#555" }, svg).textContent = labels[i];
    }
  });
  el("text", { x: L, y: H - 6, "font-size": 10, fill: "#555" }, svg).textContent = title + " (max " + max + " steps)";
}

function heatmap(canvas, data) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const border = data.inner.concat(data.outer);
  const xs = border.map((p) => p[0]), ys = border.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs) - 0.3, Math.max(...xs) + 0.3, Math.min(...ys) - 0.3, Math.max(...ys) + 0.3];
  const scale = Math.min(canvas.width / (x1 - x0), canvas.height / (y1 - y0));
  const px = (x) => (x - x0) * scale, py = (y) => canvas.height - (y - y0) * scale;
  const grid = data.mean_reward;
  const values = grid.flat().filter((v) => v !== null);
  if (values.length) {
    const lo = Math.min(...values), hi = Math.max(...values);
    for (let i = 0; i < grid.length; i++) {
      for (let j = 0; j < grid[i].length; j++) {
        const v = grid[i][j];
        if (v === null) { continue; }
        const t = hi > lo ? (v - lo) / (hi - lo) : 1;
        ctx.fillStyle = "rgb(" + Math.round(40 + 215 * t) + "," + Math.round(20 + 150 * t * t) + "," + Math.round(90 * (1 - t)) + ")";
        const xa = px(data.x_edges[i]), xb = px(data.x_edges[i + 1]);
        const ya = py(data.y_edges[j + 1]), yb = py(data.y_edges[j]);
        ctx.fillRect(xa, ya, xb - xa + 0.5, yb - ya + 0.5);
      }
    }
  }
  ctx.strokeStyle = "#333";
  for (const line of [data.inner, data.outer]) {
    ctx.beginPath();
    line.forEach((p, k) => (k ? ctx.lineTo(px(p[0]), py(p[1])) : ctx.moveTo(px(p[0]), py(p[1]))));
    if (data.closed) { ctx.closePath(); }
    ctx.stroke();
  }
  canvas.dataset.steps = String(data.steps);
}

function bestLap(s) {
  if (s.best_lap_s === null) { return "-"; }
  const several = s.tracks.length > 1 || !s.tracks.includes(s.best_lap_track);
  return s.best_lap_s.toFixed(2) + " s" + (several && s.best_lap_track ? " (" + s.best_lap_track + ")" : "");
}

// ---- the run page ------------------------------------------------------------------------------
async function refreshCurves() {
  const data = await api("/api/runs/" + runName + "/progress");
  const progress = data.progress;
  lineChart(document.getElementById("chart-reward"), [
    { name: "mean reward", color: "#1f77b4", points: progress.map((r) => [r.timesteps, r.mean_reward]) },
  ], "steps");
  lineChart(document.getElementById("chart-progress"), [
    { name: "progress %", color: "#2ca02c", points: progress.map((r) => [r.timesteps, r.mean_progress]) },
    { name: "laps completed %", color: "#ff7f0e", points: progress.map((r) => [r.timesteps, 100 * r.completion_rate]) },
    { name: "evaluation %", color: "#9467bd", points: data.evaluations.map((r) => [r.timesteps, r.mean_progress]) },
  ], "steps");
  lineChart(document.getElementById("chart-laps"), [
    { name: "best lap s", color: "#d62728", points: data.evaluations.map((r) => [r.timesteps, r.best_lap_s]) },
  ], "steps");
}

async function refreshRun() {
  const s = await api("/api/runs/" + runName);
  const status = document.getElementById("status");
  status.textContent = s.status;
  status.className = "status status-" + s.status;
  document.getElementById("steps").textContent = s.steps;
  document.getElementById("best-lap").textContent = bestLap(s);
  const bv = s.best_validation;
  document.getElementById("best-validation").textContent = bv ? bv.mean_progress.toFixed(1) + " %" + (bv.best_lap_s ? ", " + bv.best_lap_s.toFixed(2) + " s" : "") : "-";
  document.getElementById("stop").disabled = !s.jobs.some((j) => j.status === "running" && (j.kind === "train" || j.kind === "resume"));
  document.getElementById("resume").disabled = !s.resumable;
  document.getElementById("download").hidden = !s.exported;
  const last = s.jobs[s.jobs.length - 1];
  if (last) {
    const message = document.getElementById("job-message");
    message.textContent = last.kind + " " + last.status + (last.message ? ": " + last.message : "");
    message.className = last.status === "failed" ? "" : "ok";
  }
  const camera = document.getElementById("camera");
  camera.hidden = !s.camera;
  document.getElementById("camera-none").hidden = s.camera;
  if (s.camera && (s.status === "training" || !camera.src)) {
    camera.src = "/api/runs/" + runName + "/camera.jpg?t=" + Date.now();
  }
  return s;
}

let shownEvaluations = -1;
async function refreshEvaluations() {
  const list = await api("/api/runs/" + runName + "/evaluations");
  if (list.length === shownEvaluations) { return; }
  shownEvaluations = list.length;
  const box = document.getElementById("evaluations");
  box.textContent = list.length ? "" : "no evaluations yet";
  for (const item of list.slice().reverse()) {
    const r = item.result;
    const div = document.createElement("div");
    div.className = "evaluation";
    const laps = (r.lap_times_s || []).map((t) => t.toFixed(2) + " s").join(", ") || "none";
    const title = document.createElement("p");
    title.textContent = item.id + ": " + (r.track || "") + " - " + r.completed_laps + "/" + (r.attempted_laps || r.laps) + " laps, progress " + r.mean_progress + " %, lap times " + laps;
    div.appendChild(title);
    if (item.video_url) {
      const video = document.createElement("video");
      video.controls = true;
      video.preload = "metadata";
      video.src = item.video_url;
      div.appendChild(video);
    }
    box.appendChild(div);
  }
}

async function refreshCharts() {
  const actions = await api("/api/runs/" + runName + "/actions");
  const labels = actions.kind === "action"
    ? actions.counts.map((_, i) => (actions.actions ? actions.actions[i].steering_angle + "°/" + actions.actions[i].speed : String(i)))
    : actions.edges.slice(0, -1).map((e) => e.toFixed(0) + "°");
  barChart(document.getElementById("chart-actions"), labels, actions.counts, actions.kind === "action" ? "action (steering/speed)" : "steering angle");
  heatmap(document.getElementById("heatmap"), await api("/api/runs/" + runName + "/heatmap"));
}

function control(id, action, body) {
  document.getElementById(id).addEventListener("click", async () => {
    const message = document.getElementById("job-message");
    try {
      const job = await post("/api/runs/" + runName + "/" + action, body ? body() : {});
      message.className = "ok";
      message.textContent = action + ": " + (Array.isArray(job) ? job.map((j) => j.kind + " " + j.status).join(", ") : job.kind + " " + job.status);
    } catch (e) {
      message.className = "";
      message.textContent = e.message;
    }
    refreshRun().catch(() => {});
  });
}

function every(ms, fn) {
  const tick = () => fn().catch((e) => console.warn(e)).finally(() => setTimeout(tick, ms));
  tick();
}

if (page === "run") {
  control("stop", "stop");
  control("resume", "resume", () => { const v = document.getElementById("resume-steps").value; return v ? { steps: Number(v) } : {}; });
  control("evaluate", "evaluate", () => {
    const body = { laps: Number(document.getElementById("eval-laps").value || 1) };
    const track = document.getElementById("eval-track").value.trim();
    if (track) { body.track = track; }
    return body;
  });
  control("export", "export", () => ({ format: document.getElementById("export-format").value }));
  every(1500, refreshCurves);
  every(1000, refreshRun);
  every(4000, refreshEvaluations);
  every(10000, refreshCharts);
}

// ---- the runs page --------------------------------------------------------------------------------
if (page === "index") {
  every(3000, async () => {
    const runs = await api("/api/runs");
    for (const s of runs) {
      const row = document.querySelector('tr[data-run="' + CSS.escape(s.name) + '"]');
      if (!row || s.status === "broken") { continue; }
      row.querySelector(".steps").textContent = s.steps + " / " + s.target_steps;
      row.querySelector(".best-lap").textContent = bestLap(s);
      const status = row.querySelector(".status");
      status.textContent = s.status;
      status.className = "status status-" + s.status;
    }
    const jobs = await api("/api/jobs");
    document.getElementById("jobs").textContent = jobs.length
      ? jobs.map((j) => j.kind + " " + j.run + ": " + j.status + (j.message ? " (" + j.message + ")" : "")).join("\n")
      : "none";
  });
}

// ---- the new-training page ---------------------------------------------------------------------------
if (page === "new") {
  const form = document.getElementById("train-form");
  for (const input of form.querySelectorAll("input[type=file][data-into]")) {  // a file's text into its box
    input.addEventListener("change", async () => {
      if (input.files.length) { form.elements[input.dataset.into].value = await input.files[0].text(); }
    });
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = new FormData(form);
    const body = { name: f.get("name"), track: f.get("track"), race_type: f.get("race_type"), options: {} };
    for (const key of ["reward", "action_space", "world_config"]) { if (f.get(key)) { body[key] = f.get(key); } }
    for (const key of ["algo", "network", "steps", "n_envs", "max_minutes", "image_size", "batch_size", "learning_rate",
      "entropy", "discount", "epochs", "episodes_between_updates", "eval_every", "checkpoint_every"]) {
      if (f.get(key)) { body.options[key] = f.get(key); }
    }
    const error = document.getElementById("form-error");
    error.textContent = "checking...";
    try {
      const job = await post("/api/train", body);
      error.textContent = "starting " + body.name + "...";
      const wait = async () => {  // the run directory appears once train has checked its inputs
        const state = await api("/api/jobs/" + job.id);
        if (state.status === "failed") { error.textContent = state.message || state.output; return; }
        try {
          await api("/api/runs/" + encodeURIComponent(body.name));
          window.location.href = "/runs/" + encodeURIComponent(body.name);
        } catch (e) { setTimeout(wait, 500); }
      };
      wait();
    } catch (e) {
      error.textContent = e.message;
    }
  });
}
