"""A generated glTF test corpus: valid scenes with known stats and hostile packages with the
rejection they must get. Everything is written into a directory the caller owns (no binaries
in git). Each case writes ``<root>/<name>/pkg/...`` and returns the package path; anything
outside ``pkg/`` (e.g. ``<root>/<name>/secret``) is bait that must never be opened.
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from workers.rendering.gltf_builder import GltfBuilder, box, glb_bytes
from workers.rendering.gltf_package import GltfLimits

Maker = Callable[[Path], Path]


@dataclass(frozen=True)
class ValidCase:
    name: str
    make: Maker
    vertices: int
    triangles: int
    nodes: int
    meshes: int
    materials: int = 0
    textures: int = 0
    texture_pixels: int = 0
    bounds_min: tuple[float, float, float] = (-0.5, -0.5, -0.5)
    bounds_max: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class HostileCase:
    name: str
    make: Maker
    code: str
    pointer: str
    limits: GltfLimits = field(default_factory=GltfLimits)


# --------------------------------------------------------------------------- helpers


def png_bytes(width: int = 8, height: int = 4) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def lying_png(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` but holds one pixel row of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def other_image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 0, 255)).save(out, fmt)
    return out.getvalue()


def pkg_dir(root: Path) -> Path:
    d = root / "pkg"
    d.mkdir(parents=True, exist_ok=True)
    (root / "secret").write_bytes(b"TOP SECRET " * 8)  # bait outside the package
    return d


def box_builder(
    *, texture: bytes | None = None, indices: Any = "box", translation: Any = None
) -> GltfBuilder:
    pos, nrm, uv, idx = box()
    b = GltfBuilder()
    material = b.add_material(base_color_texture=texture) if texture is not None else None
    mesh = b.add_mesh(
        pos,
        normals=nrm,
        uvs=uv,
        indices=idx if isinstance(indices, str) else indices,
        material=material,
    )
    b.add_node(mesh=mesh, translation=translation)
    return b


def write_glb(root: Path, document: dict[str, Any], bin_chunk: bytes | None) -> Path:
    path = pkg_dir(root) / "scene.glb"
    path.write_bytes(glb_bytes(document, bin_chunk))
    return path


def mutated_glb(mutate: Callable[[dict[str, Any]], None], **kw: Any) -> Maker:
    def make(root: Path) -> Path:
        doc, bin_chunk = box_builder(**kw).to_document_and_bin()
        mutate(doc)
        return write_glb(root, doc, bin_chunk)

    return make


def gltf_with_buffer_uri(uri: str) -> Maker:
    def make(root: Path) -> Path:
        doc, _ = box_builder().to_document_and_bin()
        doc["buffers"][0]["uri"] = uri
        path = pkg_dir(root) / "scene.gltf"
        path.write_text(json.dumps(doc))
        return path

    return make


def glb_with_json(json_chunk: bytes) -> bytes:
    """A GLB whose JSON chunk is exactly ``json_chunk`` (length a multiple of 4)."""
    assert len(json_chunk) % 4 == 0
    body = struct.pack("<II", len(json_chunk), 0x4E4F534A) + json_chunk
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body


def raw_glb(transform: Callable[[bytes], bytes]) -> Maker:
    def make(root: Path) -> Path:
        doc, bin_chunk = box_builder().to_document_and_bin()
        path = pkg_dir(root) / "scene.glb"
        path.write_bytes(transform(glb_bytes(doc, bin_chunk)))
        return path

    return make


def folder_scene(root: Path, *, texture: bool = True) -> Path:
    b = box_builder(texture=png_bytes() if texture else None)
    path = pkg_dir(root) / "scene.gltf"
    b.write_gltf(path)
    return path


def zip_of(root: Path, files: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> Path:
    path = pkg_dir(root) / "upload.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # unix, so external_attr carries the mode
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def scene_files() -> dict[str, bytes]:
    """The files of a textured .gltf scene, for putting in zips."""
    doc, bin_data = box_builder(texture=png_bytes()).to_document_and_bin()
    # Move the image out of the buffer into its own file, as exporters do.
    doc["images"][0] = {"uri": "textures/albedo.png", "mimeType": "image/png"}
    doc["buffers"][0]["uri"] = "scene.bin"
    return {
        "scene/scene.gltf": json.dumps(doc).encode(),
        "scene/scene.bin": bin_data,
        "scene/textures/albedo.png": png_bytes(),
    }


# --------------------------------------------------------------------------- valid scenes


def make_single_mesh(root: Path) -> Path:
    return write_glb(root, *box_builder().to_document_and_bin())


def make_hierarchy(root: Path) -> Path:
    pos, nrm, _, idx = box()
    pos2, nrm2, _, idx2 = box((2.0, 1.0, 1.0))
    b = GltfBuilder()
    cube = b.add_mesh(pos, normals=nrm, indices=idx)
    slab = b.add_mesh(pos2, normals=nrm2, indices=idx2)
    top = b.add_node(translation=(10, 0, 0), scale=(2, 2, 2), name="scaled parent")
    b.add_node(mesh=cube, parent=top, translation=(0, 1, 0))  # world box [9,1,-1]..[11,3,1]
    matrix = np.eye(4)
    matrix[:3, 3] = (0, 0, -5)
    b.add_node(mesh=cube, matrix=matrix)  # [-.5,-.5,-5.5]..[.5,.5,-4.5]
    s = float(np.sqrt(0.5))  # 90 degrees about z: the 2x1x1 slab becomes 1x2x1
    b.add_node(mesh=slab, rotation=(0, 0, s, s), translation=(0, 0, 5))
    path = pkg_dir(root) / "scene.glb"
    b.write_glb(path)
    return path


def make_textured_glb(root: Path) -> Path:
    return write_glb(root, *box_builder(texture=png_bytes()).to_document_and_bin())


def make_folder_gltf(root: Path) -> Path:
    return folder_scene(root)


def make_zipped_gltf(root: Path) -> Path:
    return zip_of(root, scene_files())


def make_data_uri_gltf(root: Path) -> Path:
    path = pkg_dir(root) / "scene.gltf"
    box_builder(texture=png_bytes()).write_gltf(path, embed=True)
    return path


def make_non_indexed(root: Path) -> Path:
    pos, nrm, _, idx = box()
    b = GltfBuilder()
    b.add_node(mesh=b.add_mesh(pos[idx], normals=nrm[idx]))
    return write_glb(root, *b.to_document_and_bin())


INTERLEAVED_STRIDE = 28  # position f32x3, normal f32x3, uv u16x2 normalized


def interleaved_document() -> tuple[dict[str, Any], bytes]:
    """A quad in one interleaved bufferView (byteStride 28) with u8 indices."""
    positions = np.array([[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0]], "<f4")
    normals = np.tile(np.array([0, 0, 1], "<f4"), (4, 1))
    uvs = np.array([[0, 0], [65535, 0], [65535, 65535], [0, 65535]], "<u2")
    vertex = b"".join(
        positions[i].tobytes() + normals[i].tobytes() + uvs[i].tobytes() for i in range(4)
    )
    indices = np.array([0, 1, 2, 0, 2, 3], "<u1").tobytes() + b"\x00\x00"  # pad to 4
    bin_data = vertex + indices
    doc = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [
            {"primitives": [{"attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2},
                             "indices": 3}]}
        ],
        "accessors": [
            {"bufferView": 0, "byteOffset": 0, "componentType": 5126, "count": 4, "type": "VEC3",
             "min": [-0.5, -0.5, 0], "max": [0.5, 0.5, 0]},
            {"bufferView": 0, "byteOffset": 12, "componentType": 5126, "count": 4, "type": "VEC3"},
            {"bufferView": 0, "byteOffset": 24, "componentType": 5123, "count": 4, "type": "VEC2",
             "normalized": True},
            {"bufferView": 1, "componentType": 5121, "count": 6, "type": "SCALAR"},
        ],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": len(vertex),
             "byteStride": INTERLEAVED_STRIDE},
            {"buffer": 0, "byteOffset": len(vertex), "byteLength": 6},
        ],
        "buffers": [{"byteLength": len(bin_data)}],
    }  # fmt: skip
    return doc, bin_data


def make_interleaved(root: Path) -> Path:
    return write_glb(root, *interleaved_document())


VALID_CASES = [
    ValidCase("single_mesh_glb", make_single_mesh, vertices=24, triangles=12, nodes=1, meshes=1),
    ValidCase(
        "hierarchy_trs_matrix",
        make_hierarchy,
        vertices=72,
        triangles=36,
        nodes=4,
        meshes=2,
        bounds_min=(-0.5, -1.0, -5.5),
        bounds_max=(11.0, 3.0, 5.5),
    ),
    ValidCase(
        "textured_glb", make_textured_glb, 24, 12, 1, 1, materials=1, textures=1, texture_pixels=32
    ),
    ValidCase(
        "folder_gltf", make_folder_gltf, 24, 12, 1, 1, materials=1, textures=1, texture_pixels=32
    ),
    ValidCase(
        "zipped_gltf", make_zipped_gltf, 24, 12, 1, 1, materials=1, textures=1, texture_pixels=32
    ),
    ValidCase(
        "data_uri_gltf",
        make_data_uri_gltf,
        24,
        12,
        1,
        1,
        materials=1,
        textures=1,
        texture_pixels=32,
    ),
    ValidCase("non_indexed", make_non_indexed, vertices=36, triangles=12, nodes=1, meshes=1),
    ValidCase(
        "interleaved_strided",
        make_interleaved,
        vertices=4,
        triangles=2,
        nodes=1,
        meshes=1,
        bounds_min=(-0.5, -0.5, 0.0),
        bounds_max=(0.5, 0.5, 0.0),
    ),
]


# --------------------------------------------------------------------------- hostile packages


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation setting a JSON pointer-ish path ('a/0/b') to value."""

    def mutate(doc: dict[str, Any]) -> None:
        parts: list[Any] = [int(p) if p.isdigit() else p for p in path.split("/")]
        target: Any = doc
        for p in parts[:-1]:
            target = target[p]
        target[parts[-1]] = value(target[parts[-1]]) if callable(value) else value

    return mutate


def _cycle(doc: dict[str, Any]) -> None:
    doc["nodes"] += [{"children": [2]}, {"children": [1]}]


def _chunk_past_end(glb: bytes) -> bytes:
    return glb[:12] + struct.pack("<I", len(glb) * 4) + glb[16:]


def make_image_glb(image: bytes, mime: str) -> Maker:
    def make(root: Path) -> Path:
        b = box_builder(texture=b"placeholder")
        doc, bin_chunk = b.to_document_and_bin()
        # Replace the placeholder image bytes: append the hostile image as a new bufferView.
        offset = len(bin_chunk)
        bin_chunk += image + b"\x00" * (-len(image) % 4)
        doc["bufferViews"].append({"buffer": 0, "byteOffset": offset, "byteLength": len(image)})
        doc["images"][0] = {"bufferView": len(doc["bufferViews"]) - 1, "mimeType": mime}
        doc["buffers"][0]["byteLength"] = len(bin_chunk)
        return write_glb(root, doc, bin_chunk)

    return make


def make_symlink_file(root: Path) -> Path:
    path = folder_scene(root, texture=False)
    (path.parent / "scene.bin").unlink()
    os.symlink("/etc/passwd", path.parent / "scene.bin")
    return path


def make_symlink_dir(root: Path) -> Path:
    path = folder_scene(root, texture=False)
    (root / "scene.bin").write_bytes((path.parent / "scene.bin").read_bytes())  # bait
    os.symlink(root, path.parent / "up")
    doc = json.loads(path.read_text())
    doc["buffers"][0]["uri"] = "up/scene.bin"
    path.write_text(json.dumps(doc))
    return path


def make_symlink_main(root: Path) -> Path:
    real = folder_scene(root, texture=False)
    link = real.parent / "link.gltf"
    os.symlink(real, link)
    return link


def make_zip_symlink(root: Path) -> Path:
    files = scene_files()
    del files["scene/textures/albedo.png"]
    return zip_of(root, files, symlinks={"scene/textures/albedo.png": "/etc/passwd"})


def make_zip_bomb(root: Path) -> Path:
    files = scene_files()
    files["scene/padding.bin"] = bytes(32 * 1024 * 1024)  # deflates ~1000x
    return zip_of(root, files)


def make_zip_many(root: Path) -> Path:
    files = scene_files()
    files.update({f"scene/extra{i}.txt": b"x" for i in range(10)})
    return zip_of(root, files)


def make_zip_evil_name(root: Path) -> Path:
    files = scene_files()
    files["../evil"] = b"owned"
    return zip_of(root, files)


def make_zip_lying_size(root: Path) -> Path:
    """Both zip headers claim the texture is 100 bytes; it inflates to over 4 MiB."""
    files = scene_files()
    name = "scene/textures/albedo.png"
    files[name] += bytes(4 * 1024 * 1024)  # PNG decoders ignore trailing bytes
    path = zip_of(root, files)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    real, fake = struct.pack("<I", info.file_size), struct.pack("<I", 100)
    local = info.header_offset
    # Uncompressed size: local file header +22, central directory entry +24.
    assert data[local + 22 : local + 26] == real
    data[local + 22 : local + 26] = fake
    central = data.rfind(name.encode()) - 46
    assert data[central : central + 4] == b"PK\x01\x02"
    assert data[central + 24 : central + 28] == real
    data[central + 24 : central + 28] = fake
    path.write_bytes(bytes(data))
    return path


def make_zip_two_scenes(root: Path) -> Path:
    files = scene_files()
    files["scene/other.gltf"] = files["scene/scene.gltf"]
    return zip_of(root, files)


def make_missing_resource(root: Path) -> Path:
    path = folder_scene(root)
    (path.parent / "scene.bin").unlink()
    return path


DUPLICATE_KEYS = b'{"asset":{"version":"2.0"},"asset":{}}  '
NOT_UTF8 = b'{"asset":{"version":"2.0\xff"}}    '
HOSTILE_CASES = [
    HostileCase(
        "gltf_1_0", mutated_glb(_set("asset/version", "1.0")), "asset_version", "/asset/version"
    ),
    HostileCase("truncated_glb", raw_glb(lambda g: g[: len(g) // 2]), "glb_truncated", ""),
    HostileCase("bad_magic", raw_glb(lambda g: b"glTX" + g[4:]), "glb_magic", ""),
    HostileCase("glb_version_1", raw_glb(lambda g: g[:4] + b"\x01" + g[5:]), "glb_version", ""),
    HostileCase("chunk_past_end", raw_glb(_chunk_past_end), "glb_chunk", ""),
    HostileCase(
        "json_not_object", raw_glb(lambda g: glb_with_json(b"[1] ")), "json_not_object", ""
    ),
    HostileCase(
        "json_duplicate_keys", raw_glb(lambda g: glb_with_json(DUPLICATE_KEYS)), "json_invalid", ""
    ),
    HostileCase("json_not_utf8", raw_glb(lambda g: glb_with_json(NOT_UTF8)), "json_invalid", ""),
    HostileCase(
        "json_too_deep",
        raw_glb(lambda g: glb_with_json(b"[" * 200 + b"]" * 200)),
        "json_too_deep",
        "",
    ),
    HostileCase(
        "buffer_view_out_of_bounds",
        mutated_glb(_set("bufferViews/0/byteLength", lambda n: n + 4096)),
        "buffer_view_out_of_bounds",
        "/bufferViews/0",
    ),
    HostileCase(
        "accessor_out_of_bounds",
        mutated_glb(_set("accessors/0/count", lambda n: n + 100)),
        "accessor_out_of_bounds",
        "/accessors/0",
    ),
    HostileCase(
        "index_beyond_vertex_count",
        mutated_glb(lambda d: None, indices=np.array([0, 1, 2, 0, 2, 500], np.uint32)),
        "index_beyond_vertices",
        "/meshes/0/primitives/0/indices",
    ),
    HostileCase(
        "too_many_triangles",
        make_single_mesh,
        "too_many_triangles",
        "/meshes",
        GltfLimits(max_triangles=11),
    ),
    HostileCase(
        "too_many_nodes",
        mutated_glb(lambda d: d["nodes"].extend({} for _ in range(4))),
        "too_many_nodes",
        "/nodes",
        GltfLimits(max_nodes=4),
    ),
    HostileCase("node_cycle", mutated_glb(_cycle), "node_cycle", "/nodes/1/children"),
    HostileCase(
        "node_two_parents",
        mutated_glb(lambda d: d["nodes"].extend([{"children": [2]}, {}, {"children": [2]}])),
        "node_multiple_parents",
        "/nodes/3/children/0",
    ),
    HostileCase(
        "scene_root_has_parent",
        mutated_glb(lambda d: d["nodes"].extend([{"children": [0]}])),
        "scene_node_not_root",
        "/scenes/0/nodes/0",
    ),
    HostileCase(
        "mesh_index_out_of_range",
        mutated_glb(_set("nodes/0/mesh", 7)),
        "index_out_of_range",
        "/nodes/0/mesh",
    ),
    HostileCase(
        "draco_required",
        mutated_glb(_set("extensionsRequired", ["KHR_draco_mesh_compression"])),
        "extension_unsupported",
        "/extensionsRequired/0",
    ),
    HostileCase(
        "uri_etc_passwd", gltf_with_buffer_uri("/etc/passwd"), "uri_absolute", "/buffers/0/uri"
    ),
    HostileCase("uri_dotdot", gltf_with_buffer_uri("../secret"), "uri_traversal", "/buffers/0/uri"),
    HostileCase(
        "uri_http", gltf_with_buffer_uri("http://example.com/x.bin"), "uri_scheme", "/buffers/0/uri"
    ),
    HostileCase(
        "uri_file", gltf_with_buffer_uri("file:///etc/passwd"), "uri_scheme", "/buffers/0/uri"
    ),
    HostileCase("uri_drive", gltf_with_buffer_uri("C:\\x"), "uri_drive", "/buffers/0/uri"),
    HostileCase(
        "uri_backslash", gltf_with_buffer_uri("..\\secret"), "uri_backslash", "/buffers/0/uri"
    ),
    HostileCase(
        "uri_percent_dotdot",
        gltf_with_buffer_uri("%2e%2e/secret"),
        "uri_traversal",
        "/buffers/0/uri",
    ),
    HostileCase(
        "uri_percent_slash",
        gltf_with_buffer_uri("%2Fetc%2Fpasswd"),
        "uri_absolute",
        "/buffers/0/uri",
    ),
    HostileCase(
        "uri_protocol_relative",
        gltf_with_buffer_uri("//example.com/x.bin"),
        "uri_absolute",
        "/buffers/0/uri",
    ),
    HostileCase(
        "data_uri_not_base64",
        gltf_with_buffer_uri("data:application/octet-stream,abc"),
        "data_uri_invalid",
        "/buffers/0/uri",
    ),
    HostileCase("resource_missing", make_missing_resource, "resource_missing", "/buffers/0/uri"),
    HostileCase("symlink_file_in_folder", make_symlink_file, "symlink", "/buffers/0/uri"),
    HostileCase("symlink_dir_in_folder", make_symlink_dir, "symlink", "/buffers/0/uri"),
    HostileCase("symlink_main_file", make_symlink_main, "symlink", ""),
    HostileCase("symlink_in_zip", make_zip_symlink, "zip_symlink", ""),
    HostileCase(
        "png_100k_squared",
        make_image_glb(lying_png(100_000, 100_000), "image/png"),
        "image_too_large",
        "/images/0",
    ),
    HostileCase(
        "gif_image", make_image_glb(other_image("GIF"), "image/gif"), "image_format", "/images/0"
    ),
    HostileCase(
        "bmp_image", make_image_glb(other_image("BMP"), "image/bmp"), "image_format", "/images/0"
    ),
    HostileCase("zip_bomb", make_zip_bomb, "zip_bomb", ""),
    HostileCase("zip_lying_size", make_zip_lying_size, "zip_invalid", "/images/0/uri"),
    HostileCase(
        "zip_too_many_files", make_zip_many, "zip_too_many_files", "", GltfLimits(max_zip_files=8)
    ),
    HostileCase("zip_entry_dotdot", make_zip_evil_name, "zip_entry_name", ""),
    HostileCase("zip_two_scenes", make_zip_two_scenes, "zip_multiple_scenes", ""),
]


# Where the official Khronos glTF-Validator (which runs first in processing) rejects a hostile
# case for its own reason, its code and pointer; every other case is stopped by our container
# checks before the validator sees it, or passes it and is refused by our document checks.
KHRONOS_REASONS: dict[str, tuple[str, str]] = {
    "buffer_view_out_of_bounds": ("BUFFER_VIEW_TOO_LONG", "/bufferViews/0/byteLength"),
    "accessor_out_of_bounds": ("ACCESSOR_TOO_LONG", "/accessors/0"),
    "index_beyond_vertex_count": ("ACCESSOR_INDEX_OOB", "/meshes/0/primitives/0/indices"),
    "node_cycle": ("NODE_LOOP", "/nodes/1"),
    "node_two_parents": ("NODE_PARENT_OVERRIDE", "/nodes/3/children/0"),
    "scene_root_has_parent": ("SCENE_NON_ROOT_NODE", "/scenes/0/nodes/0"),
    "mesh_index_out_of_range": ("UNRESOLVED_REFERENCE", "/nodes/0/mesh"),
    "draco_required": ("UNSATISFIED_DEPENDENCY", "/extensionsRequired"),
    "gif_image": ("TEXTURE_INVALID_IMAGE_MIME_TYPE", "/textures/0/source"),
    "bmp_image": ("TEXTURE_INVALID_IMAGE_MIME_TYPE", "/textures/0/source"),
}


def processing_reason(case: HostileCase) -> tuple[str, str]:
    """The (code, pointer) a hostile case is rejected with when the official validator gates."""
    return KHRONOS_REASONS.get(case.name, (case.code, case.pointer))
