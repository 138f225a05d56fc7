"""The creator sees, on ``/create/`` and before publishing, what the renderer will not draw as
authored (issue 20), in headless Chromium against a real daphne."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from apps.core.testing_browser import Server
from apps.scenes.tests.test_creator_browser import sign_in, upload_on_page, wait_status
from apps.scenes.tests.test_render_report import _sheen_glb

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_creator_page_lists_the_renderers_warnings_before_publishing(
    live_platform: Server, user_factory: Any, pages: Any, tmp_path: Path
) -> None:
    user_factory("rita", "creator")
    page = pages()
    sign_in(page, live_platform, "rita")
    upload_on_page(page, _sheen_glb(tmp_path), name="Velvet box")
    page.wait_for_function(
        "document.getElementById('version-title').textContent.includes('sheen.glb')"
    )
    wait_status(page, "ready")
    page.locator("#notes tbody tr").first.wait_for()
    rows = page.locator("#notes tbody tr")
    found = [
        [rows.nth(i).locator("td").nth(k).inner_text() for k in range(4)]
        for i in range(rows.count())
    ]
    ours = [row for row in found if row[0] == "render_unsupported_extension"]
    assert len(ours) == 1, found
    _code, where, message, severity = ours[0]
    assert (where, severity) == ("/extensionsUsed/0", "warning")
    assert message.startswith("KHR_materials_sheen:")
    assert page.is_visible("#publish")  # said before publishing, not after
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(
            path=str(Path(os.environ["SCREENSHOT_DIR"]) / "render-warnings.png"), full_page=True
        )
