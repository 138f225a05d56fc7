"""Writes for scenes (the creator's authoring): create, upload a version, configure, publish,
update, delete, reprocess.

Uploads arrive as Django ``File`` objects (a ``TemporaryUploadedFile`` from the API, a plain
``File`` from the management command) and go to the default storage in chunks; the checksum
is computed by the upload handler while the bytes arrive, or here in chunks. Each new version
is queued for processing after commit (``apps.scenes.tasks`` runs ``apps.scenes.pipeline``,
which this module does not import).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max

from apps.core.errors import Conflict, InvalidInput, PayloadTooLarge
from apps.scenes.models import Container, Scene, SceneVersion, VersionStatus, Visibility
from apps.scenes.tasks import process_scene_version
from apps.scenes.uploads import CHUNK

logger = logging.getLogger(__name__)

_STORED_NAME = {
    Container.GLB: "scene.glb",
    Container.GLTF: "scene.gltf",
    Container.ZIP: "scene.zip",
    Container.FBX: "scene.fbx",
    Container.OBJ: "scene.obj",
}


def max_upload_bytes() -> int:
    return int(getattr(settings, "SCENE_MAX_UPLOAD_MB", 200)) * 1024 * 1024


# --------------------------------------------------------------------------- uploads


def container_for(filename: str) -> Container:
    suffix = Path(filename).suffix.lower()
    for container in Container:
        if suffix == f".{container.value}":
            return container
    raise InvalidInput(
        "Upload a .glb file, a .zip holding one .gltf with its .bin and images, "
        "or an .fbx or .obj file (converted to glTF on upload).",
        code="unsupported_format",
        detail={"file": filename[:255]},
    )


def _sha256(upload: File) -> str:
    digest = getattr(upload, "sha256", None)  # set by SceneUploadHandler while receiving
    if isinstance(digest, str):
        return digest
    h = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks(CHUNK):
        h.update(chunk)
    upload.seek(0)
    return h.hexdigest()


def _check_size(upload: File) -> int:
    size = int(upload.size or 0)
    if size > max_upload_bytes():
        raise PayloadTooLarge(
            f"Scene files may be at most {max_upload_bytes() // (1024 * 1024)} MiB.",
            detail={"max_bytes": max_upload_bytes(), "size": size},
        )
    if size == 0:
        raise InvalidInput("The uploaded file is empty.", code="empty_file")
    return size


def _store_version(*, scene: Scene, uploaded_by: Any, upload: File) -> SceneVersion:
    original = Path(upload.name or "upload").name[:255]
    container = container_for(original)
    size = _check_size(upload)
    checksum = _sha256(upload)
    number = (scene.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = SceneVersion(
        scene=scene,
        number=number,
        uploaded_by=uploaded_by,
        container=container,
        original_name=original,
        checksum=checksum,
        size_bytes=size,
    )
    # Storage streams the file (a temporary upload is moved, not re-read into memory).
    version.file.save(_STORED_NAME[container], upload, save=False)
    if container in (Container.ZIP, Container.FBX, Container.OBJ):
        version.source.name = version.file.name  # the creator's original, as uploaded
    version.save()
    _enqueue(version.id)
    logger.info(
        "scene %s: version %d uploaded (%s, %d bytes, sha256 %s)",
        scene.id,
        number,
        container,
        size,
        checksum[:12],
    )
    return version


def _enqueue(version_id: uuid.UUID) -> None:
    """Queue processing once the version's row is committed (a worker must see it)."""
    process_scene_version.delay_on_commit(str(version_id))


def _delete_stored(names: list[str]) -> None:
    for name in {n for n in names if n}:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete stored file %s", name, exc_info=True)


@transaction.atomic
def scene_create(
    *,
    owner: Any,
    name: str,
    upload: File,
    description: str = "",
    visibility: str = Visibility.PRIVATE,
) -> tuple[Scene, SceneVersion]:
    """A new scene with its first version, queued for processing after commit."""
    container_for(Path(upload.name or "").name)  # fail before any row is written
    scene = Scene.objects.create(
        owner=owner, name=name, description=description, visibility=visibility
    )
    version = _store_version(scene=scene, uploaded_by=owner, upload=upload)
    return scene, version


@transaction.atomic
def scene_version_create(*, scene: Scene, uploaded_by: Any, upload: File) -> SceneVersion:
    """A new version of ``scene``; numbers are serialised by locking the scene row."""
    scene = Scene.objects.select_for_update().get(pk=scene.pk)
    return _store_version(scene=scene, uploaded_by=uploaded_by, upload=upload)


def scene_update(*, scene: Scene, data: dict[str, Any]) -> Scene:
    allowed = {"name", "description", "visibility"}
    changed = [k for k in data if k in allowed]
    for key in changed:
        setattr(scene, key, data[key])
    if changed:
        scene.save(update_fields=[*changed, "updated_at"])
    return scene


SPAWN_SCALES = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)  # scene units per metre a creator may set


def _spawn_point(value: Any) -> dict[str, Any]:
    bad = InvalidInput(
        "A spawn point is {position: [x, y, z], yaw, pitch} with finite numbers.",
        code="invalid_spawn",
    )
    if not isinstance(value, dict):
        raise bad
    position, yaw, pitch = value.get("position"), value.get("yaw", 0.0), value.get("pitch", 0.0)
    numbers = [*(position if isinstance(position, list) else []), yaw, pitch]
    if (
        not isinstance(position, list)
        or len(position) != 3
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < 1e7 for v in numbers
        )
    ):
        raise bad
    return {
        "position": [float(v) for v in position],
        "yaw": float(yaw),
        "pitch": max(-1.5, min(1.5, float(pitch))),
    }


def scene_version_configure(
    *,
    version: SceneVersion,
    default_clip: str | None = None,
    spawn: dict[str, Any] | None = None,
) -> SceneVersion:
    """The creator's choices for a processed version: the animation clip sessions play until
    their host switches (a name processing found, or "" for the first), and where viewers start
    (``{}``: the computed default; ``{"camera": i}``; ``{"framing": true}``; ``{"point":
    {position, yaw, pitch}}``; any of them with ``"scale"``, scene units per metre)."""
    if version.status != VersionStatus.READY:
        raise Conflict(
            "Only a processed (ready) version can be configured.",
            code="version_not_ready",
            detail={"status": version.status},
        )
    changed: list[str] = []
    if default_clip is not None:
        names = [c.get("name") for c in version.clips or []]
        if default_clip and default_clip not in names:
            raise InvalidInput(
                "This version has no animation clip of that name.",
                code="unknown_clip",
                detail={"clips": names},
            )
        version.default_clip = default_clip
        changed.append("default_clip")
    if spawn is not None:
        choice: dict[str, Any] = {}
        cameras = (version.spawn or {}).get("cameras") or []
        if "camera" in spawn:
            camera = spawn["camera"]
            if not isinstance(camera, int) or isinstance(camera, bool):
                raise InvalidInput("camera is an index.", code="invalid_spawn")
            if not 0 <= camera < len(cameras):
                raise InvalidInput(
                    "This version has no camera with that index.",
                    code="unknown_camera",
                    detail={"cameras": [c.get("name") for c in cameras]},
                )
            choice["camera"] = camera
        elif spawn.get("framing") is True:
            choice["framing"] = True
        elif "point" in spawn:
            choice["point"] = _spawn_point(spawn["point"])
        if "scale" in spawn and spawn["scale"] is not None:
            if spawn["scale"] not in SPAWN_SCALES:
                raise InvalidInput(
                    f"scale is one of {', '.join(str(v) for v in SPAWN_SCALES)}.",
                    code="invalid_spawn",
                )
            choice["scale"] = float(spawn["scale"])
        version.spawn_choice = choice
        changed.append("spawn_choice")
    if changed:
        version.save(update_fields=changed)
    return version


@transaction.atomic
def scene_delete(*, scene: Scene) -> None:
    names: list[str] = []
    for v in scene.versions.all():
        names += [v.file.name, v.source.name, v.thumbnail.name, v.render_file.name]
    scene.delete()
    transaction.on_commit(lambda: _delete_stored(names))


@transaction.atomic
def scene_publish(*, scene: Scene, version: SceneVersion) -> Scene:
    scene = Scene.objects.select_for_update().get(pk=scene.pk)
    version = SceneVersion.objects.select_for_update().get(pk=version.pk)
    if version.scene_id != scene.pk:
        raise InvalidInput("That version belongs to another scene.", code="version_mismatch")
    if version.status != VersionStatus.READY:
        raise Conflict(
            "Only a ready version can be published.",
            code="version_not_ready",
            detail={"status": version.status},
        )
    scene.published_version = version
    scene.save(update_fields=["published_version", "updated_at"])
    logger.info("scene %s: published version %d", scene.id, version.number)
    return scene


def scene_unpublish(*, scene: Scene) -> Scene:
    scene.published_version = None
    scene.save(update_fields=["published_version", "updated_at"])
    return scene


@transaction.atomic
def scene_version_reprocess(*, version: SceneVersion) -> SceneVersion:
    """Run processing again (e.g. after raising limits or fixing the renderer)."""
    version = SceneVersion.objects.select_for_update().get(pk=version.pk)
    if Scene.objects.filter(published_version=version).exists():
        raise Conflict("Unpublish the version before reprocessing it.", code="version_published")
    old_files = [version.thumbnail.name, version.render_file.name]
    version.status = VersionStatus.UPLOADED
    version.attempts = 0
    version.progress = 0
    version.stage = ""
    version.error = ""
    version.report = {}
    version.thumbnail = ""
    version.render_file = ""
    version.render_checksum = ""
    version.processed_at = None
    version.save()
    transaction.on_commit(lambda: _delete_stored(old_files))
    _enqueue(version.id)
    return version
