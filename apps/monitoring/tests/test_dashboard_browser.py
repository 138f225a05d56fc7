"""The operator dashboard ``/admin/dashboard/`` in headless Chromium against a real daphne,
with committed rows: an operator signs in through the admin login form, the live WebSocket
feed fills the tables and draws the charts, a session drills down to its own streams, and
new rows show up without a reload. A signed-in non-staff user is sent to the admin login."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from apps.core.testing_browser import PASSWORD, Server, orm
from apps.monitoring.tests.helpers import typed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DASHBOARD = "/admin/dashboard/"
# Each chart's first line colour (dashboard.js); axes and labels are grey, so a pixel near this
# colour can only come from a plotted series.
CHART_COLOURS = {
    "c-latency": (0x22, 0xAA, 0x77),
    "c-fps": (0x33, 0x66, 0xCC),
    "c-bitrate": (0xAA, 0x55, 0xCC),
    "c-streams": (0xEE, 0x88, 0x00),
}
LINE_PIXELS_JS = """([id, rgb]) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] < 128) continue;
    const dist = Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1])
      + Math.abs(d[i + 2] - rgb[2]);
    if (dist < 60) n++;
  }
  return n;
}"""


@dataclass
class Rows:
    live_id: str
    other_id: str
    live_streams: list[str]
    other_streams: list[str]


def make_rows() -> Rows:
    """Two live sessions (three current participants, one who left) and an ended one; two
    workers online and a dead one; three active streams with stats reports recorded through
    the service the worker socket uses, and a stopped stream."""
    from django.utils import timezone

    from apps.accounts.services import user_create
    from apps.sessions.models import Participant, VRSession
    from apps.streaming.models import Stream, StreamingWorker
    from apps.streaming.stats import stream_stats_record

    owner, guest, third = (
        user_create(username=name, password=PASSWORD, roles=["participant"])
        for name in ("owner", "guest", "third")
    )
    live = VRSession.objects.create(name="live", owner=owner, status="active")
    other = VRSession.objects.create(name="open", owner=guest, status="open")
    ended = VRSession.objects.create(name="old", owner=owner, status="ended")
    people = [
        Participant.objects.create(session=session, user=user, left_at=left)
        for session, user, left in [
            (live, owner, None),
            (live, guest, None),
            (live, third, timezone.now()),
            (other, guest, None),
            (ended, owner, None),
        ]
    ]
    w1 = StreamingWorker.objects.create(
        name="gpu-a", token_hash="a" * 64, status="online", max_streams=4, load=0.5
    )
    w2 = StreamingWorker.objects.create(
        name="gpu-b", token_hash="b" * 64, status="online", max_streams=8, load=0.1
    )
    StreamingWorker.objects.create(name="gpu-c", token_hash="c" * 64, status="dead")
    streams = []
    # Different latencies: the p50 and p99 over streams differ, so both latency lines show.
    for participant, worker, rung, status, rtt in [
        (people[0], w1, "1080p", "streaming", 20.0),
        (people[1], w1, "2K", "streaming", 40.0),
        (people[3], w2, "1080p", "streaming", 200.0),
        (people[0], w2, "720p", "stopped", 0.0),
    ]:
        stream = Stream.objects.create(
            participant=participant,
            session=participant.session,
            user=participant.user,
            worker=worker,
            status=status,
            quality_rung=rung,
            encoder="libx264",
        )
        streams.append(stream)
        if status != "stopped":
            recorded = stream_stats_record(
                worker_id=worker.id,
                stream_id=str(stream.id),
                report=typed(
                    stream,
                    rung=rung,
                    rtt_ms=rtt,
                    frames_sent=900,
                    # the first stream's media goes through the TURN relay, the others direct
                    candidate_pair="relay" if len(streams) == 1 else "host",
                    latency_ms={"p50": 10 + rtt / 2, "p95": 12 + rtt / 2, "p99": 15 + rtt / 2},
                ),
            )
            assert recorded
    return Rows(
        live_id=str(live.id),
        other_id=str(other.id),
        live_streams=[str(s.id) for s in streams[:2]],
        other_streams=[str(streams[2].id)],
    )


def admin_sign_in(page: Any, platform: Server, username: str) -> None:
    page.goto(f"{platform.url}/admin/login/?next={DASHBOARD}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{platform.url}{DASHBOARD}")


def table(page: Any, table_id: str) -> list[list[str]]:
    return page.evaluate(
        """(id) => Array.from(document.querySelectorAll(`#${id} tbody tr`),
            (tr) => Array.from(tr.cells, (td) => td.textContent))""",
        table_id,
    )


def test_operator_sees_live_tables_charts_and_drills_into_a_session(
    live_platform: Server, user_factory: Any, pages: Any
) -> None:
    user_factory("olga", "operator")
    rows = orm(make_rows)
    page = pages()
    admin_sign_in(page, live_platform, "olga")

    page.wait_for_function("document.getElementById('delphi-conn').textContent === 'live'")
    page.wait_for_function("document.querySelectorAll('#streams tbody tr').length === 3")
    sessions = table(page, "sessions")
    assert sorted((s[0], s[1], s[2], s[3]) for s in sessions) == [
        ("live", "active", "2", "2"),
        ("open", "open", "1", "1"),
    ]
    workers = {w[0]: w for w in table(page, "workers")}
    assert workers["gpu-a"][1:] == ["online", "2 / 4", "50 %"]
    assert workers["gpu-b"][1:] == ["online", "1 / 8", "10 %"]
    streams = table(page, "streams")
    assert sorted(s[0] for s in streams) == sorted(
        sid[:8] for sid in rows.live_streams + rows.other_streams
    )
    assert {s[3] for s in streams} == {"1080p", "2K"}
    assert sorted(s[5] for s in streams) == ["host", "host", "relay"]  # the ICE column
    assert page.inner_text("#t-relayed") == "1"
    assert all(s[6] == "88.0" and s[7] == "24.0" for s in streams), streams
    assert sorted(int(s[10]) for s in streams) == [20, 30, 110]  # the measured p50s
    assert page.inner_text("#t-streams") == "3"
    assert page.inner_text("#t-participants") == "3"

    # Every chart has a plotted line. It takes two snapshots (one point draws nothing), and
    # the time axis spans five minutes, so the first seconds are a short stroke at the left.
    for canvas, colour in CHART_COLOURS.items():
        page.wait_for_function(
            f"({LINE_PIXELS_JS})(['{canvas}', {list(colour)}]) > 3", timeout=15_000
        )
    # The p99 latency line is there too (p50 over streams is 30 ms, p99 near 110 ms).
    assert page.evaluate(LINE_PIXELS_JS, ["c-latency", [0xCC, 0x33, 0x33]]) > 3
    assert page.inner_text("#t-latency") == "30"

    # Drill down: the "live" session's streams only; clicking it again shows all.
    page.locator("#sessions tbody tr", has_text="live").click()
    page.wait_for_function("document.querySelectorAll('#streams tbody tr').length === 2")
    drilled = table(page, "streams")
    assert sorted(s[0] for s in drilled) == sorted(sid[:8] for sid in rows.live_streams)
    assert {s[1] for s in drilled} == {rows.live_id[:8]}
    assert "live" in page.inner_text("#stream-filter")
    # The filter holds across pushes (the tables are rebuilt every second).
    page.wait_for_function(
        "document.querySelector('#sessions tbody tr.selected')?.cells[0].textContent === 'live'"
    )
    page.locator("#sessions tbody tr", has_text="open").click()
    page.wait_for_function("document.querySelectorAll('#streams tbody tr').length === 1")
    assert table(page, "streams")[0][0] == rows.other_streams[0][:8]
    page.locator("#sessions tbody tr", has_text="open").click()
    page.wait_for_function("document.querySelectorAll('#streams tbody tr').length === 3")
    assert page.inner_text("#stream-filter") == ""

    # A session created now appears with the next push, without a reload.
    def new_session() -> None:
        from apps.accounts.models import User
        from apps.sessions.models import VRSession

        VRSession.objects.create(
            name="late arrival", owner=User.objects.get(username="owner"), status="open"
        )

    orm(new_session)
    page.locator("#sessions tbody tr", has_text="late arrival").wait_for()
    assert page.inner_text("#t-sessions") == "3"


def test_non_staff_user_is_sent_to_the_admin_login(
    live_platform: Server, user_factory: Any, pages: Any
) -> None:
    from django.conf import settings

    user_factory("pat", "participant")

    def session_cookie() -> str:
        from django.test import Client

        from apps.accounts.models import User

        client = Client()
        client.force_login(User.objects.get(username="pat"))
        return str(client.cookies[settings.SESSION_COOKIE_NAME].value)

    page = pages()
    # Signed in (a real Django session), but not staff: the admin will not have it.
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": orm(session_cookie),
                "url": live_platform.url,
            }
        ]
    )
    page.goto(f"{live_platform.url}{DASHBOARD}")
    page.wait_for_url(f"{live_platform.url}/admin/login/?next={DASHBOARD}")
    assert page.locator("#delphi-dashboard").count() == 0
    assert "not authorized" in page.inner_text(".errornote")
    assert page.locator("#id_username").is_visible()
    # The feed refuses the same cookie.
    code = page.evaluate(
        """() => new Promise((resolve) => {
             const ws = new WebSocket(`ws://${location.host}/ws/delphi/dashboard/`);
             ws.onclose = (e) => resolve(e.code);
           })"""
    )
    assert code == 4403

    # The admin login form refuses the account too.
    page.fill("#id_username", "pat")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    refused = page.locator(".errornote", has_text="staff account")
    refused.wait_for()
    assert "correct username and password" in refused.inner_text()
    assert page.url.startswith(f"{live_platform.url}/admin/login/")
