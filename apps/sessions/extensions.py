"""Extension points of the session WebSocket for other apps (streaming, monitoring).

- ``register_client_event(event, handler)``: the session consumer hands client events it does
  not handle itself (``morpheus:signal``, ``morpheus:quality_change``...) to ``handler`` with a
  ``ClientContext`` and the event's ``data`` dict, after size, JSON, envelope and rate checks.
  A handler raising ``apps.core.errors.PlatformError`` makes the consumer answer an ``error``
  event with that code; any other exception is logged and answered ``internal_error``.
- Channel-layer groups: ``member_group(session_id, user_id)`` reaches one member's sockets,
  ``session_group(session_id)`` every socket of the session. Send them
  ``{"type": "client.event", "event": str, "data": dict}`` and each socket forwards
  ``{"event": event, "data": data}`` to its client.
- ``session_ended``: sent after commit when a session ends (kwarg ``session_id``).
- ``register_session_streams(provider)``: the streaming app lists a session's streams for the
  session API (``provider(session=...)`` returns dicts); with no provider a session has none.
- ``participant_left``: sent after commit when a participant leaves a session on purpose (the
  leave API or ``hermes:session_leave`` on their last socket; kwargs ``session_id``,
  ``participant_id``, ``user_id``). A dropped connection is not a leave.
"""

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import django.dispatch


@dataclass(frozen=True)
class ClientContext:
    """One connected session member, as seen by an event handler."""

    user_id: int
    session_id: uuid.UUID
    participant_id: int
    role: str  # "host" | "participant" | "spectator"
    channel_name: str


ClientEventHandler = Callable[[ClientContext, dict[str, Any]], Awaitable[None]]

# Filled at import time by apps' ready() hooks, read-only afterwards.
_handlers: dict[str, ClientEventHandler] = {}

# Events the session consumer owns; other apps may not take them over.
RESERVED_EVENTS = frozenset(
    {
        "hermes:session_join",
        "hermes:session_leave",
        "hermes:pose",
        "athena:heartbeat",
        "athena:authenticate",
    }
)


def register_client_event(event: str, handler: ClientEventHandler) -> None:
    """Route client event ``event`` (e.g. ``"morpheus:signal"``) to ``handler``."""
    if event in RESERVED_EVENTS:
        raise ValueError(f"{event} is handled by the session consumer itself")
    existing = _handlers.get(event)
    if existing is not None and existing is not handler:
        raise ValueError(f"a handler for {event} is already registered")
    _handlers[event] = handler


def client_event_handler(event: str) -> ClientEventHandler | None:
    return _handlers.get(event)


SessionStreamsProvider = Callable[..., Iterable[dict[str, Any]]]
# Set once by the streaming app's ready(), read-only afterwards.
_session_streams: list[SessionStreamsProvider] = []


def register_session_streams(provider: SessionStreamsProvider) -> None:
    """Let the streaming app (above sessions) list a session's streams."""
    if provider not in _session_streams:
        _session_streams.append(provider)


def session_streams_providers() -> tuple[SessionStreamsProvider, ...]:
    return tuple(_session_streams)


def member_group(session_id: uuid.UUID, user_id: int) -> str:
    """Channel-layer group of one member's sockets in one session."""
    return f"hermes.member.{session_id.hex}.{user_id}"


def session_group(session_id: uuid.UUID) -> str:
    """Channel-layer group of every socket in one session."""
    return f"hermes.session.{session_id.hex}"


# Sent after commit by ``services.session_end``; kwargs: ``session_id`` (uuid.UUID).
session_ended = django.dispatch.Signal()

# Sent after commit by ``services.participant_leave`` and a socket's leave; kwargs:
# ``session_id`` (uuid.UUID), ``participant_id`` (int), ``user_id`` (int).
participant_left = django.dispatch.Signal()
