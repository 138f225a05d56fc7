"""The upload → process → publish flow through the REST API, with real files and real
processing (validator and llvmpipe renderer in the sandboxed child)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from PIL import Image

from apps.scenes.models import SceneVersion
from apps.scenes.tests.helpers import scene_url, small_glb, version_url
from apps.scenes.validation.tests import corpus

pytestmark = pytest.mark.django_db

HOSTILE = {c.name: c for c in corpus.HOSTILE_CASES}


def _png(response: Any) -> Image.Image:
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    return Image.open(io.BytesIO(b"".join(response.streaming_content)))


def test_valid_glb_becomes_ready_with_stats_and_thumbnail(
    make_user: Any, bearer_client: Any, package: Any, upload: Any
) -> None:
    client = bearer_client(make_user("creator"))
    response = upload(client, package(corpus.make_hierarchy), name="Hierarchy")
    assert response.status_code == 201, response.json()
    scene_id, version_id = response.json()["id"], response.json()["version"]["id"]

    body = client.get(version_url(scene_id, version_id)).json()
    assert body["status"] == "ready"
    assert body["progress"] == 100
    assert body["number"] == 1
    assert body["container"] == "glb"
    assert len(body["checksum"]) == 64
    case = next(c for c in corpus.VALID_CASES if c.name == "hierarchy_trs_matrix")
    stats = body["stats"]
    assert (stats["vertices"], stats["triangles"], stats["nodes"], stats["meshes"]) == (
        case.vertices,
        case.triangles,
        case.nodes,
        case.meshes,
    )
    assert stats["bounds_min"] == pytest.approx(list(case.bounds_min))
    assert stats["bounds_max"] == pytest.approx(list(case.bounds_max))

    image = _png(client.get(body["thumbnail_url"]))
    assert image.size == (512, 288)
    colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None
    assert len(colours) > 10, "thumbnail is blank"

    report = client.get(version_url(scene_id, version_id, "report")).json()
    assert report["status"] == "ready"
    assert report["report"]["ok"] is True
    assert report["report"]["issues"] == []


def test_checksum_is_sha256_of_the_upload(
    make_user: Any, bearer_client: Any, package: Any, upload: Any
) -> None:
    import hashlib

    path = package(small_glb)
    body = upload(bearer_client(make_user("creator")), path).json()
    assert body["version"]["checksum"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert body["version"]["size_bytes"] == path.stat().st_size


def test_zip_of_gltf_bin_and_png_is_accepted(
    make_user: Any, bearer_client: Any, package: Any, upload: Any
) -> None:
    client = bearer_client(make_user("creator"))
    response = upload(client, package(corpus.make_zipped_gltf))
    assert response.status_code == 201, response.json()
    version = SceneVersion.objects.get(pk=response.json()["version"]["id"])
    assert version.status == "ready", version.report
    assert version.container == "zip"
    assert version.source.name.endswith(".zip")  # the original zip is kept
    assert (version.textures, version.texture_pixels, version.triangles) == (1, 32, 12)
    assert _png(client.get(version_url(version.scene_id, version.id, "thumbnail"))).size == (
        512,
        288,
    )


@pytest.mark.parametrize(
    "name",
    [
        "uri_etc_passwd",  # a .gltf whose buffer is /etc/passwd
        "uri_dotdot",
        "zip_bomb",
        "zip_entry_dotdot",
        "truncated_glb",
        "png_100k_squared",
        "index_beyond_vertex_count",
    ],
)
def test_hostile_upload_is_rejected_with_a_readable_report(
    name: str, make_user: Any, bearer_client: Any, package: Any, upload: Any
) -> None:
    case = HOSTILE[name]
    client = bearer_client(make_user("creator"))
    response = upload(client, package(case.make))
    assert response.status_code == 201, response.json()
    scene_id, version_id = response.json()["id"], response.json()["version"]["id"]

    body = client.get(version_url(scene_id, version_id)).json()
    assert body["status"] == "rejected"
    assert body["thumbnail_url"] is None
    code, pointer = corpus.processing_reason(
        case
    )  # the official validator's reason where it has one
    assert code in body["error"]
    report = client.get(version_url(scene_id, version_id, "report")).json()["report"]
    assert report["ok"] is False
    issue = next(i for i in report["issues"] if i["code"] == code)
    assert issue["pointer"] == pointer
    assert issue["severity"] == "error"
    assert issue["message"]
    # A rejected version can never be published.
    publish = client.post(
        reverse("daedalus-publish", args=[scene_id]), {"version_id": version_id}, format="json"
    )
    assert publish.status_code == 409
    assert publish.json()["error"]["code"] == "version_not_ready"


def test_etc_passwd_is_never_read(
    make_user: Any, bearer_client: Any, package: Any, upload: Any
) -> None:
    client = bearer_client(make_user("creator"))
    response = upload(client, package(HOSTILE["uri_etc_passwd"].make))
    version = SceneVersion.objects.get(pk=response.json()["version"]["id"])
    assert "root:" not in str(version.report)
    assert version.report["stats"]["decoded_bytes"] == 0


def test_upload_over_the_limit_is_413(
    settings: Any, make_user: Any, bearer_client: Any, tmp_path: Path, upload: Any
) -> None:
    settings.SCENE_MAX_UPLOAD_MB = 1
    big = tmp_path / "big.glb"
    big.write_bytes(b"\0" * (3 * 1024 * 1024))
    response = upload(bearer_client(make_user("creator")), big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not SceneVersion.objects.exists()


def test_unsupported_extension_is_400(
    make_user: Any, bearer_client: Any, tmp_path: Path, upload: Any
) -> None:
    path = tmp_path / "scene.stl"
    path.write_text("solid x\nendsolid x\n")
    response = upload(bearer_client(make_user("creator")), path)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_format"


def test_new_version_publish_and_unpublish(
    make_user: Any,
    bearer_client: Any,
    package: Any,
    upload: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = bearer_client(make_user("creator"))
    scene_id = upload(client, package(small_glb)).json()["id"]
    with (
        package(corpus.make_textured_glb).open("rb") as fh,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            reverse("daedalus-versions", args=[scene_id]), {"file": fh}, format="multipart"
        )
    assert response.status_code == 201
    v2 = response.json()
    assert v2["number"] == 2
    assert client.get(version_url(scene_id, v2["id"])).json()["status"] == "ready"
    listed = client.get(reverse("daedalus-versions", args=[scene_id])).json()
    assert [v["number"] for v in listed] == [2, 1]

    published = client.post(
        reverse("daedalus-publish", args=[scene_id]), {"version_id": v2["id"]}, format="json"
    )
    assert published.status_code == 200
    assert published.json()["published_version"]["id"] == v2["id"]
    assert published.json()["thumbnail_url"].endswith("/thumbnail")

    scene = client.get(scene_url(scene_id)).json()
    assert scene["published_version"]["is_published"] is True
    assert (
        client.post(reverse("daedalus-unpublish", args=[scene_id])).json()["published_version"]
        is None
    )


def test_update_and_delete_remove_stored_files(
    make_user: Any,
    bearer_client: Any,
    package: Any,
    upload: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.core.files.storage import default_storage

    client = bearer_client(make_user("creator"))
    scene_id = upload(client, package(small_glb)).json()["id"]
    version = SceneVersion.objects.get(scene_id=scene_id)
    names = [version.file.name, version.thumbnail.name]
    assert all(default_storage.exists(n) for n in names)

    patched = client.patch(
        scene_url(scene_id), {"name": "Renamed", "visibility": "unlisted"}, format="json"
    )
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["visibility"]) == ("Renamed", "unlisted")

    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(scene_url(scene_id)).status_code == 204
    assert client.get(scene_url(scene_id)).status_code == 404
    assert not any(default_storage.exists(n) for n in names)
