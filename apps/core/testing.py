"""The one home of the helpers that run the platform as real processes, for tests, tools and
benchmarks: free ports, readiness waits, database URLs, child processes and the daphne
command line. Browser fixtures build on these (``apps/core/testing_browser.py``).

No Django import at module level: the security scan, the load generator, the benchmarks and
``deploy/compose_check.py`` use these before (or without) configuring Django.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent.parent
ASGI_APPLICATION = "vrplatform.asgi:application"

T = TypeVar("T")


def load_script(name: str, path: Path) -> ModuleType:
    """Import a script that is not in a package (a benchmark, a container helper) by its path,
    registered as ``name`` so the dataclasses and pickles inside it resolve."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


# --- ports and waits ---------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
            return int(response.status) == 200
    except OSError:
        return False


def _log_tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return ":\n" + log.read_text(errors="replace")[-3000:]


def wait_until(
    check: Callable[[], T | None],
    what: str,
    timeout: float = 30.0,
    *,
    interval: float = 0.1,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    retry: tuple[type[Exception], ...] = (),
) -> T:
    """Poll ``check`` until it returns something truthy, and return that (a readiness
    condition, not a sleep standing in for one).

    ``process``: the process being waited for; its exit fails the wait at once, with the tail
    of ``log``. ``retry``: exceptions of ``check`` that mean "not yet" (a service still
    starting) rather than a failure. Raises ``TimeoutError`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: exited ({process.returncode}){_log_tail(log)}")
        try:
            value = check()
        except retry as exc:
            value, last = None, exc
        else:
            last = value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})"
                + _log_tail(log)
            )
        time.sleep(interval)


# --- database URLs -----------------------------------------------------------------------------


def database_url_for(name: str) -> str:
    """``DATABASE_URL`` with its database replaced by ``name`` (e.g. the test database)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + name))


def current_database_url() -> str:
    """``DATABASE_URL`` pointed at the database Django uses in this process: under
    pytest-django the test database it created, which a server a test starts must use too."""
    from django.db import connection

    return database_url_for(connection.settings_dict["NAME"])


# --- processes ---------------------------------------------------------------------------------


def daphne_args(port: int, *options: str) -> list[str]:
    """The arguments (after the interpreter) of daphne serving the platform on
    127.0.0.1:``port``; ``options`` such as ``--proxy-headers`` go before the application."""
    return ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *options, ASGI_APPLICATION]


def spawn(
    args: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python <args>`` (this interpreter) in the repository with ``env`` over this
    process's environment, its output appended to ``log``."""
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(*procs: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM every process still running, then wait for each; SIGKILL whoever outlives
    ``timeout``. Signalling all first lets them shut down side by side."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """``process`` for the ``with`` block, stopped (``stop``) when it ends."""
    try:
        yield process
    finally:
        stop(process)


class Processes:
    """Child processes of one test or tool run, each logging to ``<dir>/<name>.log``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, args: list[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        proc = spawn(args, log=self.log_dir / f"{name}.log", env=env)
        self.procs[name] = proc
        return proc

    def daphne(self, name: str, env: Mapping[str, str] | None = None) -> str:
        """Start daphne serving the platform; returns its base URL once /healthz answers."""
        port = free_port()
        proc = self.start(name, daphne_args(port), env)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(f"{url}/healthz"), name, process=proc, log=self.path(name))
        return url

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        proc.send_signal(sig)
        proc.wait(timeout=15)

    def stop_all(self) -> None:
        stop(*self.procs.values())

    def path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log(self, name: str) -> str:
        return self.path(name).read_text(errors="replace")[-3000:]
