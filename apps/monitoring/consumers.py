"""The operator dashboard's live feed: one snapshot a second to staff with view_metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from apps.monitoring import selectors
from workers.protocol import CLOSE_FORBIDDEN

logger = logging.getLogger(__name__)


@database_sync_to_async
def _allowed(user: Any) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm("monitoring.view_metrics")
    )


@database_sync_to_async
def _snapshot() -> dict[str, Any]:
    return selectors.dashboard_snapshot()


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    """Session-cookie auth (AuthMiddlewareStack on this route only): the page is an admin page
    and the browser already has the admin session; the origin check in asgi.py stops other
    sites from riding that cookie."""

    _task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        # Refusals accept first: a close before the handshake completes reaches a browser as
        # 1006 (HTTP 403), so the page could not tell "not allowed" from a dropped connection
        # and would retry forever.
        await self.accept()
        if not await _allowed(self.scope.get("user")):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self._task = asyncio.create_task(self._push())

    async def disconnect(self, code: int) -> None:
        if self._task is not None:
            self._task.cancel()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        return None  # the feed is one-way; drill-down filtering happens in the page

    async def _push(self) -> None:
        interval = float(settings.MONITORING_DASHBOARD_INTERVAL_S)
        while True:
            try:
                await self.send_json({"event": "delphi:dashboard", "data": await _snapshot()})
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("dashboard snapshot failed")
            await asyncio.sleep(interval)
