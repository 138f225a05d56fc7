"""The processing task and services: idempotency, crash recovery, resource limits, progress,
upload handling, and the selectors the streaming side uses."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.core.files import File
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.errors import Conflict, NotFound, PayloadTooLarge
from apps.scenes import selectors, services
from apps.scenes.models import SceneVersion, VersionStatus
from apps.scenes.tasks import process_scene_version
from apps.scenes.tests.helpers import small_glb
from apps.scenes.uploads import SceneUploadHandler
from apps.scenes.validation.tests import corpus

pytestmark = pytest.mark.django_db


def _uploaded(owner: Any, path: Path) -> SceneVersion:
    """A version stored but not processed (its on_commit task is not run)."""
    with path.open("rb") as fh:
        _, version = services.scene_create(owner=owner, name="s", upload=File(fh, name=path.name))
    return version


def test_task_on_a_finished_version_is_a_no_op(make_user: Any, make_scene: Any) -> None:
    scene = make_scene(make_user("creator"), publish=False)
    version = scene.versions.get()
    before = (version.processed_at, version.attempts, version.thumbnail.name)
    assert process_scene_version.delay(str(version.id)).get() is None
    version.refresh_from_db()
    assert (version.processed_at, version.attempts, version.thumbnail.name) == before

    version.status = VersionStatus.REJECTED
    version.save()
    assert process_scene_version.delay(str(version.id)).get() is None
    version.refresh_from_db()
    assert version.status == VersionStatus.REJECTED


def test_crashed_processing_run_is_resumed(make_user: Any, package: Any) -> None:
    version = _uploaded(make_user("creator"), package(small_glb))
    # What a worker that died mid-run leaves behind (acks_late redelivers the message).
    SceneVersion.objects.filter(pk=version.pk).update(status="processing", attempts=1)
    assert process_scene_version.delay(str(version.id)).get() == "ready"
    version.refresh_from_db()
    assert version.attempts == 2
    assert version.thumbnail.name


def test_processing_gives_up_after_max_attempts(make_user: Any, package: Any) -> None:
    version = _uploaded(make_user("creator"), package(small_glb))
    SceneVersion.objects.filter(pk=version.pk).update(status="processing", attempts=3)
    process_scene_version.delay(str(version.id))
    version.refresh_from_db()
    assert version.status == VersionStatus.REJECTED
    assert [i["code"] for i in version.report["issues"]] == ["processing_failed"]


def test_task_for_a_deleted_version_does_nothing(make_user: Any, package: Any) -> None:
    version = _uploaded(make_user("creator"), package(small_glb))
    version.scene.delete()
    assert process_scene_version.delay(str(version.id)).get() is None


def test_memory_limit_is_enforced(settings: Any, make_user: Any, package: Any) -> None:
    settings.SCENE_PROCESS_MEMORY_MB = 64  # not even numpy's shared libraries fit
    version = _uploaded(make_user("creator"), package(small_glb))
    process_scene_version.delay(str(version.id))
    version.refresh_from_db()
    assert version.status == VersionStatus.REJECTED
    assert version.report["issues"][0]["code"] == "resource_limit_exceeded"
    assert "64 MiB" in version.report["issues"][0]["message"]


def test_time_limit_is_enforced(settings: Any, make_user: Any, package: Any) -> None:
    settings.SCENE_PROCESS_TIMEOUT_S = 0
    version = _uploaded(make_user("creator"), package(small_glb))
    process_scene_version.delay(str(version.id))
    version.refresh_from_db()
    assert version.status == VersionStatus.REJECTED
    assert version.report["issues"][0]["code"] == "processing_timeout"


def test_validator_limits_come_from_settings(settings: Any, make_user: Any, package: Any) -> None:
    settings.SCENE_GLTF_LIMITS = {"max_triangles": 11}
    version = _uploaded(make_user("creator"), package(small_glb))  # 12 triangles
    process_scene_version.delay(str(version.id))
    version.refresh_from_db()
    assert version.status == VersionStatus.REJECTED
    errors = [i["code"] for i in version.report["issues"] if i["severity"] == "error"]
    assert errors == ["too_many_triangles"]
    assert version.triangles == 12  # stats are still reported for a rejected scene


def test_progress_is_recorded_while_processing(make_user: Any, package: Any) -> None:
    version = _uploaded(make_user("creator"), package(small_glb))
    with CaptureQueriesContext(connection) as queries:
        process_scene_version.delay(str(version.id))
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    for stage in ("fetching", "validating", "rendering"):
        assert any(f"'{stage}'" in sql for sql in updates), stage
    version.refresh_from_db()
    assert (version.progress, version.stage) == (100, "done")
    assert version.processing_started_at <= version.processed_at


def test_reprocess(make_user: Any, make_scene: Any) -> None:
    scene = make_scene(make_user("creator"))
    version = scene.versions.get()
    with pytest.raises(Conflict):
        services.scene_version_reprocess(version=version)  # published: unpublish first
    services.scene_unpublish(scene=scene)
    old_thumbnail = version.thumbnail.name
    version = services.scene_version_reprocess(version=version)
    assert version.status == VersionStatus.UPLOADED
    process_scene_version.delay(str(version.id))
    version.refresh_from_db()
    assert version.status == VersionStatus.READY
    assert version.thumbnail.name != old_thumbnail


def test_upload_handler_streams_hashes_and_aborts_past_the_limit() -> None:
    handler = SceneUploadHandler(max_bytes=10)
    handler.handle_raw_input(None, {}, 100, b"x")  # declared size within limit + form overhead
    handler.new_file("file", "scene.glb", "model/gltf-binary", None)
    handler.receive_data_chunk(b"12345", 0)
    uploaded = handler.file_complete(5)
    assert uploaded is not None
    assert uploaded.sha256 == hashlib.sha256(b"12345").hexdigest()  # type: ignore[attr-defined]
    assert uploaded.temporary_file_path()  # on disk, not in memory

    liar = SceneUploadHandler(max_bytes=10)
    liar.handle_raw_input(None, {}, 5, b"x")  # the header claims 5 bytes
    liar.new_file("file", "scene.glb", "model/gltf-binary", None)
    liar.receive_data_chunk(b"123456", 0)
    with pytest.raises(PayloadTooLarge):
        liar.receive_data_chunk(b"123456", 6)

    with pytest.raises(PayloadTooLarge):
        SceneUploadHandler(max_bytes=10).handle_raw_input(None, {}, 10 + 2 * 1024 * 1024, b"x")


def test_streaming_selectors(make_user: Any, make_scene: Any, package: Any) -> None:
    owner = make_user("creator")
    scene = make_scene(owner)
    version = scene.versions.get()
    assert selectors.scene_version_streamable(version_id=version.id) == version
    assert selectors.scene_version_latest_published(scene_id=scene.id) == version
    path = selectors.scene_version_file_path(version)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == version.checksum

    draft = _uploaded(owner, package(corpus.make_textured_glb))
    with pytest.raises(NotFound):
        selectors.scene_version_streamable(version_id=draft.id)  # not processed, not published
    services.scene_unpublish(scene=scene)
    with pytest.raises(NotFound):
        selectors.scene_version_streamable(version_id=version.id)
    with pytest.raises(NotFound):
        selectors.scene_version_latest_published(scene_id=scene.id)
