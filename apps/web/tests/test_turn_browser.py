"""The lobby's relay pre-flight and the browser viewer through a TURN relay only: a real
Chromium, the platform with ``ICE_TRANSPORT_POLICY=relay`` and a coturn on loopback checking
the platform's credentials.
The video decodes over a relay candidate pair on both ends, and an ICE restart asked by the
page continues the same stream."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.accounts.services import roles_sync
from apps.core.testing import free_port, wait_until
from apps.core.testing_browser import ARTIFACTS, Server, orm
from apps.streaming.coturn import coturn_command
from apps.streaming.models import Stream
from apps.streaming.selectors import latest_report
from apps.web.tests.test_browser import create_session_from_lobby, sign_in, wait_stats

pytestmark = [
    pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn is not installed"),
    pytest.mark.timeout(180),
]


@pytest.fixture
def live_platform(transactional_db: Any, tmp_path: Path) -> Iterator[Server]:
    """The shared fixture's platform (so ``streaming_worker`` connects to it), relay-only."""

    orm(roles_sync)
    secret, port = uuid.uuid4().hex, free_port()
    log = (tmp_path / "coturn.log").open("ab")
    coturn = subprocess.Popen(
        coturn_command(
            secret=secret,
            listen_ip="127.0.0.1",
            port=port,
            state_dir=tmp_path,
            allow_loopback_peers=True,  # both relayed ends are loopback addresses here
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    server = Server(ARTIFACTS)
    server.env.update(
        TURN_URLS=f"turn:127.0.0.1:{port}?transport=udp,turn:127.0.0.1:{port}?transport=tcp",
        TURN_SHARED_SECRET=secret,
        ICE_TRANSPORT_POLICY="relay",
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        coturn.terminate()
        coturn.wait(10)


def test_viewer_decodes_through_the_relay_and_restarts_ice_in_place(
    live_platform: Server, user_factory: Any, demo_scene: str, streaming_worker: Any, pages: Any
) -> None:
    user_factory("alice")
    page = pages()
    sign_in(page, live_platform, "alice")
    # The lobby's pre-flight: relay-only here, and a round trip measured through coturn.
    relay = page.wait_for_selector("#netcheck-relay[data-verdict]", timeout=30_000)
    assert relay.get_attribute("data-verdict") == "relay_only", relay.inner_text()
    assert "Round trip through the relay" in relay.inner_text()
    page.locator("li.scene").first.wait_for()
    create_session_from_lobby(page, live_platform)
    s = wait_stats(
        page, "s.streaming && s.framesShown > 10 && s.candidatePair !== null", timeout_ms=60_000
    )
    assert s["candidatePair"] == "relay"  # Chrome's selected pair: through coturn
    assert s["iceTransportPolicy"] == "relay"

    def worker_pair() -> str:
        # The live second (batched reports reach the row at the next flush).
        report = orm(lambda: latest_report(Stream.objects.get(pk=s["streamId"])))
        return str(report.get("candidate_pair") or "")

    # The worker's side too, from its next stats report (once a second).
    wait_until(lambda: worker_pair() != "", "the worker's stats report with its pair", 15)
    assert worker_pair() == "relay"

    page.evaluate("() => window.vrplatform.restartIce()")
    after = wait_stats(
        page,
        f"s.iceRestarts === 1 && s.streaming && s.framesShown > {s['framesShown'] + 15}"
        " && s.candidatePair !== null",
        timeout_ms=30_000,
    )
    assert after["streamId"] == s["streamId"]  # the same stream, not a new one
    assert after["candidatePair"] == "relay"
    stream = orm(Stream.objects.get, pk=s["streamId"])
    assert stream.placements == 1
    assert stream.status in (Stream.Status.STARTING, Stream.Status.STREAMING)
