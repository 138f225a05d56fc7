"""The session WebSocket: ``/ws/hermes/sessions/<id>/``.

Authentication: offer the subprotocols ``vrplatform.v1`` and ``bearer.<token>`` (a platform
JWT or an OAuth2 access token; the server selects ``vrplatform.v1``), or send
``{"event": "athena:authenticate", "data": {"token": ...}}`` as the first message within 5 s.
Tokens never go in the URL. Renew a token before it expires with
``{"event": "athena:heartbeat", "data": {"t": ..., "token": ...}}``.

Envelope both ways: ``{"event": str, "data": {...}}``. Errors: ``{"event": "error", "data":
{"code", "message", "detail"}}``; the connection stays up.

Close codes:

====  ==================  ==========================================================
4000  session_ended       the session ended (``hermes:session_ended`` was sent first)
4401  unauthenticated     no/invalid/expired token, or no authentication within 5 s;
                          while connected: the token revoked (sign-out, a replayed refresh
                          token, an OAuth2 revocation), the account disabled, or roles
                          withdrawn so that the socket may no longer be in the session
4403  forbidden           no permission to join, an invite session not joined
4404  not_found           no such session (or a private one you are not in)
4408  idle_timeout        nothing received for 60 s (send ``athena:heartbeat`` every 25 s)
4429  rate_limited        kept flooding after ``error`` ``rate_limited``
====  ==================  ==========================================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from apps.accounts.authentication import TokenIdentity, authenticate_bearer
from apps.accounts.selectors import user_roles
from apps.accounts.services import user_group_name
from apps.core.errors import Conflict, NotFound, PermissionDenied, PlatformError
from apps.core.instruments import ws_connected, ws_disconnected, ws_message, ws_overloaded
from apps.core.parsers import UNENCODABLE, unencodable
from apps.core.sockets import DirectDispatch, LoopSemaphore, db_backlog, db_call
from apps.sessions import selectors, services
from apps.sessions.extensions import (
    ClientContext,
    client_event_handler,
    member_group,
    session_group,
)
from apps.sessions.limits import TokenBucket
from apps.sessions.models import ParticipantRole
from apps.sessions.poses import PoseHub, freeze_startup_heap, pose_hub, tick_hz
from apps.sessions.presence import presence
from workers.protocol import (
    BEARER_PREFIX,
    CLOSE_FORBIDDEN,
    CLOSE_IDLE,
    CLOSE_NOT_FOUND,
    CLOSE_OVERLOADED,
    CLOSE_RATE_LIMITED,
    CLOSE_SESSION_ENDED,
    CLOSE_UNAUTHORIZED,
    SUBPROTOCOL,
    Pose,
    ProtocolError,
    parse_pose,
)

logger = logging.getLogger(__name__)

PROTOCOL = SUBPROTOCOL
MAX_MESSAGE_BYTES = 16 * 1024
CLOSE_UNAUTHENTICATED = CLOSE_UNAUTHORIZED  # one table of close codes: workers/protocol/sockets.py


def _setting(name: str) -> float:
    return float(getattr(settings, name))  # declared in vrplatform/settings/base.py


# --- small ORM helpers (each one selector or service call, on the executor: core/sockets.py)
@db_call
def authenticate_for_session(token: str, session_id: uuid.UUID) -> tuple[TokenIdentity, bool]:
    """Who the token is and whether they may open this session's socket: one thread hop."""
    identity = authenticate_bearer(token)
    privileged = selectors.session_socket_access(
        session_id=session_id, user=identity.user, identity=identity
    )
    return identity, privileged


may_join = db_call(selectors.user_may_join)
ended_at = db_call(selectors.session_ended_at)
connect_participant = db_call(services.participant_connect)
disconnect_participant = db_call(services.participant_disconnect)


@db_call
def roles_of(user: Any) -> list[str]:
    return user_roles(user)


def _floats(values: tuple[float, ...]) -> str:
    return ",".join(map(repr, values))  # validated finite floats: repr is valid JSON


def pose_json(pose: Pose) -> str:
    """The pose as others see it (no projection), re-serialised from validated values so no
    client bytes are ever forwarded; hand-built because this runs for every pose."""
    text = f'{{"p":[{_floats(pose.p)}],"q":[{_floats(pose.q)}],"t":{pose.t!r},"seq":{pose.seq}'
    if pose.hands:
        hands = ",".join(
            f'"{side}":{{"p":[{_floats(h.p)}],"q":[{_floats(h.q)}]}}'
            for side, h in pose.hands.items()
        )
        text += f',"hands":{{{hands}}}'
    return text + "}"


def _now_ms() -> float:
    return time.time() * 1000.0


# redis-py's asyncio pool (channels_redis) opens at most 100 connections per event loop and
# raises MaxConnectionsError beyond that instead of waiting: a burst of a few hundred sign-ins
# or disconnects (each a group_add/discard round trip) closed sockets with 1011. Group
# membership changes queue for one of these slots instead; a quarter of the pool stays free
# for receives and group sends.
LAYER_SLOTS = 75
layer_slot = LoopSemaphore(lambda: LAYER_SLOTS)


class SessionConsumer(DirectDispatch, AsyncWebsocketConsumer):
    async def group_join(self, group: str) -> None:
        async with layer_slot():
            await self.channel_layer.group_add(group, self.channel_name)

    async def group_leave(self, group: str) -> None:
        async with layer_slot():
            await self.channel_layer.group_discard(group, self.channel_name)

    # --- lifecycle ----------------------------------------------------------------------
    async def connect(self) -> None:
        freeze_startup_heap()
        self.session_id: uuid.UUID = self.scope["url_route"]["kwargs"]["session_id"]
        self.identity: TokenIdentity | None = None
        self.user_id = 0
        self.expires_at: datetime | None = None
        self.privileged = False
        self.participant_id = 0
        self.role = ""
        self.joined = False
        self.closing = False
        self.hub: PoseHub | None = None
        loop = asyncio.get_running_loop()
        self.last_received = loop.time()
        self.auth_deadline = loop.time() + _setting("HERMES_AUTH_TIMEOUT_S")
        self.idle_timeout = _setting("HERMES_IDLE_TIMEOUT_S")
        self.general = TokenBucket(_setting("HERMES_WS_RATE"), _setting("HERMES_WS_BURST"))
        self.poses = TokenBucket(_setting("HERMES_WS_POSE_RATE"), _setting("HERMES_WS_POSE_BURST"))
        self.strike_limit = int(_setting("HERMES_WS_FLOOD_STRIKES"))
        self.strikes = 0

        offered: list[str] = list(self.scope.get("subprotocols") or [])
        if db_backlog() >= int(_setting("HERMES_CONNECT_BACKLOG_LIMIT")):
            # Refused before any work: the client backs off and retries (socket.js), where a
            # queued handshake would time out in daphne after its sign-in had been paid for.
            self.closing = True
            ws_overloaded()
            await self.accept(subprotocol=PROTOCOL if PROTOCOL in offered else None)
            await self.close(code=CLOSE_OVERLOADED, reason="overloaded")
            return
        token = next(
            (p[len(BEARER_PREFIX) :] for p in offered if p.startswith(BEARER_PREFIX)), None
        )
        # With a subprotocol token, authenticate before accepting: once the client sees the
        # handshake complete it is signed in. Refusals still accept first, so the client
        # receives the 44xx close code instead of a bare HTTP 403.
        self.watchdog: asyncio.Task[None] | None = None
        refusal = await self.check_token(token) if token is not None else None
        await self.accept(subprotocol=PROTOCOL if PROTOCOL in offered else None)
        self.counted = True
        ws_connected()
        if refusal is not None:
            await self.close_from_server(*refusal)
            return
        if self.identity is not None:
            await self.signed_in()
        self.watchdog = loop.create_task(self.watch_deadlines())

    async def disconnect(self, code: int) -> None:
        self.closing = True
        if getattr(self, "counted", False):
            self.counted = False
            ws_disconnected()
        watchdog: asyncio.Task[None] | None = getattr(self, "watchdog", None)
        if watchdog is not None and watchdog is not asyncio.current_task():
            watchdog.cancel()
        await self.leave(reason="disconnected")
        if self.user_id:
            await self.group_leave(user_group_name(self.user_id))

    async def close_from_server(self, code: int, reason: str) -> None:
        """Close from our side: clean up first (the peer may never answer the close)."""
        if self.closing:
            return
        self.closing = True
        await self.leave(reason="disconnected")
        await self.close(code=code, reason=reason)

    async def watch_deadlines(self) -> None:
        """Auth deadline, idle timeout and token expiry, in one task per socket."""
        loop = asyncio.get_running_loop()
        while not self.closing:
            now = loop.time()
            if self.identity is None and now >= self.auth_deadline:
                await self.close_from_server(CLOSE_UNAUTHENTICATED, "authentication_timeout")
                return
            if now - self.last_received >= self.idle_timeout:
                await self.close_from_server(CLOSE_IDLE, "idle_timeout")
                return
            wake = self.last_received + self.idle_timeout
            if self.identity is None:
                wake = min(wake, self.auth_deadline)
            if self.expires_at is not None:
                left = (self.expires_at - timezone.now()).total_seconds()
                if left <= 0:
                    await self.close_from_server(CLOSE_UNAUTHENTICATED, "token_expired")
                    return
                wake = min(wake, now + left)
            await asyncio.sleep(max(0.01, wake - now))

    # --- inbound ------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        self.last_received = asyncio.get_running_loop().time()
        try:
            await self.handle(text_data, bytes_data)
        except Exception:
            logger.exception("session socket: unexpected error handling a message")
            await self.error("internal_error", "The server could not handle this message.")

    async def handle(self, text: str | None, raw: bytes | None) -> None:
        if text is None:
            if await self.admit_message(self.general):
                await self.error("binary_not_supported", "Send JSON text frames.")
            return
        if len(text) > MAX_MESSAGE_BYTES or (
            len(text) * 4 > MAX_MESSAGE_BYTES and len(text.encode()) > MAX_MESSAGE_BYTES
        ):
            if await self.admit_message(self.general):
                await self.error("too_large", f"Messages are at most {MAX_MESSAGE_BYTES} bytes.")
            return
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            message = None
        event = message.get("event") if isinstance(message, dict) else None
        data = message.get("data", {}) if isinstance(message, dict) else None
        if data is None and isinstance(message, dict):
            data = {}
        bucket = self.poses if event == "hermes:pose" else self.general
        if not await self.admit_message(bucket):
            return
        if message is None:
            await self.error("bad_json", "The message is not valid JSON.")
            return
        if "\\u" in text and unencodable(message):  # only an escape spells a lone surrogate
            await self.error("bad_json", UNENCODABLE)
            return
        if not isinstance(event, str) or not isinstance(data, dict):
            await self.error("bad_envelope", 'Send {"event": str, "data": {...}}.')
            return
        ws_message(event)
        if self.identity is None:
            await self.before_auth(event, data)
            return
        await self.dispatch_event(event, data)

    async def admit_message(self, bucket: TokenBucket) -> bool:
        """Whether the rate limit lets this message through: a first refusal answers
        ``rate_limited``, ``strike_limit`` refusals in a row close the socket."""
        if bucket.take():
            self.strikes = 0
            return True
        self.strikes += 1
        if self.strikes == 1:
            await self.error("rate_limited", "Too many messages; slow down.")
        elif self.strikes >= self.strike_limit:
            await self.close_from_server(CLOSE_RATE_LIMITED, "rate_limited")
        return False

    async def before_auth(self, event: str, data: dict[str, Any]) -> None:
        token = data.get("token")
        if event != "athena:authenticate" or not isinstance(token, str):
            await self.close_from_server(CLOSE_UNAUTHENTICATED, "authentication_required")
            return
        await self.authenticate(token)

    async def authenticate(self, token: str) -> None:
        """First-message authentication."""
        refusal = await self.check_token(token)
        if refusal is not None:
            await self.close_from_server(*refusal)
            return
        await self.signed_in()
        if self.watchdog is not None:
            self.watchdog.cancel()  # re-plan with the token's expiry
        self.watchdog = asyncio.get_running_loop().create_task(self.watch_deadlines())

    async def check_token(self, token: str) -> tuple[int, str] | None:
        """Sets ``identity`` and ``privileged``, or returns the close code and reason."""
        try:
            identity, self.privileged = await authenticate_for_session(token, self.session_id)
        except NotFound:
            return CLOSE_NOT_FOUND, "not_found"
        except PermissionDenied:
            return CLOSE_FORBIDDEN, "forbidden"
        except Conflict:
            return CLOSE_SESSION_ENDED, "session_ended"
        except PlatformError:  # AuthenticationFailed and its codes
            return CLOSE_UNAUTHENTICATED, "unauthenticated"
        self.identity = identity
        self.user_id = identity.user.pk
        self.expires_at = identity.expires_at
        return None

    async def signed_in(self) -> None:
        await self.group_join(user_group_name(self.user_id))

    async def dispatch_event(self, event: str, data: dict[str, Any]) -> None:
        if event == "hermes:pose":
            await self.on_pose(data)
        elif event == "athena:heartbeat":
            await self.on_heartbeat(data)
        elif event == "hermes:session_join":
            await self.on_join(data)
        elif event == "hermes:session_leave":
            if not self.joined:
                await self.error("not_joined", "Join the session first.")
                return
            await self.leave(reason="left")
        elif event == "athena:authenticate":
            await self.error("already_authenticated", "This socket is authenticated already.")
        else:
            await self.on_client_event(event, data)

    async def on_pose(self, data: dict[str, Any]) -> None:
        if not self.joined:
            await self.error("not_joined", "Join the session first.")
            return
        if self.role == ParticipantRole.SPECTATOR:
            await self.error("forbidden", "Spectators do not send poses.")
            return
        try:
            pose = parse_pose(data)
        except ProtocolError as exc:
            await self.error(exc.code, exc.message)
            return
        assert self.hub is not None
        self.hub.put(self.session_id, self.participant_id, pose_json(pose))

    async def on_heartbeat(self, data: dict[str, Any]) -> None:
        client_t = data.get("t")
        if isinstance(client_t, bool) or not isinstance(client_t, int | float | None):
            await self.error("bad_type", "t must be a number.")
            return
        await self.send_event("athena:heartbeat", {"t": client_t, "server_time": _now_ms()})
        token = data.get("token")
        if token is None:
            return
        if not isinstance(token, str):
            await self.error("bad_type", "token must be a string.")
            return
        try:
            # The checks of a connecting token (scope, revocation, this session's access),
            # not just "same user": else a profile-only token would keep a sessions socket.
            identity, privileged = await authenticate_for_session(token, self.session_id)
        except PlatformError as exc:
            await self.error(exc.code, exc.message)
            if exc.code in ("token_revoked", "user_inactive"):
                # The client's current token is dead: so is this sign-in.
                await self.close_from_server(CLOSE_UNAUTHENTICATED, exc.code)
            return
        if identity.user.pk != self.user_id:
            await self.error("token_invalid", "The token belongs to another account.")
            return
        self.identity = identity
        self.privileged = privileged
        self.expires_at = identity.expires_at
        roles = await roles_of(identity.user)
        await self.send_event(
            "athena:wisdom_updated",
            {
                "reason": "token_renewed",
                "expires_at": identity.expires_at.isoformat(),
                "roles": roles,
            },
        )

    async def on_join(self, data: dict[str, Any]) -> None:
        role = data.get("role")
        if role is not None and not isinstance(role, str):
            await self.error("bad_type", "role must be a string.")
            return
        if self.joined:
            await self.error("already_joined", "This socket is in the session already.")
            return
        assert self.identity is not None
        try:
            live = await connect_participant(
                session_id=self.session_id,
                user=self.identity.user,
                role=role,
                privileged=self.privileged,
            )
        except PlatformError as exc:
            await self.error(exc.code, exc.message)
            return
        self.joined = True
        self.participant_id = live.participant.pk
        here = presence()
        if here is not None:  # so a crash of this process can be undone (presence.py)
            await here.add(self.participant_id, 1)
        self.role = live.participant.role
        await self.group_join(session_group(self.session_id))
        await self.group_join(member_group(self.session_id, self.user_id))
        self.hub = pose_hub()
        self.hub.join(self.session_id, self.channel_name, self)
        # Subscribed, then checked again: a session that ended between the membership check
        # above and these subscriptions sent its end to none of this socket's groups.
        ended = await ended_at(session_id=self.session_id)
        if ended is not None:
            data = {"session_id": str(self.session_id), "ended_at": ended.isoformat()}
            await self.hermes_session_ended({"data": data})
            return
        session = live.session
        await self.send_event(
            "hermes:session_established",
            {
                "session": {
                    "id": str(session.id),
                    "name": session.name,
                    "status": session.status,
                    "scene_version_id": str(session.scene_version_id)
                    if session.scene_version_id
                    else None,
                },
                "participant_id": self.participant_id,
                "user_id": self.user_id,
                "role": self.role,
                "members": live.members,
                "state": session.state,
                "state_version": session.state_version,
                "tick_hz": tick_hz(),
                "server_time": _now_ms(),
                # Where to start, the clips and the one playing (session_scene_playback).
                "scene": live.scene,
            },
        )
        await self.channel_layer.group_send(
            session_group(self.session_id),
            {
                "type": "client.event",
                "event": "hermes:participant_joined",
                "data": live.me,
                "exclude": self.channel_name,
            },
        )

    async def leave(self, *, reason: str) -> None:
        if not self.joined:
            return
        self.joined = False
        try:
            gone = await disconnect_participant(
                participant_id=self.participant_id, leaving=reason == "left"
            )
        except Exception:
            logger.exception("could not record that participant %s left", self.participant_id)
            gone = False
        else:
            here = presence()
            if here is not None:
                await here.add(self.participant_id, -1)
        if self.hub is not None:
            await self.hub.leave(self.session_id, self.channel_name, self.participant_id, gone=gone)
        layer = self.channel_layer
        await self.group_leave(session_group(self.session_id))
        await self.group_leave(member_group(self.session_id, self.user_id))
        if gone:
            await layer.group_send(
                session_group(self.session_id),
                {
                    "type": "client.event",
                    "event": "hermes:participant_left",
                    "data": {
                        "participant_id": self.participant_id,
                        "user_id": self.user_id,
                        "reason": reason,
                    },
                },
            )

    async def on_client_event(self, event: str, data: dict[str, Any]) -> None:
        handler = client_event_handler(event)
        if handler is None:
            await self.error("unknown_event", f"Unknown event {event[:64]!r}.")
            return
        if not self.joined:
            await self.error("not_joined", "Join the session first.")
            return
        context = ClientContext(
            user_id=self.user_id,
            session_id=self.session_id,
            participant_id=self.participant_id,
            role=self.role,
            channel_name=self.channel_name,
        )
        try:
            await handler(context, data)
        except PlatformError as exc:
            await self.error(exc.code, exc.message, exc.detail)
        except Exception:
            logger.exception("client event handler for %s failed", event)
            await self.error("internal_error", "The server could not handle this event.")

    # --- outbound -----------------------------------------------------------------------
    async def send_event(self, event: str, data: dict[str, Any]) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps({"event": event, "data": data}, default=str))

    async def error(self, code: str, message: str, detail: Any = None) -> None:
        await self.send_event("error", {"code": code, "message": message, "detail": detail})

    async def send_poses(self, text: str) -> None:
        """Called by this process's pose ticker, not through the channel layer."""
        if not self.closing:
            await self.send(text_data=text)

    # --- channel-layer messages -------------------------------------------------------
    async def client_event(self, message: dict[str, Any]) -> None:
        if message.get("exclude") == self.channel_name:
            return
        await self.send_event(str(message["event"]), dict(message.get("data") or {}))

    async def hermes_session_ended(self, message: dict[str, Any]) -> None:
        if self.closing:
            return
        await self.send_event("hermes:session_ended", dict(message.get("data") or {}))
        self.joined = False  # the service already ended every membership
        if self.hub is not None:
            await self.hub.leave(
                self.session_id, self.channel_name, self.participant_id, gone=False
            )
        await self.close_from_server(CLOSE_SESSION_ENDED, "session_ended")

    async def hermes_member_left(self, message: dict[str, Any]) -> None:
        """The user left through the API (``services.participant_leave``): the membership is
        over, so this socket leaves the session's groups and gets none of its events; it
        stays open and may join again."""
        if self.closing or not self.joined:
            return
        self.joined = False
        if self.hub is not None:
            await self.hub.leave(
                self.session_id, self.channel_name, self.participant_id, gone=False
            )
        await self.group_leave(session_group(self.session_id))
        await self.group_leave(member_group(self.session_id, self.user_id))

    async def wisdom_updated(self, message: dict[str, Any]) -> None:
        if self.closing or self.identity is None:
            return
        await self.send_event(
            "athena:wisdom_updated",
            {"reason": message.get("reason", "roles_changed"), "roles": message.get("roles", [])},
        )
        if not await may_join(user_id=self.user_id, identity=self.identity):
            await self.close_from_server(CLOSE_UNAUTHENTICATED, "roles_revoked")

    async def athena_revoked(self, message: dict[str, Any]) -> None:
        """A token revoked or the account disabled (``accounts.services.sockets_revoke_notify``):
        close if this socket's current token is one of them (all sockets for ``jtis=None``)."""
        if self.closing or self.identity is None:
            return
        jtis = message.get("jtis")
        if jtis is not None and self.identity.jti not in jtis:
            return
        await self.close_from_server(
            CLOSE_UNAUTHENTICATED, str(message.get("reason") or "token_revoked")
        )
