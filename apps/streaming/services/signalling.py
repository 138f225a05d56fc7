"""The WebRTC signalling relay between a stream's worker and its viewer: the worker's offer and
candidates to the client, the client's answer and candidates to the worker (only for its own
stream), and the client's ICE restart (a fresh peer on the same worker)."""

import logging
import uuid
from typing import Any

from django.core.cache import cache
from django.db import transaction

from apps.core.errors import InvalidInput
from apps.streaming.ice import ice_config
from apps.streaming.models import Stream
from apps.streaming.selectors import stream_get_for_client, stream_get_for_worker
from apps.streaming.services.delivery import to_client, to_worker, worker_group
from apps.streaming.services.placement import initial_rung, quality_request, stream_start_message
from workers.protocol import ProtocolError, message_to_dict, parse_worker_message

logger = logging.getLogger(__name__)


@transaction.atomic
def stream_offer(*, worker_id: uuid.UUID, stream_id: str, sdp: dict[str, str]) -> bool:
    stream = stream_get_for_worker(worker_id=worker_id, stream_id=stream_id, lock=True)
    if stream is None or sdp.get("type") != "offer":
        return False
    assert stream.worker is not None
    stream.offer = sdp
    stream.encoder = str(stream.worker.capabilities.get("encoder", ""))[:32]
    stream.save(update_fields=["offer", "encoder", "updated_at"])
    to_client(stream, "morpheus:render_started", render_started_data(stream))
    return True


def render_started_data(stream: Stream) -> dict[str, Any]:
    return {
        "stream_id": str(stream.id),
        "offer": stream.offer,
        "quality": stream.quality_rung or initial_rung(stream),
        "encoder": stream.encoder,
        "placement": stream.placements,
        # The browser's RTCPeerConnection configuration, with its own TURN credentials.
        "ice": ice_config(user_id=stream.user_id),
    }


def stream_worker_candidate(
    *, worker_id: uuid.UUID, stream_id: str, candidate: dict[str, Any]
) -> bool:
    stream = stream_get_for_worker(worker_id=worker_id, stream_id=stream_id)
    if stream is None:
        return False
    to_client(stream, "morpheus:signal", {"stream_id": str(stream.id), "candidate": candidate})
    return True


def stream_client_signal(
    *, user_id: int, session_id: uuid.UUID, stream_id: str, data: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Validate a client's answer/candidate for its own stream; returns (worker group,
    message) to relay. Raises NotFound for a stream that is not the caller's."""
    stream = stream_get_for_client(user_id=user_id, session_id=session_id, stream_id=stream_id)
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


ICE_RESTART_MIN_INTERVAL_S = 2


@transaction.atomic
def stream_ice_restart(*, user_id: int, session_id: uuid.UUID, stream_id: Any) -> bool:
    """The client lost the media path (``disconnected``/``failed``: it roamed, its network
    changed): the same worker builds a fresh peer for the same stream (same session, same
    participant) with fresh TURN credentials and sends a new offer, which reaches the client
    as ``morpheus:render_started`` with the same ``stream_id``. aiortc cannot restart ICE on
    an existing connection, so a new peer connection is the restart.

    At most one per ``ICE_RESTART_MIN_INTERVAL_S`` per stream (clients retry while the
    network is down); False when one was refused for that."""
    stream = stream_get_for_client(user_id=user_id, session_id=session_id, stream_id=stream_id)
    if not cache.add(f"morpheus:ice_restart:{stream.pk}", 1, ICE_RESTART_MIN_INTERVAL_S):
        return False
    assert stream.worker is not None
    logger.info("stream %s: ICE restart asked by the client", stream.pk)
    stream.offer = None
    stream.save(update_fields=["offer", "updated_at"])
    to_worker(stream.worker, stream_start_message(stream))
    if stream.max_bitrate_kbps:
        to_worker(stream.worker, quality_request(stream))
    return True
