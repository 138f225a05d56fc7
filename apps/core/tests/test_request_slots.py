"""RequestSlotsMiddleware: at most HTTP_MAX_CONCURRENCY requests of a process past it at once,
the rest waiting on the event loop; probes and scrapes never wait."""

import asyncio
from typing import Any

from django.http import HttpResponse
from django.test import RequestFactory

from apps.core.middleware import RequestSlotsMiddleware


async def test_requests_past_the_limit_wait_their_turn_and_probes_do_not(settings: Any) -> None:
    settings.HTTP_MAX_CONCURRENCY = 3
    inside, most = 0, 0
    release = asyncio.Event()

    async def view(request: Any) -> HttpResponse:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        if request.path != "/healthz":
            await release.wait()
        inside -= 1
        return HttpResponse("ok")

    middleware = RequestSlotsMiddleware(view)
    factory = RequestFactory()
    calls = [asyncio.ensure_future(middleware(factory.get("/api/x"))) for _ in range(10)]
    await asyncio.sleep(0.05)
    assert inside == 3  # three in, seven waiting
    probe = await asyncio.wait_for(middleware(factory.get("/healthz")), 1)
    assert probe.status_code == 200  # answered while the queue is full
    release.set()
    responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200] * 10
    assert most == 4  # the three, and the probe beside them
