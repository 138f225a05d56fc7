// Network and latency statistics. Pure functions, shared by the lobby's pre-flight check and
// the viewer's stats overlay, and tested under Node.

// Quality ladder with the worker's default bitrates at 90 fps (workers/protocol/ladder.py).
export const RUNGS = ["4K", "2K", "1080p", "720p"];
export const RUNG_BITRATES = { "4K": 80e6, "2K": 40e6, "1080p": 25e6, "720p": 12e6 };

export function percentile(values, p) {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!xs.length) return null;
  if (xs.length === 1) return xs[0];
  const rank = (p / 100) * (xs.length - 1);
  const lo = Math.floor(rank), hi = Math.ceil(rank);
  return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo);
}

// Mean absolute difference of consecutive round trips (the RFC 3550 idea without smoothing).
export function jitter(rtts) {
  const xs = rtts.filter((v) => Number.isFinite(v));
  if (xs.length < 2) return 0;
  let sum = 0;
  for (let i = 1; i < xs.length; i++) sum += Math.abs(xs[i] - xs[i - 1]);
  return sum / (xs.length - 1);
}

// Bits per second of a download of `bytes` that took `ms`.
export function throughputBps(bytes, ms) {
  return ms > 0 ? (bytes * 8 * 1000) / ms : 0;
}

// What quality to expect from a measurement: the highest rung whose bitrate (scaled to the
// frame rate) fits in 80% of the measured throughput, lowered one rung for each of high
// RTT, high jitter and loss, because those are what make the controller step down.
export function expectedQuality({ rttMs, jitterMs, loss, throughputBps: bps }, fps = 90) {
  const scale = Math.max(fps, 1) / 90;
  let index = RUNGS.findIndex((r) => RUNG_BITRATES[r] * scale <= 0.8 * bps);
  const reasons = [];
  if (index < 0) {
    index = RUNGS.length - 1;
    reasons.push("throughput below the lowest rung's bitrate");
  }
  if (rttMs > 100) reasons.push(`round trip ${Math.round(rttMs)} ms`);
  if (jitterMs > 20) reasons.push(`jitter ${Math.round(jitterMs)} ms`);
  if (loss > 0.02) reasons.push(`loss ${(loss * 100).toFixed(1)}%`);
  const penalty = (rttMs > 100) + (jitterMs > 20) + (loss > 0.02);
  index = Math.min(RUNGS.length - 1, index + penalty);
  const poor = loss > 0.1 || rttMs > 250 || bps < RUNG_BITRATES["720p"] * scale * 0.5;
  return { quality: RUNGS[index], poor, reasons };
}

// Exponential backoff with jitter for reconnects: base * 2^attempt, capped, +-20%.
export function backoffDelay(attempt, { baseMs = 500, maxMs = 15000, spread = 0.2 } = {}, rand = Math.random) {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(raw * (1 - spread + 2 * spread * rand()));
}

// Rate of a counter between two samples {t (ms), value}; 0 when it cannot be known.
export function rate(prev, next) {
  if (!prev || !next || next.t <= prev.t || next.value < prev.value) return 0;
  return ((next.value - prev.value) * 1000) / (next.t - prev.t);
}

export function formatBitrate(bps) {
  if (!Number.isFinite(bps) || bps <= 0) return "–";
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} Mbit/s`;
  return `${Math.round(bps / 1e3)} kbit/s`;
}
