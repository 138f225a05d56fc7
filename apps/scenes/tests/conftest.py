"""Fixtures for the scenes app: generated packages, an upload helper, processed scenes (URL
and package helpers are in ``helpers.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from apps.scenes.tests.helpers import small_glb


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    # A fresh storage directory per test: no test can see another's files.
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


@pytest.fixture
def package(tmp_path: Path) -> Callable[[Callable[[Path], Path]], Path]:
    """Write a corpus package (``corpus.make_*`` or a case's ``make``) and return its path."""
    counter = iter(range(1000))

    def make(maker: Callable[[Path], Path]) -> Path:
        root = tmp_path / f"case{next(counter)}"
        root.mkdir()
        return maker(root)

    return make


@pytest.fixture
def upload(
    django_capture_on_commit_callbacks: Any,
) -> Callable[..., Any]:
    """POST a scene file through the API, running the processing task that commit sends."""

    def post(client: Any, path: Path, *, name: str = "Scene", **fields: Any) -> Any:
        with path.open("rb") as fh, django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse("daedalus-scenes"),
                {"name": name, "file": fh, **fields},
                format="multipart",
            )

    return post


@pytest.fixture
def make_scene(tmp_path: Path, django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """A scene made through the services and processed by the real task; optionally published."""
    from django.core.files import File

    from apps.scenes import services

    counter = iter(range(1000))

    def make(owner: Any, *, visibility: str = "public", publish: bool = True) -> Any:
        root = tmp_path / f"scene{next(counter)}"
        root.mkdir()
        path = small_glb(root)
        with path.open("rb") as fh, django_capture_on_commit_callbacks(execute=True):
            scene, version = services.scene_create(
                owner=owner,
                name=f"scene of {owner.username}",
                visibility=visibility,
                upload=File(fh, name="scene.glb"),
            )
        version.refresh_from_db()
        assert version.status == "ready", version.report
        if publish:
            scene = services.scene_publish(scene=scene, version=version)
        scene.refresh_from_db()
        return scene

    return make
