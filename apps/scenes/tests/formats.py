"""Scene files in the formats real tools write, made by those tools inside the tests.

A reference glTF is generated (a textured torus and box); the npm ``@gltf-transform/cli``
compresses it (Draco, meshopt, WebP), the Basis Universal ``basisu`` CLI encodes its texture as
KTX2, and assimp exports it as FBX and OBJ. Nothing binary is committed.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from workers.rendering.gltf_builder import GltfBuilder, box, glb_bytes, torus

ROOT = Path(__file__).resolve().parents[3]
NODE_BIN = ROOT / "node_modules" / ".bin"
BASISU = ROOT / "node_modules" / "@gpu-tex-enc" / "basis" / "bin" / "linux-x64" / "basisu"


def checker_png(size: int = 64, cells: int = 8) -> bytes:
    """A colourful checkerboard: texture differences show in the picture."""
    y, x = np.mgrid[0:size, 0:size] // (size // cells)
    img = np.zeros((size, size, 3), np.uint8)
    img[..., 0] = np.where((x + y) % 2, 230, 40)
    img[..., 1] = (x * 255 // cells).astype(np.uint8)
    img[..., 2] = np.where((x + y) % 2, 40, 200)
    out = io.BytesIO()
    Image.fromarray(img).save(out, "PNG")
    return out.getvalue()


def reference_builder(texture: bytes | None = None) -> GltfBuilder:
    b = GltfBuilder(generator="vrplatform test reference")
    mat = b.add_material(base_color_texture=texture or checker_png(), roughness_factor=0.6)
    plain = b.add_material(base_color_factor=(0.2, 0.6, 0.9, 1.0))
    t_pos, t_nrm, t_uv, t_idx = torus(0.5, 0.2, 48, 24)
    b_pos, b_nrm, b_uv, b_idx = box((0.6, 0.6, 0.6))
    ring = b.add_mesh(t_pos, normals=t_nrm, uvs=t_uv, indices=t_idx, material=mat)
    cube = b.add_mesh(b_pos, normals=b_nrm, uvs=b_uv, indices=b_idx, material=plain)
    b.add_node(mesh=ring, rotation=(0.38268343, 0.0, 0.0, 0.92387953))
    b.add_node(mesh=cube, translation=(0.9, 0.0, -0.3))
    return b


REFERENCE_TRIANGLES = 48 * 24 * 2 + 12


def make_reference(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "reference.glb"
    reference_builder().write_glb(path)
    return path


def gltf_transform(*args: str) -> None:
    subprocess.run(
        [str(NODE_BIN / "gltf-transform"), *args], check=True, capture_output=True, timeout=120
    )


def make_compressed(root: Path, command: str) -> Path:
    """``command``: a gltf-transform command (``draco``, ``meshopt``, ``webp``)."""
    src = make_reference(root / "src")
    out = root / f"{command}.glb"
    gltf_transform(command, str(src), str(out))
    return out


def ktx2_bytes(png: bytes, work: Path) -> bytes:
    """PNG → KTX2 (UASTC) with the Basis Universal encoder."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "t.png").write_bytes(png)
    subprocess.run(
        [str(BASISU), "-ktx2", "-uastc", "t.png", "-output_file", "t.ktx2"],
        cwd=work,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return (work / "t.ktx2").read_bytes()


def make_ktx2(root: Path) -> Path:
    """The reference with its texture as KTX2 under KHR_texture_basisu (required)."""
    root.mkdir(parents=True, exist_ok=True)
    b = reference_builder(texture=ktx2_bytes(checker_png(), root / "ktx"))
    doc, bin_chunk = b.to_document_and_bin()
    doc["images"][0]["mimeType"] = "image/ktx2"
    texture = doc["textures"][0]
    texture["extensions"] = {"KHR_texture_basisu": {"source": texture.pop("source")}}
    doc["extensionsUsed"] = ["KHR_texture_basisu"]
    doc["extensionsRequired"] = ["KHR_texture_basisu"]
    path = root / "ktx2.glb"
    path.write_bytes(glb_bytes(doc, bin_chunk))
    return path


def assimp_export(src: Path, out: Path, fmt: str) -> Path:
    """``fmt``: assimp's exporter id (``fbxa`` ASCII FBX, ``obj``)."""
    assimp = shutil.which("assimp")
    assert assimp, "assimp-utils is in deploy/system-packages.txt"
    subprocess.run(
        [assimp, "export", str(src), str(out), f"-f{fmt}"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def picture_difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two PNGs, 0..255 per channel."""
    x = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), np.float32)
    y = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), np.float32)
    assert x.shape == y.shape
    return float(np.abs(x - y).mean())
