// The gateway console: one page over the gateway's own REST API (README, "The console").
// No framework and no build step: the DOM is built with createElement and textContent only
// (never by parsing strings as markup: device ids and reasons come from the network), the
// token lives in this tab's sessionStorage and travels in the Authorization header, and the
// page polls.
"use strict";

const TOKEN_KEY = "tg-console-token";
const POLL_MS = 3000;
const CHART_MS = 30000;
const SVG = "http://www.w3.org/2000/svg";

const state = {
  role: null, // "viewer" | "operator", from whether /v1/config answers
  view: "health",
  timer: null,
  charts: new Map(), // key -> {at, points}
  search: "",
  campaign: null,
  pendingCancel: null,
  generation: 0,
};

// ---- small helpers ------------------------------------------------------------------------

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attributes, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

/** "3 s", "4 min", "2 h", "5 d" ago, from a Unix ms time. */
function ago(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return "never";
  return duration(Math.max(0, (now - ms) / 1000)) + " ago";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 90) return Math.round(seconds) + " s";
  if (seconds < 90 * 60) return Math.round(seconds / 60) + " min";
  if (seconds < 48 * 3600) return Math.round(seconds / 3600) + " h";
  return Math.round(seconds / 86400) + " d";
}

function hours(value) {
  if (value === null || value === undefined) return "not at current rates";
  return value < 48 ? value.toFixed(1) + " h" : (value / 24).toFixed(0) + " days";
}

function bytes(value) {
  if (value < 1024) return value + " B";
  if (value < 1048576) return (value / 1024).toFixed(1) + " KiB";
  if (value < 1073741824) return (value / 1048576).toFixed(1) + " MiB";
  return (value / 1073741824).toFixed(2) + " GiB";
}

/** What a gauge's forecast says, in words, given its level state now. */
function forecastText(forecast, state) {
  if (state === "alarm") return "in alarm" + (forecast && forecast.status === "rising" ? ", still rising" : "");
  if (!forecast) return "no forecast";
  if (forecast.minutes_to_alarm !== null && forecast.minutes_to_alarm !== undefined)
    return "alarm in ~" + Math.max(1, Math.round(forecast.minutes_to_alarm)) + " min";
  if (forecast.minutes_to_warning !== null && forecast.minutes_to_warning !== undefined)
    return "warning in ~" + Math.max(1, Math.round(forecast.minutes_to_warning)) + " min";
  switch (forecast.status) {
    case "rising": return "rising";
    case "falling": return "falling";
    case "steady": return "steady";
    default: return "not enough data";
  }
}

// ---- the API ------------------------------------------------------------------------------

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(path, {
    method: options.method || "GET",
    headers: { Authorization: "Bearer " + token, Accept: "application/json" },
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  if (response.status === 401) throw new Unauthorized("token refused");
  if (options.allow && options.allow.includes(response.status)) return { status: response.status, body: null };
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.status + " " + response.statusText;
    throw new Error(path.split("?")[0] + ": " + message);
  }
  return options.allow ? { status: response.status, body } : body;
}

async function allDevices(kind) {
  const devices = [];
  let cursor = null;
  for (let page = 0; page < 20; page++) {
    const query = new URLSearchParams({ limit: "1000" });
    if (kind) query.set("kind", kind);
    if (cursor) query.set("cursor", cursor);
    const body = await api("/v1/devices?" + query);
    devices.push(...body.devices);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return devices;
}

/** A series, cached for CHART_MS: charts change slowly, the numbers beside them do not. */
async function series(device, signal, kind) {
  const key = device + "|" + signal;
  const cached = state.charts.get(key);
  if (cached && Date.now() - cached.at < CHART_MS) return cached.points;
  const query = new URLSearchParams({ device, signal, from: "now-6h", step: "5m" });
  if (kind) query.set("kind", kind);
  const points = await api("/v1/series?" + query);
  state.charts.set(key, { at: Date.now(), points });
  return points;
}

// ---- charts and the map (SVG) -----------------------------------------------------------

/** A line chart of bucket means over the last hours, with optional threshold lines. */
function chart(points, options = {}) {
  const width = 320, height = 130, left = 40, right = 6, top = 8, bottom = 18;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
    "aria-label": options.label || "chart" });
  const values = points.map((p) => p.mean);
  const lines = [options.warning, options.alarm].filter((v) => typeof v === "number");
  if (values.length === 0) {
    root.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", text: "no data in the last 6 h" }));
    return root;
  }
  let low = Math.min(...values, ...points.map((p) => p.min), ...lines);
  let high = Math.max(...values, ...points.map((p) => p.max), ...lines);
  if (high === low) { high += 1; low -= 1; }
  const pad = (high - low) * 0.05;
  low -= pad; high += pad;
  const t0 = Date.now() - 6 * 3600 * 1000, t1 = Date.now();
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const y = (v) => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
  root.append(svg("line", { x1: left, y1: top, x2: left, y2: height - bottom, class: "chart-axis" }));
  root.append(svg("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, class: "chart-axis" }));
  for (const v of [low + pad, high - pad]) {
    root.append(svg("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", text: v.toFixed(v < 10 ? 1 : 0) }));
  }
  root.append(svg("text", { x: left, y: height - 4, text: "−6 h" }));
  root.append(svg("text", { x: width - right, y: height - 4, "text-anchor": "end", text: "now" }));
  const band = points.map((p) => `${x(p.time).toFixed(1)},${y(p.max).toFixed(1)}`)
    .concat(points.slice().reverse().map((p) => `${x(p.time).toFixed(1)},${y(p.min).toFixed(1)}`));
  root.append(svg("polygon", { points: band.join(" "), class: "chart-band" }));
  root.append(svg("polyline", {
    points: points.map((p) => `${x(p.time).toFixed(1)},${y(p.mean).toFixed(1)}`).join(" "),
    class: "chart-line",
  }));
  // Each bucket's mean as a dot too: a series of one bucket has no line to draw.
  if (points.length <= 24)
    for (const p of points) root.append(svg("circle", { cx: x(p.time).toFixed(1), cy: y(p.mean).toFixed(1), r: 2.5, class: "chart-point" }));
  if (typeof options.warning === "number")
    root.append(svg("line", { x1: left, x2: width - right, y1: y(options.warning), y2: y(options.warning),
      class: "chart-warning", "data-threshold": "warning" }));
  if (typeof options.alarm === "number")
    root.append(svg("line", { x1: left, x2: width - right, y1: y(options.alarm), y2: y(options.alarm),
      class: "chart-alarm", "data-threshold": "alarm" }));
  return root;
}

const METRES_PER_DEGREE = 111320;

/** Gauges with their circles and vehicles, projected equirectangularly around their centre. */
function mapSVG(collection) {
  const width = 800, height = 560, margin = 30;
  const features = collection.features || [];
  const gauges = features.filter((f) => f.properties.kind === "gauge");
  const vehicles = features.filter((f) => f.properties.kind === "vehicle");
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "map", role: "img",
    "aria-label": "map of gauges and vehicles" });
  if (features.length === 0) {
    root.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle",
      text: "no gauge site set (gwctl sensor set) and no vehicle position to show" }));
    return { root, advised: [] };
  }
  const lat0 = features.reduce((s, f) => s + f.geometry.coordinates[1], 0) / features.length;
  const cos = Math.cos((lat0 * Math.PI) / 180);
  // Metres east and north of the centre.
  const project = ([lon, lat]) => [lon * cos * METRES_PER_DEGREE, lat * METRES_PER_DEGREE];
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (const f of features) {
    const [px, py] = project(f.geometry.coordinates);
    const r = f.properties.kind === "gauge" ? f.properties.radius_m : 50;
    minX = Math.min(minX, px - r); maxX = Math.max(maxX, px + r);
    minY = Math.min(minY, py - r); maxY = Math.max(maxY, py + r);
  }
  const scale = Math.min((width - 2 * margin) / Math.max(maxX - minX, 1), (height - 2 * margin) / Math.max(maxY - minY, 1));
  const sx = (px) => margin + (px - minX) * scale + ((width - 2 * margin) - (maxX - minX) * scale) / 2;
  const sy = (py) => height - margin - (py - minY) * scale - ((height - 2 * margin) - (maxY - minY) * scale) / 2;
  const advised = [];
  for (const g of gauges) {
    const [px, py] = project(g.geometry.coordinates);
    const st = g.properties.state || "normal";
    root.append(svg("circle", { cx: sx(px).toFixed(1), cy: sy(py).toFixed(1),
      r: Math.max(2, g.properties.radius_m * scale).toFixed(1), class: "circle-" + st }));
  }
  for (const v of vehicles) {
    const [px, py] = project(v.geometry.coordinates);
    const inside = gauges.filter((g) => {
      const st = g.properties.state;
      if (st !== "warning" && st !== "alarm") return false;
      const [gx, gy] = project(g.geometry.coordinates);
      return Math.hypot(px - gx, py - gy) <= g.properties.radius_m;
    });
    if (inside.length > 0) advised.push({ vehicle: v.properties.device, gauges: inside.map((g) => g.properties.device) });
    const cx = sx(px), cy = sy(py);
    const heading = typeof v.properties.heading_deg === "number" ? v.properties.heading_deg : 0;
    root.append(svg("polygon", {
      points: `${cx},${cy - 9} ${cx + 6},${cy + 7} ${cx},${cy + 3} ${cx - 6},${cy + 7}`,
      transform: `rotate(${heading} ${cx} ${cy})`,
      class: "vehicle" + (inside.length > 0 ? " advised" : ""),
      "data-device": v.properties.device, "data-x": cx.toFixed(1), "data-y": cy.toFixed(1),
    }, svg("title", { text: `${v.properties.device}, ${v.properties.age_s} s ago` })));
  }
  for (const g of gauges) {
    const [px, py] = project(g.geometry.coordinates);
    const cx = sx(px), cy = sy(py);
    const st = g.properties.state || "normal";
    root.append(svg("circle", { cx: cx.toFixed(1), cy: cy.toFixed(1), r: 7, class: "gauge " + st,
      "data-device": g.properties.device, "data-x": cx.toFixed(1), "data-y": cy.toFixed(1) },
    svg("title", { text: `${g.properties.device}: ${st}` })));
    root.append(svg("text", { x: cx + 10, y: cy - 8, text: g.properties.device }));
  }
  // A 100 m / 1 km scale bar.
  const barMetres = (maxX - minX) > 4000 ? 1000 : 100;
  root.append(svg("line", { x1: margin, y1: height - 12, x2: margin + barMetres * scale, y2: height - 12, class: "chart-axis" }));
  root.append(svg("text", { x: margin, y: height - 16, text: barMetres === 1000 ? "1 km" : "100 m" }));
  return { root, advised };
}

// ---- views --------------------------------------------------------------------------------

function card(title, status, rows) {
  return el("div", { class: "card" + (status ? " state-" + status : "") },
    el("h3", {}, el("span", { text: title }), status ? el("span", { class: "pill " + status, text: status }) : null),
    el("dl", {}, rows.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", {}, value)])));
}

function renderHealth(health) {
  const up = health.upstream || {};
  const store = health.store || {};
  const room = health.headroom || {};
  const certs = health.certificates || {};
  const privacy = health.privacy || {};
  const cards = [
    card("Device broker", health.broker.connected ? "ok" : "down", [
      ["link", health.broker.connected ? "connected" : "disconnected: gatewayd keeps retrying"],
    ]),
    card("City link", !up.configured ? null : up.connected ? "ok" : "degraded", up.configured ? [
      ["link", up.connected ? "connected" : "down: messages wait in the outbox"],
      ["node", up.node || "—"],
      ["failovers", String(up.failovers)],
      ["backlog", `${up.backlog_messages} messages, ${bytes(up.backlog_bytes)} of ${bytes(up.limit_bytes)}`],
      ["oldest unsent", up.oldest_unsent_age_s === null ? "nothing waiting" : duration(up.oldest_unsent_age_s)],
    ] : [["link", "not configured"]]),
    card("Store", store.full ? "alarm" : store.fill_ratio > 0.9 ? "warning" : "ok", [
      ["fill", el("span", {}, el("meter", { min: 0, max: 1, value: store.fill_ratio }),
        ` ${(store.fill_ratio * 100).toFixed(1)} % of ${store.capacity_readings.toLocaleString()} readings`)],
      ["file", bytes(store.file_bytes)],
      ["devices", String(store.devices)],
      ["ring full in", hours(room.ring_full_hours)],
      ["keeps raw readings", hours(room.raw_retention_hours)],
      ["outbox full in", hours(room.outbox_full_hours)],
    ]),
    card("Certificates", Object.values(certs).some((s) => s < 14 * 86400) ? "warning" : Object.keys(certs).length ? "ok" : null,
      Object.keys(certs).length ? Object.entries(certs).map(([name, s]) =>
        [name, s < 0 ? "expired" : "expires in " + duration(s)]) : [["TLS", "none presented"]]),
    card("Gateway", null, [
      ["version", health.version],
      ["up", duration(health.uptime_s)],
      ["readings/s", String(Math.round((health.rates || {}).readings_per_s || 0))],
      ["alerts raised", String(store.alerts_active)],
      ["positions kept", duration(privacy.position_retention_s)],
    ]),
  ];
  return [el("h1", { text: "Health" }), el("div", { class: "cards" }, cards)];
}

async function viewHealth(health) {
  return renderHealth(health);
}

async function viewFlood() {
  const [gauges, alerts] = await Promise.all([allDevices("water"), api("/v1/alerts")]);
  const active = alerts.alerts;
  const details = await Promise.all(gauges.map((g) => api("/v1/devices/" + encodeURIComponent(g.id) + "?kind=water")));
  const charts = await Promise.all(gauges.map((g) => series(g.id, "level_cm", "water").catch(() => [])));
  const parts = [el("h1", { text: "Flood" })];
  const raised = active.filter((a) => a.type === "water_level" || a.type === "rise_rate" || a.type === "forecast");
  parts.push(el("h2", { text: `Active alerts (${active.length})` }));
  parts.push(active.length === 0 ? el("p", { class: "muted", text: "No alert is raised." }) :
    el("table", { id: "alerts" },
      el("thead", {}, el("tr", {}, ["Device", "Type", "State", "Value", "Since"].map((h) => el("th", { text: h })))),
      el("tbody", {}, active.map((a) => el("tr", { class: a.state },
        el("td", { text: a.device }), el("td", { text: a.type + (a.subject ? " " + a.subject : "") }),
        el("td", { class: a.state, text: a.state }), el("td", { text: String(a.value) }),
        el("td", { text: ago(a.ts_ms) }))))));
  parts.push(el("h2", { text: `Gauges (${gauges.length})` }));
  if (gauges.length === 0) parts.push(el("p", { class: "muted", text: "No water gauge has reported yet." }));
  const severity = { alarm: 0, warning: 1, normal: 2 };
  const rows = gauges.map((g, index) => {
    const alert = raised.find((a) => a.device === g.id && a.type === "water_level");
    return { g, detail: details[index], points: charts[index], status: alert ? alert.state : "normal" };
  });
  // The gauges that need someone first.
  rows.sort((a, b) => severity[a.status] - severity[b.status] || a.g.id.localeCompare(b.g.id));
  const cards = rows.map(({ g, detail, points, status }) => {
    const level = (detail.latest || []).find((v) => v.signal === "level_cm");
    const limits = detail.thresholds || {};
    return el("div", { class: "card gauge-card state-" + status, "data-device": g.id, "data-state": status },
      el("h3", {}, el("span", { text: g.id }), el("span", { class: "pill " + (status === "normal" ? "ok" : status), text: status })),
      el("dl", {},
        el("dt", { text: "level" }), el("dd", { text: level ? `${level.value} cm, ${ago(level.ts_ms)}` : "—" }),
        el("dt", { text: "limits" }), el("dd", { text: `warning ${limits.warning_cm} cm, alarm ${limits.alarm_cm} cm` }),
        el("dt", { text: "forecast" }), el("dd", { class: "forecast", text: forecastText(detail.forecast, status) })),
      chart(points, { warning: limits.warning_cm, alarm: limits.alarm_cm, label: g.id + " level, last 6 h" }));
  });
  parts.push(el("div", { class: "cards" }, cards));
  return parts;
}

async function viewMap() {
  const collection = await api("/v1/map");
  const { root, advised } = mapSVG(collection);
  const vehicles = collection.features.filter((f) => f.properties.kind === "vehicle").length;
  const parts = [el("h1", { text: "Map" }), root,
    el("div", { class: "legend" },
      el("span", { class: "ok", text: "● normal" }), el("span", { class: "warning", text: "● warning" }),
      el("span", { class: "alarm", text: "● alarm" }), el("span", { text: `▲ vehicles: ${vehicles}` }))];
  if (vehicles === 0)
    parts.push(el("p", { class: "muted", text: "No vehicle shown: none reported a position within the retention, or this token lacks the positions scope." }));
  parts.push(el("h2", { text: `Vehicles inside a flooding gauge's circle (${advised.length})` }));
  parts.push(advised.length === 0 ? el("p", { class: "muted", text: "None: no advisory in flight." }) :
    el("ul", { id: "advised" }, advised.map((a) => el("li", { text: `${a.vehicle}: ${a.gauges.join(", ")}` }))));
  return parts;
}

async function viewDevices() {
  const [devices, rejects] = await Promise.all([allDevices(null), api("/v1/rejects?limit=1000")]);
  const rejected = new Map();
  for (const r of rejects.recent) {
    const id = r.topic.split("/")[2];
    if (id) rejected.set(id, (rejected.get(id) || 0) + 1);
  }
  const search = el("input", { type: "search", id: "search", placeholder: "Search devices", value: state.search,
    "aria-label": "search devices" });
  const body = el("tbody");
  const fill = () => {
    const needle = state.search.trim().toLowerCase();
    body.replaceChildren(...devices.filter((d) => !needle || d.id.toLowerCase().includes(needle)).map((d) =>
      el("tr", { class: "clickable", tabindex: 0, "data-device": d.id,
        onclick: () => { location.hash = "#device/" + encodeURIComponent(d.kind) + "/" + encodeURIComponent(d.id); },
        onkeydown: (e) => { if (e.key === "Enter") location.hash = "#device/" + encodeURIComponent(d.kind) + "/" + encodeURIComponent(d.id); } },
      el("td", { text: d.id }), el("td", { text: d.kind }),
      el("td", { class: d.online ? "ok" : "muted", text: ago(d.last_seen_ms) }),
      el("td", { text: String(d.seq_gaps) }), el("td", { text: String(rejected.get(d.id) || 0) }),
      el("td", { text: String(d.duplicates) }), el("td", { text: d.fw || "—" }))));
  };
  search.addEventListener("input", () => { state.search = search.value; fill(); });
  fill();
  return [el("h1", { text: `Devices (${devices.length})` }), el("div", { class: "toolbar" }, search),
    el("table", { id: "devices" },
      el("thead", {}, el("tr", {}, ["Device", "Kind", "Last seen", "Seq gaps", "Rejects", "Duplicates", "Firmware"]
        .map((h) => el("th", { text: h })))), body)];
}

async function viewDevice(kind, id) {
  const detail = await api("/v1/devices/" + encodeURIComponent(id) + "?kind=" + encodeURIComponent(kind));
  const latest = detail.latest || [];
  const charts = await Promise.all(latest.map((v) => series(id, v.signal, kind).catch(() => [])));
  const limits = detail.thresholds || {};
  return [
    el("p", {}, el("a", { href: "#devices", text: "← all devices" })),
    el("h1", { text: `${detail.id} (${detail.kind})` }),
    el("div", { class: "cards" }, card("Device", detail.online ? "ok" : null, [
      ["last seen", ago(detail.last_seen_ms)], ["firmware", detail.fw || "—"], ["hardware", detail.hw || "—"],
      ["seq gaps", String(detail.seq_gaps)], ["duplicates", String(detail.duplicates)],
      ["restarts", String(detail.seq_resets)], ["readings", String(detail.readings)],
    ])),
    el("h2", { text: "Latest values" }),
    el("table", { id: "latest" }, el("tbody", {}, latest.map((v) => el("tr", {},
      el("td", { text: v.signal }), el("td", { text: `${v.value} ${v.unit}` }), el("td", { text: ago(v.ts_ms) }))))),
    el("div", { class: "cards" }, latest.map((v, index) => el("div", { class: "card" },
      el("h3", {}, el("span", { text: `${v.signal} (${v.unit})` })),
      chart(charts[index], v.signal === "level_cm" ? { warning: limits.warning_cm, alarm: limits.alarm_cm } : {})))),
  ];
}

function countsBar(counts) {
  const order = [["installed", "ok"], ["downloading", "info"], ["downloaded", "info"], ["installing", "info"],
    ["queued", "muted"], ["offered", "muted"], ["failed", "alarm"], ["timed_out", "alarm"], ["rejected", "alarm"],
    ["canceled", "muted"]];
  const total = Object.values(counts).reduce((a, b) => a + b, 0) || 1;
  const root = svg("svg", { viewBox: "0 0 300 14", class: "counts", preserveAspectRatio: "none", role: "img",
    "aria-label": "vehicles by state" });
  let x = 0;
  const colours = { ok: "#0a6b2d", info: "#0b4f9c", muted: "#9a9a9a", warning: "#8a5a00", alarm: "#b00020" };
  for (const [name, tone] of order) {
    const n = counts[name] || 0;
    if (!n) continue;
    const w = (n / total) * 300;
    root.append(svg("rect", { x, y: 0, width: w, height: 14, fill: colours[tone] }, svg("title", { text: `${name}: ${n}` })));
    x += w;
  }
  return el("div", {}, root, el("div", { class: "legend" },
    Object.entries(counts).filter(([, n]) => n > 0).map(([name, n]) => el("span", { text: `${name} ${n}` }))));
}

async function control(id, verb) {
  await api(`/v1/ota/campaigns/${encodeURIComponent(id)}/${verb}`, { method: "POST" });
  state.pendingCancel = null;
  refresh();
}

async function viewOTA() {
  if (state.role !== "operator") return [el("h1", { text: "OTA" }), el("p", { text: "OTA needs an operator token." })];
  const list = await api("/v1/ota/campaigns");
  const parts = [el("h1", { text: "OTA campaigns" })];
  if (list.campaigns.length === 0) parts.push(el("p", { class: "muted", text: "No campaign yet (gwctl ota push)." }));
  for (const c of list.campaigns) {
    const running = c.state === "running" || c.state === "scheduled";
    const final = ["completed", "aborted", "canceled"].includes(c.state);
    const cancelArmed = state.pendingCancel === c.id;
    const buttons = el("div", { class: "toolbar" },
      el("button", { type: "button", class: "pause", disabled: !running, onclick: () => control(c.id, "pause"), text: "Pause" }),
      el("button", { type: "button", class: "resume", disabled: c.state !== "paused", onclick: () => control(c.id, "resume"), text: "Resume" }),
      el("button", { type: "button", class: "cancel", disabled: final,
        onclick: () => { if (cancelArmed) control(c.id, "cancel"); else { state.pendingCancel = c.id; refresh(); } },
        text: cancelArmed ? "Confirm cancel" : "Cancel" }),
      el("button", { type: "button", onclick: () => { state.campaign = state.campaign === c.id ? null : c.id; refresh(); },
        text: state.campaign === c.id ? "Hide vehicles" : "Vehicles" }));
    const box = el("div", { class: "card campaign", "data-campaign": c.id },
      el("h3", {}, el("span", { text: `#${c.id} ${c.release} → ${c.hardware_id}` }), el("span", { class: "pill", text: c.state })),
      el("dl", {}, el("dt", { text: "wave" }), el("dd", { text: `${c.wave} of ${c.settings.waves.length}` }),
        el("dt", { text: "targets" }), el("dd", { text: String(c.targets) }),
        c.reason ? el("dt", { text: "reason" }) : null, c.reason ? el("dd", { text: c.reason }) : null),
      countsBar(c.counts), buttons);
    parts.push(box);
    if (state.campaign === c.id) {
      const detail = await api("/v1/ota/campaigns/" + encodeURIComponent(c.id));
      const failures = detail.vehicles.filter((v) => ["failed", "rejected", "timed_out"].includes(v.state));
      box.append(el("h3", { text: `Failures (${failures.length})` }),
        failures.length === 0 ? el("p", { class: "muted", text: "None." }) :
          el("table", {}, el("tbody", {}, failures.map((v) => el("tr", {},
            el("td", { text: v.vin }), el("td", { class: "alarm", text: v.state }),
            el("td", { text: (v.reason || "") + (v.detail ? ": " + v.detail : "") }))))));
    }
  }
  return parts;
}

// ---- the shell ----------------------------------------------------------------------------

function showLogin(message) {
  clearTimeout(state.timer);
  sessionStorage.removeItem(TOKEN_KEY);
  state.role = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("view").replaceChildren();
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
  document.getElementById("token").focus();
}

function route() {
  const hash = decodeURIComponent(location.hash.slice(1) || "health");
  const [view, ...rest] = hash.split("/");
  return { view, rest };
}

async function refresh() {
  clearTimeout(state.timer);
  const generation = ++state.generation;
  const { view, rest } = route();
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.dataset.view === view);
  try {
    const health = await api("/v1/health", { allow: [503] });
    const h = health.body;
    if (h) {
      document.getElementById("gateway-id").textContent = h.gateway_id;
      const pill = document.getElementById("status");
      pill.textContent = h.status;
      pill.className = "pill " + h.status;
    }
    let content;
    switch (view) {
      case "flood": content = await viewFlood(); break;
      case "map": content = await viewMap(); break;
      case "devices": content = await viewDevices(); break;
      case "device": content = await viewDevice(rest[0], rest.slice(1).join("/")); break;
      case "ota": content = await viewOTA(); break;
      default: content = await viewHealth(h);
    }
    if (generation !== state.generation) return; // a newer refresh took over
    const focused = document.activeElement && document.activeElement.id;
    document.getElementById("view").replaceChildren(...content);
    if (focused === "search") {
      const search = document.getElementById("search");
      if (search) { search.focus(); search.setSelectionRange(search.value.length, search.value.length); }
    }
    document.getElementById("updated").textContent = "Updated " + new Date().toLocaleTimeString();
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin("The gateway refused the token: sign in again.");
    if (generation !== state.generation) return;
    document.getElementById("view").replaceChildren(el("p", { class: "error", role: "alert", text: String(error.message || error) }));
  }
  if (generation === state.generation) state.timer = setTimeout(refresh, POLL_MS);
}

async function signIn() {
  // The role decides what the page offers; the API enforces it either way.
  const config = await api("/v1/config", { allow: [403] });
  state.role = config.status === 200 ? "operator" : "viewer";
  document.getElementById("login").hidden = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("nav-ota").hidden = state.role !== "operator";
  document.body.dataset.role = state.role;
  refresh();
}

function start() {
  document.getElementById("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = document.getElementById("token").value.trim();
    document.getElementById("token").value = "";
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    try { await signIn(); } catch (error) {
      showLogin(error instanceof Unauthorized ? "The gateway refused that token." : String(error.message || error));
    }
  });
  document.getElementById("signout").addEventListener("click", () => showLogin("Signed out."));
  window.addEventListener("hashchange", () => { state.pendingCancel = null; refresh(); });
  if (sessionStorage.getItem(TOKEN_KEY)) {
    signIn().catch((error) => showLogin(error instanceof Unauthorized ? "The gateway refused the token: sign in again." : String(error.message || error)));
  } else {
    showLogin("");
  }
}

// For the tests, which run these in the browser: pure helpers only.
window.consoleInternals = { ago, duration, forecastText, mapSVG, chart, bytes };

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
