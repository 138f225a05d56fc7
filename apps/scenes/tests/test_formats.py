"""Compressed glTF, FBX and OBJ through the real upload API and processing: files made by the
real tools (gltf-transform, basisu, assimp) in the test, decoded or converted into a stored
render-ready GLB that workers load, and rendered into the same picture as the original."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from apps.scenes import selectors, services
from apps.scenes.models import SceneVersion
from apps.scenes.tests import formats
from apps.scenes.tests.helpers import version_url
from apps.streaming.services import worker_create
from workers.rendering.gltf_package import load_package

pytestmark = pytest.mark.django_db

# Mean absolute difference (0..255) of the thumbnails. Lossy codecs stay far below it; losing
# the texture (the OBJ below, imported without its .mtl) is ~7.
SAME_PICTURE = 2.0


def _process(client: Any, upload: Any, path: Path) -> SceneVersion:
    response = upload(client, path, name=path.stem)
    assert response.status_code == 201, response.json()
    version = SceneVersion.objects.get(pk=response.json()["version"]["id"])
    assert version.status == "ready", version.report
    return version


@pytest.fixture
def reference(make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path) -> Any:
    client = bearer_client(make_user("creator"))
    version = _process(client, upload, formats.make_reference(tmp_path / "reference"))
    assert version.triangles == formats.REFERENCE_TRIANGLES
    assert not version.render_file  # a plain GLB is its own render-ready file
    return client, version


@pytest.mark.parametrize(
    ("make", "extension"),
    [
        (lambda root: formats.make_compressed(root, "draco"), "KHR_draco_mesh_compression"),
        (lambda root: formats.make_compressed(root, "meshopt"), "EXT_meshopt_compression"),
        (lambda root: formats.make_compressed(root, "webp"), "EXT_texture_webp"),
        (formats.make_ktx2, "KHR_texture_basisu"),
    ],
    ids=["draco", "meshopt", "webp", "ktx2"],
)
def test_compressed_scene_renders_like_its_original(
    make: Any, extension: str, reference: Any, upload: Any, tmp_path: Path
) -> None:
    client, original = reference
    path = make(tmp_path / "compressed")
    assert (
        extension in load_package(path, check_limits=False).document["extensionsUsed"]
    )  # the tool really did it
    version = _process(client, upload, path)

    assert version.report["processing"]["decoded"] == [extension]
    # The renderer gets plain images and geometry: nothing it would have to skip (issue 20).
    assert [i for i in version.report["issues"] if i.get("source") == "renderer"] == []
    assert version.triangles == original.triangles
    # Workers get the plain derivative, not the upload, under its own checksum.
    served = selectors.scene_version_file_path(version)
    assert served.name.endswith(".glb")
    assert version.render_checksum
    assert version.streamed_checksum == version.render_checksum != version.checksum
    plain = load_package(served).document
    assert extension not in (plain.get("extensionsUsed") or [])
    difference = formats.picture_difference(
        original.thumbnail.read(), version.thumbnail.open("rb").read()
    )
    assert difference < SAME_PICTURE, difference


def test_the_picture_check_sees_a_lost_texture(reference: Any, upload: Any, tmp_path: Path) -> None:
    client, original = reference
    src = formats.make_reference(tmp_path / "src")
    obj = formats.assimp_export(src, tmp_path / "scene.obj", "obj")  # its .mtl is not uploaded
    version = _process(client, upload, obj)
    difference = formats.picture_difference(
        original.thumbnail.read(), version.thumbnail.open("rb").read()
    )
    assert difference > SAME_PICTURE * 2, difference


@pytest.mark.parametrize(
    ("fmt", "name", "kind"), [("fbxa", "scene.fbx", "FBX"), ("obj", "scene.obj", "OBJ")]
)
def test_fbx_and_obj_are_converted_and_imported(
    fmt: str, name: str, kind: str, reference: Any, upload: Any, tmp_path: Path
) -> None:
    client, original = reference
    src = formats.make_reference(tmp_path / "src")
    path = formats.assimp_export(src, tmp_path / name, fmt)
    version = _process(client, upload, path)

    assert version.container == kind.lower()
    assert version.triangles == original.triangles
    converted = version.report["processing"]["converted_from"]
    assert converted["from"] == kind
    assert converted["tool"] == "assimp"
    assert version.thumbnail.name
    assert version.source.name == version.file.name  # the creator's original is kept
    served = selectors.scene_version_file_path(version)
    assert served.suffix == ".glb"
    assert load_package(served).document["asset"]["version"] == "2.0"
    # The report is the API's too: a creator sees it was converted, and from what.
    body = client.get(version_url(version.scene_id, version.id, "report")).json()
    assert body["report"]["processing"]["converted_from"]["from"] == kind


def test_animated_scene_thumbnail_is_its_first_frame(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    from workers.rendering.animation import SceneAnimation
    from workers.rendering.renderer import thumbnail
    from workers.rendering.tests.animated import make_slider

    path = make_slider(tmp_path)
    version = _process(bearer_client(make_user("creator")), upload, path)
    assert version.report["khronos"]["info"]["animationCount"] == 1
    stored = version.thumbnail.open("rb").read()
    package = load_package(path)
    anim = SceneAnimation.from_package(package)
    assert anim is not None
    first_frame = thumbnail(anim.scene_at(0.0), size=(512, 288))
    rest_pose = thumbnail(package, size=(512, 288))  # the static path: the box at x = 0
    assert formats.picture_difference(stored, first_frame) < 0.5
    assert formats.picture_difference(stored, rest_pose) > 1.0


def test_a_million_keyframes_is_refused(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    import numpy as np

    from workers.rendering.gltf_builder import GltfBuilder, box, write_glb

    b = GltfBuilder()
    pos, nrm, _uv, idx = box()
    b.add_node(mesh=b.add_mesh(pos, normals=nrm, indices=idx))
    keys = 1_000_000
    times = b.add_accessor(np.arange(keys, dtype=np.float32) / 1000, target=None)
    values = b.add_accessor(np.zeros((keys, 3), np.float32), target=None, with_bounds=False)
    doc, bin_chunk = b.to_document_and_bin()
    doc["animations"] = [
        {
            "samplers": [{"input": times, "output": values}],
            "channels": [{"sampler": 0, "target": {"node": 0, "path": "translation"}}],
        }
    ]
    write_glb(doc, bin_chunk, tmp_path / "keys.glb")
    response = upload(bearer_client(make_user("creator")), tmp_path / "keys.glb")
    version = SceneVersion.objects.get(pk=response.json()["version"]["id"])
    assert version.status == "rejected"
    errors = [
        (i["code"], i["pointer"]) for i in version.report["issues"] if i["severity"] == "error"
    ]
    assert errors == [("too_many_keyframes", "/animations/0/samplers/0/input")]


# ------------------------------------------------------------------ bad input: named rejections


def _rejected(client: Any, upload: Any, path: Path) -> tuple[str, str]:
    response = upload(client, path, name=path.stem)
    assert response.status_code == 201, response.json()
    version = SceneVersion.objects.get(pk=response.json()["version"]["id"])
    assert version.status == "rejected", version.report
    error = next(i for i in version.report["issues"] if i["severity"] == "error")
    return error["code"], error["message"]


def test_an_fbx_the_converter_cannot_read_is_rejected(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    path = tmp_path / "garbage.fbx"
    path.write_bytes(b"Kaydara FBX Binary  \x00\x1a\x00" + bytes(range(256)) * 40)
    code, message = _rejected(bearer_client(make_user("creator")), upload, path)
    assert code == "conversion_failed"
    assert "FBX" in message


def test_a_hanging_converter_is_stopped(
    settings: Any,
    make_user: Any,
    bearer_client: Any,
    upload: Any,
    tmp_path: Path,
) -> None:
    obj = formats.assimp_export(formats.make_reference(tmp_path / "r"), tmp_path / "a.obj", "obj")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "assimp").write_text("#!/bin/sh\nexec sleep 60\n")  # a converter that hangs
    (fake / "assimp").chmod(0o755)
    settings.SCENE_TOOL_PATH = [str(fake)]  # the child's PATH is its own (apps/scenes/sandbox)
    settings.SCENE_TOOL_TIMEOUT_S = 2
    code, _ = _rejected(bearer_client(make_user("creator")), upload, obj)
    assert code == "conversion_timeout"


def _big_reference(root: Path) -> Path:
    from workers.rendering.gltf_builder import GltfBuilder, torus

    b = GltfBuilder()
    pos, nrm, uv, idx = torus(0.5, 0.2, 240, 120)  # 57,600 triangles: ~1.6 MB plain
    b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx))
    root.mkdir(parents=True, exist_ok=True)
    b.write_glb(root / "big.glb")
    return root / "big.glb"


def test_outputs_past_the_size_limit_are_refused(
    settings: Any, make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    """A small upload that decodes or converts into more than the sandbox lets a tool write
    (the shape of a Draco or FBX bomb) ends as a named rejection, not a full disk."""
    big = _big_reference(tmp_path / "src")
    draco = tmp_path / "big-draco.glb"
    formats.gltf_transform("draco", str(big), str(draco))
    obj = formats.assimp_export(big, tmp_path / "big.obj", "obj")
    assert draco.stat().st_size < 1024 * 1024 < big.stat().st_size
    settings.SCENE_PROCESS_MAX_OUTPUT_MB = 1
    client = bearer_client(make_user("creator"))
    assert _rejected(client, upload, draco)[0] == "decoded_too_large"
    assert _rejected(client, upload, obj)[0] == "conversion_output_too_large"


def test_corrupt_draco_data_is_a_named_rejection(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    from workers.rendering.gltf_builder import glb_bytes
    from workers.rendering.gltf_package import GltfLimits, parse_glb

    draco = formats.make_compressed(tmp_path, "draco")
    doc, bin_chunk = parse_glb(draco.read_bytes(), GltfLimits())
    ext = doc["meshes"][0]["primitives"][0]["extensions"]["KHR_draco_mesh_compression"]
    view = doc["bufferViews"][ext["bufferView"]]
    data = bytearray(bin_chunk or b"")
    start = view.get("byteOffset", 0)
    data[start : start + view["byteLength"]] = bytes(view["byteLength"])  # not Draco any more
    broken = tmp_path / "broken.glb"
    broken.write_bytes(glb_bytes(doc, bytes(data)))
    code, message = _rejected(bearer_client(make_user("creator")), upload, broken)
    assert code == "decode_failed", message


def test_a_worker_downloads_the_render_ready_derivative(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    client = bearer_client(make_user("creator"))
    version = _process(client, upload, formats.make_compressed(tmp_path, "meshopt"))
    services.scene_publish(scene=version.scene, version=version)
    _, token = worker_create(name="gpu-1")
    response = Client().get(
        f"/api/morpheus/worker/scenes/{version.id}/file", HTTP_AUTHORIZATION=f"Worker {token}"
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == version.render_checksum
    assert response["X-Checksum-SHA256"] == version.render_checksum
    assert 'filename="render.glb"' in response["Content-Disposition"]
    # What the worker gets loads with no compression extension left to decode.
    (tmp_path / "got.glb").write_bytes(body)
    assert "EXT_meshopt_compression" not in (
        load_package(tmp_path / "got.glb").document.get("extensionsUsed") or []
    )


def test_an_fbx_naming_a_texture_it_does_not_carry_still_imports(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    """Creators' FBX files often name textures by a path on their own machine; the upload is
    one file, so the texture becomes white and the report says which one was missing."""
    src = tmp_path / "src"
    src.mkdir()
    formats.reference_builder().write_gltf(src / "ref.gltf")  # the texture as a file beside it
    fbx = formats.assimp_export(src / "ref.gltf", tmp_path / "linked.fbx", "fbxa")
    assert b"ref_img0.png" in fbx.read_bytes()  # named, not embedded
    version = _process(bearer_client(make_user("creator")), upload, fbx)
    missing = [i for i in version.report["issues"] if i["code"] == "texture_missing"]
    assert [(i["severity"], i["pointer"]) for i in missing] == [("warning", "/images/0")]
    assert "'ref_img0.png'" in missing[0]["message"]
    assert version.triangles == formats.REFERENCE_TRIANGLES


def test_an_obj_cannot_make_the_converter_read_other_files(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    path = tmp_path / "evil.obj"
    path.write_text(
        "mtllib /etc/passwd\nmtllib ../../../../etc/passwd\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
    )
    version = _process(bearer_client(make_user("creator")), upload, path)
    assert version.triangles == 1
    derived = version.render_file.open("rb").read()
    assert b"root:" not in derived
    assert b"passwd" not in derived
