import { api, ApiError, requireSignIn } from "./api.js";
import { banner, el, setupHeader } from "./dom.js";
import { relayCheck, runNetcheck } from "./netcheck.js";
import { formatBitrate } from "./netstats.js";

const config = JSON.parse(document.getElementById("client-config")?.textContent || "{}");
const me = requireSignIn();
setupHeader();

const thumbnails = new Map(); // url -> object URL (thumbnails need the bearer token)

async function thumbnail(url) {
  if (!thumbnails.has(url)) {
    const response = await api(url, { raw: true });
    thumbnails.set(url, URL.createObjectURL(await response.blob()));
  }
  return thumbnails.get(url);
}

async function loadScenes() {
  const list = document.getElementById("scenes");
  const body = await api("/api/daedalus/scenes");
  const scenes = (Array.isArray(body) ? body : body.results || []).filter((s) => s.published_version);
  list.replaceChildren();
  document.getElementById("scenes-empty").hidden = scenes.length > 0;
  for (const scene of scenes) {
    const img = el("img", { alt: `${scene.name} thumbnail`, className: "thumb" });
    if (scene.thumbnail_url) thumbnail(scene.thumbnail_url).then((src) => (img.src = src)).catch(() => {});
    const button = el("button", {
      textContent: "Create session",
      className: "create-session",
      dataset: { sceneId: scene.id },
      onclick: () => createSession(scene),
    });
    list.append(
      el("li", { className: "scene", dataset: { sceneId: scene.id } },
        img, el("h3", { textContent: scene.name }), el("p", { className: "muted", textContent: scene.description || "" }), button),
    );
  }
}

async function createSession(scene) {
  banner("");
  try {
    const session = await api("/api/hermes/session_create", {
      method: "POST",
      body: { name: `${scene.name} with ${me.user?.username || "friends"}`, scene_version: scene.published_version.id },
    });
    location.assign(`/play/${session.id}/`);
  } catch (err) {
    banner(err.code === "session_limit_reached" ? "The platform is full right now; try again later." : `Could not create a session: ${err.message}`);
  }
}

async function participantCount(session) {
  if (Number.isInteger(session.participant_count)) return session.participant_count;
  try {
    const status = await api(`/api/hermes/session_status/${session.id}`);
    return status.participants.length;
  } catch {
    return null;
  }
}

function inviteLink(session) {
  const url = new URL(`/play/${session.id}/`, location.origin);
  if (session.invite_token) url.searchParams.set("invite", session.invite_token);
  return url.toString();
}

async function loadSessions() {
  const list = document.getElementById("sessions");
  const sessions = (await api("/api/hermes/sessions")).filter((s) => s.status !== "ended").slice(0, 50);
  const counts = await Promise.all(sessions.map(participantCount));
  list.replaceChildren();
  document.getElementById("sessions-empty").hidden = sessions.length > 0;
  sessions.forEach((session, i) => {
    const count = counts[i];
    const invite = el("button", {
      className: "link copy-invite",
      textContent: "Copy invite link",
      onclick: async () => {
        await navigator.clipboard?.writeText(inviteLink(session)).catch(() => {});
        banner(`Invite link: ${inviteLink(session)}`, "info");
      },
    });
    list.append(
      el("li", { className: "session", dataset: { sessionId: session.id } },
        el("strong", { textContent: session.name }),
        el("span", { className: "muted count", textContent: ` ${count ?? "?"} / ${session.max_participants} participants · ${session.status} · host ${session.owner.username} ` }),
        el("a", { href: `/play/${session.id}/`, className: "button join", textContent: "Join" }),
        invite),
    );
  });
}

const RELAY_TEXT = {
  relay_only: "The platform sends all video through its relay (TURN).",
  needed: "This network lets no UDP out: video will go through the platform's relay (TURN over TCP or with relayed UDP).",
  fallback: "Direct video connections should work here; the platform's relay (TURN) is there if they do not.",
  unavailable: "The platform's relay (TURN) could not be reached from here: video needs a direct connection.",
  no_relay: "The platform has no relay (TURN) configured: video needs a direct connection (fine on a LAN).",
};

// Whether video will need the TURN relay from this network, and its round trip (netcheck.js).
async function relayPreflight() {
  const out = document.getElementById("netcheck-relay");
  if (!out) return;
  out.textContent = "Checking whether video needs a relay…";
  try {
    const r = await relayCheck();
    out.dataset.verdict = r.verdict;
    const rtt = r.relayRttMs === null ? "" : ` Round trip through the relay: ${Math.round(r.relayRttMs)} ms${r.relayProtocol ? ` (${r.relayProtocol})` : ""}.`;
    out.textContent = RELAY_TEXT[r.verdict] + rtt;
  } catch (err) {
    out.dataset.verdict = "error";
    out.textContent = `Relay check failed: ${err.message}`;
  }
}

async function netcheck() {
  const out = document.getElementById("netcheck-result");
  out.textContent = "Measuring the connection to the platform…";
  try {
    const r = await runNetcheck(config.targetFps || 90);
    out.dataset.quality = r.quality;
    out.textContent =
      `Round trip ${Math.round(r.rttMs)} ms, jitter ${r.jitterMs.toFixed(1)} ms, loss ${(r.loss * 100).toFixed(0)}%, ` +
      `throughput ${formatBitrate(r.throughputBps)}. Expected quality: ${r.quality}` +
      (r.reasons.length ? ` (limited by ${r.reasons.join(", ")})` : "") +
      (r.poor ? ". This connection is likely too weak for smooth VR." : ".");
    relayPreflight();
  } catch (err) {
    out.textContent = `Network check failed: ${err.message}`;
  }
}

async function refresh() {
  try {
    await Promise.all([loadScenes(), loadSessions()]);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) banner(`Could not load the lobby: ${err.message}`);
  }
}

if (me) {
  document.getElementById("netcheck-run").addEventListener("click", netcheck);
  refresh().then(netcheck);
  setInterval(loadSessions, 10_000);
}
