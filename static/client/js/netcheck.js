// Pre-flight network check: round trips to /healthz (RTT, jitter, loss as failed or timed-out
// probes) and timed downloads of /api/web/netcheck (throughput), then the quality to expect.
import { api } from "./api.js";
import { expectedQuality, jitter, percentile, throughputBps } from "./netstats.js";

const PROBES = 10;
const PROBE_TIMEOUT_MS = 1500;
const DOWNLOAD_BYTES = [256 * 1024, 1024 * 1024, 4 * 1024 * 1024];

async function probe() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), PROBE_TIMEOUT_MS);
  const start = performance.now();
  try {
    const response = await fetch(`/healthz?t=${Date.now()}`, { cache: "no-store", signal: controller.signal });
    await response.arrayBuffer();
    return response.ok ? performance.now() - start : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

async function download(bytes) {
  const start = performance.now();
  const response = await api(`/api/web/netcheck?bytes=${bytes}`, { raw: true });
  const body = await response.arrayBuffer();
  return { bytes: body.byteLength, ms: performance.now() - start };
}

export async function runNetcheck(fps = 90) {
  const rtts = [];
  for (let i = 0; i < PROBES; i++) rtts.push(await probe());
  const ok = rtts.filter((v) => v !== null);
  const loss = (rtts.length - ok.length) / rtts.length;
  const rttMs = percentile(ok, 50) ?? Infinity;
  // Grow the download until it takes long enough to measure (or we hit the largest size):
  // a tiny transfer on a fast link measures mostly latency.
  let best = 0;
  for (const size of DOWNLOAD_BYTES) {
    const { bytes, ms } = await download(size);
    best = Math.max(best, throughputBps(bytes, Math.max(1, ms - (Number.isFinite(rttMs) ? rttMs : 0))));
    if (ms > 300) break;
  }
  const measurement = { rttMs, jitterMs: jitter(ok), loss, throughputBps: best };
  return { ...measurement, ...expectedQuality(measurement, fps) };
}
