"""Writes of the streaming control plane, one module per seam:

- ``registry``: worker identities, tokens, (re)registration, heartbeats, reaping dead workers;
- ``placement``: choosing a worker, (re)assigning streams, the queue, a stream's end;
- ``streams``: a stream's life as its user, the platform and its worker drive it; voice mute;
- ``signalling``: the WebRTC offer/answer/candidate relay and ICE restarts;
- ``delivery``: the after-commit sends to a worker's group and a stream's owner.

Reads (the stream a message names, the queue) are in ``apps.streaming.selectors``; stats
reports and their retention in ``apps.streaming.stats``. Callers outside this package import
the public functions from here (``from apps.streaming.services import stream_start``), so a
function can move between the modules without touching them; the modules import each other.
"""

from apps.streaming.services.delivery import worker_group
from apps.streaming.services.placement import dead_after, queue_ttl, worker_choose
from apps.streaming.services.registry import (
    WORKER_NAME_MAX,
    worker_authenticate,
    worker_create,
    worker_disconnected,
    worker_drain,
    worker_heartbeat,
    worker_register,
    worker_token_rotate,
    workers_reap,
)
from apps.streaming.services.signalling import (
    ICE_RESTART_MIN_INTERVAL_S,
    render_started_data,
    stream_client_signal,
    stream_ice_restart,
    stream_offer,
    stream_worker_candidate,
)
from apps.streaming.services.streams import (
    QUALITIES,
    stream_client_quality,
    stream_quality_adjust,
    stream_start,
    stream_stop,
    stream_stopped_by_worker,
    streams_stop_for_participant,
    streams_stop_for_session,
    streams_stop_for_signins,
    streams_stop_for_user,
    streams_stop_unless_allowed,
    voice_mute,
)

__all__ = [
    "ICE_RESTART_MIN_INTERVAL_S",
    "QUALITIES",
    "WORKER_NAME_MAX",
    "dead_after",
    "queue_ttl",
    "render_started_data",
    "stream_client_quality",
    "stream_client_signal",
    "stream_ice_restart",
    "stream_offer",
    "stream_quality_adjust",
    "stream_start",
    "stream_stop",
    "stream_stopped_by_worker",
    "stream_worker_candidate",
    "streams_stop_for_participant",
    "streams_stop_for_session",
    "streams_stop_for_signins",
    "streams_stop_for_user",
    "streams_stop_unless_allowed",
    "voice_mute",
    "worker_authenticate",
    "worker_choose",
    "worker_create",
    "worker_disconnected",
    "worker_drain",
    "worker_group",
    "worker_heartbeat",
    "worker_register",
    "worker_token_rotate",
    "workers_reap",
]
