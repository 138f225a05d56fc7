"""One Redis connection pool per process for Django's cache.

Django keeps a cache object per async context (``caches`` is context-local) and its
``RedisCache`` builds its connection pools per cache object. Under ASGI every HTTP request runs
in a context of its own, so every request built a new pool and opened (and health-checked) a
new Redis connection for its first cache read: the token denylist check of each API call
(benchmarks/RESULTS.md, "Issue 23: placement"). ``SharedPool`` hands every cache object of the
process the same redis-py pool for the same URL and options; redis-py pools are thread-safe and
reset themselves in a forked child.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from redis import ConnectionPool

_pools: dict[str, Any] = {}
_lock = threading.Lock()


def shared(key: str, build: Callable[[], Any]) -> Any:
    """The pool built once per process for ``key``."""
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = build()
        return pool


class SharedPool(ConnectionPool):
    """``RedisCache``'s ``pool_class``: redis-py's pool, one per URL and options per process."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> ConnectionPool:  # type: ignore[override]
        key = f"{url}|{sorted(options.items())!r}"
        return shared(key, lambda: ConnectionPool.from_url(url, **options))  # type: ignore[no-any-return]
