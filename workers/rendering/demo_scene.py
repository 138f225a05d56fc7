"""Demo scene generator: a lit room with textured, finely tessellated objects.

``python -m workers.rendering.demo_scene OUT.glb [--triangles N]`` writes a valid GLB of about
N triangles (default 300k): floor and walls with procedural textures (numpy, embedded as PNG),
a ring of pedestals carrying spheres and tori (checker, stripes, noise, a normal-mapped one),
under a node hierarchy that uses TRS and matrix transforms. Used by tests and the benchmark.
"""

from __future__ import annotations

import argparse
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from workers.rendering.gltf_builder import Arrays, GltfBuilder, box, torus, uv_sphere, write_glb
from workers.rendering.transforms import quat_from_axis_angle

U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class SceneSummary:
    path: Path
    triangles: int
    meshes: int
    materials: int
    textures: int
    nodes: int
    bytes: int


def png_bytes(rgb: U8) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def checker(
    size: int = 256,
    cells: int = 8,
    a: tuple[int, ...] = (220, 220, 220),
    b: tuple[int, ...] = (60, 60, 70),
) -> U8:
    y, x = np.mgrid[0:size, 0:size]
    mask = ((x * cells // size) + (y * cells // size)) % 2 == 0
    return np.where(mask[..., None], np.array(a, np.uint8), np.array(b, np.uint8)).astype(np.uint8)


def stripes(
    size: int = 256,
    count: int = 6,
    a: tuple[int, ...] = (230, 180, 40),
    b: tuple[int, ...] = (40, 90, 200),
) -> U8:
    x = np.arange(size)[None, :].repeat(size, 0)
    mask = (x * count * 2 // size) % 2 == 0
    return np.where(mask[..., None], np.array(a, np.uint8), np.array(b, np.uint8)).astype(np.uint8)


def noise(size: int = 256, seed: int = 1, tint: tuple[float, ...] = (0.8, 0.55, 0.35)) -> U8:
    """Smooth value noise (a few bilinearly upsampled octaves), tinted: wood/plaster-like."""
    rng = np.random.default_rng(seed)
    acc = np.zeros((size, size))
    for octave in range(1, 6):
        n = 2**octave
        grid = rng.random((n + 1, n + 1))
        coords = np.linspace(0, n, size, endpoint=False)
        i = coords.astype(int)
        f = coords - i
        rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
        layer = rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]
        acc += layer / octave
    acc = (acc - acc.min()) / (np.ptp(acc) + 1e-9)
    rgb = (0.5 + 0.5 * acc)[..., None] * np.array(tint)[None, None, :]
    return np.clip(rgb * 255, 0, 255).astype(np.uint8)


def bump_normal_map(size: int = 256, bumps: int = 8) -> U8:
    """Tangent-space normal map of a grid of round bumps (+Y up, as glTF expects)."""
    y, x = np.mgrid[0:size, 0:size] / size * bumps * 2 * math.pi
    h = np.sin(x) * np.sin(y)
    dx = np.cos(x) * np.sin(y) * 0.5
    dy = -np.sin(x) * np.cos(y) * 0.5  # image rows go down, tangent-space +Y goes up
    n = np.stack([-dx, -dy, np.ones_like(h)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return ((n * 0.5 + 0.5) * 255).astype(np.uint8)


def _plane(width: float, depth: float, uv_repeat: float) -> Arrays:
    """A +Y facing quad in XZ, centred at the origin."""
    hw, hd = width / 2, depth / 2
    pos = np.array([[-hw, 0, hd], [hw, 0, hd], [hw, 0, -hd], [-hw, 0, -hd]], np.float32)
    nrm = np.tile(np.array([0, 1, 0], np.float32), (4, 1))
    uv = np.array([[0, uv_repeat], [uv_repeat, uv_repeat], [uv_repeat, 0], [0, 0]], np.float32)
    idx = np.array([0, 1, 2, 0, 2, 3], np.uint32)
    return pos, nrm, uv, idx


def build_demo_scene(path: Path, *, target_triangles: int = 300_000) -> SceneSummary:
    b = GltfBuilder(generator="vrplatform demo_scene")
    floor_mat = b.add_material(base_color_texture=png_bytes(checker(256, 8)), roughness_factor=0.8)
    wall_mat = b.add_material(
        base_color_texture=png_bytes(noise(256, seed=3, tint=(0.85, 0.8, 0.7))),
        roughness_factor=0.9,
    )
    pedestal_mat = b.add_material(base_color_factor=(0.5, 0.5, 0.55, 1.0), roughness_factor=0.5)
    object_mats = [
        b.add_material(
            base_color_texture=png_bytes(checker(256, 16, (240, 40, 40), (250, 250, 250))),
            roughness_factor=0.4,
        ),
        b.add_material(base_color_texture=png_bytes(stripes()), roughness_factor=0.3),
        b.add_material(base_color_texture=png_bytes(noise(256, seed=7)), roughness_factor=0.6),
        b.add_material(
            base_color_factor=(0.9, 0.75, 0.3, 1.0), metallic_factor=1.0, roughness_factor=0.25
        ),
        b.add_material(
            base_color_factor=(0.3, 0.7, 0.4, 1.0),
            normal_texture=png_bytes(bump_normal_map()),
            roughness_factor=0.5,
        ),
        b.add_material(base_color_factor=(0.2, 0.4, 0.9, 1.0), roughness_factor=0.15),
    ]

    room = b.add_node(name="room")
    size, height = 12.0, 4.0
    fpos, fnrm, fuv, fidx = _plane(size, size, 6.0)
    floor_mesh = b.add_mesh(
        fpos, normals=fnrm, uvs=fuv, indices=fidx, material=floor_mat, name="floor"
    )
    b.add_node(mesh=floor_mesh, parent=room, name="floor")
    wall_pos, wall_nrm, wall_uv, wall_idx = _plane(size, height, 3.0)
    wall_mesh = b.add_mesh(
        wall_pos, normals=wall_nrm, uvs=wall_uv, indices=wall_idx, material=wall_mat, name="wall"
    )
    walls = b.add_node(name="walls", parent=room)
    for k in range(4):
        # Stand the +Y quad up so it faces the room centre, then turn it to each side.
        yaw = quat_from_axis_angle((0, 1, 0), k * math.pi / 2)
        side = b.add_node(name=f"wall_{k}", parent=walls, rotation=yaw)
        b.add_node(
            mesh=wall_mesh,
            parent=side,
            translation=(0, height / 2, -size / 2),
            rotation=quat_from_axis_angle((1, 0, 0), math.pi / 2),
        )

    # Objects: spheres and tori split the triangle budget evenly.
    count = 12
    per_object = max(target_triangles - 200, 1000) // count
    rings = max(4, round(math.sqrt(per_object / 4)))
    sphere = uv_sphere(0.45, segments=2 * rings, rings=rings + 1)
    sides = max(4, round(math.sqrt(per_object / 4)))
    tor = torus(0.4, 0.15, segments=2 * sides, sides=sides)
    sphere_meshes = [
        b.add_mesh(
            sphere[0],
            normals=sphere[1],
            uvs=sphere[2],
            indices=sphere[3],
            material=m,
            name=f"sphere_{i}",
        )
        for i, m in enumerate(object_mats)
    ]
    torus_meshes = [
        b.add_mesh(
            tor[0], normals=tor[1], uvs=tor[2], indices=tor[3], material=m, name=f"torus_{i}"
        )
        for i, m in enumerate(object_mats)
    ]
    ped = box((0.6, 0.8, 0.6))
    pedestal_mesh = b.add_mesh(
        ped[0], normals=ped[1], uvs=ped[2], indices=ped[3], material=pedestal_mat, name="pedestal"
    )
    objects = b.add_node(name="objects", parent=room)
    for i in range(count):
        angle = 2 * math.pi * i / count
        radius = 3.2 if i % 2 == 0 else 4.4
        x, z = radius * math.sin(angle), -radius * math.cos(angle)
        # Matrix form on purpose: the loader must handle both matrix and TRS nodes.
        m = np.eye(4)
        m[:3, 3] = (x, 0.4, z)
        stand = b.add_node(name=f"stand_{i}", parent=objects, matrix=m, mesh=pedestal_mesh)
        mesh = sphere_meshes[i // 2] if i % 2 == 0 else torus_meshes[i // 2]
        b.add_node(
            mesh=mesh,
            parent=stand,
            translation=(0, 0.85, 0),
            rotation=quat_from_axis_angle((1, 0, 0.3), 0.5 * i),
        )
    doc, bin_chunk = b.to_document_and_bin()
    # Where viewers start (workers/rendering/spawn.py honours a scene's first camera): inside
    # the room at eye height, looking down -Z at the ring, not outside it framing the walls.
    doc["cameras"] = [{"type": "perspective", "perspective": {"yfov": 1.2, "znear": 0.05}}]
    doc["nodes"].append({"name": "start", "camera": 0, "translation": [0.0, 1.6, 3.0]})
    doc["scenes"][0]["nodes"].append(len(doc["nodes"]) - 1)
    write_glb(doc, bin_chunk, path)
    triangles = 0
    mesh_tris = {}
    for mi, mesh_json in enumerate(doc["meshes"]):
        mesh_tris[mi] = sum(
            doc["accessors"][p["indices"]]["count"] // 3 for p in mesh_json["primitives"]
        )
    for node in doc["nodes"]:
        if "mesh" in node:
            triangles += mesh_tris[node["mesh"]]
    return SceneSummary(
        path=path,
        triangles=triangles,
        meshes=len(doc["meshes"]),
        materials=len(doc["materials"]),
        textures=len(doc.get("textures", [])),
        nodes=len(doc["nodes"]),
        bytes=path.stat().st_size,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--triangles", type=int, default=300_000)
    args = parser.parse_args(argv)
    summary = build_demo_scene(args.out, target_triangles=args.triangles)
    print(summary)  # CLI output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
