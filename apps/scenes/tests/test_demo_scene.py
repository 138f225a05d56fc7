"""``create_demo_scene`` end to end: 300k triangles built, uploaded through the service,
validated, thumbnailed on llvmpipe, published; the id on the last line is streamable."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from apps.scenes import selectors
from apps.scenes.models import Scene

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_create_demo_scene_end_to_end(make_user: Any) -> None:
    make_user("creator", username="democreator")
    out = io.StringIO()
    call_command("create_demo_scene", "--owner", "democreator", stdout=out)
    version_id = out.getvalue().strip().splitlines()[-1]

    version = selectors.scene_version_streamable(version_id=version_id)
    assert version.triangles >= 290_000
    assert (version.materials, version.textures) == (9, 6)
    assert version.thumbnail.name
    assert selectors.scene_version_file_path(version).stat().st_size == version.size_bytes
    assert version.scene.visibility == "public"

    again = io.StringIO()
    call_command("create_demo_scene", "--owner", "democreator", stdout=again)
    assert again.getvalue().strip().splitlines()[-1] == version_id  # no second scene
    assert Scene.objects.filter(owner__username="democreator").count() == 1


def test_create_demo_scene_creates_a_missing_owner() -> None:
    out = io.StringIO()
    call_command("create_demo_scene", "--owner", "nobody-yet", "--triangles", "2000", stdout=out)
    version = selectors.scene_version_streamable(version_id=out.getvalue().splitlines()[-1])
    assert version.scene.owner.username == "nobody-yet"
    assert not version.scene.owner.has_usable_password()
