import { test } from "node:test";
import assert from "node:assert/strict";
import { ClockOffset, FrameRate, frameStages, overheadRatio, perFrameMs, Samples, STAGES, StageStats } from "../js/framestats.js";
import { cropStamp, DEFAULT_BLOCK, STAMP_GUARD } from "../js/stamp.js";

// One frame through the pipeline, on a worker clock `offset` ms ahead of the browser's.
function frame({ offset = 0, sent = 1.7e12, up = 2, queue = 3, render = 20, convert = 4, encode = 6, send = 1, net = 5, jit = 7, display = 8 }) {
  const rx = sent + up + offset;
  const t = { pose_rx: rx, render_start: rx + queue };
  t.render_end = t.render_start + render;
  t.convert_end = t.render_end + convert;
  t.encode_end = t.convert_end + encode;
  t.send = t.encode_end + send;
  const received = t.send - offset + net;
  const presented = received + jit;
  return { t, times: { poseSentMs: sent, receivedMs: received, presentedMs: presented, displayMs: presented + display } };
}

test("stages of one frame add up to pose-to-photon and are corrected by the clock offset", () => {
  for (const offset of [0, 12_345.5, -40_000]) {
    const { t, times } = frame({ offset });
    const stages = frameStages(t, times, offset);
    assert.deepEqual(
      Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, Math.round(v * 1000) / 1000])),
      { pose_to_worker: 2, queue: 3, render: 20, convert: 4, encode: 6, send: 1, network_decode: 12, network: 5, jitter_decode: 7, display: 8 },
    );
    const chain = STAGES.reduce((sum, k) => sum + stages[k], 0);
    assert.ok(Math.abs(chain - (times.displayMs - times.poseSentMs)) < 1e-6);
  }
});

test("a wrong offset moves time between the link stages but not the total", () => {
  const { t, times } = frame({ offset: 50 });
  const stages = frameStages(t, times, 0); // uncorrected
  assert.equal(stages.pose_to_worker, 52);
  assert.equal(stages.network_decode, 12 - 50);
  const chain = STAGES.reduce((sum, k) => sum + stages[k], 0);
  assert.equal(chain, times.displayMs - times.poseSentMs);
});

test("missing inputs leave stages out instead of inventing them", () => {
  const { t, times } = frame({});
  const noRx = frameStages({ ...t, pose_rx: 0 }, { ...times, receivedMs: undefined });
  assert.equal(noRx.pose_to_worker, undefined);
  assert.equal(noRx.queue, undefined);
  assert.equal(noRx.network, undefined);
  assert.equal(noRx.render, 20);
  assert.equal(noRx.network_decode, 12);
  assert.deepEqual(frameStages(undefined, {}), {});
});

test("clock offset: NTP-style from the minimum delays each way", () => {
  const clock = new ClockOffset({ window: 50 });
  assert.equal(clock.offsetMs, null);
  const offset = 1234; // worker ahead
  // Up: 3 ms propagation plus queueing noise; down: 3 ms plus noise.
  const noise = [0, 9, 4, 15, 1, 30, 2];
  noise.forEach((n, i) => {
    clock.addUp(1.7e12 + 1000 * i, 1.7e12 + 1000 * i + 3 + n + offset);
    clock.addDown(1.7e12 + 5000 * i + offset, 1.7e12 + 5000 * i + 3 + noise[(i + 3) % noise.length]);
  });
  assert.equal(clock.offsetMs, offset);
  assert.equal(clock.oneWayMs, 3);
  // Bad samples (no pose_rx yet: 0) are ignored.
  clock.addUp(100, 0);
  assert.equal(clock.offsetMs, offset);
});

test("clock offset forgets old samples beyond its window", () => {
  const clock = new ClockOffset({ window: 3 });
  clock.addUp(0, 1);
  clock.addDown(0, 1);
  for (let i = 0; i < 3; i++) {
    clock.addUp(10, 30); // up 20
    clock.addDown(10, 20); // down 10
  }
  assert.equal(clock.offsetMs, 5);
});

test("stage p50s, percentiles and the overhead ratio", () => {
  const stats = new StageStats(10);
  for (let i = 1; i <= 5; i++) {
    const { t, times } = frame({ render: 10 * i });
    stats.push(frameStages(t, times));
  }
  stats.push({ render: 1 }); // a frame measured on fewer stages
  assert.equal(stats.counts().render, 6);
  assert.equal(stats.counts().queue, 5);
  const p50 = stats.p50s();
  assert.equal(p50.render, 25);
  assert.equal(p50.queue, 3);
  const latency = STAGES.reduce((s, k) => s + p50[k], 0);
  assert.equal(overheadRatio(latency, p50), 1);
  assert.equal(overheadRatio(latency * 1.5, p50), 1.5);
  assert.equal(overheadRatio(null, p50), null);
  const { display, ...partial } = p50;
  assert.ok(display > 0);
  assert.equal(overheadRatio(latency, partial), null);

  const lat = new Samples(100);
  for (let i = 1; i <= 100; i++) lat.push(i);
  lat.push(NaN);
  assert.equal(lat.length, 100);
  assert.equal(lat.p(50), 50.5);
  assert.ok(Math.abs(lat.p(99) - 99.01) < 1e-9);
  lat.push(1000); // the window drops the oldest
  assert.equal(lat.values[0], 2);
});

test("frame rate over a window, zero when the picture stops, restarts with a new stream", () => {
  const rate = new FrameRate({ windowMs: 1000, staleMs: 500 });
  assert.equal(rate.fps(0), 0);
  for (let i = 0; i <= 120; i++) rate.push(i * 1000 / 60, i); // 60 fps for 2 s
  assert.ok(Math.abs(rate.fps(2000) - 60) < 1.5);
  // The window only covers the last second: a slowdown shows within it.
  for (let i = 1; i <= 30; i++) rate.push(2000 + i * 1000 / 30, 120 + i);
  assert.ok(Math.abs(rate.fps(3000) - 30) < 2, rate.fps(3000));
  assert.equal(rate.fps(4000), 0);
  rate.push(5000, 3); // presentedFrames went back: a new stream
  rate.push(5100, 9);
  assert.equal(rate.fps(5100), 60);
});

test("per-frame ms from cumulative getStats figures", () => {
  const a = { jitterBufferDelay: 1.0, jitterBufferEmittedCount: 100 };
  const b = { jitterBufferDelay: 1.6, jitterBufferEmittedCount: 130 };
  assert.ok(Math.abs(perFrameMs(a, b, "jitterBufferDelay", "jitterBufferEmittedCount") - 20) < 1e-9);
  assert.equal(perFrameMs(null, a, "jitterBufferDelay", "jitterBufferEmittedCount"), 10);
  assert.equal(perFrameMs(b, b, "jitterBufferDelay", "jitterBufferEmittedCount"), (1.6 * 1000) / 130);
  assert.equal(perFrameMs(null, {}, "totalDecodeTime", "framesDecoded"), null);
  assert.equal(perFrameMs(null, { totalDecodeTime: 0, framesDecoded: 0 }, "totalDecodeTime", "framesDecoded"), null);
});

test("the desktop view's source rectangle leaves out the stamp's band", () => {
  const band = DEFAULT_BLOCK + STAMP_GUARD; // the blocks and the rows the codec smears them into
  assert.deepEqual(cropStamp({ x: 0, y: 0, w: 1280, h: 720 }), { x: 0, y: band, w: 1280, h: 720 - band });
  assert.deepEqual(cropStamp({ x: 1280, y: 0, w: 1280, h: 720 }, 8), { x: 1280, y: 8, w: 1280, h: 712 });
  assert.deepEqual(cropStamp({ x: 0, y: 40, w: 10, h: 10 }), { x: 0, y: 40, w: 10, h: 10 });
  assert.equal(cropStamp({ x: 0, y: 0, w: 10, h: 10 }).h, 1); // never empty
});
