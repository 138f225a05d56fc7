"""The session's animation clip: the host switches it for everyone.

``hermes:clip_change`` ``{clip}`` arrives on the session WebSocket (``events.on_clip_change``);
only the session's host may send it (others get ``error`` ``not_host``), and the clip must be
one the scene version's processing found (``unknown_clip``; ``no_animation`` for a static
scene). The choice is kept on the session (``VRSession.animation_clip``), so a stream started
later (a new viewer, a failover) begins on it (``stream_start.clip``); every worker streaming the
session now is told (``clip_change``) and restarts its session clock on the new clip, so all
viewers see the same frame of it at the same time; every socket of the session gets
``hermes:clip_changed`` ``{clip, by}``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import transaction

from apps.core.errors import InvalidInput, NotFound, PermissionDenied
from apps.core.events import send_event_on_commit
from apps.sessions.extensions import session_group
from apps.sessions.models import ParticipantRole, VRSession
from apps.streaming.models import Stream, StreamingWorker
from apps.streaming.services import worker_group
from workers.protocol import ClipChange, message_to_dict

logger = logging.getLogger(__name__)


@transaction.atomic
def session_clip_change(
    *, session_id: uuid.UUID, role: str, participant_id: int, clip: Any
) -> dict[str, Any]:
    """The host switches the session's clip; returns the ``hermes:clip_changed`` data."""
    if role != ParticipantRole.HOST:
        raise PermissionDenied("Only the session's host may switch the animation.", code="not_host")
    if not isinstance(clip, str) or len(clip) > 128:
        raise InvalidInput("clip must be a clip name (a string).", code="invalid_clip")
    session = (
        VRSession.objects.select_for_update(of=("self",))
        .select_related("scene_version")
        .filter(pk=session_id)
    ).first()
    if session is None:
        raise NotFound("No such session.", code="session_not_found")
    version = session.scene_version
    names = [str(c.get("name")) for c in (version.clips if version else None) or []]
    if not names:
        raise InvalidInput("This session's scene has no animation.", code="no_animation")
    if clip not in names:
        raise InvalidInput(
            "The scene has no animation clip of that name.",
            code="unknown_clip",
            detail={"clips": names},
        )
    session.animation_clip = clip
    session.save(update_fields=["animation_clip"])
    workers = StreamingWorker.objects.filter(
        streams__session_id=session_id, streams__status__in=Stream.ACTIVE
    ).distinct()
    message = message_to_dict(ClipChange(str(session_id), clip))
    for worker in workers:
        send_event_on_commit(
            worker_group(worker.id), {"type": "worker.command", "message": message}
        )
    data = {"clip": clip, "by": participant_id}
    send_event_on_commit(
        session_group(session_id),
        {"type": "client.event", "event": "hermes:clip_changed", "data": data},
    )
    logger.info("session %s: host switched the animation to %r", session_id, clip)
    return data
