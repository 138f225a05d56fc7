"""The worker registry: worker identities and tokens, a worker's (re)registration with what it
can do, its heartbeats, and declaring silent workers dead (their streams move elsewhere)."""

import logging
import secrets
import uuid
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.errors import InvalidInput
from apps.streaming.models import Stream, StreamingWorker, token_digest
from apps.streaming.services.delivery import to_worker
from apps.streaming.services.placement import (
    dead_after,
    queue_expire,
    queue_place,
    stream_place_again,
)
from workers.protocol import StreamStop

logger = logging.getLogger(__name__)


WORKER_NAME_MAX = 64


@transaction.atomic
def worker_create(*, name: str) -> tuple[StreamingWorker, str]:
    """Create a worker; returns it and its token (shown once, stored only as a hash)."""
    name = name.strip()
    if not name or len(name) > WORKER_NAME_MAX:
        raise InvalidInput(f"The worker name must be 1..{WORKER_NAME_MAX} characters.")
    if StreamingWorker.objects.filter(name=name).exists():
        raise InvalidInput("A worker with this name exists.", code="worker_exists")
    token = "wk_" + secrets.token_urlsafe(32)
    worker = StreamingWorker.objects.create(name=name, token_hash=token_digest(token))
    return worker, token


def worker_token_rotate(*, worker: StreamingWorker) -> str:
    token = "wk_" + secrets.token_urlsafe(32)
    worker.token_hash = token_digest(token)
    worker.save(update_fields=["token_hash"])
    return token


def worker_authenticate(*, token: str) -> StreamingWorker | None:
    if not token or len(token) > 256:
        return None
    return StreamingWorker.objects.filter(token_hash=token_digest(token)).first()


def _int_capability(capabilities: dict[str, Any], key: str, default: int) -> int:
    value = capabilities.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1024:
        raise InvalidInput(f"capabilities.{key} must be an integer 0..1024")
    return value


@transaction.atomic
def worker_register(
    *, worker_id: uuid.UUID, channel_name: str, capabilities: dict[str, Any]
) -> StreamingWorker:
    """A worker (re)connected and reported what it can do.

    Streams the platform has on this worker but the worker does not report as running
    (``capabilities["active_streams"]``) were lost with its previous process: place them again.
    """
    worker = StreamingWorker.objects.select_for_update().get(pk=worker_id)
    running = {str(s) for s in capabilities.get("active_streams", []) if isinstance(s, str)}
    now = timezone.now()
    worker.capabilities = capabilities
    worker.max_streams = _int_capability(capabilities, "max_streams", 1)
    worker.channel_name = channel_name
    worker.status = StreamingWorker.Status.ONLINE
    worker.last_heartbeat = now
    worker.connected_at = now
    worker.load = 0.0
    worker.save()
    lost = [
        s
        for s in Stream.objects.select_for_update().filter(worker=worker, status__in=Stream.ACTIVE)
        if str(s.id) not in running
    ]
    for stream in lost:
        stream_place_again(stream, exclude={worker.id}, reason="worker_restarted")
    # Streams it still runs but that moved elsewhere (it was declared dead meanwhile): stop.
    assigned = {
        str(sid)
        for sid in Stream.objects.filter(worker=worker, status__in=Stream.ACTIVE).values_list(
            "id", flat=True
        )
    }
    for stale in sorted(running - assigned):
        to_worker(worker, StreamStop(stream_id=stale, reason="moved"))
    queue_place()
    return worker


def worker_heartbeat(*, worker_id: uuid.UUID, load: float) -> bool:
    """Record a heartbeat; False when the worker was declared dead meanwhile (it must
    reconnect and register again, which tells it which of its streams moved away)."""
    updated = (
        StreamingWorker.objects.filter(pk=worker_id)
        .exclude(status=StreamingWorker.Status.DEAD)
        .update(last_heartbeat=timezone.now(), load=load)
    )
    return bool(updated)


def worker_disconnected(*, worker_id: uuid.UUID, channel_name: str) -> None:
    """The control socket closed. Its streams stay put until the worker is declared dead
    (it may reconnect within the grace period and report them running)."""
    StreamingWorker.objects.filter(pk=worker_id, channel_name=channel_name).exclude(
        status=StreamingWorker.Status.DEAD
    ).update(status=StreamingWorker.Status.OFFLINE, channel_name="")


def worker_drain(*, worker: StreamingWorker) -> None:
    StreamingWorker.objects.filter(pk=worker.pk, status=StreamingWorker.Status.ONLINE).update(
        status=StreamingWorker.Status.DRAINING
    )


def workers_reap(*, now: Any = None) -> list[uuid.UUID]:
    """Declare silent workers dead and place their streams on other workers.

    Called on every heartbeat any worker sends, by ``manage.py reap_workers`` and by the
    Celery beat task, so it is idempotent and cheap when nobody is silent.
    """
    now = now or timezone.now()
    cutoff = now - dead_after()
    stale = StreamingWorker.objects.exclude(status=StreamingWorker.Status.DEAD).filter(
        Q(last_heartbeat__lt=cutoff) | Q(last_heartbeat__isnull=True, created_at__lt=cutoff)
    )
    reaped: list[uuid.UUID] = []
    if not stale.exists():  # the common case, without taking locks
        queue_expire(now)
        return reaped
    with transaction.atomic():
        for worker in stale.select_for_update(skip_locked=True).order_by("id"):
            worker.status = StreamingWorker.Status.DEAD
            worker.channel_name = ""
            worker.save(update_fields=["status", "channel_name"])
            reaped.append(worker.id)
            streams = Stream.objects.select_for_update().filter(
                worker=worker, status__in=Stream.ACTIVE
            )
            moved = 0
            for stream in streams.order_by("created_at"):
                stream_place_again(stream, exclude={worker.id}, reason="worker_dead")
                moved += 1
            logger.warning(
                "worker %s is dead (silent since %s); %d streams moved",
                worker.name,
                worker.last_heartbeat,
                moved,
            )
    queue_expire(now)
    return reaped
