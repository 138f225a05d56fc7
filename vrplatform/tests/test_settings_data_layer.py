"""The data-layer settings for a cluster past one PostgreSQL and one Redis (deploy/README.md
"Cluster sizing"): PgBouncer in transaction mode, a read replica, Redis under Sentinel. Each
environment is read by a fresh interpreter, as a process starting with it would."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from channels_redis.utils import create_pool
from redis.sentinel import SentinelConnectionPool

from vrplatform.db_routers import ReplicaRouter
from vrplatform.redis_sentinel import SentinelPool, parse_sentinels

ROOT = Path(__file__).resolve().parents[2]
PRIMARY = "postgres://vrp:pw@pgbouncer.kairo.svc:6432/vrp"
_PRINT = """
import json, vrplatform.settings.base as b
print(json.dumps({
    "databases": b.DATABASES,
    "routers": getattr(b, "DATABASE_ROUTERS", []),
    "caches": b.CACHES,
    "layer": b.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"],
    "broker": b.CELERY_BROKER_URL,
    "broker_options": getattr(b, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
}, default=str))
"""


def _settings(**overrides: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "REDIS", "DB_"))}
    env.update({"DATABASE_URL": PRIMARY, "REDIS_URL": "redis://:secret@redis.kairo.svc:6379/2"})
    env.update(overrides)
    out = subprocess.run(
        [sys.executable, "-c", _PRINT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_defaults_are_unchanged() -> None:
    s = _settings()
    assert set(s["databases"]) == {"default"}
    assert "DISABLE_SERVER_SIDE_CURSORS" not in s["databases"]["default"]
    assert s["routers"] == []
    assert s["layer"][0]["address"] == "redis://:secret@redis.kairo.svc:6379/2"
    assert s["broker"] == "redis://:secret@redis.kairo.svc:6379/2"
    assert s["caches"]["default"]["OPTIONS"]["pool_class"] == "vrplatform.redis_pools.SharedPool"
    # A pool of PostgreSQL connections per process; no persistent connections beside it.
    default = s["databases"]["default"]
    assert default["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 16, "timeout": 10.0}
    assert default["CONN_MAX_AGE"] == 0


def test_the_connection_pool_can_be_turned_off() -> None:
    s = _settings(DB_POOL="false", DB_CONN_MAX_AGE="60")
    assert "pool" not in s["databases"]["default"].get("OPTIONS", {})
    assert s["databases"]["default"]["CONN_MAX_AGE"] == 60


def test_pgbouncer_transaction_mode() -> None:
    s = _settings(DB_TRANSACTION_POOLER="true", DATABASE_REPLICA_URL=PRIMARY.replace("pgb", "rep"))
    for alias in ("default", "replica"):
        db = s["databases"][alias]
        assert db["DISABLE_SERVER_SIDE_CURSORS"] is True
        # Prepared statements stay off: Django's psycopg default (client-side binding).
        assert "server_side_binding" not in db.get("OPTIONS", {})
    assert s["databases"]["default"]["PORT"] == 6432


def test_read_replica_and_its_router() -> None:
    s = _settings(DATABASE_REPLICA_URL="postgres://vrp:pw@replica.kairo.svc:5432/vrp")
    replica = s["databases"]["replica"]
    assert replica["HOST"] == "replica.kairo.svc"
    assert replica["TEST"] == {"MIRROR": "default"}
    assert s["routers"] == ["vrplatform.db_routers.ReplicaRouter"]


@pytest.mark.parametrize(("app", "read"), [("monitoring", "replica"), ("sessions", None)])
def test_router_sends_only_the_listed_apps_reads_to_the_replica(
    app: str, read: str | None, settings: Any
) -> None:
    settings.DATABASE_REPLICA_APPS = ["monitoring"]

    class Meta:
        app_label = app

    model: Any = type("M", (), {"_meta": Meta})
    router = ReplicaRouter()
    assert router.db_for_read(model) == read
    assert router.db_for_write(model) == "default"
    assert router.allow_migrate("replica", app) is False
    assert router.allow_migrate("default", app) is True


def test_redis_sentinel_for_cache_channel_layer_and_celery() -> None:
    s = _settings(REDIS_SENTINELS="sentinel-0:26379, sentinel-1", REDIS_SENTINEL_MASTER="kairo")
    sentinels = [["sentinel-0", 26379], ["sentinel-1", 26379]]
    host = s["layer"][0]
    assert host["sentinels"] == sentinels
    assert host["master_name"] == "kairo"
    assert "address" not in host
    options = s["caches"]["default"]["OPTIONS"]
    assert options["pool_class"] == "vrplatform.redis_sentinel.SentinelPool"  # shared too
    assert options["sentinels"] == sentinels
    assert (
        s["broker"] == "sentinel://:secret@sentinel-0:26379/2;sentinel://:secret@sentinel-1:26379/2"
    )
    assert s["broker_options"] == {"master_name": "kairo"}


def test_the_sentinel_pools_build_without_connecting() -> None:
    assert parse_sentinels("a:1, [::1]:26380,b") == [("a", 1), ("::1", 26380), ("b", 26379)]
    pool = SentinelPool.from_url(
        "redis://:secret@ignored:6379/2", sentinels=[("s", 26379)], master_name="kairo"
    )
    assert pool.service_name == "kairo"
    again = SentinelPool.from_url(
        "redis://:secret@ignored:6379/2", sentinels=[("s", 26379)], master_name="kairo"
    )
    assert again is pool  # one per process, whichever cache object asks
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["password"] == "secret"
    layer_pool = create_pool({"sentinels": [("s", 26379)], "master_name": "kairo"})
    assert layer_pool.service_name == "kairo"
    assert isinstance(pool, SentinelConnectionPool)
