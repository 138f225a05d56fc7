// The viewer's stats overlay text (statstext.js): what a snapshot shows, and "–" for a figure
// not measured yet.
import assert from "node:assert/strict";
import { test } from "node:test";
import { statsLines } from "../js/statstext.js";

const snapshot = {
  fps: 59.9,
  latencyP50Ms: 41.2,
  latencyP99Ms: null,
  stagesMs: { render: 3.1, encode: 2.4, send: 0.4, network_decode: 9, display: 8 },
  overheadRatio: 1.02,
  clockOffsetMs: -3.5,
  jitterBufferMs: 12,
  jitterBufferTargetDelayMs: 10,
  jitterBufferMinimumDelayMs: 0,
  jitterBufferTarget: null,
  decodeMs: 1.5,
  framesDropped: 2,
  bitrate: 12_500_000,
  packetLoss: 0.001,
  rttMs: 20.4,
  quality: "1080p",
  requestedQuality: "auto",
  renderScale: 0.75,
  encoder: "h264",
  videoSize: [1920, 1080],
  views: 1,
  viewsAsked: 1,
  framesDecoded: 300,
  lastFrameId: null,
  sessionState: "connected",
  streamState: "streaming",
  reconnects: 0,
};

test("stats lines name each figure, unmeasured ones as a dash", () => {
  const lines = statsLines(snapshot);
  assert.equal(lines[0], "fps            59.9  (decoded and displayed, 5 s)");
  assert.equal(lines[1], "latency p50    41.2 ms  p99 –  (pose to photon)");
  // Four stages a line: the label only on the first.
  assert.ok(lines[2].startsWith("stages p50 ms  "));
  assert.equal(lines[3].slice(0, 15).trim(), "");
  assert.ok(lines.includes("packet loss    0.10%"));
  assert.ok(lines.includes("rtt            20 ms"));
  assert.ok(lines.includes("quality        1080p (asked: auto), rendered at 75% to hold the frame rate"));
  assert.ok(lines.includes("frames         300 decoded, last id –"));
});
