"""Redis behind Sentinel for Django's cache (``REDIS_SENTINELS``): a connection pool that Django's
``RedisCache`` can build from its ``LOCATION`` URL.

Django's cache calls ``pool_class.from_url(location, **OPTIONS)``; redis-py's
``SentinelConnectionPool`` has no such constructor, because its address is the service name
plus the sentinels, not a URL. Here the URL keeps giving the database number and password
(its host is ignored) and OPTIONS carry ``sentinels`` and ``master_name``. The channel layer
(channels-redis) and Celery (kombu) speak Sentinel themselves; see ``settings/base.py``.
"""

from __future__ import annotations

from typing import Any

from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelConnectionPool

from vrplatform.redis_pools import shared


def parse_sentinels(value: str) -> list[tuple[str, int]]:
    """``"host-a:26379,host-b:26379"`` -> ``[("host-a", 26379), ("host-b", 26379)]``; the port
    defaults to Sentinel's 26379."""
    out = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "26379")
        out.append((host.strip("[]"), int(port or 26379)))
    return out


class SentinelPool(SentinelConnectionPool):
    """The master of ``master_name`` as found by ``sentinels``, for Django's ``RedisCache``."""

    @classmethod
    def from_url(  # type: ignore[override]
        cls,
        url: str,
        *,
        sentinels: list[tuple[str, int]],
        master_name: str,
        sentinel_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SentinelPool:
        def build() -> SentinelPool:
            from_url = {k: v for k, v in parse_url(url).items() if k not in {"host", "port"}}
            sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)
            return cls(master_name, sentinel, **{**from_url, **kwargs})

        # One per process, as vrplatform/redis_pools.py says of the plain pool.
        key = f"{url}|{sentinels!r}|{master_name}|{sentinel_kwargs!r}|{sorted(kwargs.items())!r}"
        return shared(key, build)  # type: ignore[no-any-return]
