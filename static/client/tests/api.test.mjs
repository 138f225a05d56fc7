// The API client's sign-out under a race seen in CI: the server revokes the tokens while other
// requests are in flight; their 401 (and the failed refresh) must not send the user to "Your
// sign-in expired" after they clicked "Sign out". Browser globals are stubbed: api.js is
// plain fetch + sessionStorage + location.
import assert from "node:assert/strict";
import test from "node:test";

const store = new Map();
globalThis.sessionStorage = {
  getItem: (k) => (store.has(k) ? store.get(k) : null),
  setItem: (k, v) => store.set(k, String(v)),
  removeItem: (k) => store.delete(k),
};
const assigned = [];
globalThis.location = { pathname: "/lobby/", search: "", assign: (url) => assigned.push(url) };
const json = (status, body) =>
  new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
let releaseLogout;
globalThis.fetch = async (path) => {
  if (path === "/api/athena/logout") {
    await new Promise((resolve) => (releaseLogout = resolve));
    return new Response(null, { status: 204 });
  }
  // The tokens were revoked: everything else is refused, the refresh token too.
  return json(401, { error: { code: "token_not_valid", message: "revoked" } });
};

const { api, saveTokens, signOut } = await import("../js/api.js");

test("requests refused while signing out do not redirect to 'sign-in expired'", async () => {
  saveTokens({ access: "a", refresh: "r", expires_in: 900 });
  const out = signOut(); // the logout call is on its way; the server has revoked the pair
  await assert.rejects(api("/api/hermes/sessions"), (err) => err.status === 401);
  releaseLogout();
  await out;
  assert.deepEqual(assigned, ["/login/"]);
});
