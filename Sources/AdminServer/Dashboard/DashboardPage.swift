// The dashboard: one page, every asset inline (no CDN, nothing fetched but the guard's own
// API). It asks for the admin token (or takes it from the address's #token=…, which never
// reaches a server), keeps it for the browser tab only, and then shows: attempts and failures
// per minute as a chart, the figures and top attackers of the last hour and day, active bans
// with a button to lift each, alerts (weak credentials and compromised accounts stand out),
// and a live feed of AUTH attempts over server-sent events. Data is only ever put into the
// page as text, never as HTML.

enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SMTPGuard</title>
<style>
  :root { --bg:#0f1419; --panel:#182029; --line:#2a3541; --text:#d8dee6; --dim:#8a98a8; --fail:#e5534b; --ok:#57ab5a; --warn:#c69026; --accent:#539bf5; }
  * { box-sizing: border-box; }
  body { margin:0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; align-items:center; gap:16px; padding:10px 18px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; }
  header .dim { color:var(--dim); }
  #conn { margin-left:auto; font-size:12px; padding:2px 8px; border-radius:10px; background:var(--line); }
  #conn.live { background:#1f3d24; color:var(--ok); }
  main { display:grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap:14px; padding:14px 18px; }
  @media (max-width: 960px) { main { grid-template-columns: minmax(0, 1fr); } .figures { grid-template-columns: repeat(3, 1fr); } .tops { grid-template-columns: minmax(0, 1fr); } }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; min-width:0; overflow-x:auto; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size:14px; margin:0 0 8px; color:var(--dim); font-weight:600; text-transform:uppercase; letter-spacing:.04em; }
  .figures { display:grid; grid-template-columns: repeat(6, 1fr); gap:8px; }
  .figure { background:var(--bg); border-radius:6px; padding:8px; }
  .figure .n { font-size:22px; font-weight:700; }
  .figure .l { color:var(--dim); font-size:12px; }
  table { width:100%; border-collapse:collapse; font-size:13px; }
  th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); white-space:nowrap; overflow:hidden; text-overflow:ellipsis; max-width:260px; }
  th { color:var(--dim); font-weight:600; }
  td.num { text-align:right; font-variant-numeric: tabular-nums; }
  tr.failure td.outcome, .fail { color:var(--fail); }
  tr.success td.outcome { color:var(--ok); }
  tr.alert-critical { background:#3b1d1d; }
  tr.alert-warning { background:#33290f; }
  button { background:var(--line); color:var(--text); border:1px solid #3d4b5a; border-radius:5px; padding:2px 10px; cursor:pointer; }
  button:hover { border-color:var(--accent); }
  #chart { width:100%; height:220px; display:block; }
  .legend span { margin-right:14px; font-size:12px; }
  .legend i { display:inline-block; width:10px; height:10px; margin-right:4px; border-radius:2px; vertical-align:middle; }
  #login { max-width:420px; margin:12vh auto; background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:20px; }
  #login input { width:100%; padding:8px; margin:8px 0 12px; background:var(--bg); color:var(--text); border:1px solid var(--line); border-radius:5px; }
  #error { color:var(--fail); min-height:1.4em; }
  .tops { display:grid; grid-template-columns: repeat(3, 1fr); gap:10px; }
  .empty { color:var(--dim); font-style:italic; }
  select { background:var(--bg); color:var(--text); border:1px solid var(--line); border-radius:4px; }
</style>
</head>
<body>
<div id="login" hidden>
  <h1>SMTPGuard</h1>
  <p class="dim">The admin token is in the guard's token file (admin.token_file, by default smtpguard-admin.token beside the state) or admin.token.</p>
  <form id="login-form"><input id="token-input" type="password" autocomplete="off" placeholder="admin token"><button type="submit">Open the dashboard</button></form>
  <div id="error"></div>
</div>
<div id="app" hidden>
<header>
  <h1>SMTPGuard</h1><span class="dim" id="version"></span><span class="dim" id="uptime"></span>
  <span id="conn">connecting…</span>
</header>
<main>
  <section class="wide">
    <h2>AUTH attempts per minute <select id="hours"><option value="1">1 hour</option><option value="3" selected>3 hours</option><option value="6">6 hours</option><option value="24">24 hours</option></select></h2>
    <canvas id="chart"></canvas>
    <div class="legend"><span><i style="background:var(--accent)"></i>attempts</span><span><i style="background:var(--fail)"></i>failures</span><span><i style="background:var(--warn)"></i>refused by the guard</span></div>
  </section>
  <section class="wide">
    <h2>Last hour · last 24 hours</h2>
    <div class="figures" id="figures"></div>
  </section>
  <section>
    <h2>Active bans (<span id="ban-count">0</span>)</h2>
    <table id="bans"><thead><tr><th>scope</th><th>key</th><th>reason</th><th>until</th><th></th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Alerts</h2>
    <table id="alerts"><thead><tr><th>time</th><th>kind</th><th>message</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="wide">
    <h2>Top attackers, last hour (failed logins)</h2>
    <div class="tops">
      <table id="top-ips"><thead><tr><th>address</th><th class="num">failures</th></tr></thead><tbody></tbody></table>
      <table id="top-prefixes"><thead><tr><th>network</th><th class="num">failures</th></tr></thead><tbody></tbody></table>
      <table id="top-usernames"><thead><tr><th>username</th><th class="num">failures</th></tr></thead><tbody></tbody></table>
    </div>
  </section>
  <section class="wide">
    <h2>Live: AUTH attempts, bans and alerts</h2>
    <table id="feed"><thead><tr><th>time</th><th>event</th><th>client</th><th>username</th><th>mechanism</th><th>outcome</th><th>decision</th><th>source</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</div>
<script>
"use strict";
const state = { token: null, lastID: 0, timeline: [], timers: false };
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(cells, cls) {
  const tr = el("tr", null, cls);
  for (const c of cells) {
    if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); }
    else { const td = el("td", c); if (c !== undefined && c !== null) td.title = String(c); tr.appendChild(td); }
  }
  return tr;
}
function fill(tableID, rows, emptyText, columns) {
  const body = document.querySelector("#" + tableID + " tbody");
  body.replaceChildren(...rows);
  if (rows.length === 0) { const tr = el("tr"); const td = el("td", emptyText, "empty"); td.colSpan = columns; tr.appendChild(td); body.appendChild(tr); }
}
function shortTime(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z").slice(5) : ""; }

async function api(path, options) {
  const init = Object.assign({ headers: {} }, options || {});
  init.headers["Authorization"] = "Bearer " + state.token;
  const response = await fetch(path, init);
  if (response.status === 401) { logout("The token was refused."); throw new Error("unauthorized"); }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function logout(message) {
  sessionStorage.removeItem("smtpguard-token");
  state.token = null;
  $("app").hidden = true; $("login").hidden = false; $("error").textContent = message || "";
}

async function refreshStatus() {
  const s = await api("/api/status");
  $("version").textContent = "v" + s.version;
  const h = Math.floor(s.uptime_s / 3600), m = Math.floor(s.uptime_s / 60) % 60;
  $("uptime").textContent = "up " + h + "h " + m + "m";
}

async function refreshStats() {
  const hours = Number($("hours").value);
  const stats = await api("/api/stats?period=1h,24h&top=10&timeline=" + hours * 60);
  state.timeline = stats.timeline || [];
  drawChart();
  const [hour, day] = stats.periods;
  const figures = [
    ["attempts", hour.attempts, day.attempts], ["failures", hour.failures, day.failures], ["refused", hour.refused, day.refused],
    ["successes", hour.successes, day.successes], ["bans issued", hour.bans, day.bans], ["alerts", hour.alerts, day.alerts],
  ];
  $("figures").replaceChildren(...figures.map(([label, h, d]) => {
    const box = el("div", null, "figure");
    const n = el("div", h, "n"); n.id = "fig-1h-" + label.replace(" ", "-"); box.appendChild(n);
    const l = el("div", label + " · 24h: ", "l"); const dd = el("span", d); dd.id = "fig-24h-" + label.replace(" ", "-"); l.appendChild(dd); box.appendChild(l);
    return box;
  }));
  const top = (list) => list.map((t) => { const r = row([t.key, t.failures]); r.dataset.key = t.key; r.lastChild.className = "num"; return r; });
  fill("top-ips", top(hour.top_ips), "none", 2);
  fill("top-prefixes", top(hour.top_prefixes), "none", 2);
  fill("top-usernames", top(hour.top_usernames), "none", 2);
}

async function refreshBans() {
  const list = await api("/api/bans?limit=500");
  $("ban-count").textContent = list.total;
  fill("bans", list.bans.map((b) => {
    const button = el("button", "Lift", "lift");
    button.dataset.scope = b.scope; button.dataset.key = b.key;
    button.addEventListener("click", () => lift(b.scope, b.key, button));
    const r = row([b.scope, b.key, b.reason, shortTime(b.until), button]);
    r.dataset.scope = b.scope; r.dataset.key = b.key;
    return r;
  }), "no active bans", 5);
}

async function lift(scope, key, button) {
  button.disabled = true; button.textContent = "lifting…";
  try {
    await api("/api/bans/" + encodeURIComponent(scope) + "/" + encodeURIComponent(key), { method: "DELETE" });
  } catch (e) { button.textContent = "failed: " + e.message; return; }
  await refreshBans();
}

async function refreshAlerts() {
  const list = await api("/api/alerts?limit=50");
  fill("alerts", list.alerts.map((a) => row([shortTime(a.time), a.kind, a.message], "alert-" + a.severity)), "no alerts", 3);
}

function addFeed(event) {
  const body = document.querySelector("#feed tbody");
  let cells, cls = "";
  if (event.event === "auth") {
    cells = [shortTime(event.time), "auth", event.client_ip, event.username, event.mechanism, event.outcome, event.decision, event.source];
    cls = event.outcome;
  } else if (event.event === "ban" || event.event === "unban") {
    cells = [shortTime(event.time), event.event, event.scope === "username" ? "" : event.key, event.scope === "username" ? event.key : "", "", event.reason, event.event === "ban" ? "until " + shortTime(event.until) : event.why, ""];
  } else if (event.event === "alert") {
    cells = [shortTime(event.time), "alert", event.client_ip || "", event.username, "", event.kind, event.message, ""];
    cls = "alert-" + event.severity;
  } else return;
  const r = row(cells, cls);
  r.dataset.id = event.id;
  body.insertBefore(r, body.firstChild);
  while (body.children.length > 200) body.removeChild(body.lastChild);
}

async function follow() {
  // fetch and not EventSource: EventSource cannot send the Authorization header.
  for (;;) {
    if (!state.token) return;
    try {
      const response = await fetch("/api/events?follow=1&kind=auth,ban,unban,alert&after=" + state.lastID, { headers: { "Authorization": "Bearer " + state.token } });
      if (response.status === 401) { logout("The token was refused."); return; }
      $("conn").textContent = "live"; $("conn").className = "live";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (!data) continue;
          const event = JSON.parse(data);
          state.lastID = Math.max(state.lastID, event.id);
          addFeed(event);
          if (event.event === "ban" || event.event === "unban") scheduleRefresh(refreshBans);
          if (event.event === "alert") scheduleRefresh(refreshAlerts);
        }
      }
    } catch (e) { /* reconnect below */ }
    $("conn").textContent = "reconnecting…"; $("conn").className = "";
    await new Promise((r) => setTimeout(r, 2000));
  }
}

const pending = new Set();
function scheduleRefresh(fn) {
  if (pending.has(fn)) return;
  pending.add(fn);
  setTimeout(() => { pending.delete(fn); fn().catch(() => {}); }, 300);
}

function drawChart() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const points = state.timeline;
  if (points.length === 0) return;
  const max = Math.max(5, ...points.map((p) => p.attempts));
  const left = 40, bottom = height - 20, top = 10, plotWidth = width - left - 10;
  g.strokeStyle = "#2a3541"; g.fillStyle = "#8a98a8"; g.font = "11px system-ui"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = bottom - (bottom - top) * i / 4;
    g.beginPath(); g.moveTo(left, y); g.lineTo(width - 10, y); g.stroke();
    g.fillText(String(Math.round(max * i / 4)), 4, y + 4);
  }
  const step = points.length > 1 ? plotWidth / (points.length - 1) : plotWidth;
  const labelEvery = Math.max(1, Math.round(points.length / 6));
  points.forEach((p, i) => { if (i % labelEvery === 0) g.fillText(p.minute.slice(11, 16), left + i * step - 14, height - 4); });
  const line = (key, color) => {
    g.strokeStyle = color; g.lineWidth = 1.6; g.beginPath();
    points.forEach((p, i) => { const x = left + i * step, y = bottom - (bottom - top) * p[key] / max; if (i === 0) g.moveTo(x, y); else g.lineTo(x, y); });
    g.stroke();
  };
  line("attempts", "#539bf5"); line("failures", "#e5534b"); line("refused", "#c69026");
}

async function start() {
  $("login").hidden = true; $("app").hidden = false;
  try {
    await Promise.all([refreshStatus(), refreshStats(), refreshBans(), refreshAlerts()]);
  } catch (e) { if (state.token) $("conn").textContent = "error: " + e.message; return; }
  document.body.dataset.ready = "1";
  follow();
  if (state.timers) return;  // a second login in the same page keeps the first timers
  state.timers = true;
  setInterval(() => { if (state.token) { refreshStats().catch(() => {}); refreshStatus().catch(() => {}); } }, 10000);
  setInterval(() => { if (state.token) refreshBans().catch(() => {}); }, 30000);
}

$("hours").addEventListener("change", () => refreshStats().catch(() => {}));
window.addEventListener("resize", drawChart);
$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.token = $("token-input").value.trim();
  sessionStorage.setItem("smtpguard-token", state.token);
  start();
});
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) { sessionStorage.setItem("smtpguard-token", fromHash); history.replaceState(null, "", location.pathname); }
state.token = sessionStorage.getItem("smtpguard-token");
if (state.token) start(); else logout("");
</script>
</body>
</html>
"""#
}
