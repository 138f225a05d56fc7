"""Delivering channel-layer events after the surrounding transaction commits."""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def group_send_after_commit(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` once the current transaction commits (at once outside
    one). A full channel or a Redis blip is logged, never raised into the request."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:
            logger.exception(
                "could not deliver %s to %s", message.get("event") or message.get("type"), group
            )

    transaction.on_commit(send)
