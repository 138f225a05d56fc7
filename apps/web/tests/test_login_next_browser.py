"""The sign-in page in Chromium: a hostile ``next`` lands on the lobby of this origin, never
on another (issue 25, item 6: ``/%5C127.0.0.1:8698/x`` and ``/%09/…`` used to leave)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from apps.core.testing_browser import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_hostile_next_lands_on_the_lobby(platform: Any, user_factory: Any, pages: Any) -> None:
    user_factory("nora")
    page = pages()
    elsewhere = "127.0.0.1:9"  # nothing listens there; the test only reads where we went
    page.goto(f"{platform.url}/login/?next=/%5C{elsewhere}/x")
    page.fill("#username", "nora")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{platform.url}/lobby/")
    # Signed in now: the page forwards at once, through the same check.
    for hostile in (f"/%09/{elsewhere}/x", f"/a/..//{elsewhere}/x"):
        page.goto(f"{platform.url}/login/?next={hostile}")
        page.wait_for_load_state("load")
        page.wait_for_function("location.pathname !== '/login/'")
        assert urlsplit(page.url).netloc == urlsplit(platform.url).netloc, page.url
