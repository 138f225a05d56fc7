"""Pytest plugin for browser end-to-end tests of any app (registered in the root conftest.py):
a real daphne process on a free port against this test run's database, Redis and media
storage (``live_platform``), a real streaming worker process, and headless Debian Chromium
driven by Playwright (``pages``). Screenshots and HTML of every open page land in
test-artifacts/ when a browser test fails.

No Django import at module level: the root conftest loads this for ``-p no:django`` runs too.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from apps.core.testing import (
    ROOT,
    current_database_url,
    daphne_args,
    free_port,
    http_ok,
    spawn,
    stop,
    wait_until,
)

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    # A fake microphone (it beeps) for the voice tests, and audio without a click first.
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # Frames must keep coming while the page is not focused (tests drive several pages).
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
PASSWORD = "a-long-test-password-9"  # noqa: S105 (test accounts only)
WORKER = ["-m", "workers.streaming"]
# Small per-eye sizes keep software encoding cheap; the rung names (what tests check) are real.
RUNG_SIZES = "720p=320x180,1080p=384x216,2K=448x252,4K=512x288"


def orm(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run database work on a thread of its own. Sync Playwright keeps an event loop on the
    test's thread, where Django refuses ORM calls and async_to_sync (used by services that
    send channel-layer events after commit). Transactional tests commit, so the data is
    visible to every connection."""
    from django.db import connections

    def call() -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


class Server:
    """One daphne process serving vrplatform.asgi on 127.0.0.1:<port>; restartable."""

    def __init__(self, log_dir: Path) -> None:
        from django.conf import settings

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"daphne-{self.port}.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "vrplatform.settings.test",
            # pytest-django renamed the database to the test one in this process; the server
            # process must use the same.
            "DATABASE_URL": current_database_url(),
            # Same cache and channel-layer key space as this process, so events that tests
            # cause in-process reach the server's sockets.
            "TEST_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
            # Same file storage: scenes made in-process (fixtures) are served, and uploads
            # through the server are visible to the test.
            "TEST_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PUBLIC_URL": self.url,
            "CORS_ORIGINS": self.url,
            "PYTHONUNBUFFERED": "1",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = spawn(daphne_args(self.port), log=self.log_path, env=self.env)
        wait_until(self.healthy, "daphne to answer /healthz", process=self.proc, log=self.log_path)

    def healthy(self) -> bool:
        return http_ok(f"{self.url}/healthz")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
        self.proc = None


@pytest.fixture
def live_platform(transactional_db: Any) -> Iterator[Server]:
    """A running platform with the role groups (the transactional flush drops them)."""
    from apps.accounts.services import roles_sync

    orm(roles_sync)
    ARTIFACTS.mkdir(exist_ok=True)
    server = Server(ARTIFACTS)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def user_factory(transactional_db: Any) -> Callable[..., Any]:
    from apps.accounts.services import user_create

    def make(username: str, *roles: str) -> Any:
        return orm(
            user_create, username=username, password=PASSWORD, roles=list(roles) or ["participant"]
        )

    return make


@pytest.fixture
def demo_scene(transactional_db: Any) -> str:
    """A published demo scene (small, so the software renderer keeps up); its version id."""
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    orm(call_command, "create_demo_scene", "--triangles", "2000", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


@pytest.fixture
def streaming_worker(live_platform: Server, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real streaming worker process connected to ``live_platform``."""
    from apps.streaming.services import worker_create

    platform = live_platform
    name = f"e2e-{platform.port}"
    _, token = orm(worker_create, name=name)
    log = ARTIFACTS / f"worker-{platform.port}.log"
    proc = spawn(
        [
            *WORKER,
            *("--platform-url", platform.url, "--token", token, "--name", name),
            *("--max-fps", "30", "--rung-sizes", RUNG_SIZES, "--heartbeat-s", "1"),
            # Pixel checks need the rung's size: the governor is tested on its own.
            "--no-render-governor",
            *("--cache-dir", str(tmp_path / "scene-cache")),
        ],
        log=log,
        env={**platform.env, "NVENC_ENABLED": "0", "WORKER_TOKEN": ""},
    )

    def registered() -> bool:
        from apps.streaming.models import StreamingWorker

        return orm(StreamingWorker.objects.filter(name=name, status="online").exists)

    wait_until(registered, "the streaming worker to register", process=proc, log=log)
    yield proc
    stop(proc)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install chromium (deploy/system-packages-test.txt)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def pages(browser: Any, request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    """``new_page()`` opens a page in a fresh context (its own sessionStorage: a separate
    user). Every page is screenshotted into test-artifacts/ if the test fails."""
    opened: list[Any] = []

    def new_page(*, enforce_csp: bool = False) -> Any:
        # Playwright's string wait_for_function evaluates with eval() inside the page, which
        # the platform's Content-Security-Policy forbids; tests of behaviour bypass the policy,
        # tests of the policy itself (enforce_csp) poll with page.evaluate instead.
        context = browser.new_context(
            viewport={"width": 1100, "height": 800}, bypass_csp=not enforce_csp
        )
        page = context.new_page()
        page.set_default_timeout(20_000)
        opened.append(page)
        return page

    yield new_page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for i, page in enumerate(opened):
            name = f"{request.node.name}-{i}".replace("/", "_").replace("[", "_").replace("]", "")
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
                (ARTIFACTS / f"{name}.html").write_text(page.content())
            except Exception:  # noqa: S110 (best effort: the page may be gone)
                pass
    for page in opened:
        page.context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
