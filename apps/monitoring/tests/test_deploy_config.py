"""Dashboards and alert rules refer only to metrics the platform exports (no promtool)."""

import json
import re
from pathlib import Path

import yaml

from apps.monitoring.collector import exported_metric_names

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
# Identifiers in PromQL that name a series: ours all start with vrplatform_; `up` is
# Prometheus's own.
METRIC = re.compile(r"\b(vrplatform_[a-zA-Z0-9_]+)\b")
BUILTIN_SERIES = {"up"}


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def _panel_exprs() -> list[tuple[str, str]]:
    found = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            found += [(f"{path.name}: {panel['title']}", t["expr"]) for t in panel["targets"]]
    return found


def test_every_query_names_only_exported_metrics() -> None:
    exported = exported_metric_names()
    queries = [("alert", e) for e in _alert_exprs()] + _panel_exprs()
    assert len(queries) >= 25
    unknown = [(w, n) for w, e in queries for n in METRIC.findall(e) if n not in exported]
    assert not unknown, unknown
    for where, expr in queries:
        assert METRIC.search(expr) or any(b in expr for b in BUILTIN_SERIES), where


def test_the_check_catches_a_typo() -> None:
    exported = exported_metric_names()
    assert "vrplatform_stream_fps_bucket" in exported
    assert "vrplatform_stream_fps_buckets" not in exported
    assert "vrplatform_sessions_active_total" not in exported


def test_required_alerts_exist() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {
        "StreamLatencyP99High",
        "StreamFpsLow",
        "StreamingWorkerDown",
        "CeleryTaskFailures",
    } <= names


def test_prometheus_config_loads_the_rules_and_scrapes_metrics() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    web = next(j for j in config["scrape_configs"] if j["job_name"] == "vrplatform-web")
    assert web["metrics_path"] == "/metrics"
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        assert {p["datasource"]["uid"] for p in json.loads(path.read_text())["panels"]} == {uid}
