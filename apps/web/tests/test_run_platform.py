"""``manage.py run_platform`` (``make run``) stops its children however it is stopped: a
SIGTERM (service managers, ``kill``) or SIGHUP (terminal closed) used to kill the launcher alone
and leave daphne and the streaming worker orphaned, still serving the port (issue 25)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from django.db import connection

from apps.core.testing import ROOT, database_url_for, free_port, http_ok, port_open, wait_until

# The subprocess uses the test database (migrated by pytest-django) and commits to it.
pytestmark = pytest.mark.django_db(transaction=True)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port()
    log = tmp_path / "run_platform.log"
    env = {**os.environ, "DATABASE_URL": database_url_for(connection.settings_dict["NAME"])}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run_platform", "--port", str(port), "--skip-setup"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    children: list[psutil.Process] = []
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), "run_platform to serve")
        wait_until(lambda: len(psutil.Process(proc.pid).children()) == 2, "daphne and the worker")
        children = psutil.Process(proc.pid).children()
        yield proc, port, log
    finally:
        # Whatever the test left (a failing run leaves orphans): stop what this test started.
        for pid in [proc.pid, *(c.pid for c in children)]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)


# Ctrl-C (SIGINT) always stopped them.
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_daphne_and_the_worker(
    platform: tuple[subprocess.Popen[bytes], int, Path], signum: int
) -> None:
    proc, port, log = platform
    children = [p.pid for p in psutil.Process(proc.pid).children()]
    assert len(children) == 2
    proc.send_signal(signum)
    proc.wait(timeout=15)
    wait_until(lambda: all(_gone(pid) for pid in children), "the children to exit", 5)
    assert not port_open(port), log.read_text()[-2000:]
