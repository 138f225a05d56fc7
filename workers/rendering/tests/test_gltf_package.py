"""The strict glTF reader: accessor decoding, URI rules, GLB/zip container checks, image
headers, and a fuzz test that hostile bytes only ever raise GltfPackageError."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from workers.rendering.gltf_builder import GltfBuilder, box, glb_bytes
from workers.rendering.gltf_package import (
    GltfLimits,
    GltfPackage,
    GltfPackageError,
    check_uri,
    decode_data_uri,
    load_package,
    parse_glb,
    sniff_image,
)


def package(document: dict[str, Any], bin_data: bytes) -> GltfPackage:
    return GltfPackage(document={"asset": {"version": "2.0"}, **document}, buffers=[bin_data])


def box_glb(tmp_path: Path, **mutations: Any) -> Path:
    pos, nrm, uv, idx = box()
    b = GltfBuilder()
    b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx))
    doc, bin_chunk = b.to_document_and_bin()
    doc.update(mutations)
    path = tmp_path / "scene.glb"
    path.write_bytes(glb_bytes(doc, bin_chunk))
    return path


def png(width: int = 2, height: int = 2) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height)).save(out, "PNG")
    return out.getvalue()


# --------------------------------------------------------------------------- accessors


def test_strided_interleaved_and_normalized_accessors() -> None:
    pos = np.arange(12, dtype="<f4").reshape(4, 3)
    uv = np.array([[0, 65535], [32768, 0], [65535, 65535], [1, 2]], "<u2")
    vertex = b"".join(pos[i].tobytes() + uv[i].tobytes() + b"\xee" * 8 for i in range(4))
    pkg = package(
        {
            "bufferViews": [{"buffer": 0, "byteLength": len(vertex), "byteStride": 24}],
            "accessors": [
                {"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3"},
                {
                    "bufferView": 0,
                    "byteOffset": 12,
                    "componentType": 5123,
                    "count": 4,
                    "type": "VEC2",
                    "normalized": True,
                },
                {"bufferView": 0, "byteOffset": 12, "componentType": 5123, "count": 4,
                 "type": "VEC2"},
            ],
        },
        vertex,
    )  # fmt: skip
    assert np.array_equal(pkg.read_accessor(0), pos)
    normalized = pkg.read_accessor(1)
    assert normalized.dtype == np.float32
    assert normalized.shape == (4, 2)
    assert np.allclose(normalized, uv / 65535.0)
    raw = pkg.read_accessor(2)
    assert raw.dtype == np.uint16
    assert np.array_equal(raw, uv)
    assert pkg.read_accessor(0).flags.writeable  # a copy, not a view of the buffer


def test_signed_normalized_clamps_to_minus_one() -> None:
    data = np.array([-128, -127, 0, 127], "<i1").tobytes()
    pkg = package(
        {
            "bufferViews": [{"buffer": 0, "byteLength": 4}],
            "accessors": [{"bufferView": 0, "componentType": 5120, "count": 4, "type": "SCALAR",
                           "normalized": True}],
        },
        data,
    )  # fmt: skip
    assert pkg.read_accessor(0).ravel().tolist() == [-1.0, -1.0, 0.0, 1.0]


def test_mat3_of_bytes_skips_column_padding() -> None:
    # Each 3-byte column is padded to 4 bytes: element size 12.
    element = bytes([1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0])
    pkg = package(
        {
            "bufferViews": [{"buffer": 0, "byteLength": 24}],
            "accessors": [{"bufferView": 0, "componentType": 5121, "count": 2, "type": "MAT3"}],
        },
        element * 2,
    )
    assert pkg.read_accessor(0).tolist() == [list(range(1, 10))] * 2


def test_sparse_accessor_without_buffer_view() -> None:
    indices = np.array([1, 3], "<u2").tobytes()
    values = np.array([[1, 2, 3], [4, 5, 6]], "<f4").tobytes()
    sparse = {
        "count": 2,
        "indices": {"bufferView": 0, "componentType": 5123},
        "values": {"bufferView": 1},
    }
    doc = {
        "bufferViews": [
            {"buffer": 0, "byteLength": 4},
            {"buffer": 0, "byteOffset": 4, "byteLength": 24},
        ],
        "accessors": [
            {"componentType": 5126, "count": 4, "type": "VEC3", "sparse": sparse},
        ],
    }
    pkg = package(doc, indices + values)
    assert pkg.read_accessor(0).tolist() == [[0, 0, 0], [1, 2, 3], [0, 0, 0], [4, 5, 6]]
    backwards = np.array([3, 1], "<u2").tobytes()
    with pytest.raises(GltfPackageError) as err:
        package(doc, backwards + values).read_accessor(0)
    assert err.value.code == "accessor_invalid"
    assert err.value.pointer == "/accessors/0/sparse/indices"


@pytest.mark.parametrize(
    ("accessor", "code", "pointer"),
    [
        ({"count": 3}, "accessor_out_of_bounds", "/accessors/0"),
        ({"byteOffset": 4}, "accessor_out_of_bounds", "/accessors/0"),
        ({"componentType": 5124}, "accessor_invalid", "/accessors/0/componentType"),
        ({"type": "VEC5"}, "accessor_invalid", "/accessors/0/type"),
        ({"count": True}, "schema", "/accessors/0/count"),
        ({"componentType": 5126, "normalized": True}, "accessor_invalid",
         "/accessors/0/normalized"),
        ({"bufferView": 3}, "index_out_of_range", "/bufferViews/3"),
    ],
)  # fmt: skip
def test_bad_accessors_are_rejected(accessor: dict[str, Any], code: str, pointer: str) -> None:
    base = {"bufferView": 0, "componentType": 5126, "count": 2, "type": "VEC3"}
    pkg = package(
        {"bufferViews": [{"buffer": 0, "byteLength": 24}], "accessors": [{**base, **accessor}]},
        bytes(24),
    )
    with pytest.raises(GltfPackageError) as err:
        pkg.read_accessor(0)
    assert (err.value.code, err.value.pointer) == (code, pointer)


def test_buffer_view_past_its_buffer() -> None:
    pkg = package({"bufferViews": [{"buffer": 0, "byteOffset": 8, "byteLength": 20}]}, bytes(24))
    with pytest.raises(GltfPackageError) as err:
        pkg.buffer_view_bytes(0)
    assert (err.value.code, err.value.pointer) == ("buffer_view_out_of_bounds", "/bufferViews/0")


# --------------------------------------------------------------------------- URIs


@pytest.mark.parametrize(
    ("uri", "path"),
    [("scene.bin", "scene.bin"), ("tex/a%20b.png", "tex/a b.png"), ("./x/./y.bin", "x/y.bin")],
)
def test_relative_uris_are_accepted(uri: str, path: str) -> None:
    assert check_uri(uri, "/buffers/0/uri") == path


@pytest.mark.parametrize(
    ("uri", "code"),
    [
        ("/etc/passwd", "uri_absolute"),
        ("//host/share/x.bin", "uri_absolute"),
        ("%2Fetc%2Fpasswd", "uri_absolute"),
        ("../secret", "uri_traversal"),
        ("a/../../secret", "uri_traversal"),
        ("%2e%2e/secret", "uri_traversal"),
        ("a/%2E%2E/%2e%2E/x", "uri_traversal"),
        ("http://example.com/x.bin", "uri_scheme"),
        ("file:///etc/passwd", "uri_scheme"),
        ("javascript:alert(1)", "uri_scheme"),
        ("C:\\x", "uri_drive"),
        ("c:/windows/x", "uri_drive"),
        ("a\\..\\b", "uri_backslash"),
        ("a%5c..%5cb", "uri_backslash"),
        ("x.bin%00.png", "uri_invalid"),
        ("x.bin?v=1", "uri_invalid"),
        ("a//b.bin", "uri_invalid"),
        ("%ff.bin", "uri_invalid"),
        ("", "uri_invalid"),
        (7, "uri_invalid"),
    ],
)
def test_escaping_uris_are_rejected(uri: Any, code: str) -> None:
    with pytest.raises(GltfPackageError) as err:
        check_uri(uri, "/images/2/uri")
    assert (err.value.code, err.value.pointer) == (code, "/images/2/uri")


def test_data_uri_size_is_checked_before_decoding() -> None:
    uri = "data:application/octet-stream;base64," + "A" * 4000
    assert len(decode_data_uri(uri, "/buffers/0/uri", 3000).data) == 3000
    with pytest.raises(GltfPackageError) as err:
        decode_data_uri(uri, "/buffers/0/uri", 2999)
    assert err.value.code == "data_uri_too_large"
    with pytest.raises(GltfPackageError) as err:
        decode_data_uri("data:application/octet-stream;base64,A*==", "/buffers/0/uri", 100)
    assert err.value.code == "data_uri_invalid"


# --------------------------------------------------------------------------- containers


def test_glb_loads_with_bin_chunk(tmp_path: Path) -> None:
    pkg = load_package(box_glb(tmp_path))
    assert pkg.container == "glb"
    positions = pkg.read_accessor(0)
    assert positions.shape == (24, 3)
    assert positions.dtype == np.float32
    assert float(np.abs(positions).max()) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("transform", "code"),
    [
        (lambda g: g[:4] + struct.pack("<I", 1) + g[8:], "glb_version"),
        (lambda g: g + b"\x00\x00\x00\x00", "glb_length"),
        (lambda g: g[:-4], "glb_truncated"),
        (lambda g: g[:8], "glb_truncated"),
        (lambda g: g[:12] + struct.pack("<I", struct.unpack_from("<I", g, 12)[0] - 1) + g[16:],
         "glb_chunk"),
        (lambda g: g[:16] + b"BIN\x00" + g[20:], "glb_chunk"),
    ],
)  # fmt: skip
def test_broken_glb_containers(tmp_path: Path, transform: Any, code: str) -> None:
    path = box_glb(tmp_path)
    path.write_bytes(transform(path.read_bytes()))
    with pytest.raises(GltfPackageError) as err:
        load_package(path)
    assert err.value.code == code


def test_bin_chunk_shorter_than_buffer(tmp_path: Path) -> None:
    doc = json.loads(json.dumps({"asset": {"version": "2.0"}, "buffers": [{"byteLength": 64}]}))
    path = tmp_path / "x.glb"
    path.write_bytes(glb_bytes(doc, bytes(16)))
    with pytest.raises(GltfPackageError) as err:
        load_package(path)
    assert (err.value.code, err.value.pointer) == (
        "buffer_length_mismatch",
        "/buffers/0/byteLength",
    )


def test_gltf_json_checks() -> None:
    for chunk, code in [
        (b'{"asset":{"version":"1.0"}}', "asset_version"),
        (b'{"asset":{"version":"2.0","minVersion":"2.1"}}', "asset_version"),
        (b'{"asset":{}}', "asset_version"),
        (b"{}", "asset_missing"),
        (b'{"asset":{"version":"2.0"},"x":NaN}', "json_invalid"),
        (b"\xef\xbb\xbf{}", "json_invalid"),
    ]:
        padded = chunk + b" " * (-len(chunk) % 4)
        glb = b"glTF" + struct.pack("<II", 2, 20 + len(padded))
        glb += struct.pack("<II", len(padded), 0x4E4F534A) + padded
        with pytest.raises(GltfPackageError) as err:
            parse_glb(glb, GltfLimits())
        assert err.value.code == code, chunk


def test_file_size_checked_before_reading(tmp_path: Path) -> None:
    path = box_glb(tmp_path)
    with pytest.raises(GltfPackageError) as err:
        load_package(path, limits=GltfLimits(max_file_bytes=path.stat().st_size - 1))
    assert err.value.code == "file_too_large"


def test_count_limits_enforced_by_default(tmp_path: Path) -> None:
    path = box_glb(tmp_path)
    with pytest.raises(GltfPackageError) as err:
        load_package(path, limits=GltfLimits(max_triangles=11))
    assert (err.value.code, err.value.pointer) == ("too_many_triangles", "/meshes")
    # The validator turns this off to report every problem itself.
    assert load_package(path, limits=GltfLimits(max_triangles=11), check_limits=False)


def test_unknown_container_type(tmp_path: Path) -> None:
    (tmp_path / "scene.obj").write_text("v 0 0 0")
    with pytest.raises(GltfPackageError) as err:
        load_package(tmp_path / "scene.obj")
    assert err.value.code == "unsupported_container"


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _gltf_files() -> dict[str, bytes]:
    pos, _, _, idx = box()
    b = GltfBuilder()
    b.add_node(mesh=b.add_mesh(pos, indices=idx, material=b.add_material(base_color_texture=png())))
    doc, bin_data = b.to_document_and_bin()
    doc["buffers"][0]["uri"] = "bin/scene.bin"
    doc["images"][0] = {"uri": "albedo.png"}
    return {
        "model/scene.gltf": json.dumps(doc).encode(),
        "model/bin/scene.bin": bin_data,
        "model/albedo.png": png(),
        "__MACOSX/model/._scene.gltf": b"\x00junk",
    }


def test_zip_resolves_resources_beside_the_scene(tmp_path: Path) -> None:
    pkg = load_package(_zip(tmp_path / "up.zip", _gltf_files()))
    assert pkg.container == "zip"
    assert pkg.image_bytes(0) == png()
    assert pkg.read_accessor(0).shape == (24, 3)


@pytest.mark.parametrize(
    ("limits", "extra", "code"),
    [
        (GltfLimits(max_zip_total_bytes=1000), {}, "zip_too_large"),
        (GltfLimits(), {"model/zeros.bin": bytes(2 << 20)}, "zip_bomb"),
        (GltfLimits(max_zip_files=3), {}, "zip_too_many_files"),
        (GltfLimits(), {"/abs.txt": b"x"}, "zip_entry_name"),
        (GltfLimits(), {"a\\b.txt": b"x"}, "zip_entry_name"),
        (GltfLimits(), {"model/x.glb": b"x"}, "zip_multiple_scenes"),
    ],
)
def test_zip_central_directory_checks(
    tmp_path: Path, limits: GltfLimits, extra: dict[str, bytes], code: str
) -> None:
    path = _zip(tmp_path / "up.zip", {**_gltf_files(), **extra})
    with pytest.raises(GltfPackageError) as err:
        load_package(path, limits=limits)
    assert err.value.code == code


def test_zip_without_scene_and_not_a_zip(tmp_path: Path) -> None:
    with pytest.raises(GltfPackageError) as err:
        load_package(_zip(tmp_path / "a.zip", {"readme.txt": b"hi"}))
    assert err.value.code == "zip_no_scene"
    (tmp_path / "b.zip").write_bytes(b"PK not really")
    with pytest.raises(GltfPackageError) as err:
        load_package(tmp_path / "b.zip")
    assert err.value.code == "zip_invalid"


# --------------------------------------------------------------------------- images


def test_image_headers_are_read_without_decoding() -> None:
    info = sniff_image(png(7, 5))
    assert info is not None
    assert (info.mime_type, info.width, info.height) == ("image/png", 7, 5)
    jpeg = io.BytesIO()
    Image.new("RGB", (33, 17)).save(jpeg, "JPEG", exif=b"Exif\x00\x00" + bytes(64))
    info = sniff_image(jpeg.getvalue())
    assert info is not None
    assert (info.mime_type, info.width, info.height) == ("image/jpeg", 33, 17)
    ktx2 = b"\xabKTX 20\xbb\r\n\x1a\n" + struct.pack("<IIIIIIII", 37, 1, 64, 32, 0, 0, 1, 1)
    info = sniff_image(ktx2 + bytes(16))
    assert info is not None
    assert (info.mime_type, info.pixels) == ("image/ktx2", 64 * 32)
    gif = io.BytesIO()
    Image.new("RGB", (2, 2)).save(gif, "GIF")
    assert sniff_image(gif.getvalue()) is None
    with pytest.raises(GltfPackageError) as err:
        sniff_image(b"\xff\xd8\xff\xd9")
    assert err.value.code == "image_invalid"


# --------------------------------------------------------------------------- fuzz


_SEED_GLB: bytes | None = None


def _seed_glb() -> bytes:
    global _SEED_GLB
    if _SEED_GLB is None:
        pos, nrm, uv, idx = box()
        b = GltfBuilder()
        b.add_node(
            mesh=b.add_mesh(
                pos,
                normals=nrm,
                uvs=uv,
                indices=idx,
                material=b.add_material(base_color_texture=png()),
            )
        )
        _SEED_GLB = glb_bytes(*b.to_document_and_bin())
    return _SEED_GLB  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
def test_mutated_glb_only_raises_package_errors(
    tmp_path: Path, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(_seed_glb())
    for position, value in flips:
        data[position % len(data)] = value
    path = tmp_path / "fuzz.glb"
    path.write_bytes(bytes(data))
    # Any exception other than GltfPackageError fails the test.
    error: GltfPackageError | None = None
    try:
        pkg = load_package(path)
        for i in range(len(pkg.document.get("accessors", []))):
            pkg.read_accessor(i)
    except GltfPackageError as exc:
        error = exc
    if error is not None:
        assert error.code.islower()
        assert isinstance(error.pointer, str)
