// The WebRTC side of the viewer. The worker makes the offer (morpheus:render_started); we
// answer over the session socket (morpheus:signal) and trickle our ICE candidates the same
// way. The worker opens two data channels: `pose` (we send head poses) and `frames` (it sends
// per-frame metadata; we send decode feedback back).
//
// Receive side latency: Chrome holds decoded frames in a jitter buffer sized from the arrival
// jitter it has seen. `receiver.jitterBufferTarget` (the standard knob, ms) set to 0 asks for
// the least buffering; `playoutDelayHint` (seconds) is Chrome's older non-standard name for the
// same and is set where it exists. Neither can go below what the jitter estimate needs; only
// the sender's playout-delay RTP header extension (min=max=0) switches Chrome to rendering
// frames as they decode, and aiortc does not send it.
import { api, ApiError } from "./api.js";
import { ClockOffset, perFrameMs } from "./framestats.js";
import { poseMessage } from "./math.js";
import { backoffDelay, rate } from "./netstats.js";

const META_KEEP = 512;
// ICE restart (see requestIceRestart): how long `disconnected` may last before we ask for
// one, how long a restart may take before we ask again, and after how many fruitless ones
// the stream is restarted from scratch instead.
const DISCONNECTED_GRACE_MS = 1500;
const ICE_RESTART_RETRY_MS = 4000;
const ICE_RESTARTS_BEFORE_NEW_STREAM = 8;
// Renew TURN credentials (by an ICE restart: both ends get fresh ones) this long before they
// expire.
const ICE_RENEW_BEFORE_S = 300;
const POSE_KEEP = 1024;

export class StreamClient {
  constructor({ sessionId, socket, video, onState, onMeta }) {
    this.sessionId = sessionId;
    this.socket = socket;
    this.video = video;
    this.onState = onState;
    this.onMeta = onMeta || (() => {});
    this.pc = null;
    this.streamId = null;
    this.quality = null;
    this.encoder = null;
    this.poseChannel = null;
    this.framesChannel = null;
    this.metas = new Map(); // frame_id -> meta
    this.latestMeta = null;
    this.workerErrors = []; // recent {code, message} the worker sent about our input
    this.poseSent = new Map(); // seq -> performance.now() at send
    this.seq = 0;
    this.displayHz = 0; // set by the page from its animation frames (or the XR session)
    // How many views the page shows (setViews): 1 a flat desktop view (the worker then sends
    // one centre view, half the pixels), 2 both eyes (side by side, or in a headset).
    this.views = 2;
    this.attempt = 0;
    this.restartTimer = null;
    this.ice = null; // the last ICE configuration the platform gave (render_started, ice_servers)
    this.iceRestarts = 0; // asked for since the stream started
    this.iceRestartTries = 0; // in a row, without getting connected
    this.iceTimer = null;
    this.renewTimer = null;
    this.stopped = false;
    this.rtc = { framesDecoded: 0, packetsLost: 0, packetsReceived: 0, bitrate: 0, rttMs: null, loss: 0, fps: 0, framesDropped: 0 };
    this.prev = null;
    this.clock = new ClockOffset(); // worker clock minus ours, from poses up and metadata down
    // Receiver jitter-buffer target in ms; null leaves the browser's default.
    this.jitterBufferTarget = 0;
    this.statsTimer = setInterval(() => this.collectStats().catch(() => {}), 1000);
  }

  get connected() {
    return this.pc?.connectionState === "connected";
  }

  async start(quality) {
    if (this.stopped) return;
    this.onState("starting");
    try {
      const stream = await api("/api/morpheus/render_start", {
        method: "POST",
        body: quality && quality !== "auto" ? { session_id: this.sessionId, quality } : { session_id: this.sessionId },
      });
      this.streamId = stream.stream_id;
      this.quality = stream.quality_rung || this.quality;
      this.encoder = stream.encoder || this.encoder;
      // The offer may already be there (we missed the event, e.g. across a reconnect).
      if (stream.offer && !this.pc) await this.answer({ stream_id: stream.stream_id, offer: stream.offer, quality: stream.quality_rung, encoder: stream.encoder });
      else if (!this.pc) this.onState("waiting_offer");
    } catch (err) {
      if (this.stopped) return;
      if (err instanceof ApiError && err.code === "no_capacity") {
        this.streamId = err.detail?.stream_id || null;
        this.onState("queued", { position: err.detail?.queue_position });
        return; // morpheus:render_started arrives when a worker frees up
      }
      this.onState("failed", { message: err.message });
      this.scheduleRestart();
    }
  }

  // Session-socket events for the stream.
  async handleEvent(event, data) {
    if (event === "morpheus:render_started") {
      // Already answering this one, unless we asked for an ICE restart: then it is the new offer.
      if (this.pc && data.stream_id === this.streamId && !this.iceTimer) return;
      this.closePeer();
      await this.answer(data);
    } else if (event === "morpheus:signal" && data.stream_id === this.streamId && data.candidate && this.pc) {
      await this.pc.addIceCandidate(data.candidate).catch(() => {});
    } else if (event === "morpheus:quality_changed" && data.stream_id === this.streamId) {
      this.quality = data.quality;
    } else if (event === "morpheus:render_stopped" && data.stream_id === this.streamId) {
      this.closePeer();
      if (data.reason === "session_ended") {
        this.onState("ended");
        return;
      }
      this.onState("failed", { message: `The stream stopped (${data.reason || "unknown reason"}).` });
      this.streamId = null;
      this.scheduleRestart();
    }
  }

  async answer({ stream_id: streamId, offer, quality, encoder, ice }) {
    this.streamId = streamId;
    this.quality = quality || this.quality;
    this.encoder = encoder || this.encoder;
    if (ice || !this.ice || this.iceExpired()) {
      this.ice = ice || (await this.fetchIce());
      this.iceReceivedAt = Date.now() / 1000;
    }
    const pc = new RTCPeerConnection({
      iceServers: this.ice?.ice_servers || [],
      iceTransportPolicy: this.ice?.ice_transport_policy || "all",
    });
    this.pc = pc;
    this.scheduleIceRenewal();
    pc.ontrack = (event) => {
      if (event.track.kind === "audio") {
        this.onAudioTrack?.(event); // other participants' voices (voice.js)
        return;
      }
      if (event.track.kind === "video") this.applyReceiverSettings(event.receiver);
      if (this.video.srcObject !== event.streams[0]) {
        this.video.srcObject = event.streams[0] || new MediaStream([event.track]);
        this.video.play().catch(() => {});
      }
    };
    pc.ondatachannel = ({ channel }) => {
      if (channel.label === "pose") this.poseChannel = channel;
      if (channel.label === "events") channel.onmessage = (message) => this.onWorkerEvent(message.data);
      if (channel.label === "frames") {
        this.framesChannel = channel;
        channel.onmessage = (message) => this.onFrameMeta(message.data);
        // A new stream starts side by side: one view is asked for at once, not a second later.
        const hello = () => {
          if (this.views !== 2) this.sendFeedback(this.feedbackMessage());
        };
        if (channel.readyState === "open") hello();
        else channel.addEventListener("open", hello, { once: true });
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && candidate.candidate) {
        this.socket.send("morpheus:signal", {
          stream_id: streamId,
          candidate: { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex },
        });
      }
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      const state = pc.connectionState;
      if (state === "connected") {
        this.attempt = 0;
        this.iceRestartTries = 0;
        clearTimeout(this.iceTimer);
        this.iceTimer = null;
        this.onState("streaming");
      } else if (state === "failed") {
        this.requestIceRestart();
      } else if (state === "disconnected") {
        // Often back by itself within a second (a lost burst); otherwise restart ICE.
        this.onState("reconnecting");
        setTimeout(() => {
          if (pc === this.pc && pc.connectionState === "disconnected") this.requestIceRestart();
        }, DISCONNECTED_GRACE_MS);
      }
    };
    await pc.setRemoteDescription(offer);
    // The worker's first audio m-line takes our microphone (voice.js); we send on it from the
    // start so the mic can come and go later without a renegotiation.
    const micLine = pc.getTransceivers().find((t) => t.receiver.track?.kind === "audio");
    if (micLine) {
      micLine.direction = "sendonly";
      this.micSender = micLine.sender;
      if (this.micTrack) await this.micSender.replaceTrack(this.micTrack);
    }
    await pc.setLocalDescription(await pc.createAnswer());
    this.socket.send("morpheus:signal", { stream_id: streamId, answer: { type: "answer", sdp: pc.localDescription.sdp } });
    this.onState("connecting_media");
  }

  // The media path is lost (the network changed, a Wi-Fi roam, a NAT binding gone): ask the
  // platform for an ICE restart over the session socket. The worker builds a fresh peer for
  // the same stream (aiortc cannot restart ICE in place) and sends a new offer, which arrives
  // as morpheus:render_started with the same stream id; the session and participant stay.
  // Repeated while the network is still down; after several fruitless tries, a new stream.
  requestIceRestart() {
    if (this.stopped || !this.streamId) return;
    clearTimeout(this.iceTimer);
    if (this.iceRestartTries >= ICE_RESTARTS_BEFORE_NEW_STREAM) {
      this.iceTimer = null;
      this.iceRestartTries = 0;
      this.onState("failed", { message: "The video connection failed." });
      this.restart();
      return;
    }
    this.iceRestartTries++;
    this.iceRestarts++;
    this.onState("reconnecting");
    this.socket.send("morpheus:signal", { stream_id: this.streamId, restart: true });
    this.iceTimer = setTimeout(() => this.requestIceRestart(), ICE_RESTART_RETRY_MS);
  }

  async fetchIce() {
    try {
      return await api("/api/morpheus/ice_servers");
    } catch (err) {
      console.warn("ICE servers unavailable", err);
      return null;
    }
  }

  iceExpired() {
    const expires = this.ice?.expires_at;
    return Boolean(expires) && expires - Date.now() / 1000 < this.renewBeforeS();
  }

  // A fifth of the credentials' lifetime before they expire, at most ICE_RENEW_BEFORE_S.
  renewBeforeS() {
    const lifetime = (this.ice?.expires_at || 0) - (this.iceReceivedAt || 0);
    return Math.min(ICE_RENEW_BEFORE_S, Math.max(0, lifetime) * 0.2);
  }

  // TURN credentials expire (TURN_CREDENTIAL_TTL_S); coturn then refuses the allocation's
  // refreshes and a relayed stream would stop. Before that, an ICE restart gives both ends
  // fresh ones.
  scheduleIceRenewal() {
    clearTimeout(this.renewTimer);
    const expires = this.ice?.expires_at;
    if (!expires) return;
    const inMs = Math.max(10_000, (expires - this.renewBeforeS()) * 1000 - Date.now());
    this.renewTimer = setTimeout(() => {
      this.ice = null; // the new offer brings fresh credentials
      if (this.pc) this.requestIceRestart();
    }, inMs);
  }

  onFrameMeta(text) {
    let meta;
    try {
      meta = JSON.parse(text);
    } catch {
      return;
    }
    if (!Number.isInteger(meta.frame_id)) return;
    const arrived = performance.timeOrigin + performance.now();
    const t = meta.t && typeof meta.t === "object" ? meta.t : {};
    this.clock.addDown(t.send, arrived);
    const sent = this.poseSent.get(meta.pose_seq);
    if (sent !== undefined) this.clock.addUp(performance.timeOrigin + sent, t.pose_rx);
    this.metas.set(meta.frame_id, meta);
    if (this.metas.size > META_KEEP) this.metas.delete(this.metas.keys().next().value);
    this.latestMeta = meta;
    if (meta.rung) this.quality = meta.rung;
    this.onMeta(meta);
  }

  async setMic(track) {
    this.micTrack = track;
    if (this.micSender) await this.micSender.replaceTrack(track);
  }

  // The worker's `events` channel: error events about what we sent (bad or flooding input),
  // and which voice each audio slot carries.
  onWorkerEvent(text) {
    try {
      const { error, voice } = JSON.parse(text);
      if (voice) this.onVoice?.(voice);
      if (error?.code) {
        this.workerErrors.push({ code: String(error.code), message: String(error.message || "") });
        if (this.workerErrors.length > 20) this.workerErrors.shift();
        console.warn("worker error", error.code, error.message);
      }
    } catch {
      // not ours to crash on
    }
  }

  // Send one head pose; returns its seq (or null when the channel is not open).
  sendPose({ p, q, hands, proj, xr }) {
    if (this.poseChannel?.readyState !== "open") return null;
    const seq = ++this.seq;
    const now = performance.now();
    this.poseChannel.send(JSON.stringify(poseMessage({ p, q, t: performance.timeOrigin + now, seq, hands, proj, xr })));
    this.poseSent.set(seq, now);
    if (this.poseSent.size > POSE_KEEP) this.poseSent.delete(this.poseSent.keys().next().value);
    return seq;
  }

  // ms, or null for the browser's default; applies to the current stream and the next ones.
  setJitterBufferTarget(ms) {
    this.jitterBufferTarget = ms === null || ms === undefined ? null : Math.max(0, Math.min(4000, Number(ms)));
    for (const receiver of this.pc?.getReceivers() || []) {
      if (receiver.track?.kind === "video") this.applyReceiverSettings(receiver);
    }
  }

  applyReceiverSettings(receiver) {
    const ms = this.jitterBufferTarget;
    try {
      if ("jitterBufferTarget" in receiver) receiver.jitterBufferTarget = ms;
      if ("playoutDelayHint" in receiver) receiver.playoutDelayHint = ms === null ? null : ms / 1000;
    } catch (err) {
      console.warn("jitter buffer target not applied", err);
    }
  }

  // What the video receiver is set to now (null: the browser's default or unsupported).
  get receiverJitterBufferTarget() {
    const receiver = this.pc?.getReceivers().find((r) => r.track?.kind === "video");
    return receiver && "jitterBufferTarget" in receiver ? receiver.jitterBufferTarget : null;
  }

  sendFeedback(feedback) {
    if (this.framesChannel?.readyState === "open") this.framesChannel.send(JSON.stringify(feedback));
  }

  // The decode feedback for the `frames` channel (workers/protocol/frames.py ClientFeedback).
  feedbackMessage() {
    return {
      decode_ms: this.rtc.decodeMs || 0,
      frames_decoded: this.rtc.framesDecoded,
      frames_dropped: this.rtc.framesDropped,
      // The worker paces the stream at min(target, display rate): frames a display cannot
      // show are wasted render, encode and decode work.
      display_hz: this.displayHz || 0,
      // One view: the worker renders and sends one centre view instead of both eyes. It may
      // still send both (each frame's metadata says which), so the page follows meta.views.
      views: this.views,
    };
  }

  // 1 (a flat view) or 2 (both eyes). A change is told to the worker at once, not with the
  // next periodic feedback, so the picture switches within a frame or two.
  setViews(views) {
    const next = views === 1 ? 1 : 2;
    if (next === this.views) return;
    this.views = next;
    this.sendFeedback(this.feedbackMessage());
  }

  setQuality(quality) {
    if (!this.streamId) return false;
    return this.socket.send("morpheus:quality_change", { stream_id: this.streamId, quality });
  }

  async collectStats() {
    if (!this.pc) return;
    const report = await this.pc.getStats();
    let inbound = null, pair = null, selectedId = null;
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
      if (s.type === "transport" && s.selectedCandidatePairId) selectedId = s.selectedCandidatePairId;
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
    });
    // The transport names the pair in use; during an ICE restart the old nominated pair is
    // gone before the new one is flagged, and the transport's pointer bridges that gap.
    if (selectedId && report.get(selectedId)) pair = report.get(selectedId);
    // host / srflx / prflx / relay: "relay" when either end is relayed (through TURN).
    const types = pair ? [report.get(pair.localCandidateId)?.candidateType, report.get(pair.remoteCandidateId)?.candidateType] : [];
    this.candidatePair = ["relay", "srflx", "prflx", "host"].find((t) => types.includes(t)) || null;
    if (!inbound) return;
    const now = performance.now();
    const sample = {
      t: now,
      bytes: inbound.bytesReceived || 0,
      frames: inbound.framesDecoded || 0,
      lost: inbound.packetsLost || 0,
      received: inbound.packetsReceived || 0,
      jitterBufferDelay: inbound.jitterBufferDelay,
      jitterBufferEmittedCount: inbound.jitterBufferEmittedCount,
      jitterBufferTargetDelay: inbound.jitterBufferTargetDelay,
      jitterBufferMinimumDelay: inbound.jitterBufferMinimumDelay,
      totalDecodeTime: inbound.totalDecodeTime,
      framesDecoded: inbound.framesDecoded,
    };
    const prev = this.prev;
    this.prev = sample;
    const lostDelta = prev ? sample.lost - prev.lost : 0;
    const recvDelta = prev ? sample.received - prev.received : 0;
    this.rtc = {
      framesDecoded: sample.frames,
      framesDropped: inbound.framesDropped || 0,
      packetsLost: sample.lost,
      packetsReceived: sample.received,
      bitrate: prev ? rate({ t: prev.t, value: prev.bytes * 8 }, { t: now, value: sample.bytes * 8 }) : 0,
      fps: prev ? rate({ t: prev.t, value: prev.frames }, { t: now, value: sample.frames }) : 0,
      loss: lostDelta + recvDelta > 0 ? Math.max(0, lostDelta) / (lostDelta + recvDelta) : 0,
      rttMs: pair?.currentRoundTripTime != null ? pair.currentRoundTripTime * 1000 : null,
      decodeMs: inbound.framesDecoded ? ((inbound.totalDecodeTime || 0) * 1000) / inbound.framesDecoded : null,
      // Over the last interval (ms per frame): decode, time in the jitter buffer, its target.
      decodeMsNow: perFrameMs(prev, sample, "totalDecodeTime", "framesDecoded"),
      jitterBufferMs: perFrameMs(prev, sample, "jitterBufferDelay", "jitterBufferEmittedCount"),
      jitterBufferTargetMs: perFrameMs(prev, sample, "jitterBufferTargetDelay", "jitterBufferEmittedCount"),
      jitterBufferMinimumMs: perFrameMs(prev, sample, "jitterBufferMinimumDelay", "jitterBufferEmittedCount"),
    };
    this.sendFeedback(this.feedbackMessage());
  }

  closePeer() {
    if (this.pc) {
      const pc = this.pc;
      this.pc = null;
      pc.onconnectionstatechange = null;
      pc.close();
    }
    this.poseChannel = this.framesChannel = null;
    this.micSender = null;
    this.prev = null;
  }

  // Tear down and ask for a fresh stream (the old one is stopped so we never answer a stale offer).
  async restart() {
    clearTimeout(this.iceTimer);
    this.iceTimer = null;
    const old = this.streamId;
    this.closePeer();
    this.streamId = null;
    if (old) await api(`/api/morpheus/render_stop?stream_id=${old}`, { method: "DELETE" }).catch(() => {});
    this.scheduleRestart();
  }

  // The platform is reachable again (the session socket re-established): a stream without
  // media starts now — one waiting out its backoff after a failure instead of up to 20 s
  // later, one waiting for an offer in case the offer was sent while we were away
  // (render_start is idempotent and returns the pending offer).
  retryNow(quality) {
    if (this.stopped || this.pc) return;
    clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.attempt = 0;
    this.start(quality);
  }

  scheduleRestart() {
    if (this.stopped) return;
    clearTimeout(this.restartTimer);
    const delay = backoffDelay(this.attempt++, { baseMs: 1000, maxMs: 20000 });
    this.onState("retrying", { delay });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.start(this.requestedQuality);
    }, delay);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.iceTimer);
    clearTimeout(this.renewTimer);
    clearInterval(this.statsTimer);
    this.closePeer();
  }
}
