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
