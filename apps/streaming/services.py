"""Writes of the streaming control plane: workers, placement, streams, signalling, stats.

Every event others see (a command to a worker, an event to a client) is sent after commit
through ``apps.core.events.send_event_on_commit``; the recipient is always named explicitly:
a worker's group for commands, ``member_group(session, user)`` for the stream's owner.
Stats reports and their retention are in ``apps/streaming/stats.py``.
"""

import logging
import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.core.errors import InvalidInput, NotFound, ServiceUnavailable
from apps.core.events import run_on_commit, send_event_on_commit
from apps.monitoring.metrics import stream_forget
from apps.sessions.extensions import member_group
from apps.streaming.models import Stream, StreamingWorker, token_digest
from workers.protocol import (
    CODECS,
    RUNGS,
    QualityRequest,
    StreamStart,
    StreamStop,
    VoiceMute,
    message_to_dict,
)

logger = logging.getLogger(__name__)

QUALITIES = ("auto", *RUNGS)
WORKER_NAME_MAX = 64


def dead_after() -> timedelta:
    """A worker silent this long is dead (``MORPHEUS_WORKER_DEAD_AFTER_S``)."""
    return timedelta(seconds=float(settings.MORPHEUS_WORKER_DEAD_AFTER_S))


def queue_ttl() -> timedelta:
    return timedelta(seconds=float(settings.MORPHEUS_QUEUE_TTL_S))


def worker_group(worker_id: uuid.UUID) -> str:
    """Channel-layer group of a worker's control socket."""
    return f"morpheus.worker.{worker_id.hex}"


# ---------------------------------------------------------------- delivery


def _to_worker(worker: StreamingWorker, message: Any) -> None:
    send_event_on_commit(
        worker_group(worker.id), {"type": "worker.command", "message": message_to_dict(message)}
    )


def _to_client(stream: Stream, event: str, data: dict[str, Any]) -> None:
    send_event_on_commit(
        member_group(stream.session_id, stream.user_id),
        {"type": "client.event", "event": event, "data": data},
    )


# ---------------------------------------------------------------- workers


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
        _place_again(stream, exclude={worker.id}, reason="worker_restarted")
    # Streams it still runs but that moved elsewhere (it was declared dead meanwhile): stop.
    assigned = {
        str(sid)
        for sid in Stream.objects.filter(worker=worker, status__in=Stream.ACTIVE).values_list(
            "id", flat=True
        )
    }
    for stale in sorted(running - assigned):
        _to_worker(worker, StreamStop(stream_id=stale, reason="moved"))
    _place_queued()
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
        _expire_queue(now)
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
                _place_again(stream, exclude={worker.id}, reason="worker_dead")
                moved += 1
            logger.warning(
                "worker %s is dead (silent since %s); %d streams moved",
                worker.name,
                worker.last_heartbeat,
                moved,
            )
    _expire_queue(now)
    return reaped


# ---------------------------------------------------------------- placement


def _live_workers(exclude: set[uuid.UUID]) -> list[StreamingWorker]:
    cutoff = timezone.now() - dead_after()
    # Row locks serialise concurrent placements: two requests cannot both take the last slot.
    return list(
        StreamingWorker.objects.select_for_update()
        .filter(status=StreamingWorker.Status.ONLINE, last_heartbeat__gte=cutoff)
        .exclude(channel_name="")
        .exclude(id__in=exclude)
        .order_by("id")
    )


def worker_choose(
    *, session_id: uuid.UUID, exclude: set[uuid.UUID] | None = None
) -> StreamingWorker | None:
    """The worker for a new stream of ``session_id``: the one already rendering the session
    while it has capacity (sticky), else the least-loaded live worker; None when full."""
    workers = _live_workers(exclude or set())
    if not workers:
        return None
    active = dict(
        Stream.objects.filter(worker__in=workers, status__in=Stream.ACTIVE)
        .values_list("worker")
        .annotate(n=Count("id"))
    )
    free = [w for w in workers if active.get(w.id, 0) < w.max_streams]
    if not free:
        return None
    sticky = set(
        Stream.objects.filter(
            session_id=session_id, status__in=Stream.ACTIVE, worker__in=free
        ).values_list("worker_id", flat=True)
    )
    candidates = [w for w in free if w.id in sticky] or free
    return min(
        candidates,
        key=lambda w: (active.get(w.id, 0) / max(w.max_streams, 1), w.load, w.name),
    )


def _scene_url(stream: Stream) -> str:
    version = getattr(stream.session, "scene_version", None)
    if version is None:
        return "pattern:"  # no scene: the worker streams its synthetic test pattern
    # The checksum is the worker's cache key: the same version is downloaded once per worker.
    checksum = version.streamed_checksum
    suffix = f"?sha256={checksum}" if checksum else ""
    return f"/api/morpheus/worker/scenes/{version.pk}/file{suffix}"


def _initial_rung(stream: Stream) -> str:
    if stream.pinned_quality:
        return stream.pinned_quality
    default = settings.DEFAULT_QUALITY
    rung = default if default in RUNGS else "1080p"
    if stream.max_quality and list(RUNGS).index(rung) < list(RUNGS).index(stream.max_quality):
        return stream.max_quality
    return rung


def _assign(stream: Stream, worker: StreamingWorker) -> None:
    stream.worker = worker
    stream.status = Stream.Status.STARTING
    stream.placements += 1
    stream.placed_at = timezone.now()
    stream.offer = None
    stream.save()
    _to_worker(
        worker,
        StreamStart(
            stream_id=str(stream.id),
            session_id=str(stream.session_id),
            scene_url=_scene_url(stream),
            quality=stream.quality_rung or _initial_rung(stream),
            codec=stream.codec,
            participant_id=str(stream.participant_id),
            target_fps=int(settings.TARGET_FRAME_RATE),
            max_quality=stream.max_quality or None,
            pinned_quality=stream.pinned_quality or None,
            voice_muted=_voice_muted(stream.session_id),
            **_playback(stream),
        ),
    )
    if stream.max_bitrate_kbps:
        _to_worker(worker, _quality_request(stream))


def _place_again(stream: Stream, *, exclude: set[uuid.UUID], reason: str) -> None:
    worker = worker_choose(session_id=stream.session_id, exclude=exclude)
    if worker is None:
        _finish(stream, Stream.Status.FAILED, f"{reason}: no_capacity")
        return
    logger.info("stream %s moves to worker %s (%s)", stream.id, worker.name, reason)
    _assign(stream, worker)


def _queued() -> Any:
    return Stream.objects.filter(status=Stream.Status.PENDING, worker__isnull=True)


def queue_position(stream: Stream) -> int:
    return _queued().filter(created_at__lte=stream.created_at).count()


def _place_queued() -> None:
    """Give freed capacity to queued streams, oldest first."""
    for stream in _queued().select_for_update(skip_locked=True).order_by("created_at")[:50]:
        worker = worker_choose(session_id=stream.session_id)
        if worker is None:
            return
        _assign(stream, worker)


def _expire_queue(now: Any) -> None:
    expired = _queued().filter(created_at__lt=now - queue_ttl())
    for stream in expired.select_related("session")[:100]:
        with transaction.atomic():
            _finish(stream, Stream.Status.FAILED, "no_capacity")


# ---------------------------------------------------------------- streams (users)


def _quality_request(stream: Stream) -> QualityRequest:
    return QualityRequest(
        stream_id=str(stream.id),
        max_quality=stream.max_quality or None,
        pinned_quality=stream.pinned_quality or None,
        max_bitrate_kbps=stream.max_bitrate_kbps,
    )


def _validate_quality(quality: str | None) -> str | None:
    if quality is None:
        return None
    if quality not in QUALITIES:
        raise InvalidInput("quality must be one of " + ", ".join(QUALITIES), code="invalid_quality")
    return quality


def stream_start(
    *,
    user: Any,
    session_id: uuid.UUID,
    quality: str | None = None,
    codec: str | None = None,
    signin: str = "",
) -> tuple[Stream, bool]:
    """Start (or return the running) stream of ``user`` in a session; True if created.
    ``signin`` (``apps.accounts.signins``) is the sign-in asking: the stream ends with it.

    Raises ``NotFound`` when the user is not a current participant, and ``ServiceUnavailable``
    (``no_capacity``, with the queue position) when no worker has room: the stream stays
    queued (committed) and starts (``morpheus:render_started``) as soon as capacity frees up.
    """
    stream, created = _stream_start(
        user=user, session_id=session_id, quality=quality, codec=codec, signin=signin
    )
    if stream.worker_id is None:
        raise _NoCapacity(stream, queue_position(stream))
    return stream, created


@transaction.atomic
def _stream_start(
    *, user: Any, session_id: uuid.UUID, quality: str | None, codec: str | None, signin: str
) -> tuple[Stream, bool]:
    from apps.sessions.selectors import participant_get, session_get_for_member

    session = session_get_for_member(session_id=session_id, user=user)
    participant = participant_get(session_id=session.id, user=user)
    quality = _validate_quality(quality)
    codec = codec or "h264"
    if codec not in CODECS:
        raise InvalidInput("codec must be one of " + ", ".join(CODECS), code="invalid_codec")
    existing = (
        Stream.objects.select_for_update()
        .filter(participant=participant, status__in=Stream.ACTIVE)
        .first()
    )
    if existing is not None:
        created, stream = False, existing
        if signin and stream.signin != signin:  # now held by the sign-in that asked last
            stream.signin = signin
            stream.save(update_fields=["signin", "updated_at"])
    else:
        stream = Stream.objects.create(
            participant=participant,
            session=session,
            user=user,
            signin=signin,
            codec=codec,
            pinned_quality=quality if quality in RUNGS else "",
        )
        created = True
        worker = worker_choose(session_id=session.id)
        if worker is not None:
            _assign(stream, worker)
    return stream, created


class _NoCapacity(ServiceUnavailable):
    code = "no_capacity"
    message = "No streaming worker has free capacity; the stream is queued."

    def __init__(self, stream: Stream, position: int) -> None:
        super().__init__(
            detail={
                "stream_id": str(stream.id),
                "queue_position": position,
                "retry_after": 5,
            },
            headers={"Retry-After": "5"},
        )


def _finish(stream: Stream, status: str, reason: str) -> None:
    worker = stream.worker
    stream.status = status
    stream.stop_reason = reason[:256]
    stream.stopped_at = timezone.now()
    stream.save(update_fields=["status", "stop_reason", "stopped_at", "updated_at"])
    if worker is not None and worker.status != StreamingWorker.Status.DEAD:
        _to_worker(worker, StreamStop(stream_id=str(stream.id), reason=reason[:256]))
    _to_client(stream, "morpheus:render_stopped", {"stream_id": str(stream.id), "reason": reason})
    run_on_commit(lambda: stream_forget(str(stream.id)), what="stream_forget")


@transaction.atomic
def stream_stop(*, stream: Stream, reason: str = "user_stopped") -> Stream:
    stream = (
        Stream.objects.select_for_update(of=("self",)).select_related("worker").get(pk=stream.pk)
    )
    if stream.is_active:
        _finish(stream, Stream.Status.STOPPED, reason)
        _place_queued()
    return stream


def _streams_stop(reason: str, **match: Any) -> int:
    with transaction.atomic():
        streams = list(
            Stream.objects.select_for_update(of=("self",))
            .select_related("worker")
            .filter(status__in=Stream.ACTIVE, **match)
        )
        for stream in streams:
            _finish(stream, Stream.Status.STOPPED, reason)
        if streams:
            _place_queued()
    return len(streams)


def streams_stop_for_session(*, session_id: uuid.UUID, reason: str = "session_ended") -> int:
    return _streams_stop(reason, session_id=session_id)


def streams_stop_for_user(*, user_id: int, reason: str) -> int:
    """Stop every stream of a user whose access is gone (a disabled account): closing their
    sockets is not enough, their headset would keep streaming and sending poses over WebRTC."""
    return _streams_stop(reason, user_id=user_id)


def streams_stop_for_signins(*, signins: list[str], reason: str) -> int:
    """Stop the streams the ended sign-ins started (``apps.accounts.signins.signin_ended``):
    the sign-out closed their sockets, but a headset would keep streaming over WebRTC."""
    return _streams_stop(reason, signin__in=[s for s in signins if s])


def streams_stop_for_participant(*, participant_id: int, reason: str = "left") -> int:
    """Stop a participant's streams once they left the session (the API or their socket)."""
    return _streams_stop(reason, participant_id=participant_id)


def streams_stop_unless_allowed(*, user_id: int, reason: str = "permission_revoked") -> int:
    """Stop a user's streams once their roles no longer allow streaming (a role taken away in
    the admin panel or by ``user_set_roles``): like a disabled account, their headset would
    otherwise keep streaming over WebRTC after their sockets learnt the new roles."""
    from django.contrib.auth import get_user_model  # accounts imports streaming's signals

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is not None and user.is_active and user.has_perm("streaming.add_stream"):
        return 0
    return _streams_stop(reason, user_id=user_id)


@transaction.atomic
def stream_quality_adjust(
    *,
    stream: Stream,
    quality: str | None = None,
    max_quality: str | None = None,
    max_bitrate_kbps: int | None = None,
) -> Stream:
    """The user's pin (``quality``: a rung, or ``auto`` to clear), cap and bitrate ceiling."""
    stream = (
        Stream.objects.select_for_update(of=("self",)).select_related("worker").get(pk=stream.pk)
    )
    if not stream.is_active:
        raise InvalidInput("The stream is not running.", code="stream_not_active")
    if _validate_quality(quality) is not None:
        stream.pinned_quality = "" if quality == "auto" else str(quality)
    if _validate_quality(max_quality) is not None:
        stream.max_quality = "" if max_quality == "auto" else str(max_quality)
    if max_bitrate_kbps is not None:
        if not 100 <= max_bitrate_kbps <= 500_000:
            raise InvalidInput("max_bitrate_kbps must be 100..500000", code="invalid_bitrate")
        stream.max_bitrate_kbps = max_bitrate_kbps
    stream.save(update_fields=["pinned_quality", "max_quality", "max_bitrate_kbps", "updated_at"])
    if stream.worker is not None:
        _to_worker(stream.worker, _quality_request(stream))
    return stream


def _playback(stream: Stream) -> dict[str, Any]:
    """The session's animation clip now (apps/streaming/clips.py) and its scene's scale."""
    from apps.sessions.selectors import session_scene_playback

    playback = session_scene_playback(session=stream.session)
    if not playback:
        return {}
    spawn = playback.get("spawn") or {}
    return {"clip": str(playback["clip"]), "world_scale": float(spawn.get("scale") or 1.0)}


def _voice_muted(session_id: uuid.UUID) -> list[str]:
    from apps.sessions.models import Participant

    muted = Participant.objects.filter(session_id=session_id, voice_muted=True)
    return [str(pk) for pk in muted.values_list("pk", flat=True)]


def voice_mute(*, session_id: uuid.UUID, participant_id: int, muted: bool) -> int:
    """An operator mutes (or unmutes) a participant's voice in a session: every worker that
    streams the session drops that participant's audio before anyone hears it. Returns how many
    workers were told. The mute is kept on the participant, so a worker that starts streaming
    the session later (another stream, a failover) is told with its ``stream_start``."""
    from apps.sessions.models import Participant

    found = Participant.objects.filter(pk=participant_id, session_id=session_id)
    if not found.update(voice_muted=muted):
        raise NotFound("No such participant in this session.", code="participant_not_found")
    workers = StreamingWorker.objects.filter(
        streams__session_id=session_id, streams__status__in=Stream.ACTIVE
    ).distinct()
    message = VoiceMute(str(session_id), str(participant_id), muted)
    told = 0
    for worker in workers:
        _to_worker(worker, message)
        told += 1
    logger.info(
        "voice of participant %s in session %s %s (%d workers)",
        participant_id,
        session_id,
        "muted" if muted else "unmuted",
        told,
    )
    return told


# ---------------------------------------------------------------- worker -> platform


def _worker_stream(worker_id: uuid.UUID, stream_id: str, *, lock: bool = False) -> Stream | None:
    """The active stream ``stream_id`` if ``worker_id`` runs it; None otherwise (logged)."""
    try:
        sid = uuid.UUID(stream_id)
    except ValueError:
        sid = None
    qs = Stream.objects.select_related("worker")
    if lock:
        qs = qs.select_for_update(of=("self",))
    stream = (
        qs.filter(pk=sid, worker_id=worker_id, status__in=Stream.ACTIVE).first() if sid else None
    )
    if stream is None:
        logger.warning(
            "worker %s sent a message for stream %.64s it does not run", worker_id, stream_id
        )
    return stream


@transaction.atomic
def stream_offer(*, worker_id: uuid.UUID, stream_id: str, sdp: dict[str, str]) -> bool:
    stream = _worker_stream(worker_id, stream_id, lock=True)
    if stream is None or sdp.get("type") != "offer":
        return False
    assert stream.worker is not None
    stream.offer = sdp
    stream.encoder = str(stream.worker.capabilities.get("encoder", ""))[:32]
    stream.save(update_fields=["offer", "encoder", "updated_at"])
    _to_client(stream, "morpheus:render_started", render_started_data(stream))
    return True


def render_started_data(stream: Stream) -> dict[str, Any]:
    return {
        "stream_id": str(stream.id),
        "offer": stream.offer,
        "quality": stream.quality_rung or _initial_rung(stream),
        "encoder": stream.encoder,
        "placement": stream.placements,
    }


def stream_worker_candidate(
    *, worker_id: uuid.UUID, stream_id: str, candidate: dict[str, Any]
) -> bool:
    stream = _worker_stream(worker_id, stream_id)
    if stream is None:
        return False
    _to_client(stream, "morpheus:signal", {"stream_id": str(stream.id), "candidate": candidate})
    return True


@transaction.atomic
def stream_stopped_by_worker(*, worker_id: uuid.UUID, stream_id: str, reason: str) -> bool:
    stream = _worker_stream(worker_id, stream_id, lock=True)
    if stream is None:
        return False
    if reason == "worker_shutdown":
        # A worker going away cleanly (deploy, scale-in): it gets no new streams, and its
        # streams continue on another worker (the client gets a new render_started).
        StreamingWorker.objects.filter(pk=worker_id).exclude(
            status=StreamingWorker.Status.DEAD
        ).update(status=StreamingWorker.Status.DRAINING)
        _place_again(stream, exclude={worker_id}, reason=reason)
        return True
    failed = reason.startswith(("error", "failed"))
    status = Stream.Status.FAILED if failed else Stream.Status.STOPPED
    stream.worker = None  # the worker already closed it: no stream_stop back
    _finish(stream, status, reason or "worker_stopped")
    _place_queued()
    return True


# ---------------------------------------------------------------- client -> worker


def stream_client_signal(
    *, user_id: int, session_id: uuid.UUID, stream_id: str, data: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Validate a client's answer/candidate for its own stream; returns (worker group,
    message) to relay. Raises NotFound for a stream that is not the caller's."""
    from workers.protocol import ProtocolError, parse_worker_message

    stream = _client_stream(user_id, session_id, stream_id)
    message: dict[str, Any] = {"type": "signal", "stream_id": str(stream.id)}
    if data.get("answer") is not None:
        message["sdp"] = data["answer"]
    if data.get("candidate") is not None:
        message["candidate"] = data["candidate"]
    try:
        signal = parse_worker_message(message)
    except ProtocolError as exc:
        raise InvalidInput(exc.message, code="invalid_signal") from exc
    sdp = getattr(signal, "sdp", None)
    if sdp is not None and sdp["type"] != "answer":
        raise InvalidInput("clients send answers, not offers", code="invalid_signal")
    assert stream.worker_id is not None
    return worker_group(stream.worker_id), {
        "type": "worker.command",
        "message": message_to_dict(signal),  # type: ignore[arg-type]
    }


def _client_stream(user_id: int, session_id: uuid.UUID, stream_id: Any) -> Stream:
    try:
        sid = uuid.UUID(str(stream_id))
    except ValueError as exc:
        raise NotFound("No such stream.", code="stream_not_found") from exc
    stream = (
        Stream.objects.select_related("worker")
        .filter(pk=sid, user_id=user_id, session_id=session_id, status__in=Stream.ACTIVE)
        .exclude(worker=None)
        .first()
    )
    if stream is None:
        raise NotFound("No such stream.", code="stream_not_found")
    return stream


def stream_client_quality(*, user_id: int, session_id: uuid.UUID, data: dict[str, Any]) -> Stream:
    stream = _client_stream(user_id, session_id, data.get("stream_id"))
    bitrate = data.get("max_bitrate_kbps")
    if bitrate is not None and (isinstance(bitrate, bool) or not isinstance(bitrate, int)):
        raise InvalidInput("max_bitrate_kbps must be an integer", code="invalid_bitrate")
    for key in ("quality", "max_quality"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InvalidInput(f"{key} must be a string", code="invalid_quality")
    return stream_quality_adjust(
        stream=stream,
        quality=data.get("quality"),
        max_quality=data.get("max_quality"),
        max_bitrate_kbps=bitrate,
    )
