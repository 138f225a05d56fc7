"""Writes for sessions. Every event other members see is sent after commit.

Events sent here (channel-layer messages to ``session_group``, forwarded by each socket):
- ``hermes:transmit`` (``session_transmit``): to every connected member, the sender's sockets
  included, so every client applies a state change the same way.
- ``hermes:session_ended`` (``session_end``): to every connected member; their sockets close
  with code 4000. The ``session_ended`` signal fires after commit too.
- ``hermes:participant_left`` (``participant_leave``, the REST leave); the consumer sends
  ``hermes:participant_joined``/``_left`` for sockets, since it knows them.
- ``hermes.member_left`` (``participant_leave``) to the leaver's own sockets: they leave the
  session's groups, so they no longer receive its events (``hermes:transmit``...).
The ``participant_left`` signal fires after commit when someone leaves on purpose (their
streams stop).
All through ``apps.core.events.send_event_on_commit``.
"""

import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, PermissionDenied
from apps.core.events import run_on_commit, send_event_on_commit
from apps.scenes.selectors import scene_version_streamable
from apps.sessions.extensions import member_group, participant_left, session_ended, session_group
from apps.sessions.models import (
    MAX_PARTICIPANTS_LIMIT,
    Participant,
    ParticipantRole,
    SessionStatus,
    SessionVisibility,
    VRSession,
    new_invite_token,
)
from apps.sessions.poses import pose_store_forget_session
from apps.sessions.selectors import (
    LIVE_STATUSES,
    participant_as_dict,
    session_members,
    session_scene_playback,
)

logger = logging.getLogger(__name__)

MAX_STATE_BYTES = 64 * 1024
MAX_STATE_KEYS = 256
MAX_TRANSMIT_BYTES = 16 * 1024
# Any fixed 64-bit number: serialises session creation so the concurrency limit holds.
_CREATE_LOCK_KEY = 0x4E524D4553  # "HERMES"-ish


def _send_to_session(
    session_id: uuid.UUID, event: str, data: dict[str, Any], *, kind: str = "client.event"
) -> None:
    """``event`` to every connected member, after commit (never raises: see core.events)."""
    send_event_on_commit(session_group(session_id), {"type": kind, "event": event, "data": data})


def _lock_session(session_id: uuid.UUID) -> VRSession:
    session = VRSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such session.", code="session_not_found")
    return session


def _ensure_live(session: VRSession) -> None:
    if session.status == SessionStatus.ENDED:
        raise Conflict("This session has ended.", code="session_ended")


@transaction.atomic
def session_create(
    *,
    owner: Any,
    name: str,
    visibility: str = SessionVisibility.PUBLIC,
    max_participants: int = 8,
    scene_version_id: uuid.UUID | None = None,
) -> VRSession:
    """Create a session with ``owner`` as its host, within ``MAX_CONCURRENT_SESSIONS``."""
    if visibility not in SessionVisibility.values:
        raise InvalidInput("Unknown visibility.", code="invalid_visibility")
    if not 1 <= max_participants <= MAX_PARTICIPANTS_LIMIT:
        raise InvalidInput(f"max_participants must be 1..{MAX_PARTICIPANTS_LIMIT}.")
    scene_version = _scene_version_for_session(scene_version_id) if scene_version_id else None
    if connection.vendor == "postgresql":
        # Two creations at once must not both see "one slot left".
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CREATE_LOCK_KEY])
    limit = int(getattr(settings, "MAX_CONCURRENT_SESSIONS", 100))
    if VRSession.objects.filter(status__in=LIVE_STATUSES).count() >= limit:
        raise Conflict(
            f"The platform runs at most {limit} sessions at once; try again later.",
            code="session_limit_reached",
        )
    session = VRSession.objects.create(
        owner=owner,
        name=name,
        visibility=visibility,
        max_participants=max_participants,
        scene_version=scene_version,
        invite_token="" if visibility == SessionVisibility.PUBLIC else new_invite_token(),
    )
    Participant.objects.create(session=session, user=owner, role=ParticipantRole.HOST)
    return session


def _scene_version_for_session(version_id: uuid.UUID) -> Any:
    """Only a ready, published version may be the scene of a session."""
    try:
        return scene_version_streamable(version_id=version_id)
    except NotFound as exc:
        raise NotFound("No such published scene version.", code="scene_not_found") from exc


def _join_locked(
    *,
    session: VRSession,
    user: Any,
    role: str | None,
    invite_token: str | None,
    privileged: bool,
) -> Participant:
    """Make ``user`` a current participant of the locked ``session`` (idempotent)."""
    _ensure_live(session)
    if role is not None and role not in (ParticipantRole.PARTICIPANT, ParticipantRole.SPECTATOR):
        raise InvalidInput("role must be participant or spectator.", code="invalid_role")
    participant = Participant.objects.filter(session=session, user=user).first()
    if participant is not None and participant.left_at is None:
        return participant
    needs_invite = (
        participant is None and session.visibility != SessionVisibility.PUBLIC and not privileged
    )
    if needs_invite and not (
        invite_token and hmac.compare_digest(invite_token.encode(), session.invite_token.encode())
    ):
        raise PermissionDenied("This session needs an invite.", code="invite_required")
    if session.owner_id == user.pk:
        wanted = ParticipantRole.HOST
    else:
        wanted = role or (participant.role if participant else ParticipantRole.PARTICIPANT)
    if wanted != ParticipantRole.SPECTATOR:
        # Spectators watch; they take no participant seat (max_participants counts players).
        current = (
            Participant.objects.filter(session=session, left_at__isnull=True)
            .exclude(role=ParticipantRole.SPECTATOR)
            .count()
        )
        if current >= session.max_participants:
            raise Conflict("This session is full.", code="session_full")
    if participant is None:
        return Participant.objects.create(session=session, user=user, role=wanted)
    participant.left_at = None
    participant.role = wanted
    participant.save(update_fields=["left_at", "role"])
    return participant


@transaction.atomic
def participant_join(
    *,
    session_id: uuid.UUID,
    user: Any,
    role: str | None = None,
    invite_token: str | None = None,
    privileged: bool = False,
) -> Participant:
    """Join (or rejoin) a session. ``privileged`` (operators) skips the invite check."""
    session = _lock_session(session_id)
    return _join_locked(
        session=session, user=user, role=role, invite_token=invite_token, privileged=privileged
    )


@transaction.atomic
def participant_join_by_invite(
    *, invite_token: str, user: Any, role: str | None = None
) -> Participant:
    if not invite_token:
        raise NotFound("No session has this invite.", code="session_not_found")
    session = (
        VRSession.objects.select_for_update()
        .filter(invite_token=invite_token)
        .exclude(invite_token="")
        .first()
    )
    if session is None:
        raise NotFound("No session has this invite.", code="session_not_found")
    return _join_locked(
        session=session, user=user, role=role, invite_token=invite_token, privileged=False
    )


@dataclass(frozen=True)
class LiveJoin:
    """What a socket needs after joining live: itself, the session, members, state."""

    session: VRSession
    participant: Participant
    me: dict[str, Any]
    members: list[dict[str, Any]]
    scene: dict[str, Any] | None = None  # selectors.session_scene_playback


@transaction.atomic
def participant_connect(
    *, session_id: uuid.UUID, user: Any, role: str | None = None, privileged: bool = False
) -> LiveJoin:
    """A socket joins the session live: membership (as ``participant_join``, without an
    invite: members of invite/private sessions joined through the API first), one more open
    connection, and the session becomes ``active``."""
    session = _lock_session(session_id)
    participant = _join_locked(
        session=session, user=user, role=role, invite_token=None, privileged=privileged
    )
    now = timezone.now()
    Participant.objects.filter(pk=participant.pk).update(
        connections=F("connections") + 1, last_seen_at=now
    )
    participant.refresh_from_db()
    if session.status == SessionStatus.OPEN:
        session.status = SessionStatus.ACTIVE
        session.started_at = now
        session.save(update_fields=["status", "started_at"])
    return LiveJoin(
        session,
        participant,
        participant_as_dict(participant),
        session_members(session=session),
        session_scene_playback(session=session),
    )


def _participant_left_notify(participant: Participant) -> None:
    """After commit: ``participant_left`` (what they started in the session stops)."""
    kwargs = {
        "session_id": participant.session_id,
        "participant_id": participant.pk,
        "user_id": participant.user_id,
    }

    def send() -> None:
        for receiver, result in participant_left.send_robust(sender=Participant, **kwargs):
            if isinstance(result, Exception):
                logger.error("participant_left receiver %r failed", receiver, exc_info=result)

    run_on_commit(send, what="participant_left")


@transaction.atomic
def participant_disconnect(*, participant_id: int, sockets: int = 1, leaving: bool = False) -> bool:
    """One socket (or ``sockets``) of a participant closed or left. Returns whether the
    participant has left (their last socket): then ``left_at`` is set; a later join restores
    them with their role. ``leaving``: the socket left on purpose (``hermes:session_leave``),
    so a last socket's leave is the participant's leave (``participant_left``)."""
    participant = Participant.objects.select_for_update().filter(pk=participant_id).first()
    if participant is None:
        return False
    participant.connections = max(0, participant.connections - sockets)
    participant.last_seen_at = timezone.now()
    fields = ["connections", "last_seen_at"]
    left = participant.connections == 0 and participant.left_at is None
    if left:
        participant.left_at = participant.last_seen_at
        fields.append("left_at")
    participant.save(update_fields=fields)
    if left and leaving:
        _participant_left_notify(participant)
    return left


@transaction.atomic
def participant_sockets_lost(*, participant_id: int, sockets: int) -> bool:
    """A web process died holding ``sockets`` of this participant (apps/sessions/presence.py):
    take them off; if none is left the participant has left, and the session is told."""
    left = participant_disconnect(participant_id=participant_id, sockets=sockets)
    if left:
        participant = Participant.objects.get(pk=participant_id)
        _send_to_session(
            participant.session_id,
            "hermes:participant_left",
            {
                "participant_id": participant.pk,
                "user_id": participant.user_id,
                "reason": "connection_lost",
            },
        )
    return left


@transaction.atomic
def participant_leave(*, session_id: uuid.UUID, user: Any) -> None:
    """Leave through the API: the membership ends now, whatever sockets are open (they get
    ``hermes:participant_left`` about this user and stop receiving session events when they
    next try to act)."""
    participant = (
        Participant.objects.select_for_update()
        .filter(session_id=session_id, user=user, left_at__isnull=True)
        .first()
    )
    if participant is None:
        raise NotFound("You are not in this session.", code="not_a_participant")
    participant.left_at, participant.connections = timezone.now(), 0
    participant.save(update_fields=["left_at", "connections"])
    # The same event a socket's leave sends: members drop this user's avatar either way.
    _send_to_session(
        session_id,
        "hermes:participant_left",
        {"participant_id": participant.pk, "user_id": user.pk, "reason": "left"},
    )
    # The leaver's open sockets leave the session's groups: the membership is over, so no
    # more of its events (a private session's ``hermes:transmit``).
    send_event_on_commit(
        member_group(session_id, user.pk), {"type": "hermes.member_left", "reason": "left"}
    )
    _participant_left_notify(participant)


@transaction.atomic
def session_end(*, session_id: uuid.UUID) -> VRSession:
    """End a session for everyone. Permission is the caller's job (host, operator, admin).
    Ending an ended session changes nothing and sends nothing."""
    session = _lock_session(session_id)
    if session.status == SessionStatus.ENDED:
        return session
    now = timezone.now()
    session.status = SessionStatus.ENDED
    session.ended_at = now
    session.save(update_fields=["status", "ended_at"])
    session.participants.filter(left_at__isnull=True).update(left_at=now, connections=0)
    sid = session.id
    data = {"session_id": str(sid), "ended_at": now.isoformat()}
    # Three independent after-commit steps: the end is committed, so a Redis outage that
    # loses the event (or the poses' cleanup) neither fails the request nor keeps the
    # session's streams running.
    _send_to_session(sid, "hermes:session_ended", data, kind="hermes.session_ended")

    def forget_poses() -> None:
        pose_store_forget_session(sid)

    def stop_everything_else() -> None:
        # The session has ended whatever a receiver does; one failing must not stop the others.
        for receiver, result in session_ended.send_robust(sender=VRSession, session_id=sid):
            if isinstance(result, Exception):
                logger.error("session_ended receiver %r failed", receiver, exc_info=result)

    run_on_commit(stop_everything_else, what="session_ended")
    run_on_commit(forget_poses, what="pose_store_forget")
    return session


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())


@transaction.atomic
def session_transmit(
    *,
    session_id: uuid.UUID,
    user: Any,
    event: str,
    payload: Any,
    state: dict[str, Any] | None = None,
) -> VRSession:
    """Send ``{event, payload}`` to every connected member, after commit. With ``state``
    (``{key, value, version}``), also set ``key`` in the shared state when ``version`` is the
    current state version (optimistic concurrency; else 409 ``state_conflict``). A ``None``
    value deletes the key."""
    session = _lock_session(session_id)
    _ensure_live(session)
    sender = Participant.objects.filter(session=session, user=user, left_at__isnull=True).first()
    if sender is None:
        raise PermissionDenied("Only members may transmit.", code="not_a_participant")
    try:
        if _json_size(payload) > MAX_TRANSMIT_BYTES:
            raise PayloadTooLarge("The payload is too large.", code="payload_too_large")
    except ValueError as exc:
        raise InvalidInput("The payload must be plain JSON.", code="invalid_payload") from exc
    data: dict[str, Any] = {
        "event": event,
        "payload": payload,
        "from": {"participant_id": sender.pk, "user_id": user.pk, "username": user.username},
    }
    if state is not None:
        key, value, version = state["key"], state.get("value"), state["version"]
        if version != session.state_version:
            raise Conflict(
                "The shared state changed since you read it.",
                code="state_conflict",
                detail={"state_version": session.state_version},
            )
        new_state = dict(session.state)
        if value is None:
            new_state.pop(key, None)
        else:
            new_state[key] = value
        if len(new_state) > MAX_STATE_KEYS or _json_size(new_state) > MAX_STATE_BYTES:
            raise PayloadTooLarge("The shared state would be too large.", code="state_too_large")
        session.state = new_state
        session.state_version += 1
        session.save(update_fields=["state", "state_version"])
        data["state"] = {"key": key, "value": value, "version": session.state_version}
    _send_to_session(session.id, "hermes:transmit", data)
    return session
