"""/metrics protection, the predictions/overview API and the dashboard page."""

from typing import Any

import pytest
from django.test import Client

from apps.monitoring.tests.helpers import Platform, typed

pytestmark = pytest.mark.django_db


def test_metrics_refuses_other_networks_without_token(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    wrong = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    ok = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert ok.status_code == 200
    assert b"vrplatform_sessions_active" in ok.content
    assert ok["Content-Type"].startswith("text/plain")


def test_metrics_allows_loopback_and_configured_networks(client: Client, settings: Any) -> None:
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.9.0.7").status_code == 403
    settings.METRICS_ALLOWED_NETWORKS = ["10.9.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.9.0.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_predictions_and_overview_are_for_operators(
    platform: Platform, make_user: Any, bearer_client: Any
) -> None:
    participant = bearer_client(make_user("participant"))
    assert participant.get("/api/delphi/predictions").status_code == 403
    assert participant.get("/api/delphi/overview").status_code == 403
    operator = bearer_client(make_user("operator"))
    body = operator.get("/api/delphi/predictions").json()
    assert body["capacity"]["current"] == 3.0
    assert {s["stream_id"] for s in body["streams"]} == {str(s.id) for s in platform.streams[:3]}
    # No report yet: no forecast (the worker's report carries it).
    assert {s["reason"] for s in body["streams"]} == {"no report yet"}
    from apps.streaming.stats import stream_stats_record

    stream = platform.streams[1]
    forecast = {"bandwidth_bps": 3e7, "confidence": 0.7, "reason": "falling", "rung": "2K"}
    stream_stats_record(
        worker_id=stream.worker_id,
        stream_id=str(stream.id),
        report=typed(stream, rung="2K", forecast=forecast),
    )
    body = operator.get("/api/delphi/predictions").json()
    shown = next(s for s in body["streams"] if s["stream_id"] == str(stream.id))
    assert (shown["reason"], shown["bandwidth_bps"], shown["confidence"]) == ("falling", 3e7, 0.7)
    overview = operator.get("/api/delphi/overview?window=15m").json()
    assert overview["window_s"] == 900
    assert overview["now"]["sessions"] == 2
    assert overview["now"]["streams_by_rung"] == {"1080p": 2, "2K": 1}
    assert operator.get("/api/delphi/overview?window=99y").status_code == 400


def test_dashboard_renders_for_staff_and_redirects_others(make_user: Any, settings: Any) -> None:
    staff, other = Client(), Client()
    staff.force_login(make_user("operator"))
    page = staff.get("/admin/dashboard/")
    assert page.status_code == 200
    assert b'data-ws-path="/ws/delphi/dashboard/"' in page.content
    assert b"monitoring/dashboard.js" in page.content
    other.force_login(make_user("participant"))
    response = other.get("/admin/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert Client().get("/admin/dashboard/").status_code == 302
