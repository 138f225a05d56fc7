"""GPU-side objects a :class:`~workers.rendering.renderer.Renderer` owns: render targets (colour,
depth and the I420 pass's buffers per frame size), meshes (vertex and index buffers with their
vertex arrays), and compiled scene-shader variants with the choice of variant per material.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import moderngl
import numpy as np

from workers.rendering import shaders
from workers.rendering.environment import PunctualLight
from workers.rendering.ibl import SPECULAR_LEVELS
from workers.rendering.scene_data import VERTEX_FLOATS, MaterialData, TextureRef

# Shader variants: (UV code per texture slot, alpha mask, unlit); see shaders.scene_fs. The
# scene's light counts are compiled in too (the program cache key adds them).
# (UV codes, alpha mask, unlit, SH per vertex, clearcoat)
VariantKey = tuple[tuple[str | None, ...], bool, bool, bool, bool]
BASE_VARIANT: VariantKey = ((None, None, None, None, None), False, False, True, False)
LightCounts = tuple[int, int, int]
# Texture units: material maps 0-4 (shaders.TEXTURE_SLOTS order), then the environment.
UNIT_SPEC_ENV, UNIT_BRDF_LUT = 5, 6


def material_variant(m: MaterialData) -> VariantKey:
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


def light_counts(lights: Sequence[PunctualLight]) -> LightCounts:
    kinds = [light.kind for light in lights]
    return (kinds.count("directional"), kinds.count("point"), kinds.count("spot"))


def texture_transform_mat3(rows: tuple[float, float, float, float, float, float]) -> bytes:
    """KHR_texture_transform rows as a GLSL mat3 (column-major)."""
    a, b, c, d, e, f = rows
    return np.array([a, d, 0.0, b, e, 0.0, c, f, 1.0], dtype="f4").tobytes()


class RenderTarget:
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


class GpuMesh:
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


def shape_vertices(arrays: tuple[Any, Any, Any, Any]) -> tuple[Any, Any]:
    """A gltf_builder shape (positions, normals, UVs, indices) in the scene vertex layout, white."""
    pos, nrm, uv, idx = arrays
    n = pos.shape[0]
    verts = np.hstack([pos, nrm, uv, np.ones((n, 4), np.float32), np.zeros((n, 2), np.float32)])
    assert verts.shape[1] == VERTEX_FLOATS
    return verts, idx


class ShaderProgram:
    """One compiled scene-shader variant and its uniforms."""

    def __init__(self, ctx: moderngl.Context, key: VariantKey, lights: LightCounts) -> None:
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
        self.u["u_spec_env"].value = UNIT_SPEC_ENV
        self.u["u_brdf_lut"].value = UNIT_BRDF_LUT
