"""A small glTF 2.0 writer: accumulate meshes, materials, textures and nodes, write .glb/.gltf.

Used by the demo scene generator, the renderer tests and the validation test corpus (which
mutates the JSON before writing, hence :meth:`GltfBuilder.to_document_and_bin` and the free
function :func:`write_glb`).

Example::

    b = GltfBuilder()
    mat = b.add_material(base_color_factor=(1, 0, 0, 1))
    mesh = b.add_mesh(positions, normals=normals, uvs=uvs, indices=indices, material=mat)
    root = b.add_node(name="root")
    b.add_node(mesh=mesh, parent=root, translation=(0, 0, -3))
    b.write_glb(Path("out.glb"))            # binary
    b.write_gltf(Path("dir/scene.gltf"))    # JSON + scene.bin + image files beside it
    b.write_gltf(Path("x.gltf"), embed=True)  # JSON with data: URIs

All vertex data is stored as float32, indices as uint16 when they fit, else uint32.
Every bufferView starts 4-byte aligned (glTF requires component alignment).
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

GLB_MAGIC = 0x46546C67  # "glTF"
CHUNK_JSON = 0x4E4F534A  # "JSON"
CHUNK_BIN = 0x004E4942  # "BIN\0"

# glTF enums used here.
FLOAT = 5126
UNSIGNED_SHORT = 5123
UNSIGNED_INT = 5125
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
REPEAT = 10497
CLAMP_TO_EDGE = 33071
MIRRORED_REPEAT = 33648
NEAREST = 9728
LINEAR = 9729
LINEAR_MIPMAP_LINEAR = 9987

_TYPE_BY_NCOMP = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}


def _pad4(data: bytes | bytearray, fill: bytes = b"\x00") -> bytes:
    rem = (-len(data)) % 4
    return bytes(data) + fill * rem


@dataclass
class _Node:
    name: str | None
    mesh: int | None
    translation: tuple[float, float, float] | None
    rotation: tuple[float, float, float, float] | None
    scale: tuple[float, float, float] | None
    matrix: tuple[float, ...] | None
    children: list[int] = field(default_factory=list)
    parent: int | None = None


class GltfBuilder:
    """Accumulates glTF content in memory; see the module docstring."""

    def __init__(self, *, generator: str = "vrplatform gltf_builder") -> None:
        self._generator = generator
        self._bin = bytearray()
        self._buffer_views: list[dict[str, Any]] = []
        self._accessors: list[dict[str, Any]] = []
        self._meshes: list[dict[str, Any]] = []
        self._materials: list[dict[str, Any]] = []
        self._textures: list[dict[str, Any]] = []
        self._samplers: list[dict[str, Any]] = []
        self._images: list[dict[str, Any]] = []
        self._image_data: list[tuple[bytes, str]] = []  # (encoded bytes, mime type)
        self._nodes: list[_Node] = []

    # -- low level -------------------------------------------------------------------------
    def add_buffer_view(
        self, data: bytes, *, target: int | None = None, byte_stride: int | None = None
    ) -> int:
        """Append raw bytes to the BIN buffer (4-byte aligned) and return the bufferView index."""
        offset = len(self._bin)
        self._bin += _pad4(data)
        view: dict[str, Any] = {"buffer": 0, "byteOffset": offset, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        if byte_stride is not None:
            view["byteStride"] = byte_stride
        self._buffer_views.append(view)
        return len(self._buffer_views) - 1

    def add_accessor(
        self,
        array: npt.ArrayLike,
        *,
        target: int | None = ARRAY_BUFFER,
        with_bounds: bool = True,
        component_type: int | None = None,
    ) -> int:
        """Add a float32 (or index) accessor for a (count, ncomp) or (count,) array."""
        arr = np.asarray(array)
        if component_type is None:
            component_type = FLOAT
        dtype = {FLOAT: np.float32, UNSIGNED_SHORT: np.uint16, UNSIGNED_INT: np.uint32}[
            component_type
        ]
        arr = np.ascontiguousarray(arr, dtype=dtype)
        ncomp = 1 if arr.ndim == 1 else int(arr.shape[1])
        if ncomp not in _TYPE_BY_NCOMP:
            raise ValueError(f"unsupported component count {ncomp}")
        view = self.add_buffer_view(arr.tobytes(), target=target)
        acc: dict[str, Any] = {
            "bufferView": view,
            "byteOffset": 0,
            "componentType": component_type,
            "count": int(arr.shape[0]),
            "type": _TYPE_BY_NCOMP[ncomp],
        }
        if with_bounds and arr.shape[0] > 0:
            flat = arr.reshape(arr.shape[0], ncomp)
            acc["min"] = [_num(v) for v in flat.min(axis=0)]
            acc["max"] = [_num(v) for v in flat.max(axis=0)]
        self._accessors.append(acc)
        return len(self._accessors) - 1

    # -- content -----------------------------------------------------------------------------
    def add_sampler(
        self,
        *,
        wrap_s: int = REPEAT,
        wrap_t: int = REPEAT,
        mag_filter: int | None = LINEAR,
        min_filter: int | None = LINEAR_MIPMAP_LINEAR,
    ) -> int:
        sampler: dict[str, Any] = {"wrapS": wrap_s, "wrapT": wrap_t}
        if mag_filter is not None:
            sampler["magFilter"] = mag_filter
        if min_filter is not None:
            sampler["minFilter"] = min_filter
        self._samplers.append(sampler)
        return len(self._samplers) - 1

    def add_image(self, data: bytes, *, mime_type: str = "image/png") -> int:
        """Add an encoded image; stored in the BIN chunk (glb) or as a file / data URI."""
        self._image_data.append((bytes(data), mime_type))
        self._images.append({})  # filled at write time, depends on the output flavour
        return len(self._images) - 1

    def add_texture(
        self, png_bytes: bytes, *, sampler: int | None = None, mime_type: str = "image/png"
    ) -> int:
        image = self.add_image(png_bytes, mime_type=mime_type)
        tex: dict[str, Any] = {"source": image}
        if sampler is not None:
            tex["sampler"] = sampler
        self._textures.append(tex)
        return len(self._textures) - 1

    def add_material(
        self,
        *,
        base_color_factor: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
        base_color_texture: bytes | int | None = None,
        metallic_factor: float = 0.0,
        roughness_factor: float = 1.0,
        normal_texture: bytes | int | None = None,
        emissive_factor: Sequence[float] | None = None,
        double_sided: bool = False,
        alpha_mode: str | None = None,
        name: str | None = None,
    ) -> int:
        """Add a metallic-roughness material.

        Textures may be given as PNG bytes (a texture with a default REPEAT/LINEAR sampler is
        created) or as an index returned by :meth:`add_texture`.
        """
        pbr: dict[str, Any] = {
            "baseColorFactor": [float(c) for c in base_color_factor],
            "metallicFactor": float(metallic_factor),
            "roughnessFactor": float(roughness_factor),
        }
        mat: dict[str, Any] = {"pbrMetallicRoughness": pbr}
        if base_color_texture is not None:
            pbr["baseColorTexture"] = {"index": self._texture_index(base_color_texture)}
        if normal_texture is not None:
            mat["normalTexture"] = {"index": self._texture_index(normal_texture)}
        if emissive_factor is not None:
            mat["emissiveFactor"] = [float(c) for c in emissive_factor]
        if double_sided:
            mat["doubleSided"] = True
        if alpha_mode is not None:
            mat["alphaMode"] = alpha_mode
        if name is not None:
            mat["name"] = name
        self._materials.append(mat)
        return len(self._materials) - 1

    def _texture_index(self, tex: bytes | int) -> int:
        if isinstance(tex, int):
            return tex
        if not self._samplers:
            self.add_sampler()
        return self.add_texture(tex, sampler=0)

    def add_mesh(
        self,
        positions: npt.ArrayLike,
        *,
        normals: npt.ArrayLike | None = None,
        uvs: npt.ArrayLike | None = None,
        tangents: npt.ArrayLike | None = None,
        indices: npt.ArrayLike | None = None,
        material: int | None = None,
        name: str | None = None,
    ) -> int:
        """Add a one-primitive triangle mesh; returns the mesh index (see add_primitive)."""
        self._meshes.append({"primitives": []})
        mesh = len(self._meshes) - 1
        if name is not None:
            self._meshes[mesh]["name"] = name
        self.add_primitive(
            mesh,
            positions,
            normals=normals,
            uvs=uvs,
            tangents=tangents,
            indices=indices,
            material=material,
        )
        return mesh

    def add_primitive(
        self,
        mesh: int,
        positions: npt.ArrayLike,
        *,
        normals: npt.ArrayLike | None = None,
        uvs: npt.ArrayLike | None = None,
        tangents: npt.ArrayLike | None = None,
        indices: npt.ArrayLike | None = None,
        material: int | None = None,
        mode: int = 4,
    ) -> int:
        """Append a primitive to an existing mesh; returns its index within the mesh."""
        pos = np.asarray(positions, dtype=np.float32).reshape(-1, 3)
        attrs: dict[str, int] = {"POSITION": self.add_accessor(pos)}
        if normals is not None:
            attrs["NORMAL"] = self.add_accessor(np.asarray(normals, np.float32).reshape(-1, 3))
        if uvs is not None:
            attrs["TEXCOORD_0"] = self.add_accessor(np.asarray(uvs, np.float32).reshape(-1, 2))
        if tangents is not None:
            attrs["TANGENT"] = self.add_accessor(np.asarray(tangents, np.float32).reshape(-1, 4))
        prim: dict[str, Any] = {"attributes": attrs, "mode": mode}
        if indices is not None:
            idx = np.asarray(indices).reshape(-1)
            ctype = UNSIGNED_SHORT if pos.shape[0] <= 0xFFFF else UNSIGNED_INT
            prim["indices"] = self.add_accessor(
                idx, target=ELEMENT_ARRAY_BUFFER, component_type=ctype, with_bounds=False
            )
        if material is not None:
            prim["material"] = material
        self._meshes[mesh]["primitives"].append(prim)
        return len(self._meshes[mesh]["primitives"]) - 1

    def add_node(
        self,
        *,
        mesh: int | None = None,
        parent: int | None = None,
        translation: Sequence[float] | None = None,
        rotation: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        matrix: Sequence[float] | npt.NDArray[np.floating[Any]] | None = None,
        name: str | None = None,
    ) -> int:
        """Add a node. ``rotation`` is a quaternion [x, y, z, w]; ``matrix`` is column-major
        (16 floats, as glTF stores it) or a 4x4 numpy array in row-major math convention."""
        mat: tuple[float, ...] | None = None
        if matrix is not None:
            m = np.asarray(matrix, dtype=np.float64)
            # A 4x4 array is taken in math convention (M @ v); glTF wants column-major.
            flat = m.T.reshape(-1) if m.shape == (4, 4) else m.reshape(-1)
            if flat.shape[0] != 16:
                raise ValueError("matrix must have 16 elements")
            mat = tuple(float(v) for v in flat)
        node = _Node(
            name=name,
            mesh=mesh,
            translation=_tuple3(translation),
            rotation=None if rotation is None else tuple(float(v) for v in rotation),  # type: ignore[arg-type]
            scale=_tuple3(scale),
            matrix=mat,
        )
        self._nodes.append(node)
        index = len(self._nodes) - 1
        if parent is not None:
            node.parent = parent
            self._nodes[parent].children.append(index)
        return index

    # -- output ------------------------------------------------------------------------------
    def to_document_and_bin(self) -> tuple[dict[str, Any], bytes]:
        """The glTF JSON (as for a .glb: images in bufferViews) and the BIN chunk bytes."""
        return self._build(images="bufferview")

    def _build(
        self, *, images: str, image_uris: list[str] | None = None
    ) -> tuple[dict[str, Any], bytes]:
        bin_data = bytearray(self._bin)
        buffer_views = [dict(v) for v in self._buffer_views]
        image_entries: list[dict[str, Any]] = []
        for i, (data, mime) in enumerate(self._image_data):
            if images == "bufferview":
                offset = len(bin_data)
                bin_data += _pad4(data)
                buffer_views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data)})
                image_entries.append({"bufferView": len(buffer_views) - 1, "mimeType": mime})
            elif images == "data":
                uri = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
                image_entries.append({"uri": uri, "mimeType": mime})
            else:
                assert image_uris is not None
                image_entries.append({"uri": image_uris[i], "mimeType": mime})

        doc: dict[str, Any] = {"asset": {"version": "2.0", "generator": self._generator}}
        roots = [i for i, n in enumerate(self._nodes) if n.parent is None]
        doc["scene"] = 0
        doc["scenes"] = [{"nodes": roots}]
        if self._nodes:
            doc["nodes"] = [_node_json(n) for n in self._nodes]
        if self._meshes:
            doc["meshes"] = self._meshes
        if self._materials:
            doc["materials"] = self._materials
        if self._textures:
            doc["textures"] = self._textures
        if self._samplers:
            doc["samplers"] = self._samplers
        if image_entries:
            doc["images"] = image_entries
        if self._accessors:
            doc["accessors"] = self._accessors
        if buffer_views:
            doc["bufferViews"] = buffer_views
        if bin_data:
            doc["buffers"] = [{"byteLength": len(bin_data)}]
        doc = json.loads(json.dumps(doc))  # deep copy: callers may mutate freely
        return doc, bytes(bin_data)

    def write_glb(self, path: Path) -> None:
        document, bin_chunk = self.to_document_and_bin()
        write_glb(document, bin_chunk, path)

    def write_gltf(self, path: Path, *, embed: bool = False) -> list[Path]:
        """Write ``path`` (.gltf JSON). With ``embed`` the buffer and images are data: URIs;
        otherwise ``<stem>.bin`` and ``<stem>_imgN.png`` are written beside it. Returns all
        written paths."""
        path.parent.mkdir(parents=True, exist_ok=True)
        written = [path]
        if embed:
            doc, bin_data = self._build(images="data")
            if bin_data:
                doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + (
                    base64.b64encode(bin_data).decode("ascii")
                )
        else:
            names = []
            for i, (data, mime) in enumerate(self._image_data):
                ext = "jpg" if mime == "image/jpeg" else "png"
                name = f"{path.stem}_img{i}.{ext}"
                (path.parent / name).write_bytes(data)
                written.append(path.parent / name)
                names.append(name)
            doc, bin_data = self._build(images="uri", image_uris=names)
            if bin_data:
                bin_name = f"{path.stem}.bin"
                (path.parent / bin_name).write_bytes(bin_data)
                written.append(path.parent / bin_name)
                doc["buffers"][0]["uri"] = bin_name
        path.write_text(json.dumps(doc, indent=1))
        return written


def write_glb(document: dict[str, Any], bin_chunk: bytes | None, path: Path) -> None:
    """Write a GLB container: 12-byte header, JSON chunk (space padded), optional BIN chunk
    (zero padded). The JSON is written as given (buffer byteLength is not fixed up, so a test
    corpus can write deliberately inconsistent files)."""
    path.write_bytes(glb_bytes(document, bin_chunk))


def glb_bytes(document: dict[str, Any], bin_chunk: bytes | None) -> bytes:
    json_bytes = _pad4(json.dumps(document, separators=(",", ":")).encode("utf-8"), b" ")
    parts = [struct.pack("<II", len(json_bytes), CHUNK_JSON), json_bytes]
    if bin_chunk is not None:
        bin_padded = _pad4(bin_chunk)
        parts += [struct.pack("<II", len(bin_padded), CHUNK_BIN), bin_padded]
    body = b"".join(parts)
    return struct.pack("<III", GLB_MAGIC, 2, 12 + len(body)) + body


def _num(v: Any) -> float | int:
    f = float(v)
    return int(f) if isinstance(v, np.integer) else f


def _tuple3(v: Sequence[float] | None) -> tuple[float, float, float] | None:
    if v is None:
        return None
    a, b, c = (float(x) for x in v)
    return (a, b, c)


def _node_json(n: _Node) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if n.name is not None:
        out["name"] = n.name
    if n.mesh is not None:
        out["mesh"] = n.mesh
    if n.children:
        out["children"] = list(n.children)
    if n.matrix is not None:
        out["matrix"] = list(n.matrix)
    if n.translation is not None:
        out["translation"] = list(n.translation)
    if n.rotation is not None:
        out["rotation"] = list(n.rotation)
    if n.scale is not None:
        out["scale"] = list(n.scale)
    return out


# -- primitive shapes (handy for tests and the demo scene) ------------------------------------
Arrays = tuple[
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.uint32],
]


def box(size: Sequence[float] = (1.0, 1.0, 1.0)) -> Arrays:
    """An axis-aligned box centred at the origin: (positions, normals, uvs, indices), 24 verts."""
    hx, hy, hz = (float(s) / 2 for s in size)
    faces = [  # (normal, u axis, v axis)
        ((1, 0, 0), (0, 0, -1), (0, 1, 0)),
        ((-1, 0, 0), (0, 0, 1), (0, 1, 0)),
        ((0, 1, 0), (1, 0, 0), (0, 0, -1)),
        ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
        ((0, 0, 1), (1, 0, 0), (0, 1, 0)),
        ((0, 0, -1), (-1, 0, 0), (0, 1, 0)),
    ]
    half = np.array([hx, hy, hz], dtype=np.float32)
    pos, nrm, uv, idx = [], [], [], []
    for f, (n, u, v) in enumerate(faces):
        n_, u_, v_ = (np.array(a, dtype=np.float32) for a in (n, u, v))
        for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            pos.append((n_ + su * u_ + sv * v_) * half)
            nrm.append(n_)
            uv.append(((su + 1) / 2, (1 - sv) / 2))
        b = 4 * f
        idx += [b, b + 1, b + 2, b, b + 2, b + 3]
    return (
        np.array(pos, np.float32),
        np.array(nrm, np.float32),
        np.array(uv, np.float32),
        np.array(idx, np.uint32),
    )


def uv_sphere(radius: float = 0.5, segments: int = 32, rings: int = 16) -> Arrays:
    """A UV sphere: 2 * segments * (rings - 1) triangles (approximately)."""
    theta = np.linspace(0, np.pi, rings + 1, dtype=np.float64)  # polar
    phi = np.linspace(0, 2 * np.pi, segments + 1, dtype=np.float64)  # azimuth
    t, p = np.meshgrid(theta, phi, indexing="ij")
    nrm = np.stack([np.sin(t) * np.cos(p), np.cos(t), -np.sin(t) * np.sin(p)], axis=-1)
    uv = np.stack([p / (2 * np.pi), t / np.pi], axis=-1)
    return _grid_mesh(nrm * radius, nrm, uv)


def torus(major: float = 0.5, minor: float = 0.2, segments: int = 64, sides: int = 32) -> Arrays:
    """A torus around the Y axis: 2 * segments * sides triangles."""
    u = np.linspace(0, 2 * np.pi, segments + 1)
    v = np.linspace(0, 2 * np.pi, sides + 1)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    centre = np.stack([np.cos(uu), np.zeros_like(uu), -np.sin(uu)], axis=-1) * major
    nrm = np.stack([np.cos(uu) * np.cos(vv), np.sin(vv), -np.sin(uu) * np.cos(vv)], axis=-1)
    uv = np.stack([uu / (2 * np.pi) * 4, vv / (2 * np.pi)], axis=-1)
    return _grid_mesh(centre + nrm * minor, nrm, uv)


def _grid_mesh(
    pos: npt.NDArray[np.float64], nrm: npt.NDArray[np.float64], uv: npt.NDArray[np.float64]
) -> Arrays:
    rows, cols = pos.shape[0], pos.shape[1]
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (r * cols + c).reshape(-1)
    b = a + cols
    # Counter-clockwise when seen from outside (normal side).
    tris = np.stack([a, b, a + 1, a + 1, b, b + 1], axis=-1).reshape(-1, 3)
    # Drop degenerate triangles (sphere poles) so triangle counts are honest.
    p = pos.reshape(-1, 3)
    e1 = p[tris[:, 1]] - p[tris[:, 0]]
    e2 = p[tris[:, 2]] - p[tris[:, 0]]
    keep = np.linalg.norm(np.cross(e1, e2), axis=1) > 1e-12
    return (
        p.astype(np.float32),
        nrm.reshape(-1, 3).astype(np.float32),
        uv.reshape(-1, 2).astype(np.float32),
        tris[keep].reshape(-1).astype(np.uint32),
    )
