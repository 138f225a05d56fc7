"""Where a stream runs: choosing a worker (sticky per session, else least loaded), (re)assigning
a stream and telling the worker to start it, the queue of streams waiting for capacity, and a
stream's end (which frees capacity for the queue).

The worker registry, the users' stream commands and the worker's reports all move streams
through these functions, so this module imports none of theirs.
"""

import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from apps.core.events import run_on_commit
from apps.core.instruments import stream_forget
from apps.sessions.selectors import session_scene_playback
from apps.streaming.ice import ice_config
from apps.streaming.models import Stream, StreamingWorker
from apps.streaming.selectors import session_voice_muted, streams_queued
from apps.streaming.services.delivery import to_client, to_worker
from workers.protocol import RUNGS, QualityRequest, StreamStart, StreamStop

logger = logging.getLogger(__name__)


def dead_after() -> timedelta:
    """A worker silent this long is dead (``MORPHEUS_WORKER_DEAD_AFTER_S``)."""
    return timedelta(seconds=float(settings.MORPHEUS_WORKER_DEAD_AFTER_S))


def queue_ttl() -> timedelta:
    return timedelta(seconds=float(settings.MORPHEUS_QUEUE_TTL_S))


def _live_workers(exclude: set[uuid.UUID]) -> QuerySet[StreamingWorker]:
    cutoff = timezone.now() - dead_after()
    return (
        StreamingWorker.objects.filter(
            status=StreamingWorker.Status.ONLINE, last_heartbeat__gte=cutoff
        )
        .exclude(channel_name="")
        .exclude(id__in=exclude)
    )


def _active_streams(workers: QuerySet[StreamingWorker]) -> dict[uuid.UUID, int]:
    return dict(
        Stream.objects.filter(worker__in=workers.values("id"), status__in=Stream.ACTIVE)
        .values_list("worker")
        .annotate(n=Count("id"))
    )


# pg_advisory_xact_lock(int, int)'s first key for a session's placements (a key space of
# its own: the one-bigint advisory locks, as session creation's, never meet it).
_SESSION_PLACEMENT_LOCK = 0x504C4143  # "PLAC"
# How long a placement waits for its session's turn before it goes on without it.
_SESSION_TURN_WAIT = "500ms"


def session_turn_lock(session_id: uuid.UUID) -> tuple[int, int]:
    """The two keys of ``pg_advisory_xact_lock`` that a session's placements take turns on."""
    return _SESSION_PLACEMENT_LOCK, int.from_bytes(session_id.bytes[:4], "big", signed=True)


def _session_placements_take_turns(session_id: uuid.UUID) -> None:
    """Placements of one session take turns, so that a second participant starting at the same
    instant sees the first one's stream and follows it to the same worker (the scene loaded
    once). The wait is bounded (``lock_timeout``, in a savepoint): a placement that does not
    get the turn within it, or that PostgreSQL picks to break a deadlock (a transaction placing
    a dead worker's streams holds several sessions' turns), goes on without it: stickiness
    lost, nothing else."""
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # One round trip; the timeout is put back for the rest of the transaction.
            cursor.execute(
                f"SET LOCAL lock_timeout = '{_SESSION_TURN_WAIT}'; "
                "SELECT pg_advisory_xact_lock(%s, %s); SET LOCAL lock_timeout = DEFAULT",
                list(session_turn_lock(session_id)),
            )
    except OperationalError:
        logger.info("placement for session %s went on without its turn", session_id)


# Rounds over the ranked candidates while the free ones are all locked (each by another
# placement's short transaction or a heartbeat's UPDATE), and the pause before each round.
# Past them a placement waits for the best candidate's lock instead.
_LOCK_ROUNDS_PAUSE_S = (0.0, 0.01, 0.05, 0.2)
_FULL = "full"


class _NoSlot(Exception):
    """Rolls the lock's savepoint back (which releases the row lock)."""


def _lock_if_free(
    worker_id: uuid.UUID, exclude: set[uuid.UUID], *, wait: bool = False
) -> StreamingWorker | str | None:
    """The worker's row, locked, when it is still live with a free slot counted under the lock;
    ``_FULL`` when it is gone or has no slot left; None when another transaction holds the row
    (and not ``wait``).

    The lock is taken in a savepoint that is rolled back unless the worker is returned: a
    placement keeps no lock on a worker it did not take, so two of them cannot each hold a
    full worker the other waits for.
    """
    rows = _live_workers(exclude).filter(pk=worker_id)
    try:
        with transaction.atomic():
            locked = rows.select_for_update(no_key=True, skip_locked=not wait).first()
            if locked is None:
                return None if not wait and rows.exists() else _FULL
            active = Stream.objects.filter(worker=locked, status__in=Stream.ACTIVE).count()
            if active >= locked.max_streams:
                raise _NoSlot
            return locked
    except _NoSlot:
        return _FULL
    except OperationalError:
        if not wait:
            raise
        # A deadlock (this transaction already holds another worker's row, as a dead worker's
        # failover does): PostgreSQL broke it here; the stream queues instead.
        logger.warning("placement on worker %s gave way to a deadlock", worker_id)
        return _FULL


def worker_choose(
    *, session_id: uuid.UUID, exclude: set[uuid.UUID] | None = None
) -> StreamingWorker | None:
    """The worker for a new stream of ``session_id``: the one already rendering the session
    while it has capacity (sticky), else the least-loaded live worker; None when full.

    The ranking reads without locks. Only the chosen worker's row is locked (FOR NO KEY UPDATE,
    which foreign-key checks of stream writes do not wait for) and its streams recounted under
    the lock, so two placements cannot both take its last slot. SKIP LOCKED sends concurrent
    placements to the next-ranked workers instead of queueing them behind one another: the
    earlier lock over every live worker row serialised all placements (benchmarks/RESULTS.md,
    "Issue 23: simulated workers"). Only when the free workers stay locked for a few rounds (one
    worker left, say) does a placement wait for the best one's lock, as all of them once did.
    """
    exclude = exclude or set()
    _session_placements_take_turns(session_id)
    live = _live_workers(exclude)
    active = _active_streams(live)
    # Tuples, not model instances: at a thousand workers the ranking is most of a placement.
    free = [
        (worker_id, max_streams, load, name)
        for worker_id, max_streams, load, name in live.values_list(
            "id", "max_streams", "load", "name"
        )
        if active.get(worker_id, 0) < max_streams
    ]
    if not free:
        return None
    sticky = set(
        Stream.objects.filter(
            session_id=session_id, status__in=Stream.ACTIVE, worker__in=[w[0] for w in free]
        ).values_list("worker_id", flat=True)
    )
    # Ties between equally loaded workers go by a hash of (session, worker) (rendezvous
    # hashing), not by name: concurrent placements of different sessions start from different
    # workers instead of all trying the first one and walking down the same list past each
    # other's locks, and one session's placements still prefer the same worker.
    ranked = [
        w[0]
        for w in sorted(
            free,
            key=lambda w: (
                w[0] not in sticky,
                active.get(w[0], 0) / max(w[1], 1),
                w[2],
                hash((session_id.int, w[0].int)),
            ),
        )
    ]
    for pause in _LOCK_ROUNDS_PAUSE_S:
        time.sleep(pause)
        busy = []
        for worker_id in ranked:
            locked = _lock_if_free(worker_id, exclude)
            if isinstance(locked, StreamingWorker):
                return locked
            if locked is None:
                busy.append(worker_id)
        if not busy:
            return None
        ranked = busy
    locked = _lock_if_free(ranked[0], exclude, wait=True)
    return locked if isinstance(locked, StreamingWorker) else None


def _scene_url(stream: Stream) -> str:
    version = getattr(stream.session, "scene_version", None)
    if version is None:
        return "pattern:"  # no scene: the worker streams its synthetic test pattern
    # The checksum is the worker's cache key: the same version is downloaded once per worker.
    checksum = version.streamed_checksum
    suffix = f"?sha256={checksum}" if checksum else ""
    return f"/api/morpheus/worker/scenes/{version.pk}/file{suffix}"


def initial_rung(stream: Stream) -> str:
    if stream.pinned_quality:
        return stream.pinned_quality
    default = settings.DEFAULT_QUALITY
    rung = default if default in RUNGS else "1080p"
    if stream.max_quality and list(RUNGS).index(rung) < list(RUNGS).index(stream.max_quality):
        return stream.max_quality
    return rung


def quality_request(stream: Stream) -> QualityRequest:
    return QualityRequest(
        stream_id=str(stream.id),
        max_quality=stream.max_quality or None,
        pinned_quality=stream.pinned_quality or None,
        max_bitrate_kbps=stream.max_bitrate_kbps,
    )


def _playback(stream: Stream) -> dict[str, Any]:
    """The session's animation clip now (apps/streaming/clips.py) and its scene's scale."""
    playback = session_scene_playback(session=stream.session)
    if not playback:
        return {}
    spawn = playback.get("spawn") or {}
    return {"clip": str(playback["clip"]), "world_scale": float(spawn.get("scale") or 1.0)}


def stream_start_message(stream: Stream) -> StreamStart:
    ice = ice_config(user_id=stream.user_id)  # fresh TURN credentials for each (re)start
    return StreamStart(
        stream_id=str(stream.id),
        session_id=str(stream.session_id),
        scene_url=_scene_url(stream),
        quality=stream.quality_rung or initial_rung(stream),
        codec=stream.codec,
        participant_id=str(stream.participant_id),
        target_fps=int(settings.TARGET_FRAME_RATE),
        max_quality=stream.max_quality or None,
        pinned_quality=stream.pinned_quality or None,
        ice_servers=ice["ice_servers"],
        ice_transport_policy=ice["ice_transport_policy"],
        voice_muted=session_voice_muted(session_id=stream.session_id),
        **_playback(stream),
    )


def stream_assign(stream: Stream, worker: StreamingWorker) -> None:
    """Put ``stream`` (row locked by the caller) on ``worker`` and tell the worker to start it."""
    stream.worker = worker
    stream.status = Stream.Status.STARTING
    stream.placements += 1
    stream.placed_at = timezone.now()
    stream.offer = None
    stream.save()
    to_worker(worker, stream_start_message(stream))
    if stream.max_bitrate_kbps:
        to_worker(worker, quality_request(stream))


def stream_place_again(stream: Stream, *, exclude: set[uuid.UUID], reason: str) -> None:
    """Move a stream off its worker (dead, restarted, shutting down); it fails when no other
    worker has room."""
    worker = worker_choose(session_id=stream.session_id, exclude=exclude)
    if worker is None:
        stream_finish(stream, Stream.Status.FAILED, f"{reason}: no_capacity")
        return
    logger.info("stream %s moves to worker %s (%s)", stream.id, worker.name, reason)
    stream_assign(stream, worker)


def queue_place() -> None:
    """Give freed capacity to queued streams, oldest first."""
    for stream in streams_queued().select_for_update(skip_locked=True).order_by("created_at")[:50]:
        worker = worker_choose(session_id=stream.session_id)
        if worker is None:
            return
        stream_assign(stream, worker)


def queue_expire(now: Any) -> None:
    """Fail the streams that waited longer than ``MORPHEUS_QUEUE_TTL_S`` for capacity."""
    expired = streams_queued().filter(created_at__lt=now - queue_ttl())
    for stream in expired.select_related("session")[:100]:
        with transaction.atomic():
            stream_finish(stream, Stream.Status.FAILED, "no_capacity")


def stream_finish(stream: Stream, status: str, reason: str) -> None:
    """End a stream, whoever ends it (its user, the platform, its worker, no capacity): its
    worker (unless dead) and its owner are told, and its metrics series are dropped."""
    worker = stream.worker
    stream.status = status
    stream.stop_reason = reason[:256]
    stream.stopped_at = timezone.now()
    stream.save(update_fields=["status", "stop_reason", "stopped_at", "updated_at"])
    if worker is not None and worker.status != StreamingWorker.Status.DEAD:
        to_worker(worker, StreamStop(stream_id=str(stream.id), reason=reason[:256]))
    to_client(stream, "morpheus:render_stopped", {"stream_id": str(stream.id), "reason": reason})
    run_on_commit(lambda: stream_forget(str(stream.id)), what="stream_forget")
