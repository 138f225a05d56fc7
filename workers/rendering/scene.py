"""glTF document -> flat, GPU-ready scene data (pure numpy, no GL).

The streamed scenes are static, so node transforms are baked into world-space vertices once at
load time and all primitives sharing a material are merged into one draw range. A frame then
costs one draw call per material per eye, whatever the node count.

Input is any object with the :class:`PackageLike` shape (``document``, ``read_accessor``,
``image_bytes``), i.e. the strict reader in ``gltf_package``. Anything unsupported
(points/lines, skins, morph targets, unknown extensions, undecodable images, out-of-range
indices) is skipped with a log line; what changes how the scene looks is also a named
:class:`RenderWarning` (``SceneData.warnings``), which processing puts on the version's report.

Materials follow glTF 2.0's metallic-roughness model with every core map, per-texture
``texCoord`` (0 or 1) and ``KHR_texture_transform``, plus ``KHR_materials_unlit``,
``KHR_materials_emissive_strength`` and ``KHR_materials_ior``; ``KHR_lights_punctual`` lights
are placed in world space (``SceneData.lights``). The data types themselves are in
``scene_data.py``.
"""

from __future__ import annotations

import io
import logging
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from workers.rendering.environment import PunctualLight
from workers.rendering.scene_data import (
    VERTEX_FLOATS,
    Chunk,
    DrawRange,
    MaterialData,
    PackageLike,
    RenderWarning,
    SamplerInfo,
    SceneData,
    TextureData,
    TextureRef,
)
from workers.rendering.transforms import node_local_matrix

log = logging.getLogger(__name__)

MAX_LIGHTS = 8  # KHR_lights_punctual lights drawn per scene (shader uniform arrays)

# Extensions drawn as authored (the rest are named warnings). The compression/image ones are
# decoded by processing into the render derivative before the renderer sees the scene.
RENDERED_EXTENSIONS = frozenset(
    {
        "KHR_materials_emissive_strength",
        "KHR_materials_ior",
        "KHR_materials_unlit",
        "KHR_texture_transform",
        "KHR_lights_punctual",
        "KHR_mesh_quantization",
        "KHR_texture_basisu",
        "EXT_texture_webp",
        "KHR_draco_mesh_compression",
        "EXT_meshopt_compression",
    }
)
# Extensions that only carry data a static renderer does not need.
IGNORED_EXTENSIONS = frozenset({"KHR_xmp_json_ld"})
MAX_NODE_DEPTH = 64
MAX_TEXTURE_EDGE = 4096  # larger images are downscaled: 4K per eye never needs more

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


_MATERIAL_EXTENSION_NOTES = {
    "KHR_materials_sheen": "sheen not drawn",
    "KHR_materials_volume": "volume absorption not drawn",
    "KHR_materials_iridescence": "iridescence not drawn",
    "KHR_materials_anisotropy": "anisotropy not drawn (isotropic GGX)",
    "KHR_materials_dispersion": "dispersion not drawn",
    "KHR_materials_diffuse_transmission": "diffuse transmission not drawn",
    "KHR_materials_pbrSpecularGlossiness": "specular-glossiness drawn as metallic-roughness",
}
_DOCUMENT_EXTENSION_NOTES = {
    "EXT_lights_image_based": "the scene's own environment is not used; "
    "the default neutral environment lights it",
    "KHR_materials_variants": "only the default material of each primitive is drawn",
    "KHR_animation_pointer": "animations of material, light and camera properties not played",
}
_MAT_EXT_DONE = frozenset(
    {
        "KHR_materials_emissive_strength",
        "KHR_materials_unlit",
        "KHR_materials_ior",
        "KHR_materials_clearcoat",
        "KHR_materials_transmission",  # approximated, named per material
        "KHR_materials_specular",
    }
)
_CLEARCOAT_TEXTURES = ("clearcoatTexture", "clearcoatRoughnessTexture", "clearcoatNormalTexture")


class _Loader:
    def __init__(self, package: PackageLike) -> None:
        self.pkg = package
        self.doc = package.document
        self.skipped: list[str] = []
        self.warnings: list[RenderWarning] = []
        self._skip_once: set[str] = set()
        self._warn_once: set[tuple[str, str]] = set()
        self._material_pointer = ""  # "/materials/<i>" while one is parsed
        self.materials: list[MaterialData] = []
        self.textures: list[TextureData] = []
        self.lights: list[PunctualLight] = []
        self._material_map: dict[int, int] = {}
        self._texture_map: dict[tuple[int, bool], int | None] = {}
        # material slot -> list of (vertices, indices)
        self.batches: dict[int, list[tuple[F32, npt.NDArray[np.uint32]]]] = {}

    def skip(self, what: str) -> None:
        if what not in self._skip_once:
            self._skip_once.add(what)
            self.skipped.append(what)
            log.info("glTF: skipped %s", what)

    def warn(self, code: str, feature: str, message: str, pointer: str | None = None) -> None:
        """A named report entry (once per code and feature) and a skipped line. ``pointer``
        defaults to the material being read, if any."""
        if (code, feature) not in self._warn_once:
            self._warn_once.add((code, feature))
            where = self._material_pointer if pointer is None else pointer
            self.warnings.append(RenderWarning(code, feature, message, where))
        self.skip(f"{feature}: {message}")

    # -- materials & textures ---------------------------------------------------------------
    def material_slot(self, index: int | None) -> int:
        key = -1 if index is None else index
        if key in self._material_map:
            return self._material_map[key]
        mat = MaterialData()
        if index is not None:
            self._material_pointer = f"/materials/{index}"
            try:
                mat = self._parse_material(self.doc["materials"][index])
            except Exception as exc:  # a broken material must never fail the scene
                self.warn(
                    "render_material_invalid",
                    f"material {index}",
                    f"could not be read ({exc}); drawn with the default material",
                )
                mat = MaterialData()
            finally:
                self._material_pointer = ""
        self.materials.append(mat)
        self._material_map[key] = len(self.materials) - 1
        return len(self.materials) - 1

    def _parse_material(self, m: dict[str, Any]) -> MaterialData:
        pbr = m.get("pbrMetallicRoughness", {})
        bc = [float(v) for v in pbr.get("baseColorFactor", (1, 1, 1, 1))]
        if len(bc) != 4:
            raise ValueError("baseColorFactor needs 4 numbers")
        ext = m.get("extensions") or {}
        strength = float(
            (ext.get("KHR_materials_emissive_strength") or {}).get("emissiveStrength", 1.0)
        )
        em = [float(v) * strength for v in m.get("emissiveFactor", (0, 0, 0))]
        if len(em) != 3:
            raise ValueError("emissiveFactor needs 3 numbers")
        mat = MaterialData(
            base_color=(bc[0], bc[1], bc[2], bc[3]),
            metallic=float(pbr.get("metallicFactor", 1.0)),
            roughness=float(pbr.get("roughnessFactor", 1.0)),
            emissive=(em[0], em[1], em[2]),
            alpha_mode=str(m.get("alphaMode", "OPAQUE")),
            alpha_cutoff=float(m.get("alphaCutoff", 0.5)),
            double_sided=bool(m.get("doubleSided", False)),
            unlit="KHR_materials_unlit" in ext,
        )
        if "KHR_materials_ior" in ext:
            ior = float((ext["KHR_materials_ior"] or {}).get("ior", 1.5))
            mat.f0 = ((ior - 1) / (ior + 1)) ** 2 if ior >= 1 else 1.0
        cc = ext.get("KHR_materials_clearcoat")
        if isinstance(cc, dict):
            mat.clearcoat = min(max(float(cc.get("clearcoatFactor", 0.0)), 0.0), 1.0)
            mat.clearcoat_roughness = float(cc.get("clearcoatRoughnessFactor", 0.0))
            maps = [k for k in _CLEARCOAT_TEXTURES if k in cc]
            if maps and mat.clearcoat > 0:
                self.warn(
                    "render_approximated",
                    "KHR_materials_clearcoat",
                    f"clearcoat drawn from its factors; {', '.join(maps)} not applied",
                )
        sp = ext.get("KHR_materials_specular")
        if isinstance(sp, dict):
            mat.specular = float(sp.get("specularFactor", 1.0))
            col = [float(v) for v in sp.get("specularColorFactor", (1.0, 1.0, 1.0))]
            if len(col) != 3:
                raise ValueError("specularColorFactor needs 3 numbers")
            mat.specular_color = (col[0], col[1], col[2])
            maps = [k for k in ("specularTexture", "specularColorTexture") if k in sp]
            if maps:
                self.warn(
                    "render_approximated",
                    "KHR_materials_specular",
                    f"specular drawn from its factors; {', '.join(maps)} not applied",
                )
        tr = ext.get("KHR_materials_transmission")
        transmission = float(tr.get("transmissionFactor", 0.0)) if isinstance(tr, dict) else 0.0
        if transmission > 0:
            # No refraction here: see-through as alpha blending, which keeps glass readable
            # (an opaque pane hides what is behind it, the larger error).
            see_through = min(transmission, 1.0) * (1.0 - min(max(mat.metallic, 0.0), 1.0))
            r, g, b, a = mat.base_color
            mat.base_color = (r, g, b, a * (1.0 - 0.9 * see_through))
            if mat.alpha_mode == "OPAQUE":
                mat.alpha_mode = "BLEND"
            self.warn(
                "render_approximated",
                "KHR_materials_transmission",
                "transmission drawn as alpha blending (no refraction, no transmission texture)",
                f"{self._material_pointer}/extensions/KHR_materials_transmission",
            )
        if mat.alpha_mode not in ("OPAQUE", "MASK", "BLEND"):
            self.warn("render_invalid_value", "alphaMode", f"{mat.alpha_mode!r} drawn as OPAQUE")
            mat.alpha_mode = "OPAQUE"
        if "baseColorTexture" in pbr:
            mat.base_texture = self._texture_ref(pbr["baseColorTexture"], "baseColorTexture", True)
        if "metallicRoughnessTexture" in pbr:
            mat.metallic_roughness_texture = self._texture_ref(
                pbr["metallicRoughnessTexture"], "metallicRoughnessTexture", False
            )
        if "normalTexture" in m:
            mat.normal_texture = self._texture_ref(m["normalTexture"], "normalTexture", False)
            mat.normal_scale = float(m["normalTexture"].get("scale", 1.0))
        if "occlusionTexture" in m:
            mat.occlusion_texture = self._texture_ref(
                m["occlusionTexture"], "occlusionTexture", False
            )
            mat.occlusion_strength = float(m["occlusionTexture"].get("strength", 1.0))
        if "emissiveTexture" in m:
            mat.emissive_texture = self._texture_ref(m["emissiveTexture"], "emissiveTexture", True)
            if mat.emissive_texture is None:
                # Drawing the factor alone would paint the whole surface (e.g. white).
                mat.emissive = (0.0, 0.0, 0.0)
        for name in ext:
            if name in _MAT_EXT_DONE:
                continue
            note = _MATERIAL_EXTENSION_NOTES.get(name, "material extension not drawn")
            self.warn(
                "render_unsupported_extension",
                name,
                note,
                f"{self._material_pointer}/extensions/{name}",
            )
        return mat

    def _texture_ref(self, ref: dict[str, Any], what: str, srgb: bool) -> TextureRef | None:
        texcoord = int(ref.get("texCoord", 0))
        transform = None
        tt = (ref.get("extensions") or {}).get("KHR_texture_transform")
        if isinstance(tt, dict):
            texcoord = int(tt.get("texCoord", texcoord))
            transform = texture_transform_rows(tt)
        if texcoord not in (0, 1):
            self.warn(
                "render_unsupported_texcoord",
                f"TEXCOORD_{texcoord}",
                f"{what} uses TEXCOORD_{texcoord}; only sets 0 and 1 are drawn (texture skipped)",
            )
            return None
        slot = self.texture_slot(int(ref["index"]), srgb=srgb)
        if slot is None:
            return None
        return TextureRef(slot=slot, texcoord=texcoord, transform=transform)

    def texture_slot(self, index: int, *, srgb: bool = False) -> int | None:
        key = (index, srgb)
        if key in self._texture_map:
            return self._texture_map[key]
        slot: int | None = None
        try:
            tex = self.doc["textures"][index]
            if "source" not in tex:
                exts = ", ".join(sorted(tex.get("extensions") or {})) or "no source"
                self.warn(
                    "render_texture_not_decoded",
                    f"texture {index}",
                    f"image not decoded ({exts}); drawn without this texture",
                    f"/textures/{index}",
                )
            else:
                rgba = self._decode_image(int(tex["source"]))
                sampler = SamplerInfo()
                if "sampler" in tex:
                    sampler = self._parse_sampler(self.doc["samplers"][int(tex["sampler"])])
                self.textures.append(TextureData(rgba=rgba, sampler=sampler, srgb=srgb))
                slot = len(self.textures) - 1
        except Exception as exc:  # a broken texture must never fail the scene
            self.warn(
                "render_texture_not_decoded",
                f"texture {index}",
                f"could not be decoded ({type(exc).__name__}: {exc}); drawn without it",
                f"/textures/{index}",
            )
        self._texture_map[key] = slot
        return slot

    def _decode_image(self, image_index: int) -> npt.NDArray[np.uint8]:
        from PIL import Image

        data = self.pkg.image_bytes(image_index)
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (MAX_TEXTURE_EDGE, MAX_TEXTURE_EDGE))  # cheap JPEG downscale
            rgba = img.convert("RGBA")
        if max(rgba.size) > MAX_TEXTURE_EDGE:
            rgba.thumbnail((MAX_TEXTURE_EDGE, MAX_TEXTURE_EDGE))
        return np.asarray(rgba, dtype=np.uint8)

    def _parse_sampler(self, s: dict[str, Any]) -> SamplerInfo:
        wrap_s, wrap_t = int(s.get("wrapS", 10497)), int(s.get("wrapT", 10497))
        min_f = int(s.get("minFilter", 9987))
        return SamplerInfo(
            repeat_x=wrap_s != 33071,
            repeat_y=wrap_t != 33071,
            mirror_x=wrap_s == 33648,
            mirror_y=wrap_t == 33648,
            mag_linear=int(s.get("magFilter", 9729)) != 9728,
            min_linear=min_f not in (9728, 9984, 9986),
            mipmaps=min_f not in (9728, 9729),
        )

    # -- lights -------------------------------------------------------------------------------
    def add_light(self, index: Any, world: F64) -> None:
        try:
            spec = self.doc["extensions"]["KHR_lights_punctual"]["lights"][int(index)]
            light = punctual_light(spec, world)
        except Exception as exc:  # a broken light must never fail the scene
            where = f"/extensions/KHR_lights_punctual/lights/{index}"
            self.warn("render_light_invalid", f"light {index}", f"could not be read ({exc})", where)
            return
        if len(self.lights) >= MAX_LIGHTS:
            self.warn(
                "render_too_many_lights",
                "KHR_lights_punctual",
                f"only the first {MAX_LIGHTS} lights are drawn",
                "/extensions/KHR_lights_punctual/lights",
            )
            return
        self.lights.append(light)

    # -- geometry ---------------------------------------------------------------------------
    def walk(self) -> None:
        scenes = self.doc.get("scenes") or []
        nodes = self.doc.get("nodes") or []
        if scenes:
            scene_index = int(self.doc.get("scene", 0))
            roots = list(scenes[scene_index].get("nodes", []))
        else:  # no scene: every node that is nobody's child is a root
            children = {c for n in nodes for c in n.get("children", [])}
            roots = [i for i in range(len(nodes)) if i not in children]
        for i, ext in enumerate(self.doc.get("extensionsUsed", []) or []):
            if ext in RENDERED_EXTENSIONS or ext in _MAT_EXT_DONE:
                continue
            if ext in IGNORED_EXTENSIONS:
                self.skip(f"extension {ext} (no effect on a static render)")
            else:  # one entry per extension, also when materials name it again
                note = _MATERIAL_EXTENSION_NOTES.get(
                    str(ext), _DOCUMENT_EXTENSION_NOTES.get(str(ext), "extension not drawn")
                )
                self.warn("render_unsupported_extension", str(ext), note, f"/extensionsUsed/{i}")
        if self.doc.get("animations"):
            self.skip("animations (static pose drawn)")
        stack: list[tuple[int, F64, int, frozenset[int]]] = [
            (int(r), np.eye(4), 0, frozenset()) for r in reversed(roots)
        ]
        while stack:
            index, parent, depth, seen = stack.pop()
            if index in seen or depth > MAX_NODE_DEPTH:
                self.skip(f"node {index}: cycle or hierarchy deeper than {MAX_NODE_DEPTH}")
                continue
            try:
                node = nodes[index]
                world = parent @ node_local_matrix(node)
            except (IndexError, TypeError, ValueError) as exc:
                self.skip(f"node {index} ({exc})")
                continue
            if "skin" in node:
                self.skip("skins (bind pose drawn)")
            if "mesh" in node:
                self.add_mesh(int(node["mesh"]), world)
            node_ext = node.get("extensions")
            light = node_ext.get("KHR_lights_punctual") if isinstance(node_ext, dict) else None
            if isinstance(light, dict) and "light" in light:
                self.add_light(light["light"], world)
            for child in reversed(node.get("children", [])):
                stack.append((int(child), world, depth + 1, seen | {index}))

    def add_mesh(self, mesh_index: int, world: F64) -> None:
        try:
            mesh = self.doc["meshes"][mesh_index]
        except (KeyError, IndexError, TypeError):
            self.skip(f"mesh {mesh_index}: missing")
            return
        for p, prim in enumerate(mesh.get("primitives", [])):
            try:
                self.add_primitive(prim, world)
            except Exception as exc:  # keep going: one bad primitive must not lose the scene
                self.skip(f"mesh {mesh_index} primitive {p} ({type(exc).__name__}: {exc})")

    def add_primitive(self, prim: dict[str, Any], world: F64) -> None:
        mode = int(prim.get("mode", 4))
        if mode not in (4, 5, 6):
            self.skip(f"primitive mode {mode} (points/lines)")
            return
        if prim.get("targets"):
            self.skip("morph targets (base shape drawn)")
        attrs = prim.get("attributes", {})
        if "POSITION" not in attrs:
            self.skip("primitive without POSITION")
            return
        pos = self._floats(attrs["POSITION"], 3)
        n = pos.shape[0]
        if "indices" in prim:
            idx = np.asarray(self.pkg.read_accessor(int(prim["indices"]))).reshape(-1)
            if idx.size and (idx.min() < 0 or int(idx.max()) >= n):
                raise ValueError("index out of range")
            idx = idx.astype(np.uint32)
        else:
            idx = np.arange(n, dtype=np.uint32)
        idx = _to_triangle_list(idx, mode)
        if idx.size == 0:
            return
        normals = self._floats(attrs["NORMAL"], 3) if "NORMAL" in attrs else None
        uvs = self._floats(attrs["TEXCOORD_0"], 2) if "TEXCOORD_0" in attrs else None
        uvs1 = self._floats(attrs["TEXCOORD_1"], 2) if "TEXCOORD_1" in attrs else None
        colors = None
        if "COLOR_0" in attrs:
            c = self._floats(attrs["COLOR_0"], None)
            colors = c if c.shape[1] == 4 else np.hstack([c[:, :3], np.ones((n, 1), np.float32)])
        for arr in (normals, uvs, uvs1, colors):
            if arr is not None and arr.shape[0] != n:
                raise ValueError("attribute counts differ")
        verts = np.empty((n, VERTEX_FLOATS), dtype=np.float32)
        verts[:, 0:3] = pos
        verts[:, 6:8] = 0.0 if uvs is None else uvs
        verts[:, 8:12] = 1.0 if colors is None else colors
        verts[:, 12:14] = 0.0 if uvs1 is None else uvs1
        if normals is None:
            # glTF: no normals means flat shading, so un-share the vertices.
            verts = verts[idx]
            idx = np.arange(verts.shape[0], dtype=np.uint32)
            tri = verts[:, 0:3].reshape(-1, 3, 3)
            fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            verts[:, 3:6] = np.repeat(fn, 3, axis=0)
        else:
            verts[:, 3:6] = normals
        # Bake the node transform; normals go through the inverse transpose.
        lin = world[:3, :3]
        verts[:, 0:3] = verts[:, 0:3] @ lin.T.astype(np.float32) + world[:3, 3].astype(np.float32)
        det = float(np.linalg.det(lin))
        if abs(det) < 1e-20:
            return  # zero scale: nothing visible
        nrm = verts[:, 3:6] @ np.linalg.inv(lin).astype(np.float32)
        length = np.linalg.norm(nrm, axis=1, keepdims=True)
        verts[:, 3:6] = nrm / np.maximum(length, 1e-12)
        if det < 0:  # mirrored transform flips the winding
            idx = idx.reshape(-1, 3)[:, ::-1].reshape(-1)
        if not np.isfinite(verts).all():
            raise ValueError("non-finite vertex data")
        slot = self.material_slot(prim.get("material"))
        self.batches.setdefault(slot, []).append((verts, np.ascontiguousarray(idx)))

    def _floats(self, accessor: int, ncomp: int | None) -> F32:
        a = np.asarray(self.pkg.read_accessor(int(accessor)))
        if a.ndim == 1:
            a = a.reshape(-1, 1)
        if ncomp is not None and a.shape[1] != ncomp:
            raise ValueError(f"accessor {accessor} has {a.shape[1]} components, want {ncomp}")
        return a.astype(np.float32, copy=False)

    def finish(self) -> SceneData:
        order = {"OPAQUE": 0, "MASK": 1, "BLEND": 2}
        slots = sorted(self.batches, key=lambda s: order[self.materials[s].alpha_mode])
        vert_parts: list[F32] = []
        idx_parts: list[npt.NDArray[np.uint32]] = []
        draws: list[DrawRange] = []
        base = 0
        first = 0
        chunks: list[Chunk] = []
        for slot in slots:
            start = first
            for verts, idx in self.batches[slot]:
                vert_parts.append(verts)
                idx_parts.append(idx + np.uint32(base))
                lo, hi = verts[:, 0:3].min(axis=0), verts[:, 0:3].max(axis=0)
                centre = (lo + hi) / 2
                radius = float(np.linalg.norm(verts[:, 0:3] - centre, axis=1).max())
                chunks.append(
                    Chunk(
                        material=slot,
                        center=(float(centre[0]), float(centre[1]), float(centre[2])),
                        radius=radius,
                        lods=[(first, int(idx.shape[0]), 0.0)],
                    )
                )
                base += verts.shape[0]
                first += idx.shape[0]
            draws.append(DrawRange(material=slot, first=start, count=first - start))
        if vert_parts:
            vertices = np.ascontiguousarray(np.concatenate(vert_parts), dtype=np.float32)
            indices = np.ascontiguousarray(np.concatenate(idx_parts), dtype=np.uint32)
            bmin = vertices[:, 0:3].min(axis=0).astype(np.float64)
            bmax = vertices[:, 0:3].max(axis=0).astype(np.float64)
        else:
            vertices = np.zeros((0, VERTEX_FLOATS), np.float32)
            indices = np.zeros(0, np.uint32)
            bmin = np.full(3, -1.0)
            bmax = np.full(3, 1.0)
        return SceneData(
            vertices=vertices,
            indices=indices,
            materials=self.materials,
            textures=self.textures,
            draws=draws,
            bounds_min=bmin,
            bounds_max=bmax,
            triangles=int(indices.shape[0] // 3),
            skipped=self.skipped,
            chunks=chunks,
            warnings=self.warnings,
            lights=self.lights or None,
        )


def _to_triangle_list(idx: npt.NDArray[np.uint32], mode: int) -> npt.NDArray[np.uint32]:
    if mode == 4:
        return idx[: idx.size - idx.size % 3]
    if idx.size < 3:
        return np.zeros(0, np.uint32)
    k = np.arange(idx.size - 2)
    if mode == 5:  # strip: alternate winding so every triangle keeps the front face
        a, b, c = idx[k], idx[k + 1], idx[k + 2]
        odd = (k % 2) == 1
        a2 = np.where(odd, b, a)
        b2 = np.where(odd, a, b)
        return np.stack([a2, b2, c], axis=1).reshape(-1).astype(np.uint32)
    # mode 6, fan
    return (
        np.stack([np.full(k.size, idx[0]), idx[k + 1], idx[k + 2]], axis=1)
        .reshape(-1)
        .astype(np.uint32)
    )


def build_scene_data(package: PackageLike) -> SceneData:
    """Flatten a glTF package into world-space, material-batched arrays."""
    loader = _Loader(package)
    loader.walk()
    return loader.finish()


def texture_transform_rows(tt: dict[str, Any]) -> tuple[float, float, float, float, float, float]:
    """KHR_texture_transform as the top two rows of T * R * S (the extension's matrix)."""
    ox, oy = (float(v) for v in tt.get("offset", (0.0, 0.0)))
    sx, sy = (float(v) for v in tt.get("scale", (1.0, 1.0)))
    r = float(tt.get("rotation", 0.0))
    c, s = math.cos(r), math.sin(r)
    # T = [[1,0,ox],[0,1,oy]], R = [[c, s, 0], [-s, c, 0]], S = diag(sx, sy)
    return (c * sx, s * sy, ox, -s * sx, c * sy, oy)


def punctual_light(spec: dict[str, Any], world: F64) -> PunctualLight:
    """A KHR_lights_punctual light placed by its node's world matrix (it shines down -Z)."""
    kind = str(spec["type"])
    if kind not in ("directional", "point", "spot"):
        raise ValueError(f"unknown light type {kind!r}")
    color = [float(v) for v in spec.get("color", (1.0, 1.0, 1.0))]
    if len(color) != 3:
        raise ValueError("light color needs 3 numbers")
    axis = world[:3, :3] @ np.array([0.0, 0.0, -1.0])
    norm = float(np.linalg.norm(axis))
    if norm < 1e-12:
        raise ValueError("light node has zero scale")
    axis /= norm
    spot = spec.get("spot") or {}
    rng = spec.get("range")
    return PunctualLight(
        kind=kind,
        color=(color[0], color[1], color[2]),
        intensity=float(spec.get("intensity", 1.0)),
        direction=(float(axis[0]), float(axis[1]), float(axis[2])),
        position=(float(world[0, 3]), float(world[1, 3]), float(world[2, 3])),
        range=float(rng) if rng is not None and float(rng) > 0 else None,
        inner_cone_angle=float(spot.get("innerConeAngle", 0.0)),
        outer_cone_angle=float(spot.get("outerConeAngle", math.pi / 4)),
    )
