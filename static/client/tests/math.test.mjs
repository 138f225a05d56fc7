import { test } from "node:test";
import assert from "node:assert/strict";
import {
  eyeOfView, eyeQuad, eyeSourceRect, eyeUvRect, frameViews, mat4FromQuat, mat4Multiply, mat4Perspective,
  mat4TransformPoint, moveDelta, ndcToViewRay, poseMessage, quatFromAxisAngle, quatFromYawPitch,
  quatMultiply, quatRotate, reprojectNdc, reprojectionMatrix, rotationAngle, rotationDelta,
  pictureViews, yawPitchFromQuat,
} from "../js/math.js";

const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);
const closeVec = (a, b, eps = 1e-9) => a.forEach((v, i) => close(v, b[i], eps));
const deg = (d) => (d * Math.PI) / 180;
const PROJ = mat4Perspective(deg(90), 1, 0.1, 100);

test("yaw/pitch round-trip through a quaternion (matches the worker's yaw_pitch)", () => {
  for (const [yaw, pitch] of [[0, 0], [0.5, 0.2], [-2.0, -0.7], [3.0, 1.2]]) {
    const got = yawPitchFromQuat(quatFromYawPitch(yaw, pitch));
    close(got.yaw, yaw);
    close(got.pitch, pitch);
  }
});

test("positive yaw turns the forward vector toward -X (turning left)", () => {
  closeVec(quatRotate(quatFromYawPitch(deg(90), 0), [0, 0, -1]), [-1, 0, 0]);
  closeVec(quatRotate(quatFromYawPitch(0, deg(90)), [0, 0, -1]), [0, 1, 0]);
});

test("quaternion rotation agrees with the rotation matrix", () => {
  const q = quatFromYawPitch(0.7, -0.3);
  const v = [0.2, -1.5, 3];
  closeVec(mat4TransformPoint(mat4FromQuat(q), [...v, 1]).slice(0, 3), quatRotate(q, v));
});

test("rotation delta is identity when the head has not moved", () => {
  const q = quatFromYawPitch(1.1, 0.4);
  const d = rotationDelta(q, q);
  close(rotationAngle(d), 0, 1e-6);
});

test("rotation delta composes back to the render pose and has the turned angle", () => {
  const render = quatFromYawPitch(0.3, 0.1);
  const now = quatMultiply(render, quatFromAxisAngle([0, 1, 0], deg(5)));
  const d = rotationDelta(render, now);
  close(rotationAngle(d), deg(5), 1e-9);
  // now * delta == render (as rotations: compare their action on a vector)
  const v = [0.3, 0.2, -1];
  closeVec(quatRotate(quatMultiply(now, d), v), quatRotate(render, v));
});

test("reprojection with no head motion maps every corner to itself", () => {
  for (const [x, y] of [[-1, -1], [1, -1], [-1, 1], [1, 1], [0.3, -0.4]]) {
    closeVec(reprojectNdc(PROJ, [0, 0, 0, 1], x, y), [x, y]);
  }
});

test("turning left moves the old picture right by f*tan(angle)", () => {
  const render = quatFromYawPitch(0, 0);
  const now = quatFromYawPitch(deg(10), 0);
  const [x, y] = reprojectNdc(PROJ, rotationDelta(render, now), 0, 0);
  close(x, PROJ[0] * Math.tan(deg(10)));
  close(y, 0);
});

test("looking up moves the old picture down", () => {
  const [x, y] = reprojectNdc(PROJ, rotationDelta([0, 0, 0, 1], quatFromYawPitch(0, deg(8))), 0, 0);
  close(x, 0);
  assert.ok(y < -0.1);
  close(y, -PROJ[5] * Math.tan(deg(8)));
});

test("reprojection works for asymmetric per-eye frusta", () => {
  // A WebXR-like left-eye frustum, wider toward the nose side.
  const l = -0.12, r = 0.08, b = -0.1, t = 0.1, n = 0.1, f = 100;
  const proj = [2 * n / (r - l), 0, 0, 0, 0, 2 * n / (t - b), 0, 0, (r + l) / (r - l), (t + b) / (t - b), -(f + n) / (f - n), -1, 0, 0, -2 * f * n / (f - n), 0];
  for (const [x, y] of [[-1, -1], [1, 1], [0, 0]]) {
    const ray = ndcToViewRay(proj, x, y);
    const clip = mat4TransformPoint(proj, [...ray, 1]);
    closeVec([clip[0] / clip[3], clip[1] / clip[3]], [x, y]);
    closeVec(reprojectNdc(proj, [0, 0, 0, 1], x, y), [x, y]);
  }
  const quad = eyeQuad(proj);
  assert.equal(quad.length, 4);
  assert.deepEqual(quad.map((c) => c.uv), [[0, 0], [1, 0], [0, 1], [1, 1]]);
});

test("reprojection matrix is projection times the delta rotation", () => {
  const d = quatFromYawPitch(0.05, -0.02);
  closeVec(reprojectionMatrix(PROJ, d), mat4Multiply(PROJ, mat4FromQuat(d)));
});

test("per-eye split: left half for the left eye, right half for the right", () => {
  assert.deepEqual(eyeUvRect("left"), [0, 0, 0.5, 1]);
  assert.deepEqual(eyeUvRect("right"), [0.5, 0, 1, 1]);
  assert.deepEqual(eyeSourceRect("left", 2560, 720), { x: 0, y: 0, w: 1280, h: 720 });
  assert.deepEqual(eyeSourceRect("right", 2560, 720), { x: 1280, y: 0, w: 1280, h: 720 });
  assert.deepEqual(eyeSourceRect("right", 641, 10), { x: 320, y: 0, w: 321, h: 10 });
  assert.equal(eyeOfView({ eye: "right" }), "right");
  assert.equal(eyeOfView({ eye: "left" }), "left");
  assert.equal(eyeOfView({ eye: "none" }), "left");
  assert.throws(() => eyeUvRect("middle"));
});

test("a mono frame (views 1) is the whole picture for either eye", () => {
  assert.deepEqual(eyeUvRect("left", 1), [0, 0, 1, 1]);
  assert.deepEqual(eyeUvRect("right", 1), [0, 0, 1, 1]);
  assert.deepEqual(eyeUvRect("right", 2), [0.5, 0, 1, 1]);
  assert.deepEqual(eyeSourceRect("left", 1280, 720, 1), { x: 0, y: 0, w: 1280, h: 720 });
  assert.deepEqual(eyeSourceRect("right", 1280, 720, 1), { x: 0, y: 0, w: 1280, h: 720 });
  assert.deepEqual(eyeSourceRect("left", 2560, 720, 2), { x: 0, y: 0, w: 1280, h: 720 });
  assert.throws(() => eyeUvRect("middle", 1));
  assert.throws(() => eyeSourceRect("middle", 1280, 720, 1));
});

test("a frame's layout follows its metadata; absent or unknown is side by side", () => {
  assert.equal(frameViews({ frame_id: 1, views: 1 }), 1);
  assert.equal(frameViews({ frame_id: 1, views: 2 }), 2);
  assert.equal(frameViews({ frame_id: 1 }), 2);
  assert.equal(frameViews({ frame_id: 1, views: "1" }), 2);
  assert.equal(frameViews(null), 2);
  assert.equal(frameViews(undefined), 2);
});

test("a picture's layout is the last matched frame's until the picture changes shape", () => {
  const mono = { views: 1, w: 1280, h: 720 };
  const stereo = { views: 2, w: 2560, h: 720 };
  assert.equal(pictureViews(null, 1280, 720), 2);
  assert.equal(pictureViews(mono, 1280, 720), 1);
  assert.equal(pictureViews(stereo, 2560, 720), 2);
  // The switch's first frames, before their ids are read.
  assert.equal(pictureViews(mono, 2560, 720), 2);
  assert.equal(pictureViews(stereo, 1280, 720), 1);
  // Another size altogether (a rung or render-scale change): the layout is kept.
  assert.equal(pictureViews(mono, 1920, 1080), 1);
  assert.equal(pictureViews(stereo, 1280, 360), 2);
});

test("WASD moves along the yawed view, unit speed on diagonals", () => {
  closeVec(moveDelta(new Set(["KeyW"]), 0, 1), [0, 0, -1]);
  closeVec(moveDelta(new Set(["KeyD"]), 0, 1), [1, 0, 0]);
  closeVec(moveDelta(new Set(["KeyW"]), deg(90), 1), [-1, 0, 0]);
  const diag = moveDelta(new Set(["KeyW", "KeyD"]), 0, 2);
  close(Math.hypot(...diag), 2);
  closeVec(moveDelta(new Set(["KeyE"]), 0, 0.5), [0, 0.5, 0]);
  closeVec(moveDelta(new Set(), 1, 1), [0, 0, 0]);
});

test("pose message has the worker's shape and a unit quaternion", () => {
  const msg = poseMessage({ p: [1, 2, 3], q: [0, 0, 0, 2], t: 5, seq: 7, proj: [PROJ, PROJ] });
  assert.deepEqual(msg.q, [0, 0, 0, 1]);
  assert.equal(msg.proj.length, 2);
  assert.equal(msg.proj[0].length, 16);
  assert.equal(msg.hands, undefined);
  const withHands = poseMessage({ p: [0, 0, 0], q: [0, 0, 0, 1], t: 1, seq: 1, hands: { left: { p: [0, 1, 0], q: [0, 0, 0, 1] } } });
  assert.deepEqual(Object.keys(withHands.hands), ["left"]);
});
