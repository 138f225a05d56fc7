"""Reads for scenes: who may see what, and what the streaming side may load.

Visibility rules (querysets are restricted, so anything outside them is a 404):
- ``scenes.manage_any_scene`` (operators, admins): every scene and version;
- the owner: their own scenes and all their versions;
- anyone with ``scenes.view_scene`` (participants, creators): published scenes that are
  ``public`` (listed) or ``unlisted`` (by id only), and only their published version.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q, QuerySet

from apps.accounts.permissions import caller_has_perm
from apps.core.errors import NotFound
from apps.scenes.models import Scene, SceneVersion, VersionStatus, Visibility

logger = logging.getLogger(__name__)

MANAGE_ANY = "scenes.manage_any_scene"


def can_manage_any(user: Any, identity: Any) -> bool:
    return caller_has_perm(user, identity, MANAGE_ANY)


def scene_may(user: Any, identity: Any, scene: Scene, codename: str) -> bool:
    """Whether the caller may use ``scenes.<codename>`` on ``scene`` (own scene, or any)."""
    if can_manage_any(user, identity):
        return True
    return scene.owner_id == user.pk and caller_has_perm(user, identity, f"scenes.{codename}")


def scene_list_visible(*, user: Any, identity: Any, listing: bool = True) -> QuerySet[Scene]:
    """Scenes the caller may see; ``listing`` leaves out other people's unlisted scenes."""
    qs = Scene.objects.select_related("owner", "published_version")
    if can_manage_any(user, identity):
        return qs
    if not caller_has_perm(user, identity, "scenes.view_scene"):
        return qs.filter(owner=user) if user.is_authenticated else qs.none()
    shared = [Visibility.PUBLIC] if listing else [Visibility.PUBLIC, Visibility.UNLISTED]
    return qs.filter(
        Q(owner=user)
        | Q(
            published_version__isnull=False,
            published_version__status=VersionStatus.READY,
            visibility__in=shared,
        )
    )


def scene_get_visible(*, user: Any, identity: Any, scene_id: uuid.UUID) -> Scene:
    scene = scene_list_visible(user=user, identity=identity, listing=False).filter(pk=scene_id)
    found = scene.first()
    if found is None:
        raise NotFound("No such scene.", code="scene_not_found")
    return found


def scene_version_list_visible(*, user: Any, identity: Any, scene: Scene) -> QuerySet[SceneVersion]:
    """Versions of a scene the caller already may see: all for its managers, else the
    published one."""
    qs = scene.versions.select_related("scene")
    if scene_may(user, identity, scene, "view_sceneversion"):
        return qs
    return qs.filter(pk=scene.published_version_id, status=VersionStatus.READY)


def scene_version_get_visible(
    *, user: Any, identity: Any, scene: Scene, version_id: uuid.UUID
) -> SceneVersion:
    version = (
        scene_version_list_visible(user=user, identity=identity, scene=scene)
        .filter(pk=version_id)
        .first()
    )
    if version is None:
        raise NotFound("No such version.", code="version_not_found")
    return version


# --------------------------------------------------------------------------- streaming


def scene_version_streamable(*, version_id: uuid.UUID | str) -> SceneVersion:
    """A version that may be streamed: ready and the published version of its scene."""
    version = (
        SceneVersion.objects.select_related("scene")
        .filter(pk=version_id, status=VersionStatus.READY, scene__published_version=version_id)
        .first()
    )
    if version is None:
        raise NotFound("No such published scene version.", code="scene_version_not_found")
    return version


def scene_version_latest_published(*, scene_id: uuid.UUID | str) -> SceneVersion:
    """The published version of a scene (only one is published at a time)."""
    scene = Scene.objects.filter(pk=scene_id).only("published_version").first()
    if scene is None or scene.published_version_id is None:
        raise NotFound("The scene has no published version.", code="scene_version_not_found")
    return scene_version_streamable(version_id=scene.published_version_id)


def _cache_dir() -> Path:
    return Path(getattr(settings, "SCENE_CACHE_DIR", settings.BASE_DIR / "var" / "scene-cache"))


def scene_version_file_path(version: SceneVersion) -> Path:
    """A local path of the file workers load: the render-ready derivative when processing made
    one (decoded or converted), else the main file as uploaded (.glb, .gltf or .zip).

    Local storage: the stored file itself. Remote storage (S3 via django-storages): a copy in
    ``SCENE_CACHE_DIR/<version id>/`` downloaded once and checked against the stored size;
    versions are immutable, so a complete copy never goes stale.
    """
    name = version.render_file.name or version.file.name
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:
        pass
    target_dir = _cache_dir() / str(version.id)
    target = target_dir / Path(name).name
    if target.exists() and target.stat().st_size == default_storage.size(name):
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + f".{uuid.uuid4().hex}.part")
    digest = hashlib.sha256()
    with default_storage.open(name, "rb") as src, partial.open("wb") as out:
        for chunk in iter(lambda: src.read(1024 * 1024), b""):
            digest.update(chunk)
            out.write(chunk)
    shutil.move(partial, target)  # atomic rename: readers never see half a file
    logger.info("cached scene version %s (sha256 %s)", version.id, digest.hexdigest()[:12])
    return target
