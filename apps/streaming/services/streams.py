"""A stream's life as its user, the platform and its worker drive it: start (or queue), quality
pins and caps, stop (one, or all of a session, user, sign-in or participant), the worker's own
stop, and an operator's voice mute in a session."""

import logging
import uuid
from typing import Any

from django.db import transaction

from apps.core.errors import InvalidInput, NotFound, ServiceUnavailable
from apps.sessions.models import Participant
from apps.sessions.selectors import participant_get, session_get_for_member
from apps.streaming.models import Stream, StreamingWorker
from apps.streaming.selectors import (
    stream_get_for_client,
    stream_get_for_worker,
    stream_queue_position,
)
from apps.streaming.services.delivery import to_worker
from apps.streaming.services.placement import (
    quality_request,
    queue_place,
    stream_assign,
    stream_finish,
    stream_place_again,
    worker_choose,
)
from workers.protocol import CODECS, RUNGS, VoiceMute

logger = logging.getLogger(__name__)


QUALITIES = ("auto", *RUNGS)


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
        raise _NoCapacity(stream, stream_queue_position(stream=stream))
    return stream, created


@transaction.atomic
def _stream_start(
    *, user: Any, session_id: uuid.UUID, quality: str | None, codec: str | None, signin: str
) -> tuple[Stream, bool]:
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
            stream_assign(stream, worker)
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


def _validate_quality(quality: str | None) -> str | None:
    if quality is None:
        return None
    if quality not in QUALITIES:
        raise InvalidInput("quality must be one of " + ", ".join(QUALITIES), code="invalid_quality")
    return quality


@transaction.atomic
def stream_stop(*, stream: Stream, reason: str = "user_stopped") -> Stream:
    stream = (
        Stream.objects.select_for_update(of=("self",)).select_related("worker").get(pk=stream.pk)
    )
    if stream.is_active:
        stream_finish(stream, Stream.Status.STOPPED, reason)
        queue_place()
    return stream


def _streams_stop(reason: str, **match: Any) -> int:
    with transaction.atomic():
        streams = list(
            Stream.objects.select_for_update(of=("self",))
            .select_related("worker")
            .filter(status__in=Stream.ACTIVE, **match)
        )
        for stream in streams:
            stream_finish(stream, Stream.Status.STOPPED, reason)
        if streams:
            queue_place()
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
        to_worker(stream.worker, quality_request(stream))
    return stream


def stream_client_quality(*, user_id: int, session_id: uuid.UUID, data: dict[str, Any]) -> Stream:
    stream = stream_get_for_client(
        user_id=user_id, session_id=session_id, stream_id=data.get("stream_id")
    )
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


@transaction.atomic
def stream_stopped_by_worker(*, worker_id: uuid.UUID, stream_id: str, reason: str) -> bool:
    stream = stream_get_for_worker(worker_id=worker_id, stream_id=stream_id, lock=True)
    if stream is None:
        return False
    if reason == "worker_shutdown":
        # A worker going away cleanly (deploy, scale-in): it gets no new streams, and its
        # streams continue on another worker (the client gets a new render_started).
        StreamingWorker.objects.filter(pk=worker_id).exclude(
            status=StreamingWorker.Status.DEAD
        ).update(status=StreamingWorker.Status.DRAINING)
        stream_place_again(stream, exclude={worker_id}, reason=reason)
        return True
    failed = reason.startswith(("error", "failed"))
    status = Stream.Status.FAILED if failed else Stream.Status.STOPPED
    stream.worker = None  # the worker already closed it: no stream_stop back
    stream_finish(stream, status, reason or "worker_stopped")
    queue_place()
    return True


def voice_mute(*, session_id: uuid.UUID, participant_id: int, muted: bool) -> int:
    """An operator mutes (or unmutes) a participant's voice in a session: every worker that
    streams the session drops that participant's audio before anyone hears it. Returns how many
    workers were told. The mute is kept on the participant, so a worker that starts streaming
    the session later (another stream, a failover) is told with its ``stream_start``."""
    found = Participant.objects.filter(pk=participant_id, session_id=session_id)
    if not found.update(voice_muted=muted):
        raise NotFound("No such participant in this session.", code="participant_not_found")
    workers = StreamingWorker.objects.filter(
        streams__session_id=session_id, streams__status__in=Stream.ACTIVE
    ).distinct()
    message = VoiceMute(str(session_id), str(participant_id), muted)
    told = 0
    for worker in workers:
        to_worker(worker, message)
        told += 1
    logger.info(
        "voice of participant %s in session %s %s (%d workers)",
        participant_id,
        session_id,
        "muted" if muted else "unmuted",
        told,
    )
    return told
