"""The one way the platform sends channel-layer events: after the surrounding transaction
commits (Zulip's ``send_event_on_commit`` is the model).

The caller names who receives an event (a group); the message is sent only if the write it
reports commits. A send that fails (Redis down, a full channel) is logged and counted
(``vrplatform_event_send_failures_total``) and never raised: the write is committed, so the
request that made it must not fail, and the callbacks registered after this one still run.
"""

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.core.instruments import event_send_failures

logger = logging.getLogger(__name__)

Message = dict[str, Any]


def send_event_on_commit(group: str, message: Message | Callable[[], Message]) -> None:
    """Send ``message`` to ``group`` once the current transaction commits (at once outside
    one). ``message`` may be a function, called at commit time, for events whose content
    must be read after the write (e.g. the roles a user now has)."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        body: Message = {}
        try:
            body = message() if callable(message) else message
            async_to_sync(layer.group_send)(group, body)
        except Exception:
            kind = str(body.get("event") or body.get("type") or "unknown")
            event_send_failures.labels(event=kind[:40]).inc()
            logger.exception("could not deliver %s to %s", kind, group)

    transaction.on_commit(send)


def run_on_commit(func: Callable[[], Any], *, what: str) -> None:
    """Run a side effect after commit; a failure is logged and counted like a failed send,
    and does not stop the other after-commit work of the same transaction."""

    def run() -> None:
        try:
            func()
        except Exception:
            event_send_failures.labels(event=what[:40]).inc()
            logger.exception("after-commit %s failed", what)

    transaction.on_commit(run)
