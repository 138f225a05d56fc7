"""``/metrics``: the event metrics of ``apps.core.instruments`` plus the platform's state, read
from the database at scrape time.

State metrics (active sessions, streams by rung, worker load, the capacity forecast) are
computed when Prometheus scrapes, by ``PlatformCollector`` through the selectors of the apps
that own the rows, so every process reports the same truth and nothing can drift. This is the
read side of metrics and sits in the top app; the instruments others increment sit in core.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from apps.core import instruments  # noqa: F401  (its event metrics fill REGISTRY)
from apps.monitoring import selectors

logger = logging.getLogger(__name__)


# Names of the families PlatformCollector yields; kept here so the dashboards/alerts test can
# check PromQL against them without a database.
STATE_METRICS: dict[str, str] = {
    "vrplatform_sessions_active": "Sessions that are not ended.",
    "vrplatform_participants_active": "Participants currently in a live session.",
    "vrplatform_streams_active": "Live streams by rung and encoder.",
    "vrplatform_streams_by_candidate_pair": (
        "Live streams by selected ICE candidate pair type (relay: through TURN)."
    ),
    "vrplatform_streaming_workers": "Streaming workers by state.",
    "vrplatform_streaming_worker_capacity_streams": "Stream capacity of each online worker.",
    "vrplatform_streaming_worker_load": "Load of each online worker (0..1).",
    "vrplatform_streaming_worker_streams": "Streams placed on each online worker.",
    "vrplatform_capacity_forecast_streams": "Forecast concurrent streams by horizon.",
    "vrplatform_streaming_workers_desired": "Workers the autoscaler should run.",
    "vrplatform_web_pods_desired": "Web (daphne) pods the capacity model wants for the load now.",
}

StateSource = Callable[[], Mapping[str, Any]]


class PlatformCollector(Collector):
    """Yields the state metrics from ``source()`` (by default the DB selectors) at scrape time.

    A failing source (database down) must not break the scrape of the event metrics, so it is
    logged and the state families are simply absent for that scrape.
    """

    def __init__(self, source: StateSource | None = None) -> None:
        self._source = source or selectors.platform_state

    def describe(self) -> Iterable[Metric]:
        return []  # no describe: registering must not query the database

    def collect(self) -> Iterator[Metric]:
        try:
            state = self._source()
        except Exception:
            logger.exception("platform state for /metrics failed")
            return
        yield from state_families(state)


def state_families(state: Mapping[str, Any]) -> Iterator[Metric]:
    def gauge(name: str, labels: list[str] | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, STATE_METRICS[name], labels=labels)

    g = gauge("vrplatform_sessions_active")
    g.add_metric([], state.get("sessions_active", 0))
    yield g
    g = gauge("vrplatform_participants_active")
    g.add_metric([], state.get("participants_active", 0))
    yield g
    g = gauge("vrplatform_streams_active", ["rung", "encoder"])
    for (rung, encoder), n in sorted(state.get("streams_by_rung_encoder", {}).items()):
        g.add_metric([rung or "unknown", encoder or "unknown"], n)
    yield g
    g = gauge("vrplatform_streams_by_candidate_pair", ["type"])
    for pair, n in sorted(state.get("streams_by_candidate_pair", {}).items()):
        g.add_metric([pair or "unknown"], n)
    yield g
    g = gauge("vrplatform_streaming_workers", ["state"])
    for worker_state, n in sorted(state.get("workers_by_state", {}).items()):
        g.add_metric([worker_state], n)
    yield g
    workers = state.get("workers", [])
    cap = gauge("vrplatform_streaming_worker_capacity_streams", ["worker"])
    load = gauge("vrplatform_streaming_worker_load", ["worker"])
    streams = gauge("vrplatform_streaming_worker_streams", ["worker"])
    for w in workers:
        cap.add_metric([w["name"]], w["capacity"])
        load.add_metric([w["name"]], w["load"])
        streams.add_metric([w["name"]], w["streams"])
    yield cap
    yield load
    yield streams
    forecast = state.get("capacity_forecast")
    if forecast is not None:
        g = gauge("vrplatform_capacity_forecast_streams", ["horizon"])
        for horizon, value in sorted(forecast.get("streams", {}).items()):
            g.add_metric([horizon], value)
        yield g
        g = gauge("vrplatform_streaming_workers_desired")
        g.add_metric([], forecast["workers_desired"])
        yield g
    if "web_pods_desired" in state:
        g = gauge("vrplatform_web_pods_desired")
        g.add_metric([], state["web_pods_desired"])
        yield g


# ------------------------------------------------------------------ exposition


class _DefaultRegistryCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def registry_for_scrape(
    *, multiproc_dir: str | None = None, state: StateSource | None = None
) -> CollectorRegistry:
    """The registry ``/metrics`` renders: event metrics (this process, or every process's mmap
    files under ``multiproc_dir``) plus the scrape-time platform state."""
    multiproc_dir = multiproc_dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = CollectorRegistry(auto_describe=False)
    if multiproc_dir:
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    else:
        registry.register(_DefaultRegistryCollector())
    registry.register(PlatformCollector(state))
    return registry


def render_metrics(*, state: StateSource | None = None) -> bytes:
    return generate_latest(registry_for_scrape(state=state))


def exported_metric_names() -> set[str]:
    """Every sample name /metrics can contain (incl. _bucket/_count/_sum/_total/_created)."""
    names: set[str] = set()
    for metric in REGISTRY.collect():
        if not metric.name.startswith("vrplatform_"):
            continue
        base = metric.name
        names.add(base)
        if metric.type == "histogram":
            names.update({f"{base}_bucket", f"{base}_count", f"{base}_sum", f"{base}_created"})
        elif metric.type == "counter":
            names.update({f"{base}_total", f"{base}_created"})
    names.update(STATE_METRICS)
    return names
