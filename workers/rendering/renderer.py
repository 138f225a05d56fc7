"""Headless glTF renderer (moderngl over EGL), shared by the streaming worker and thumbnails.

Public API::

    r = Renderer(1280, 720)                  # per-eye size; EGL, GPU device preferred
    r.load_scene(Path("scene.glb"))          # or a GltfPackage, or SceneData
    frame = r.render_stereo(CameraPose((0, 1.6, 2), (0, 0, 0, 1)), ipd=0.064, fov_y_deg=90,
                            avatars=[Avatar((0, 1.6, 0), color=(1, 0, 0))])
    frame.rgb()        # (720, 2560, 3) uint8, top row first, left eye in the left half
    frame.i420()       # contiguous uint8 Y|U|V (BT.601 limited), converted on the GPU
    frame.render_ms, frame.readback_ms
    r.render_view(pose, projection=..., width=512, height=288)   # mono, e.g. thumbnails
    r.close()

Poses (``camera.CameraPose``) are camera-to-world: position + quaternion [x, y, z, w]; the
camera looks down -Z with +Y up (WebXR/glTF convention). Projections are 4x4 numpy arrays
(math convention), or 16 numbers in column-major order exactly as WebXR's
``XRView.projectionMatrix`` gives them; asymmetric frusta are fine. Without projections, a
symmetric ``fov_y_deg`` one is used.

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

Beside this module: ``gl_context.py`` (the context, and the GL calls moderngl cannot make),
``gpu_resources.py`` (render targets, meshes, shader variants), ``camera.py`` (poses, framing).
"""

from __future__ import annotations

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
from workers.rendering.camera import CameraPose, Quat, Vec3, frame_bounds_pose
from workers.rendering.culling import ChunkTable
from workers.rendering.environment import (
    BACKGROUND_SRGB,
    DEFAULT_LIGHTS,
    ENVIRONMENT_INTENSITY,
    EXPOSURE,
    PunctualLight,
)
from workers.rendering.gl_context import (
    SOFTWARE_RENDERERS,
    create_gl_context,
    gl_finish,
    mirrored_repeat,
    write_cube_level,
)
from workers.rendering.gltf_builder import box, uv_sphere
from workers.rendering.gpu_resources import (
    BASE_VARIANT,
    UNIT_BRDF_LUT,
    UNIT_SPEC_ENV,
    GpuMesh,
    LightCounts,
    RenderTarget,
    ShaderProgram,
    VariantKey,
    light_counts,
    material_variant,
    shape_vertices,
    texture_transform_mat3,
)
from workers.rendering.ibl import PreparedEnvironment, prepared_environment
from workers.rendering.lod import add_lods
from workers.rendering.scene import build_scene_data
from workers.rendering.scene_data import PackageLike, SceneData
from workers.rendering.transforms import (
    as_matrix4,
    perspective,
    pose_matrix,
    quat_to_mat3,
    view_matrix,
)

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
MatrixLike = Sequence[float] | npt.NDArray[Any]

# Clip-space Y flip: the image lands in GL memory top row first (see the module docstring).
_FLIP_Y: F64 = np.diag([1.0, -1.0, 1.0, 1.0])
_GL_TEXTURE_CUBE_MAP_SEAMLESS = 0x884F
_GL_SRGB8_ALPHA8 = 0x8C43
_IDENTITY4 = np.eye(4, dtype="f4").tobytes()
_IDENTITY3 = np.eye(3, dtype="f4").tobytes()
# Level of detail: the coarsest level whose geometric error projects to at most this many
# pixels is drawn (lod.py). Half a pixel keeps silhouettes where they are.
LOD_PIXEL_ERROR = 0.5


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


def load_package_any(path: Path) -> PackageLike:
    """Read a .glb/.gltf/.zip with the strict, bounds-checked reader."""
    from workers.rendering.gltf_package import load_package

    pkg: PackageLike = load_package(path)
    return pkg


class Frame:
    """A rendered image still in GPU memory; read it back with :meth:`rgb` or :meth:`i420`."""

    def __init__(self, renderer: Renderer, target: RenderTarget, render_ms: float) -> None:
        self._renderer = renderer
        self._target = target
        self._generation = target.generation
        self.width = target.width
        self.height = target.height
        self.render_ms = render_ms
        self.readback_ms = 0.0  # of the latest rgb()/i420() call
        self.convert_ms = 0.0  # GPU RGB->I420 pass of the latest i420() call

    def _check(self) -> RenderTarget:
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
            self.software = any(n in self.info.lower() for n in SOFTWARE_RENDERERS)
            self._programs: dict[tuple[VariantKey, LightCounts], ShaderProgram] = {}
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
                "box": GpuMesh(ctx, *shape_vertices(box((1.0, 1.0, 1.0)))),
                "sphere": GpuMesh(ctx, *shape_vertices(uv_sphere(0.5, 24, 12))),
            }
            self._program(BASE_VARIANT)  # avatars, also before any scene is loaded
        self._scene: SceneData | None = None
        self._scene_mesh: GpuMesh | None = None
        self._culling: ChunkTable | None = None
        self._textures: list[moderngl.Texture] = []
        self._targets: dict[tuple[int, int], RenderTarget] = {}
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
            write_cube_level(spec, level, faces, UNIT_SPEC_ENV)
        spec.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        lut_size = env.lut.shape[0]
        lut = ctx.texture(
            (lut_size, lut_size), 2, np.ascontiguousarray(env.lut).tobytes(), dtype="f4"
        )
        lut.repeat_x = lut.repeat_y = False
        lut.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self._irradiance_sh = np.ascontiguousarray(env.irradiance, dtype="f4").tobytes()
        return [spec, lut]

    def _program(self, key: VariantKey) -> ShaderProgram:
        counts = light_counts(self._lights)
        program = self._programs.get((key, counts))
        if program is None:
            program = ShaderProgram(self.ctx, key, counts)
            self._set_light_uniforms(program)
            self._programs[(key, counts)] = program
        return program

    def _set_light_uniforms(self, program: ShaderProgram) -> None:
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

    def _target(self, width: int, height: int) -> RenderTarget:
        key = (width, height)
        if key not in self._targets:
            self._targets[key] = RenderTarget(self.ctx, width, height)
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
        counts = light_counts(self._lights)
        for (_key, program_counts), program in self._programs.items():
            if program_counts == counts:  # cached from an earlier scene: its lights, not ours
                self._set_light_uniforms(program)
        if not scene.empty:
            self._scene_mesh = GpuMesh(self.ctx, scene.vertices, scene.indices)
        self._culling = ChunkTable(scene, max_error_px=LOD_PIXEL_ERROR)
        # Compile every variant the scene needs now, not mid-stream on first sight.
        self._material_programs = [self._program(material_variant(m)) for m in scene.materials]
        self._program(BASE_VARIANT)
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
                mirrored_repeat(gl_tex, s.mirror_x, s.mirror_y)
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
        pose: CameraPose | tuple[Vec3, Quat],
        *,
        ipd: float = 0.064,
        projections: tuple[MatrixLike, MatrixLike] | None = None,
        fov_y_deg: float = 90.0,
        avatars: Iterable[Avatar] = (),
    ) -> Frame:
        """Both eyes side by side (left eye left) in one (height, 2 * width_per_eye) image.
        The eyes sit at -ipd/2 and +ipd/2 along the pose's local X axis."""
        pose = pose if isinstance(pose, CameraPose) else CameraPose(*pose)
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
        pose: CameraPose | tuple[Vec3, Quat],
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
        pose = pose if isinstance(pose, CameraPose) else CameraPose(*pose)
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
        target: RenderTarget,
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
        for unit, tex in zip((UNIT_SPEC_ENV, UNIT_BRDF_LUT), self._env_textures, strict=True):
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
        gl_finish(ctx)  # honest render time; the readback would wait for it anyway
        return Frame(self, target, (time.perf_counter() - start) * 1000)

    def _draw_scene(
        self, target: RenderTarget, view_proj: F64, eye: F64, proj: F64, height_px: int
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
        self, target: RenderTarget, scene: SceneData, material: int, mesh: GpuMesh
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
                u[f"u_{prefix}_xf"].write(texture_transform_mat3(ref.transform))
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
        program = self._program(BASE_VARIANT)
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

    def _convert_i420(self, target: RenderTarget) -> None:
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
        gl_finish(ctx)  # so convert_ms is the pass itself, not part of the readback


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
