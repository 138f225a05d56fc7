// The viewer's stats overlay (the "Stats" toggle, F3) as text lines, from a snapshot of the
// viewer's stats() (window.vrplatform.stats). Pure, so Node tests it without a browser.
import { STAGE_LABELS } from "./framestats.js";
import { formatBitrate } from "./netstats.js";

const ms = (v) => (v === null || v === undefined ? "–" : `${v} ms`);

// The stage breakdown, a few stages per line.
function stageLines(stagesMs) {
  const parts = Object.entries(stagesMs).map(([k, v]) => `${STAGE_LABELS[k] || k} ${v}`);
  const lines = [];
  for (let i = 0; i < parts.length; i += 4) lines.push(`${i ? "" : "stages p50 ms"}`.padEnd(15) + parts.slice(i, i + 4).join(", "));
  return lines;
}

export function statsLines(s) {
  return [
    `fps            ${s.fps}  (decoded and displayed, 5 s)`,
    `latency p50    ${ms(s.latencyP50Ms)}  p99 ${ms(s.latencyP99Ms)}  (pose to photon)`,
    ...stageLines(s.stagesMs),
    `overhead       ${s.overheadRatio ?? "–"}  (p50 / sum of stage p50s)   clock offset ${ms(s.clockOffsetMs)}`,
    `jitter buffer  ${ms(s.jitterBufferMs)} per frame (target ${ms(s.jitterBufferTargetDelayMs)}, minimum ${ms(s.jitterBufferMinimumDelayMs)}, asked ${s.jitterBufferTarget ?? "default"})`,
    `decode         ${ms(s.decodeMs)} per frame, ${s.framesDropped} dropped`,
    `bitrate        ${formatBitrate(s.bitrate)}`,
    `packet loss    ${(s.packetLoss * 100).toFixed(2)}%`,
    `rtt            ${s.rttMs == null ? "–" : `${Math.round(s.rttMs)} ms`}`,
    `quality        ${s.quality || "–"} (asked: ${s.requestedQuality})${s.renderScale < 1 ? `, rendered at ${Math.round(s.renderScale * 100)}% to hold the frame rate` : ""}`,
    `encoder        ${s.encoder || "–"}`,
    `picture        ${s.videoSize[0]}x${s.videoSize[1]}, ${s.views === 1 ? "one centre view" : "both eyes side by side"} (asked: ${s.viewsAsked === 1 ? "one" : "both"})`,
    `frames         ${s.framesDecoded} decoded, last id ${s.lastFrameId ?? "–"}`,
    `session        ${s.sessionState}, stream ${s.streamState}, reconnects ${s.reconnects}`,
  ];
}
