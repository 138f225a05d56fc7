// The sign-in page's `next`: only pages of this origin (issue 25, item 6). Each hostile value
// is one a prefix check let through; the browser's own URL parser decides where it leads.
import assert from "node:assert/strict";
import test from "node:test";

import { sameOriginPath } from "../js/next.js";

const ORIGIN = "http://127.0.0.1:8000";
const next = (query) => new URLSearchParams(query).get("next");

test("same-origin paths are kept, with their query and fragment", () => {
  assert.equal(sameOriginPath("/viewer/?session=abc#vr", ORIGIN), "/viewer/?session=abc#vr");
  assert.equal(sameOriginPath(`${ORIGIN}/lobby/`, ORIGIN), "/lobby/");
  assert.equal(sameOriginPath(null, ORIGIN), "/lobby/");
  assert.equal(sameOriginPath("", ORIGIN), "/lobby/");
});

test("anything that leaves the origin falls back to the lobby", () => {
  const hostile = [
    next("next=/%5C127.0.0.1:8698/x"), // "/\127.0.0.1:8698/x": a backslash reads as "/"
    next("next=/%09/127.0.0.1:8698/x"), // a tab is dropped: "//127.0.0.1:8698/x"
    next("next=/%0A/evil.test/"), // so is a newline
    "//evil.test/",
    "/\\/evil.test/",
    "https://evil.test/",
    "http://127.0.0.1:8698/", // same host, another port
    "javascript:alert(1)",
    "data:text/html,x",
    " //evil.test/",
  ];
  for (const value of hostile) {
    assert.equal(sameOriginPath(value, ORIGIN), "/lobby/", value);
  }
});

test("a path that normalises to //host stays a path of this origin", () => {
  const path = sameOriginPath("/a/..//evil.test/x", ORIGIN);
  assert.equal(path, "/evil.test/x");
  assert.equal(new URL(path, ORIGIN).origin, ORIGIN);
});
