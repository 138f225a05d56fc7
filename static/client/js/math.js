// Pose and reprojection math. Pure functions only (no DOM, no WebGL), so the browser and
// Node's test runner import the same module. Conventions follow WebXR: right-handed, +Y up,
// the viewer looks down -Z, quaternions are [x, y, z, w], 4x4 matrices are column-major
// Float32Array-compatible arrays of 16 numbers.

export const IDENTITY_Q = Object.freeze([0, 0, 0, 1]);

export function quatMultiply(a, b) {
  const [ax, ay, az, aw] = a;
  const [bx, by, bz, bw] = b;
  return [
    aw * bx + ax * bw + ay * bz - az * by,
    aw * by - ax * bz + ay * bw + az * bx,
    aw * bz + ax * by - ay * bx + az * bw,
    aw * bw - ax * bx - ay * by - az * bz,
  ];
}

export function quatConjugate([x, y, z, w]) {
  return [-x, -y, -z, w];
}

export function quatNormalize(q) {
  const n = Math.hypot(q[0], q[1], q[2], q[3]);
  if (!(n > 1e-12)) return [0, 0, 0, 1];
  return [q[0] / n, q[1] / n, q[2] / n, q[3] / n];
}

export function quatFromAxisAngle([x, y, z], angle) {
  const n = Math.hypot(x, y, z) || 1;
  const s = Math.sin(angle / 2) / n;
  return [x * s, y * s, z * s, Math.cos(angle / 2)];
}

// Yaw about +Y, then pitch about the yawed +X: what mouse-look produces. Inverse of the
// worker's `yaw_pitch()` (workers/streaming/frames.py).
export function quatFromYawPitch(yaw, pitch) {
  return quatMultiply(quatFromAxisAngle([0, 1, 0], yaw), quatFromAxisAngle([1, 0, 0], pitch));
}

export function yawPitchFromQuat([x, y, z, w]) {
  const yaw = Math.atan2(2 * (w * y + x * z), 1 - 2 * (x * x + y * y));
  const pitch = Math.asin(Math.max(-1, Math.min(1, 2 * (w * x - y * z))));
  return { yaw, pitch };
}

export function quatRotate(q, [vx, vy, vz]) {
  const [x, y, z, w] = q;
  // v' = v + 2w (u x v) + 2 u x (u x v), u = (x, y, z)
  const tx = 2 * (y * vz - z * vy);
  const ty = 2 * (z * vx - x * vz);
  const tz = 2 * (x * vy - y * vx);
  return [
    vx + w * tx + (y * tz - z * ty),
    vy + w * ty + (z * tx - x * tz),
    vz + w * tz + (x * ty - y * tx),
  ];
}

// The rotation that takes directions in the view a frame was rendered from into the current
// view: d_now = conj(q_now) * q_render * d_render. Identity when the head has not turned.
export function rotationDelta(renderQ, currentQ) {
  return quatNormalize(quatMultiply(quatConjugate(quatNormalize(currentQ)), quatNormalize(renderQ)));
}

// Angle in radians of a rotation quaternion (0..pi).
export function rotationAngle(q) {
  const w = Math.min(1, Math.abs(quatNormalize(q)[3]));
  return 2 * Math.acos(w);
}

export function mat4Identity() {
  return [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
}

export function mat4FromQuat(q) {
  const [x, y, z, w] = quatNormalize(q);
  const xx = x * x, yy = y * y, zz = z * z;
  const xy = x * y, xz = x * z, yz = y * z, wx = w * x, wy = w * y, wz = w * z;
  return [
    1 - 2 * (yy + zz), 2 * (xy + wz), 2 * (xz - wy), 0,
    2 * (xy - wz), 1 - 2 * (xx + zz), 2 * (yz + wx), 0,
    2 * (xz + wy), 2 * (yz - wx), 1 - 2 * (xx + yy), 0,
    0, 0, 0, 1,
  ];
}

export function mat4Multiply(a, b) {
  const out = new Array(16).fill(0);
  for (let col = 0; col < 4; col++) {
    for (let row = 0; row < 4; row++) {
      let sum = 0;
      for (let k = 0; k < 4; k++) sum += a[k * 4 + row] * b[col * 4 + k];
      out[col * 4 + row] = sum;
    }
  }
  return out;
}

export function mat4TransformPoint(m, [x, y, z, w = 1]) {
  return [
    m[0] * x + m[4] * y + m[8] * z + m[12] * w,
    m[1] * x + m[5] * y + m[9] * z + m[13] * w,
    m[2] * x + m[6] * y + m[10] * z + m[14] * w,
    m[3] * x + m[7] * y + m[11] * z + m[15] * w,
  ];
}

// OpenGL/WebXR-style perspective projection (column-major), vertical field of view.
export function mat4Perspective(fovY, aspect, near, far) {
  const f = 1 / Math.tan(fovY / 2);
  const nf = 1 / (near - far);
  return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0];
}

// The view-space direction (on the z = -1 plane) that projection `proj` maps to the
// normalised device coordinate (ndcX, ndcY). Works for asymmetric (per-eye) frusta.
export function ndcToViewRay(proj, ndcX, ndcY) {
  // clip.x = m00 x + m02 z, clip.w = -z; with z = -1: ndcX = m00 x - m02.
  return [(ndcX + proj[8]) / proj[0], (ndcY + proj[9]) / proj[5], -1];
}

// The four corners of an eye's picture as view-space rays, in triangle-strip order
// (bottom-left, bottom-right, top-left, top-right), with the texture coordinates of each.
export function eyeQuad(proj) {
  const corners = [[-1, -1], [1, -1], [-1, 1], [1, 1]];
  return corners.map(([x, y]) => ({ ray: ndcToViewRay(proj, x, y), uv: [(x + 1) / 2, (y + 1) / 2] }));
}

// The matrix the reprojection vertex shader applies to the quad's rays: rotate from the
// render view into the current view, then project. A planar quad under a perspective
// projection is a homography, so the GPU's perspective-correct interpolation makes this
// exact for pure rotation (translation since render is left uncorrected: it needs depth).
export function reprojectionMatrix(proj, delta) {
  return mat4Multiply(proj, mat4FromQuat(delta));
}

// Where the picture point rendered at (ndcX, ndcY) lands now, in NDC; null if behind.
export function reprojectNdc(proj, delta, ndcX, ndcY) {
  const clip = mat4TransformPoint(reprojectionMatrix(proj, delta), [...ndcToViewRay(proj, ndcX, ndcY), 1]);
  if (!(clip[3] > 1e-9)) return null;
  return [clip[0] / clip[3], clip[1] / clip[3]];
}

// The layout of a frame (its metadata's `views`, workers/protocol/frames.py FrameMeta): 2 is the
// side-by-side stereo picture, 1 one centre view filling the whole picture. Absent (older
// workers) or anything else means side by side.
export function frameViews(meta) {
  return meta && meta.views === 1 ? 1 : 2;
}

// The layout of the picture now on the video element (w x h), from `known` ({views, w, h}: the
// layout and size of the last frame whose metadata was matched): the same while the size is
// the same; a picture twice (half) as wide at the same height is the other layout: the first
// frames after a switch, before their metadata is matched. Side by side when nothing is known.
export function pictureViews(known, w, h) {
  if (!known) return 2;
  if (known.h === h && known.views === 1 && w === 2 * known.w) return 2;
  if (known.h === h && known.views === 2 && 2 * w === known.w) return 1;
  return known.views;
}

// The side-by-side stereo picture: left eye in the left half, right eye in the right half; a
// mono picture (views 1) is the same whole picture for either eye.
// Texture rectangle [u0, v0, u1, v1] of an eye (v up, as WebGL samples an uploaded video).
export function eyeUvRect(eye, views = 2) {
  if (eye !== "left" && eye !== "right") throw new Error(`unknown eye ${eye}`);
  if (views === 1) return [0, 0, 1, 1];
  return eye === "left" ? [0, 0, 0.5, 1] : [0.5, 0, 1, 1];
}

// Source rectangle of an eye in video pixels {x, y, w, h}, for drawImage().
export function eyeSourceRect(eye, videoWidth, videoHeight, views = 2) {
  if (eye !== "left" && eye !== "right") throw new Error(`unknown eye ${eye}`);
  if (views === 1) return { x: 0, y: 0, w: videoWidth, h: videoHeight };
  const half = Math.floor(videoWidth / 2);
  if (eye === "left") return { x: 0, y: 0, w: half, h: videoHeight };
  return { x: half, y: 0, w: videoWidth - half, h: videoHeight };
}

// WebXR names eyes "left"/"right"/"none"; a mono view shows the left half.
export function eyeOfView(view) {
  return view && view.eye === "right" ? "right" : "left";
}

// Desktop movement: WASD along the yawed view (not pitched, so looking down does not dig
// into the floor), Q/E down/up. `keys` is a Set of KeyboardEvent.code values.
export function moveDelta(keys, yaw, distance) {
  let fwd = 0, right = 0, up = 0;
  if (keys.has("KeyW") || keys.has("ArrowUp")) fwd += 1;
  if (keys.has("KeyS") || keys.has("ArrowDown")) fwd -= 1;
  if (keys.has("KeyD") || keys.has("ArrowRight")) right += 1;
  if (keys.has("KeyA") || keys.has("ArrowLeft")) right -= 1;
  if (keys.has("KeyE") || keys.has("Space")) up += 1;
  if (keys.has("KeyQ")) up -= 1;
  const n = Math.hypot(fwd, right) || 1;
  const s = Math.sin(yaw), c = Math.cos(yaw);
  // Forward is -Z rotated by yaw about +Y: (-sin, 0, -cos); right is (cos, 0, -sin).
  return [
    ((-s * fwd + c * right) / n) * distance,
    up * distance,
    ((-c * fwd - s * right) / n) * distance,
  ];
}

export const PITCH_LIMIT = Math.PI / 2 - 0.01;

export function clampPitch(pitch) {
  return Math.max(-PITCH_LIMIT, Math.min(PITCH_LIMIT, pitch));
}

// A pose message for the worker's `pose` data channel (workers/protocol/pose.py parse_pose).
export function poseMessage({ p, q, t, seq, hands, proj, xr }) {
  const msg = { p: p.map(Number), q: quatNormalize(q), t, seq };
  if (hands && Object.keys(hands).length) msg.hands = hands;
  if (proj) msg.proj = [Array.from(proj[0]), Array.from(proj[1])];
  if (xr) msg.xr = xr; // immersive extras: locomotion origin, input kinds, event counters
  return msg;
}
