#!/opt/venv/bin/python
"""Container healthcheck, by role (the entrypoint writes it to /tmp/vrp-role).

web: GET /healthz on the local daphne (Host: localhost, which ALLOWED_HOSTS must list).
celery: the worker (PID 1 after the entrypoint's exec) holds a TCP connection to its broker.
streaming: the worker holds its connection to the platform (the worker WebSocket) on
PLATFORM_URL's port. A worker that lost its broker or platform and is retrying is unhealthy,
which `docker compose ps` shows; a live process alone says nothing.
Other roles (one-shot jobs): their process is alive.
"""

import os
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ESTABLISHED = "01"


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def connected_to(port: int, pid: int = 1) -> bool:
    """Whether process ``pid`` has an established TCP connection to remote ``port``."""
    inodes = _socket_inodes(pid)
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == ESTABLISHED and remote_port == port and fields[9] in inodes:
                return True
    return False


def _port(url: str, default: int) -> int:
    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme, default)


def web_healthy() -> bool:
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"}
    )
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def main() -> int:
    try:
        role = Path("/tmp/vrp-role").read_text().strip()  # noqa: S108 (written by the entrypoint)
    except OSError:
        return 1
    if role == "web":
        return 0 if web_healthy() else 1
    if role == "celery":
        broker = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL", "")
        return 0 if connected_to(_port(broker, 6379)) else 1
    if role == "streaming":
        return 0 if connected_to(_port(os.environ.get("PLATFORM_URL", ""), 8000)) else 1
    return 0 if Path("/proc/1").exists() else 1


if __name__ == "__main__":
    sys.exit(main())
