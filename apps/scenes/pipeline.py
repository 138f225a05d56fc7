"""Scene processing: run one uploaded version through the sandboxed child and store the result.

``scene_version_process`` claims a version, copies its file out of storage, runs
``apps.scenes.processing`` as a resource-limited child (``apps.scenes.sandbox``), and marks the
version ready (thumbnail, stats, render-ready derivative) or rejected (the report says why).
``apps.scenes.tasks`` calls it from Celery; ``apps.scenes.services`` (the creator's writes)
queues it and never imports it, so the two do not depend on each other.
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
from django.db import transaction
from django.utils import timezone

from apps.scenes import sandbox
from apps.scenes.models import SceneVersion, VersionStatus
from apps.scenes.processing import REPORT_NAME, THUMBNAIL_NAME
from apps.scenes.uploads import CHUNK
from apps.scenes.validation.report import Issue, grouped_report
from workers.rendering.gltf_package import GltfLimits

logger = logging.getLogger(__name__)


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


def gltf_limits() -> GltfLimits:
    """Validator limits: ``SCENE_GLTF_LIMITS`` (a dict of ``GltfLimits`` fields) over defaults."""
    overrides: dict[str, Any] = dict(getattr(settings, "SCENE_GLTF_LIMITS", {}) or {})
    known = {f.name for f in fields(GltfLimits)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"SCENE_GLTF_LIMITS has unknown keys: {sorted(unknown)}")
    return GltfLimits(**overrides)


@dataclass
class _ChildResult:
    report: dict[str, Any] | None
    thumbnail: bytes | None
    failure: str = ""  # issue code when the child did not produce a report
    failure_message: str = ""
    render_file: Path | None = None  # the derivative workers load, still in the work dir


def _error(code: str, message: str) -> dict[str, Any]:
    """A report entry (an ``Issue``) for a failure of processing itself, not of the file."""
    return asdict(Issue(code=code, severity="error", message=message))


def _reject(version: SceneVersion, code: str, message: str) -> SceneVersion:
    """Mark ``version`` rejected with one error of processing (no report from the child)."""
    return _finish(
        version,
        report={"ok": False, "issues": [], "stats": {}, "khronos": None},
        extra=[_error(code, message)],
    )


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
            _reject(
                version,
                "processing_failed",
                f"Processing was attempted {version.attempts} times without finishing.",
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
                return _reject(current, result.failure, result.failure_message)
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
        _reject(version, code, message)
