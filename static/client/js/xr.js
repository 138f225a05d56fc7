// Immersive VR: each eye's half of the side-by-side video on a quad per XR view, reprojected
// by the rotation between the pose the frame was rendered with and the current head pose.
// The viewer pose, per-eye projections and controller poses go to the worker every XR frame.
import { eyeOfView, eyeQuad, eyeUvRect, reprojectionMatrix, rotationDelta } from "./math.js";

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
out vec4 color;
void main() { color = texture(u_tex, v_uv); }`;

function compile(gl, type, source) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
  return shader;
}

export class ReprojectingRenderer {
  constructor(gl) {
    this.gl = gl;
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERT));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAG));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
    this.program = program;
    this.loc = {
      ray: gl.getAttribLocation(program, "a_ray"),
      uv: gl.getAttribLocation(program, "a_uv"),
      m: gl.getUniformLocation(program, "u_m"),
      rect: gl.getUniformLocation(program, "u_rect"),
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
    return true;
  }

  // Draw one eye into the current viewport. `renderQ`: orientation the frame was rendered
  // with; `currentQ`: the head orientation now; `proj`: this view's projection matrix.
  drawEye(eye, proj, renderQ, currentQ) {
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
    gl.uniform4fv(this.loc.rect, new Float32Array(eyeUvRect(eye)));
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

// Runs an immersive session until it ends. `stream` is the StreamClient; `renderPose()`
// returns the {q} the currently shown video frame was rendered with (or null).
export async function runImmersive({ video, stream, renderPose, onEnd }) {
  const session = await navigator.xr.requestSession("immersive-vr", { optionalFeatures: ["local-floor"] });
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
  session.addEventListener("end", () => onEnd?.());

  const onFrame = (time, frame) => {
    session.requestAnimationFrame(onFrame);
    const pose = frame.getViewerPose(space);
    if (!pose) return;
    const head = rigid(pose.transform);
    const views = pose.views;
    const hands = {};
    for (const source of session.inputSources) {
      if (!source.gripSpace || (source.handedness !== "left" && source.handedness !== "right")) continue;
      const grip = frame.getPose(source.gripSpace, space);
      if (grip) hands[source.handedness] = rigid(grip.transform);
    }
    const left = views.find((v) => v.eye === "left") || views[0];
    const right = views.find((v) => v.eye === "right") || views[views.length - 1];
    stream.sendPose({ ...head, hands, proj: [left.projectionMatrix, right.projectionMatrix] });

    const layer = session.renderState.baseLayer;
    gl.bindFramebuffer(gl.FRAMEBUFFER, layer.framebuffer);
    gl.clearColor(0, 0, 0, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    if (!renderer.upload(video)) return;
    const rendered = renderPose();
    for (const view of views) {
      const vp = layer.getViewport(view);
      gl.viewport(vp.x, vp.y, vp.width, vp.height);
      renderer.drawEye(eyeOfView(view), Array.from(view.projectionMatrix), rendered?.q, head.q);
    }
  };
  session.requestAnimationFrame(onFrame);
  return session;
}
