// dom.js's errorText: the platform's message with a validation error's fields, and the page's
// own words where the server sent no error of its own.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError } from "../js/api.js";
import { errorText } from "../js/dom.js";

test("an API error reads as its message and the fields it names", () => {
  const err = new ApiError(400, "validation_error", "Invalid input.", { name: ["This field is required."], visibility: "bad" });
  assert.equal(errorText(err, "Upload failed."), "Invalid input. (name: This field is required.; visibility: bad)");
  assert.equal(errorText(new ApiError(403, "forbidden", "Not allowed.")), "Not allowed.");
});

test("without a platform error: the fallback, else the status", () => {
  assert.equal(errorText(new ApiError(502), "Upload failed (HTTP 502)."), "Upload failed (HTTP 502).");
  assert.equal(errorText(new ApiError(502)), "HTTP 502");
  assert.equal(errorText(new Error("Network error during upload."), "x"), "Network error during upload.");
});
