"""Origins compare as scheme, host and port (issue 25 item 13)."""

from typing import Any

import pytest

from apps.core.origin import Origin, origin_allowed, parse_origin


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("http://Example.test", Origin("http", "example.test", 80)),
        ("https://example.test", Origin("https", "example.test", 443)),
        ("https://example.test:443", Origin("https", "example.test", 443)),
        ("http://[::1]:8000", Origin("http", "::1", 8000)),
        ("null", None),
        ("http://example.test:99999", None),
        ("http://example.test:x", None),
        ("ftp://example.test", None),
    ],
)
def test_parse_origin(value: str, parsed: Origin | None) -> None:
    assert parse_origin(value) == parsed


def test_trusted_origins_need_the_same_port_and_scheme(settings: Any) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://vr.example.test"]
    settings.CSRF_TRUSTED_ORIGINS = ["http://127.0.0.1:8000"]
    assert origin_allowed("https://vr.example.test")
    assert origin_allowed("https://vr.example.test:443")  # the default port spelled out
    assert not origin_allowed("https://vr.example.test:8443")
    assert not origin_allowed("http://vr.example.test")
    assert origin_allowed("http://127.0.0.1:8000")
    assert not origin_allowed("http://127.0.0.1:9999")


def test_same_origin_behind_a_tls_proxy(settings: Any) -> None:
    settings.CORS_ALLOWED_ORIGINS = []
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.ALLOWED_HOSTS = ["vr.example.test"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    scope = {
        "scheme": "ws",
        "headers": [(b"host", b"vr.example.test"), (b"x-forwarded-proto", b"https")],
    }
    assert origin_allowed("https://vr.example.test", scope)
    assert not origin_allowed("http://vr.example.test", scope)
    assert not origin_allowed("https://vr.example.test:8443", scope)
