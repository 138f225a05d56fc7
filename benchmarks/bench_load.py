"""Load: many users behaving like the real clients, on P daphne processes, with a reconnect storm.

P daphne processes (``--processes``, default 2) share one Redis (channels-redis, the pose
store) and one PostgreSQL on this machine; the load generator (``workers/headset/load.py``, a
child process of its own) spreads users round-robin over them, as the gateway would. Users are
in sessions of 8 (one spectator each); ``--signins`` of them sign in with their password during
the ramp (spread over it, the real password hasher, measured apart), the rest hold the token
pair of an earlier sign-in. Each heartbeats at ``SESSION_HEARTBEAT_S``. Once all joined,
``--storm-after-s`` later the first daphne process is killed (SIGKILL) and restarted on its
port: its users refresh their tokens and reconnect with the web client's backoff; the storm is
the seconds from the first drop to the last of them joined again. ``--profile DIR`` runs the
other processes under cProfile (written when they stop). ``ulimit -n`` is raised for this process
and its children. Prints the report (JSON), then one closing line:

    load: connected N/M, heartbeat p50/p99 X/Y ms, lost L, reconnect storm S s

    .venv/bin/python benchmarks/bench_load.py --users 2000 --seconds 60
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
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

from apps.core.testing import Processes
from benchmarks._hermes_bench import BASE_DIR, cpu_seconds, free_port, platform_env, wait_listening
from workers.headset.load import closing_line
from workers.protocol import SESSION_HEARTBEAT_S, percentiles

SESSION_SIZE = 8
LOAD_PASSWORD = "load-pass-0123"  # noqa: S105 (throwaway bench accounts)


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def make_population(count: int, signins: int, prefix: str = "load") -> list[dict[str, str]]:
    """``count`` participants in sessions of SESSION_SIZE. Every ``count // signins``-th signs
    in with a password during the run; the others get the token pair of an earlier sign-in
    (``token_pair_issue``: a real refresh token the reconnects rotate). Bulk inserts and one
    password hash for all: the services' one-by-one path would take minutes at 10,000."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.db import transaction

    from apps.accounts.models import User
    from apps.accounts.services import token_pair_issue
    from apps.sessions import services

    every = max(1, count // signins) if signins else 0
    password = make_password(LOAD_PASSWORD)
    participant = Group.objects.get(name="participant")
    with transaction.atomic():
        signs_in = [bool(every) and i % every == 0 for i in range(count)]
        users = User.objects.bulk_create(
            [User(username=f"{prefix}{i}", password=password if signs_in[i] else "!")
             for i in range(count)],
            batch_size=2000,
        )  # fmt: skip
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
            entry = {"session_id": str(session.id)}
            if signs_in[i]:
                entry.update(username=user.username, password=LOAD_PASSWORD)
            else:
                pair = token_pair_issue(user=user)
                entry.update(access=pair.access, refresh=pair.refresh)
            out.append(entry)
    return out


def rest_mix(base: str, stop: threading.Event, workers: int = 4) -> dict[str, Any]:
    """authenticate, session_create, then session_status five times, in a loop per thread."""
    from apps.accounts.services import user_create

    for i in range(workers):
        user_create(username=f"rest{i}", password=LOAD_PASSWORD, roles=["participant"])
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
        # Paced like clients (stop.wait), not a login flood.
        headers: dict[str, str] = {}
        for n in itertools.count():
            if stop.is_set():
                return
            if n % 20 == 0:
                credentials = {"username": f"rest{i}", "password": LOAD_PASSWORD}
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


class Daphnes:
    """P daphne processes on fixed ports; the storm kills one and starts it again there."""

    def __init__(self, env: dict[str, str], count: int, log_dir: Path, profile: str | None) -> None:
        self.env = env
        self.ports = [free_port() for _ in range(count)]
        self.processes = Processes(log_dir)  # logs: <log_dir>/daphne-<i>.log
        for i in range(count):
            # Never the stormed process under cProfile: SIGKILL would lose its profile.
            self.start(i, str(Path(profile) / f"daphne-{i}.prof") if profile and i else None)
        for i in range(count):
            wait_listening(self.ports[i], self.processes.procs[f"daphne-{i}"], timeout=60)

    def start(self, i: int, profile: str | None = None) -> None:
        prefix = ["-m", "cProfile", "-o", profile] if profile else []
        self.processes.start(
            f"daphne-{i}",
            [*prefix, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.ports[i]),
             "vrplatform.asgi:application"],
            self.env,
        )  # fmt: skip

    def cpu(self) -> list[float]:
        return [cpu_seconds(proc.pid) for proc in self.processes.procs.values()]

    def storm(self, i: int = 0) -> float:
        """SIGKILL process ``i`` and start it again on its port; seconds until it listens."""
        self.processes.kill(f"daphne-{i}")
        started = time.monotonic()
        self.start(i)
        wait_listening(self.ports[i], self.processes.procs[f"daphne-{i}"], timeout=60)
        return time.monotonic() - started


def wait_file(path: Path, process: subprocess.Popen[str], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists():
            return True
        time.sleep(0.2)
    return False


def run_bench(
    env: dict[str, str],
    *,
    users: int,
    seconds: float,
    ramp_per_s: float,
    processes: int = 2,
    signins: int = 20,
    heartbeat_s: float = SESSION_HEARTBEAT_S,
    storm_after_s: float | None = None,
    storm: bool = True,
    storm_wait_s: float = 180.0,
    poses: bool = False,
    refresh: str = "always",
    rest: bool = False,
    profile_dir: str | None = None,
) -> dict[str, Any]:
    """The whole run against the database and Redis of ``env`` (Django set up on them)."""
    env = {**env, "THROTTLE_USER": "1000000/min", "THROTTLE_AUTHENTICATE": "1000000/min",
           "THROTTLE_ANON": "1000000/min"}  # fmt: skip
    prefix = f"load{os.getpid()}x"
    started = time.monotonic()
    population = make_population(users, min(signins, users), prefix)
    setup_s = time.monotonic() - started
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        users_file, ready_file = Path(tmp) / "users.json", Path(tmp) / "ready"
        users_file.write_text(json.dumps(population))
        daphnes = Daphnes(env, processes, Path(tmp), profile_dir)
        stack.callback(daphnes.processes.stop_all)
        stop = threading.Event()
        rest_report: dict[str, Any] = {}
        rest_thread = None
        if rest:
            base = f"http://127.0.0.1:{daphnes.ports[-1]}"
            rest_thread = threading.Thread(target=lambda: rest_report.update(rest_mix(base, stop)))
            rest_thread.start()
        after = heartbeat_s + 5.0 if storm_after_s is None else storm_after_s
        command = [sys.executable, "-m", "workers.headset.load", "--users", str(users_file),
                   "--seconds", str(max(seconds, after + 1.0) if storm else seconds),
                   "--ramp-per-s", str(ramp_per_s), "--heartbeat-s", str(heartbeat_s),
                   "--ready-file", str(ready_file), "--refresh", refresh]  # fmt: skip
        if storm:
            command += ["--storm-wait-s", str(storm_wait_s)]
        if poses:
            command.append("--poses")
        for port in daphnes.ports:
            command += ["--url", f"ws://127.0.0.1:{port}"]
        generator = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        out: list[str] = []
        readers = [
            threading.Thread(target=lambda s=s: out.append(s.read()))  # type: ignore[misc]
            for s in (generator.stdout, generator.stderr)
        ]
        for reader in readers:
            reader.start()
        ramp_ok = wait_file(ready_file, generator, within_s=users / ramp_per_s + 600)
        cpu_ready, t_ready = daphnes.cpu(), time.monotonic()
        gen_ready = cpu_seconds(generator.pid) if generator.poll() is None else 0.0
        restart_s = cpu_steady = None
        gen_steady: float | None = None
        steady_s = 0.0
        if ramp_ok and storm:
            time.sleep(after)
            cpu_storm, steady_s = daphnes.cpu(), time.monotonic() - t_ready
            cpu_steady = [b - a for a, b in zip(cpu_ready, cpu_storm, strict=True)]
            gen_steady = cpu_seconds(generator.pid) - gen_ready
            restart_s = daphnes.storm(0)
        generator.wait()
        if not storm and ramp_ok:
            steady_s = seconds
        for reader in readers:
            reader.join()
        stop.set()
        if rest_thread is not None:
            rest_thread.join()
        cpu_end = daphnes.cpu()
    if generator.returncode != 0:
        raise RuntimeError(f"load generator failed: {''.join(out)[-3000:]}")
    report = json.loads(next(s for s in out if s.lstrip().startswith("{")))
    if cpu_steady is None:  # no storm: the steady window is the generator's
        cpu_steady = [b - a for a, b in zip(cpu_ready, cpu_end, strict=True)]
        gen_steady = None  # the generator has exited: its CPU is gone with it
    per_process = [
        {
            "sockets": len(range(i, users, processes)),
            "cpu_share_steady": round(cpu / steady_s, 3) if steady_s else None,
        }
        for i, cpu in enumerate(cpu_steady)
    ]
    return {
        "users": users,
        "processes": processes,
        "heartbeat_s": heartbeat_s,
        "setup_s": round(setup_s, 1),
        "steady_window_s": round(steady_s, 1),
        "daphne": per_process,
        "generator_cpu_share_steady": (
            round(gen_steady / steady_s, 3) if steady_s and gen_steady is not None else None
        ),
        "storm_restart_s": None if restart_s is None else round(restart_s, 2),
        "ws": report,
        "rest": rest_report,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="steady state, storm inside")
    parser.add_argument("--ramp-per-s", type=float, default=100.0)
    parser.add_argument("--processes", type=int, default=2, help="daphne processes")
    parser.add_argument("--signins", type=int, default=20, help="password sign-ins in the ramp")
    parser.add_argument("--heartbeat-s", type=float, default=SESSION_HEARTBEAT_S)
    parser.add_argument("--storm-after-s", type=float, default=None, help="after all joined")
    parser.add_argument("--no-storm", action="store_true")
    parser.add_argument("--poses", action="store_true", help="5%% at 10 Hz, 15%% at 2 Hz")
    parser.add_argument(
        "--refresh",
        choices=["always", "expiring"],
        default="always",
        help="rotate tokens on every reconnect, or as api.js (near expiry)",
    )
    parser.add_argument("--rest", action="store_true", help="a paced REST mix alongside")
    parser.add_argument("--profile", default=None, help="dir: cProfile daphne 2..P")
    args = parser.parse_args()
    fd_limit = raise_fd_limit()
    with platform_env() as env:
        report = run_bench(
            env,
            users=args.users,
            seconds=args.seconds,
            ramp_per_s=args.ramp_per_s,
            processes=args.processes,
            signins=args.signins,
            heartbeat_s=args.heartbeat_s,
            storm_after_s=args.storm_after_s,
            storm=not args.no_storm,
            poses=args.poses,
            refresh=args.refresh,
            rest=args.rest,
            profile_dir=args.profile,
        )
    report["fd_limit"] = fd_limit
    print(json.dumps(report, indent=2))  # CLI output
    print(closing_line(report["ws"]))  # CLI output: the line make test-load ends with
    return 0


if __name__ == "__main__":
    sys.exit(main())
