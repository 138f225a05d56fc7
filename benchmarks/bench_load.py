"""Load: many concurrent authenticated WebSocket users in sessions, plus a REST mix.

Two daphne processes share one Redis (and one PostgreSQL) on this machine; the load generator
(``workers/headset/load.py``, in a child process of its own) spreads users round-robin over
them: each joins its session (8 members), heartbeats every 10 s (echoed: loss and round trip),
and a fifth of them send poses (5 % at 10 Hz, 15 % at 2 Hz). Meanwhile a REST mix runs from a
thread pool: authenticate, session_create, session_status. Loopback only; ``ulimit -n`` is
raised for this process and its children. Prints one JSON object.

    .venv/bin/python benchmarks/bench_load.py --users 2000 --seconds 30
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from benchmarks._hermes_bench import BASE_DIR, daphne, platform_env
from workers.protocol import percentiles

SESSION_SIZE = 8


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def make_population(count: int) -> list[dict[str, str]]:
    """``count`` participants in sessions of SESSION_SIZE, each with an access token; bulk
    inserts, since the services' one-by-one path would take minutes at 10,000."""
    from django.contrib.auth.models import Group

    from apps.accounts.models import User
    from apps.accounts.tokens import access_token_encode
    from apps.sessions import services

    participant = Group.objects.get(name="participant")
    users = User.objects.bulk_create(
        [User(username=f"load{i}", password="!") for i in range(count)]  # noqa: S106 (unusable), batch_size=2000
    )
    User.groups.through.objects.bulk_create(
        [User.groups.through(user_id=u.pk, group_id=participant.pk) for u in users],
        batch_size=2000,
    )
    out = []
    session = None
    for i, user in enumerate(users):
        if i % SESSION_SIZE == 0:
            session = services.session_create(
                owner=user, name=f"load {i}", max_participants=SESSION_SIZE
            )
        assert session is not None
        token, _ = access_token_encode(user_id=user.pk, roles=["participant"])
        out.append({"session_id": str(session.id), "token": token})
    return out


REST_PASSWORD = "rest-pass-0123"  # noqa: S105 (throwaway bench accounts)


def rest_mix(base: str, stop: threading.Event, workers: int = 4) -> dict[str, Any]:
    """authenticate, session_create, then session_status five times, in a loop per thread."""
    from apps.accounts.services import user_create

    for i in range(workers):
        user_create(username=f"rest{i}", password=REST_PASSWORD, roles=["participant"])
    latencies: dict[str, list[float]] = {
        "authenticate": [],
        "session_create": [],
        "session_status": [],
    }
    errors: dict[str, int] = {}

    def timed(name: str, method: str, url: str, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            response = requests.request(method, url, timeout=30, **kwargs)
        except requests.RequestException as exc:
            key = f"{name}:{type(exc).__name__}"
            errors[key] = errors.get(key, 0) + 1
            return None
        latencies[name].append((time.monotonic() - started) * 1000.0)
        if response.status_code >= 400:
            key = f"{name}:{response.status_code}"
            errors[key] = errors.get(key, 0) + 1
            return None
        return response

    def loop(i: int) -> None:
        # A client signs in now and then, creates a session, then polls its status; paced
        # (stop.wait) like clients, not a login flood: password hashing runs on the same
        # thread as the process's WebSocket database work (see deploy/TESTING.md).
        headers: dict[str, str] = {}
        for n in itertools.count():
            if stop.is_set():
                return
            if n % 20 == 0:
                credentials = {"username": f"rest{i}", "password": REST_PASSWORD}
                auth_url = f"{base}/api/athena/authenticate"
                login = timed("authenticate", "POST", auth_url, json=credentials)
                if login is None:
                    stop.wait(1.0)
                    continue
                headers = {"Authorization": f"Bearer {login.json()['access']}"}
            created = timed(
                "session_create",
                "POST",
                f"{base}/api/hermes/session_create",
                json={"name": "rest"},
                headers=headers,
            )
            if created is not None:
                status_url = f"{base}/api/hermes/session_status/{created.json()['id']}"
                for _ in range(5):
                    timed("session_status", "GET", status_url, headers=headers)
                    stop.wait(0.1)

    with ThreadPoolExecutor(workers) as pool:
        for i in range(workers):
            pool.submit(loop, i)
        stop.wait()
    result: dict[str, Any] = {
        name: {
            "requests": len(values),
            "p50_ms": percentiles(values, digits=1).p50,
            "p99_ms": percentiles(values, digits=1).p99,
        }
        for name, values in latencies.items()
    }
    result["errors"] = errors
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--ramp-per-s", type=float, default=100.0)
    parser.add_argument("--no-poses", action="store_true", help="heartbeats and joins only")
    args = parser.parse_args()
    fd_limit = raise_fd_limit()
    with platform_env() as env, tempfile.TemporaryDirectory() as tmp:
        env = {**env, "HERMES_IDLE_TIMEOUT_S": "60", "THROTTLE_USER": "1000000/min",
               "THROTTLE_AUTHENTICATE": "1000000/min", "THROTTLE_ANON": "1000000/min"}  # fmt: skip
        started = time.monotonic()
        population = make_population(args.users)
        setup_s = time.monotonic() - started
        users_file = Path(tmp) / "users.json"
        users_file.write_text(json.dumps(population))
        with contextlib.ExitStack() as stack:
            ports = [stack.enter_context(daphne(env))[0] for _ in range(2)]
            stop = threading.Event()
            rest: dict[str, Any] = {}
            rest_thread = threading.Thread(
                target=lambda: rest.update(rest_mix(f"http://127.0.0.1:{ports[0]}", stop))
            )
            rest_thread.start()
            command = [
                sys.executable,
                "-m",
                "workers.headset.load",
                "--users",
                str(users_file),
                "--seconds",
                str(args.seconds),
                "--ramp-per-s",
                str(args.ramp_per_s),
            ]
            if args.no_poses:
                command.append("--no-poses")
            for port in ports:
                command += ["--url", f"ws://127.0.0.1:{port}"]  # fmt: skip
            done = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True,
                                  text=True, check=False)  # fmt: skip
            stop.set()
            rest_thread.join()
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return 1
    report = {"fd_limit": fd_limit, "setup_s": round(setup_s, 1), "ws": json.loads(done.stdout),
              "rest": rest}  # fmt: skip
    print(json.dumps(report, indent=2))  # CLI output
    return 0


if __name__ == "__main__":
    sys.exit(main())
