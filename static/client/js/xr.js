// Immersive VR: each eye's half of the side-by-side video on a quad per XR view, reprojected
// by the rotation between the pose the frame was rendered with and the current head pose. A
// mono frame (one centre view: the desktop's layout, in the moments after entering VR until
// the worker switches to both eyes) fills each eye whole.
// The viewer pose, per-eye projections, controllers/hands and the locomotion origin go to the
// worker every XR frame; the worker renders the head placed by the origin.
import {
  eyeOfView, eyeQuad, eyeUvRect, mat4TransformPoint, quatConjugate, quatMultiply, quatRotate,
  reprojectionMatrix, rotationDelta,
} from "./math.js";
import { XrInput } from "./xr-input.js";
import {
  applyOrigin, COMFORT_DEFAULTS, makeOrigin, originMessage, originQuat, scalePose, smoothMove, teleportStep, turn,
  vignetteStrength,
} from "./xr-locomotion.js";
import { linkProgram, Overlay } from "./xr-overlay.js";
import { DEFAULT_BLOCK, STAMP_BAND } from "./stamp.js";

const VERT = `#version 300 es
in vec3 a_ray;
in vec2 a_uv;
uniform mat4 u_m;
uniform vec4 u_rect;
out vec2 v_uv;
void main() {
  vec4 c = u_m * vec4(a_ray, 1.0);
  gl_Position = vec4(c.xy, 0.0, c.w);  // depth is irrelevant: one layer, no depth test
  v_uv = mix(u_rect.xy, u_rect.zw, a_uv);
}`;
const FRAG = `#version 300 es
precision mediump float;
in vec2 v_uv;
uniform sampler2D u_tex;
uniform float u_top;  // v above which the frame-id stamp's band lies: not part of the view
out vec4 color;
void main() { color = v_uv.y > u_top ? vec4(0.0, 0.0, 0.0, 1.0) : texture(u_tex, v_uv); }`;

export class ReprojectingRenderer {
  constructor(gl) {
    this.gl = gl;
    const program = linkProgram(gl, VERT, FRAG);
    this.program = program;
    this.loc = {
      ray: gl.getAttribLocation(program, "a_ray"),
      uv: gl.getAttribLocation(program, "a_uv"),
      m: gl.getUniformLocation(program, "u_m"),
      rect: gl.getUniformLocation(program, "u_rect"),
      top: gl.getUniformLocation(program, "u_top"),
      tex: gl.getUniformLocation(program, "u_tex"),
    };
    this.buffer = gl.createBuffer();
    this.texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
  }

  upload(video) {
    const gl = this.gl;
    if (video.readyState < 2) return false;
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    // v = 0 at the bottom, matching eyeUvRect/eyeQuad.
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, true);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, video);
    // The stamp's rows along the top edge are blacked out, not stretched away: the picture
    // keeps its projection (reprojection and the per-eye mapping depend on it).
    const rows = video.videoHeight || 0; // a canvas source (tests) has no stamp
    this.top = rows > 4 * DEFAULT_BLOCK ? 1 - STAMP_BAND / rows : 1;
    return true;
  }

  // Draw one eye into the current viewport. `renderQ`: orientation the frame was rendered
  // with; `currentQ`: the head orientation now; `proj`: this view's projection matrix;
  // `views`: the frame's layout (2 side by side, 1 one view for both eyes).
  drawEye(eye, proj, renderQ, currentQ, views = 2) {
    const gl = this.gl;
    const quad = eyeQuad(proj);
    const data = new Float32Array(quad.flatMap((c) => [...c.ray, ...c.uv]));
    gl.useProgram(this.program);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffer);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STREAM_DRAW);
    gl.enableVertexAttribArray(this.loc.ray);
    gl.vertexAttribPointer(this.loc.ray, 3, gl.FLOAT, false, 20, 0);
    gl.enableVertexAttribArray(this.loc.uv);
    gl.vertexAttribPointer(this.loc.uv, 2, gl.FLOAT, false, 20, 12);
    const delta = renderQ ? rotationDelta(renderQ, currentQ) : [0, 0, 0, 1];
    gl.uniformMatrix4fv(this.loc.m, false, new Float32Array(reprojectionMatrix(proj, delta)));
    gl.uniform4fv(this.loc.rect, new Float32Array(eyeUvRect(eye, views)));
    gl.uniform1f(this.loc.top, this.top ?? 1);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.uniform1i(this.loc.tex, 0);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }
}

export async function xrSupported() {
  try {
    return Boolean(navigator.xr && (await navigator.xr.isSessionSupported("immersive-vr")));
  } catch {
    return false;
  }
}

function rigid(transform) {
  const { x, y, z } = transform.position;
  const o = transform.orientation;
  return { p: [x, y, z], q: [o.x, o.y, o.z, o.w] };
}

// ---------------------------------------------------------------- comfort settings

const COMFORT_KEY = "vrplatform.comfort";

export function loadComfort() {
  try {
    return { ...COMFORT_DEFAULTS, ...JSON.parse(localStorage.getItem(COMFORT_KEY) || "{}") };
  } catch {
    return { ...COMFORT_DEFAULTS };
  }
}

// The page's comfort controls (snap angle, vignette): shown where VR is, remembered.
export function setupComfortControls(comfort) {
  const box = document.getElementById("xr-comfort");
  if (!box) return;
  const snap = document.getElementById("snap-angle");
  const vignette = document.getElementById("vignette");
  snap.value = String(comfort.snapDeg);
  vignette.checked = comfort.vignette;
  const save = () => {
    comfort.snapDeg = Number(snap.value);
    comfort.vignette = vignette.checked;
    localStorage.setItem(COMFORT_KEY, JSON.stringify({ snapDeg: comfort.snapDeg, vignette: comfort.vignette }));
  };
  snap.addEventListener("change", save);
  vignette.addEventListener("change", save);
  box.hidden = false;
}

// ---------------------------------------------------------------- the immersive session

// What the session is doing, for the page's debugging hook (window.vrplatform.xr()).
export const xrState = {
  supported: null, // null until the page has asked the browser
  active: false,
  sessions: 0,
  frames: 0,
  views: [], // [{eye, viewport: [x, y, w, h]}] of the last frame
  frameViews: null, // the layout of the video picture last drawn (1 one view, 2 side by side)
  head: null, // {p, q} in the headset's space
  world: null, // {p, q}: the head in the scene (origin applied)
  origin: null, // {p, yaw}
  message: null,
  vignette: 0,
  target: null,
  input: null, // {kinds, ev, hands: sides tracked}
  teleports: 0,
};

const IDENT_Q = [0, 0, 0, 1];

// Where a scene point appears in a view, in NDC; null when behind the eye.
function projectToView(point, origin, view) {
  const scale = origin.scale || 1; // scene units per metre of the reference space
  const local = quatRotate(quatConjugate(originQuat(origin)), point.map((v, i) => (v - origin.p[i]) / scale));
  const eye = mat4TransformPoint(Array.from(view.transform.inverse.matrix), [...local, 1]);
  const clip = mat4TransformPoint(Array.from(view.projectionMatrix), eye);
  return clip[3] > 1e-6 ? [clip[0] / clip[3], clip[1] / clip[3]] : null;
}

// Runs an immersive session until it ends. `stream` is the StreamClient; `renderPose()`
// returns the {q} the currently shown video frame was rendered with (or null);
// `frameViews()` that frame's layout (its metadata's views: 1 or 2); `message()` what to show
// instead of (or over) the picture, or null; `comfort` the comfort settings.
// `voice` (voice.js): the left controller's X button is push-to-talk; the view marks "on air".
// `spawn` (session_established scene.spawn): where the viewer starts and how big (makeOrigin).
export async function runImmersive({
  video, stream, renderPose, frameViews = () => 2, message, comfort = COMFORT_DEFAULTS, voice, onEnd, spawn = null,
}) {
  const session = await navigator.xr.requestSession("immersive-vr", { optionalFeatures: ["local-floor", "hand-tracking"] });
  const canvas = document.createElement("canvas");
  const gl = canvas.getContext("webgl2", { xrCompatible: true, antialias: false });
  await gl.makeXRCompatible?.();
  session.updateRenderState({ baseLayer: new XRWebGLLayer(session, gl) });
  let space;
  try {
    space = await session.requestReferenceSpace("local-floor");
  } catch {
    space = await session.requestReferenceSpace("local");
  }
  const renderer = new ReprojectingRenderer(gl);
  const overlay = new Overlay(gl);
  const input = new XrInput(session);
  const origin = makeOrigin(spawn);
  const scale = origin.scale;
  let lastTime = null;
  let vignette = 0;
  let pttHeld = false;
  xrState.active = true;
  xrState.sessions++;
  xrState.teleports = 0;
  session.addEventListener("end", () => {
    xrState.active = false;
    if (pttHeld) voice?.setPushToTalk(false);
    onEnd?.();
  });

  const onFrame = (time, frame) => {
    session.requestAnimationFrame(onFrame);
    const pose = frame.getViewerPose(space);
    if (!pose) return;
    const dt = lastTime === null ? 0 : Math.min(0.1, (time - lastTime) / 1000);
    lastTime = time;
    // The headset's display rate (72/90/120 Hz): the worker paces the stream by it.
    if (session.frameRate) stream.displayHz = session.frameRate;
    else if (dt > 0) stream.displayHz = 0.9 * (stream.displayHz || 1 / dt) + 0.1 / dt;
    // Reference-space poses in scene units from here on (scale 1 but for big scenes).
    const head = scalePose(rigid(pose.transform), scale);
    const hands = input.read(frame, space);
    for (const side of Object.keys(hands.hands)) hands.hands[side] = scalePose(hands.hands[side], scale);
    for (const side of Object.keys(hands.rays)) hands.rays[side] = scalePose(hands.rays[side], scale);

    // Locomotion: left stick moves, right stick turns (x) and aims a teleport (forward).
    let moved = 0, turned = 0, target = null;
    if (hands.sticks.left) {
      // Walking speed grows with the viewer (comfort is read live: the settings may change).
      moved = smoothMove(origin, hands.sticks.left, head.q, dt, { ...comfort, moveSpeed: comfort.moveSpeed * scale }) / scale;
    }
    if (hands.sticks.right) {
      turned = turn(origin, hands.sticks.right.x, head.p, dt, comfort);
      const local = hands.rays.right;
      const ray = local && { p: applyOrigin(origin, { p: local.p, q: IDENT_Q }).p, dir: quatRotate(originQuat(origin), local.dir) };
      const step = teleportStep(origin, hands.sticks.right.y, ray, head.p);
      target = step.target;
      if (step.jumped) xrState.teleports++;
    }
    // xr-standard: buttons[4] is X on the left controller (A on the right).
    const ptt = Boolean(hands.buttons.left?.[4]);
    if (voice && ptt !== pttHeld) voice.setPushToTalk((pttHeld = ptt));
    // A snap or a jump darkens the edges for a moment, then fades.
    const now = dt > 0 ? vignetteStrength(moved / dt, turned / dt, comfort) : 0;
    vignette = Math.max(now, comfort.vignette ? vignette * 0.85 : 0);

    const views = pose.views;
    const left = views.find((v) => v.eye === "left") || views[0];
    const right = views.find((v) => v.eye === "right") || views[views.length - 1];
    stream.sendPose({
      ...head,
      hands: hands.hands,
      proj: [left.projectionMatrix, right.projectionMatrix],
      xr: { origin: originMessage(origin), kinds: hands.kinds, ev: hands.ev },
    });

    const layer = session.renderState.baseLayer;
    gl.bindFramebuffer(gl.FRAMEBUFFER, layer.framebuffer);
    gl.clearColor(0, 0, 0, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    const hasPicture = renderer.upload(video);
    const rendered = renderPose();
    const layout = frameViews();
    // Reprojection compares poses in the scene: the render pose already has the origin in it.
    const worldQ = quatMultiply(originQuat(origin), head.q);
    const text = message() || (hasPicture ? null : "Waiting for video…");
    xrState.views = [];
    for (const view of views) {
      const vp = layer.getViewport(view);
      gl.viewport(vp.x, vp.y, vp.width, vp.height);
      if (hasPicture) renderer.drawEye(eyeOfView(view), Array.from(view.projectionMatrix), rendered?.q, worldQ, layout);
      overlay.draw({ message: text, vignette, target: target && projectToView(target, origin, view), onAir: voice?.transmitting });
      xrState.views.push({ eye: view.eye, viewport: [vp.x, vp.y, vp.width, vp.height] });
    }
    xrState.frames++;
    xrState.frameViews = hasPicture ? layout : null;
    xrState.head = head;
    xrState.world = applyOrigin(origin, head);
    xrState.origin = { p: origin.p.slice(), yaw: origin.yaw };
    xrState.message = text;
    xrState.vignette = vignette;
    xrState.target = target;
    xrState.input = { kinds: hands.kinds, ev: hands.ev, hands: Object.keys(hands.hands) };
  };
  session.requestAnimationFrame(onFrame);
  return session;
}
