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

// Does this network need the TURN relay, and what does the relay cost? With the platform's
// ICE servers (GET /api/morpheus/ice_servers, our own TURN credentials) two peer connections
// in this page gather candidates, then connect to each other through the relay only (each
// ends at the relay), and the selected pair's round trip is measured. Verdict:
//   "relay_only"  the platform sends every stream through the relay (ICE_TRANSPORT_POLICY=relay)
//   "needed"      UDP does not get out of this network (a STUN server is configured and gave
//                 no reflexive candidate, or the relay is reachable only over TCP)
//   "fallback"    direct (or NAT-traversed) connections should work; the relay is there if not
//   "unavailable" no TURN server configured, or it refused us / could not be reached
//   "no_relay"    no TURN configured: direct connections only (a LAN)
const GATHER_TIMEOUT_MS = 4000;
const CONNECT_TIMEOUT_MS = 5000;

function gather(pc, timeoutMs) {
  return new Promise((resolve) => {
    const found = [];
    const done = () => resolve(found);
    const timer = setTimeout(done, timeoutMs);
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && candidate.candidate) found.push(candidate);
      else {
        clearTimeout(timer);
        done();
      }
    };
  });
}

async function relayRoundTripMs(config) {
  const options = { iceServers: config.ice_servers, iceTransportPolicy: "relay" };
  const a = new RTCPeerConnection(options);
  const b = new RTCPeerConnection(options);
  try {
    a.onicecandidate = ({ candidate }) => candidate && b.addIceCandidate(candidate).catch(() => {});
    b.onicecandidate = ({ candidate }) => candidate && a.addIceCandidate(candidate).catch(() => {});
    const channel = a.createDataChannel("relay-check");
    const opened = new Promise((resolve) => {
      channel.onopen = () => resolve(true);
      setTimeout(() => resolve(false), CONNECT_TIMEOUT_MS);
    });
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription);
    if (!(await opened)) return null;
    // The first RTT sample comes with the first STUN consent check after connecting.
    for (let i = 0; i < 20; i++) {
      const stats = await a.getStats();
      let rtt = null;
      stats.forEach((s) => {
        if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime != null) rtt = s.currentRoundTripTime * 1000;
      });
      if (rtt !== null) return rtt;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return null;
  } finally {
    a.close();
    b.close();
  }
}

export async function relayCheck() {
  const config = await api("/api/morpheus/ice_servers");
  const urls = config.ice_servers.flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]));
  const hasTurn = urls.some((u) => u.startsWith("turn"));
  const hasStun = urls.some((u) => u.startsWith("stun"));
  if (!hasTurn) return { verdict: "no_relay", policy: config.ice_transport_policy, relayRttMs: null, relayProtocol: null };
  const pc = new RTCPeerConnection({ iceServers: config.ice_servers });
  let candidates;
  try {
    pc.createDataChannel("gather");
    const gathered = gather(pc, GATHER_TIMEOUT_MS);
    await pc.setLocalDescription(await pc.createOffer());
    candidates = await gathered;
  } finally {
    pc.close();
  }
  const types = new Set(candidates.map((c) => c.type));
  const relays = candidates.filter((c) => c.type === "relay");
  // The protocol between us and the TURN server (Chrome names it in the candidate's relayProtocol).
  const relayProtocol = relays.some((c) => c.relayProtocol === "udp") ? "udp" : relays[0]?.relayProtocol || null;
  const relayRttMs = relays.length ? await relayRoundTripMs(config) : null;
  let verdict;
  if (!relays.length) verdict = "unavailable";
  else if (config.ice_transport_policy === "relay") verdict = "relay_only";
  else if ((hasStun && !types.has("srflx")) || relayProtocol !== "udp") verdict = "needed";
  else verdict = "fallback";
  return { verdict, policy: config.ice_transport_policy, relayRttMs, relayProtocol, candidateTypes: [...types].sort() };
}
