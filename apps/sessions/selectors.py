"""Reads for sessions: what a user may see, membership, and the status snapshot."""

import logging
import uuid
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from apps.accounts.models import User
from apps.accounts.permissions import caller_has_perm
from apps.core.errors import Conflict, NotFound, PermissionDenied
from apps.sessions.extensions import session_streams_providers
from apps.sessions.models import Participant, SessionStatus, SessionVisibility, VRSession

logger = logging.getLogger(__name__)

LIVE_STATUSES = (SessionStatus.OPEN, SessionStatus.ACTIVE)


def can_view_any(user: Any, identity: Any = None) -> bool:
    return caller_has_perm(user, identity, "hermes.view_any_vrsession")


def sessions_visible_to(*, user: Any, identity: Any = None) -> QuerySet[VRSession]:
    """Sessions ``user`` may see: live public ones, ones they are in (or were in), and, for
    operators and admins, all."""
    qs = VRSession.objects.select_related("owner", "scene_version")
    if can_view_any(user, identity):
        return qs
    return qs.filter(
        Q(visibility=SessionVisibility.PUBLIC, status__in=LIVE_STATUSES)
        | Q(participants__user=user)
        | Q(owner=user)
    ).distinct()


def session_get_visible(
    *, session_id: uuid.UUID | str, user: Any, identity: Any = None
) -> VRSession:
    """One session ``user`` may look at by id, else ``NotFound``.

    Invite sessions are reachable by id (the id is not listed anywhere); private sessions only
    by their members and operators, so to anyone else they do not exist.
    """
    session = (
        VRSession.objects.select_related("owner", "scene_version").filter(pk=session_id).first()
    )
    if session is None:
        raise NotFound("No such session.", code="session_not_found")
    if session.visibility != SessionVisibility.PRIVATE or can_view_any(user, identity):
        return session
    if session.owner_id == user.pk or session.participants.filter(user=user).exists():
        return session
    raise NotFound("No such session.", code="session_not_found")


def session_get_for_member(*, session_id: uuid.UUID, user: Any) -> VRSession:
    """The session if ``user`` is a current participant of it, else ``NotFound``."""
    participant = (
        Participant.objects.select_related("session", "session__scene_version")
        .filter(session_id=session_id, user=user, left_at__isnull=True)
        .first()
    )
    if participant is None:
        raise NotFound("No such session.", code="session_not_found")
    return participant.session


def participant_get(*, session_id: uuid.UUID, user: Any) -> Participant:
    """The user's current membership of the session, else ``NotFound``."""
    participant = (
        Participant.objects.select_related("session", "user")
        .filter(session_id=session_id, user=user, left_at__isnull=True)
        .first()
    )
    if participant is None:
        raise NotFound("You are not in this session.", code="not_a_participant")
    return participant


def session_members(*, session: VRSession) -> list[dict[str, Any]]:
    """Current participants, with whether each has a socket open right now."""
    rows = session.participants.filter(left_at__isnull=True).select_related("user")
    return [participant_as_dict(p) for p in rows]


def participant_as_dict(participant: Participant) -> dict[str, Any]:
    user = participant.user
    return {
        "participant_id": participant.pk,
        "user_id": participant.user_id,
        "username": user.username,
        "display_name": getattr(user, "display_name", "") or user.username,
        "role": participant.role,
        "connected": participant.connections > 0,
        "joined_at": participant.joined_at.isoformat(),
        "last_seen_at": participant.last_seen_at.isoformat() if participant.last_seen_at else None,
    }


def session_streams(*, session: VRSession) -> list[dict[str, Any]]:
    """The session's streams, from the app that registered itself as their provider
    (``extensions.register_session_streams``: streaming, above sessions); else none."""
    return [
        stream for provider in session_streams_providers() for stream in provider(session=session)
    ]


def session_ended_at(*, session_id: uuid.UUID) -> datetime | None:
    """When the session ended; None while it is live (or does not exist)."""
    return (
        VRSession.objects.filter(pk=session_id, status=SessionStatus.ENDED)
        .values_list("ended_at", flat=True)
        .first()
    )


def sessions_live_count() -> int:
    return VRSession.objects.filter(status__in=LIVE_STATUSES).count()


def session_socket_access(*, session_id: uuid.UUID, user: Any, identity: Any) -> bool:
    """May ``user`` open the session's socket? Returns whether they are privileged (operators:
    no invite needed). Raises ``NotFound`` (missing or private to others), ``PermissionDenied``
    (no join permission, or an invite/private session they never joined) or ``Conflict``
    ``session_ended``."""
    session = session_get_visible(session_id=session_id, user=user, identity=identity)
    if not caller_has_perm(user, identity, "hermes.join_vrsession"):
        raise PermissionDenied("Your roles do not allow joining sessions.")
    if session.status == SessionStatus.ENDED:
        raise Conflict("This session has ended.", code="session_ended")
    privileged = can_view_any(user, identity)
    if (
        session.visibility != SessionVisibility.PUBLIC
        and not privileged
        and not session.participants.filter(user=user).exists()
    ):
        raise PermissionDenied("Join this session with its invite first.", code="invite_required")
    return privileged


def user_may_join(*, user_id: int, identity: Any) -> bool:
    """Fresh check (roles may have just changed) of the join permission."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    return user is not None and caller_has_perm(user, identity, "hermes.join_vrsession")


# ---------------------------------------------------------------- for monitoring
# Monitoring reads the sessions tables only through these.


def sessions_active_counts() -> tuple[int, int]:
    """(sessions not ended, participants currently in one of them)."""
    sessions = VRSession.objects.exclude(status=SessionStatus.ENDED).count()
    participants = (
        Participant.objects.filter(left_at__isnull=True)
        .exclude(session__status=SessionStatus.ENDED)
        .count()
    )
    return sessions, participants


def sessions_live(*, limit: int = 200) -> list[dict[str, Any]]:
    """Sessions not ended, newest first, with their current participant count."""
    from django.db.models import Count

    rows = (
        VRSession.objects.exclude(status=SessionStatus.ENDED)
        .annotate(live_participants=Count("participants", filter=Q(participants__left_at=None)))
        .order_by("-created_at")[:limit]
    )
    return [
        {
            "id": str(s.pk),
            "name": s.name,
            "status": s.status,
            "participants": s.live_participants,
            "created_at": s.created_at.isoformat(),
        }
        for s in rows
    ]


def session_scene_playback(*, session: VRSession) -> dict[str, Any] | None:
    """What a viewer needs of the session's scene before its first frame: where to start
    (``spawn``: eye position, yaw, pitch, scale; see workers/rendering/spawn.py), the animation
    clips and the one playing now (the host's choice, else the version's default, else the
    first). None when the session has no scene."""
    version = session.scene_version
    if version is None:
        return None
    clips = list(version.clips or [])
    names = [c.get("name") for c in clips]
    clip = next(
        (c for c in (session.animation_clip, version.default_clip) if c and c in names),
        names[0] if names else "",
    )
    return {"spawn": version.spawn_start(), "clips": clips, "clip": clip}
