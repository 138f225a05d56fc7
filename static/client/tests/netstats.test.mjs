import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, expectedQuality, formatBitrate, jitter, percentile, rate, throughputBps } from "../js/netstats.js";

test("percentile interpolates and ignores non-numbers", () => {
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([5], 50), 5);
  assert.equal(percentile([3, 1, 2, NaN], 50), 2);
  assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
  assert.equal(percentile([1, 2, 3, 4, 5], 100), 5);
});

test("jitter and throughput", () => {
  assert.equal(jitter([10]), 0);
  assert.equal(jitter([10, 14, 10, 12]), (4 + 4 + 2) / 3);
  assert.equal(throughputBps(1_000_000, 1000), 8_000_000);
  assert.equal(throughputBps(10, 0), 0);
});

test("expected quality follows throughput and is lowered by rtt, jitter and loss", () => {
  const good = { rttMs: 5, jitterMs: 1, loss: 0, throughputBps: 1e9 };
  assert.equal(expectedQuality(good).quality, "4K");
  assert.equal(expectedQuality({ ...good, throughputBps: 40e6 }).quality, "1080p");
  assert.equal(expectedQuality({ ...good, throughputBps: 60e6 }).quality, "2K");
  assert.equal(expectedQuality({ ...good, rttMs: 150 }).quality, "2K");
  assert.equal(expectedQuality({ ...good, rttMs: 150, loss: 0.05, jitterMs: 30 }).quality, "720p");
  const bad = expectedQuality({ ...good, throughputBps: 1e6 });
  assert.equal(bad.quality, "720p");
  assert.ok(bad.poor);
  assert.ok(bad.reasons.length > 0);
  // At 45 fps the same link fits a higher rung.
  assert.equal(expectedQuality({ ...good, throughputBps: 40e6 }, 45).quality, "2K");
});

test("backoff doubles, caps and jitters", () => {
  const mid = () => 0.5;
  assert.equal(backoffDelay(0, {}, mid), 500);
  assert.equal(backoffDelay(3, {}, mid), 4000);
  assert.equal(backoffDelay(20, {}, mid), 15000);
  assert.equal(backoffDelay(0, {}, () => 0), 400);
  assert.equal(backoffDelay(0, {}, () => 1), 600);
});

test("rate and bitrate formatting", () => {
  assert.equal(rate({ t: 0, value: 0 }, { t: 2000, value: 60 }), 30);
  assert.equal(rate(null, { t: 1, value: 1 }), 0);
  assert.equal(rate({ t: 0, value: 10 }, { t: 1000, value: 5 }), 0);
  assert.equal(formatBitrate(12.34e6), "12.3 Mbit/s");
  assert.equal(formatBitrate(500e3), "500 kbit/s");
  assert.equal(formatBitrate(0), "–");
});
