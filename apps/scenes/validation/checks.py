"""Structural checks of a loaded glTF, collecting every problem instead of stopping at one.

The container-level checks (GLB, JSON, URIs, files, zip, sizes) happen in ``load_package``;
this module checks the document against its own buffers and against the limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, TypeGuard

import numpy as np
import numpy.typing as npt

from workers.rendering.gltf_package import (
    GltfLimits,
    GltfPackage,
    GltfPackageError,
    accessor_layout,
    check_image,
    get_list,
    primitive_triangles,
    ptr,
)

from .report import Issue, SceneStats, Severity

# Extensions a file may *require* and still render correctly here. Anything else required
# changes the meaning of the data (compression, different material models) and is rejected.
SUPPORTED_REQUIRED_EXTENSIONS = frozenset(
    {"KHR_mesh_quantization", "KHR_materials_unlit", "KHR_texture_transform"}
)
_ARRAYS = (
    "accessors",
    "animations",
    "buffers",
    "bufferViews",
    "cameras",
    "images",
    "materials",
    "meshes",
    "nodes",
    "samplers",
    "scenes",
    "skins",
    "textures",
)
_INDEX_TYPES = (5121, 5123, 5125)
_MATERIAL_TEXTURES = (
    ("pbrMetallicRoughness", "baseColorTexture"),
    ("pbrMetallicRoughness", "metallicRoughnessTexture"),
    ("", "normalTexture"),
    ("", "occlusionTexture"),
    ("", "emissiveTexture"),
)
# Beyond this many positions per primitive, bounds use the transformed local box corners.
_EXACT_BOUNDS_MAX_VERTICES = 1_000_000


def _is_index(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _numbers(value: Any, n: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == n
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        )
    )


class Checker:
    """Runs every check on one package; read ``issues`` and ``stats`` afterwards."""

    def __init__(self, package: GltfPackage, limits: GltfLimits) -> None:
        self.package = package
        self.doc = package.document
        self.limits = limits
        self.issues: list[Issue] = []
        self.stats = SceneStats()
        self.arrays: dict[str, list[dict[str, Any]]] = {}
        self.good_views: set[int] = set()
        self.good_accessors: set[int] = set()
        self.accessor_data: dict[int, npt.NDArray[Any]] = {}
        self.forest_ok = False

    def add(self, code: str, message: str, pointer: str, severity: Severity = "error") -> None:
        self.issues.append(Issue(code=code, severity=severity, message=message, pointer=pointer))

    def guarded(self, check: Callable[[], None]) -> None:
        """Run one check; a schema error inside it becomes an issue and the others still run."""
        try:
            check()
        except GltfPackageError as exc:
            self.add(exc.code, exc.message, exc.pointer)

    def ref_ok(self, obj: dict[str, Any], key: str, array: str, pointer: str) -> bool:
        """``obj[key]`` (if present) indexes into the top-level ``array``; records an issue."""
        if key not in obj:
            return False
        value = obj[key]
        size = len(self.arrays.get(array, []))
        if not _is_index(value) or value >= size:
            self.add(
                "index_out_of_range",
                f"'{key}' is {value!r} but the file has {size} {array}",
                f"{pointer}/{key}",
            )
            return False
        return True

    # ------------------------------------------------------------------ driver

    def run(self) -> None:
        for name in _ARRAYS:
            try:
                self.arrays[name] = get_list(self.doc, name)
            except GltfPackageError as exc:
                self.add(exc.code, exc.message, exc.pointer)
        if self.issues:
            return  # the document's shape is broken; every further check would be noise
        self.guarded(self.check_extensions)
        self.guarded(self.check_counts)
        self.guarded(self.check_animations)
        self.guarded(self.check_buffer_views)
        self.guarded(self.check_accessors)
        self.guarded(self.check_meshes)
        self.guarded(self.check_materials_textures)
        self.guarded(self.check_images)
        self.guarded(self.check_nodes)
        self.guarded(self.check_scenes)
        if not any(i.severity == "error" for i in self.issues):
            self.guarded(self.compute_scene_stats)

    # ------------------------------------------------------------------ checks

    def check_extensions(self) -> None:
        required = self.doc.get("extensionsRequired", [])
        if not isinstance(required, list):
            self.add("schema", "extensionsRequired must be an array", "/extensionsRequired")
            return
        for i, name in enumerate(required):
            if name not in SUPPORTED_REQUIRED_EXTENSIONS:
                self.add(
                    "extension_unsupported",
                    f"the file requires extension {name!r}, which the renderer does not "
                    "support; export without it",
                    ptr("extensionsRequired", i),
                )

    def check_counts(self) -> None:
        lim = self.limits
        s = self.stats
        s.nodes = len(self.arrays["nodes"])
        s.meshes = len(self.arrays["meshes"])
        s.materials = len(self.arrays["materials"])
        s.textures = len(self.arrays["textures"])
        s.images = len(self.arrays["images"])
        s.decoded_bytes = sum(len(b) for b in self.package.buffers) + sum(
            len(b) for b in self.package.image_data.values()
        )
        for key, limit in (
            ("nodes", lim.max_nodes),
            ("meshes", lim.max_meshes),
            ("accessors", lim.max_accessors),
            ("materials", lim.max_materials),
            ("textures", lim.max_textures),
            ("images", lim.max_images),
        ):
            n = len(self.arrays[key])
            if n > limit:
                self.add(
                    f"too_many_{key}",
                    f"the file has {n} {key}; the limit is {limit}",
                    "/" + key,
                )

    def check_animations(self) -> None:
        """Bound the per-frame posing work: total keyframes over every animation sampler."""
        keys = 0
        accessors = self.arrays["accessors"]
        for a, animation in enumerate(get_list(self.doc, "animations")):
            for s, sampler in enumerate(get_list(animation, "samplers", ptr("animations", a))):
                index = sampler.get("input") if isinstance(sampler, dict) else None
                if isinstance(index, int) and 0 <= index < len(accessors):
                    count = accessors[index].get("count")
                    keys += count if isinstance(count, int) else 0
                if keys > self.limits.max_animation_keys:
                    self.add(
                        "too_many_keyframes",
                        f"the animations have more than {self.limits.max_animation_keys} "
                        "keyframes in all; resample them (e.g. gltf-transform resample)",
                        ptr("animations", a, "samplers", s, "input"),
                    )
                    return

    def check_buffer_views(self) -> None:
        for i, view in enumerate(self.arrays["bufferViews"]):
            p = ptr("bufferViews", i)
            if not self.ref_ok(view, "buffer", "buffers", p):
                if "buffer" not in view:
                    self.add("schema", "bufferView.buffer is required", p + "/buffer")
                continue
            offset = view.get("byteOffset", 0)
            length = view.get("byteLength")
            if not _is_index(offset) or not _is_index(length) or length < 1:
                self.add("schema", "byteOffset/byteLength must be integers (length >= 1)", p)
                continue
            stride = view.get("byteStride")
            if "byteStride" in view and (
                not _is_index(stride) or stride < 4 or stride > 252 or stride % 4
            ):
                self.add(
                    "buffer_view_invalid",
                    f"byteStride {stride!r} must be a multiple of 4 between 4 and 252",
                    p + "/byteStride",
                )
                continue
            size = len(self.package.buffers[view["buffer"]])
            if offset + length > size:
                self.add(
                    "buffer_view_out_of_bounds",
                    f"bufferView {i} covers bytes {offset}..{offset + length} but buffer "
                    f"{view['buffer']} has only {size} bytes",
                    p,
                )
                continue
            self.good_views.add(i)

    def check_accessors(self) -> None:
        for i, acc in enumerate(self.arrays["accessors"]):
            self.guarded(partial(self._check_accessor, i, acc))

    def _check_accessor(self, i: int, acc: dict[str, Any]) -> None:
        p = ptr("accessors", i)
        layout = accessor_layout(acc, p)
        count = acc.get("count")
        if not _is_index(count) or count < 1:
            self.add("schema", f"accessor count {count!r} must be an integer >= 1", p + "/count")
            return
        if "bufferView" in acc:
            if not self.ref_ok(acc, "bufferView", "bufferViews", p):
                return
            vi = acc["bufferView"]
            if vi not in self.good_views:
                return  # already reported on the view
            view = self.arrays["bufferViews"][vi]
            offset = acc.get("byteOffset", 0)
            if not _is_index(offset):
                self.add("schema", "byteOffset must be a non-negative integer", p + "/byteOffset")
                return
            size = layout.dtype.itemsize
            if offset % size or view.get("byteOffset", 0) % size:
                self.add(
                    "accessor_misaligned",
                    f"accessor data must start on a multiple of its component size ({size})",
                    p + "/byteOffset",
                )
                return
            stride = view.get("byteStride", layout.element_size)
            if stride < layout.element_size:
                self.add(
                    "accessor_out_of_bounds",
                    f"byteStride {stride} of bufferView {vi} is smaller than one element "
                    f"({layout.element_size} bytes)",
                    p,
                )
                return
            end = offset + stride * (count - 1) + layout.element_size
            if end > view["byteLength"]:
                self.add(
                    "accessor_out_of_bounds",
                    f"accessor {i} reads {count} elements up to byte {end} of bufferView {vi}, "
                    f"which has only {view['byteLength']} bytes",
                    p,
                )
                return
        elif "sparse" not in acc:
            self.add(
                "accessor_empty",
                "accessor has neither bufferView nor sparse data; it reads as zeros",
                p,
                "warning",
            )
        self.package.read_accessor(i)  # sparse data and anything left: raises with a code
        self.good_accessors.add(i)

    def _accessor(self, index: int) -> npt.NDArray[Any]:
        if index not in self.accessor_data:
            self.accessor_data[index] = self.package.read_accessor(index)
        return self.accessor_data[index]

    def check_meshes(self) -> None:
        for m, mesh in enumerate(self.arrays["meshes"]):
            prims = mesh.get("primitives")
            if not isinstance(prims, list) or not prims:
                self.add("schema", "a mesh needs a non-empty primitives array", ptr("meshes", m))
                continue
            for pi, prim in enumerate(prims):
                p = ptr("meshes", m, "primitives", pi)
                if not isinstance(prim, dict):
                    self.add("schema", "a primitive must be an object", p)
                    continue
                self.guarded(partial(self._check_primitive, prim, p))

    def _check_primitive(self, prim: dict[str, Any], p: str) -> None:
        attrs = prim.get("attributes")
        if not isinstance(attrs, dict) or not attrs:
            self.add("schema", "a primitive needs an attributes object", p + "/attributes")
            return
        mode = prim.get("mode", 4)
        if not _is_index(mode) or mode > 6:
            self.add("schema", f"primitive mode {mode!r} is not 0..6", p + "/mode")
        self.ref_ok(prim, "material", "materials", p)
        has_indices = self.ref_ok(prim, "indices", "accessors", p)
        accessors = self.arrays["accessors"]
        counts = {}
        for name, index in attrs.items():
            if self.ref_ok(attrs, name, "accessors", p + "/attributes"):
                counts[name] = accessors[index].get("count")
        if "POSITION" not in attrs:
            self.add(
                "position_missing", "the primitive has no POSITION; it draws nothing", p, "warning"
            )
            return
        pos_index = attrs["POSITION"]
        if "POSITION" not in counts:
            return
        pos = accessors[pos_index]
        float_vec3 = pos.get("type") == "VEC3" and pos.get("componentType") == 5126
        if not float_vec3 and not self.doc_requires("KHR_mesh_quantization"):
            self.add(
                "accessor_invalid",
                "POSITION must be a float VEC3 accessor",
                p + "/attributes/POSITION",
            )
        vertex_count = counts["POSITION"]
        for name, n in counts.items():
            if n != vertex_count:
                self.add(
                    "attribute_count_mismatch",
                    f"attribute {name} has {n} elements but POSITION has {vertex_count}",
                    p + "/attributes/" + name,
                )
        if not has_indices:
            return
        index_acc = accessors[prim["indices"]]
        if (
            index_acc.get("type") != "SCALAR"
            or index_acc.get("componentType") not in _INDEX_TYPES
            or index_acc.get("normalized", False)
        ):
            self.add(
                "accessor_invalid",
                "indices must be an unsigned byte/short/int SCALAR accessor",
                p + "/indices",
            )
            return
        if prim["indices"] not in self.good_accessors or not isinstance(vertex_count, int):
            return
        values = self._accessor(prim["indices"])
        if values.size and int(values.max()) >= vertex_count:
            bad = int(values.max())
            self.add(
                "index_beyond_vertices",
                f"index value {bad} points past the {vertex_count} vertices of POSITION",
                p + "/indices",
            )

    def doc_requires(self, extension: str) -> bool:
        required = self.doc.get("extensionsRequired", [])
        return isinstance(required, list) and extension in required

    def check_materials_textures(self) -> None:
        for i, mat in enumerate(self.arrays["materials"]):
            for parent, key in _MATERIAL_TEXTURES:
                holder = mat.get(parent, {}) if parent else mat
                if not isinstance(holder, dict) or key not in holder:
                    continue
                info = holder[key]
                p = ptr("materials", i, *([parent] if parent else []), key)
                if not isinstance(info, dict):
                    self.add("schema", f"{key} must be an object", p)
                    continue
                if "index" not in info:
                    self.add("schema", f"{key}.index is required", p)
                    continue
                self.ref_ok(info, "index", "textures", p)
        for i, tex in enumerate(self.arrays["textures"]):
            p = ptr("textures", i)
            self.ref_ok(tex, "sampler", "samplers", p)
            if "source" not in tex:
                self.add("texture_no_source", "texture has no image source", p, "warning")
            else:
                self.ref_ok(tex, "source", "images", p)

    def check_images(self) -> None:
        for i, image in enumerate(self.arrays["images"]):
            p = ptr("images", i)
            if "uri" not in image:
                if "bufferView" not in image:
                    self.add("image_invalid", "image has neither uri nor bufferView", p)
                    continue
                if not self.ref_ok(image, "bufferView", "bufferViews", p):
                    continue
                if image["bufferView"] not in self.good_views:
                    continue
                if "mimeType" not in image:
                    self.add("schema", "an image in a bufferView needs a mimeType", p)
            try:
                info = check_image(self.package, i, self.limits)
            except GltfPackageError as exc:
                self.add(exc.code, exc.message, exc.pointer)
                continue
            self.stats.texture_pixels += info.pixels
            declared = image.get("mimeType")
            if declared is not None and declared != info.mime_type:
                self.add(
                    "image_mime_mismatch",
                    f"image says mimeType {declared!r} but its bytes are {info.mime_type}",
                    p + "/mimeType",
                    "warning",
                )

    def check_nodes(self) -> None:
        nodes = self.arrays["nodes"]
        parent: dict[int, int] = {}
        structure_ok = True
        for i, node in enumerate(nodes):
            p = ptr("nodes", i)
            self.ref_ok(node, "mesh", "meshes", p)
            self.ref_ok(node, "camera", "cameras", p)
            self.ref_ok(node, "skin", "skins", p)
            self._check_transform(node, p)
            children = node.get("children", [])
            if not isinstance(children, list):
                self.add("schema", "children must be an array", p + "/children")
                structure_ok = False
                continue
            for c, child in enumerate(children):
                cp = f"{p}/children/{c}"
                if not _is_index(child) or child >= len(nodes):
                    self.add("index_out_of_range", f"child {child!r} is not a node", cp)
                    structure_ok = False
                elif child == i:
                    self.add("node_cycle", f"node {i} is its own child", cp)
                    structure_ok = False
                elif child in parent:
                    self.add(
                        "node_multiple_parents",
                        f"node {child} is a child of both node {parent[child]} and node {i}; "
                        "glTF node hierarchies must be trees",
                        cp,
                    )
                    structure_ok = False
                else:
                    parent[child] = i
        if not structure_ok:
            return
        # Every node has at most one parent now, so a cycle is a chain that never reaches a root.
        state: dict[int, int] = {}  # 1 = on the current chain, 2 = reaches a root
        for start in range(len(nodes)):
            chain = []
            n: int | None = start
            while n is not None and state.get(n) is None:
                state[n] = 1
                chain.append(n)
                n = parent.get(n)
            if n is not None and state[n] == 1:
                self.add(
                    "node_cycle",
                    f"nodes {sorted(chain[chain.index(n) :])} form a cycle through their children",
                    ptr("nodes", n, "children"),
                )
                return
            for c in chain:
                state[c] = 2
        self.forest_ok = True
        self.parent = parent

    def _check_transform(self, node: dict[str, Any], p: str) -> None:
        shapes = {"matrix": 16, "translation": 3, "rotation": 4, "scale": 3}
        for key, n in shapes.items():
            if key in node and not _numbers(node[key], n):
                self.add("schema", f"{key} must be {n} finite numbers", f"{p}/{key}")
        if "matrix" in node and any(k in node for k in ("translation", "rotation", "scale")):
            self.add("schema", "a node has either a matrix or TRS, not both", p + "/matrix")

    def check_scenes(self) -> None:
        scenes = self.arrays["scenes"]
        if "scene" in self.doc:
            self.ref_ok(self.doc, "scene", "scenes", "")
        parent = getattr(self, "parent", {})
        for s, scene in enumerate(scenes):
            roots = scene.get("nodes", [])
            p = ptr("scenes", s, "nodes")
            if not isinstance(roots, list):
                self.add("schema", "scene.nodes must be an array", p)
                continue
            for r, node in enumerate(roots):
                if not _is_index(node) or node >= len(self.arrays["nodes"]):
                    self.add("index_out_of_range", f"scene node {node!r} is not a node", f"{p}/{r}")
                elif node in parent:
                    self.add(
                        "scene_node_not_root",
                        f"node {node} is listed as a scene root but is a child of node "
                        f"{parent[node]}",
                        f"{p}/{r}",
                    )

    # ------------------------------------------------------------------ stats

    def compute_scene_stats(self) -> None:
        from .transforms import local_matrix

        nodes = self.arrays["nodes"]
        scenes = self.arrays["scenes"]
        scene_index = self.doc.get("scene", 0)
        if scenes:
            roots = [r for r in scenes[scene_index].get("nodes", [])]
        else:
            roots = [i for i in range(len(nodes)) if i not in getattr(self, "parent", {})]
        lo = np.full(3, np.inf)
        hi = np.full(3, -np.inf)
        all_instanced = 0
        stack: list[tuple[int, npt.NDArray[np.float64]]] = [(r, np.eye(4)) for r in roots]
        while stack:
            index, parent_world = stack.pop()
            node = nodes[index]
            world = parent_world @ local_matrix(node)
            stack.extend((c, world) for c in node.get("children", []))
            if "mesh" not in node:
                continue
            for prim in self.arrays["meshes"][node["mesh"]]["primitives"]:
                pos_index = prim.get("attributes", {}).get("POSITION")
                if pos_index is None:
                    continue
                n_vertices = self.arrays["accessors"][pos_index]["count"]
                mode = prim.get("mode", 4)
                drawn = (
                    self.arrays["accessors"][prim["indices"]]["count"]
                    if "indices" in prim
                    else n_vertices
                )
                self.stats.vertices += n_vertices
                self.stats.triangles += primitive_triangles(mode, drawn)
                positions = self._accessor(pos_index).astype(np.float64)
                if len(positions) > _EXACT_BOUNDS_MAX_VERTICES:
                    pmin, pmax = positions.min(axis=0), positions.max(axis=0)
                    positions = np.array(
                        [[(pmax if (k >> a) & 1 else pmin)[a] for a in range(3)] for k in range(8)]
                    )
                homogeneous = np.c_[positions, np.ones(len(positions))]
                world_pos = (homogeneous @ world.T)[:, :3]
                lo = np.minimum(lo, world_pos.min(axis=0))
                hi = np.maximum(hi, world_pos.max(axis=0))
        if np.all(np.isfinite(lo)):
            self.stats.bounds_min = [float(v) for v in lo]
            self.stats.bounds_max = [float(v) for v in hi]
        # Nodes outside the default scene may be shown too (other scenes): the limit counts
        # every node's mesh, so a scene cannot hide triangles from it.
        for node in nodes:
            if "mesh" in node:
                all_instanced += self._mesh_triangles(node["mesh"])
        self.stats.unique_triangles = sum(
            self._mesh_triangles(m) for m in range(len(self.arrays["meshes"]))
        )
        triangles = max(self.stats.triangles, all_instanced)
        if triangles > self.limits.max_triangles:
            self.add(
                "too_many_triangles",
                f"the scene draws {triangles} triangles; the limit is {self.limits.max_triangles}."
                " Decimate the meshes or split the scene",
                "/meshes",
            )

    def _mesh_triangles(self, mesh_index: int) -> int:
        total = 0
        for prim in self.arrays["meshes"][mesh_index]["primitives"]:
            attrs = prim.get("attributes", {})
            source = prim.get("indices", attrs.get("POSITION"))
            if source is not None:
                total += primitive_triangles(
                    prim.get("mode", 4), self.arrays["accessors"][source]["count"]
                )
        return total
