"""Writes for scenes: create, upload a version, process it, publish, update, delete.

Uploads arrive as Django ``File`` objects (a ``TemporaryUploadedFile`` from the API, a plain
``File`` from the management command) and go to the default storage in chunks; the checksum
is computed by the upload handler while the bytes arrive, or here in chunks. Processing runs
in a resource-limited child process (``apps.scenes.processing``); this module owns the rows
and the stored files around it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.core.errors import Conflict, InvalidInput, PayloadTooLarge
from apps.scenes import sandbox
from apps.scenes.models import Container, Scene, SceneVersion, VersionStatus, Visibility
from apps.scenes.processing import REPORT_NAME, THUMBNAIL_NAME
from apps.scenes.validation.report import grouped_report
from workers.rendering.gltf_package import GltfLimits

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
_STORED_NAME = {
    Container.GLB: "scene.glb",
    Container.GLTF: "scene.gltf",
    Container.ZIP: "scene.zip",
    Container.FBX: "scene.fbx",
    Container.OBJ: "scene.obj",
}


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ProcessingConfig:
    """Processing knobs, read from settings with defaults (none of them is required)."""

    timeout_s: int = 240  # wall clock for the child; the Celery limits sit above it
    memory_mb: int = 3072  # RLIMIT_AS of the child (Mesa llvmpipe needs ~1 GiB to start)
    max_attempts: int = 3  # runs that may start (crash redeliveries included) before giving up
    thumbnail_size: tuple[int, int] = (512, 288)
    tool_timeout_s: int = 120  # each external tool run (validator, decoder, converter)
    max_output_mb: int = 1024  # RLIMIT_FSIZE of the child: no converted/decoded file grows past

    @classmethod
    def from_settings(cls) -> ProcessingConfig:
        return cls(
            timeout_s=int(getattr(settings, "SCENE_PROCESS_TIMEOUT_S", cls.timeout_s)),
            memory_mb=int(getattr(settings, "SCENE_PROCESS_MEMORY_MB", cls.memory_mb)),
            max_attempts=int(getattr(settings, "SCENE_PROCESS_MAX_ATTEMPTS", cls.max_attempts)),
            thumbnail_size=tuple(getattr(settings, "SCENE_THUMBNAIL_SIZE", cls.thumbnail_size)),  # type: ignore[arg-type]
            tool_timeout_s=int(getattr(settings, "SCENE_TOOL_TIMEOUT_S", cls.tool_timeout_s)),
            max_output_mb=int(getattr(settings, "SCENE_PROCESS_MAX_OUTPUT_MB", cls.max_output_mb)),
        )


def max_upload_bytes() -> int:
    return int(getattr(settings, "SCENE_MAX_UPLOAD_MB", 200)) * 1024 * 1024


def gltf_limits() -> GltfLimits:
    """Validator limits: ``SCENE_GLTF_LIMITS`` (a dict of ``GltfLimits`` fields) over defaults."""
    overrides: dict[str, Any] = dict(getattr(settings, "SCENE_GLTF_LIMITS", {}) or {})
    known = {f.name for f in fields(GltfLimits)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"SCENE_GLTF_LIMITS has unknown keys: {sorted(unknown)}")
    return GltfLimits(**overrides)


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
    from apps.scenes.tasks import process_scene_version  # tasks import this module

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


# --------------------------------------------------------------------------- processing


@dataclass
class _ChildResult:
    report: dict[str, Any] | None
    thumbnail: bytes | None
    failure: str = ""  # issue code when the child did not produce a report
    failure_message: str = ""
    render_file: Path | None = None  # the derivative workers load, still in the work dir


def _issue(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "severity": "error", "message": message, "pointer": ""}


def _set_progress(version_id: uuid.UUID, stage: str, progress: int) -> None:
    SceneVersion.objects.filter(pk=version_id, status=VersionStatus.PROCESSING).update(
        stage=stage[:32], progress=max(0, min(int(progress), 99))
    )


def _copy_to_local(version: SceneVersion, dest: Path) -> Path:
    """The main file, copied in chunks from storage into a directory of its own (a .gltf is
    read with its directory as the package root, so it must sit there alone)."""
    path = dest / Path(version.file.name).name
    with version.file.open("rb") as src, path.open("wb") as out:
        for chunk in src.chunks(CHUNK):
            out.write(chunk)
    return path


# How running out of the child's address space shows up: Python, C++ (Mesa), glibc, the
# dynamic loader (mapping a shared library) and OpenBLAS each say it differently.
_OUT_OF_MEMORY_SIGNS = (
    "memoryerror",
    "bad_alloc",
    "cannot allocate memory",
    "memory allocation",
    "failed to map segment",
    "out of memory",
)


def _run_child(
    version_id: uuid.UUID, package: Path, out_dir: Path, config: ProcessingConfig
) -> _ChildResult:
    limits = asdict(gltf_limits())
    cmd = [
        sys.executable,
        "-m",
        "apps.scenes.processing",
        str(package),
        str(out_dir),
        "--limits",
        json.dumps(limits),
        "--memory-mb",
        str(config.memory_mb),
        "--cpu-seconds",
        str(config.timeout_s),
        "--thumb-size",
        f"{config.thumbnail_size[0]}x{config.thumbnail_size[1]}",
        "--tool-timeout",
        str(config.tool_timeout_s),
        "--max-output-mb",
        str(config.max_output_mb),
    ]
    try:
        # Its own environment, read-only upload and code, a private writable out_dir, no
        # network (apps.scenes.sandbox; SCENE_SANDBOX says what happens without bubblewrap).
        child = sandbox.wrap(
            cmd, read_only=[package.parent], writable=[out_dir], cwd=Path(settings.BASE_DIR)
        )
    except sandbox.SandboxUnavailable:
        return _ChildResult(
            None,
            None,
            "sandbox_unavailable",
            "Scene processing is disabled on this server: its sandbox (bubblewrap) cannot run "
            "here. An operator must fix it (see deploy/README.md), then reprocess the version.",
        )
    stderr_path = out_dir / "stderr.txt"
    timed_out = threading.Event()
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            child.argv,
            cwd=str(settings.BASE_DIR),
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=child.env,
        )

        def kill() -> None:
            timed_out.set()
            sandbox.kill(proc)

        timer = threading.Timer(config.timeout_s, kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    msg = json.loads(line)
                    _set_progress(version_id, str(msg["stage"]), int(msg["progress"]))
                except (ValueError, KeyError, TypeError):
                    logger.debug("processing child said: %r", line[:200])
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                sandbox.kill(proc)
                proc.wait()
    err_tail = stderr_path.read_bytes()[-4000:].decode("utf-8", "replace")
    report_path = out_dir / REPORT_NAME
    if timed_out.is_set() or rc in (-24, 152):  # killed by our timer, or SIGXCPU
        return _ChildResult(
            None,
            None,
            "processing_timeout",
            f"Processing took longer than {config.timeout_s} s; simplify the scene.",
        )
    if rc != 0 or not report_path.exists():
        if any(sign in err_tail.lower() for sign in _OUT_OF_MEMORY_SIGNS):
            return _ChildResult(
                None,
                None,
                "resource_limit_exceeded",
                f"Processing the scene needed more than {config.memory_mb} MiB of memory.",
            )
        logger.error("scene processing child failed (rc %s): %s", rc, err_tail[-1500:])
        return _ChildResult(
            None, None, "processing_failed", f"Processing failed unexpectedly (exit {rc})."
        )
    thumb_path = out_dir / THUMBNAIL_NAME
    report = json.loads(report_path.read_text())
    render_name = (report.get("processing") or {}).get("render_file")
    render = out_dir / Path(str(render_name)).name if render_name else None
    return _ChildResult(
        report,
        thumb_path.read_bytes() if thumb_path.exists() else None,
        render_file=render if render is not None and render.is_file() else None,
    )


def _start(version_id: uuid.UUID, config: ProcessingConfig) -> SceneVersion | None:
    """Claim the version for a run; None when there is nothing to do."""
    with transaction.atomic():
        version = SceneVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None:
            logger.info("scene version %s vanished before processing", version_id)
            return None
        if version.status in (VersionStatus.READY, VersionStatus.REJECTED):
            return None  # idempotent: a duplicate or redelivered message
        if version.attempts >= config.max_attempts:
            # A run that keeps killing the worker (acks_late redelivers it) must stop somewhere.
            _finish(
                version,
                report={"ok": False, "issues": [], "stats": {}, "khronos": None},
                extra=[
                    _issue(
                        "processing_failed",
                        f"Processing was attempted {version.attempts} times without finishing.",
                    )
                ],
            )
            return None
        version.status = VersionStatus.PROCESSING
        version.attempts += 1
        version.progress = 5
        version.stage = "starting"
        version.error = ""
        version.processing_started_at = timezone.now()
        version.save(
            update_fields=[
                "status",
                "attempts",
                "progress",
                "stage",
                "error",
                "processing_started_at",
            ]
        )
        return version


_STAT_FIELDS = ("vertices", "triangles", "nodes", "meshes", "materials", "textures")


def _finish(
    version: SceneVersion,
    *,
    report: dict[str, Any],
    extra: list[dict[str, Any]] | None = None,
    thumbnail: bytes | None = None,
    render_file: Path | None = None,
) -> SceneVersion:
    report = dict(report)
    report["issues"] = list(report.get("issues") or []) + list(extra or [])
    ok = bool(report.get("ok")) and not extra and thumbnail is not None
    report = grouped_report(report)  # a few issues of each code, counted by code
    report["ok"] = ok
    stats = report.get("stats") or {}
    for name in _STAT_FIELDS:
        setattr(version, name, int(stats.get(name) or 0))
    version.texture_pixels = int(stats.get("texture_pixels") or 0)
    version.bounds_min = stats.get("bounds_min")
    version.bounds_max = stats.get("bounds_max")
    version.clips = list(stats.get("clips") or [])
    version.spawn = stats.get("spawn")
    version.report = report
    version.status = VersionStatus.READY if ok else VersionStatus.REJECTED
    errors = [i for i in report["issues"] if i.get("severity") == "error"]
    version.error = "" if ok else "; ".join(f"{i['code']}: {i['message']}" for i in errors[:3])
    version.progress = 100
    version.stage = "done"
    version.processed_at = timezone.now()
    if thumbnail is not None and ok:
        version.thumbnail.save("thumbnail.png", ContentFile(thumbnail), save=False)
    if render_file is not None and ok:
        digest = hashlib.sha256()
        with render_file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                digest.update(chunk)
            fh.seek(0)
            version.render_file.save("render.glb", File(fh), save=False)
        version.render_checksum = digest.hexdigest()
    version.save()
    logger.info(
        "scene version %s %s (%s)", version.id, version.status, ", ".join(i["code"] for i in errors)
    )
    return version


def scene_version_process(*, version_id: uuid.UUID) -> SceneVersion | None:
    """Validate, measure and thumbnail one version; mark it ready or rejected.

    Idempotent: a version already ready or rejected is left alone (returns None); a version
    left ``processing`` by a crashed run is processed again, up to ``max_attempts`` runs.
    """
    config = ProcessingConfig.from_settings()
    version = _start(version_id, config)
    if version is None:
        return None
    work = Path(tempfile.mkdtemp(prefix="scene-", dir=getattr(settings, "SCENE_WORK_DIR", None)))
    try:
        pkg_dir = work / "pkg"
        out_dir = work / "out"
        pkg_dir.mkdir()
        out_dir.mkdir()
        _set_progress(version.id, "fetching", 10)
        package = _copy_to_local(version, pkg_dir)
        result = _run_child(version.id, package, out_dir, config)
        with transaction.atomic():
            current = SceneVersion.objects.select_for_update().get(pk=version.pk)
            if current.status != VersionStatus.PROCESSING:
                return None  # another run finished first (a redelivered duplicate)
            if result.report is None:
                return _finish(
                    current,
                    report={"ok": False, "issues": [], "stats": {}, "khronos": None},
                    extra=[_issue(result.failure, result.failure_message)],
                )
            return _finish(
                current,
                report=result.report,
                thumbnail=result.thumbnail,
                render_file=result.render_file,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scene_version_fail(*, version_id: uuid.UUID, code: str, message: str) -> None:
    """Reject a version whose run was stopped from outside (e.g. Celery's soft time limit)."""
    with transaction.atomic():
        version = SceneVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None or version.status != VersionStatus.PROCESSING:
            return
        _finish(
            version,
            report={"ok": False, "issues": [], "stats": {}, "khronos": None},
            extra=[_issue(code, message)],
        )


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
