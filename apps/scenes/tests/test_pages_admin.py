"""The creator page and the admin panel for scenes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from apps.scenes.models import SceneVersion
from apps.scenes.validation.tests import corpus

pytestmark = pytest.mark.django_db


def test_creator_page_renders_with_its_script(client: Client) -> None:
    response = client.get("/create/")
    assert response.status_code == 200
    html = response.content.decode()
    for element in ('id="login-form"', 'id="upload-bar"', 'id="process-bar"', 'id="publish"'):
        assert element in html
    assert "/static/scenes/create.js" in html
    script = finders.find("scenes/create.js")
    assert script is not None
    # The page's module and the shared client module it signs in and keeps its tokens with.
    api = finders.find("client/js/api.js")
    assert api is not None
    source = Path(script).read_text() + Path(api).read_text()
    for needed in ("/api/athena/authenticate", "sessionStorage", "upload.onprogress", "/publish"):
        assert needed in source


def _admin_client(make_user: Any) -> Client:
    client = Client()
    client.force_login(make_user("admin"))
    return client


def test_admin_lists_scenes_with_thumbnails_and_publishes(make_user: Any, make_scene: Any) -> None:
    scene = make_scene(make_user("creator"), publish=False)
    version = scene.versions.get()
    client = _admin_client(make_user)

    page = client.get(reverse("admin:scenes_sceneversion_changelist")).content.decode()
    thumb = reverse("daedalus-version-thumbnail", args=[scene.id, version.id])
    assert f'<img src="{thumb}"' in page
    # The admin's session authenticates the thumbnail view the <img> points at.
    assert client.get(thumb)["Content-Type"] == "image/png"

    response = client.post(
        reverse("admin:scenes_sceneversion_changelist"),
        {"action": "publish", "_selected_action": [str(version.id)]},
    )
    assert response.status_code == 302
    scene.refresh_from_db()
    assert scene.published_version_id == version.id
    assert client.get(reverse("admin:scenes_scene_changelist")).status_code == 200


def test_admin_shows_the_report_and_reprocesses(
    make_user: Any, package: Any, upload: Any, bearer_client: Any
) -> None:
    creator = make_user("creator")
    body = upload(bearer_client(creator), package(corpus.HOSTILE_CASES[0].make)).json()
    version = SceneVersion.objects.get(pk=body["version"]["id"])
    assert version.status == "rejected"
    client = _admin_client(make_user)

    page = client.get(reverse("admin:scenes_sceneversion_change", args=[version.id]))
    assert corpus.HOSTILE_CASES[0].code in page.content.decode()
    assert corpus.HOSTILE_CASES[0].pointer in page.content.decode()

    response = client.post(
        reverse("admin:scenes_sceneversion_changelist"),
        {"action": "reprocess", "_selected_action": [str(version.id)]},
    )
    assert response.status_code == 302
    version.refresh_from_db()
    # The test transaction holds the task's on_commit; the version waits to be processed.
    assert (version.status, version.attempts, version.report) == ("uploaded", 0, {})
