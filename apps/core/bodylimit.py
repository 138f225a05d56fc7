"""Refuse an oversized request body before it is read, in daphne itself.

Twisted spools a body to a temporary file, and daphne then puts *all* of it on the
application's queue in one loop before Django's view can look at ``Content-Length``: a 300 MB
upload over the limit grew daphne by 300 MB before its 413. This patch answers ``413`` with the
JSON error envelope as soon as the headers announce a body over ``MAX_REQUEST_BODY_BYTES``
(or, for a chunked body, as soon as the bytes received pass it) and closes the connection;
nothing of the body is kept.
"""

from __future__ import annotations

import io
import json
from typing import Any

from django.conf import settings


class _Sink(io.RawIOBase):
    """Where the rest of a refused body goes: nowhere."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def _limit() -> int:
    return int(settings.MAX_REQUEST_BODY_BYTES)


def refusal_bytes(limit: int) -> bytes:
    body = json.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": "The request body is too large.",
                "detail": {"max_bytes": limit},
            }
        }
    ).encode()
    head = (
        "HTTP/1.1 413 Payload Too Large\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head + body


def _refuse(request: Any) -> None:
    request._vrp_refused = True
    request.content = _Sink()
    # No "100 Continue" after our answer: the client must not send the body.
    request.requestHeaders.removeHeader(b"Expect")
    transport = request.channel.transport if request.channel else None
    if transport is not None:
        transport.write(refusal_bytes(_limit()))
        transport.loseConnection()


def install_daphne_body_limit() -> None:
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # not served by daphne
        return
    if getattr(WebRequest, "_vrp_body_limit", False):
        return
    got_length = WebRequest.gotLength
    handle_chunk = WebRequest.handleContentChunk
    process = WebRequest.process

    def gotLength(self: Any, length: int | None) -> None:
        self._vrp_received = 0
        self._vrp_refused = False
        if length is not None and length > _limit():
            _refuse(self)
            return
        got_length(self, length)

    def handleContentChunk(self: Any, data: bytes) -> None:
        if self._vrp_refused:
            return
        self._vrp_received += len(data)
        if self._vrp_received > _limit():  # a chunked body without Content-Length
            self.content.close()
            _refuse(self)
            return
        handle_chunk(self, data)

    def process_(self: Any) -> None:
        if getattr(self, "_vrp_refused", False):
            return  # answered and closing already
        process(self)

    WebRequest.gotLength = gotLength
    WebRequest.handleContentChunk = handleContentChunk
    WebRequest.process = process_
    WebRequest._vrp_body_limit = True
