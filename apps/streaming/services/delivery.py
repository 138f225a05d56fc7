"""How the streaming services reach others: commands to a worker's control socket and events to
a stream's owner, both sent after commit (``apps.core.events.send_event_on_commit``) to a group
the caller names: a worker's group for commands, ``member_group(session, user)`` for a stream's
owner."""

import uuid
from typing import Any

from apps.core.events import send_event_on_commit
from apps.sessions.extensions import member_group
from apps.streaming.models import Stream, StreamingWorker
from workers.protocol import message_to_dict


def worker_group(worker_id: uuid.UUID) -> str:
    """Channel-layer group of a worker's control socket."""
    return f"morpheus.worker.{worker_id.hex}"


def to_worker(worker: StreamingWorker, message: Any) -> None:
    """A ``workers.protocol`` command to the worker's control socket, after commit."""
    send_event_on_commit(
        worker_group(worker.id), {"type": "worker.command", "message": message_to_dict(message)}
    )


def to_client(stream: Stream, event: str, data: dict[str, Any]) -> None:
    """An event to the stream's owner (their session socket), after commit."""
    send_event_on_commit(
        member_group(stream.session_id, stream.user_id),
        {"type": "client.event", "event": event, "data": data},
    )
