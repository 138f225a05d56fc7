"""Headless glTF renderer (moderngl over EGL), shared by the streaming worker and thumbnails.

Public API::

    r = Renderer(1280, 720)                  # per-eye size; EGL, GPU device preferred
    r.load_scene(Path("scene.glb"))          # or a GltfPackage, or SceneData
    frame = r.render_stereo(Pose((0, 1.6, 2), (0, 0, 0, 1)), ipd=0.064, fov_y_deg=90,
                            avatars=[Avatar((0, 1.6, 0), color=(1, 0, 0))])
    frame.rgb()        # (720, 2560, 3) uint8, top row first, left eye in the left half
    frame.i420()       # contiguous uint8 Y|U|V (BT.601 limited), converted on the GPU
    frame.render_ms, frame.readback_ms
    r.render_view(pose, projection=..., width=512, height=288)   # mono, e.g. thumbnails
    r.close()

Poses are camera-to-world: position + quaternion [x, y, z, w]; the camera looks down -Z with
+Y up (WebXR/glTF convention). Projections are 4x4 numpy arrays (math convention), or 16
numbers in column-major order exactly as WebXR's ``XRView.projectionMatrix`` gives them;
asymmetric frusta are fine. Without projections, a symmetric ``fov_y_deg`` one is used.

The arrays returned by ``rgb()``/``i420()`` are views of persistent per-size buffers,
overwritten by the next readback of the same kind: copy them (or pass ``out=``) to keep them.
A frame can be read back until the next render into the same target; then it is stale.

Shading is glTF 2.0's metallic-roughness model (shaders.py) lit by the scene's
KHR_lights_punctual lights (else ``Lighting.lights``, environment.DEFAULT_LIGHTS) and by the
default environment's image-based light (ibl.py, prepared once per process), tone mapped with
Khronos PBR Neutral. Each material compiles to the shader variant it needs (its maps, their UV
sets and transforms, mask, unlit, clearcoat, the scene's light counts) when the scene loads.

Speed notes: the scene is baked to world space and batched per material at load time (one
draw call per material per eye); the image is rendered upside down (projection Y flip) so that
``glReadPixels`` returns the top row first and no CPU flip is needed; the I420 conversion runs
as a fragment pass into an RGBA8 target whose bytes are the I420 buffer, so readback is 1.5
bytes per pixel and the encoder needs no colour conversion.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import moderngl
import numpy as np
import numpy.typing as npt

from workers.rendering import shaders
from workers.rendering.culling import ChunkTable
from workers.rendering.environment import (
    BACKGROUND_SRGB,
    DEFAULT_LIGHTS,
    ENVIRONMENT_INTENSITY,
    EXPOSURE,
    PunctualLight,
)
from workers.rendering.gltf_builder import box, uv_sphere
from workers.rendering.ibl import SPECULAR_LEVELS, PreparedEnvironment, prepared_environment
from workers.rendering.lod import add_lods
from workers.rendering.scene import (
    VERTEX_FLOATS,
    MaterialData,
    PackageLike,
    SceneData,
    TextureRef,
    build_scene_data,
)
from workers.rendering.transforms import (
    as_matrix4,
    perspective,
    pose_matrix,
    quat_to_mat3,
    view_matrix,
)

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
Vec3 = Sequence[float] | npt.NDArray[Any]
Quat = Sequence[float] | npt.NDArray[Any]
MatrixLike = Sequence[float] | npt.NDArray[Any]

# Clip-space Y flip: the image lands in GL memory top row first (see the module docstring).
_FLIP_Y: F64 = np.diag([1.0, -1.0, 1.0, 1.0])
_SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "lavapipe")
# Shader variants: (UV code per texture slot, alpha mask, unlit); see shaders.scene_fs. The
# scene's light counts are compiled in too (the program cache key adds them).
# (UV codes, alpha mask, unlit, SH per vertex, clearcoat)
_VariantKey = tuple[tuple[str | None, ...], bool, bool, bool, bool]
_BASE: _VariantKey = ((None, None, None, None, None), False, False, True, False)
_LightCounts = tuple[int, int, int]
# Texture units: material maps 0-4 (shaders.TEXTURE_SLOTS order), then the environment.
_UNIT_SPEC_ENV, _UNIT_BRDF_LUT = 5, 6
_GL_TEXTURE_CUBE_MAP_SEAMLESS = 0x884F
_GL_SRGB8_ALPHA8 = 0x8C43
_IDENTITY4 = np.eye(4, dtype="f4").tobytes()
_IDENTITY3 = np.eye(3, dtype="f4").tobytes()
# Level of detail: the coarsest level whose geometric error projects to at most this many
# pixels is drawn (lod.py). Half a pixel keeps silhouettes where they are.
LOD_PIXEL_ERROR = 0.5


@dataclass(frozen=True)
class Pose:
    position: Vec3 = (0.0, 0.0, 0.0)
    orientation: Quat = (0.0, 0.0, 0.0, 1.0)  # [x, y, z, w]


@dataclass(frozen=True)
class Avatar:
    """A simple extra object (another participant's head or hand)."""

    position: Vec3
    orientation: Quat = (0.0, 0.0, 0.0, 1.0)
    color: Sequence[float] = (1.0, 1.0, 1.0)  # RGB or RGBA, 0..1, sRGB-ish like baseColor
    kind: str = "sphere"  # "sphere" or "box"
    size: float | Vec3 = 0.2  # diameter / edge lengths in metres


@dataclass(frozen=True)
class Lighting:
    """What lights a scene besides its own KHR_lights_punctual lights (environment.py)."""

    lights: tuple[PunctualLight, ...] = DEFAULT_LIGHTS  # used when the scene has none
    environment_intensity: float = ENVIRONMENT_INTENSITY
    exposure: float = EXPOSURE
    background: Sequence[float] = BACKGROUND_SRGB  # clear colour, as displayed


def material_variant(m: MaterialData) -> _VariantKey:
    """The shader variant a material needs: only the maps it has, only the UV math they use."""

    def code(ref: TextureRef | None) -> str | None:
        if ref is None:
            return None
        return ("t" if ref.transform is not None else "") + str(ref.texcoord)

    if m.unlit:  # base colour only (KHR_materials_unlit)
        uvs0 = (code(m.base_texture), None, None, None, None)
        return (uvs0, m.alpha_mode == "MASK", True, False, False)
    uvs = (
        code(m.base_texture),
        code(m.metallic_roughness_texture),
        code(m.normal_texture),
        code(m.occlusion_texture),
        code(m.emissive_texture),
    )
    # Diffuse IBL per vertex unless the shading normal is not the interpolated vertex normal.
    sh_per_vertex = m.normal_texture is None and not m.double_sided
    return (uvs, m.alpha_mode == "MASK", False, sh_per_vertex, m.clearcoat > 0)


def _light_counts(lights: Sequence[PunctualLight]) -> _LightCounts:
    kinds = [light.kind for light in lights]
    return (kinds.count("directional"), kinds.count("point"), kinds.count("spot"))


def _xf_bytes(rows: tuple[float, float, float, float, float, float]) -> bytes:
    """KHR_texture_transform rows as a GLSL mat3 (column-major)."""
    a, b, c, d, e, f = rows
    return np.array([a, d, 0.0, b, e, 0.0, c, f, 1.0], dtype="f4").tobytes()


def _mirrored_repeat(tex: moderngl.Texture, x: bool, y: bool) -> None:
    """MIRRORED_REPEAT wrapping, which moderngl's repeat_x/repeat_y cannot say."""
    gl = _GL_LIB
    if gl is None:
        raise RuntimeError("libOpenGL not found for MIRRORED_REPEAT")
    tex.use(location=0)
    for on, pname in ((x, 0x2802), (y, 0x2803)):  # GL_TEXTURE_WRAP_S, GL_TEXTURE_WRAP_T
        if on:
            gl.glTexParameteri(0x0DE1, pname, 0x8370)  # GL_TEXTURE_2D, GL_MIRRORED_REPEAT


def _write_cube_level(tex: moderngl.TextureCube, level: int, faces: npt.NDArray[Any]) -> None:
    """Fill one mip level of a cube texture (moderngl writes level 0 only): glTexSubImage2D."""
    gl = _GL_LIB
    if gl is None:
        raise RuntimeError("libOpenGL not found for cube map mip levels")
    tex.use(location=_UNIT_SPEC_ENV)
    size = faces.shape[1]
    for face in range(6):
        data = np.ascontiguousarray(faces[face], dtype=np.float32)
        gl.glTexSubImage2D(
            0x8515 + face,  # GL_TEXTURE_CUBE_MAP_POSITIVE_X + face
            level,
            0,
            0,
            size,
            size,
            0x1907,  # GL_RGB
            0x1406,  # GL_FLOAT
            data.ctypes.data_as(ctypes.c_void_p),
        )


def _load_gl() -> Any:
    """libOpenGL through ctypes (None if absent): ``glFinish`` and the cube mip uploads.

    moderngl holds the GIL for the whole of every GL call. A render waited for with its
    ``ctx.finish()`` froze every other Python thread for the frame's whole raster time (on
    llvmpipe tens of milliseconds: the streaming worker's event loop could neither send RTP
    nor take poses meanwhile). glvnd's libOpenGL dispatches to the context current on the
    calling thread, whichever library made it current.
    """
    for name in ("libOpenGL.so.0", ctypes.util.find_library("OpenGL"), "libGL.so.1"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.glFinish  # noqa: B018 - probe: raises AttributeError if missing
            return lib
        except (OSError, AttributeError):
            continue
    return None


_GL_LIB = _load_gl()
_GL_FINISH = None if _GL_LIB is None else _GL_LIB.glFinish


def _finish(ctx: moderngl.Context) -> None:
    if _GL_FINISH is not None:
        _GL_FINISH()
    else:
        ctx.finish()


def _egl_context(backend: str, device_index: int) -> moderngl.Context:
    # The stubs type **settings as dicts; they are plain keyword arguments for glcontext.
    settings: dict[str, Any] = {"backend": backend, "device_index": device_index}
    return moderngl.create_context(standalone=True, require=330, **settings)


def create_gl_context(
    backend: str | None = "egl", device_index: int | None = None
) -> moderngl.Context:
    """A standalone GL 3.3+ context. With EGL and no ``device_index``, the first hardware EGL
    device is used if there is one, else the first device (Mesa llvmpipe)."""
    if backend is None:
        return moderngl.create_context(standalone=True, require=330)
    if device_index is not None:
        return _egl_context(backend, device_index)
    fallback: moderngl.Context | None = None
    for index in range(16):
        try:
            ctx = _egl_context(backend, index)
        except Exception:  # past the last device (glcontext raises a plain Exception)
            break
        name = str(ctx.info["GL_RENDERER"]).lower()
        if not any(s in name for s in _SOFTWARE_RENDERERS):
            if fallback is not None:
                fallback.release()
            return ctx
        if fallback is None:
            fallback = ctx
        else:
            ctx.release()
    if fallback is None:
        raise RuntimeError(f"no usable {backend} device for OpenGL 3.3")
    return fallback


def renderer_info(backend: str | None = "egl") -> str:
    """The GL renderer string of the device a Renderer would use ("llvmpipe ..." or a GPU)."""
    ctx = create_gl_context(backend)
    try:
        return str(ctx.info["GL_RENDERER"])
    finally:
        ctx.release()


def load_package_any(path: Path) -> PackageLike:
    """Read a .glb/.gltf/.zip with the strict, bounds-checked reader."""
    from workers.rendering.gltf_package import load_package

    pkg: PackageLike = load_package(path)
    return pkg


class _Target:
    """Persistent framebuffers and readback buffers for one frame size."""

    def __init__(self, ctx: moderngl.Context, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.color = ctx.texture((width, height), 4)
        self.color.filter = (moderngl.LINEAR, moderngl.LINEAR)  # I420 chroma = bilinear mean
        self.depth = ctx.depth_renderbuffer((width, height))
        self.fbo = ctx.framebuffer(color_attachments=[self.color], depth_attachment=self.depth)
        self.rgb = np.empty((height, width, 3), dtype=np.uint8)
        self.generation = 0
        self.i420_ok = width % 4 == 0 and height % 2 == 0
        self.yuv_fbo: moderngl.Framebuffer | None = None
        self.yuv_tex: moderngl.Texture | None = None
        self.yuv = np.empty(width * height * 3 // 2, dtype=np.uint8)
        if self.i420_ok:
            self.yuv_tex = ctx.texture((width // 4, height * 3 // 2), 4)
            self.yuv_fbo = ctx.framebuffer(color_attachments=[self.yuv_tex])

    def release(self) -> None:
        for obj in (self.fbo, self.color, self.depth, self.yuv_fbo, self.yuv_tex):
            if obj is not None:
                obj.release()


class Frame:
    """A rendered image still in GPU memory; read it back with :meth:`rgb` or :meth:`i420`."""

    def __init__(self, renderer: Renderer, target: _Target, render_ms: float) -> None:
        self._renderer = renderer
        self._target = target
        self._generation = target.generation
        self.width = target.width
        self.height = target.height
        self.render_ms = render_ms
        self.readback_ms = 0.0  # of the latest rgb()/i420() call
        self.convert_ms = 0.0  # GPU RGB->I420 pass of the latest i420() call

    def _check(self) -> _Target:
        if self._target.generation != self._generation:
            raise RuntimeError("stale frame: its target was rendered to again")
        return self._target

    def rgb(self, out: npt.NDArray[np.uint8] | None = None) -> npt.NDArray[np.uint8]:
        """(height, width, 3) uint8, top row first."""
        t = self._check()
        dest = t.rgb if out is None else out
        if dest.shape != t.rgb.shape or dest.dtype != np.uint8:
            raise ValueError(f"out must be uint8 {t.rgb.shape}")
        with self._renderer.current():
            self._check()
            start = time.perf_counter()
            t.fbo.read_into(dest, components=3, alignment=1)
            self.readback_ms = (time.perf_counter() - start) * 1000
        return dest

    def i420(self, out: npt.NDArray[np.uint8] | None = None, *, planes: bool = False) -> Any:
        """I420 bytes converted on the GPU: one contiguous uint8 array (Y, then U, then V), or
        with ``planes=True`` the three plane views (h, w), (h/2, w/2), (h/2, w/2)."""
        t = self._check()
        if not t.i420_ok or t.yuv_fbo is None:
            raise ValueError("I420 needs a frame width divisible by 4 and an even height")
        dest = t.yuv if out is None else out
        if dest.shape != t.yuv.shape or dest.dtype != np.uint8:
            raise ValueError(f"out must be uint8 {t.yuv.shape}")
        with self._renderer.current():
            self._check()
            start = time.perf_counter()
            self._renderer._convert_i420(t)
            mid = time.perf_counter()
            t.yuv_fbo.read_into(dest, components=4, alignment=1)
            end = time.perf_counter()
        self.convert_ms = (mid - start) * 1000
        self.readback_ms = (end - mid) * 1000
        if not planes:
            return dest
        w, h = t.width, t.height
        ysize, csize = w * h, (w // 2) * (h // 2)
        return (
            dest[:ysize].reshape(h, w),
            dest[ysize : ysize + csize].reshape(h // 2, w // 2),
            dest[ysize + csize :].reshape(h // 2, w // 2),
        )


StereoFrame = Frame


class _NoUniform:
    """Stands in for a uniform the GLSL compiler optimised out of a shader variant."""

    value: Any = None

    def write(self, data: bytes) -> None:
        del data


class _Uniforms(dict[str, Any]):
    """A program's active uniforms by name; names a variant does not use accept writes."""

    def __init__(self, prog: moderngl.Program) -> None:
        super().__init__(
            (name, prog[name]) for name in prog if isinstance(prog[name], moderngl.Uniform)
        )

    def __missing__(self, name: str) -> Any:
        return _NoUniform()


class _GpuMesh:
    """Vertex and index buffers with one vertex array per shader program, made on first use
    (a moderngl VAO is bound to one program)."""

    def __init__(self, ctx: moderngl.Context, verts: Any, idx: Any):
        self.ctx = ctx
        self.vbo = ctx.buffer(np.ascontiguousarray(verts, dtype=np.float32).tobytes())
        self.ibo = ctx.buffer(np.ascontiguousarray(idx, dtype=np.uint32).tobytes())
        self.vaos: dict[int, moderngl.VertexArray] = {}
        self.count = int(np.asarray(idx).size)

    def vao(self, prog: moderngl.Program) -> moderngl.VertexArray:
        vao = self.vaos.get(prog.glo)
        if vao is None:
            vao = self.ctx.vertex_array(
                prog,
                [
                    (
                        self.vbo,
                        "3f 3f 2f 4f 2f",
                        "in_pos",
                        "in_normal",
                        "in_uv",
                        "in_color",
                        "in_uv1",
                    )
                ],
                index_buffer=self.ibo,
                index_element_size=4,
                skip_errors=True,  # attributes a variant does not read are optimised out
            )
            self.vaos[prog.glo] = vao
        return vao

    def release(self) -> None:
        for vao in self.vaos.values():
            vao.release()
        self.vaos.clear()
        self.vbo.release()
        self.ibo.release()


def _shape_vertices(arrays: tuple[Any, Any, Any, Any]) -> tuple[Any, Any]:
    pos, nrm, uv, idx = arrays
    n = pos.shape[0]
    verts = np.hstack([pos, nrm, uv, np.ones((n, 4), np.float32), np.zeros((n, 2), np.float32)])
    assert verts.shape[1] == VERTEX_FLOATS
    return verts, idx


class _Program:
    """One compiled scene-shader variant and its uniforms."""

    def __init__(self, ctx: moderngl.Context, key: _VariantKey, lights: _LightCounts) -> None:
        uvs, alpha_mask, unlit, sh_per_vertex, clearcoat = key
        self.prog = ctx.program(
            vertex_shader=shaders.scene_vs(sh_per_vertex=sh_per_vertex),
            fragment_shader=shaders.scene_fs(
                uvs=uvs,
                alpha_mask=alpha_mask,
                unlit=unlit,
                clearcoat=clearcoat,
                lights=lights,
                spec_lod_max=SPECULAR_LEVELS - 1,
                sh_per_vertex=sh_per_vertex,
            ),
        )
        self.u = _Uniforms(self.prog)
        for unit, (_define, prefix) in enumerate(shaders.TEXTURE_SLOTS):
            self.u[f"u_{prefix}_tex"].value = unit
        self.u["u_spec_env"].value = _UNIT_SPEC_ENV
        self.u["u_brdf_lut"].value = _UNIT_BRDF_LUT


# Default clip planes in metres (a viewer scaled for a centimetre scene multiplies both).
NEAR_M = 0.05
FAR_M = 500.0


class Renderer:
    """See the module docstring."""

    def __init__(
        self,
        width_per_eye: int,
        height: int,
        *,
        backend: str | None = "egl",
        device_index: int | None = None,
        lighting: Lighting | None = None,
        near: float = NEAR_M,
        far: float = FAR_M,
        lod: bool = True,
        environment: PreparedEnvironment | None = None,
    ) -> None:
        """``environment``: the image-based light, already filtered (ibl.py); the default
        environment's when None."""
        self._lock = threading.RLock()
        self.lod = lod
        self.ctx = create_gl_context(backend, device_index)
        self.lighting = lighting or Lighting()
        self.near, self.far = near, far
        with self._lock, self.ctx as ctx:
            self.info = str(ctx.info["GL_RENDERER"])
            # On llvmpipe the I420 pass costs more than swscale on the CPU (see the benchmark):
            # callers can pick rgb() + CPU conversion when this is True.
            self.software = any(n in self.info.lower() for n in _SOFTWARE_RENDERERS)
            self._programs: dict[tuple[_VariantKey, _LightCounts], _Program] = {}
            self._lights: tuple[PunctualLight, ...] = tuple(self.lighting.lights)
            self._yuv_progs = {
                name: ctx.program(vertex_shader=shaders.FULLSCREEN_VS, fragment_shader=fs)
                for name, fs in (
                    ("y", shaders.I420_Y_FS),
                    ("uv_fast", shaders.i420_uv_fs(fast=True)),
                    ("uv", shaders.i420_uv_fs(fast=False)),
                )
            }
            self._yuv_vaos = {n: ctx.vertex_array(p, []) for n, p in self._yuv_progs.items()}
            self._white = ctx.texture((1, 1), 4, bytes([255, 255, 255, 255]))
            self._env_textures = self._upload_environment(environment or prepared_environment())
            self._avatar_meshes = {
                "box": _GpuMesh(ctx, *_shape_vertices(box((1.0, 1.0, 1.0)))),
                "sphere": _GpuMesh(ctx, *_shape_vertices(uv_sphere(0.5, 24, 12))),
            }
            self._program(_BASE)  # avatars, also before any scene is loaded
        self._scene: SceneData | None = None
        self._scene_mesh: _GpuMesh | None = None
        self._culling: ChunkTable | None = None
        self._textures: list[moderngl.Texture] = []
        self._targets: dict[tuple[int, int], _Target] = {}
        self.width_per_eye, self.height = width_per_eye, height
        self.resize(width_per_eye, height)
        log.info("renderer on %s (%dx%d per eye)", self.info, width_per_eye, height)

    @contextmanager
    def current(self) -> Iterator[moderngl.Context]:
        """Hold the renderer and make its GL context current on this thread. Every public
        method does this, so a Renderer may move between threads (an executor) and share a
        thread with other Renderers; it is not meant for concurrent use."""
        with self._lock:
            if self.ctx is None:
                raise RuntimeError("renderer is closed")
            with self.ctx:
                yield self.ctx

    def _upload_environment(self, env: PreparedEnvironment) -> list[Any]:
        """The IBL textures (specular cube, one mip per roughness step; LUT) and SH irradiance."""
        ctx = self.ctx
        ctx.enable_direct(_GL_TEXTURE_CUBE_MAP_SEAMLESS)  # no seams between cube faces
        base = env.specular[0]
        size = base.shape[1]
        spec = ctx.texture_cube((size, size), 3, dtype="f2")
        spec.build_mipmaps()  # allocates every level; each is overwritten below
        levels = list(env.specular)
        while levels[-1].shape[1] > 1:  # past the last roughness step: repeat it, smaller
            last = levels[-1]
            s2 = last.shape[1] // 2
            levels.append(last.reshape(6, s2, 2, s2, 2, 3).mean(axis=(2, 4)))
        for level, faces in enumerate(levels):
            _write_cube_level(spec, level, faces)
        spec.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        lut_size = env.lut.shape[0]
        lut = ctx.texture(
            (lut_size, lut_size), 2, np.ascontiguousarray(env.lut).tobytes(), dtype="f4"
        )
        lut.repeat_x = lut.repeat_y = False
        lut.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self._irradiance_sh = np.ascontiguousarray(env.irradiance, dtype="f4").tobytes()
        return [spec, lut]

    def _program(self, key: _VariantKey) -> _Program:
        counts = _light_counts(self._lights)
        program = self._programs.get((key, counts))
        if program is None:
            program = _Program(self.ctx, key, counts)
            self._set_light_uniforms(program)
            self._programs[(key, counts)] = program
        return program

    def _set_light_uniforms(self, program: _Program) -> None:
        u = program.u
        u["u_env_intensity"].value = float(self.lighting.environment_intensity)
        u["u_exposure"].value = float(self.lighting.exposure)
        u["u_sh"].write(self._irradiance_sh)
        by_kind: dict[str, list[PunctualLight]] = {"directional": [], "point": [], "spot": []}
        for light in self._lights:
            by_kind[light.kind].append(light)

        def vec3s(values: Iterable[Sequence[float]]) -> bytes:
            return np.asarray(list(values), dtype="f4").reshape(-1).tobytes()

        def radiance(light: PunctualLight) -> tuple[float, ...]:
            return tuple(c * light.intensity for c in light.color)

        def inv_range(light: PunctualLight) -> float:
            return 0.0 if light.range is None else 1.0 / light.range

        if by_kind["directional"]:
            lights = by_kind["directional"]
            u["u_dir_dir"].write(vec3s(tuple(-c for c in li.direction) for li in lights))
            u["u_dir_color"].write(vec3s(radiance(li) for li in lights))
        if by_kind["point"]:
            lights = by_kind["point"]
            u["u_pt_pos"].write(vec3s(li.position for li in lights))
            u["u_pt_color"].write(vec3s(radiance(li) for li in lights))
            u["u_pt_inv_range"].write(np.array([inv_range(li) for li in lights], "f4").tobytes())
        if by_kind["spot"]:
            lights = by_kind["spot"]
            u["u_sp_pos"].write(vec3s(li.position for li in lights))
            u["u_sp_dir"].write(vec3s(li.direction for li in lights))
            u["u_sp_color"].write(vec3s(radiance(li) for li in lights))
            u["u_sp_inv_range"].write(np.array([inv_range(li) for li in lights], "f4").tobytes())
            cones = []
            for li in lights:
                cos_outer = math.cos(li.outer_cone_angle)
                scale = 1.0 / max(math.cos(li.inner_cone_angle) - cos_outer, 1e-3)
                cones.append((scale, -cos_outer * scale))
            u["u_sp_cone"].write(np.asarray(cones, "f4").tobytes())

    # -- setup --------------------------------------------------------------------------------
    def resize(self, width_per_eye: int, height: int) -> None:
        """Change the per-eye size; targets of other output sizes are released."""
        if width_per_eye <= 0 or height <= 0:
            raise ValueError("size must be positive")
        self.width_per_eye, self.height = width_per_eye, height
        keep = (2 * width_per_eye, height)
        with self.current():
            for key in [k for k in self._targets if k != keep]:
                self._targets.pop(key).release()
            self._target(*keep)

    def _target(self, width: int, height: int) -> _Target:
        key = (width, height)
        if key not in self._targets:
            self._targets[key] = _Target(self.ctx, width, height)
        return self._targets[key]

    def load_scene(self, source: Path | str | PackageLike | SceneData) -> SceneData:
        """Upload a scene (path, package or prebuilt SceneData) into GPU buffers, once."""
        if isinstance(source, str | Path):
            source = load_package_any(Path(source))
        scene = source if isinstance(source, SceneData) else build_scene_data(source)
        if self.lod and scene.chunks and all(len(c.lods) == 1 for c in scene.chunks):
            scene = add_lods(scene)
        with self.current():
            self._upload_scene(scene)
        log.info(
            "scene loaded: %d triangles, %d draws, %d textures, %d skipped features",
            scene.triangles,
            len(scene.draws),
            len(scene.textures),
            len(scene.skipped),
        )
        return scene

    def _upload_scene(self, scene: SceneData) -> None:
        self._release_scene()
        self._scene = scene
        self._lights = tuple(scene.lights) if scene.lights else tuple(self.lighting.lights)
        counts = _light_counts(self._lights)
        for (_key, program_counts), program in self._programs.items():
            if program_counts == counts:  # cached from an earlier scene: its lights, not ours
                self._set_light_uniforms(program)
        if not scene.empty:
            self._scene_mesh = _GpuMesh(self.ctx, scene.vertices, scene.indices)
        self._culling = ChunkTable(scene, max_error_px=LOD_PIXEL_ERROR)
        # Compile every variant the scene needs now, not mid-stream on first sight.
        self._material_programs = [self._program(material_variant(m)) for m in scene.materials]
        self._program(_BASE)
        for tex in scene.textures:
            h, w = tex.rgba.shape[:2]
            gl_tex = self.ctx.texture(
                (w, h),
                4,
                np.ascontiguousarray(tex.rgba).tobytes(),
                internal_format=_GL_SRGB8_ALPHA8 if tex.srgb else None,
            )
            s = tex.sampler
            gl_tex.repeat_x, gl_tex.repeat_y = s.repeat_x, s.repeat_y
            if s.mirror_x or s.mirror_y:
                _mirrored_repeat(gl_tex, s.mirror_x, s.mirror_y)
            mag = moderngl.LINEAR if s.mag_linear else moderngl.NEAREST
            if s.mipmaps:
                gl_tex.build_mipmaps()
                mn = (
                    moderngl.LINEAR_MIPMAP_LINEAR
                    if s.min_linear
                    else moderngl.NEAREST_MIPMAP_NEAREST
                )
            else:
                mn = moderngl.LINEAR if s.min_linear else moderngl.NEAREST
            gl_tex.filter = (mn, mag)
            self._textures.append(gl_tex)

    # --- hook for animated scenes (issue 15; workers/rendering/animation.py does the sampling) --
    def update_scene_vertices(self, vertices: npt.NDArray[np.float32]) -> None:
        """Rewrite the loaded scene's vertices in place: same count and layout (an animation
        pose). Draw ranges, culling chunks, materials and textures stay as loaded."""
        if self._scene_mesh is not None:
            with self.current():
                self._scene_mesh.vbo.write(np.ascontiguousarray(vertices, dtype=np.float32))

    @property
    def scene(self) -> SceneData | None:
        return self._scene

    def _release_scene(self) -> None:
        if self._scene_mesh is not None:
            self._scene_mesh.release()
            self._scene_mesh = None
        for tex in self._textures:
            tex.release()
        self._textures = []
        self._scene = None
        self._culling = None

    def close(self) -> None:
        """Release every GL object and the context; idempotent."""
        with self._lock:
            if getattr(self, "ctx", None) is None:
                return
            with self.ctx:
                self._release_scene()
                for t in self._targets.values():
                    t.release()
                self._targets.clear()
                for mesh in self._avatar_meshes.values():
                    mesh.release()
                for program in self._programs.values():
                    program.prog.release()
                self._programs.clear()
                for tex in self._env_textures:
                    tex.release()
                self._white.release()
            self.ctx.release()
            self.ctx = None  # type: ignore[assignment]

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rendering ----------------------------------------------------------------------------
    def render_stereo(
        self,
        pose: Pose | tuple[Vec3, Quat],
        *,
        ipd: float = 0.064,
        projections: tuple[MatrixLike, MatrixLike] | None = None,
        fov_y_deg: float = 90.0,
        avatars: Iterable[Avatar] = (),
    ) -> Frame:
        """Both eyes side by side (left eye left) in one (height, 2 * width_per_eye) image.
        The eyes sit at -ipd/2 and +ipd/2 along the pose's local X axis."""
        pose = pose if isinstance(pose, Pose) else Pose(*pose)
        w, h = self.width_per_eye, self.height
        if projections is None:
            p = perspective(fov_y_deg, w / h, self.near, self.far)
            projections = (p, p)
        rot = quat_to_mat3(pose.orientation)
        centre = np.asarray(pose.position, dtype=np.float64)
        views = []
        for sign, proj, x in ((-1.0, projections[0], 0), (1.0, projections[1], w)):
            eye = centre + rot[:, 0] * (sign * ipd / 2)
            views.append((eye, pose.orientation, as_matrix4(proj), (x, 0, w, h)))
        with self.current():
            return self._render(self._target(2 * w, h), views, list(avatars))

    def render_view(
        self,
        pose: Pose | tuple[Vec3, Quat],
        *,
        projection: MatrixLike | None = None,
        fov_y_deg: float = 60.0,
        width: int | None = None,
        height: int | None = None,
        near: float | None = None,
        far: float | None = None,
        avatars: Iterable[Avatar] = (),
    ) -> Frame:
        """One view (thumbnails, previews); default size is one eye."""
        pose = pose if isinstance(pose, Pose) else Pose(*pose)
        w, h = width or self.width_per_eye, height or self.height
        proj = (
            as_matrix4(projection)
            if projection is not None
            else perspective(fov_y_deg, w / h, near or self.near, far or self.far)
        )
        eye = np.asarray(pose.position, dtype=np.float64)
        with self.current():
            return self._render(
                self._target(w, h), [(eye, pose.orientation, proj, (0, 0, w, h))], list(avatars)
            )

    def _render(
        self,
        target: _Target,
        views: list[tuple[F64, Quat, F64, tuple[int, int, int, int]]],
        avatars: list[Avatar],
    ) -> Frame:
        start = time.perf_counter()
        ctx = self.ctx
        target.generation += 1
        target.fbo.use()
        bg = self.lighting.background
        target.fbo.clear(bg[0], bg[1], bg[2], bg[3] if len(bg) > 3 else 1.0, depth=1.0)
        ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        ctx.disable(moderngl.BLEND)
        ctx.front_face = "cw"  # the Y flip mirrors the winding
        for unit, tex in zip((_UNIT_SPEC_ENV, _UNIT_BRDF_LUT), self._env_textures, strict=True):
            tex.use(location=unit)
        programs = list(self._programs.values())
        for eye, orientation, proj, viewport in views:
            target.fbo.viewport = viewport
            view_proj = np.matmul(proj, view_matrix(eye, orientation))
            vp = np.matmul(_FLIP_Y, view_proj).T.astype("f4").tobytes()
            cam = tuple(float(v) for v in eye)
            for program in programs:
                program.u["u_view_proj"].write(vp)
                program.u["u_cam_pos"].value = cam
            self._draw_scene(target, view_proj, eye, proj, viewport[3])
            self._draw_avatars(avatars)
        target.fbo.depth_mask = True
        ctx.disable(moderngl.BLEND)
        _finish(ctx)  # honest render time; the readback would wait for it anyway
        return Frame(self, target, (time.perf_counter() - start) * 1000)

    def _draw_scene(
        self, target: _Target, view_proj: F64, eye: F64, proj: F64, height_px: int
    ) -> None:
        scene, mesh, table = self._scene, self._scene_mesh, self._culling
        if scene is None or mesh is None or table is None:
            return
        ctx = self.ctx
        ranges = table.visible_ranges(view_proj, eye, proj[1, 1] * height_px / 2)
        current = -1
        vao: moderngl.VertexArray | None = None
        for material, draw_ranges in ranges:
            if material != current:  # blend chunks come one by one, back to front
                current = material
                vao = self._use_material(target, scene, material, mesh)
            assert vao is not None
            for first, count in draw_ranges:
                vao.render(moderngl.TRIANGLES, vertices=count, first=first)
        target.fbo.depth_mask = True
        ctx.disable(moderngl.BLEND)
        ctx.enable(moderngl.CULL_FACE)

    def _use_material(
        self, target: _Target, scene: SceneData, material: int, mesh: _GpuMesh
    ) -> moderngl.VertexArray:
        """Bind one material's program, uniforms, textures and raster state."""
        ctx = self.ctx
        m = scene.materials[material]
        program = self._material_programs[material]
        u = program.u
        u["u_model"].write(_IDENTITY4)
        u["u_normal_mat"].write(_IDENTITY3)
        u["u_base_color"].value = tuple(m.base_color)
        u["u_alpha_cutoff"].value = m.alpha_cutoff
        if not m.unlit:
            u["u_emissive"].value = tuple(m.emissive)
            u["u_metallic"].value = m.metallic
            u["u_roughness"].value = m.roughness
            u["u_f0"].value = m.f0
            u["u_spec_color"].value = m.specular_color
            u["u_spec_weight"].value = m.specular
            u["u_normal_scale"].value = m.normal_scale
            u["u_occlusion_strength"].value = m.occlusion_strength
            u["u_clearcoat"].value = m.clearcoat
            u["u_clearcoat_roughness"].value = m.clearcoat_roughness
        refs = (
            m.base_texture,
            m.metallic_roughness_texture,
            m.normal_texture,
            m.occlusion_texture,
            m.emissive_texture,
        )
        for unit, ((_define, prefix), ref) in enumerate(
            zip(shaders.TEXTURE_SLOTS, refs, strict=True)
        ):
            if ref is None:
                continue
            self._textures[ref.slot].use(unit)
            if ref.transform is not None:
                u[f"u_{prefix}_xf"].write(_xf_bytes(ref.transform))
        if m.double_sided:
            ctx.disable(moderngl.CULL_FACE)
        else:
            ctx.enable(moderngl.CULL_FACE)
        if m.alpha_mode == "BLEND":
            ctx.enable(moderngl.BLEND)
            ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
            target.fbo.depth_mask = False
        else:
            ctx.disable(moderngl.BLEND)
            target.fbo.depth_mask = True
        return mesh.vao(program.prog)

    def _draw_avatars(self, avatars: list[Avatar]) -> None:
        if not avatars:
            return
        program = self._program(_BASE)
        u = program.u
        u["u_alpha_cutoff"].value = -1.0
        u["u_emissive"].value = (0.0, 0.0, 0.0)
        u["u_metallic"].value = 0.0
        u["u_roughness"].value = 0.6
        u["u_f0"].value = 0.04
        u["u_spec_color"].value = (1.0, 1.0, 1.0)
        u["u_spec_weight"].value = 1.0
        for av in avatars:
            mesh = self._avatar_meshes.get(av.kind)
            if mesh is None:
                log.debug("unknown avatar kind %r", av.kind)
                continue
            size = np.broadcast_to(np.asarray(av.size, dtype=np.float64), (3,))
            model = pose_matrix(av.position, av.orientation) @ np.diag([*size, 1.0])
            normal_mat = np.linalg.inv(model[:3, :3]).T
            u["u_model"].write(model.T.astype("f4").tobytes())
            u["u_normal_mat"].write(normal_mat.T.astype("f4").tobytes())
            c = tuple(float(v) for v in av.color)
            rgba = (*c[:3], c[3] if len(c) > 3 else 1.0)
            # Colours are linear, like glTF's baseColorFactor.
            u["u_base_color"].value = rgba
            mesh.vao(program.prog).render(moderngl.TRIANGLES)

    def _convert_i420(self, target: _Target) -> None:
        assert target.yuv_fbo is not None
        ctx = self.ctx
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE | moderngl.BLEND)
        target.yuv_fbo.use()
        target.color.use(0)
        w, h, tw = target.width, target.height, target.width // 4
        y_prog: Any = self._yuv_progs["y"]
        y_prog["u_src"].value = 0
        target.yuv_fbo.viewport = (0, 0, tw, h)
        self._yuv_vaos["y"].render(moderngl.TRIANGLES, vertices=3)
        name = "uv_fast" if (w // 2) % 4 == 0 else "uv"
        uv_prog: Any = self._yuv_progs[name]
        uv_prog["u_src"].value = 0
        uv_prog["u_w"].value, uv_prog["u_h"].value, uv_prog["u_tw"].value = w, h, tw
        target.yuv_fbo.viewport = (0, h, tw, h // 2)
        self._yuv_vaos[name].render(moderngl.TRIANGLES, vertices=3)
        _finish(ctx)  # so convert_ms is the pass itself, not part of the readback


def frame_bounds_pose(
    bounds_min: F64, bounds_max: F64, fov_y_deg: float, aspect: float
) -> tuple[Pose, float, float]:
    """A pose looking at the bounds from the front-upper-right that fits them in view, with
    matching near/far planes."""
    from workers.rendering.transforms import look_at_quat

    centre = (bounds_min + bounds_max) / 2
    radius = max(float(np.linalg.norm(bounds_max - bounds_min)) / 2, 1e-3)
    half_fov = math.radians(fov_y_deg) / 2
    half_fov = min(half_fov, math.atan(math.tan(half_fov) * aspect))
    dist = radius / math.sin(half_fov) * 1.02
    direction = np.array([0.55, 0.45, 1.0])
    eye = centre + direction / np.linalg.norm(direction) * dist
    near = max(dist - radius * 1.5, radius * 1e-3)
    return Pose(tuple(eye), look_at_quat(eye, centre)), near, dist + radius * 1.5


def thumbnail(
    package_path: Path | str | PackageLike,
    size: tuple[int, int] = (512, 288),
    *,
    backend: str | None = "egl",
    fov_y_deg: float = 45.0,
) -> bytes:
    """A PNG of the whole scene, framed automatically from its bounds."""
    import io

    from PIL import Image

    width, height = size
    with Renderer(width, height, backend=backend) as r:
        scene = r.load_scene(package_path)
        pose, near, far = frame_bounds_pose(
            scene.bounds_min, scene.bounds_max, fov_y_deg, width / height
        )
        frame = r.render_view(pose, fov_y_deg=fov_y_deg, near=near, far=far)
        buf = io.BytesIO()
        Image.fromarray(frame.rgb()).save(buf, format="PNG", optimize=False)
        return buf.getvalue()
