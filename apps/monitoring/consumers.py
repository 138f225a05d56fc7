"""The operator dashboard's live feed: one snapshot a second to staff with view_metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from apps.accounts.services import user_group_name
from apps.monitoring import selectors
from workers.protocol import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = CLOSE_UNAUTHORIZED
VIEW_METRICS = "monitoring.view_metrics"


@database_sync_to_async
def _allowed(user: Any) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(VIEW_METRICS)
    )


@database_sync_to_async
def _still_allowed(user_id: int) -> bool:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first()
    return bool(user and user.is_active and user.is_staff and user.has_perm(VIEW_METRICS))


@database_sync_to_async
def _snapshot() -> dict[str, Any]:
    return selectors.dashboard_snapshot()


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    """Session-cookie auth (AuthMiddlewareStack on this route only): the page is an admin page
    and the browser already has the admin session; the origin check in asgi.py stops other
    sites from riding that cookie."""

    _task: asyncio.Task[None] | None = None
    _group: str | None = None

    async def connect(self) -> None:
        # Refusals accept first: a close before the handshake completes reaches a browser as
        # 1006 (HTTP 403), so the page could not tell "not allowed" from a dropped connection
        # and would retry forever.
        await self.accept()
        user = self.scope.get("user")
        if not await _allowed(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # The user's group: a disabled account or withdrawn roles close the feed (issue 14).
        self._user_id = int(user.pk)
        self._group = user_group_name(self._user_id)
        await self.channel_layer.group_add(self._group, self.channel_name)
        self._task = asyncio.create_task(self._push())

    async def disconnect(self, code: int) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._group is not None:
            await self.channel_layer.group_discard(self._group, self.channel_name)

    async def _revoke(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def athena_revoked(self, message: dict[str, Any]) -> None:
        # Token revocations name bearer tokens (jtis); this feed runs on the cookie session,
        # so only an account-wide revocation (jtis None: the account disabled) concerns it.
        if message.get("jtis") is None:
            await self._revoke()

    async def wisdom_updated(self, message: dict[str, Any]) -> None:
        if not await _still_allowed(self._user_id):
            await self._revoke()

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
