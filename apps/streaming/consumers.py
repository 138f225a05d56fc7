"""The streaming workers' control socket: ``/ws/morpheus/worker/``.

A worker authenticates with its token as the subprotocol ``bearer.<token>`` next to
``vrplatform.v1`` (a bad token: accepted, then closed with 4401 so the worker can tell it
apart from a network failure). Messages, close codes and the protocol version are those of
``workers/protocol/`` and nothing else; each message is size-checked, schema-checked and
rate-limited before a service sees it.
"""

import json
import logging
import threading
import time
import uuid
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from apps.core.errors import PlatformError
from apps.core.instruments import observe_stream_report
from apps.core.sockets import DirectDispatch, db_call
from apps.streaming import selectors, services, stats
from apps.streaming.remote_poses import WorkerPoseRelay
from apps.streaming.stats_batch import StatsBuffer, stream_stats_batch_record, stream_stats_flush
from workers.protocol import (
    BEARER_PREFIX,
    CLOSE_DECLARED_DEAD,
    CLOSE_RATE_LIMITED,
    CLOSE_SUPERSEDED,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNSUPPORTED_VERSION,
    MAX_CONTROL_BYTES,
    STATS_BATCH_VERSION,
    SUBPROTOCOL,
    SUPPORTED_VERSIONS,
    ErrorMessage,
    Heartbeat,
    ProtocolError,
    Register,
    Registered,
    Signal,
    StatsBatch,
    StatsReport,
    StreamStopped,
    WorkerMessage,
    WorkerPoses,
    encode_message,
    negotiate_version,
    parse_from_worker,
)

logger = logging.getLogger(__name__)

MAX_CAPABILITIES_CHARS = 16 * 1024
# A worker sends a heartbeat every few seconds and one stats batch a second (a version-2 worker:
# one stats report per stream per second), besides its pose ticks.
RATE_PER_S = 400.0
MAX_STRIKES = 50
REAP_EVERY_S = 1.0
_reaping = threading.Lock()
_last_reap = float("-inf")


class WorkerConsumer(DirectDispatch, AsyncWebsocketConsumer):
    worker_id: uuid.UUID | None = None
    registered = False
    version = 0  # the protocol version negotiated at register

    async def connect(self) -> None:
        offered: list[str] = list(self.scope.get("subprotocols") or [])
        token = next((p[len(BEARER_PREFIX) :] for p in offered if p.startswith(BEARER_PREFIX)), "")
        worker = await db_call(services.worker_authenticate)(token=token)
        subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
        if worker is None or subprotocol is None:
            await self.accept(subprotocol)
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.worker_id = worker.id
        self.worker_name = worker.name
        self._tokens, self._t, self._strikes = RATE_PER_S, time.monotonic(), 0
        self.poses = WorkerPoseRelay(self.channel_name, self.send)
        self.stats_buffer = StatsBuffer()  # stats_batch reports until their flush
        await self.channel_layer.group_add(services.worker_group(worker.id), self.channel_name)
        await self.accept(subprotocol)
        logger.info("worker %s connected", worker.name)

    async def disconnect(self, code: int) -> None:
        if self.worker_id is None:
            return
        await self.poses.close()
        await db_call(stream_stats_flush)(buffer=self.stats_buffer)
        await self.channel_layer.group_discard(
            services.worker_group(self.worker_id), self.channel_name
        )
        await db_call(services.worker_disconnected)(
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
            await self.close(code=CLOSE_RATE_LIMITED)
            return
        await self.send(encode_message(ErrorMessage(code, message)))

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
            message = parse_from_worker(raw)
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

    async def _dispatch(self, message: WorkerMessage) -> None:
        assert self.worker_id is not None
        if isinstance(message, Register):
            if len(json.dumps(message.capabilities)) > MAX_CAPABILITIES_CHARS:
                await self._reject("too_large", "capabilities too large")
                return
            version = negotiate_version(message.versions)
            if version is None:
                await self.send(
                    encode_message(
                        ErrorMessage(
                            "unsupported_version",
                            f"this platform speaks protocol versions {list(SUPPORTED_VERSIONS)}",
                        )
                    )
                )
                await self.close(code=CLOSE_UNSUPPORTED_VERSION)
                return
            await db_call(services.worker_register)(
                worker_id=self.worker_id,
                channel_name=self.channel_name,
                capabilities=message.capabilities,
            )
            self.registered = True
            self.version = version
            # Any older socket of this worker stops taking commands.
            await self.channel_layer.group_send(
                services.worker_group(self.worker_id),
                {"type": "worker.superseded", "channel": self.channel_name},
            )
            await self.send(encode_message(Registered(self.worker_name, version)))
            self.poses.streams(
                await db_call(selectors.worker_streams_active)(worker_id=self.worker_id)
            )
            return
        if not self.registered:
            await self._reject("not_registered", "send register first")
            return
        if isinstance(message, Heartbeat):
            if self.stats_buffer.due():  # a worker whose streams all ended sends no batch
                await db_call(stream_stats_flush)(buffer=self.stats_buffer)
            if not await db_call(self._heartbeat)(message.load):
                await self.close(code=CLOSE_DECLARED_DEAD)
        elif isinstance(message, Signal):
            if message.sdp is not None:
                await db_call(services.stream_offer)(
                    worker_id=self.worker_id, stream_id=message.stream_id, sdp=message.sdp
                )
            elif message.candidate is not None:
                await db_call(services.stream_worker_candidate)(
                    worker_id=self.worker_id,
                    stream_id=message.stream_id,
                    candidate=message.candidate,
                )
        elif isinstance(message, StatsReport):
            recorded = await db_call(stats.stream_stats_record)(
                worker_id=self.worker_id, stream_id=message.stream_id, report=message.stats
            )
            if recorded:
                observe_stream_report(message.stream_id, message.stats)
        elif isinstance(message, StatsBatch) and self.version >= STATS_BATCH_VERSION:
            accepted = await db_call(stream_stats_batch_record)(
                worker_id=self.worker_id, reports=message.reports, buffer=self.stats_buffer
            )
            for item in accepted:
                observe_stream_report(item.stream_id, item.stats)
        elif isinstance(message, WorkerPoses):
            self.poses.publish(message)  # in memory, no database: this runs at the tick rate
        elif isinstance(message, StreamStopped):
            # Its last seconds are stored before the stream stops.
            await db_call(stream_stats_flush)(buffer=self.stats_buffer)
            await db_call(services.stream_stopped_by_worker)(
                worker_id=self.worker_id, stream_id=message.stream_id, reason=message.reason
            )
            await self.poses.stopped(message.stream_id)
        else:
            await self._reject("unexpected_type", f"a worker does not send {message.type}")

    def _heartbeat(self, load: float) -> bool:
        assert self.worker_id is not None
        alive = services.worker_heartbeat(worker_id=self.worker_id, load=load)
        # Heartbeats from any worker check the others: no separate timer is needed while at
        # least one worker is alive (and when none is, nothing can move anyway). At most one
        # reap at a time and one a second per process: with hundreds of workers, every
        # heartbeat reaping (and re-placing a silent worker's streams) filled the executor,
        # delayed the next heartbeats, and declared more workers dead.
        if _reaping.acquire(blocking=False):
            try:
                global _last_reap
                if time.monotonic() - _last_reap >= REAP_EVERY_S:
                    _last_reap = time.monotonic()
                    services.workers_reap()
            finally:
                _reaping.release()
        return alive

    # ------------------------------------------------------------------ channel layer

    async def worker_command(self, event: dict[str, Any]) -> None:
        message = event["message"]
        if message.get("type") == "stream_start":
            self.poses.streaming(
                message["stream_id"], message["session_id"], message.get("participant_id", "")
            )
        elif message.get("type") == "stream_stop":
            await self.poses.stopped(message["stream_id"])
        await self.send(json.dumps(message, separators=(",", ":")))

    async def worker_superseded(self, event: dict[str, Any]) -> None:
        if event.get("channel") != self.channel_name:
            await self.close(code=CLOSE_SUPERSEDED)
