// Platform API client, HTTP and tokens only (page helpers are in dom.js): the JWT pair lives in
// sessionStorage (per tab, gone with the tab), is rotated with /api/athena/wisdom_refresh a
// minute before the access token expires, and every call carries it. Errors come back as
// ApiError with the platform's error code. Every page (client, creator) keeps its pair here.

const KEY = "vrplatform.auth";
const REFRESH_MARGIN_MS = 60_000;
const listeners = new Set();
let refreshTimer = null;
let refreshing = null;

export class ApiError extends Error {
  constructor(status, code, message, detail = null) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || `http_${status}`;
    this.detail = detail;
  }
}

export function tokens() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

export function saveTokens(pair) {
  const stored = {
    access: pair.access,
    refresh: pair.refresh,
    expiresAt: Date.now() + (pair.expires_in || 900) * 1000,
    user: pair.user || tokens()?.user || null,
  };
  sessionStorage.setItem(KEY, JSON.stringify(stored));
  scheduleRefresh();
  listeners.forEach((fn) => fn(stored));
  return stored;
}

export function clearTokens() {
  sessionStorage.removeItem(KEY);
  clearTimeout(refreshTimer);
}

// Called with the new token set after every rotation (the viewer hands it to its socket).
export function onTokens(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function accessToken() {
  return tokens()?.access || null;
}

async function parse(response) {
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const err = body?.error || {};
    throw new ApiError(response.status, err.code, err.message, err.detail);
  }
  return body;
}

export async function signIn(username, password) {
  const response = await fetch("/api/athena/authenticate", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  return saveTokens(await parse(response));
}

function cookie(name) {
  const match = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return match ? decodeURIComponent(match.slice(name.length + 1)) : "";
}

// Signed in on the account pages (a cookie session)? Then trade it for tokens; else null.
export async function sessionSignIn() {
  const response = await fetch("/api/athena/session_token", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRFToken": cookie("csrftoken") },
  });
  if (response.status === 401 || response.status === 403) return null;
  return saveTokens(await parse(response));
}

// One refresh at a time: a refresh token is single use, and a second concurrent use would
// look like token theft to the server (it revokes the whole family).
export function refreshTokens() {
  if (refreshing) return refreshing;
  const current = tokens();
  if (!current?.refresh) return Promise.reject(new ApiError(401, "not_authenticated", "Not signed in."));
  refreshing = fetch("/api/athena/wisdom_refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh: current.refresh }),
  })
    .then(parse)
    .then(saveTokens)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

export function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const current = tokens();
  if (!current?.refresh) return;
  const wait = Math.max(5_000, current.expiresAt - Date.now() - REFRESH_MARGIN_MS);
  refreshTimer = setTimeout(() => {
    refreshTokens().catch((err) => {
      if (err.status === 401 || err.status === 400) {
        clearTokens();
        toLogin("Your sign-in expired. Please sign in again.");
      } else {
        setTimeout(scheduleRefresh, 5_000); // network blip: try again soon
      }
    });
  }, wait);
}

export async function api(path, { method = "GET", body, raw = false, signal } = {}, retried = false) {
  const headers = {};
  const token = accessToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    signal,
  });
  if (response.status === 401 && !retried && tokens()?.refresh) {
    try {
      await refreshTokens();
    } catch {
      clearTokens();
      toLogin("Your sign-in expired. Please sign in again.");
      throw new ApiError(401, "token_expired", "Signed out.");
    }
    return api(path, { method, body, raw, signal }, true);
  }
  if (raw) {
    if (!response.ok) await parse(response);
    return response;
  }
  return parse(response);
}

// Set while signing out: requests still in flight then get 401 (the tokens were just revoked),
// and must not send the user to "Your sign-in expired" instead of the plain sign-in page.
let signingOut = false;

// What happens when the sign-in expires (the refresh token is refused): by default the sign-in
// page, which comes back here after; a page with its own sign-in form sets its handler.
let expired = null;
export function onExpired(fn) {
  expired = fn;
}

export function toLogin(message) {
  if (signingOut) return; // signOut() navigates itself
  if (expired) {
    expired(message);
    return;
  }
  const next = location.pathname + location.search;
  const params = new URLSearchParams({ next });
  if (message) params.set("message", message);
  location.assign(`/login/?${params}`);
}

// For pages that need a signed-in user: redirects to sign-in otherwise.
export function requireSignIn() {
  const current = tokens();
  if (!current?.access) {
    toLogin();
    return null;
  }
  scheduleRefresh();
  return current;
}

// Revokes the pair on the server, forgets it here and goes to the sign-in page; a page with its
// own sign-in form (the creator page) passes redirect: false and shows that form instead.
export async function signOut({ redirect = true } = {}) {
  signingOut = true;
  clearTimeout(refreshTimer);
  const current = tokens();
  try {
    if (current?.refresh) await api("/api/athena/logout", { method: "POST", body: { refresh: current.refresh } });
  } catch {
    // Signing out locally matters more than telling the server; the access token expires anyway.
  }
  clearTokens();
  if (redirect) location.assign("/login/");
  else signingOut = false; // still on this page: a later sign-in can expire again
}
