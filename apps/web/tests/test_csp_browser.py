"""The Content-Security-Policy (issue 14, finding 7) in Chromium: the client's pages, the
viewer with a real stream, the admin and the operator dashboard work under it, and the browser
reports no violation on any of them."""

from __future__ import annotations

from typing import Any

import pytest

from apps.core.testing import wait_until
from apps.core.testing_browser import PASSWORD, Server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`);
});
"""


def watched(page: Any) -> list[str]:
    """Violations the page reports, plus the console's CSP messages (covers ones raised
    before a listener could run)."""
    console: list[str] = []
    page.on(
        "console",
        lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.add_init_script(RECORD_VIOLATIONS)
    return console


def violations(page: Any, console: list[str]) -> list[str]:
    return list(page.evaluate("window.__cspViolations || []")) + console


def poll(page: Any, expression: str, timeout: float = 30) -> Any:
    """Like ``wait_for_function``, without the eval() the policy (rightly) forbids."""
    return wait_until(lambda: page.evaluate(expression), expression, timeout, interval=0.25)


@pytest.mark.timeout(240)
def test_viewer_streams_under_the_policy(
    platform: Server, user_factory: Any, demo_scene: str, streaming_worker: Any, pages: Any
) -> None:
    user_factory("alice")
    page = pages(enforce_csp=True)
    console = watched(page)
    response = page.goto(f"{platform.url}/login/?next=/lobby/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{platform.url}/lobby/")
    poll(page, "document.querySelector('li.scene img.thumb')?.src.startsWith('blob:')")
    page.locator("li.scene button.create-session").first.click()
    page.wait_for_url(f"{platform.url}/play/**")
    stats = "window.vrplatform && window.vrplatform.stats()"
    poll(
        page,
        f"(() => {{ const s = {stats}; return s && s.streaming && s.framesDecoded > 5 }})()",
        60,
    )
    assert page.evaluate(stats)["connected"] is True
    assert violations(page, console) == []


def test_admin_and_dashboard_work_under_the_policy(
    platform: Server, user_factory: Any, pages: Any
) -> None:
    user_factory("ada", "admin")
    page = pages(enforce_csp=True)
    console = watched(page)
    page.goto(f"{platform.url}/admin/login/?next=/admin/accounts/user/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{platform.url}/admin/accounts/user/")
    # The admin's own scripts ran: the changelist's select-all checkbox toggles the rows.
    page.locator("#action-toggle").check()
    assert page.locator("tr.selected").count() >= 1
    page.goto(f"{platform.url}/admin/dashboard/")
    # The dashboard's script connected its live feed and filled the page.
    poll(page, "/^\\d+$/.test(document.getElementById('t-sessions').textContent.trim())")
    assert violations(page, console) == []


def test_account_and_oauth_pages_work_under_the_policy(
    platform: Server, user_factory: Any, pages: Any
) -> None:
    user_factory("petra")
    page = pages(enforce_csp=True)
    console = watched(page)
    for path in ("/accounts/password/reset/", "/accounts/signup/", "/login/"):
        page.goto(f"{platform.url}{path}")
        assert page.locator("h1").count() >= 1, path
    page.goto(f"{platform.url}/o/device/")  # not signed in: the sign-in page
    page.wait_for_url(f"{platform.url}/accounts/login/**")
    page.fill("input[name=login]", "petra")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(f"{platform.url}/o/device/")
    assert page.locator("input[name=user_code]").count() == 1
    for path in ("/accounts/email/", "/accounts/password/change/"):
        page.goto(f"{platform.url}{path}")
        assert page.locator("#account-user").inner_text() == "petra"
    assert violations(page, console) == []
