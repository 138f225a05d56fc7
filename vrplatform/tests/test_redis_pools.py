"""Django's cache shares one Redis connection pool per process (vrplatform/redis_pools.py):
each ASGI request has a cache object of its own, and each used to open a Redis connection."""

import threading
from typing import Any

import redis
from django.conf import settings
from django.core.cache import caches


def test_cache_objects_of_different_threads_share_one_pool_and_its_connections() -> None:
    seen: list[tuple[Any, Any]] = []

    def use_the_cache(i: int) -> None:
        cache = caches["default"]  # a new cache object in each thread (and ASGI context)
        cache.set(f"pool-probe-{i}", i, 5)
        assert cache.get(f"pool-probe-{i}") == i
        seen.append((cache, cache._cache._get_connection_pool(write=True)))

    for i in range(4):
        t = threading.Thread(target=use_the_cache, args=(i,))
        t.start()
        t.join()
    assert len({id(cache) for cache, _ in seen}) == 4
    pools = {id(pool) for _, pool in seen}
    assert len(pools) == 1
    pool = seen[0][1]
    # Four requests one after another needed one connection, reused, not four.
    assert len(pool._available_connections) + len(pool._in_use_connections) == 1


def test_the_cache_still_reads_and_writes_real_redis() -> None:
    caches["default"].set("pool-probe", "value", 5)
    key = caches["default"].make_key("pool-probe")
    assert redis.Redis.from_url(settings.REDIS_URL).get(key) is not None
