#!/opt/venv/bin/python
"""Container healthcheck, by role (the entrypoint writes it to /tmp/vrp-role).

web: GET /healthz on the local daphne (Host: localhost, which ALLOWED_HOSTS must list).
Other roles: their main process (PID 1 after the entrypoint's exec) is alive.
"""

import os
import sys
import urllib.request
from pathlib import Path


def main() -> int:
    try:
        role = Path("/tmp/vrp-role").read_text().strip()  # noqa: S108 (written by the entrypoint)
    except OSError:
        return 1
    if role != "web":
        return 0 if Path("/proc/1").exists() else 1
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"}
    )
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
