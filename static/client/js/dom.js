// Page helpers shared by the client's pages, the creator page and the operator dashboard: element
// lookup and building, the banner, the signed-in header, an API error as a sentence. HTTP and
// tokens are api.js's; text goes in with textContent only (names come from users).
import { ApiError, signOut, tokens } from "./api.js";

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node[key] = value;
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

export function banner(message, kind = "error") {
  const node = $("banner");
  if (!node) return;
  node.textContent = message || "";
  node.dataset.kind = kind;
  node.hidden = !message;
}

// Header: who is signed in, and the sign-out button.
export function setupHeader() {
  const current = tokens();
  const who = $("whoami");
  const button = $("signout");
  if (current?.user && who) who.textContent = current.user.username;
  if (button && current) {
    button.hidden = false;
    button.addEventListener("click", () => signOut());
  }
}

// The platform's error message and, for a validation error, what each field got wrong
// ("name: This field is required."); `fallback` where the server sent no error of its own
// (an ApiError without a code is named after its status: http_<status>).
export function errorText(err, fallback) {
  if (!(err instanceof ApiError)) return err?.message || fallback;
  if (err.code === `http_${err.status}` && fallback) return fallback;
  let text = err.message;
  if (err.detail && typeof err.detail === "object") {
    const parts = Object.entries(err.detail).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(" ") : v}`);
    if (parts.length) text += ` (${parts.join("; ")})`;
  }
  return text;
}
