"""What every WebSocket consumer of the platform shares: database calls off the event loop on
the loop's executor (counted, for admission control), and a dispatch without Channels' hop to
its one sync thread.

Channels runs ``database_sync_to_async`` calls on one thread per process by default
(``thread_sensitive=True``), and its ``dispatch`` hops there before every frame and layer
message to close stale connections. One thread for every socket of a process serialised
heartbeats behind sign-ins (the p99 stall of bench_connections) and a worker's offer behind
every other worker's stats batch (bench_sim_workers' placement phase). None of the consumers'
calls needs thread affinity: each is one self-contained selector or service call, which closes
stale connections on its own thread before and after.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async

P = ParamSpec("P")
R = TypeVar("R")

# Calls waiting for or running on the executor now. One event loop per process: a counter.
_backlog = 0


def db_backlog() -> int:
    """Database calls of this process's sockets now waiting or running."""
    return _backlog


def db_call(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``func`` as a coroutine on the loop's default executor (daphne sizes it from
    ``ASGI_THREADS``), with that thread's own database connection, counted in ``db_backlog``."""
    call = database_sync_to_async(func, thread_sensitive=False)

    @functools.wraps(func)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
        global _backlog
        _backlog += 1
        try:
            return await call(*args, **kwargs)  # type: ignore[no-any-return]
        finally:
            _backlog -= 1

    return counted


class DirectDispatch:
    """A consumer mixin: each message goes straight to its handler, without Channels' hop to
    the sync thread (the consumer reaches the database only through ``db_call``)."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


class LoopSemaphore:
    """An ``asyncio.Semaphore`` of ``size()`` slots per event loop: a semaphore belongs to the
    loop that first waits on it, and tests (and daphne restarts in one interpreter) run several
    loops one after another."""

    def __init__(self, size: Callable[[], int]) -> None:
        self._size = size
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self._size())
        return slots
