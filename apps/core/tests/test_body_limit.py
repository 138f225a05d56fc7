"""An oversized body is refused by daphne from its headers, before it is read (issue 14):
against a real daphne process, with a raw socket so the test controls what is sent when."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from apps.core.testing_browser import Server

pytestmark = pytest.mark.django_db

LIMIT = 1024 * 1024


@pytest.fixture
def small_limit_server(db: object, tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path)
    server.env["MAX_REQUEST_BODY_BYTES"] = str(LIMIT)
    server.start()
    yield server
    server.stop()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def test_announced_oversized_body_is_refused_before_it_is_sent(small_limit_server):
    """Only the headers go out; the 413 must come back without the server waiting for
    300 MB (the socket's 10 s timeout fails the test otherwise)."""
    sock = _connect(small_limit_server)
    sock.sendall(
        b"POST /api/daedalus/scenes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n"
        + f"Content-Length: {300 * 1024 * 1024}\r\n\r\n".encode()
    )
    status, headers, body = _read_response(sock)
    sock.close()
    assert status == 413
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "payload_too_large"
    assert error["detail"] == {"max_bytes": LIMIT}


def test_announced_body_with_expect_continue_gets_413_not_100(small_limit_server):
    sock = _connect(small_limit_server)
    sock.sendall(
        b"PUT /api/athena/profile HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
        + f"Content-Length: {LIMIT + 1}\r\n\r\n".encode()
    )
    status, _, _ = _read_response(sock)
    sock.close()
    assert status == 413


def test_chunked_body_past_the_limit_is_cut_off_without_growing_the_server(small_limit_server):
    proc = psutil.Process(small_limit_server.proc.pid)
    before = proc.memory_info().rss
    sock = _connect(small_limit_server)
    sock.sendall(
        b"POST /api/athena/authenticate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    try:
        while sent < 64 * 1024 * 1024:
            sock.sendall(frame)
            sent += len(chunk)
    except OSError:
        pass  # the server closed the connection after answering: what we want
    status, _, body = _read_response(sock)
    sock.close()
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert sent < 64 * 1024 * 1024, "the server read all 64 MB instead of refusing"
    grown_mb = (proc.memory_info().rss - before) / 2**20
    assert grown_mb < 16, f"daphne grew by {grown_mb:.0f} MB for a refused body"


def test_a_body_under_the_limit_still_reaches_the_view(small_limit_server):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (our own test server)
        f"{small_limit_server.url}/api/athena/authenticate",
        data=json.dumps({"username": "nobody", "password": "x" * 100}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    assert caught.value.code == 401
    assert json.loads(caught.value.read())["error"]["code"] == "invalid_credentials"
