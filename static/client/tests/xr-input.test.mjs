import { test } from "node:test";
import assert from "node:assert/strict";
import { XrInput } from "../js/xr-input.js";

// Stand-ins for what the browser's WebXR gives (not our code): a session that fires events,
// input sources with spaces, and a frame that resolves a space to a pose.
function pose(p, q = [0, 0, 0, 1]) {
  return { transform: { position: { x: p[0], y: p[1], z: p[2] }, orientation: { x: q[0], y: q[1], z: q[2], w: q[3] } } };
}

function setup(sources, poses) {
  const session = new EventTarget();
  session.inputSources = sources;
  const frame = { getPose: (space) => poses.get(space) || null };
  return { session, frame };
}

test("controllers and hands: grip poses, kinds, thumbsticks, pointer rays", () => {
  const grip = {}, ray = {}, wristSpace = {};
  const right = { handedness: "right", gripSpace: grip, targetRaySpace: ray, gamepad: { axes: [0, 0, 0.5, -1], buttons: [{ pressed: true }] } };
  const left = { handedness: "left", hand: new Map([["wrist", wristSpace]]), targetRaySpace: null };
  const gaze = { handedness: "none", targetRaySpace: {} };
  const { session, frame } = setup([right, left, gaze], new Map([[grip, pose([0.2, 1.2, -0.3])], [ray, pose([0.2, 1.2, -0.3])]]));
  frame.getJointPose = (joint) => (joint === wristSpace ? pose([-0.2, 1.1, -0.2]) : null);
  const out = new XrInput(session).read(frame, {});
  assert.deepEqual(out.kinds, { right: "controller", left: "hand" });
  assert.deepEqual(out.hands.right.p, [0.2, 1.2, -0.3]);
  assert.deepEqual(out.hands.left.p, [-0.2, 1.1, -0.2]);
  assert.deepEqual(out.sticks.right, { x: 0.5, y: -1 });
  assert.deepEqual(out.rays.right.dir, [0, 0, -1]);
  assert.deepEqual(out.buttons.right, [true]);
  assert.ok(!("none" in out.kinds), "gaze input is not a hand");
});

test("select and squeeze are counted per side; a non-finite pose is never sent", () => {
  const grip = {};
  const right = { handedness: "right", gripSpace: grip };
  const { session, frame } = setup([right], new Map([[grip, pose([NaN, 1, 0])]]));
  const input = new XrInput(session);
  const fire = (type, source) => {
    const event = new Event(type);
    event.inputSource = source;
    session.dispatchEvent(event);
  };
  fire("select", right);
  fire("select", right);
  fire("squeeze", right);
  fire("select", { handedness: "none" });
  const out = input.read(frame, {});
  assert.deepEqual(out.ev, { right: [2, 1] });
  assert.equal(out.hands.right, undefined);
  assert.equal(input.dropped, 1);
});
