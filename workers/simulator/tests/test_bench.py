"""The simulated-worker benchmark's own folding (benchmarks/bench_sim_workers.py): the
profile summary and the medians over runs. The benchmark itself runs by hand."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from apps.core.testing import load_script

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_sim_workers", ROOT / "benchmarks" / "bench_sim_workers.py")


def test_profile_folds_by_package_and_by_platform_function(bench: ModuleType) -> None:
    raw = "\n".join(
        [
            'process 1:"daphne";thread (0x1);run (asyncio/base_events.py:600);'
            "stream_stats_record (apps/streaming/stats.py:70);"
            "_worker_stream (apps/streaming/services.py:580);execute (psycopg/cursor.py:97) 30",
            'process 1:"daphne";thread (0x1);run (asyncio/base_events.py:600);'
            "stream_stats_record (apps/streaming/stats.py:70);loads (json/decoder.py:337) 10",
            "not a stack line",
        ]
    )
    profile = bench.profile_summary(raw)
    assert profile["samples"] == 40
    assert profile["by_package_pct"] == [["psycopg", 75.0], ["json", 25.0]]
    assert profile["platform_functions_pct"][0] == [
        "apps/streaming/stats.py:stream_stats_record",
        100.0,
    ]
    assert ["apps/streaming/services.py:_worker_stream", 75.0] in profile["platform_functions_pct"]


def test_medians_over_runs(bench: ModuleType) -> None:
    def run(p99: float, recorded: float, web: float) -> dict[str, object]:
        cores = {"web": web, "postgres": 0.1}
        return {
            "placement": {"placement_p99_ms": p99, "cpu_cores": cores},
            "steady": {"reports_recorded_per_s": recorded, "cpu_cores": cores},
        }

    medians = bench.medians([run(100.0, 50.0, 0.5), run(300.0, 70.0, 0.9), run(200.0, 60.0, 0.7)])
    assert medians["placement.placement_p99_ms"] == 200.0
    assert medians["steady.reports_recorded_per_s"] == 60.0
    assert medians["steady.cpu_cores.web"] == 0.7
    assert medians["failover.moved_max_s"] is None  # no run killed a worker
