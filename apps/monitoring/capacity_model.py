"""Capacity model: pods per tier for a number of users, from measured per-process figures.

Pure logic (no Django): the cluster sizing in ``deploy/README.md`` is this module's output
(``python -m apps.monitoring.capacity_model``), and the web tier's autoscaling metric
(``vrplatform_web_pods_desired``, read by the HPA in ``deploy/kubernetes/auto-scaling.yaml``)
is ``web_pods`` of the same model applied to the live platform, so the table and the
autoscaler cannot disagree.

Every figure below names the ``benchmarks/RESULTS.md`` section it comes from. Figures marked
"to re-measure" are not measured on this code yet: an existing measurement of a neighbouring
path, or an assumption stated as such; the README table says which.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

from apps.monitoring.capacity_forecast import workers_for

# ------------------------------------------------------------------ measured figures

# "Issue 23: load at 10,000 users": at the 25 s heartbeat steady sockets are not the limit
# (~10 µs of a core per socket per second; "10,000 idle sockets fit in one core"). Measured up
# to 1,000 per process at 25 s (2,000-2,500 at 1 Hz in "Sessions (issue 3) → Connections"); 5,000
# is the figure derived there (200 beats/s = 0.05 core): a cap, to re-measure at that count.
SOCKETS_PER_DAPHNE = 5_000
# Same section: ~260 µs of daphne CPU per heartbeat (275 µs in "Sessions → Connections", 90% in
# Twisted/autobahn framing and Channels' dispatch), so the cost of any small message through a
# socket consumer. Used for pose snapshots to spectators too: to re-measure.
CORE_S_PER_SOCKET_MESSAGE = 260e-6
# Same section: a fixed ~0.07 core per daphne process (pose feed poll, presence, daphne's 1 Hz
# application check).
CORE_PER_DAPHNE_PROCESS = 0.07
# Same section: ~15 ms of a core per connect (authenticate + join) and 14.5-18.3 ms per token
# refresh; the reconnect storm (all sockets of one process drop and come back) must recover
# within RECONNECT_STORM_S on the other processes' spare cores.
CORE_S_PER_RECONNECT = 15e-3 + 16e-3
RECONNECT_STORM_S = 30.0
# "Issue 23: placement" (simulated workers against the real platform, quiet 2-core box,
# medians of 3 runs at 100 workers x 8 streams): 0.69 ms of web CPU per recorded report, all
# web work of the steady phase counted; 0.12 ms of PostgreSQL CPU per report; 1.25 SQL
# statements per report (heartbeats and foreign-key checks included); 1,232 Redis ops/s at
# 806 reports/s (~1.5 per report beside the pose feed). (The earlier "Issue 23: simulated
# workers" figures, 2.82 / 0.4 ms, were taken on a shared box before the connection pools.)
CORE_S_PER_STATS_REPORT = 0.69e-3
POSTGRES_CORE_S_PER_REPORT = 0.12e-3
SQL_PER_STATS_REPORT = 1.25
REDIS_OPS_PER_STATS_REPORT = 1.5
# Same section: per placement (render_start, the worker's stream_start and offer, the first
# stats), all work of the placement phase counted: 27.8 ms of web CPU, 6.5 ms of PostgreSQL
# CPU, ~36 SQL statements. Placements no longer serialise on a lock over every worker row: they
# scale with web pods (only one session's placements take turns, for stickiness).
CORE_S_PER_PLACEMENT = 27.8e-3
POSTGRES_CORE_S_PER_PLACEMENT = 6.5e-3
SQL_PER_PLACEMENT = 36.0
# apps/sessions/poses.py: the pose feed ticks at SESSION_TICK_HZ (30); a script call or a
# pipelined exchange counted as one Redis op.
SESSION_TICK_HZ = 30

# ------------------------------------------------------------------ assumed figures (to re-measure)

# The largest primary we plan on before writes must be split (cores); past this, reads go to
# replicas (DATABASE_REPLICA_URL) and the model reports "postgres-limit".
POSTGRES_MAX_CORES = 32
# Server connections PostgreSQL is run with (max_connections minus superuser reserve).
POSTGRES_MAX_CONNECTIONS = 200
# Connections each pod may hold without PgBouncer: a daphne process's pool is at most
# DB_POOL_MAX_SIZE (16, settings/base.py); Celery one per child (2).
CONNECTIONS_PER_WEB_POD = 16
CONNECTIONS_PER_CELERY_POD = 2
# Redis: one single-threaded instance, small commands and short Lua scripts; to re-measure.
REDIS_OPS_PER_INSTANCE = 40_000  # "Issue 23: simulated workers": 1,946 ops/s on 0.05 core
# Celery: the periodic work (stats fold every 10 min, reapers) grows with streams; one pod
# (2 children) assumed to carry 5,000 streams' fold: to re-measure.
STREAMS_PER_CELERY_POD = 5_000

# ------------------------------------------------------------------ policy

TARGET_UTILIZATION = 0.7  # every tier sized to run at 70% (the web HPA's CPU target too)
MIN_WEB_PODS = 2  # two for availability (PodDisruptionBudget minAvailable 1)
MIN_CELERY_PODS = 2
GPU_HEADROOM = 0.2  # as MONITORING_CAPACITY_HEADROOM
STANDARD_USERS = (1_000, 10_000, 100_000)


@dataclass(frozen=True, slots=True)
class Rung:
    """A quality rung's share of the streams and the streams one GPU worker carries at it."""

    name: str
    share: float
    streams_per_worker: int

    @classmethod
    def parse(cls, text: str) -> Rung:
        """``"1080p:0.7:8"`` (name, share of streams, streams per worker)."""
        name, share, per_worker = text.split(":")
        return cls(name, float(share), int(per_worker))


# Streams per GPU worker at a rung: not measured on a GPU yet ("Renderer (issue 4)" and
# "Streaming (issue 5)": GPU not measured; the worker's default WORKER_MAX_STREAMS is 4).
# 8 is the issue's planning figure (10,000 streams on ~1,250 workers) and what "Issue 23:
# stats path" measured the stats cost at: to re-measure on a GPU per rung.
DEFAULT_RUNGS = (Rung("1080p", 1.0, 8),)


@dataclass(frozen=True, slots=True)
class Workload:
    """What the cluster carries. A streamed user has one stream on a GPU worker (poses go to
    it over WebRTC); a spectator receives pose snapshots through the platform."""

    users: int
    # "Issue 23: load at 10,000 users" ran sessions of 8 with one spectator.
    streamed_share: float = 0.875
    rungs: tuple[Rung, ...] = DEFAULT_RUNGS
    heartbeat_s: float = 25.0
    session_size: int = 8
    # Share of sessions (and of spectators) with a pose changing each tick: snapshots are sent
    # and rooms exchanged only for changed poses. Assumed; the load test ran 0.
    snapshot_share: float = 0.2
    stream_minutes: float = 20.0  # mean stream lifetime: placements/s = streams / lifetime
    # Gateway routes a session's members to one daphne process (then one pose room per
    # session); without it a session has rooms on up to session_size processes.
    session_affinity: bool = False


@dataclass(frozen=True, slots=True)
class Sizing:
    users: int
    streams: int
    gpu_workers: int
    web_pods: int
    celery_pods: int
    postgres_cores: int
    redis_instances: int
    pgbouncer: bool
    sql_per_s: float
    redis_ops_per_s: float
    web_core_s: float  # cores of daphne work per second, before the utilisation target
    limit: str  # the tier that bounds the web pods: "sockets" or "cpu"
    saturates_first: str  # first shared tier past one instance: "redis", "postgres" or "none"


def _ceil(x: float) -> int:
    return math.ceil(x - 1e-9)


def web_load(*, users: int, streams: int, placements_per_s: float, w: Workload) -> float:
    """Cores of daphne work per second: heartbeats, snapshots, stats reports, placements."""
    spectators = max(users - streams, 0)
    beats = users / w.heartbeat_s
    snapshots = spectators * w.snapshot_share * SESSION_TICK_HZ
    return (
        (beats + snapshots) * CORE_S_PER_SOCKET_MESSAGE
        + streams * CORE_S_PER_STATS_REPORT
        + placements_per_s * CORE_S_PER_PLACEMENT
    )


def web_pods(*, users: int, streams: int, w: Workload) -> tuple[int, str]:
    """Daphne pods (one process, one core each) for ``users`` sockets and ``streams`` reporting
    at 1 Hz, and which bound decided it: "sockets", "cpu" (steady load at the utilisation
    target) or "storm" (spare cores for one process's sockets to reconnect in 30 s).

    With P pods the storm is users / P reconnects, so P must satisfy
    P >= steady + users x CORE_S_PER_RECONNECT / (RECONNECT_STORM_S x P): the positive root."""
    placements = streams / (w.stream_minutes * 60.0)
    by_sockets = users / (SOCKETS_PER_DAPHNE * TARGET_UTILIZATION)
    steady = web_load(users=users, streams=streams, placements_per_s=placements, w=w)
    by_cpu = steady / TARGET_UTILIZATION
    storm = users * CORE_S_PER_RECONNECT / RECONNECT_STORM_S
    base = by_cpu / (1.0 - CORE_PER_DAPHNE_PROCESS)
    by_storm = (base + math.sqrt(base * base + 4.0 * storm)) / 2.0
    pods = max(_ceil(by_sockets), _ceil(by_storm), MIN_WEB_PODS)
    bounds = {"sockets": by_sockets, "cpu": base, "storm": by_storm - base}
    return pods, max(bounds, key=lambda k: bounds[k])


def web_pods_desired(*, users: int, streams: int) -> int:
    """The web HPA's metric: daphne pods for the live platform (``users`` connected
    participants, ``streams`` live streams) under the default workload's other figures."""
    return web_pods(users=users, streams=streams, w=Workload(users=users))[0]


def size(w: Workload) -> Sizing:
    """Pods per tier and GPU workers for workload ``w``."""
    streams = round(w.users * w.streamed_share)
    total_share = sum(r.share for r in w.rungs) or 1.0
    gpu = max(
        sum(
            workers_for(
                streams * r.share / total_share,
                streams_per_worker=r.streams_per_worker,
                headroom=GPU_HEADROOM,
                minimum=0,
            )
            for r in w.rungs
        ),
        1,
    )
    web, limit = web_pods(users=w.users, streams=streams, w=w)
    placements = streams / (w.stream_minutes * 60.0)
    sql = streams * SQL_PER_STATS_REPORT + placements * SQL_PER_PLACEMENT
    # Pose feed ("Issue 23: load at 10,000 users"): one script call per tick per process, plus
    # an exchange per tick for each room (session x process) whose poses change.
    sessions = w.users / max(w.session_size, 1)
    rooms = sessions * w.snapshot_share
    rooms *= 1 if w.session_affinity else min(w.session_size, web)
    pose_ops = (web + rooms) * SESSION_TICK_HZ
    redis_ops = pose_ops + streams * REDIS_OPS_PER_STATS_REPORT
    pg_load = streams * POSTGRES_CORE_S_PER_REPORT + placements * POSTGRES_CORE_S_PER_PLACEMENT
    pg_cores = max(_ceil(pg_load / TARGET_UTILIZATION), 2)
    redis = max(_ceil(redis_ops / (REDIS_OPS_PER_INSTANCE * TARGET_UTILIZATION)), 1)
    celery = max(_ceil(streams / STREAMS_PER_CELERY_POD), MIN_CELERY_PODS)
    connections = web * CONNECTIONS_PER_WEB_POD + celery * CONNECTIONS_PER_CELERY_POD
    first = "none"
    if redis > 1 or pg_cores > POSTGRES_MAX_CORES:
        redis_share = redis_ops / REDIS_OPS_PER_INSTANCE
        pg_share = pg_cores / POSTGRES_MAX_CORES
        first = "redis" if redis_share >= pg_share else "postgres"
    return Sizing(
        users=w.users,
        streams=streams,
        gpu_workers=gpu,
        web_pods=web,
        celery_pods=celery,
        postgres_cores=pg_cores,
        redis_instances=redis,
        pgbouncer=connections > POSTGRES_MAX_CONNECTIONS,
        sql_per_s=sql,
        redis_ops_per_s=redis_ops,
        web_core_s=web_load(users=w.users, streams=streams, placements_per_s=placements, w=w),
        limit=limit,
        saturates_first=first,
    )


def table(rows: Sequence[Sizing]) -> str:
    """The Markdown table of ``deploy/README.md``."""
    head = [
        "users",
        "streams",
        "GPU workers",
        "web (daphne) pods",
        "web bound by",
        "Celery pods",
        "PostgreSQL cores",
        "PgBouncer",
        "Redis instances",
        "SQL/s",
        "Redis ops/s",
        "first shared limit",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in rows:
        cells = [
            f"{s.users:,}",
            f"{s.streams:,}",
            f"{s.gpu_workers:,}",
            f"{s.web_pods:,}",
            s.limit,
            f"{s.celery_pods:,}",
            f"{s.postgres_cores:,}",
            "yes" if s.pgbouncer else "no",
            f"{s.redis_instances:,}",
            f"{s.sql_per_s:,.0f}",
            f"{s.redis_ops_per_s:,.0f}",
            s.saturates_first,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the sizing table; the options are the fields of ``Workload``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=list(STANDARD_USERS))
    defaults = Workload(users=0)
    parser.add_argument(
        "--rungs",
        type=Rung.parse,
        nargs="+",
        default=list(DEFAULT_RUNGS),
        help="NAME:SHARE:STREAMS_PER_WORKER for each rung (default 1080p:1:8)",
    )
    for f in fields(Workload):
        if f.name in {"users", "rungs"}:
            continue
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            parser.add_argument(f"--{f.name.replace('_', '-')}", action="store_true")
        else:
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    users = args.pop("users")
    args["rungs"] = tuple(args["rungs"])
    print(table([size(Workload(users=n, **args)) for n in users]))


if __name__ == "__main__":
    main()
