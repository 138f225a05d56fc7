"""Schemathesis against the platform's own OpenAPI schema, served by a real daphne.

Run under ``python -m vrplatform.devservices --`` (real PostgreSQL and Redis): migrates the
database it is given, creates one user per role, starts daphne and runs Schemathesis once
per role (and once anonymously) with that role's bearer token. The bar: no 5xx, and every
response conforms to the schema (status code, content type, headers, body).

    python -m deploy.security.api_fuzz [--max-examples 10] [--report-dir var/security]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from apps.core.testing import ROOT, Processes

logger = logging.getLogger("api_fuzz")
ROLES = ("anonymous", "participant", "creator", "operator", "admin")
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


def _prepare(env: dict[str, str]) -> dict[str, str]:
    """Migrate and create one user per role; returns role -> access token."""
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from apps.accounts.services import roles_sync, token_pair_issue, user_set_roles

    roles_sync()
    tokens = {}
    for role in ROLES[1:]:
        user, _ = get_user_model().objects.get_or_create(username=f"scan-{role}")
        user_set_roles(user=user, roles=[role])
        tokens[role] = token_pair_issue(user=user).access
    # Capacity for render_start: a registered worker whose command channel nobody reads
    # (without one every render_start is the documented 503 no_capacity).
    from apps.streaming import services as streaming

    worker, _ = streaming.worker_create(name="scan-worker")
    streaming.worker_register(
        worker_id=worker.id,
        channel_name="scanworker.commands",
        capabilities={"max_streams": 1024, "encoder": "libx264"},
    )
    _keep_alive(worker.id)
    return tokens


def _keep_alive(worker_id: object) -> None:
    """Heartbeat for the scan worker (silent workers are declared dead after 15 s)."""
    from django.db import connection

    from apps.streaming import services as streaming

    def beat() -> None:
        while True:
            streaming.worker_heartbeat(worker_id=worker_id, load=0.0)
            connection.close()
            time.sleep(2)  # a heartbeat period, not synchronisation

    threading.Thread(target=beat, daemon=True, name="scan-worker-heartbeat").start()


def _schemathesis(base: str, role: str, token: str | None, args: argparse.Namespace) -> int:
    report = Path(args.report_dir) / role
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{base}/api/schema/",
        "--checks",
        CHECKS,
        "--max-examples",
        str(args.max_examples),
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "2",
        "--generation-deterministic",  # also means no .schemathesis/ example database
        "--report",
        "junit",
        "--report-dir",
        str(report),
        "--no-color",
        # The schema documents bearer auth; the refresh/login bodies are not secrets here.
        "--warnings",
        "off",
    ]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    logger.info("schemathesis as %s", role)
    return subprocess.call(command, cwd=ROOT)  # noqa: S603


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=10)
    parser.add_argument("--report-dir", default="var/security/schemathesis")
    parser.add_argument("--roles", default=",".join(ROLES))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        parser.error("run under `python -m vrplatform.devservices --` (PostgreSQL and Redis)")
    env = {
        "DJANGO_SETTINGS_MODULE": "vrplatform.settings.test",
        "TEST_KEY_PREFIX": "apifuzz",
        "TEST_MEDIA_ROOT": tempfile.mkdtemp(prefix="apifuzz-media-"),
    }
    tokens = _prepare({**os.environ, **env})
    failed = []
    with tempfile.TemporaryDirectory(prefix="apifuzz-") as tmp:
        processes = Processes(Path(tmp))
        try:
            base = processes.daphne("daphne", env)
            for role in args.roles.split(","):
                if _schemathesis(base, role, tokens.get(role), args) != 0:
                    failed.append(role)
        finally:
            processes.stop_all()
            server_errors = [
                line
                for line in processes.log("daphne").splitlines()
                if "Traceback" in line or " 500 " in line
            ]
    print(f"api_fuzz: roles with failures: {failed or 'none'}")  # CLI output
    if server_errors:
        print("api_fuzz: daphne logged server errors:\n" + "\n".join(server_errors[:20]))
    return 1 if failed or server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
