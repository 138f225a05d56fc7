"""`make test-compose`: build the image, start the whole stack with docker compose, use it as a
user would, restart it, and stop it.

    .venv/bin/python deploy/compose_check.py [--keep] [--offline|--online]

Steps: a container engine (starts dockerd as root when none answers, data in /var/lib/docker so
the build cache survives), a base image (the registry's python image, or a Debian 12 base made
with debootstrap when it cannot be pulled; made once), the platform image (runtime and gpu
targets; an extra CA for pip/npm from VRP_BUILD_CA, default the host's bundle), then the stack
from clean volumes (`-f deploy/docker/offline.yml` when the registry's images cannot be pulled)
and the checks. Prints `N passed, N failed`; exits 1 on any failure, 2 when no container engine
can be started. `docker compose logs` go to var/compose-check/ on failure.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.core.testing import wait_until  # noqa: E402 (needs ROOT on the path)

OUT = ROOT / "var" / "compose-check"
PROJECT = os.environ.get("COMPOSE_CHECK_PROJECT", "vrpcheck")
BASE_IMAGE = "vrplatform-base:bookworm"
REGISTRY_PYTHON = "python:3.11-slim-bookworm"
IMAGE = os.environ.get("VRP_IMAGE", "vrplatform:latest")
DATA_ROOT = Path(os.environ.get("DOCKER_DATA_ROOT", "/var/lib/docker"))
CACHE = Path(os.environ.get("COMPOSE_CHECK_CACHE", "/var/cache/vrp-compose"))
# The stack's host ports: the gateway on the standard ones (the platform's origin is
# https://localhost), the rest away from a developer's `make run` on 8000.
PORTS = {"WEB_LOCAL_PORT": "18000", "PROMETHEUS_PORT": "19090", "GRAFANA_PORT": "13000"}
HTTPS = "https://localhost"
DEMO_PLAYER = ("player", "player-demo")
DEMO_CREATOR = ("creator", "creator-demo")


def docker_bin() -> str:
    # Debian's docker.io client speaks to its own dockerd and builds with BuildKit without the
    # buildx plugin; a newer client elsewhere on PATH may lack that plugin.
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


DOCKER = docker_bin()


def run(
    args: list[str], *, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 (fixed tools: docker, compose, debootstrap)
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} -> {result.returncode}\n{result.stderr[-3000:]}")
    return result


# The suite's wait (this script runs from the repository with the project's venv, ROOT on the
# path above), polled every 2 s: the stack takes minutes, and a service still starting answers
# with an exception (connection refused, no such container), which means "not yet".
settle = functools.partial(wait_until, interval=2.0, retry=(Exception,))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the engine and the images --------------------------------------------------------------


def engine_up() -> bool:
    return run([DOCKER, "info"], check=False, timeout=30).returncode == 0


def ensure_engine() -> None:
    if engine_up():
        return
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if os.geteuid() != 0 or not Path(dockerd).exists():
        raise OSError(
            "no container engine answers, and dockerd cannot be started here "
            "(needs root and Debian's docker.io)"
        )
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    logfile = (CACHE / "dockerd.log").open("a")
    log(f"starting {dockerd} (data root {DATA_ROOT}, log {CACHE / 'dockerd.log'})")
    subprocess.Popen(  # noqa: S603 (our own daemon, detached so it outlives this check)
        [dockerd, "--data-root", str(DATA_ROOT)],
        stdout=logfile,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    settle(engine_up, "dockerd answering", 60)


def have_image(name: str) -> bool:
    return run([DOCKER, "image", "inspect", name], check=False, timeout=30).returncode == 0


def pullable(name: str) -> bool:
    if have_image(name):
        return True
    try:
        return run([DOCKER, "pull", "-q", name], check=False, timeout=90).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ensure_base() -> str:
    """The Dockerfile's PYTHON_IMAGE: the registry's, else a local Debian 12 (debootstrap)."""
    if os.environ.get("PYTHON_IMAGE"):
        return os.environ["PYTHON_IMAGE"]
    if have_image(BASE_IMAGE):
        return BASE_IMAGE
    if pullable(REGISTRY_PYTHON):
        return REGISTRY_PYTHON
    if not shutil.which("debootstrap"):
        raise OSError(f"{REGISTRY_PYTHON} cannot be pulled; apt-get install debootstrap")
    log(f"{REGISTRY_PYTHON} cannot be pulled: building {BASE_IMAGE} with debootstrap")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,python-is-python3,ca-certificates",
                "bookworm",
                str(rootfs),
                "http://deb.debian.org/debian",
            ],
            timeout=900,
        )
        (rootfs / "etc/apt/sources.list").write_text(
            "deb http://deb.debian.org/debian bookworm main\n"
            "deb http://deb.debian.org/debian bookworm-updates main\n"
            "deb http://deb.debian.org/debian-security bookworm-security main\n"
        )
        for leftovers in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for path in (rootfs / leftovers).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(  # noqa: S603
            ["/usr/bin/tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
        )
        subprocess.run(  # noqa: S603
            [
                DOCKER,
                "import",
                "-c",
                "ENV LANG=C.UTF-8",
                "-c",
                'CMD ["/bin/bash"]',
                "-",
                BASE_IMAGE,
            ],
            stdin=tar.stdout,
            check=True,
            capture_output=True,
        )
        tar.wait()
    return BASE_IMAGE


def build_platform(python_image: str) -> dict[str, float]:
    env = {"DOCKER_BUILDKIT": "1"}
    ca = os.environ.get("VRP_BUILD_CA", "/etc/ssl/certs/ca-certificates.crt")
    secret = ["--secret", f"id=extra_ca,src={ca}"] if ca and Path(ca).is_file() else []
    timings = {}
    for target, tag in (("runtime", IMAGE), ("gpu", IMAGE.rsplit(":", 1)[0] + ":gpu")):
        started = time.monotonic()
        result = run(
            [
                *(DOCKER, "build", "-f", "deploy/Dockerfile"),
                *("--build-arg", f"PYTHON_IMAGE={python_image}", *secret),
                *("--target", target, "-t", tag, "."),
            ],
            env=env,
            timeout=1800,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building {target} failed:\n{result.stderr[-4000:]}")
        timings[target] = time.monotonic() - started
    return timings


# --- compose --------------------------------------------------------------------------------


class Compose:
    def __init__(self, offline: bool) -> None:
        probe = run([DOCKER, "compose", "version"], check=False, timeout=30)
        self.base = [DOCKER, "compose"] if probe.returncode == 0 else ["docker-compose"]
        files = ["-f", "docker-compose.yml"]
        if offline:
            files += ["-f", "deploy/docker/offline.yml"]
        self.args = [*self.base, "-p", PROJECT, *files]
        self.env = {
            **PORTS,
            "VRP_IMAGE": IMAGE,
            # The full sandbox (without its own /proc under Docker's /proc masks): the upload
            # check fails if processing is refused. SCENE_SANDBOX=... in the caller's
            # environment checks another mode.
            "SCENE_SANDBOX": os.environ.get("SCENE_SANDBOX", "required"),
            "COMPOSE_DOCKER_CLI_BUILD": "1",
            "DOCKER_BUILDKIT": "1",
            # docker-compose 1.29 runs `docker` for builds: the client of the same engine.
            "PATH": f"{Path(DOCKER).parent}:{os.environ.get('PATH', '')}",
        }

    def __call__(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        return run([*self.args, *args], env=self.env, timeout=timeout, check=check).stdout

    def container(self, service: str) -> str:
        ids = self("ps", "-q", service).split()
        if not ids:
            ids = run(
                [
                    DOCKER,
                    "ps",
                    "-aq",
                    "--filter",
                    f"label=com.docker.compose.project={PROJECT}",
                    "--filter",
                    f"label=com.docker.compose.service={service}",
                ],
            ).stdout.split()
        if not ids:
            raise RuntimeError(f"no container for {service}")
        return ids[0]

    def state(self, service: str) -> dict[str, Any]:
        out = run(
            [DOCKER, "inspect", "--format", "{{json .State}}", self.container(service)]
        ).stdout
        return dict(json.loads(out))

    def logs(self, service: str) -> str:
        result = run([DOCKER, "logs", self.container(service)], check=False)
        return result.stdout + result.stderr

    def healthy(self, service: str) -> bool:
        return self.state(service).get("Health", {}).get("Status") == "healthy"

    def completed(self, service: str) -> bool:
        state = self.state(service)
        if state["Status"] == "exited" and state["ExitCode"] != 0:
            raise RuntimeError(f"{service} exited with {state['ExitCode']}")
        return state["Status"] == "exited"


# --- what a user sees -----------------------------------------------------------------------


def tls13_context(cafile: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    return context


def https(
    context: ssl.SSLContext,
    path: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, str]:
    request = urllib.request.Request(f"{HTTPS}{path}", data=data, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:  # noqa: S310
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), ""


def tls_version(context: ssl.SSLContext) -> str:
    with (
        socket.create_connection(("localhost", 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return str(tls.version())


def authenticate(context: ssl.SSLContext, username: str, password: str) -> str:
    status, body, _ = https(
        context,
        "/api/athena/authenticate",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    if status != 200:
        raise RuntimeError(f"sign-in as {username}: {status} {body[:300]!r}")
    return str(json.loads(body)["access"])


def multipart(
    fields: dict[str, str], file_field: str, filename: str, content: bytes
) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="{filename}"\r\nContent-Type: model/gltf-binary\r\n\r\n'.encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def small_glb() -> bytes:
    from apps.scenes.validation.tests.corpus import make_single_mesh

    with tempfile.TemporaryDirectory() as tmp:
        return make_single_mesh(Path(tmp)).read_bytes()


def browser_stream(cafile: str) -> dict[str, Any]:
    """Chromium signs in through the gateway and decodes the demo room's stream."""
    from playwright.sync_api import sync_playwright

    from apps.core.testing_browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # The certificate is keygen's self-signed one (checked against it in the TLS step).
            context = browser.new_context(ignore_https_errors=True, bypass_csp=True)
            page = context.new_page()
            page.set_default_timeout(60_000)
            try:
                page.goto(f"{HTTPS}/login/?next=/lobby/")
                page.fill("#username", DEMO_PLAYER[0])
                page.fill("#password", DEMO_PLAYER[1])
                page.click("#login-submit")
                page.wait_for_url(f"{HTTPS}/lobby/")
                room = page.locator("li.scene", has_text="Demo room").first
                room.wait_for(timeout=120_000)
                room.locator("button.create-session").click()
                page.wait_for_url(f"{HTTPS}/play/**")
                page.wait_for_function("!!window.vrplatform")
                page.wait_for_function(
                    "(() => { const s = window.vrplatform.stats();"
                    " return s && s.streaming && s.framesShown > 0; })()",
                    timeout=180_000,
                )
                time.sleep(2)
                stats = dict(page.evaluate("window.vrplatform.stats()"))
                OUT.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(OUT / "viewer.png"))
                return stats
            except Exception:
                OUT.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(OUT / "viewer-failed.png"))
                raise
        finally:
            browser.close()


# --- the run --------------------------------------------------------------------------------


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, fn: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail = fn()
        except Exception as exc:
            self.failed += 1
            print(f"FAIL {name} ({time.monotonic() - started:.0f} s): {exc}", flush=True)
            return False
        self.passed += 1
        print(f"ok   {name} ({time.monotonic() - started:.0f} s): {detail}", flush=True)
        return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--offline", action="store_true", help="always use deploy/docker/offline.yml")
    mode.add_argument("--online", action="store_true", help="always pull the registry images")
    parser.add_argument("--keep", action="store_true", help="leave the stack and its volumes up")
    args = parser.parse_args()
    started = time.monotonic()
    # .ci/run reads this marker: no engine is a skip there, not a failure.
    no_engine = OUT / "no-engine"
    no_engine.unlink(missing_ok=True)
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        ensure_engine()
    except (OSError, TimeoutError) as exc:
        OUT.mkdir(parents=True, exist_ok=True)
        no_engine.write_text(f"{exc}\n")
        print(f"no container engine: {exc}\n0 passed, 1 failed")
        return 2

    checks = Checks()
    offline = args.offline or (
        not args.online
        and not all(pullable(i) for i in ("postgres:16-bookworm", "redis:7-bookworm"))
    )
    compose = Compose(offline)
    log(f"SCENE_SANDBOX={compose.env['SCENE_SANDBOX']} (deploy/README.md, make test-compose)")
    log(
        f"compose: {' '.join(compose.base)}; "
        + ("offline (Debian-built data layer, no Grafana)" if offline else "registry images")
    )
    timings: dict[str, float] = {}

    def images() -> str:
        t0 = time.monotonic()
        python_image = ensure_base()
        timings["base"] = time.monotonic() - t0
        timings.update(build_platform(python_image))
        if offline:
            t0 = time.monotonic()
            compose("build", "postgres", "redis", "gateway", "prometheus", timeout=1800)
            timings["offline images"] = time.monotonic() - t0
        # Each source change leaves the previous build untagged: drop those (the cache stays).
        run([DOCKER, "image", "prune", "-f"], check=False, timeout=300)
        size = run([DOCKER, "image", "inspect", "--format", "{{.Size}}", IMAGE]).stdout.strip()
        user = run(
            [DOCKER, "image", "inspect", "--format", "{{.Config.User}}", IMAGE]
        ).stdout.strip()
        if user in ("", "root", "0"):
            raise RuntimeError(f"{IMAGE} runs as {user or 'root'}")
        spent = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        return f"{IMAGE} on {python_image}: {int(size) / 1e6:.0f} MB, user {user}; {spent}"

    if not checks.check("images build", images):
        print(f"{checks.passed} passed, {checks.failed} failed")
        return 1

    cafile = str(OUT / "gateway-ca.pem")
    context_holder: dict[str, ssl.SSLContext] = {}
    scene: dict[str, str] = {}

    def stack_up() -> str:
        compose("down", "-v", "--remove-orphans", timeout=300, check=False)
        compose("up", "-d", "--no-build", timeout=900)
        settle(lambda: compose.completed("setup"), "setup finished", 600)
        settle(lambda: compose.completed("provision-worker"), "provision-worker finished", 300)
        # Healthy means: web answers /healthz, celery holds its broker connection, streaming its
        # platform WebSocket (deploy/docker/healthcheck.py).
        for service in ("web1", "web2", "celery", "streaming"):
            settle(lambda s=service: compose.healthy(s), f"{service} healthy", 300)
        settle(lambda: compose.state("gateway")["Status"] == "running", "gateway running", 120)
        setup_log = compose.logs("setup")
        return (
            f"setup exited 0 ({len(setup_log.splitlines())} log lines); "
            "web1, web2, celery, streaming healthy"
        )

    def gateway_tls13() -> str:
        OUT.mkdir(parents=True, exist_ok=True)
        pem = run(
            [DOCKER, "exec", compose.container("gateway"), "cat", "/etc/nginx/tls/fullchain.pem"]
        ).stdout
        Path(cafile).write_text(pem)
        context = tls13_context(cafile)
        context_holder["tls"] = context
        version = settle(lambda: tls_version(context), "TLS handshake", 60)
        if version != "TLSv1.3":
            raise RuntimeError(f"negotiated {version}")
        marker = uuid.uuid4().hex
        for i in range(8):
            status, _, _ = https(context, f"/healthz?compose-check={marker}-{i}")
            if status != 200:
                raise RuntimeError(f"/healthz through the gateway: {status}")
        served = {s: compose.logs(s).count(marker) for s in ("web1", "web2")}
        if not all(served.values()):
            raise RuntimeError(f"requests per web process: {served}")
        per_process = ", ".join(f"{k} x{v}" for k, v in served.items())
        return f"{version}, certificate verified; /healthz answered by {per_process}"

    def demo_data() -> str:
        context = context_holder["tls"]
        token = authenticate(context, *DEMO_PLAYER)
        status, body, _ = https(
            context, "/api/daedalus/scenes", headers={"Authorization": f"Bearer {token}"}
        )
        if status != 200 or b"Demo room" not in body:
            raise RuntimeError(f"scene list: {status} {body[:300]!r}")
        return "player signs in over the API; the Demo room is listed"

    def viewer() -> str:
        stats = browser_stream(cafile)
        decoded = (stats.get("rtc") or {}).get("framesDecoded") or stats.get("framesDecoded")
        return f"frames shown {stats.get('framesShown')}, decoded {decoded}, fps {stats.get('fps')}"

    def upload() -> str:
        context = context_holder["tls"]
        token = authenticate(context, *DEMO_CREATOR)
        auth = {"Authorization": f"Bearer {token}"}
        body, content_type = multipart(
            {"name": f"Compose check {uuid.uuid4().hex[:6]}"}, "file", "box.glb", small_glb()
        )
        status, answer, _ = https(
            context,
            "/api/daedalus/scenes",
            data=body,
            headers={**auth, "Content-Type": content_type},
        )
        if status != 201:
            raise RuntimeError(f"upload: {status} {answer[:300]!r}")
        created = json.loads(answer)
        scene.update(id=created["id"], version=created["version"]["id"], name=created["name"])
        url = f"/api/daedalus/scenes/{scene['id']}/versions/{scene['version']}"

        def processed() -> str | None:
            _, got, _ = https(context, url, headers=auth)
            state = json.loads(got)["status"]
            if state not in ("uploaded", "queued", "processing", "pending", "ready"):
                raise RuntimeError(f"processing ended {state}: {got[:500]!r}")
            return state if state == "ready" else None

        settle(processed, "the upload processed", 300)
        celery_logs = compose.logs("celery")
        worked = "succeeded" in celery_logs
        # apps/scenes/sandbox.py logs this once when Docker refuses the sandbox its own /proc.
        sandbox = "without /proc" if "scene sandbox without /proc" in celery_logs else "as built"
        return (
            f"scene {scene['id']} ready; celery logged the task: {worked}; "
            f"SCENE_SANDBOX={compose.env['SCENE_SANDBOX']}, sandbox {sandbox}"
        )

    def prometheus() -> str:
        url = f"http://127.0.0.1:{PORTS['PROMETHEUS_PORT']}/api/v1/targets"

        def up() -> list[str] | None:
            request = urllib.request.Request(url)  # the stack's own loopback port
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                targets = json.load(response)["data"]["activeTargets"]
            ours = [t for t in targets if t["labels"]["job"].startswith("vrplatform-")]
            jobs = sorted(t["labels"]["job"] for t in ours)
            want = ["vrplatform-streaming", "vrplatform-web", "vrplatform-web"]
            if jobs == want and all(t["health"] == "up" for t in ours):
                return [f"{t['labels']['instance']} {t['health']}" for t in targets]
            return None

        return "; ".join(settle(up, "web and streaming targets up", 120, interval=5))

    def restart_keeps_data() -> str:
        compose("down", timeout=300)
        compose("up", "-d", "--no-build", timeout=900)
        for service in ("web1", "web2"):
            settle(lambda s=service: compose.healthy(s), f"{service} healthy again", 300)
        context = context_holder["tls"]
        token = settle(lambda: authenticate(context, *DEMO_CREATOR), "sign-in after restart", 120)
        status, got, _ = https(
            context,
            f"/api/daedalus/scenes/{scene['id']}/versions/{scene['version']}",
            headers={"Authorization": f"Bearer {token}"},
        )
        if status != 200 or json.loads(got)["status"] != "ready":
            raise RuntimeError(f"after down/up: {status} {got[:300]!r}")
        return f"after down + up, {scene['name']!r} is still there and ready"

    ok = checks.check("stack starts from clean volumes; setup migrates and seeds", stack_up)
    if ok and checks.check(
        "both web processes answer through the gateway over TLS 1.3", gateway_tls13
    ):
        checks.check("demo data: player signs in, Demo room listed", demo_data)
        checks.check("Chromium signs in through the gateway and decodes the demo stream", viewer)
        if checks.check("a creator's upload is processed by the Celery container", upload):
            checks.check("down and up keep the data (volumes)", restart_keeps_data)
        checks.check("Prometheus scrapes the web and streaming-worker targets", prometheus)
    if checks.failed:
        OUT.mkdir(parents=True, exist_ok=True)
        logs = compose("logs", "--no-color", "--timestamps", timeout=120, check=False)
        (OUT / "compose-logs.txt").write_text(logs)
        print(f"compose logs: {OUT / 'compose-logs.txt'}")
    if not args.keep:
        compose("down", "-v", "--remove-orphans", timeout=300, check=False)
    print(f"whole run {time.monotonic() - started:.0f} s")
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
