"""FBX/OBJ conversion as the processing child runs it (``processing.run``: assimp, the repairs,
the Khronos validator, the thumbnail), on files assimp itself writes here: skinned FBX whose
weights assimp leaves unnormalised, OBJ that try to make assimp read files outside the upload,
and the repairs' rules on their own."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from apps.scenes import processing
from apps.scenes.validation import run_khronos_validator
from apps.scenes.validation.conversion import assimp_binary, sanitise_obj
from apps.scenes.validation.repair import normalised_weights, repair_converted
from apps.scenes.validation.transforms import local_matrix
from workers.rendering.gltf_builder import GltfBuilder, box, glb_bytes
from workers.rendering.gltf_package import GltfLimits, GltfPackage, parse_glb


def _process(path: Path, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    return processing.run(path, out, limits={}, thumb_size=(128, 72))


def _assimp(src: Path, out: Path, fmt: str) -> Path:
    subprocess.run(
        # Run as processing runs it: in the file's directory, by its relative name (assimp
        # then opens an absolute `mtllib` path as it is).
        [assimp_binary(), "export", src.name, str(out.resolve()), f"-f{fmt}"],
        check=True,
        capture_output=True,
        timeout=60,
        cwd=src.parent,
    )
    return out


def _skinned_fbx(root: Path) -> Path:
    """The two-joint bar of the animation tests, each vertex weighted 0.7 + 0.29993 (the sum
    a Blender 2.93 FBX had), exported by assimp as FBX (ASCII: assimp 5.2.5 cannot read back
    its own binary FBX)."""
    from workers.rendering.tests.animated import make_skinned

    path = make_skinned(root)
    doc, bin_chunk = parse_glb(path.read_bytes(), GltfLimits())
    attrs = doc["meshes"][0]["primitives"][0]["attributes"]
    package = GltfPackage(doc, [bin_chunk or b""])
    data = bytearray(bin_chunk or b"")
    joints = package.read_accessor(attrs["JOINTS_0"]).copy()
    joints[:, 1] = 1 - joints[:, 0]
    weights = np.zeros((len(joints), 4), np.float32)
    weights[:, :2] = (0.7, 0.29993)
    for name, values in (("JOINTS_0", joints.astype(np.uint16)), ("WEIGHTS_0", weights)):
        view = doc["bufferViews"][doc["accessors"][attrs[name]]["bufferView"]]
        start = view.get("byteOffset", 0)
        data[start : start + view["byteLength"]] = values.tobytes()
    (root / "skinned.glb").write_bytes(glb_bytes(doc, bytes(data)))
    return _assimp(root / "skinned.glb", root / "skinned.fbx", "fbxa")


def test_a_skinned_fbx_is_accepted_with_its_weights_normalised(tmp_path: Path) -> None:
    fbx = _skinned_fbx(tmp_path)
    # What assimp writes on its own is what the Khronos validator refused before.
    raw = _assimp(fbx, tmp_path / "raw.glb", "glb2")
    codes = {m["code"] for m in run_khronos_validator(raw)["issues"]["messages"]}
    assert "ACCESSOR_WEIGHTS_NON_NORMALIZED" in codes

    report = _process(fbx, tmp_path / "out")
    assert report["ok"], report["issues"]
    fixed = [i for i in report["issues"] if i["code"] == "skin_weights_normalised"]
    assert len(fixed) == 1, report["issues"]
    assert "6 of 6 vertices" in fixed[0]["message"]
    assert fixed[0]["severity"] == "info"
    assert report["khronos"]["errors"] == 0
    assert (tmp_path / "out" / "thumbnail.png").is_file()


def test_weights_are_rescaled_to_sum_to_one() -> None:
    weights = np.array(
        [[0.7, 0.29993, 0, 0], [0, 0, 0, 0], [0.5, -0.1, 0.5, 0], [1, 0, 0, 0]], np.float32
    )
    (out,), changed, worst = normalised_weights([], [weights])
    assert out.dtype == np.float32
    assert np.all(out.sum(axis=1, dtype=np.float32) == np.float32(1.0))
    assert out[1].tolist() == [1.0, 0.0, 0.0, 0.0]  # no weight at all: its first joint
    assert out[2][1] == 0.0  # a negative weight is none
    assert changed == 3  # the last vertex was right already
    assert worst == pytest.approx(1.0)


def test_out_of_range_factors_are_clamped_and_named(tmp_path: Path) -> None:
    b = GltfBuilder()
    pos, nrm, uv, idx = box()
    b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=b.add_material()))
    doc, bin_chunk = b.to_document_and_bin()
    material = doc["materials"][0]
    material["emissiveFactor"] = [3.14159, 3.14159, 0.0]  # a 3ds Max PBR FBX, through assimp
    material["pbrMetallicRoughness"]["roughnessFactor"] = -0.26
    path = tmp_path / "factors.glb"
    path.write_bytes(glb_bytes(doc, bin_chunk))
    assert run_khronos_validator(path)["issues"]["numErrors"] > 0

    issues = repair_converted(path, kind="FBX")
    assert {(i.code, i.pointer) for i in issues} == {
        ("material_factor_clamped", "/materials/0/emissiveFactor"),
        ("material_factor_clamped", "/materials/0/pbrMetallicRoughness/roughnessFactor"),
    }
    fixed = parse_glb(path.read_bytes(), GltfLimits())[0]["materials"][0]
    assert fixed["emissiveFactor"] == [1.0, 1.0, 0.0]
    # Its brightness is kept where glTF keeps brightness.
    strength = fixed["extensions"]["KHR_materials_emissive_strength"]["emissiveStrength"]
    assert strength == pytest.approx(3.14159)
    assert fixed["pbrMetallicRoughness"]["roughnessFactor"] == 0.0
    assert run_khronos_validator(path)["issues"]["numErrors"] == 0


# ------------------------------------------------------------------ OBJ that reach for files

TRIANGLE = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"


def _secret_library(root: Path) -> Path:
    """A material library outside the upload, as a file on the server would be."""
    secret = root / "elsewhere" / "secret.mtl"
    secret.parent.mkdir(parents=True)
    secret.write_text("newmtl server_material\nKd 0.125 0.25 0.375\n")
    return secret


def _read_the_secret(glb: Path) -> bool:
    """Whether the converted scene has the secret library's colour."""
    document = parse_glb(glb.read_bytes(), GltfLimits())[0]
    return any(
        (m.get("pbrMetallicRoughness") or {}).get("baseColorFactor", [])[:3] == [0.125, 0.25, 0.375]
        for m in document.get("materials") or []
    )


@pytest.mark.parametrize(
    "directive",
    [
        b"m\\\ntllib {path}\n",  # a line continuation: assimp joins it into `mtllib ...`
        b"mtl\\\r\nlib {path}\n",
        b"v 0 0 0\rmtllib {path}\n",  # a lone CR ends a line for assimp
        b"mtllib {path}\n",
        b"mtllib ../elsewhere/secret.mtl\n",
    ],
    ids=["continuation", "continuation-crlf", "carriage-return", "absolute", "relative"],
)
def test_an_obj_cannot_make_assimp_read_a_file_outside_the_upload(
    directive: bytes, tmp_path: Path
) -> None:
    secret = _secret_library(tmp_path)
    obj = tmp_path / "upload" / "evil.obj"
    obj.parent.mkdir()
    line = directive.replace(b"{path}", str(secret).encode())
    obj.write_bytes(line + b"usemtl server_material\n" + TRIANGLE)
    # Without the filter, assimp reads the library: the check below would see its colour.
    assert _read_the_secret(_assimp(obj, tmp_path / "unfiltered.glb", "glb2"))

    report = _process(obj, tmp_path / "out")
    assert report["ok"], report["issues"]
    assert not _read_the_secret(tmp_path / "out" / "render.glb")
    assert "material_library_missing" in {i["code"] for i in report["issues"]}


def test_sanitised_obj_lines_are_the_lines_assimp_reads() -> None:
    data = b"\xef\xbb\xbfmtl\\\nlib a.mtl\r\nv 1 2 3\\\\\nMTLLIB b.mtl\x00f 1 2 3\x0cg x\\"
    placed = {"a.mtl": "mtl0.mtl"}
    out, missing = sanitise_obj(data, placed.get)
    lines = out.split(b"\n")
    assert b"mtllib mtl0.mtl" in lines
    assert all(not ln.endswith(b"\\") for ln in lines)  # nothing for assimp to join
    assert not any(ch in out for ch in (b"\r", b"\x00", b"\x0c"))
    assert [ln for ln in lines if b"mtllib" in ln.lower()] == [b"mtllib mtl0.mtl"]
    assert b"f 1 2 3" in lines
    assert b"g x" in lines
    assert missing == []  # `MTLLIB` is no directive assimp knows: dropped without a note


def _world(document: dict[str, Any], index: int) -> Any:
    parents = {c: i for i, n in enumerate(document["nodes"]) for c in n.get("children", [])}
    m = np.eye(4)
    while index is not None:
        m = local_matrix(document["nodes"][index]) @ m
        index = parents.get(index)  # type: ignore[assignment]
    return m


def test_what_assimp_writes_from_mixamo_and_obj_files_is_made_valid(tmp_path: Path) -> None:
    """Zero normals (an OBJ's degenerate faces), repeated key times and $AssimpFbx$ pivot
    helpers whose node's animation already holds them (Mixamo FBX): the validator's errors
    go, each fix is named, and the rest pose stays where it was."""
    b = GltfBuilder()
    pos, nrm, _uv, idx = box()
    nrm = np.array(nrm, np.float32)
    nrm[:3] = 0.0
    s = float(np.sqrt(0.5))
    outer = b.add_node(name="Hips_$AssimpFbx$_Translation", translation=(0, 1, 0))
    pre = b.add_node(name="Hips_$AssimpFbx$_PreRotation", parent=outer, rotation=(0, 0, s, s))
    hips = b.add_node(name="Hips", parent=pre, translation=(0.5, 0, 0))
    b.add_node(mesh=b.add_mesh(pos, normals=nrm, indices=idx), parent=hips)
    times = b.add_accessor(np.array([0.0, 0.5, 0.5, 1.0]), target=None)
    values = b.add_accessor(np.zeros((4, 3), np.float32), target=None, with_bounds=False)
    doc, bin_chunk = b.to_document_and_bin()
    doc["animations"] = [
        {
            "samplers": [{"input": times, "output": values}],
            "channels": [{"sampler": 0, "target": {"node": hips, "path": "scale"}}],
        }
    ]
    rest = _world(doc, hips)
    path = tmp_path / "assimp.glb"
    path.write_bytes(glb_bytes(doc, bin_chunk))
    before = {m["code"] for m in run_khronos_validator(path)["issues"]["messages"]}
    assert {"ACCESSOR_VECTOR3_NON_UNIT", "ACCESSOR_ANIMATION_INPUT_NON_INCREASING"} <= before

    issues = repair_converted(path, kind="FBX")
    assert {i.code for i in issues} == {
        "normals_normalised",
        "animation_times_fixed",
        "fbx_pivots_merged",
    }
    assert run_khronos_validator(path)["issues"]["numErrors"] == 0
    fixed = parse_glb(path.read_bytes(), GltfLimits())[0]
    for helper in (outer, pre):
        assert not {"translation", "rotation", "scale"} & set(fixed["nodes"][helper])
    assert np.allclose(_world(fixed, hips), rest, atol=1e-6)  # the rest pose is unchanged


def test_zipped_textures_in_other_formats_become_png_and_broken_ones_are_named(
    tmp_path: Path,
) -> None:
    import io
    import zipfile

    from PIL import Image

    tga = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(tga, "TGA")
    obj = (
        b"mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nvt 1 1\n"
        b"usemtl red\nf 1/1 2/2 3/3\nusemtl broken\nf 2/2 4/4 3/3\n"
    )
    mtl = b"newmtl red\nmap_Kd textures\\Red.tga\nnewmtl broken\nmap_Kd C:\\art\\broken.png\n"
    path = tmp_path / "model.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model.obj", obj)
        zf.writestr("m.mtl", mtl)
        zf.writestr("textures/red.TGA", tga.getvalue())
        zf.writestr("broken.png", b"\x89PNG\r\n\x1a\n this is no image")
    report = _process(path, tmp_path / "out")
    assert report["ok"], report["issues"]
    codes = {i["code"]: i for i in report["issues"] if i["source"] == "platform"}
    assert codes["texture_embedded"]["message"].startswith("The texture 'textures/red.TGA'")
    assert codes["texture_unreadable"]["severity"] == "warning"
    document, bin_chunk = parse_glb((tmp_path / "out" / "render.glb").read_bytes(), GltfLimits())
    assert {image["mimeType"] for image in document["images"]} == {"image/png"}
    package = GltfPackage(document, [bin_chunk or b""])
    colours = {
        Image.open(io.BytesIO(package.image_bytes(i))).convert("RGB").getpixel((0, 0))
        for i in range(len(document["images"]))
    }
    assert colours == {(200, 30, 30), (255, 255, 255)}  # the TGA's red; white for the broken
