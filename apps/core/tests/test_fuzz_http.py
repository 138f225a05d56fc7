"""Every body-taking API endpoint, given the body shapes that once earned a 500 (issue 25 item
12): JSON that is not an object (``[1]``, ``"str"``, ``1``, ``null``) and strings no encoder can
hold (a lone surrogate). Each is a 400 ``bad_json`` from the one parser, never a 500.

The schema-driven fuzzer (``make security-scan``, deploy/security/api_fuzz.py) sends random
valid-looking bodies; this pins these shapes on every endpoint in the suite.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

BODIES = {
    "list": "[1]",
    "string": '"str"',
    "number": "1",
    "null": "null",
    "lone_surrogate": '{"stream_id": "\\ud800", "name": "\\udfff", "token": "\\ud800"}',
    "surrogate_key": '{"\\ud800": 1}',
}


def _operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in schema["paths"].items():
        for method in ("post", "put", "patch", "delete"):
            if method in item:
                # Any id: the body is parsed before the object is looked up (or is a 404).
                found.append(
                    (method, re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000001", path))
                )
    return found


OPERATIONS = _operations()


def test_the_schema_lists_the_endpoints_that_failed() -> None:
    assert ("delete", "/api/morpheus/render_stop") in OPERATIONS
    assert ("post", "/api/athena/authenticate") in OPERATIONS


@pytest.mark.parametrize("shape", sorted(BODIES))
def test_non_object_and_unencodable_bodies_are_400_on_every_endpoint(
    bearer_client: Any, make_user: Any, shape: str
) -> None:
    client = bearer_client(make_user("admin"))
    client.raise_request_exception = False  # a 500 is a failure listed below, not a crash
    failures, codes = [], {}
    for method, path in OPERATIONS:
        response = client.generic(
            method.upper(), path, BODIES[shape], content_type="application/json"
        )
        if response.status_code >= 500 or "json" not in response.get("Content-Type", ""):
            failures.append((method, path, response.status_code))
        elif response.status_code >= 400:
            codes[path] = response.json()["error"]["code"]
    assert not failures
    assert codes["/api/morpheus/render_stop"] == "bad_json"
    assert codes["/api/athena/authenticate"] == "bad_json"
