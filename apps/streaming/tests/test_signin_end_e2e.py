"""End to end (issue 25, item 1): a real daphne, a real worker and the synthetic headset. The
headset streams; its sign-in signs out; within 2 s the stream has ended and no more frames
arrive (it used to stream on for as long as the headset liked, hearing the session)."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from apps.accounts.services import roles_sync
from apps.accounts.tests.factories import DEFAULT_PASSWORD
from apps.core.testing import Processes
from apps.streaming.models import Stream
from apps.streaming.tests.test_end_to_end import _platform, _worker
from workers.headset.client import HeadsetOptions, SyntheticHeadset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.mark.django_db(transaction=True)
def test_signing_out_ends_the_stream_within_2_s(processes: Processes, make_user: Any) -> None:
    roles_sync()  # transaction=True flushed the role groups
    user = make_user("participant")
    url = _platform(processes)
    _worker(processes, url, "w1")
    connections.close_all()  # the headset runs in another thread's loop; no stale connection
    headset = SyntheticHeadset(
        HeadsetOptions(url, user.username, DEFAULT_PASSWORD, seconds=0, fps=30)
    )

    async def stream_then_sign_out() -> dict[str, Any]:
        try:
            await headset.start()
            await headset.wait_frames(10, 30)
            stream = await Stream.objects.aget(pk=headset.stream_id)
            signed_out_at, signed_out_ms = time.monotonic(), time.time() * 1000.0
            response = await headset.http(
                "POST", "/api/athena/logout", json={"refresh": headset.refresh}
            )
            assert response.status_code == 204, response.text
            while True:
                stream = await Stream.objects.aget(pk=headset.stream_id)
                if not stream.is_active or time.monotonic() - signed_out_at > 5:
                    break
                await asyncio.sleep(0.05)
            ended_after = time.monotonic() - signed_out_at
            # Then wait for the video to go quiet: a second without a frame (at most 6 s).
            seen, quiet_since = len(headset.frames), time.monotonic()
            while time.monotonic() - quiet_since < 1.0 and time.monotonic() - signed_out_at < 6:
                await asyncio.sleep(0.1)
                if len(headset.frames) != seen:
                    seen, quiet_since = len(headset.frames), time.monotonic()
            last_ms = max(f.decoded_ms for f in headset.frames)
            return {
                "stream": stream,
                "ended_after": ended_after,
                "last_frame_after": (last_ms - signed_out_ms) / 1000.0,
            }
        finally:
            await headset.close()
            await sync_to_async(connections.close_all)()

    outcome = asyncio.run(stream_then_sign_out())
    assert outcome["stream"].status == Stream.Status.STOPPED
    assert outcome["stream"].stop_reason == "signed_out"
    assert outcome["ended_after"] < 2.0
    # The worker closed the peer connection: nothing arrived later than 2 s after sign-out.
    assert outcome["last_frame_after"] < 2.0
