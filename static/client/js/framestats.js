// What the viewer measures per displayed frame: pose-to-photon, the per-stage breakdown
// (worker stage timestamps from the `frames` channel + the browser's own rVFC times), the
// worker-to-browser clock offset, the displayed frame rate, and the jitter-buffer and decode
// figures of getStats. Pure: tested under Node (static/client/tests/framestats.test.mjs).
//
// Clocks. The worker stamps its stages with its wall clock (ms since the epoch,
// workers/protocol/frames.py FrameMeta.t); the browser's are performance.timeOrigin + now. On one
// machine the two agree, but a worker elsewhere may be off by any amount, so stage times that
// cross the link are corrected by an NTP-style estimate made from traffic that already flows
// both ways: poses up (sent at browser time s, received at worker time r: r - s = d_up + o)
// and frame metadata down (sent at worker time w, arriving at browser time a: a - w = d_down - o).
// With the minima of both over a window and d_up ≈ d_down, o = (min(r - s) - min(a - w)) / 2.
// The total (pose sent -> frame displayed) uses the browser clock only and needs no offset.
import { percentile } from "./netstats.js";

// Worker timestamps in pipeline order (workers/protocol/frames.py STAGES).
export const WORKER_STAMPS = ["pose_rx", "render_start", "render_end", "convert_end", "encode_end", "send"];
// The stages that add up to pose-to-photon, in order.
export const STAGES = ["pose_to_worker", "queue", "render", "convert", "encode", "send", "network_decode", "display"];
// A finer split of network_decode where the browser reports when a frame's last packet came.
export const DETAIL_STAGES = ["network", "jitter_decode"];
export const STAGE_LABELS = {
  pose_to_worker: "pose→worker",
  queue: "queue",
  render: "render",
  convert: "convert",
  encode: "encode",
  send: "send",
  network_decode: "net+jitbuf+decode",
  display: "to display",
  network: "network",
  jitter_decode: "jitbuf+decode",
};

// A bounded window of numbers with percentiles.
export class Samples {
  constructor(limit = 600) {
    this.limit = limit;
    this.values = [];
  }

  push(value) {
    if (!Number.isFinite(value)) return;
    this.values.push(value);
    if (this.values.length > this.limit) this.values.splice(0, this.values.length - this.limit);
  }

  get length() {
    return this.values.length;
  }

  p(q) {
    return percentile(this.values, q);
  }

  clear() {
    this.values = [];
  }
}

// Minimum of the last `limit` values (sliding; the minimum of a path's delays is its
// propagation delay, whatever the queues did).
class WindowMin {
  constructor(limit) {
    this.limit = limit;
    this.values = [];
  }

  push(v) {
    if (!Number.isFinite(v)) return;
    this.values.push(v);
    if (this.values.length > this.limit) this.values.shift();
  }

  get min() {
    return this.values.length ? Math.min(...this.values) : null;
  }
}

export class ClockOffset {
  constructor({ window = 300 } = {}) {
    this.up = new WindowMin(window);
    this.down = new WindowMin(window);
  }

  // A pose sent at browser time `sentMs` reached the worker at worker time `rxMs`.
  addUp(sentMs, rxMs) {
    if (sentMs > 0 && rxMs > 0) this.up.push(rxMs - sentMs);
  }

  // Frame metadata sent at worker time `sentMs` arrived at browser time `arrivedMs`.
  addDown(sentMs, arrivedMs) {
    if (sentMs > 0 && arrivedMs > 0) this.down.push(arrivedMs - sentMs);
  }

  // Worker clock minus browser clock (ms); null until both directions have samples.
  get offsetMs() {
    const up = this.up.min, down = this.down.min;
    return up === null || down === null ? null : (up - down) / 2;
  }

  // The one-way delay the estimate assumes for both directions.
  get oneWayMs() {
    const up = this.up.min, down = this.down.min;
    return up === null || down === null ? null : (up + down) / 2;
  }
}

// Stage durations (ms) of one displayed frame. `t`: the worker's stage timestamps;
// browser times are epoch ms (timeOrigin + rVFC times): poseSentMs (the pose the frame was
// rendered from), receivedMs (last packet; optional), presentedMs (decoded and handed to the
// compositor), displayMs (expected on screen). `offsetMs`: worker clock minus browser clock.
// Stages whose inputs are missing are left out.
export function frameStages(t, { poseSentMs, receivedMs, presentedMs, displayMs }, offsetMs = 0) {
  const out = {};
  const has = (k) => Number.isFinite(t?.[k]) && t[k] > 0;
  const o = Number.isFinite(offsetMs) ? offsetMs : 0;
  if (has("pose_rx") && Number.isFinite(poseSentMs)) out.pose_to_worker = t.pose_rx - o - poseSentMs;
  if (has("pose_rx") && has("render_start")) out.queue = t.render_start - t.pose_rx;
  const pairs = [["render", "render_start", "render_end"], ["convert", "render_end", "convert_end"], ["encode", "convert_end", "encode_end"], ["send", "encode_end", "send"]];
  for (const [name, a, b] of pairs) if (has(a) && has(b)) out[name] = t[b] - t[a];
  if (has("send")) {
    const sentHere = t.send - o; // the worker's send time on the browser's clock
    if (Number.isFinite(presentedMs)) out.network_decode = presentedMs - sentHere;
    if (Number.isFinite(receivedMs) && receivedMs > 0) {
      out.network = receivedMs - sentHere;
      if (Number.isFinite(presentedMs)) out.jitter_decode = presentedMs - receivedMs;
    }
  }
  if (Number.isFinite(presentedMs) && Number.isFinite(displayMs)) out.display = displayMs - presentedMs;
  return out;
}

// Per-stage windows; p50s() gives {stage: p50 ms} for the stages seen.
export class StageStats {
  constructor(limit = 600) {
    this.limit = limit;
    this.windows = {};
  }

  push(stages) {
    for (const [name, ms] of Object.entries(stages)) {
      (this.windows[name] ||= new Samples(this.limit)).push(ms);
    }
  }

  p50s() {
    const out = {};
    for (const name of [...STAGES, ...DETAIL_STAGES]) {
      const p = this.windows[name]?.p(50);
      if (p !== null && p !== undefined) out[name] = p;
    }
    return out;
  }

  // How many frames each stage was measured on (stages need different inputs).
  counts() {
    return Object.fromEntries(Object.entries(this.windows).map(([k, w]) => [k, w.length]));
  }

  clear() {
    this.windows = {};
  }
}

// p50 latency over the sum of the p50s of the stages that make it up (1.0: the stages
// account for all of it). null when a stage of the chain is missing.
export function overheadRatio(latencyP50, p50s) {
  if (!Number.isFinite(latencyP50)) return null;
  let sum = 0;
  for (const name of STAGES) {
    if (!Number.isFinite(p50s[name])) return null;
    sum += p50s[name];
  }
  return sum > 0 ? latencyP50 / sum : null;
}

// Frames displayed per second over the last `windowMs`, from samples {t (ms), frames} where
// `frames` is a running count (rVFC's presentedFrames counts frames the page's callbacks
// missed, too). 0 when the picture stopped (no new frame for `staleMs`).
export class FrameRate {
  constructor({ windowMs = 5000, staleMs = 1000 } = {}) {
    this.windowMs = windowMs;
    this.staleMs = staleMs;
    this.samples = [];
  }

  push(t, frames) {
    const last = this.samples[this.samples.length - 1];
    if (last && (frames < last.frames || t < last.t)) this.samples = []; // a new stream restarts the count
    this.samples.push({ t, frames });
    while (this.samples.length > 2 && t - this.samples[1].t > this.windowMs) this.samples.shift();
  }

  fps(now) {
    const s = this.samples;
    if (s.length < 2 || now - s[s.length - 1].t > this.staleMs) return 0;
    const first = s[0], last = s[s.length - 1];
    return last.t > first.t ? ((last.frames - first.frames) * 1000) / (last.t - first.t) : 0;
  }

  clear() {
    this.samples = [];
  }
}

// Milliseconds per frame of a cumulative getStats pair (seconds total / count) between two
// inbound-rtp samples: jitterBufferDelay / jitterBufferEmittedCount, totalDecodeTime /
// framesDecoded. Uses the interval when it has frames, else the totals; null when unknown.
export function perFrameMs(prev, next, totalKey, countKey) {
  const total = next?.[totalKey], count = next?.[countKey];
  if (!Number.isFinite(total) || !Number.isFinite(count) || count <= 0) return null;
  const pt = prev?.[totalKey], pc = prev?.[countKey];
  if (Number.isFinite(pt) && Number.isFinite(pc) && count > pc && total >= pt) {
    return ((total - pt) * 1000) / (count - pc);
  }
  return (total * 1000) / count;
}
