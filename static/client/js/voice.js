// Voice: the microphone goes to the worker on the stream's own RTCPeerConnection (Opus); the
// worker forwards other participants' voices on a few audio "slots" and says which participant
// each slot (by m-line mid) carries and where they stand. Each voice is placed at the speaker's
// avatar with a Web Audio panner, relative to where we are (desktop camera or VR head).
// Mic modes: off (muted), open, push-to-talk (hold V). Speaking indicators from levels.

const SPEAKING_RMS = 0.02; // of full scale
const SPEAKING_HOLD_MS = 500; // an indicator stays lit this long after the last loud moment
const PTT_KEY = "KeyV";

function rms(analyser, buffer) {
  analyser.getFloatTimeDomainData(buffer);
  let sum = 0;
  for (const v of buffer) sum += v * v;
  return Math.sqrt(sum / buffer.length);
}

export class Voice {
  constructor(stream) {
    this.stream = stream;
    this.mode = "off";
    this.pttHeld = false;
    this.operatorMuted = false; // an operator muted us: the worker drops our audio anyway
    this.onOperatorMute = null;
    this.mic = null; // MediaStreamTrack
    this.micError = null;
    this.ctx = null;
    this.micAnalyser = null;
    this.slots = {}; // mid -> participant id (or null)
    this.positions = {}; // participant id -> [x, y, z]
    this.voices = new Map(); // mid -> {panner, analyser, element}
    this.buffer = new Float32Array(1024);
    this.lastLoud = new Map(); // participant id (or "me") -> performance.now() when last loud
    stream.onAudioTrack = (event) => this.addTrack(event);
    stream.onVoice = (voice) => this.onVoice(voice);
  }

  // An AudioContext may only start after a user gesture (autoplay policy): callers pass one.
  audio() {
    if (!this.ctx) this.ctx = new AudioContext();
    if (this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
    return this.ctx;
  }

  get transmitting() {
    if (!this.mic || this.operatorMuted) return false;
    return this.mode === "open" || (this.mode === "ptt" && this.pttHeld);
  }

  async setMode(mode) {
    this.mode = mode;
    if (mode !== "off" && !this.mic) {
      try {
        const media = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        });
        this.mic = media.getAudioTracks()[0];
        this.micError = null;
        const ctx = this.audio();
        this.micAnalyser = ctx.createAnalyser();
        ctx.createMediaStreamSource(new MediaStream([this.mic])).connect(this.micAnalyser);
        await this.stream.setMic(this.mic);
      } catch (err) {
        this.micError = err.message || String(err);
        this.mode = "off";
      }
    }
    this.apply();
    return this.mode;
  }

  setPushToTalk(held) {
    this.pttHeld = held;
    this.apply();
  }

  // Muting disables the track: the browser then sends silence, and nothing of the room.
  apply() {
    if (this.mic) this.mic.enabled = this.transmitting;
  }

  addTrack(event) {
    const mid = event.transceiver?.mid;
    if (mid == null || this.voices.has(mid)) return;
    const media = new MediaStream([event.track]);
    // Chromium plays a remote WebRTC track into Web Audio only while a media element holds it.
    const element = new Audio();
    element.muted = true;
    element.srcObject = media;
    element.play().catch(() => {});
    const ctx = this.audio();
    const source = ctx.createMediaStreamSource(media);
    const panner = new PannerNode(ctx, { panningModel: "HRTF", distanceModel: "inverse", refDistance: 1, rolloffFactor: 1 });
    const analyser = ctx.createAnalyser();
    source.connect(analyser);
    source.connect(panner).connect(ctx.destination);
    this.voices.set(mid, { panner, analyser, element });
    this.place();
  }

  onVoice(voice) {
    if (voice.slots) this.slots = voice.slots;
    if ("muted_by_operator" in voice && Boolean(voice.muted_by_operator) !== this.operatorMuted) {
      this.operatorMuted = Boolean(voice.muted_by_operator);
      this.apply();
      this.onOperatorMute?.(this.operatorMuted);
    }
    if (voice.pos) Object.assign(this.positions, voice.pos);
    this.place();
  }

  place() {
    for (const [mid, v] of this.voices) {
      const p = this.positions[this.slots[mid]];
      if (!p) continue;
      v.panner.positionX.value = p[0];
      v.panner.positionY.value = p[1];
      v.panner.positionZ.value = p[2];
    }
  }

  // Where we hear from: {p, q} in the scene (q: [x, y, z, w]).
  setListener({ p, q }) {
    if (!this.ctx) return;
    const [x, y, z, w] = q;
    // Forward is -Z and up is +Y, rotated by q.
    const fwd = [-(2 * (x * z + w * y)), -(2 * (y * z - w * x)), -(1 - 2 * (x * x + y * y))];
    const up = [2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)];
    const l = this.ctx.listener;
    if (l.positionX) {
      [l.positionX.value, l.positionY.value, l.positionZ.value] = p;
      [l.forwardX.value, l.forwardY.value, l.forwardZ.value] = fwd;
      [l.upX.value, l.upY.value, l.upZ.value] = up;
    } else {
      l.setPosition(...p);
      l.setOrientation(...fwd, ...up);
    }
  }

  // Who is speaking now: participant ids (ours included, as "me"), held a moment so the
  // indicators do not flicker between syllables.
  speaking() {
    const now = performance.now();
    if (this.transmitting && this.micAnalyser && rms(this.micAnalyser, this.buffer) > SPEAKING_RMS) this.lastLoud.set("me", now);
    if (!this.transmitting) this.lastLoud.delete("me");
    for (const [mid, v] of this.voices) {
      const who = this.slots[mid];
      if (who && rms(v.analyser, this.buffer) > SPEAKING_RMS) this.lastLoud.set(who, now);
    }
    return [...this.lastLoud].filter(([, t]) => now - t < SPEAKING_HOLD_MS).map(([who]) => who);
  }

  stats() {
    return {
      mode: this.mode,
      transmitting: this.transmitting,
      operatorMuted: this.operatorMuted,
      micError: this.micError,
      slots: { ...this.slots },
      tracks: this.voices.size,
      positions: { ...this.positions },
      audioState: this.ctx?.state || null,
    };
  }
}

// The page's controls: the mic mode selector, M to mute, hold V to talk.
export function setupVoiceControls(voice, onChange) {
  const select = document.getElementById("mic-mode");
  if (!select) return;
  select.addEventListener("change", async () => {
    select.value = await voice.setMode(select.value);
    onChange();
  });
  window.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
    if (event.code === PTT_KEY && !event.repeat) voice.setPushToTalk(true);
    if (event.code === "KeyM" && voice.mic) {
      select.value = voice.mode === "off" ? "open" : "off";
      select.dispatchEvent(new Event("change"));
    }
  });
  window.addEventListener("keyup", (event) => {
    if (event.code === PTT_KEY) voice.setPushToTalk(false);
  });
  window.addEventListener("blur", () => voice.setPushToTalk(false));
}
