// cescale's built-in dashboard: plain JavaScript over the public API, Chart.js for charts.
// The API key lives in sessionStorage only (this tab, until it closes or you sign out).
"use strict";

const KEY = "cescale.apiKey";
const view = document.getElementById("view");
const charts = [];

// -- API ------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}` },
  });
  const body = await response.json().catch(() => null);
  if (response.status === 401) {
    signOut("Your API key was refused; sign in again.");
    throw new ApiError(401, body);
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// -- helpers --------------------------------------------------------------------------------
function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}
const usd = (v) => (v === null || v === undefined ? "—" : `$${Number(v).toPrecision(4)}`);
const num = (v, digits = 1) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));
const when = (v) => (v ? new Date(v).toISOString().replace("T", " ").slice(0, 19) : "—");
const status = (s) => `<span class="status ${esc(s)}">${esc(s)}</span>`;
const COLORS = ["#2f6fde", "#e4572e", "#17a398", "#f3a712", "#8e44ad", "#5d6d7e", "#c0392b"];

let following = null; // the AbortController of a job page's event stream

function resetCharts() {
  while (charts.length) charts.pop().destroy();
  if (following) following.abort();
  following = null;
}

// Follow a running job: read GET /v1/jobs/{id}/events with fetch (EventSource cannot send the
// Authorization header) and redraw the page when something happens after the replay.
async function follow(id, onChange) {
  const controller = new AbortController();
  following = controller;
  let replayed = false;
  let pending = null;
  try {
    const response = await fetch(`/v1/jobs/${id}/events`, {
      headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}` },
      signal: controller.signal,
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const type = (block.match(/^event: (.*)$/m) || [])[1];
        if (!type) continue;
        if (!replayed) {
          if (type === "cost.updated") replayed = true; // the connect snapshot ends the replay
          continue;
        }
        clearTimeout(pending);
        pending = setTimeout(onChange, 300);
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") console.warn("event stream closed", error);
  }
}

function chart(id, type, labels, datasets, options = {}) {
  const canvas = document.getElementById(id);
  const made = new Chart(canvas, {
    type,
    data: {
      labels,
      datasets: datasets.map((d, i) => ({
        borderColor: COLORS[i % COLORS.length],
        backgroundColor: COLORS[i % COLORS.length] + (type === "bar" ? "cc" : "33"),
        spanGaps: true,
        ...d,
      })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      ...options,
    },
  });
  canvas.dataset.rendered = "true";
  charts.push(made);
  return made;
}

function card(id, title, note = "") {
  return `<div class="card"><h2>${esc(title)}</h2>${note ? `<p class="muted">${esc(note)}</p>` : ""}
    <canvas id="${id}"></canvas></div>`;
}

// -- sign in --------------------------------------------------------------------------------
function signOut(message) {
  sessionStorage.removeItem(KEY);
  resetCharts();
  view.innerHTML = "";
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-in").hidden = false;
  const error = document.getElementById("sign-in-error");
  error.hidden = !message;
  error.textContent = message || "";
}

document.getElementById("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, document.getElementById("api-key").value.trim());
  try {
    await api("/v1/jobs", { limit: 1 });
  } catch (error) {
    if (error.status !== 401) signOut(error.message);
    return;
  }
  document.getElementById("api-key").value = "";
  route();
});
document.getElementById("sign-out").addEventListener("click", () => signOut());

// -- pages ----------------------------------------------------------------------------------
async function jobsPage() {
  view.innerHTML = `<h1>Jobs</h1><table id="jobs"><thead><tr><th>name</th><th>kind</th>
    <th>policy</th><th>status</th><th>created</th><th>finished</th><th>deadline</th></tr></thead>
    <tbody></tbody></table><p><button id="more" hidden>More</button></p>`;
  const body = view.querySelector("#jobs tbody");
  const more = view.querySelector("#more");
  let cursor = null;
  async function load() {
    const page = await api("/v1/jobs", { cursor, limit: 50 });
    for (const job of page.items) {
      const row = document.createElement("tr");
      row.innerHTML = `<td><a href="#/jobs/${esc(job.id)}">${esc(job.name)}</a></td>
        <td>${esc(job.kind)}</td><td>${esc(job.policy)}</td><td>${status(job.status)}</td>
        <td>${when(job.created_at)}</td><td>${when(job.finished_at)}</td>
        <td>${job.deadline_missed === null ? "—" : job.deadline_missed ? "missed" : "met"}</td>`;
      body.appendChild(row);
    }
    cursor = page.next_cursor;
    more.hidden = !cursor;
    if (!body.children.length) body.innerHTML = `<tr><td colspan="7" class="muted">No jobs yet.</td></tr>`;
  }
  more.addEventListener("click", load);
  await load();
}

async function jobPage(id) {
  const [job, cost, series, timeline] = await Promise.all([
    api(`/v1/jobs/${id}`),
    api(`/v1/jobs/${id}/cost`),
    api(`/v1/jobs/${id}/series`),
    api(`/v1/jobs/${id}/timeline`),
  ]);
  const forecast = series.forecasts[0];
  const live = ["pending", "running"].includes(job.status);
  view.innerHTML = `<h1>${esc(job.name)} ${status(job.status)}${
    live ? ' <span class="live" id="live">● live</span>' : ""}</h1>
    <div class="card stats" id="job-stats">
      <div class="stat"><b id="stat-cost">${usd(cost.total_usd)}</b><span>cost</span></div>
      <div class="stat"><b>${num(cost.gb_seconds, 2)}</b><span>GB-s</span></div>
      <div class="stat"><b id="stat-invocations">${cost.invocations}</b><span>invocations</span></div>
      <div class="stat"><b>${esc(job.policy)}</b><span>policy</span></div>
      <div class="stat"><b>${num(job.deadline_s, 0)} s</b><span>deadline${
        job.deadline_missed === null ? "" : job.deadline_missed ? " (missed)" : " (met)"}</span></div>
      <div class="stat"><b>${when(job.started_at)}</b><span>started</span></div>
      ${job.status_reason ? `<div class="stat"><b>${esc(job.status_reason)}</b><span>reason</span></div>` : ""}
    </div>
    <div class="grid">
      ${card("chart-cost", "Cost by stage", "compute and request charges, from the ledger")}
      ${card("chart-memory", "Memory per stage", "MB each shape ran at")}
      ${card("chart-duration", "Duration per round",
        forecast ? `next round forecast: ${num(forecast.mean_ms, 0)} ms ` +
          `(${Math.round(forecast.level * 100)} %: ${num(forecast.lower_ms, 0)}–${num(forecast.upper_ms, 0)} ms)` : "")}
      ${card("chart-cumulative", "Cumulative cost")}
      ${card("chart-loss", "Loss per round")}
    </div>
    <div class="card"><h2>Timeline</h2><table id="timeline"><thead><tr><th>at</th><th>event</th>
      <th>stage</th><th>detail</th></tr></thead><tbody></tbody></table></div>`;

  chart("chart-cost", "bar", cost.stages.map((s) => s.name), [
    { label: "compute $", data: cost.stages.map((s) => s.compute_usd), stack: "usd" },
    { label: "requests $", data: cost.stages.map((s) => s.requests_usd), stack: "usd" },
  ], { scales: { x: { stacked: true }, y: { stacked: true } } });

  const stages = series.rounds.map((r) => r.stage);
  const shapes = [...new Set(series.memory.map((m) => m.shape))];
  chart("chart-memory", "line", stages, shapes.map((shape) => ({
    label: shape,
    stepped: true,
    data: stages.map((stage) => {
      const sizes = series.memory.filter((m) => m.stage === stage && m.shape === shape);
      return sizes.length ? Math.max(...sizes.map((m) => m.memory_mb)) : null;
    }),
  })));

  const durationLabels = [...stages];
  const withForecast = (values, last) => (forecast ? [...values, last] : values);
  if (forecast) durationLabels.push("next");
  chart("chart-duration", "line", durationLabels, [
    { label: "actual (slowest run) ms", data: withForecast(series.rounds.map((r) => r.slowest_invocation_ms), null) },
    { label: "predicted ms", data: withForecast(series.rounds.map((r) => r.predicted_ms), forecast && forecast.mean_ms), borderDash: [5, 4] },
    ...(forecast ? [
      { label: "forecast upper", data: [...stages.map(() => null), forecast.upper_ms], pointStyle: "triangle" },
      { label: "forecast lower", data: [...stages.map(() => null), forecast.lower_ms], pointStyle: "triangle", rotation: 180 },
    ] : []),
  ]);

  chart("chart-cumulative", "line", series.cost.map((p) => when(p.at).slice(11)), [
    { label: "cumulative $", data: series.cost.map((p) => p.cumulative_usd), fill: true },
  ]);

  chart("chart-loss", "line", stages, [
    { label: "loss", data: series.rounds.map((r) => r.loss) },
    { label: "fitted", data: series.rounds.map((r) => r.predicted_loss), borderDash: [5, 4] },
  ]);

  const body = view.querySelector("#timeline tbody");
  for (const event of timeline.events) {
    const d = event.detail || {};
    let detail = "";
    if (event.type.startsWith("allocation.")) {
      detail = `${esc(d.function)}: ${d.from_mb ?? "—"} → ${d.to_mb} MB (${esc(d.rule || "")}) — ${esc(d.reason)}`;
    } else if (d.reason) {
      detail = esc(d.reason);
    } else if (d.planned_memory_mb) {
      detail = `planned ${d.planned_memory_mb} MB`;
    } else if (d.status) {
      detail = esc(d.status);
    }
    const row = document.createElement("tr");
    row.className = `event ${event.type.replace(/\./g, "-")}`;
    row.innerHTML = `<td>${when(event.at)}</td><td>${esc(event.type)}</td><td>${esc(event.stage || "")}</td><td>${detail}</td>`;
    body.appendChild(row);
  }
  if (live) {
    follow(id, () => {
      if (location.hash === `#/jobs/${id}`) route();
    });
  }
}

const USAGE_METRICS = ["cost_usd", "gb_seconds", "invocations", "active_jobs", "jobs_finished",
  "deadline_attainment", "saving_usd"];

function usageChart(id, usage, metric, type) {
  const labels = [...new Set(usage.points.map((p) => p.at))].sort();
  const groups = [...new Set(usage.points.map((p) => p.group))];
  return chart(id, type === "bar" ? "bar" : "line", labels.map((at) => when(at).slice(0, 16)),
    groups.map((group) => ({
      label: group,
      data: labels.map((at) => {
        const point = usage.points.find((p) => p.at === at && p.group === group);
        return point ? point[metric] : null;
      }),
      stack: type === "bar" ? "groups" : undefined,
    })),
    type === "bar" ? { scales: { x: { stacked: true }, y: { stacked: true } } } : {});
}

async function usagePage() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const metric = params.get("metric") || "cost_usd";
  view.innerHTML = `<h1>Usage</h1>
    <form class="inline" id="usage-form">
      <label>from <input name="from" type="datetime-local"></label>
      <label>to <input name="to" type="datetime-local"></label>
      <label>step <input name="step" placeholder="1h, 1d…" size="6"></label>
      <label>group by <select name="group_by"><option value="">—</option>
        ${["policy", "workload", "status", "architecture", "kind"].map((g) => `<option>${g}</option>`).join("")}</select></label>
      <label>metric <select name="metric">${USAGE_METRICS.map((m) => `<option>${m}</option>`).join("")}</select></label>
      <button>Show</button></form>
    <div class="card"><h2 id="usage-title"></h2><canvas id="chart-usage"></canvas></div>
    <div class="card"><h2>Totals</h2><p class="muted" id="static-size"></p><table id="usage-totals"></table></div>`;
  const form = view.querySelector("#usage-form");
  for (const name of ["step", "group_by", "metric"]) form.elements[name].value = params.get(name) || "";
  form.elements.metric.value = metric;
  const toLocal = (v) => (v ? v.slice(0, 16) : "");
  form.elements.from.value = toLocal(params.get("from"));
  form.elements.to.value = toLocal(params.get("to"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ["step", "group_by", "metric"]) if (form.elements[name].value) next.set(name, form.elements[name].value);
    for (const name of ["from", "to"]) if (form.elements[name].value) next.set(name, `${form.elements[name].value}:00Z`);
    location.hash = `#/usage?${next}`;
  });
  const query = Object.fromEntries(["from", "to", "step", "group_by"].map((n) => [n, params.get(n)]));
  const usage = await api("/v1/usage", query);
  view.querySelector("#usage-title").textContent = `${metric} per ${usage.step_s} s`;
  usageChart("chart-usage", usage, metric, "bar");
  view.querySelector("#static-size").textContent = `Static size: ${usage.static_size}`;
  view.querySelector("#usage-totals").innerHTML = `<tr><th>group</th><th class="num">cost</th>
    <th class="num">GB-s</th><th class="num">invocations</th><th class="num">jobs ended</th>
    <th class="num">deadline attainment</th><th class="num">saving</th></tr>` +
    usage.totals.map((t) => `<tr><td>${esc(t.group)}</td><td class="num">${usd(t.cost_usd)}</td>
      <td class="num">${num(t.gb_seconds, 2)}</td><td class="num">${t.invocations}</td>
      <td class="num">${t.jobs_finished}</td>
      <td class="num">${t.deadline_attainment === null ? "—" : `${num(t.deadline_attainment * 100, 0)} %`}</td>
      <td class="num">${usd(t.saving_usd)}</td></tr>`).join("");
}

async function dashboardsPage() {
  const page = await api("/v1/dashboards", { limit: 200 });
  view.innerHTML = `<h1>Dashboards</h1>
    <p class="muted">Create and edit them through the API (<code>POST /v1/dashboards</code>).</p>
    <table><thead><tr><th>name</th><th>panels</th><th>updated</th></tr></thead><tbody>${
      page.items.map((d) => `<tr><td><a href="#/dashboards/${esc(d.id)}">${esc(d.name)}</a></td>
        <td>${d.panels.length}</td><td>${when(d.updated_at)}</td></tr>`).join("") ||
      `<tr><td colspan="3" class="muted">No dashboards yet.</td></tr>`}</tbody></table>`;
}

function panelTable(rows, columns) {
  return `<table><thead><tr>${columns.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>${
    rows.map((row) => `<tr>${columns.map((c) => `<td>${esc(typeof row[c] === "object" && row[c] !== null ? JSON.stringify(row[c]) : row[c])}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

function seriesChart(id, data, which, type) {
  const stages = data.rounds.map((r) => r.stage);
  const kind = type === "bar" ? "bar" : "line";
  if (which === "memory") {
    return chart(id, kind, data.memory.map((m) => `${m.stage} ${m.shape}`), [{ label: "MB", data: data.memory.map((m) => m.memory_mb) }]);
  }
  if (which === "duration") {
    return chart(id, kind, stages, [
      { label: "actual ms", data: data.rounds.map((r) => r.slowest_invocation_ms) },
      { label: "predicted ms", data: data.rounds.map((r) => r.predicted_ms) },
    ]);
  }
  if (which === "loss") return chart(id, kind, stages, [{ label: "loss", data: data.rounds.map((r) => r.loss) }]);
  return chart(id, kind, data.cost.map((p) => when(p.at).slice(11)), [{ label: "cumulative $", data: data.cost.map((p) => p.cumulative_usd) }]);
}

async function dashboardPage(id) {
  const data = await api(`/v1/dashboards/${id}/data`);
  const meta = await api(`/v1/dashboards/${id}`);
  view.innerHTML = `<h1>${esc(meta.name)}</h1>${meta.description ? `<p class="muted">${esc(meta.description)}</p>` : ""}
    <div class="grid" id="panels"></div>`;
  const grid = view.querySelector("#panels");
  for (const panel of data.panels) {
    const element = document.createElement("div");
    element.className = "card panel";
    element.dataset.kind = panel.query.kind;
    const canvasId = `panel-${panel.index}`;
    element.innerHTML = `<h2>${esc(panel.title)}</h2>`;
    grid.appendChild(element);
    if (panel.error) {
      element.innerHTML += `<p class="error">${esc(panel.error.detail)}</p>`;
      continue;
    }
    const q = panel.query;
    if (panel.chart === "table") {
      const rows = q.kind === "usage" ? panel.data.points : panel.data.items || panel.data.rounds;
      const columns = q.kind === "usage" ? ["at", "group", q.metric] :
        q.kind === "invocations" ? ["stage", "task", "attempt", "memory_mb", "duration_ms", "outcome", "cost_usd"] :
        q.kind === "functions" ? ["function", "current_memory_mb", "aliases"] :
        ["stage", "memory_mb", "actual_s", "slowest_invocation_ms", "loss"];
      element.innerHTML += panelTable(rows, columns);
    } else if (panel.chart === "stat") {
      let value;
      if (q.kind === "usage") value = panel.data.totals.reduce((sum, t) => sum + (t[q.metric] || 0), 0);
      else if (q.kind === "series") value = panel.data.cost.length ? panel.data.cost[panel.data.cost.length - 1].cumulative_usd : 0;
      else value = (panel.data.items || []).length;
      element.innerHTML += `<div class="stat"><b class="stat-value">${esc(Number(value).toPrecision(4))}</b><span>${esc(q.metric || q.series || q.kind)}</span></div>`;
    } else {
      element.innerHTML += `<canvas id="${canvasId}"></canvas>`;
      if (q.kind === "usage") usageChart(canvasId, panel.data, q.metric, panel.chart);
      else if (q.kind === "series") seriesChart(canvasId, panel.data, q.series, panel.chart);
      else element.innerHTML += `<p class="muted">${esc(q.kind)} panels render as tables.</p>`;
    }
  }
}

// -- routing --------------------------------------------------------------------------------
async function route() {
  if (!sessionStorage.getItem(KEY)) {
    signOut();
    return;
  }
  document.getElementById("sign-in").hidden = true;
  document.getElementById("nav").hidden = false;
  resetCharts();
  view.innerHTML = `<p class="muted">Loading…</p>`;
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/jobs";
  const parts = path.split("/").filter(Boolean);
  try {
    if (parts[0] === "jobs" && parts[1]) await jobPage(parts[1]);
    else if (parts[0] === "usage") await usagePage();
    else if (parts[0] === "dashboards" && parts[1]) await dashboardPage(parts[1]);
    else if (parts[0] === "dashboards") await dashboardsPage();
    else await jobsPage();
    document.body.dataset.page = parts[0] || "jobs";
  } catch (error) {
    if (error.status !== 401) view.innerHTML = `<p class="error">${esc(error.message)}</p>`;
  }
}

window.addEventListener("hashchange", route);
route();
