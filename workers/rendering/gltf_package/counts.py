"""Object and triangle counts of a document (instanced through the node tree) against
:class:`GltfLimits`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workers.rendering.gltf_package.container import get_int, get_list, get_ref, ptr
from workers.rendering.gltf_package.errors import GltfLimits, GltfPackageError
from workers.rendering.gltf_package.package import GltfPackage


def primitive_triangles(mode: int, vertex_count: int) -> int:
    """Triangles a primitive draws: TRIANGLES n/3, STRIP and FAN n-2, points and lines 0."""
    if mode == 4:
        return vertex_count // 3
    if mode in (5, 6):
        return max(vertex_count - 2, 0)
    return 0


def iter_primitives(document: dict[str, Any]) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(mesh index, primitive index, primitive) for every primitive."""
    for m, mesh in enumerate(get_list(document, "meshes")):
        for p, prim in enumerate(get_list(mesh, "primitives", ptr("meshes", m))):
            yield m, p, prim


def mesh_triangle_counts(document: dict[str, Any]) -> list[int]:
    """Triangles per mesh from accessor counts (metadata only; references must be valid)."""
    accessors = get_list(document, "accessors")
    meshes = get_list(document, "meshes")
    counts = [0] * len(meshes)
    for m, p, prim in iter_primitives(document):
        pointer = ptr("meshes", m, "primitives", p)
        mode = get_int(prim, "mode", pointer, default=4, maximum=6)
        if "indices" in prim:
            acc = accessors[get_ref(prim, "indices", pointer, accessors, "accessor")]
        else:
            attributes = prim.get("attributes")
            if not isinstance(attributes, dict) or "POSITION" not in attributes:
                continue
            acc = accessors[
                get_ref(attributes, "POSITION", pointer + "/attributes", accessors, "accessor")
            ]
        n = acc.get("count", 0)
        counts[m] += primitive_triangles(mode, n if isinstance(n, int) else 0)
    return counts


def instanced_triangles(document: dict[str, Any]) -> int:
    """Triangles rendered: every node with a mesh draws that mesh once (meshes can be reused)."""
    per_mesh = mesh_triangle_counts(document)
    total = 0
    for i, node in enumerate(get_list(document, "nodes")):
        if "mesh" in node:
            total += per_mesh[get_ref(node, "mesh", ptr("nodes", i), per_mesh, "mesh")]
    return max(total, sum(per_mesh))


def check_counts(package: GltfPackage, limits: GltfLimits) -> None:
    """Array counts and the rendered triangle count against ``limits``."""
    doc = package.document
    for key, limit, code in (
        ("nodes", limits.max_nodes, "too_many_nodes"),
        ("meshes", limits.max_meshes, "too_many_meshes"),
        ("accessors", limits.max_accessors, "too_many_accessors"),
        ("materials", limits.max_materials, "too_many_materials"),
        ("textures", limits.max_textures, "too_many_textures"),
    ):
        n = len(get_list(doc, key))
        if n > limit:
            raise GltfPackageError(code, f"{n} {key}, limit {limit}", "/" + key)
    triangles = instanced_triangles(doc)
    if triangles > limits.max_triangles:
        raise GltfPackageError(
            "too_many_triangles",
            f"the scene draws {triangles} triangles, limit {limits.max_triangles}",
            "/meshes",
        )
