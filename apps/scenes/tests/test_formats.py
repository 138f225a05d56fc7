"""Compressed glTF, FBX and OBJ through the real upload API and processing: files made by the
real tools (gltf-transform, basisu, assimp) in the test, decoded or converted into a stored
render-ready GLB that workers load, and rendered into the same picture as the original."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apps.scenes import selectors
from apps.scenes.models import SceneVersion
from apps.scenes.tests import formats
from apps.scenes.tests.conftest import version_url
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
