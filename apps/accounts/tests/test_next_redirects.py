"""Server-side redirects after sign-in stay on this origin whatever ``next`` says (issue 25,
item 6; the web client's own check is static/client/tests/next.test.mjs)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from apps.accounts.tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

HOSTILE = [
    "/%5C127.0.0.1:8698/x",
    "/%09/127.0.0.1:8698/x",
    "//127.0.0.1:8698/x",
    "http://127.0.0.1:8698/x",
    "/%5C%5C127.0.0.1:8698/x",
]


@pytest.mark.parametrize("next_", HOSTILE)
def test_the_sign_in_page_never_redirects_to_another_origin(make_user: Any, next_: str) -> None:
    make_user(username="nina")
    response = Client().post(
        f"/accounts/login/?next={next_}", {"login": "nina", "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302
    target = urlsplit(response["Location"].replace("\\", "/").replace("\t", ""))
    assert target.netloc in ("", "testserver"), response["Location"]
    assert not target.path.startswith("//")
