"""The streaming workers' control socket: ``/ws/morpheus/worker/``.

A worker authenticates with its token as the subprotocol ``bearer.<token>`` next to
``vrplatform.v1`` (a bad token: accepted, then closed with 4401 so the worker can tell it
apart from a network failure). Messages follow ``workers/protocol.py``; each one is
size-checked, schema-checked and rate-limited before a service sees it.
"""

import json
import logging
import time
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.core.errors import PlatformError
from apps.monitoring.metrics import observe_stream_report
from apps.streaming import services
from workers.protocol import (
    MAX_CONTROL_BYTES,
    Heartbeat,
    ProtocolError,
    Register,
    Signal,
    StatsReport,
    StreamStopped,
    parse_worker_message,
)

logger = logging.getLogger(__name__)

SUBPROTOCOL = "vrplatform.v1"
CLOSE_UNAUTHORIZED = 4401
CLOSE_POLICY = 4408  # too many bad or too frequent messages
CLOSE_SUPERSEDED = 4409  # the same worker connected again elsewhere
CLOSE_DECLARED_DEAD = 4410  # silent too long: its streams moved; reconnect and register
MAX_CAPABILITIES_CHARS = 16 * 1024
# A worker sends a heartbeat every few seconds and one stats report per stream per second.
RATE_PER_S = 400.0
MAX_STRIKES = 50


class WorkerConsumer(AsyncWebsocketConsumer):
    worker_id: uuid.UUID | None = None
    registered = False

    async def connect(self) -> None:
        offered: list[str] = list(self.scope.get("subprotocols") or [])
        token = next((p[len("bearer.") :] for p in offered if p.startswith("bearer.")), "")
        worker = await database_sync_to_async(services.worker_authenticate)(token=token)
        subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
        if worker is None or subprotocol is None:
            await self.accept(subprotocol)
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.worker_id = worker.id
        self.worker_name = worker.name
        self._tokens, self._t, self._strikes = RATE_PER_S, time.monotonic(), 0
        await self.channel_layer.group_add(services.worker_group(worker.id), self.channel_name)
        await self.accept(subprotocol)
        logger.info("worker %s connected", worker.name)

    async def disconnect(self, code: int) -> None:
        if self.worker_id is None:
            return
        await self.channel_layer.group_discard(
            services.worker_group(self.worker_id), self.channel_name
        )
        await database_sync_to_async(services.worker_disconnected)(
            worker_id=self.worker_id, channel_name=self.channel_name
        )
        logger.info("worker %s disconnected (%s)", self.worker_name, code)

    # ------------------------------------------------------------------ inbound

    def _rate_ok(self) -> bool:
        now = time.monotonic()
        self._tokens = min(RATE_PER_S, self._tokens + (now - self._t) * RATE_PER_S)
        self._t = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    async def _reject(self, code: str, message: str) -> None:
        self._strikes += 1
        logger.warning("worker %s: %s (%s)", self.worker_name, code, message)
        if self._strikes > MAX_STRIKES:
            await self.close(code=CLOSE_POLICY)
            return
        await self.send(json.dumps({"type": "error", "code": code, "message": message}))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.worker_id is None:
            return
        raw = text_data if text_data is not None else bytes_data or b""
        if len(raw) > MAX_CONTROL_BYTES:
            await self._reject("too_large", f"messages are limited to {MAX_CONTROL_BYTES} bytes")
            return
        if not self._rate_ok():
            await self._reject("rate_limited", "too many messages")
            return
        try:
            message = parse_worker_message(raw)
        except ProtocolError as exc:
            await self._reject(exc.code, exc.message)
            return
        try:
            await self._dispatch(message)
        except PlatformError as exc:
            await self._reject(exc.code, exc.message)
        except Exception:
            logger.exception("worker %s: message %s failed", self.worker_name, message.type)
            await self._reject("internal_error", "the platform could not handle the message")

    async def _dispatch(self, message: Any) -> None:
        assert self.worker_id is not None
        if isinstance(message, Register):
            if len(json.dumps(message.capabilities)) > MAX_CAPABILITIES_CHARS:
                await self._reject("too_large", "capabilities too large")
                return
            await database_sync_to_async(services.worker_register)(
                worker_id=self.worker_id,
                channel_name=self.channel_name,
                capabilities=message.capabilities,
            )
            self.registered = True
            # Any older socket of this worker stops taking commands.
            await self.channel_layer.group_send(
                services.worker_group(self.worker_id),
                {"type": "worker.superseded", "channel": self.channel_name},
            )
            await self.send(json.dumps({"type": "registered", "worker": self.worker_name}))
            return
        if not self.registered:
            await self._reject("not_registered", "send register first")
            return
        if isinstance(message, Heartbeat):
            if not await database_sync_to_async(self._heartbeat)(message.load):
                await self.close(code=CLOSE_DECLARED_DEAD)
        elif isinstance(message, Signal):
            if message.sdp is not None:
                await database_sync_to_async(services.stream_offer)(
                    worker_id=self.worker_id, stream_id=message.stream_id, sdp=message.sdp
                )
            elif message.candidate is not None:
                await database_sync_to_async(services.stream_worker_candidate)(
                    worker_id=self.worker_id,
                    stream_id=message.stream_id,
                    candidate=message.candidate,
                )
        elif isinstance(message, StatsReport):
            recorded = await database_sync_to_async(services.stream_stats_record)(
                worker_id=self.worker_id, stream_id=message.stream_id, stats=message.stats
            )
            if recorded:
                observe_stream_report({**message.stats, "stream_id": message.stream_id})
                await database_sync_to_async(services.stream_forecast_apply)(
                    worker_id=self.worker_id, stream_id=message.stream_id
                )
        elif isinstance(message, StreamStopped):
            await database_sync_to_async(services.stream_stopped_by_worker)(
                worker_id=self.worker_id, stream_id=message.stream_id, reason=message.reason
            )
        else:
            await self._reject("unexpected_type", f"workers do not send {message.type}")

    def _heartbeat(self, load: float) -> bool:
        assert self.worker_id is not None
        alive = services.worker_heartbeat(worker_id=self.worker_id, load=load)
        # Every heartbeat from any worker checks the others: no separate timer is needed
        # while at least one worker is alive (and when none is, nothing can move anyway).
        services.workers_reap()
        return alive

    # ------------------------------------------------------------------ channel layer

    async def worker_command(self, event: dict[str, Any]) -> None:
        await self.send(json.dumps(event["message"], separators=(",", ":")))

    async def worker_superseded(self, event: dict[str, Any]) -> None:
        if event.get("channel") != self.channel_name:
            await self.close(code=CLOSE_SUPERSEDED)
