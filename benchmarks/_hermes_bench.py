"""Shared plumbing of the hermes benchmarks: a throwaway SQLite database with users, Redis,
and a daphne process serving the platform on a loopback port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# Re-exported: bench_sessions takes it from here with the rest of the plumbing.
from apps.core.testing import free_port as free_port

BASE_DIR = Path(__file__).resolve().parent.parent


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@contextlib.contextmanager
def platform_env() -> Iterator[dict[str, str]]:
    """Environment for Django here and in daphne: a fresh PostgreSQL (SQLite locks up under
    concurrent joins from two processes) and a Redis, both embedded unless given."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hermes-bench-")))
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "vrplatform.settings.base"
        if not env.get("BENCH_DATABASE_URL"):
            from vrplatform.devservices import embedded_postgres

            env["DATABASE_URL"] = stack.enter_context(embedded_postgres(tmp / "pg"))
        else:
            env["DATABASE_URL"] = env["BENCH_DATABASE_URL"]
        env["LOG_LEVEL"] = "WARNING"
        # Persistent connections: each executor thread keeps its own; a new PostgreSQL
        # connection per call capped sign-ins at ~50/s.
        env["DB_CONN_MAX_AGE"] = "60"
        env["MAX_CONCURRENT_SESSIONS"] = "100000"
        env["CHANNEL_LAYER_PREFIX"] = f"hermesbench{os.getpid()}"
        if not env.get("REDIS_URL"):
            from vrplatform.devservices import embedded_redis

            env["REDIS_URL"] = stack.enter_context(embedded_redis(tmp / "redis"))
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        yield env


@contextlib.contextmanager
def daphne(
    env: dict[str, str], extra_env: dict[str, str] | None = None
) -> Iterator[tuple[int, int]]:
    """(port, pid) of a daphne process serving the platform."""
    port = free_port()
    # BENCH_DAPHNE_LOG=path keeps the server's stderr (tracebacks behind 1011 closes).
    log_path = os.environ.get("BENCH_DAPHNE_LOG")
    stderr = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "vrplatform.asgi:application",
        ],
        cwd=BASE_DIR,
        env={**env, **(extra_env or {})},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        wait_listening(port, process)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log_path:
            stderr.close()


def make_users(count: int, prefix: str) -> list[tuple[object, str]]:
    """``count`` participant accounts and an access token for each."""
    from apps.accounts.services import token_pair_issue, user_create

    users = []
    for i in range(count):
        user = user_create(username=f"{prefix}{i}", password=None, roles=["participant"])
        users.append((user, token_pair_issue(user=user).access))
    return users
