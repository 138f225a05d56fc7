"""The gateway (deploy/gateway) with Debian's nginx: `nginx -t`, then a real nginx in front of
two real daphne processes running the platform with production settings.

nginx runs as a subprocess with its own prefix in a temporary directory, on loopback ports, in
the foreground; the daphne processes use this run's test database and Redis.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from apps.core.testing import (
    current_database_url,
    daphne_args,
    free_port,
    port_open,
    running,
    spawn,
    wait_until,
)
from deploy.gateway.render import GATEWAY_DIR, render
from deploy.tests.helpers import self_signed_certificate

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists(),
    reason="nginx is missing: `make test` installs it (deploy/system-packages-test.txt)",
)


@dataclass
class Gateway:
    https_port: int
    http_port: int
    cert: Path
    web_addresses: set[str]
    web_logs: list[Path]

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.base + path, verify=str(self.cert), timeout=10, **kwargs)

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return requests.post(self.base + path, verify=str(self.cert), timeout=30, **kwargs)


def _workdir() -> Path:
    # nginx workers drop root (to nobody) when the test runs as root: they must be able to
    # traverse to their temp directories, which pytest's 0700 tmp_path would not allow.
    path = Path(tempfile.mkdtemp(prefix="vrp-gateway-"))
    path.chmod(0o755)
    return path


def _nginx_config(
    workdir: Path, upstreams: list[str], cert: Path, key: Path
) -> tuple[Path, int, int]:
    http_port, https_port = free_port(), free_port()
    conf = render(
        workdir / "conf",
        upstreams=upstreams,
        http_listen=f"127.0.0.1:{http_port}",
        https_listen=f"127.0.0.1:{https_port}",
        certificate=cert,
        certificate_key=key,
    )
    return conf, http_port, https_port


def _start_nginx(conf: Path, https_port: int, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    process = subprocess.Popen(
        [NGINX, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    return process


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def gateway(
    tls: tuple[Path, Path], django_db_setup: None, django_db_blocker: object
) -> Iterator[Gateway]:
    from django.conf import settings

    cert, key = tls
    workdir = _workdir()
    web_ports = [free_port(), free_port()]
    conf, http_port, https_port = _nginx_config(
        workdir, [f"127.0.0.1:{p}" for p in web_ports], cert, key
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vrplatform.settings.production",
        "DJANGO_SECRET_KEY": "gateway-test-" + "k" * 50,
        "JWT_SECRET": "gateway-test-jwt-" + "s" * 32,
        "OIDC_RSA_PRIVATE_KEY": settings.OIDC_RSA_PRIVATE_KEY,
        "DATABASE_URL": current_database_url(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CORS_ORIGINS": f"https://127.0.0.1:{https_port}",
        "THROTTLE_ANON": "10000/min",
        "LOGIN_LOCKOUT_THRESHOLD": "1000",
        "TEST_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
    }
    web_logs = [workdir / f"web{i}.log" for i in (1, 2)]
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        processes = []
        for port, log in zip(web_ports, web_logs, strict=True):
            # The command line of the web role in deploy/docker/entrypoint.sh.
            processes.append(spawn(daphne_args(port, "--proxy-headers"), log=log, env=env))
        nginx_log = workdir / "nginx.log"
        with (
            running(processes[0]),
            running(processes[1]),
            running(_start_nginx(conf, https_port, nginx_log)) as nginx,
        ):
            for process, port, log in zip(processes, web_ports, web_logs, strict=True):
                wait_until(partial(port_open, port), "daphne", process=process, log=log)
            wait_until(lambda: port_open(https_port), "nginx", process=nginx, log=nginx_log)
            yield Gateway(
                https_port=https_port,
                http_port=http_port,
                cert=cert,
                web_addresses={f"127.0.0.1:{p}" for p in web_ports},
                web_logs=web_logs,
            )
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def platform(gateway: Gateway) -> Gateway:
    from apps.accounts.services import roles_sync

    roles_sync()  # a transactional test elsewhere may have flushed the roles
    return gateway


def _nginx_t(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NGINX, "-t", "-p", str(conf.parent), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_nginx_accepts_the_configuration(tls: tuple[Path, Path]) -> None:
    cert, key = tls
    workdir = _workdir()
    try:
        conf, _, _ = _nginx_config(workdir, ["127.0.0.1:8001", "127.0.0.1:8002"], cert, key)
        result = _nginx_t(conf)
        assert result.returncode == 0, result.stderr
        assert "test is successful" in result.stderr

        # The committed site files (compose) too, with their hosts and certificate paths local.
        prod = workdir / "prod"
        shutil.copytree(GATEWAY_DIR, prod, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        site = prod / "hermes" / "site"
        upstream = (site / "upstream.conf").read_text()
        assert "web1:8000" in upstream
        assert "web2:8000" in upstream
        (site / "upstream.conf").write_text(
            upstream.replace("web1", "127.0.0.1").replace("web2", "127.0.0.1")
        )
        certificate = (site / "certificate.conf").read_text()
        (site / "certificate.conf").write_text(
            certificate.replace("/etc/nginx/tls/fullchain.pem", str(cert)).replace(
                "/etc/nginx/tls/privkey.pem", str(key)
            )
        )
        result = _nginx_t(prod / "nginx.conf")
        assert result.returncode == 0, result.stderr
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.django_db(transaction=True)
def test_http_is_balanced_across_both_web_processes(platform: Gateway) -> None:
    seen = set()
    for _ in range(8):
        response = platform.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        seen.add(response.headers["X-Upstream"])
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value  # once: the platform's copies are hidden
    assert seen == platform.web_addresses


@pytest.mark.django_db(transaction=True)
def test_plain_http_redirects_and_tls_below_1_3_is_refused(platform: Gateway) -> None:
    response = requests.get(
        f"http://127.0.0.1:{platform.http_port}/api/docs/?x=1", allow_redirects=False, timeout=10
    )
    assert response.status_code == 301
    assert response.headers["Location"] == "https://127.0.0.1/api/docs/?x=1"

    old = ssl.create_default_context(cafile=str(platform.cert))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", platform.https_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError),
    ):
        old.wrap_socket(raw, server_hostname="127.0.0.1")

    modern = ssl.create_default_context(cafile=str(platform.cert))
    with (
        socket.create_connection(("127.0.0.1", platform.https_port), timeout=10) as raw,
        modern.wrap_socket(raw, server_hostname="127.0.0.1") as tls_socket,
    ):
        assert tls_socket.version() == "TLSv1.3"


@pytest.mark.django_db(transaction=True)
def test_websocket_upgrade_passes_through_to_the_platform(platform: Gateway) -> None:
    context = ssl.create_default_context(cafile=str(platform.cert))
    url = f"wss://127.0.0.1:{platform.https_port}/ws/morpheus/worker/"
    # The streaming workers' socket accepts the upgrade, then closes a bad token with 4401:
    # only the platform behind the gateway can answer that.
    with connect(url, ssl=context, subprotocols=["vrplatform.v1", "bearer.not-a-token"]) as ws:
        assert ws.response.status_code == 101
        assert ws.response.headers["X-Upstream"] in platform.web_addresses
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401

    # A browser from a foreign origin is refused by the platform's origin check (not nginx).
    with pytest.raises(InvalidStatus) as refused:
        connect(url, ssl=context, origin="https://evil.example", open_timeout=10)
    assert refused.value.response.status_code == 403
    assert refused.value.response.headers["X-Upstream"] in platform.web_addresses


@pytest.mark.django_db(transaction=True)
def test_login_rate_limit_answers_429_in_json(platform: Gateway) -> None:
    statuses = []
    started = time.monotonic()
    for i in range(10):
        response = platform.post(
            "/api/athena/authenticate", json={"username": f"nobody{i}", "password": "wrong"}
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.headers["Content-Type"] == "application/json"
            assert response.json()["error"]["code"] == "rate_limited"
            assert response.headers["Retry-After"] == "1"
            assert "X-Upstream" not in response.headers  # nginx answered, not the platform
        else:
            assert response.headers["X-Upstream"] in platform.web_addresses
    # Burst of 5 on top of the first: the 7th request onwards is refused, except for what the
    # zone's 10 r/m refilled meanwhile (one request per 6 s: a wrong password costs a slow
    # machine about a second with the production password hasher, once per auth backend).
    refilled = int((time.monotonic() - started) / 6.0)
    assert statuses[:6].count(429) == 0
    assert statuses[6:].count(429) >= 4 - refilled
    assert 429 in statuses
    # The login zone does not throttle the rest of the API.
    assert platform.get("/healthz").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_body_size_limits(platform: Gateway) -> None:
    body = b"x" * (2 * 1024 * 1024)
    headers = {"Content-Type": "application/octet-stream"}
    response = platform.post("/api/athena/profile", data=body, headers=headers)
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "payload_too_large"

    # Scene uploads may be up to 200 MB: 2 MiB reaches the platform (which wants a login).
    response = platform.post("/api/daedalus/scenes/", data=body, headers=headers)
    assert response.status_code != 413
    assert response.headers["X-Upstream"] in platform.web_addresses


@pytest.mark.django_db(transaction=True)
def test_production_settings_behind_the_gateway(platform: Gateway) -> None:
    # SECURE_SSL_REDIRECT is on: no redirect means the gateway's X-Forwarded-Proto was trusted.
    response = platform.get("/admin/login/", allow_redirects=False)
    assert response.status_code == 200
    cookies = SimpleCookie(response.headers["Set-Cookie"])
    assert cookies["csrftoken"]["secure"] is True

    # Structured logs: the platform's 404 warning is one JSON object per line.
    assert platform.get("/no-such-page-gateway-test").status_code == 404
    lines = [
        json.loads(line)
        for log in platform.web_logs
        for line in log.read_text().splitlines()
        if line.startswith("{")
    ]
    assert any(
        entry["logger"] == "django.request" and "no-such-page-gateway-test" in entry["message"]
        for entry in lines
    )


def test_gateway_errors_are_json_when_the_platform_is_down(tls: tuple[Path, Path]) -> None:
    cert, key = tls
    workdir = _workdir()
    try:
        conf, _, https_port = _nginx_config(workdir, [f"127.0.0.1:{free_port()}"], cert, key)
        log = workdir / "nginx.log"
        with running(_start_nginx(conf, https_port, log)) as nginx:
            wait_until(lambda: port_open(https_port), "nginx", process=nginx, log=log)
            response = requests.get(
                f"https://127.0.0.1:{https_port}/healthz", verify=str(cert), timeout=10
            )
        assert response.status_code == 502
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "bad_gateway"
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
