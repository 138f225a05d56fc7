"""The capacity model (pure logic, no database): monotone in users, the 10,000-user row, the
tier that saturates first, the README table and the HPA bounds that come from it."""

import itertools
from pathlib import Path

import pytest
import yaml

from apps.monitoring import capacity_model
from apps.monitoring.capacity_model import STANDARD_USERS, Rung, Workload, size, table
from apps.monitoring.collector import state_families

ROOT = Path(__file__).resolve().parents[3]


def test_every_tier_grows_with_users() -> None:
    rows = [size(Workload(users=n)) for n in (500, 1_000, 5_000, 10_000, 50_000, 100_000)]
    for small, big in itertools.pairwise(rows):
        for tier in ("gpu_workers", "web_pods", "celery_pods", "postgres_cores", "redis_instances"):
            assert getattr(big, tier) >= getattr(small, tier), tier
        assert big.sql_per_s > small.sql_per_s
        assert big.redis_ops_per_s > small.redis_ops_per_s


def test_the_10k_row() -> None:
    row = size(Workload(users=10_000))
    assert row.streams == 8_750  # sessions of 8 with one spectator
    # 8,750 streams at 8 per worker with 20% headroom.
    assert row.gpu_workers == 1_313
    # Sockets alone need 3 daphne processes (5,000 each at 70%); the CPU of stats reports
    # (8,750 x 0.69 ms), placements, snapshots and the storm's spare cores need more.
    assert row.web_pods > 10_000 / capacity_model.SOCKETS_PER_DAPHNE / 0.7
    assert row.web_pods == 14
    assert row.limit == "cpu"
    # 1.25 statements per report, plus ~36 per placement.
    assert 10_500 < row.sql_per_s < 12_000
    assert row.pgbouncer  # 14 web pods x 16 pooled connections, past PostgreSQL's 200


def test_the_storm_needs_spare_cores() -> None:
    idle = Workload(users=10_000, streamed_share=0.0, snapshot_share=0.0)
    pods, limit = capacity_model.web_pods(users=10_000, streams=0, w=idle)
    assert limit == "storm"
    # One process's sockets back within 30 s on the others' spare cores.
    spare = pods - capacity_model.web_load(users=10_000, streams=0, placements_per_s=0, w=idle)
    assert spare >= 10_000 / pods * capacity_model.CORE_S_PER_RECONNECT / 30


def test_the_tier_that_saturates_first() -> None:
    assert size(Workload(users=1_000)).saturates_first == "none"
    # Placements scale with web pods (no lock over every worker row any more): past one
    # Redis instance, the pose feed is the first shared limit at 10,000 users.
    assert size(Workload(users=10_000)).saturates_first == "redis"
    # With no pose changing, one Redis instance carries 10,000 users' stats and placements.
    still = Workload(users=10_000, snapshot_share=0.0)
    assert size(still).redis_instances == 1
    assert size(still).saturates_first == "none"
    # One pose room per session instead of one per (process, session).
    with_affinity = size(Workload(users=10_000, session_affinity=True))
    assert with_affinity.redis_instances < size(Workload(users=10_000)).redis_instances
    assert not size(Workload(users=1_000)).pgbouncer


def test_gpu_workers_add_up_per_rung() -> None:
    # 5,000 streams: 3,500 at 1080p (8 per worker) and 1,500 at 2K (4 per worker), +20% each.
    rungs = (Rung("1080p", 0.7, 8), Rung("2K", 0.3, 4))
    mixed = Workload(users=10_000, streamed_share=0.5, rungs=rungs)
    assert size(mixed).gpu_workers == 525 + 450
    capacity_model.main(["--users", "10000", "--rungs", "1080p:0.7:8", "2K:0.3:4"])


def test_the_readme_table_is_the_models_output() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert table([size(Workload(users=n)) for n in STANDARD_USERS]) in readme
    assert "python -m apps.monitoring.capacity_model" in readme


def test_the_web_hpa_bounds_come_from_the_model() -> None:
    docs = yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "auto-scaling.yaml").read_text())
    hpa = next(
        d
        for d in docs
        if d["kind"] == "HorizontalPodAutoscaler" and d["metadata"]["name"] == "kairo-web"
    )["spec"]
    assert hpa["minReplicas"] == size(Workload(users=1_000)).web_pods
    assert hpa["maxReplicas"] == size(Workload(users=10_000)).web_pods
    external = [m["external"]["metric"]["name"] for m in hpa["metrics"] if m["type"] == "External"]
    assert external == ["vrplatform_web_pods_desired"]


@pytest.mark.parametrize(("users", "streams"), [(0, 0), (1_000, 875), (10_000, 8_750)])
def test_the_hpa_metric_is_the_models_web_pods(users: int, streams: int) -> None:
    expected = size(Workload(users=users)).web_pods if users else capacity_model.MIN_WEB_PODS
    assert capacity_model.web_pods_desired(users=users, streams=streams) == expected
    families = {f.name: f for f in state_families({"web_pods_desired": expected})}
    assert families["vrplatform_web_pods_desired"].samples[0].value == expected


def test_the_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    capacity_model.main(["--users", "10000"])
    out = capsys.readouterr().out
    assert out.startswith("| users |")
    assert "| 10,000 | 8,750 | 1,313 |" in out
