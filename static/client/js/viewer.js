// The viewer page /play/<session_id>/: session socket, stream, desktop preview with
// mouse-look and WASD, Enter VR, stats overlay, quality selector, participants, and the
// public debugging hook window.vrplatform.
import { api, ApiError, requireSignIn } from "./api.js";
import { banner, el, setupHeader } from "./dom.js";
import { clampPitch, eyeSourceRect, frameViews, moveDelta, pictureViews, quatFromYawPitch } from "./math.js";
import { FrameRate, frameStages, overheadRatio, Samples, StageStats } from "./framestats.js";
import { percentile } from "./netstats.js";
import { SessionSocket } from "./socket.js";
import { cropStamp, decodeStamp, DEFAULT_BLOCK, rgbaToLuma, STAMP_BLOCKS } from "./stamp.js";
import { statsLines } from "./statstext.js";
import { StreamClient } from "./stream.js";
import { setupVoiceControls, Voice } from "./voice.js";
import { loadComfort, runImmersive, setupComfortControls, xrState, xrSupported } from "./xr.js";

const config = JSON.parse(document.getElementById("client-config")?.textContent || "{}");
const sessionId = config.sessionId || document.getElementById("viewer").dataset.sessionId;
const params = new URLSearchParams(location.search);
const video = document.getElementById("video");
const canvas = document.getElementById("preview");
const ctx = canvas.getContext("2d");
const statusEl = document.getElementById("status");
const MOVE_SPEED = 1.5; // m/s
const LOOK_SPEED = 0.003; // rad per pixel

const state = {
  participants: new Map(), // participant_id -> member dict
  me: null,
  sessionState: "connecting",
  streamState: "idle",
  ended: false,
  framesShown: 0,
  frameRate: new FrameRate({ windowMs: 5000, staleMs: 3000 }), // decoded and displayed, sustained
  latencies: new Samples(3600), // pose-to-photon of recent frames (ms): about a minute
  stages: new StageStats(3600), // per-stage durations of the same frames (ms)
  firstFrameAt: null, // performance.now() of the current stream's first displayed frame
  streamFrames: null, // presentedFrames is per stream: a drop marks a new one
  lastFrameId: null,
  frameIdsRead: 0,
  shownMeta: null, // metadata of the frame on screen (matched by its stamped id)
  // {views, w, h}: the layout (1 one centre view, 2 side by side) and size of the last frame
  // whose metadata was matched.
  shownLayout: null,
  yaw: 0,
  pitch: 0,
  position: [0, 1.6, 3], // until the session says where the scene starts (applySpawn)
  spawn: null, // session_established scene.spawn: {source, position, yaw, pitch, scale}
  spawned: false,
  scene: null, // {clips, clip}: the scene's animation clips and the one playing
  keys: new Set(),
  inVr: false,
  tokenRenewals: 0, // rotated tokens the socket accepted (athena:wisdom_updated token_renewed)
};

// The session's message (connection lost, ended, forbidden) outranks the stream's.
const messages = { session: null, stream: null };
function notify(source, text, kind = "error") {
  messages[source] = text ? { text, kind } : null;
  const shown = messages.session || messages.stream;
  banner(shown?.text || "", shown?.kind);
}

function setStatus(text) {
  statusEl.textContent = text;
  statusEl.hidden = !text;
}

// ---------------------------------------------------------------- participants

function renderParticipants() {
  const list = document.getElementById("participants");
  list.replaceChildren(
    ...[...state.participants.values()].map((m) =>
      el("li", { className: m.connected === false ? "muted participant" : "participant", dataset: { participantId: m.participant_id } },
        `${m.display_name || m.username}${m.participant_id === state.me ? " (you)" : ""} · ${m.role}${m.connected === false ? " · away" : ""}`)),
  );
  showSpeaking();
}

// Speaking indicators on the participants list (voice.js levels), a few times a second.
let speakingNow = [];
function showSpeaking() {
  speakingNow = voice.speaking();
  for (const li of document.querySelectorAll("#participants li")) {
    const id = li.dataset.participantId;
    li.classList.toggle("speaking", speakingNow.includes(id) || (id === state.me && speakingNow.includes("me")));
  }
}
setInterval(showSpeaking, 150);

// ---------------------------------------------------------------- where the viewer starts

// The scene's start (workers/rendering/spawn.py): a camera of the scene, the creator's point,
// or outside the scene framing it as its thumbnail does. Positions are the eye in scene units;
// `scale` is scene units per metre (100 for a scene authored in centimetres), so walking speed
// grows with it, as the headset's eye height, reach and eye separation do. Applied once per
// page: a reconnect does not move a viewer who has walked off.
function applySpawn(spawn) {
  state.spawn = spawn || null;
  if (!spawn?.position || state.spawned) return;
  state.spawned = true;
  state.position = spawn.position.slice(0, 3).map(Number);
  state.yaw = Number(spawn.yaw) || 0;
  state.pitch = clampPitch(Number(spawn.pitch) || 0);
}
const spawnScale = () => (state.spawn?.scale > 0 ? state.spawn.scale : 1);

// The host picks the animation clip everyone sees (hermes:clip_change); others see its name.
function renderClips() {
  const label = document.getElementById("clip-label");
  const select = document.getElementById("clip");
  const clips = state.scene?.clips || [];
  label.hidden = clips.length < 2;
  select.replaceChildren(...clips.map((c) => el("option", { value: c.name }, `${c.name} (${Number(c.duration).toFixed(1)} s)`)));
  select.value = state.scene?.clip || "";
  const me = state.participants.get(state.me);
  select.disabled = me?.role !== "host";
  select.title = select.disabled ? "Only the session's host switches the animation." : "";
}

// ---------------------------------------------------------------- socket and stream

const socket = new SessionSocket(sessionId, { onEvent, onState: onSocketState });
const stream = new StreamClient({ sessionId, socket, video, onState: onStreamState });
const sbsToggle = document.getElementById("sbs-toggle");

// One view for the flat preview (the worker renders and sends one centre view: half the
// render, encode and decode work); both eyes side by side when asked, and always in VR.
function wantedViews() {
  return state.inVr || sbsToggle.checked ? 2 : 1;
}
stream.setViews(wantedViews());
const voice = new Voice(stream);
voice.onOperatorMute = (muted) =>
  banner(muted ? "An operator muted your microphone." : "An operator unmuted your microphone.", muted ? "warning" : "info");

function onSocketState(s, info = {}) {
  state.sessionState = s;
  if (s === "connected") {
    notify("session", null);
  } else if (s === "reconnecting") {
    notify("session", `Connection to the platform lost. Reconnecting in ${(info.delay / 1000).toFixed(1)} s…`, "warning");
  } else if (s === "ended") {
    sessionEnded();
  } else if (s === "forbidden") {
    notify("session", "You may not join this session (it may need an invite).");
    stream.stop();
  } else if (s === "not_found") {
    notify("session", "This session does not exist, or it is private.");
    stream.stop();
  } else if (s === "unauthenticated") {
    notify("session", "Your sign-in expired. Please sign in again.");
    stream.stop();
  }
}

function sessionEnded() {
  state.ended = true;
  stream.stop();
  socket.stop();
  setStatus("");
  messages.stream = null;
  notify("session", "This session has ended.", "info");
}

function onStreamState(s, info = {}) {
  if (state.ended) return; // the session is over: its message stays
  state.streamState = s;
  const text = {
    starting: "Starting the stream…",
    waiting_offer: "Waiting for the streaming worker…",
    queued: `All streaming workers are busy; you are number ${info.position ?? "?"} in the queue…`,
    connecting_media: "Connecting video…",
    streaming: "",
    interrupted: "Video interrupted; waiting for it to come back…",
    reconnecting: "Reconnecting the video…",
    retrying: `Restarting the stream in ${((info.delay || 0) / 1000).toFixed(1)} s…`,
    failed: info.message || "The stream failed.",
    ended: "",
  }[s];
  if (s === "failed") notify("stream", `${info.message || "The stream failed."} Retrying automatically.`, "warning");
  // A new attempt is under way (the status line says which stage): the last failure is stale.
  if (["starting", "queued", "waiting_offer", "connecting_media", "streaming"].includes(s)) notify("stream", null);
  if (s === "ended") sessionEnded();
  if (text !== undefined) setStatus(text);
}

let streamRequested = false;

function onEvent(event, data) {
  switch (event) {
    case "hermes:session_established":
      state.me = data.participant_id;
      state.participants = new Map((data.members || []).map((m) => [m.participant_id, m]));
      renderParticipants();
      state.scene = data.scene ? { clips: data.scene.clips || [], clip: data.scene.clip || "" } : null;
      applySpawn(data.scene?.spawn);
      renderClips();
      if (!streamRequested) {
        streamRequested = true;
        stream.start(document.getElementById("quality").value);
      } else {
        stream.retryNow(document.getElementById("quality").value);
      }
      break;
    case "hermes:participant_joined":
      state.participants.set(data.participant_id, { ...data, connected: true });
      renderParticipants();
      break;
    case "hermes:participant_left":
      state.participants.delete(data.participant_id);
      renderParticipants();
      break;
    case "hermes:session_ended":
      sessionEnded();
      break;
    case "hermes:clip_changed":
      if (state.scene) state.scene.clip = data.clip;
      renderClips();
      break;
    case "athena:wisdom_updated":
      if (data.reason === "token_renewed") state.tokenRenewals++;
      break;
    case "morpheus:quality_changed":
      document.getElementById("stats-text").dataset.quality = data.quality;
      stream.handleEvent(event, data);
      break;
    case "error":
      if (data.code === "session_ended") sessionEnded();
      else if (["not_host", "unknown_clip", "no_animation"].includes(data.code)) {
        banner(data.message, "warning");
        renderClips(); // back to the clip that plays
      } else if (data.code !== "rate_limited") console.warn("platform error", data.code, data.message);
      break;
    default:
      if (event.startsWith("morpheus:")) stream.handleEvent(event, data).catch((err) => onStreamState("failed", { message: err.message }));
  }
}

// ---------------------------------------------------------------- desktop preview

canvas.addEventListener("click", () => canvas.requestPointerLock?.());
canvas.addEventListener("mousemove", (event) => {
  // Pointer lock when the browser grants it; otherwise drag to look.
  if (document.pointerLockElement !== canvas && !(event.buttons & 1)) return;
  state.yaw -= event.movementX * LOOK_SPEED;
  state.pitch = clampPitch(state.pitch - event.movementY * LOOK_SPEED);
});
const MOVE_KEYS = new Set(["KeyW", "KeyA", "KeyS", "KeyD", "KeyQ", "KeyE", "Space", "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"]);
window.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
  if (MOVE_KEYS.has(event.code)) {
    state.keys.add(event.code);
    event.preventDefault();
  }
});
window.addEventListener("keyup", (event) => state.keys.delete(event.code));
window.addEventListener("blur", () => state.keys.clear());

// The layout of the picture on the video element: the one its metadata says (each frame
// follows meta.views, whatever the page asked for), the latest known before any is matched.
function shownViews() {
  const w = video.videoWidth, h = video.videoHeight;
  return state.shownLayout ? pictureViews(state.shownLayout, w, h) : frameViews(stream.latestMeta);
}

function drawPreview() {
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h || video.readyState < 2) return;
  // Side by side asked: the whole picture. Otherwise one view: a mono frame's whole picture,
  // a stereo frame's left eye.
  const view = sbsToggle.checked ? { x: 0, y: 0, w, h } : eyeSourceRect("left", w, h, shownViews());
  // The frame-id stamp's band along the top edge is not part of the view.
  const src = cropStamp(view);
  if (canvas.width !== src.w || canvas.height !== src.h) {
    canvas.width = src.w;
    canvas.height = src.h;
  }
  ctx.drawImage(video, src.x, src.y, src.w, src.h, 0, 0, src.w, src.h);
}

let lastTick = performance.now();
const frameIntervals = [];
function tick(now) {
  requestAnimationFrame(tick);
  // Voices are placed relative to where we are: the VR head (in the scene) or the camera.
  voice.setListener(state.inVr && xrState.world ? xrState.world : { p: state.position, q: quatFromYawPitch(state.yaw, state.pitch) });
  if (state.inVr) return; // the XR loop drives poses and drawing
  const interval = now - lastTick;
  if (interval > 0 && interval < 250) {
    frameIntervals.push(interval);
    if (frameIntervals.length > 60) frameIntervals.shift();
    if (frameIntervals.length >= 30) stream.displayHz = 1000 / percentile(frameIntervals, 50);
  }
  const dt = Math.min(0.1, interval / 1000);
  lastTick = now;
  const d = moveDelta(state.keys, state.yaw, MOVE_SPEED * spawnScale() * dt);
  state.position = state.position.map((v, i) => v + d[i]);
  stream.sendPose({ p: state.position, q: quatFromYawPitch(state.yaw, state.pitch) });
  // With requestVideoFrameCallback each new frame is drawn as it arrives (onVideoFrame): a
  // copy per animation frame drew every picture two or three times, for nothing but CPU.
  if (!HAS_RVFC || previewStale) {
    previewStale = false;
    drawPreview();
  }
}
const HAS_RVFC = "requestVideoFrameCallback" in HTMLVideoElement.prototype;
let previewStale = true; // the view changed (both eyes / one eye) without a new frame
sbsToggle.addEventListener("change", () => {
  previewStale = true;
  stream.setViews(wantedViews());
});
requestAnimationFrame(tick);

// Per decoded frame: read the stamped frame id, match its metadata, measure pose-to-photon.
const stampCanvas = document.createElement("canvas");
stampCanvas.width = STAMP_BLOCKS * DEFAULT_BLOCK;
stampCanvas.height = DEFAULT_BLOCK;
const stampCtx = stampCanvas.getContext("2d", { willReadFrequently: true });

function readFrameId() {
  if (video.videoWidth < stampCanvas.width || video.videoHeight < stampCanvas.height) return null;
  stampCtx.drawImage(video, 0, 0, stampCanvas.width, stampCanvas.height, 0, 0, stampCanvas.width, stampCanvas.height);
  const { data } = stampCtx.getImageData(0, 0, stampCanvas.width, stampCanvas.height);
  return decodeStamp(rgbaToLuma(data), stampCanvas.width, DEFAULT_BLOCK);
}

function onVideoFrame(now, metadata = {}) {
  video.requestVideoFrameCallback(onVideoFrame);
  // The frame's id and metadata first: its layout (one view or both eyes) says what to draw.
  const id = readFrameId();
  const matched = id !== null ? stream.metas.get(id) : undefined;
  if (matched) state.shownLayout = { views: frameViews(matched), w: video.videoWidth, h: video.videoHeight };
  drawPreview(); // at once: the next composite shows it, not the one after the next tick
  // When the page's main thread runs late, the callback's expected display time (from the
  // frame's begin time) can already be past: the picture cannot show before this callback,
  // which also draws it into the preview.
  const shownAt = Math.max(metadata.expectedDisplayTime || now, performance.now());
  state.framesShown++;
  const presented = Number.isFinite(metadata.presentedFrames) ? metadata.presentedFrames : state.framesShown;
  if (state.streamFrames === null || presented < state.streamFrames) state.firstFrameAt = now;
  state.streamFrames = presented;
  state.frameRate.push(shownAt, presented);
  if (id !== null) {
    state.lastFrameId = id;
    state.frameIdsRead++;
  }
  // Only a frame whose id was read is measured: the latest metadata may belong to a frame
  // still on its way.
  const meta = matched || stream.latestMeta;
  if (meta) state.shownMeta = meta;
  const sent = matched ? stream.poseSent.get(matched.pose_seq) : undefined;
  if (sent === undefined) return;
  state.latencies.push(shownAt - sent);
  const origin = performance.timeOrigin;
  const at = (ms) => (Number.isFinite(ms) && ms > 0 ? origin + ms : undefined);
  state.stages.push(
    frameStages(
      matched.t,
      {
        poseSentMs: origin + sent,
        receivedMs: at(metadata.receiveTime),
        presentedMs: at(metadata.presentationTime) ?? origin + now,
        displayMs: origin + shownAt,
      },
      stream.clock.offsetMs ?? 0,
    ),
  );
}
if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) video.requestVideoFrameCallback(onVideoFrame);

// ---------------------------------------------------------------- stats, quality, hook

const round1 = (v) => (v === null || v === undefined || !Number.isFinite(v) ? null : Math.round(v * 10) / 10);

function stats() {
  const rtc = stream.rtc;
  const p50 = state.latencies.p(50);
  const stageP50 = state.stages.p50s();
  const ratio = overheadRatio(p50, stageP50);
  return {
    framesDecoded: Math.max(rtc.framesDecoded, state.framesShown),
    framesShown: state.framesShown,
    // The page's animation-frame rate: the worker paces the stream at no more than this.
    displayHz: round1(stream.displayHz),
    // Below 1 the worker renders (and sends) a smaller picture to hold the frame rate.
    renderScale: state.shownMeta?.scale ?? 1,
    // The layout of the picture on screen (1: one centre view, 2: both eyes side by side) and
    // the one asked of the worker (1 for the flat preview; it may still send 2).
    views: shownViews(),
    viewsAsked: stream.views,
    videoSize: [video.videoWidth, video.videoHeight],
    // Decoded and displayed per second over the last 5 s.
    fps: round1(state.frameRate.fps(performance.now())),
    // Pose sent -> frame rendered from it on screen (browser clock only), recent frames.
    latencyMs: round1(p50),
    latencyP50Ms: round1(p50),
    latencyP99Ms: round1(state.latencies.p(99)),
    latencySamples: state.latencies.length,
    stagesMs: Object.fromEntries(Object.entries(stageP50).map(([k, v]) => [k, round1(v)])),
    stageSamples: state.stages.counts(),
    overheadRatio: ratio === null ? null : Math.round(ratio * 100) / 100,
    // Worker clock minus ours, estimated from poses up and frame metadata down.
    clockOffsetMs: round1(stream.clock.offsetMs),
    streamAgeS: state.firstFrameAt === null ? null : round1((performance.now() - state.firstFrameAt) / 1000),
    jitterBufferMs: round1(rtc.jitterBufferMs),
    jitterBufferTargetDelayMs: round1(rtc.jitterBufferTargetMs),
    jitterBufferMinimumDelayMs: round1(rtc.jitterBufferMinimumMs),
    jitterBufferTarget: stream.receiverJitterBufferTarget,
    decodeMs: round1(rtc.decodeMsNow ?? rtc.decodeMs),
    framesDropped: rtc.framesDropped,
    quality: stream.quality,
    requestedQuality: document.getElementById("quality").value,
    encoder: stream.encoder,
    // The ICE candidate pair the video arrives on (relay: through the TURN server), the
    // transport policy the platform set, and the ICE restarts asked for.
    candidatePair: stream.candidatePair ?? null,
    iceTransportPolicy: stream.ice?.ice_transport_policy ?? null,
    iceRestarts: stream.iceRestarts,
    bitrate: Math.round(rtc.bitrate),
    packetLoss: rtc.loss,
    rttMs: rtc.rttMs ?? socket.lastRttMs,
    connected: socket.connected,
    streaming: stream.connected,
    sessionState: state.sessionState,
    streamState: state.streamState,
    streamId: stream.streamId,
    reconnects: socket.reconnects,
    lastFrameId: state.lastFrameId,
    frameIdsRead: state.frameIdsRead,
    ended: state.ended,
    inVr: state.inVr,
    tokenRenewals: state.tokenRenewals,
    pose: { p: state.position.slice(), yaw: state.yaw, pitch: state.pitch },
    spawn: state.spawn,
    clip: state.scene?.clip ?? null,
    participants: [...state.participants.values()].map((m) => ({ participant_id: m.participant_id, username: m.username, role: m.role, connected: m.connected !== false })),
  };
}

function renderStats() {
  document.getElementById("stats-text").textContent = statsLines(stats()).join("\n");
}
setInterval(() => {
  if (!document.getElementById("stats").hidden) renderStats();
}, 500);

document.getElementById("stats-toggle").addEventListener("change", (event) => {
  document.getElementById("stats").hidden = !event.target.checked;
  renderStats();
});
window.addEventListener("keydown", (event) => {
  if (event.code === "F3" || (event.code === "KeyI" && event.shiftKey)) {
    const toggle = document.getElementById("stats-toggle");
    toggle.checked = !toggle.checked;
    toggle.dispatchEvent(new Event("change"));
  }
});
document.getElementById("clip").addEventListener("change", (event) => {
  socket.send("hermes:clip_change", { clip: event.target.value });
});
document.getElementById("quality").addEventListener("change", (event) => {
  stream.requestedQuality = event.target.value;
  stream.setQuality(event.target.value);
});
document.getElementById("copy-invite").addEventListener("click", async () => {
  const url = new URL(location.href);
  if (state.inviteToken) url.searchParams.set("invite", state.inviteToken);
  await navigator.clipboard?.writeText(url.toString()).catch(() => {});
  banner(`Invite link: ${url}`, "info");
});

window.vrplatform = Object.freeze({
  stats,
  setQuality: (q) => {
    document.getElementById("quality").value = q;
    stream.requestedQuality = q;
    return stream.setQuality(q);
  },
  dropConnection: () => socket.drop(),
  // Ask for an ICE restart as a lost media path would (tests, and a stuck picture).
  restartIce: () => stream.requestIceRestart(),
  // The worker's metadata of a frame (by stamped id) while the page still holds it.
  frameMeta: (id) => {
    const meta = stream.metas.get(id);
    return meta ? JSON.parse(JSON.stringify(meta)) : null;
  },
  // Receiver jitter-buffer target in ms (null: the browser's default); for measurements.
  setJitterBufferTarget: (ms) => stream.setJitterBufferTarget(ms),
  // Forget the figures so far (a benchmark's warm-up).
  resetStats: () => {
    state.latencies.clear();
    state.stages.clear();
  },
  voice: () => ({ ...voice.stats(), speaking: speakingNow.slice() }),
  xr: () => JSON.parse(JSON.stringify({ ...xrState, renderPose: state.shownMeta?.pose || null, workerErrors: stream.workerErrors })),
});

// ---------------------------------------------------------------- Enter VR

// What VR shows over the picture: the session's or the stream's trouble, in words.
function vrMessage() {
  if (state.ended) return "This session has ended.";
  if (messages.session) return messages.session.text;
  if (state.streamState !== "streaming") return statusEl.textContent || "The stream is not running.";
  return null;
}

async function setupVr() {
  xrState.supported = await xrSupported();
  if (!xrState.supported) return;
  const comfort = loadComfort();
  setupComfortControls(comfort);
  const button = document.getElementById("enter-vr");
  button.hidden = false;
  button.addEventListener("click", async () => {
    // In the headset each eye has its own view: both are asked for while it lasts.
    const setInVr = (inVr) => {
      state.inVr = inVr;
      previewStale = true;
      stream.setViews(wantedViews());
    };
    try {
      setInVr(true);
      await runImmersive({
        video,
        stream,
        renderPose: () => state.shownMeta?.pose || null,
        // Mono frames still on their way when VR starts fill each eye whole.
        frameViews: shownViews,
        message: vrMessage,
        comfort,
        voice,
        spawn: state.spawn,
        onEnd: () => setInVr(false),
      });
    } catch (err) {
      setInVr(false);
      banner(`Could not enter VR: ${err.message}`);
    }
  });
}

// ---------------------------------------------------------------- start

async function start() {
  if (!requireSignIn()) return;
  setupHeader();
  try {
    const invite = params.get("invite");
    if (invite) {
      const joined = await api(`/api/hermes/sessions/${sessionId}/join`, { method: "POST", body: { invite_token: invite } });
      state.inviteToken = joined.session.invite_token || invite;
    }
    const status = await api(`/api/hermes/session_status/${sessionId}`);
    state.inviteToken = state.inviteToken || status.invite_token;
    document.title = `${status.name} · VR Platform`;
    if (status.status === "ended") {
      state.ended = true;
      banner("This session has ended.", "info");
      setStatus("");
      return;
    }
  } catch (err) {
    if (err instanceof ApiError && err.code === "session_ended") {
      state.ended = true;
      banner("This session has ended.", "info");
      setStatus("");
      return;
    }
    if (!(err instanceof ApiError && err.status === 404)) {
      banner(`Could not open the session: ${err.message}`);
      return;
    }
    // Not a member yet of a public session: the socket joins us.
  }
  socket.connect();
  setupVr();
  setupVoiceControls(voice, showSpeaking);
}

window.addEventListener("offline", () => notify("session", "The network is offline. Reconnecting when it returns…", "warning"));
window.addEventListener("beforeunload", () => {
  socket.stop();
  stream.stop();
});
start();
