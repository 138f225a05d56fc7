// Operator dashboard: live snapshots over /ws/delphi/dashboard/, tables and canvas charts.
// An ES module on the client's page helpers (dom.js). Text goes in with textContent only (names
// come from users).
import { $, el } from "../client/js/dom.js";

const root = $("delphi-dashboard");
if (root) start(root);

function start(root) {
  const HISTORY = 300; // points kept per chart (5 minutes at one snapshot a second)
  const series = { latency50: [], latency99: [], fps: [], bitrate: [], streams: [] };
  let selectedSession = null;
  let last = null;

  const fmt = (v, digits) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));

  function push(name, value) {
    const s = series[name];
    s.push(value === null || value === undefined ? NaN : Number(value));
    if (s.length > HISTORY) s.shift();
  }

  function draw(canvasId, lines) {
    const c = $(canvasId);
    const ctx = c.getContext("2d");
    const w = c.width, h = c.height, pad = 22;
    ctx.clearRect(0, 0, w, h);
    const all = lines.flatMap((l) => l.data.filter((v) => !Number.isNaN(v)));
    const max = Math.max(1, ...all) * 1.1;
    ctx.strokeStyle = "#ccc"; ctx.fillStyle = "#888"; ctx.font = "10px sans-serif";
    ctx.beginPath(); ctx.moveTo(pad, h - pad); ctx.lineTo(w, h - pad); ctx.stroke();
    ctx.fillText(max.toFixed(max < 10 ? 1 : 0), 2, 10);
    ctx.fillText("0", 2, h - pad);
    for (const line of lines) {
      ctx.strokeStyle = line.color; ctx.lineWidth = 1.5; ctx.beginPath();
      let started = false;
      line.data.forEach((v, i) => {
        if (Number.isNaN(v)) { started = false; return; }
        const x = pad + (i / (HISTORY - 1)) * (w - pad);
        const y = h - pad - (v / max) * (h - pad - 4);
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      });
      ctx.stroke();
    }
  }

  function row(cells, attrs) {
    const tr = el("tr", {}, cells.map(([text, numeric]) => el("td", { textContent: text, className: numeric ? "num" : undefined })));
    Object.assign(tr, attrs || {});
    return tr;
  }

  function fill(tableId, rows) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren(...rows);
  }

  function render(snap) {
    const t = snap.totals;
    $("t-sessions").textContent = t.sessions;
    $("t-participants").textContent = t.participants;
    $("t-streams").textContent = t.streams;
    $("t-latency").textContent = fmt(t.latency_p50_ms, 0);
    $("t-fps").textContent = fmt(t.fps_mean, 1);
    $("t-bitrate").textContent = fmt(t.bitrate_bps / 1e6, 1);
    $("t-relayed").textContent = t.relayed ?? 0;
    fill("sessions", snap.sessions.map((s) => {
      const tr = row([[s.name], [s.status], [s.participants, true], [s.streams, true]]);
      tr.className = "clickable" + (s.id === selectedSession ? " selected" : "");
      tr.title = "Show this session's streams";
      tr.addEventListener("click", () => {
        selectedSession = selectedSession === s.id ? null : s.id;
        render(last);
      });
      return tr;
    }));
    fill("workers", snap.workers.map((w) => row([
      [w.name], [w.status], [`${w.streams} / ${w.capacity}`, true], [fmt(w.load * 100, 0) + " %", true],
    ])));
    const streams = snap.streams.filter((s) => !selectedSession || s.session_id === selectedSession);
    const session = snap.sessions.find((s) => s.id === selectedSession);
    $("stream-filter").textContent = session ? `of “${session.name}” (click it again for all)` : "";
    fill("streams", streams.map((s) => row([
      [s.id.slice(0, 8)], [s.session_id.slice(0, 8)], [s.worker || "–"], [s.rung || "–"],
      [s.encoder || "–"], [s.candidate_pair || "–"], [fmt(s.fps, 1), true],
      [s.bitrate_bps == null ? "–" : fmt(s.bitrate_bps / 1e6, 1), true],
      [s.loss == null ? "–" : fmt(s.loss * 100, 1) + " %", true],
      [fmt(s.rtt_ms, 0), true], [fmt(s.latency_ms, 0), true],
    ])));
    draw("c-latency", [{ data: series.latency50, color: "#2a7" }, { data: series.latency99, color: "#c33" }]);
    draw("c-fps", [{ data: series.fps, color: "#36c" }]);
    draw("c-bitrate", [{ data: series.bitrate, color: "#a5c" }]);
    draw("c-streams", [{ data: series.streams, color: "#e80" }]);
  }

  function onSnapshot(snap) {
    last = snap;
    const t = snap.totals;
    push("latency50", t.latency_p50_ms); push("latency99", t.latency_p99_ms);
    push("fps", t.fps_mean); push("bitrate", t.bitrate_bps / 1e6); push("streams", t.streams);
    render(snap);
  }

  let delay = 1000;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
    ws.onopen = () => { $("delphi-conn").textContent = "live"; delay = 1000; };
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.event === "delphi:dashboard") onSnapshot(msg.data);
    };
    ws.onclose = (e) => {
      $("delphi-conn").textContent = e.code === 4403 ? "not allowed" : "reconnecting…";
      if (e.code === 4403) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
}
