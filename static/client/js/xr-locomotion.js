// Locomotion in VR: a per-participant origin (position + yaw) that places the headset's own
// reference space in the scene. The client moves it (thumbstick smooth move, snap turn,
// teleport); the worker applies it on top of the head pose (workers/protocol/pose.py Pose.world).
// Pure functions only, so Node's test runner checks the same code the browser runs.
import { quatFromAxisAngle, quatMultiply, quatRotate, yawPitchFromQuat } from "./math.js";

export const COMFORT_DEFAULTS = Object.freeze({
  snapDeg: 30, // snap-turn step; 0 turns smoothly instead
  smoothTurnDegPerS: 90,
  vignette: true, // darken the edges of the view while moving or turning
  moveSpeed: 1.5, // m/s at full thumbstick
  deadzone: 0.2,
});
const SNAP_FIRE = 0.7; // push past this to snap...
const SNAP_REARM = 0.3; // ...and return inside this before the next snap
const TELEPORT_AIM = 0.7; // push the stick forward past this to aim; release to jump
export const TELEPORT_MAX_M = 15;

// A standing viewer's eye above the floor (m); workers/rendering/spawn.py EYE_HEIGHT_M.
export const EYE_HEIGHT_M = 1.6;

// The origin at the start of a VR session. With the scene's spawn (session_established
// scene.spawn: eye position, yaw, scale in scene units per metre), a viewer standing at the
// reference space's origin has their eye at the spawn point, looking along its yaw (pitch is
// the head's own): the floor goes EYE_HEIGHT_M * scale below the eye. Without one, the scene's
// origin, as before.
export function makeOrigin(spawn = null) {
  const scale = spawn?.scale > 0 ? spawn.scale : 1;
  const p = spawn?.position
    ? [spawn.position[0], spawn.position[1] - EYE_HEIGHT_M * scale, spawn.position[2]]
    : [0, 0, 0];
  return { p, yaw: spawn?.yaw || 0, scale, snapArmed: true, aiming: false };
}

// A pose of the headset's reference space (metres) in scene units: the viewer's body is
// `scale` times larger in a scene authored in centimetres (see spawn.py), so head motion,
// hands and reach scale with it, as eye separation does on the worker.
export function scalePose(pose, scale) {
  return scale === 1 ? pose : { ...pose, p: pose.p.map((v) => v * scale) };
}

export function originQuat(origin) {
  return quatFromAxisAngle([0, 1, 0], origin.yaw);
}

// A pose {p, q} in the headset's reference space, placed in the scene by the origin.
export function applyOrigin(origin, { p, q }) {
  const r = quatRotate(originQuat(origin), p);
  return { p: [origin.p[0] + r[0], origin.p[1] + r[1], origin.p[2] + r[2]], q: quatMultiply(originQuat(origin), q) };
}

// The origin as the worker's pose schema wants it (xr.origin).
export function originMessage(origin) {
  return { p: origin.p.slice(), q: originQuat(origin) };
}

function dead(value, deadzone) {
  return Math.abs(value) < deadzone ? 0 : value;
}

// Thumbstick (x right, y down as the Gamepad API reports) moves the origin along the floor,
// in the direction the head looks (yaw only: looking down does not dig into the floor).
// Returns the distance moved.
export function smoothMove(origin, axes, headQ, dt, comfort = COMFORT_DEFAULTS) {
  const x = dead(axes.x, comfort.deadzone), y = dead(axes.y, comfort.deadzone);
  if (!x && !y) return 0;
  const yaw = origin.yaw + yawPitchFromQuat(headQ).yaw;
  const s = Math.sin(yaw), c = Math.cos(yaw);
  const fwd = -y, right = x;
  const step = comfort.moveSpeed * dt * Math.min(1, Math.hypot(x, y));
  const n = Math.hypot(fwd, right) || 1;
  const dx = ((-s * fwd + c * right) / n) * step;
  const dz = ((-c * fwd - s * right) / n) * step;
  origin.p = [origin.p[0] + dx, origin.p[1], origin.p[2] + dz];
  return Math.hypot(dx, dz);
}

// Turn about the head (not about the origin), so the world pivots around the viewer.
function turnAboutHead(origin, headP, angle) {
  const before = applyOrigin(origin, { p: headP, q: [0, 0, 0, 1] }).p;
  origin.yaw += angle;
  const after = applyOrigin(origin, { p: headP, q: [0, 0, 0, 1] }).p;
  origin.p = [origin.p[0] + before[0] - after[0], origin.p[1], origin.p[2] + before[2] - after[2]];
}

// Thumbstick x turns: in steps of comfort.snapDeg (once per push), or smoothly when 0.
// Returns the angle turned (radians, positive = left).
export function turn(origin, x, headP, dt, comfort = COMFORT_DEFAULTS) {
  if (comfort.snapDeg > 0) {
    if (Math.abs(x) < SNAP_REARM) origin.snapArmed = true;
    if (!origin.snapArmed || Math.abs(x) < SNAP_FIRE) return 0;
    origin.snapArmed = false;
    const angle = -Math.sign(x) * (comfort.snapDeg * Math.PI) / 180;
    turnAboutHead(origin, headP, angle);
    return angle;
  }
  const v = dead(x, comfort.deadzone);
  if (!v) return 0;
  const angle = (-v * comfort.smoothTurnDegPerS * Math.PI * dt) / 180;
  turnAboutHead(origin, headP, angle);
  return angle;
}

// Where a pointer ray (scene coordinates) meets the floor (y = floorY) within reach; or null.
export function floorHit(rayP, rayDir, floorY = 0, maxDist = TELEPORT_MAX_M) {
  if (!(rayDir[1] < -1e-3)) return null; // pointing level or up: never reaches the floor
  const t = (floorY - rayP[1]) / rayDir[1];
  if (!(t > 0)) return null;
  const hit = [rayP[0] + rayDir[0] * t, floorY, rayP[2] + rayDir[2] * t];
  return Math.hypot(hit[0] - rayP[0], hit[2] - rayP[2]) <= maxDist ? hit : null;
}

// Aim by pushing the stick forward; releasing it jumps the head (x/z) to the target.
// `ray` is the pointer in scene coordinates {p, dir}. Returns {target, jumped}.
export function teleportStep(origin, stickY, ray, headP) {
  // The floor is the origin's height (the spawn's floor), reach scales with the viewer.
  const target = ray ? floorHit(ray.p, ray.dir, origin.p[1], TELEPORT_MAX_M * (origin.scale || 1)) : null;
  if (stickY < -TELEPORT_AIM) {
    origin.aiming = true;
    return { target, jumped: false };
  }
  if (origin.aiming && Math.abs(stickY) < SNAP_REARM) {
    origin.aiming = false;
    if (target) {
      const head = applyOrigin(origin, { p: headP, q: [0, 0, 0, 1] }).p;
      origin.p = [origin.p[0] + target[0] - head[0], origin.p[1], origin.p[2] + target[2] - head[2]];
      return { target, jumped: true };
    }
  }
  return { target: origin.aiming ? target : null, jumped: false };
}

// Comfort vignette: how much to darken the edges (0..1) for this frame's motion.
export function vignetteStrength(metresPerS, radPerS, comfort = COMFORT_DEFAULTS) {
  if (!comfort.vignette) return 0;
  return Math.min(1, metresPerS / 1.5 + Math.abs(radPerS) / 1.5);
}
