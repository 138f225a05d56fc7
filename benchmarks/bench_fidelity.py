"""Fidelity of the platform's glTF renderer against a reference renderer (three.js), per model.

Run::

    .venv/bin/python benchmarks/bench_fidelity.py --models /tmp/fidelity_models \
        [--size 512] [--fov 45] [--frames 5] [--out fidelity-out] [--only DamagedHelmet,Fox]

``--models`` is a folder of glTF models: ``.glb``/``.gltf`` files, or one folder per model
holding its ``.gltf`` with its resources (the Khronos layout ``Model/glTF/Model.gltf`` works).

For each model:

- **ours**: the file is read with the platform's strict reader (``gltf_package.load_package``),
  posed at t = 0 when it is animated (``SceneAnimation.scene_at(0)``, as the thumbnail does),
  loaded into ``workers.rendering.renderer.Renderer`` and rendered as one square view framed
  from its bounds exactly as the thumbnail is (``frame_bounds_pose``: same eye, orientation,
  vertical FOV, near and far). The median render time of ``--frames`` frames is the cost per
  frame on this machine's GL (llvmpipe here).
- **reference**: the same file in Debian's Chromium (headless, WebGL 2 on SwiftShader, launched
  as the browser tests launch it) with three.js's ``GLTFLoader`` and ``WebGLRenderer``, served
  from ``node_modules/three`` on a loopback HTTP server (no CDN). Same camera; the same
  lighting contract as ours (``workers/rendering/environment.py``): the default environment
  array as a float ``DataTexture`` (equirect, prefiltered by ``PMREMGenerator``) scaled by
  ``ENVIRONMENT_INTENSITY``; ``DEFAULT_LIGHTS`` as three.js lights when the scene brings no
  ``KHR_lights_punctual`` light (three.js lights are physical since r155: lux and candela as in
  glTF); Khronos PBR Neutral tone mapping (``NeutralToneMapping``) at ``EXPOSURE``; sRGB output;
  ``BACKGROUND_SRGB`` as the clear colour; no other light. An animated model plays its first
  clip at t = 0.

SSIM (``workers/streaming/ssim.py``, on BT.601 luma) and RGB PSNR are computed per model; a
markdown table is printed and written to ``OUT/fidelity.md``, and ``OUT/<model>.png`` shows
ours | three.js | |difference| x 4 side by side, so a person can look.

One module past ~700 lines on purpose: the reference page, its server and the comparison serve
this benchmark alone and share no code with the others (``duplicates`` finds none).
"""

from __future__ import annotations

import argparse
import base64
import http.server
import io
import math
import statistics
import sys
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.protocol import RUNGS  # noqa: E402
from workers.rendering import environment  # noqa: E402
from workers.rendering.animation import SceneAnimation  # noqa: E402
from workers.rendering.camera import CameraPose, frame_bounds_pose  # noqa: E402
from workers.rendering.gltf_package import load_package  # noqa: E402
from workers.rendering.renderer import Renderer  # noqa: E402
from workers.rendering.transforms import perspective  # noqa: E402
from workers.streaming.governor import RenderGovernor  # noqa: E402
from workers.streaming.ssim import ssim  # noqa: E402

THREE_DIR = ROOT / "node_modules" / "three"
MODEL_SUFFIXES = (".glb", ".gltf")
U8 = npt.NDArray[np.uint8]

# The reference page. Everything it loads comes from the loopback server: three.js from
# node_modules, the model from its own folder (so a .gltf's relative URIs resolve), the
# environment as raw float32 RGBA.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>fidelity reference</title>
<script type="importmap">
{"imports": {"three": "/three/build/three.module.js", "three/addons/": "/three/examples/jsm/"}}
</script></head>
<body style="margin:0;background:#000">
<script type="module">
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';

function linear(c) {
  return new THREE.Color().setRGB(c[0], c[1], c[2], THREE.LinearSRGBColorSpace);
}

function addLight(scene, l) {
  const range = l.range === null ? 0 : l.range;  // three.js: distance 0 is infinite
  let light;
  if (l.kind === 'directional') {
    light = new THREE.DirectionalLight(linear(l.color), l.intensity);
  } else if (l.kind === 'point') {
    light = new THREE.PointLight(linear(l.color), l.intensity, range, 2);
  } else {
    // Same mapping as GLTFLoader's KHR_lights_punctual spot.
    light = new THREE.SpotLight(linear(l.color), l.intensity, range, l.outer_cone_angle,
                                1 - l.inner_cone_angle / l.outer_cone_angle, 2);
  }
  const d = l.direction;
  if (l.kind === 'directional') {
    // A directional light shines from position towards target.
    light.position.set(-d[0], -d[1], -d[2]);
    light.target.position.set(0, 0, 0);
  } else {
    light.position.set(l.position[0], l.position[1], l.position[2]);
    light.target.position.set(l.position[0] + d[0], l.position[1] + d[1], l.position[2] + d[2]);
  }
  scene.add(light);
  if (light.target) scene.add(light.target);
}

async function environment(renderer, p) {
  const buf = await (await fetch('/env.bin')).arrayBuffer();
  const tex = new THREE.DataTexture(new Float32Array(buf), p.env_width, p.env_height,
                                    THREE.RGBAFormat, THREE.FloatType);
  tex.mapping = THREE.EquirectangularReflectionMapping;
  tex.colorSpace = THREE.LinearSRGBColorSpace;
  tex.magFilter = THREE.LinearFilter;
  tex.minFilter = THREE.LinearFilter;
  tex.generateMipmaps = false;
  tex.flipY = false;  // row 0 of the array is v = 0 (straight down), as equirectUv reads it
  tex.needsUpdate = true;
  const pmrem = new THREE.PMREMGenerator(renderer);
  const target = pmrem.fromEquirectangular(tex);
  pmrem.dispose();
  tex.dispose();
  return target.texture;
}

// One WebGL renderer and one prefiltered environment for every model of a run (the PMREM
// filtering is most of a frame's cost on SwiftShader).
let shared = null;

async function sharedRenderer(p) {
  if (shared && shared.antialias === p.antialias) return shared;
  if (shared) { shared.env.dispose(); shared.renderer.dispose(); shared.canvas.remove(); }
  const canvas = document.createElement('canvas');
  document.body.appendChild(canvas);
  const renderer = new THREE.WebGLRenderer({
    canvas, antialias: p.antialias, alpha: false, preserveDrawingBuffer: true,
  });
  renderer.setPixelRatio(1);
  renderer.outputColorSpace = THREE.SRGBColorSpace;
  shared = { canvas, renderer, antialias: p.antialias, env: await environment(renderer, p) };
  return shared;
}

function dispose(root) {
  root.traverse((o) => {
    if (o.geometry) o.geometry.dispose();
    for (const m of [].concat(o.material || [])) {
      for (const v of Object.values(m)) if (v && v.isTexture) v.dispose();
      m.dispose();
    }
  });
}

window.renderReference = async (p) => {
  const { canvas, renderer, env } = await sharedRenderer(p);
  renderer.setSize(p.width, p.height, false);
  renderer.toneMapping = THREE[p.tone_mapping];
  renderer.toneMappingExposure = p.exposure;
  const scene = new THREE.Scene();
  scene.background = new THREE.Color().setRGB(p.background[0], p.background[1],
                                               p.background[2], THREE.SRGBColorSpace);
  scene.environment = env;
  scene.environmentIntensity = p.environment_intensity;
  for (const l of p.lights) addLight(scene, l);
  const gltf = await new GLTFLoader().loadAsync(p.model_url);
  scene.add(gltf.scene);
  if (gltf.animations.length) {
    const mixer = new THREE.AnimationMixer(gltf.scene);
    mixer.clipAction(gltf.animations[0]).play();
    mixer.update(0);
  }
  const camera = new THREE.PerspectiveCamera(p.fov_y_deg, p.width / p.height, p.near, p.far);
  camera.position.set(...p.position);
  camera.quaternion.set(...p.orientation);
  scene.updateMatrixWorld(true);
  camera.updateMatrixWorld(true);
  renderer.render(scene, camera);
  const url = canvas.toDataURL('image/png');
  dispose(gltf.scene);
  const gl = renderer.getContext();
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const glName = gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
  return { png: url.split(',')[1], three: THREE.REVISION, gl: glName };
};
window.referenceReady = true;
</script></body></html>
"""

TONE_MAPPINGS = {"khronos_pbr_neutral": "NeutralToneMapping", "none": "NoToneMapping"}


@dataclass(frozen=True)
class View:
    """One camera, in the renderer's terms (camera-to-world pose, looking down -Z)."""

    pose: CameraPose
    fov_y_deg: float
    near: float
    far: float
    width: int
    height: int


@dataclass
class OurRender:
    rgb: U8
    view: View
    frame_ms: list[float]
    triangles: int
    skipped: list[str]
    gl: str
    has_lights: bool  # the scene brings KHR_lights_punctual lights: no default lights
    stereo_ms: list[float] = field(default_factory=list)  # both eyes at the stream rung


@dataclass
class Result:
    name: str
    ours: OurRender
    reference: U8
    ssim: float  # whole frame
    ssim_crop: float  # the model's screen rectangle only (see model_crop)
    psnr_db: float
    notes: list[str] = field(default_factory=list)

    @property
    def frame_ms(self) -> float:
        return statistics.median(self.ours.frame_ms)


def find_models(folder: Path) -> list[Path]:
    """The models of a folder: its .glb/.gltf files, and for each sub-folder the shallowest
    .gltf/.glb inside it (the Khronos layout ``Model/glTF/Model.gltf``)."""
    models: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in MODEL_SUFFIXES:
            models.append(entry)
        elif entry.is_dir():
            found = [p for p in entry.rglob("*") if p.suffix.lower() in MODEL_SUFFIXES]
            if found:
                models.append(min(found, key=lambda p: (len(p.parts), p.suffix != ".gltf", p)))
    return models


def model_name(path: Path, root: Path) -> str:
    return path.relative_to(root).parts[0].removesuffix(path.suffix) if path != root else path.stem


def has_punctual_lights(document: dict[str, Any]) -> bool:
    """Whether a node of the document carries a KHR_lights_punctual light (then the default
    lights stay off, in both renderers)."""
    return any(
        "KHR_lights_punctual" in (node.get("extensions") or {})
        for node in document.get("nodes", [])
    )


def render_ours(
    path: Path,
    *,
    size: int,
    fov_y_deg: float,
    frames: int,
    warmup: int = 1,
    stereo_eye: tuple[int, int] | None = None,
) -> OurRender:
    """Render the model as the thumbnail does (framed from its bounds), at ``size`` x ``size``;
    with ``stereo_eye``, also time stereo frames of that per-eye size (what a stream renders)
    from the same pose."""
    package = load_package(path)
    animation = SceneAnimation.from_package(package)
    source: Any = animation.scene_at(0.0) if animation else package
    with Renderer(size, size) as r:
        scene = r.load_scene(source)
        pose, near, far = frame_bounds_pose(scene.bounds_min, scene.bounds_max, fov_y_deg, 1.0)
        times: list[float] = []
        frame = None
        for i in range(warmup + max(frames, 1)):
            frame = r.render_view(
                pose, fov_y_deg=fov_y_deg, width=size, height=size, near=near, far=far
            )
            if i >= warmup:
                times.append(frame.render_ms)
        assert frame is not None
        rgb = frame.rgb().copy()
        view = View(pose, fov_y_deg, near, far, size, size)
        lights = has_punctual_lights(package.document)
        result = OurRender(rgb, view, times, scene.triangles, list(scene.skipped), r.info, lights)
        if stereo_eye is not None:
            r.resize(*stereo_eye)
            # The thumbnail's near and far (the renderer's defaults clip scenes in millimetres).
            proj = perspective(fov_y_deg, stereo_eye[0] / stereo_eye[1], near, far)
            for i in range(warmup + max(frames, 1)):
                stereo = r.render_stereo(pose, projections=(proj, proj))
                if i >= warmup:
                    result.stereo_ms.append(stereo.render_ms)
        return result


def governor_scale(cost_ms: float, fps: float, seconds: float = 120.0) -> tuple[float, float]:
    """Where the streaming worker's render governor settles for a frame that costs ``cost_ms``
    at full size: the real RenderGovernor, fed that cost scaled by the pixel count (its own
    model) for two minutes of frames. Returns (scale, the governor's budget in ms)."""
    governor = RenderGovernor(fps=fps)
    now = 0.0
    for _ in range(int(seconds * fps)):
        governor.observe(cost_ms * governor.scale**2, now)
        now += 1.0 / fps
    return governor.scale, governor.budget_ms


def reference_params(
    view: View, *, model_url: str, lights: bool, antialias: bool
) -> dict[str, Any]:
    """What the page needs: the camera, and the lighting contract of environment.py."""
    env = environment.default_environment()
    return {
        "model_url": model_url,
        "width": view.width,
        "height": view.height,
        "position": [float(v) for v in view.pose.position],
        "orientation": [float(v) for v in view.pose.orientation],
        "fov_y_deg": view.fov_y_deg,
        "near": view.near,
        "far": view.far,
        "antialias": antialias,
        "tone_mapping": TONE_MAPPINGS[environment.TONE_MAPPING],
        "exposure": environment.EXPOSURE,
        "background": list(environment.BACKGROUND_SRGB),
        "environment_intensity": environment.ENVIRONMENT_INTENSITY,
        "env_width": int(env.shape[1]),
        "env_height": int(env.shape[0]),
        "lights": [
            {
                "kind": light.kind,
                "color": list(light.color),
                "intensity": light.intensity,
                "direction": list(light.direction),
                "position": list(light.position),
                "range": light.range,
                "inner_cone_angle": light.inner_cone_angle,
                "outer_cone_angle": light.outer_cone_angle,
            }
            for light in (environment.DEFAULT_LIGHTS if lights else ())
        ],
    }


def environment_bytes() -> bytes:
    """The default environment as float32 RGBA rows, row 0 first (three.js wants 4 channels)."""
    env = environment.default_environment()
    rgba = np.concatenate([env, np.ones((*env.shape[:2], 1), np.float32)], axis=2)
    return np.ascontiguousarray(rgba, dtype="<f4").tobytes()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """/ the page, /env.bin the environment, /three/... node_modules/three, /model/... the
    current model's folder. Nothing else."""

    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def translate_path(self, path: str) -> str:
        path = urllib.parse.unquote(path.split("?", 1)[0].split("#", 1)[0])
        for prefix, base in (("/three/", THREE_DIR), ("/model/", self.server.model_dir)):
            if path.startswith(prefix):
                parts = [p for p in path[len(prefix) :].split("/") if p not in ("", ".")]
                if ".." not in parts:
                    return str(base.joinpath(*parts))
        return "/nonexistent"

    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            self._send(PAGE.encode(), "text/html; charset=utf-8")
        elif self.path == "/env.bin":
            self._send(self.server.env_bytes, "application/octet-stream")
        else:
            super().do_GET()

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 64  # the default 5 is short for Chromium's parallel texture requests
    model_dir: Path = Path("/nonexistent")
    env_bytes: bytes = b""


_Handler.extensions_map = {
    **http.server.SimpleHTTPRequestHandler.extensions_map,
    ".js": "text/javascript",
    ".gltf": "model/gltf+json",
    ".glb": "model/gltf-binary",
}


class ReferenceRenderer:
    """three.js in headless Chromium behind a loopback server; one page, many models."""

    def __init__(self, *, antialias: bool = False) -> None:
        self.antialias = antialias
        self.three_revision = ""
        self.gl = ""
        self._console: list[str] = []
        self.errors: list[str] = []  # console errors of the last render, after its retries

    @contextmanager
    def running(self) -> Iterator[ReferenceRenderer]:
        from playwright.sync_api import sync_playwright

        from apps.core.testing_browser import CHROMIUM, CHROMIUM_ARGS

        if not (THREE_DIR / "build" / "three.module.js").exists():
            raise SystemExit("node_modules/three is missing: npm ci (package.json devDependencies)")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.env_bytes = environment_bytes()
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self._server = server
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    self._page = browser.new_page()
                    self._page.on("console", self._on_console)
                    self._page.set_default_timeout(120_000)
                    self._page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
                    self._page.wait_for_function("window.referenceReady === true")
                    yield self
                finally:
                    browser.close()
        finally:
            server.shutdown()
            server.server_close()

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self._console.append(message.text)

    def render(self, path: Path, view: View, *, lights: bool) -> U8:
        """The reference image. GLTFLoader does not fail when a texture does not load: it logs
        "Couldn't load texture" and draws the material without it (FlightHelmet's leather came
        out white once on the loaded machine, and scored 0.77), so a render that logged an
        error is retried; errors that persist are printed with the model's line."""
        from PIL import Image

        self._server.model_dir = path.parent
        params = reference_params(
            view, model_url=f"/model/{path.name}", lights=lights, antialias=self.antialias
        )
        for attempt in range(3):
            self._console = []
            out = self._page.evaluate("p => window.renderReference(p)", params)
            if not self._console:
                break
            print(
                f"{path.name}: three.js error (attempt {attempt + 1}): {self._console[0]}",
                file=sys.stderr,
            )
        self.errors = list(self._console)
        self.three_revision, self.gl = out["three"], out["gl"]
        img = Image.open(io.BytesIO(base64.b64decode(out["png"]))).convert("RGB")
        return np.asarray(img, dtype=np.uint8)


def _png(rgba: npt.ArrayLike) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgba, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def write_generated(folder: Path) -> list[Path]:
    """Three small models made here for what the public set lacks: a metallic x roughness grid
    of spheres (image-based lighting on metal), blended and masked layers (alpha modes, sorted
    blending), a normal-mapped sphere and floor. Written as ``gen-*.glb``."""
    from workers.rendering.gltf_builder import GltfBuilder, box, uv_sphere, write_glb

    folder.mkdir(parents=True, exist_ok=True)
    written = []

    b = GltfBuilder(generator="bench_fidelity")
    pos, nrm, _uv, idx = uv_sphere(0.22, 48, 24)
    for row in range(5):  # metallic 0 (bottom) .. 1 (top)
        for col in range(5):  # roughness 0 (left) .. 1 (right)
            mat = b.add_material(
                base_color_factor=(0.95, 0.64, 0.54, 1.0),
                metallic_factor=row / 4,
                roughness_factor=col / 4,
            )
            mesh = b.add_mesh(pos, normals=nrm, indices=idx, material=mat)
            b.add_node(mesh=mesh, translation=((col - 2) * 0.5, (row - 2) * 0.5, 0.0))
    written.append(folder / "gen-MetalRoughGrid.glb")
    b.write_glb(written[-1])

    b = GltfBuilder(generator="bench_fidelity")
    checker = (np.indices((64, 64)).sum(axis=0) // 8 % 2)[..., None] * 150 + 60
    rgba = np.concatenate([np.repeat(checker, 3, axis=2), np.full((64, 64, 1), 255)], axis=2)
    back = b.add_material(base_color_texture=_png(rgba))
    pos, nrm, uv, idx = box((2.0, 1.4, 0.05))
    b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=back))
    for i, (colour, alpha) in enumerate(
        (((1.0, 0.1, 0.1), 0.3), ((0.1, 1.0, 0.1), 0.5), ((0.1, 0.2, 1.0), 0.7))
    ):
        mat = b.add_material(
            base_color_factor=(*colour, alpha), alpha_mode="BLEND", double_sided=True
        )
        pos, nrm, uv, idx = box((0.7, 0.7, 0.02))
        mesh = b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mat)
        b.add_node(mesh=mesh, translation=(-0.45 + 0.35 * i, 0.15 - 0.12 * i, 0.2 + 0.15 * i))
    ramp = np.linspace(0, 255, 64)[None, :, None] * np.ones((64, 64, 1))
    mask_rgba = np.concatenate([np.full((64, 64, 3), 230.0), ramp], axis=2)
    mask = b.add_material(base_color_texture=_png(mask_rgba), alpha_mode="MASK")
    pos, nrm, uv, idx = box((0.5, 0.5, 0.02))
    b.add_node(
        mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mask),
        translation=(0.65, -0.35, 0.3),
    )
    document, bin_chunk = b.to_document_and_bin()
    document["materials"][mask]["alphaCutoff"] = 0.4
    written.append(folder / "gen-AlphaModes.glb")
    write_glb(document, bin_chunk, written[-1])

    b = GltfBuilder(generator="bench_fidelity")
    y, x = np.mgrid[0:128, 0:128] / 128.0
    # Height h = sin(2 pi 6 x) * sin(2 pi 4 y) / 20; normal from its slopes, +Y up the image.
    dx = np.cos(2 * np.pi * 6 * x) * np.sin(2 * np.pi * 4 * y) * 2 * np.pi * 6 / 20
    dy = np.sin(2 * np.pi * 6 * x) * np.cos(2 * np.pi * 4 * y) * 2 * np.pi * 4 / 20
    n = np.stack([-dx, dy, np.ones_like(dx)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    normal_png = _png(np.concatenate([(n * 0.5 + 0.5) * 255, np.full((128, 128, 1), 255)], 2))
    mat = b.add_material(
        base_color_factor=(0.8, 0.8, 0.75, 1.0),
        metallic_factor=0.0,
        roughness_factor=0.35,
        normal_texture=normal_png,
    )
    pos, nrm, uv, idx = uv_sphere(0.5, 64, 32)
    b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mat))
    pos, nrm, uv, idx = box((2.0, 0.05, 2.0))
    b.add_node(
        mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mat),
        translation=(0.0, -0.55, 0.0),
    )
    written.append(folder / "gen-NormalMap.glb")
    b.write_glb(written[-1])
    return written


def luma(rgb: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.asarray(rgb, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def model_crop(ours: U8, reference: U8, pad: int = 8) -> tuple[slice, slice]:
    """The rectangle where either image is not the background colour, padded. The whole-frame
    SSIM counts the background, which both get right; this one shows the model alone."""
    bg = np.round(np.asarray(environment.BACKGROUND_SRGB) * 255)
    mask = (np.abs(ours.astype(np.float64) - bg).max(axis=2) > 2) | (
        np.abs(reference.astype(np.float64) - bg).max(axis=2) > 2
    )
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    if rows.size == 0:
        return slice(0, h), slice(0, w)
    # SSIM's 11x11 window needs at least that much.
    top, bottom = max(rows[0] - pad, 0), min(max(rows[-1] + pad + 1, rows[0] + 16), h)
    left, right = max(cols[0] - pad, 0), min(max(cols[-1] + pad + 1, cols[0] + 16), w)
    return slice(int(top), int(bottom)), slice(int(left), int(right))


def psnr(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def side_by_side(ours: U8, reference: U8, labels: Sequence[str] = ("ours", "three.js")) -> Any:
    """ours | reference | |difference| x 4, with a caption bar."""
    from PIL import Image, ImageDraw

    diff = np.clip(np.abs(ours.astype(np.int16) - reference.astype(np.int16)) * 4, 0, 255)
    h, w = ours.shape[:2]
    bar = 18
    canvas = Image.new("RGB", (3 * w, h + bar), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, (img, label) in enumerate(
        zip((ours, reference, diff.astype(np.uint8)), (*labels, "|diff| x 4"), strict=True)
    ):
        canvas.paste(Image.fromarray(img), (i * w, bar))
        draw.text((i * w + 4, 3), label, fill=(255, 255, 255))
    return canvas


def compare(
    paths: Sequence[tuple[str, Path]],
    *,
    size: int = 512,
    fov_y_deg: float = 45.0,
    frames: int = 5,
    antialias: bool = False,
    out: Path | None = None,
    stereo_eye: tuple[int, int] | None = None,
) -> tuple[list[Result], ReferenceRenderer]:
    """Render every (name, path) with both renderers and compare them."""
    results: list[Result] = []
    reference = ReferenceRenderer(antialias=antialias)
    with reference.running():
        for name, path in paths:
            ours = render_ours(
                path, size=size, fov_y_deg=fov_y_deg, frames=frames, stereo_eye=stereo_eye
            )
            ref = reference.render(path, ours.view, lights=not ours.has_lights)
            crop = model_crop(ours.rgb, ref)
            result = Result(
                name,
                ours,
                ref,
                ssim(luma(ours.rgb), luma(ref)),
                ssim(luma(ours.rgb[crop]), luma(ref[crop])),
                psnr(ours.rgb, ref),
            )
            results.append(result)
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                side_by_side(ours.rgb, ref).save(out / f"{name}.png")
            broken = f" (REFERENCE INCOMPLETE: {reference.errors[0]})" if reference.errors else ""
            print(
                f"{name}: SSIM {result.ssim:.3f} (model only {result.ssim_crop:.3f}), "
                f"PSNR {result.psnr_db:.1f} dB, "
                f"{result.frame_ms:.1f} ms/frame{broken}",
                file=sys.stderr,
                flush=True,
            )
    return results, reference


def markdown(
    results: Sequence[Result],
    reference: ReferenceRenderer,
    *,
    size: int,
    rung: str | None = None,
    fps: float = 90.0,
) -> str:
    head = f"| model | triangles | SSIM | SSIM, model only | PSNR (dB) | ms/frame {size}x{size} |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if rung is not None:
        head += f" ms/frame stereo {rung} | governor scale at {fps:g} fps |"
        rule += "---:|---:|"
    lines = [head + " skipped or approximated by ours |", rule + "---|"]
    for r in results:
        skipped = "; ".join(r.ours.skipped).replace("|", "/")
        row = (
            f"| {r.name} | {r.ours.triangles} | {r.ssim:.3f} | {r.ssim_crop:.3f} | "
            f"{r.psnr_db:.1f} | {r.frame_ms:.1f} |"
        )
        if rung is not None and r.ours.stereo_ms:
            stereo = statistics.median(r.ours.stereo_ms)
            scale, budget = governor_scale(stereo, fps)
            at_scale = stereo * scale**2
            verdict = "fits" if at_scale <= budget else "over budget"
            row += f" {stereo:.0f} | {scale:g} ({at_scale:.0f} ms, {verdict}) |"
        lines.append(f"{row} {skipped} |")
    if results:
        lines.append("")
        lines.append(
            f"Ours on `{results[0].ours.gl}`; reference three.js r{reference.three_revision} "
            f"on `{reference.gl}`. SSIM on BT.601 luma (workers/streaming/ssim.py), of the whole "
            "frame and of the model's screen rectangle (where either image is not background); "
            "ms/frame = median render time (draws until glFinish) over the timed frames"
            + (
                "; governor scale = where the stream's RenderGovernor settles for that stereo "
                "render cost alone (no encode; budget 0.85 / fps), 1 = full size, 0.4 its floor."
                if rung is not None
                else "."
            )
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="folder of glTF models")
    parser.add_argument(
        "--write-generated",
        action="store_true",
        help="first write the generated gen-*.glb models into the --models folder",
    )
    parser.add_argument("--size", type=int, default=512, help="square image edge (px)")
    parser.add_argument("--fov", type=float, default=45.0, help="vertical FOV (the thumbnail's)")
    parser.add_argument("--frames", type=int, default=5, help="timed frames per model (ours)")
    parser.add_argument("--out", type=Path, default=None, help="folder for side-by-side PNGs")
    parser.add_argument("--only", default="", help="comma-separated model names")
    parser.add_argument("--antialias", action="store_true", help="MSAA in three.js (ours has none)")
    parser.add_argument(
        "--stream-rung",
        default="720p",
        help="also time stereo frames at this rung's per-eye size ('' to skip)",
    )
    parser.add_argument("--stream-fps", type=float, default=90.0, help="the stream's frame rate")
    args = parser.parse_args()
    root = args.models.resolve()
    if args.write_generated:
        write_generated(root)
    paths = [(model_name(p, root), p) for p in find_models(root)]
    if args.only:
        wanted = set(args.only.split(","))
        paths = [(n, p) for n, p in paths if n in wanted]
    if not paths:
        print(f"no .glb/.gltf models in {root}", file=sys.stderr)
        return 2
    results, reference = compare(
        paths,
        size=args.size,
        fov_y_deg=args.fov,
        frames=args.frames,
        antialias=args.antialias,
        out=args.out,
        stereo_eye=RUNGS[args.stream_rung] if args.stream_rung else None,
    )
    table = markdown(
        results, reference, size=args.size, rung=args.stream_rung or None, fps=args.stream_fps
    )
    print(table)
    if args.out is not None:
        (args.out / "fidelity.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
