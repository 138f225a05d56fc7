// The session WebSocket (/ws/hermes/sessions/<id>/): bearer token in the subprotocol, join on
// open, heartbeat (carrying a rotated token), reconnect with exponential backoff unless the
// server said the session is over or we may not be here.
import { accessToken, onTokens, refreshTokens } from "./api.js";
import { backoffDelay } from "./netstats.js";

// workers/protocol/sockets.py SESSION_HEARTBEAT_S: the server closes a socket silent for 60 s.
const HEARTBEAT_MS = 25_000;
// Close codes of apps/sessions/consumers.py that must not be retried blindly.
export const CLOSE = { ENDED: 4000, UNAUTHENTICATED: 4401, FORBIDDEN: 4403, NOT_FOUND: 4404 };

export class SessionSocket {
  constructor(sessionId, { onEvent, onState }) {
    this.sessionId = sessionId;
    this.onEvent = onEvent;
    this.onState = onState;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.reconnects = 0;
    this.pendingToken = null;
    this.heartbeat = null;
    this.retryTimer = null;
    this.lastRttMs = null;
    // Hand a rotated token to the server at once (not at the next heartbeat), so the socket
    // never outlives the token it authenticated with.
    onTokens((t) => {
      this.pendingToken = t.access;
      if (this.connected) this.beat();
    });
  }

  get connected() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/ws/hermes/sessions/${this.sessionId}/`;
    const ws = new WebSocket(url, ["vrplatform.v1", `bearer.${accessToken()}`]);
    this.ws = ws;
    this.onState("connecting");
    ws.onopen = () => {
      this.send("hermes:session_join", {});
      this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    };
    ws.onmessage = (message) => {
      let envelope;
      try {
        envelope = JSON.parse(message.data);
      } catch {
        return;
      }
      if (envelope.event === "hermes:session_established") {
        this.attempt = 0;
        this.onState("connected");
      }
      if (envelope.event === "athena:heartbeat" && Number.isFinite(envelope.data?.t)) {
        this.lastRttMs = performance.now() - envelope.data.t;
      }
      this.onEvent(envelope.event, envelope.data || {});
    };
    ws.onclose = (event) => this.closed(ws, event);
  }

  beat() {
    const data = { t: performance.now() };
    if (this.pendingToken) {
      data.token = this.pendingToken;
      this.pendingToken = null;
    }
    this.send("athena:heartbeat", data);
  }

  async closed(ws, event) {
    clearInterval(this.heartbeat);
    if (ws !== this.ws || this.stopped) return;
    if (event.code === CLOSE.ENDED) {
      this.stopped = true;
      this.onState("ended");
      return;
    }
    if (event.code === CLOSE.FORBIDDEN || event.code === CLOSE.NOT_FOUND) {
      this.stopped = true;
      this.onState(event.code === CLOSE.FORBIDDEN ? "forbidden" : "not_found");
      return;
    }
    if (event.code === CLOSE.UNAUTHENTICATED) {
      try {
        await refreshTokens();
      } catch {
        this.stopped = true;
        this.onState("unauthenticated");
        return;
      }
    }
    const delay = backoffDelay(this.attempt++);
    this.reconnects++;
    this.onState("reconnecting", { delay, code: event.code });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  send(event, data) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify({ event, data }));
    return true;
  }

  // For support and tests: drop the connection as a network failure would.
  drop() {
    this.ws?.close(4100, "client_test_drop");
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    this.ws?.close(1000, "leaving");
  }
}
