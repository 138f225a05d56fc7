"""Handlers of the streaming events clients send over the *session* WebSocket.

Registered with the session consumer in ``StreamingConfig.ready``. The consumer has already
checked size, JSON, envelope and rate; we check that the stream is the caller's own and
relay to the one worker that runs it.
"""

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from apps.core.errors import InvalidInput
from apps.sessions.extensions import ClientContext
from apps.streaming import clips, services

logger = logging.getLogger(__name__)


async def on_signal(ctx: ClientContext, data: dict[str, Any]) -> None:
    """``morpheus:signal`` ``{stream_id, answer?|candidate?|restart?}`` -> that stream's
    worker."""
    if not isinstance(data, dict):
        raise InvalidInput("data must be an object", code="invalid_signal")
    if data.get("restart") is True:
        # ``{stream_id, restart: true}``: the media path is lost; the worker sends a new offer.
        await database_sync_to_async(services.stream_ice_restart)(
            user_id=ctx.user_id, session_id=ctx.session_id, stream_id=data.get("stream_id")
        )
        return
    group, message = await database_sync_to_async(services.stream_client_signal)(
        user_id=ctx.user_id, session_id=ctx.session_id, stream_id=data.get("stream_id"), data=data
    )
    await get_channel_layer().group_send(group, message)


async def on_quality_change(ctx: ClientContext, data: dict[str, Any]) -> None:
    """``morpheus:quality_change`` ``{stream_id, quality?, max_quality?, max_bitrate_kbps?}``."""
    if not isinstance(data, dict):
        raise InvalidInput("data must be an object", code="invalid_quality")
    await database_sync_to_async(services.stream_client_quality)(
        user_id=ctx.user_id, session_id=ctx.session_id, data=data
    )


async def on_clip_change(ctx: ClientContext, data: dict[str, Any]) -> None:
    """``hermes:clip_change`` ``{clip}``: the host switches the animation for everyone
    (``clips.session_clip_change``; the answer is the ``hermes:clip_changed`` broadcast)."""
    if not isinstance(data, dict):
        raise InvalidInput("data must be an object", code="invalid_clip")
    await database_sync_to_async(clips.session_clip_change)(
        session_id=ctx.session_id,
        role=ctx.role,
        participant_id=ctx.participant_id,
        clip=data.get("clip"),
    )


def on_session_ended(sender: Any, session_id: Any, **kwargs: Any) -> None:
    stopped = services.streams_stop_for_session(session_id=session_id)
    if stopped:
        logger.info("session %s ended: %d streams stopped", session_id, stopped)


def on_signin_ended(sender: Any, keys: list[str], reason: str, **kwargs: Any) -> None:
    """A sign-in ended (``apps.accounts.signins.signin_ended``): its streams stop too."""
    stopped = services.streams_stop_for_signins(signins=keys, reason=reason)
    if stopped:
        logger.info("sign-in ended (%s): %d streams stopped", reason, stopped)


def on_participant_left(sender: Any, participant_id: int, **kwargs: Any) -> None:
    """A participant left their session on purpose: their stream stops."""
    services.streams_stop_for_participant(participant_id=participant_id, reason="left")


def on_user_roles_reduced(sender: Any, user_id: int, **kwargs: Any) -> None:
    """A user lost roles (``apps.accounts.signals.user_roles_reduced``): the streams their
    remaining roles no longer allow stop."""
    services.streams_stop_unless_allowed(user_id=user_id)


def on_user_deactivated(sender: Any, user_id: int, **kwargs: Any) -> None:
    """An account was disabled (``apps.accounts.signals.user_deactivated``): its streams stop."""
    services.streams_stop_for_user(user_id=user_id, reason="user_inactive")
