"""Celery tasks of the scenes app (thin: the work is in ``pipeline.scene_version_process``).

Resource bounds, outermost first:
- Celery ``time_limit`` (hard, kills the worker process) and ``soft_time_limit`` (raises in the
  task, which rejects the version with ``processing_timeout``) sit above
- the child process's wall-clock timeout (``SCENE_PROCESS_TIMEOUT_S``, default 240 s) and its
  ``RLIMIT_AS`` address-space cap (``SCENE_PROCESS_MEMORY_MB``, default 3072) and ``RLIMIT_CPU``,
  set with ``resource.setrlimit`` inside the child before it imports the validator or renderer.
``acks_late`` plus the project's ``task_reject_on_worker_lost``: a worker that dies mid-run has
its message redelivered; the service resumes a version left ``processing`` and gives up after
``SCENE_PROCESS_MAX_ATTEMPTS`` runs.
"""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from apps.scenes import pipeline

logger = logging.getLogger(__name__)

_CHILD_TIMEOUT = int(getattr(settings, "SCENE_PROCESS_TIMEOUT_S", 240))


@shared_task(
    name="scenes.process_scene_version",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=_CHILD_TIMEOUT + 60,
    time_limit=_CHILD_TIMEOUT + 120,
    ignore_result=True,
)
def process_scene_version(version_id: str) -> str | None:
    """Process one scene version; returns its final status, or None when nothing was done."""
    vid = uuid.UUID(version_id)
    try:
        version = pipeline.scene_version_process(version_id=vid)
    except SoftTimeLimitExceeded:
        logger.warning("scene version %s hit the soft time limit", vid)
        pipeline.scene_version_fail(
            version_id=vid,
            code="processing_timeout",
            message="Processing took too long; simplify the scene.",
        )
        return "rejected"
    return version.status if version is not None else None
