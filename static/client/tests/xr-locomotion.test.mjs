import { test } from "node:test";
import assert from "node:assert/strict";
import {
  applyOrigin, COMFORT_DEFAULTS, EYE_HEIGHT_M, floorHit, makeOrigin, originMessage, scalePose, smoothMove,
  teleportStep, turn, vignetteStrength,
} from "../js/xr-locomotion.js";
import { quatFromYawPitch, yawPitchFromQuat } from "../js/math.js";

const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);
const closeVec = (a, b, eps = 1e-9) => a.forEach((v, i) => close(v, b[i], eps));
const deg = (d) => (d * Math.PI) / 180;
const IDENT = [0, 0, 0, 1];

test("a fresh origin leaves poses where they are", () => {
  const pose = applyOrigin(makeOrigin(), { p: [1, 1.6, -2], q: quatFromYawPitch(0.3, 0.1) });
  closeVec(pose.p, [1, 1.6, -2]);
  closeVec(pose.q, quatFromYawPitch(0.3, 0.1));
});

test("the scene's spawn places a standing viewer's eye at its point, facing its yaw, at its scale", () => {
  // A centimetre scene (scale 100): the eye 160 units above the floor, not 1.6.
  const spawn = { position: [40, 60, 120], yaw: deg(30), pitch: -0.2, scale: 100 };
  const o = makeOrigin(spawn);
  const standing = scalePose({ p: [0, EYE_HEIGHT_M, 0], q: IDENT }, o.scale);
  const eye = applyOrigin(o, standing);
  closeVec(eye.p, spawn.position, 1e-9);
  close(yawPitchFromQuat(eye.q).yaw, deg(30));
  close(o.p[1], 60 - 160); // the floor, where a teleport lands
  // A step of 10 cm in the room is 10 units in the scene.
  closeVec(scalePose({ p: [0.1, 0, 0], q: IDENT }, 100).p, [10, 0, 0]);
  // No spawn (no scene): the scene's origin as before.
  assert.deepEqual(makeOrigin(null).p, [0, 0, 0]);
  assert.equal(makeOrigin(null).scale, 1);
});

test("stick forward moves along the head's yaw, on the floor, at the comfort speed", () => {
  const o = makeOrigin();
  const moved = smoothMove(o, { x: 0, y: -1 }, quatFromYawPitch(0, deg(-60)), 1);
  close(moved, COMFORT_DEFAULTS.moveSpeed);
  closeVec(o.p, [0, 0, -1.5]); // looking down did not dig into the floor
  const turned = makeOrigin();
  smoothMove(turned, { x: 0, y: -1 }, quatFromYawPitch(deg(90), 0), 1); // looking left (-X)
  closeVec(turned.p, [-1.5, 0, 0]);
  assert.equal(smoothMove(makeOrigin(), { x: 0.1, y: -0.1 }, IDENT, 1), 0, "inside the deadzone");
});

test("snap turn: one step per push, about the head, re-armed by releasing", () => {
  const o = makeOrigin();
  const head = [0.5, 1.6, 0.5];
  const before = applyOrigin(o, { p: head, q: IDENT }).p;
  close(turn(o, 1, head, 0.016), -deg(30)); // right: negative yaw
  close(turn(o, 1, head, 0.016), 0); // held: no second step
  turn(o, 0, head, 0.016);
  close(turn(o, 1, head, 0.016), -deg(30));
  close(o.yaw, -deg(60));
  closeVec(applyOrigin(o, { p: head, q: IDENT }).p, before); // the head did not move
  close(yawPitchFromQuat(originMessage(o).q).yaw, -deg(60));
  const custom = makeOrigin();
  turn(custom, -1, head, 0.016, { ...COMFORT_DEFAULTS, snapDeg: 45 });
  close(custom.yaw, deg(45));
  const smooth = makeOrigin();
  turn(smooth, -1, head, 0.5, { ...COMFORT_DEFAULTS, snapDeg: 0 });
  close(smooth.yaw, deg(45)); // 90 deg/s for half a second
});

test("teleport: aim with the stick, release to put the head over the target", () => {
  const o = makeOrigin();
  const head = [0.2, 1.6, 0.1];
  const ray = { p: [0, 1, 0], dir: [0, -Math.SQRT1_2, -Math.SQRT1_2] }; // 45 deg down, ahead
  const aim = teleportStep(o, -1, ray, head);
  closeVec(aim.target, [0, 0, -1]);
  assert.equal(aim.jumped, false);
  const jump = teleportStep(o, 0, ray, head);
  assert.equal(jump.jumped, true);
  const now = applyOrigin(o, { p: head, q: IDENT }).p;
  close(now[0], 0);
  close(now[2], -1);
  close(now[1], 1.6); // height unchanged
  assert.equal(teleportStep(o, 0, ray, head).jumped, false, "no second jump without aiming");
  assert.equal(floorHit([0, 1, 0], [0, 1, 0]), null, "pointing up never lands");
  assert.equal(floorHit([0, 1, 0], [0, -0.01, -1]), null, "beyond reach");
});

test("vignette grows with motion and is off when disabled", () => {
  assert.equal(vignetteStrength(0, 0), 0);
  assert.ok(vignetteStrength(1.5, 0) === 1);
  assert.equal(vignetteStrength(1.5, 2, { ...COMFORT_DEFAULTS, vignette: false }), 0);
});
