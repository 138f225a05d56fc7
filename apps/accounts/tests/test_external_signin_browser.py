"""External sign-in end to end in Chromium (issue 14): the platform's sign-in page, a real
OpenID Connect server started by the test (the ``oidc-provider-mock`` package: discovery,
authorization code with PKCE, signed ID tokens, userinfo), and back, signed in as a
participant, in the lobby. Accounts link by an e-mail the provider says is verified only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from oidc_provider_mock import User as IdpUser
from oidc_provider_mock import run_server_in_thread

from apps.accounts.models import User
from apps.accounts.services import roles_sync
from apps.core.testing_browser import ARTIFACTS, PASSWORD, Server, orm

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PEOPLE = [
    IdpUser(
        sub="corp-ana",
        claims={
            "email": "ana@corp.example",
            "email_verified": True,
            "preferred_username": "ana",
            "name": "Ana Corp",
        },
    ),
    IdpUser(
        sub="corp-linda",
        claims={"email": "linda@corp.example", "email_verified": True, "preferred_username": "l"},
    ),
]


@pytest.fixture
def idp() -> Iterator[str]:
    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def platform_with_sso(transactional_db: Any, idp: str) -> Iterator[Server]:
    orm(roles_sync)
    ARTIFACTS.mkdir(exist_ok=True)
    server = Server(ARTIFACTS)
    server.env.update(
        {
            "OIDC_PROVIDERS": "corp",
            "OIDC_CORP_NAME": "Corp SSO",
            "OIDC_CORP_SERVER_URL": idp,
            "OIDC_CORP_CLIENT_ID": "vr-platform",
            "OIDC_CORP_CLIENT_SECRET": "vr-platform-secret",
        }
    )
    server.start()
    yield server
    server.stop()


def _register_people(idp: str) -> None:
    import requests

    for person in PEOPLE:
        response = requests.put(f"{idp}/users/{person.sub}", json=person.claims, timeout=10)
        assert response.status_code in (200, 204), response.text


def sign_in_with_corp(page: Any, platform: Server, sub: str) -> None:
    page.goto(f"{platform.url}/login/?next=/lobby/")
    page.click("#login-accounts")  # "Sign in with your organisation or another account"
    page.wait_for_url(f"{platform.url}/accounts/login/**")
    page.screenshot(path=str(ARTIFACTS / "accounts-login.png"))
    page.get_by_text("Corp SSO").click()
    page.get_by_role("button", name="Continue").click()  # a POST: no sign-in by a bare link
    page.get_by_placeholder("sub").fill(sub)  # the provider's own sign-in page
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{platform.url}/lobby/", timeout=30_000)
    page.wait_for_function("document.getElementById('whoami').textContent.length > 0")


def test_new_user_signs_in_with_an_external_provider_and_lands_in_the_lobby(
    platform_with_sso: Server, idp: str, pages: Any
) -> None:
    _register_people(idp)
    page = pages()
    sign_in_with_corp(page, platform_with_sso, "corp-ana")
    assert page.locator("#whoami").inner_text() == "ana"
    stored = page.evaluate("JSON.parse(sessionStorage.getItem('vrplatform.auth'))")
    assert stored["user"]["roles"] == ["participant"]
    assert stored["user"]["is_staff"] is False
    page.screenshot(path=str(ARTIFACTS / "external-signin-lobby.png"))

    user = orm(User.objects.get, username="ana")
    assert user.email == "ana@corp.example"
    assert not user.has_usable_password()

    # The web client's sign-out ends the page session too: /login/ shows the form again.
    page.click("#signout")
    page.wait_for_url(f"{platform_with_sso.url}/login/")
    assert page.evaluate("sessionStorage.getItem('vrplatform.auth')") is None
    status = page.evaluate(
        """fetch('/api/athena/session_token', {method: 'POST', headers: {'X-CSRFToken':
             document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).slice(10)}})
           .then(r => r.status)"""
    )
    assert status == 403  # no page session left to trade for tokens


def test_existing_account_is_linked_by_verified_e_mail(
    platform_with_sso: Server, idp: str, pages: Any, user_factory: Any
) -> None:
    _register_people(idp)
    local = user_factory("linda-local", "creator")
    orm(User.objects.filter(pk=local.pk).update, email="linda@corp.example")
    page = pages()
    sign_in_with_corp(page, platform_with_sso, "corp-linda")
    assert page.locator("#whoami").inner_text() == "linda-local"
    stored = page.evaluate("JSON.parse(sessionStorage.getItem('vrplatform.auth'))")
    assert stored["user"]["roles"] == ["creator"]  # the same account, its roles kept
    # The local password still works alongside (linking replaced nothing).
    assert orm(User.objects.get, pk=local.pk).check_password(PASSWORD)
