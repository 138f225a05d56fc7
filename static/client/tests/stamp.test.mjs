import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeStamp, ID_MODULO, renderStamp, rgbaToLuma, stampBits, STAMP_BLOCKS } from "../js/stamp.js";

test("bits match the worker's stamp (values from workers/streaming/frames.py _bits)", () => {
  assert.deepEqual(stampBits(12345), [1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1]);
  assert.deepEqual(stampBits(0), [1, 0, ...new Array(22).fill(0)]);
  assert.deepEqual(stampBits(ID_MODULO + 5), stampBits(5));
  assert.equal(stampBits(1).length, STAMP_BLOCKS);
});

test("decode round-trips ids, including with compression-like noise at block edges", () => {
  for (const id of [0, 1, 12345, ID_MODULO - 1, 77777]) {
    const { luma, width } = renderStamp(id, 16, { white: 235, black: 16 });
    // Smear block edges as a codec would: the decoder samples only block middles.
    for (let y = 0; y < 16; y++) for (let x = 0; x < width; x += 16) luma[y * width + x] = 128;
    assert.equal(decodeStamp(luma, width, 16), id);
  }
});

test("a picture without a stamp decodes to null", () => {
  const width = STAMP_BLOCKS * 16;
  assert.equal(decodeStamp(new Float32Array(width * 16).fill(200), width), null);
  assert.equal(decodeStamp(new Float32Array(width * 16).fill(10), width), null);
  assert.equal(decodeStamp(new Float32Array(10), 10), null);
});

test("a flipped id bit fails the check", () => {
  const { luma, width } = renderStamp(4242);
  const b = 10; // an id bit
  for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) luma[y * width + b * 16 + x] = 255 - luma[y * width + b * 16 + x];
  assert.equal(decodeStamp(luma, width), null);
});

test("RGBA to luma", () => {
  const luma = rgbaToLuma(new Uint8ClampedArray([255, 255, 255, 255, 0, 0, 0, 255, 255, 0, 0, 255]));
  assert.ok(Math.abs(luma[0] - 255) < 1e-3);
  assert.equal(luma[1], 0);
  assert.ok(Math.abs(luma[2] - 76.245) < 1e-3);
});
