"""Who may do what with scenes: every endpoint, every role. Forbidden objects are 404s."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files import File
from django.urls import reverse

from apps.accounts.services import user_set_roles
from apps.scenes import services
from apps.scenes.models import Scene
from apps.scenes.tests.helpers import scene_url, small_glb, version_url

pytestmark = pytest.mark.django_db


def _endpoints(scene: Scene) -> dict[str, tuple[str, str]]:
    v = scene.versions.first()
    assert v is not None
    return {
        "detail": ("get", scene_url(scene.id)),
        "patch": ("patch", scene_url(scene.id)),
        "delete": ("delete", scene_url(scene.id)),
        "versions": ("get", reverse("daedalus-versions", args=[scene.id])),
        "upload": ("post", reverse("daedalus-versions", args=[scene.id])),
        "version": ("get", version_url(scene.id, v.id)),
        "report": ("get", version_url(scene.id, v.id, "report")),
        "thumbnail": ("get", version_url(scene.id, v.id, "thumbnail")),
        "publish": ("post", reverse("daedalus-publish", args=[scene.id])),
        "unpublish": ("post", reverse("daedalus-unpublish", args=[scene.id])),
    }


def _call(client: Any, method: str, url: str, scene: Scene) -> int:
    data: dict[str, Any] = {}
    if url.endswith("/publish"):
        data = {"version_id": str(scene.versions.first().id)}  # type: ignore[union-attr]
    elif method == "patch":
        data = {"name": "changed"}
    return int(getattr(client, method)(url, data, format="json").status_code)


def test_anonymous_gets_401_everywhere(api_client: Any, make_user: Any, make_scene: Any) -> None:
    scene = make_scene(make_user("creator"))
    assert api_client.get(reverse("daedalus-scenes")).status_code == 401
    assert api_client.post(reverse("daedalus-scenes"), {}).status_code == 401
    for name, (method, url) in _endpoints(scene).items():
        assert _call(api_client, method, url, scene) == 401, name


def test_other_creators_private_scene_is_404_everywhere(
    make_user: Any, bearer_client: Any, make_scene: Any
) -> None:
    scene = make_scene(make_user("creator"), visibility="private", publish=True)
    other = bearer_client(make_user("creator"))
    for name, (method, url) in _endpoints(scene).items():
        assert _call(other, method, url, scene) == 404, name
    listed = other.get(reverse("daedalus-scenes")).json()["results"]
    assert str(scene.id) not in [s["id"] for s in listed]
    assert Scene.objects.filter(pk=scene.pk, name=scene.name).exists()  # nothing changed


def test_participant_sees_published_public_scene_read_only(
    make_user: Any, bearer_client: Any, make_scene: Any
) -> None:
    owner = make_user("creator")
    published = make_scene(owner, visibility="public")
    unpublished = make_scene(owner, visibility="public", publish=False)
    unlisted = make_scene(owner, visibility="unlisted")
    client = bearer_client(make_user("participant"))

    listed = {s["id"] for s in client.get(reverse("daedalus-scenes")).json()["results"]}
    assert listed == {str(published.id)}  # unlisted: not listed; unpublished: invisible

    expected = {
        "detail": 200,
        "versions": 200,
        "version": 200,
        "thumbnail": 200,
        "report": 404,  # reports are for the scene's managers
        "patch": 403,
        "delete": 403,
        "upload": 403,
        "publish": 403,
        "unpublish": 403,
    }
    for name, (method, url) in _endpoints(published).items():
        assert _call(client, method, url, published) == expected[name], name
    assert client.get(scene_url(unlisted.id)).status_code == 200  # by id
    for name, (method, url) in _endpoints(unpublished).items():
        assert _call(client, method, url, unpublished) == 404, name
    assert client.post(reverse("daedalus-scenes"), {}).status_code == 403


def test_participant_sees_only_the_published_version(
    make_user: Any,
    bearer_client: Any,
    make_scene: Any,
    package: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    owner = make_user("creator")
    scene = make_scene(owner)
    with package(small_glb).open("rb") as fh, django_capture_on_commit_callbacks(execute=True):
        draft = services.scene_version_create(
            scene=scene, uploaded_by=owner, upload=File(fh, name="v2.glb")
        )
    client = bearer_client(make_user("participant"))
    versions = client.get(reverse("daedalus-versions", args=[scene.id])).json()
    assert [v["id"] for v in versions] == [str(scene.published_version_id)]
    assert client.get(version_url(scene.id, draft.id)).status_code == 404
    assert client.get(version_url(scene.id, draft.id, "thumbnail")).status_code == 404
    owner_view = bearer_client(owner).get(reverse("daedalus-versions", args=[scene.id])).json()
    assert len(owner_view) == 2


def test_creator_manages_own_scene(make_user: Any, bearer_client: Any, make_scene: Any) -> None:
    owner = make_user("creator")
    scene = make_scene(owner, visibility="private", publish=False)
    client = bearer_client(owner)
    for name in ("detail", "versions", "version", "report", "thumbnail", "publish", "unpublish"):
        method, url = _endpoints(scene)[name]
        assert _call(client, method, url, scene) == 200, name
    assert _call(client, "patch", scene_url(scene.id), scene) == 200
    listed = client.get(reverse("daedalus-scenes") + "?mine=1").json()["results"]
    assert [s["id"] for s in listed] == [str(scene.id)]
    assert client.delete(scene_url(scene.id)).status_code == 204


def test_operator_manages_every_scene(make_user: Any, bearer_client: Any, make_scene: Any) -> None:
    scene = make_scene(make_user("creator"), visibility="private", publish=False)
    client = bearer_client(make_user("operator"))
    listed = {s["id"] for s in client.get(reverse("daedalus-scenes")).json()["results"]}
    assert str(scene.id) in listed
    for name in ("detail", "versions", "version", "report", "thumbnail", "publish", "patch"):
        method, url = _endpoints(scene)[name]
        assert _call(client, method, url, scene) == 200, name
    scene.refresh_from_db()
    assert scene.name == "changed"
    assert scene.published_version_id is not None
    assert client.delete(scene_url(scene.id)).status_code == 204


def test_admin_manages_every_scene(make_user: Any, bearer_client: Any, make_scene: Any) -> None:
    scene = make_scene(make_user("creator"), visibility="private", publish=False)
    client = bearer_client(make_user("admin"))
    method, url = _endpoints(scene)["report"]
    assert _call(client, method, url, scene) == 200


def test_user_without_roles_sees_nothing(
    make_user: Any, bearer_client: Any, make_scene: Any
) -> None:
    scene = make_scene(make_user("creator"))

    nobody = make_user()
    user_set_roles(user=nobody, roles=[])
    client = bearer_client(nobody)
    assert client.get(reverse("daedalus-scenes")).json()["results"] == []
    assert client.get(scene_url(scene.id)).status_code in (403, 404)
