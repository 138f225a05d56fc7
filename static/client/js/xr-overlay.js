// What the client draws itself on top of the streamed picture in VR: a head-locked message
// panel (stream lost, session ended), the comfort vignette while moving, and the teleport
// target. Everything is a quad in a view's clip space; no scene geometry.
const VERT = `#version 300 es
in vec2 a_pos;
uniform vec4 u_rect; // x0 y0 x1 y1 in NDC
out vec2 v_uv;
out vec2 v_ndc;
void main() {
  v_uv = a_pos;
  v_ndc = mix(u_rect.xy, u_rect.zw, a_pos);
  gl_Position = vec4(v_ndc, 0.0, 1.0);
}`;
const FRAG = `#version 300 es
precision mediump float;
in vec2 v_uv;
in vec2 v_ndc;
uniform int u_mode; // 0 texture, 1 vignette, 2 flat colour
uniform sampler2D u_tex;
uniform float u_strength;
uniform vec4 u_color;
out vec4 color;
void main() {
  if (u_mode == 0) color = texture(u_tex, vec2(v_uv.x, 1.0 - v_uv.y));
  else if (u_mode == 1) color = vec4(0.0, 0.0, 0.0, u_strength * smoothstep(0.45, 1.0, length(v_ndc)));
  else color = u_color;
}`;

export const MESSAGE_BACKGROUND = [150, 24, 24]; // rgb of the message panel (tests look for it)

function compile(gl, type, source) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
  return shader;
}

// A linked WebGL2 program from vertex and fragment sources (throws with the driver's log).
export function linkProgram(gl, vert, frag) {
  const program = gl.createProgram();
  gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, vert));
  gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, frag));
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
  return program;
}

export class Overlay {
  constructor(gl) {
    this.gl = gl;
    const program = linkProgram(gl, VERT, FRAG);
    this.program = program;
    this.loc = Object.fromEntries(["u_rect", "u_mode", "u_tex", "u_strength", "u_color"].map((n) => [n, gl.getUniformLocation(program, n)]));
    this.aPos = gl.getAttribLocation(program, "a_pos");
    this.buffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffer);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([0, 0, 1, 0, 0, 1, 1, 1]), gl.STATIC_DRAW);
    this.texture = gl.createTexture();
    this.text = null;
    this.canvas = document.createElement("canvas");
    this.canvas.width = 512;
    this.canvas.height = 128;
  }

  _setText(text) {
    if (text === this.text) return;
    this.text = text;
    const c = this.canvas.getContext("2d");
    c.fillStyle = `rgb(${MESSAGE_BACKGROUND.join(",")})`;
    c.fillRect(0, 0, 512, 128);
    c.fillStyle = "#fff";
    c.font = "28px sans-serif";
    c.textAlign = "center";
    c.textBaseline = "middle";
    // Two lines at most: the status texts are one sentence or two.
    const words = text.split(" ");
    const lines = [""];
    for (const word of words) {
      const next = lines[lines.length - 1] ? `${lines[lines.length - 1]} ${word}` : word;
      if (c.measureText(next).width > 480 && lines[lines.length - 1]) lines.push(word);
      else lines[lines.length - 1] = next;
    }
    lines.slice(0, 3).forEach((line, i, all) => c.fillText(line, 256, 64 + (i - (all.length - 1) / 2) * 34));
    const gl = this.gl;
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, this.canvas);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
  }

  _quad(rect, mode, { strength = 0, color = [1, 1, 1, 1] } = {}) {
    const gl = this.gl;
    gl.useProgram(this.program);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffer);
    gl.enableVertexAttribArray(this.aPos);
    gl.vertexAttribPointer(this.aPos, 2, gl.FLOAT, false, 0, 0);
    gl.uniform4fv(this.loc.u_rect, rect);
    gl.uniform1i(this.loc.u_mode, mode);
    gl.uniform1f(this.loc.u_strength, strength);
    gl.uniform4fv(this.loc.u_color, color);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.uniform1i(this.loc.u_tex, 0);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    gl.disable(gl.BLEND);
  }

  // Draw into the current viewport. `message`: text or null; `vignette`: 0..1;
  // `target`: the teleport target in this view's NDC [x, y], or null; `onAir`: mic open.
  draw({ message, vignette, target, onAir }) {
    if (vignette > 0.01) this._quad([-1, -1, 1, 1], 1, { strength: vignette });
    // "On air": the microphone is open (a small green mark low in the view).
    if (onAir) this._quad([-0.03, -0.78, 0.03, -0.72], 2, { color: [0.2, 0.85, 0.3, 0.9] });
    if (target) {
      const [x, y] = target, s = 0.04;
      this._quad([x - s, y - s, x + s, y + s], 2, { color: [0.2, 0.9, 1.0, 0.9] });
    }
    if (message) {
      this._setText(message);
      this._quad([-0.7, -0.18, 0.7, 0.18], 0);
    }
  }
}
