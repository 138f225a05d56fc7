"""docker-compose.yml, the offline override and the image's scripts, without starting anything.

`config` needs only a compose client: the v2 plugin (`docker compose`) or Debian's
`docker-compose` 1.29, whichever is here; without either, the file is parsed with PyYAML and its
structure asserted: services, published ports, volumes, start order. Running the stack is
`make test-compose` (deploy/compose_check.py).
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from apps.core.testing import load_script

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
OFFLINE = ROOT / "deploy" / "docker" / "offline.yml"


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.skipif(_compose_client() is None, reason="no docker compose client here")
@pytest.mark.parametrize("files", [[COMPOSE], [COMPOSE, OFFLINE]], ids=["registry", "offline"])
def test_docker_compose_config_accepts_the_files(files: list[Path]) -> None:
    client = _compose_client()
    assert client is not None
    args = [*client, "-p", "vrplatform"]
    for path in files:
        args += ["-f", str(path)]
    result = subprocess.run([*args, "config"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    if OFFLINE in files:
        # Debian-built stand-ins for the registry images; Grafana only with its profile.
        for name in ("postgres", "redis", "gateway", "prometheus"):
            assert services[name]["build"]["context"].endswith("deploy/docker/offline"), name
            assert services[name]["image"].startswith("vrplatform-offline-"), name
        assert services["grafana"]["profiles"] == ["grafana"]
    else:
        assert services["postgres"]["image"] == "postgres:16-bookworm"


def test_offline_images_keep_the_registry_images_interface() -> None:
    dockerfile = (ROOT / "deploy" / "docker" / "offline" / "Dockerfile").read_text()
    for target in ("postgres", "redis", "nginx", "prometheus"):
        assert f"AS {target}\n" in dockerfile, target
    entrypoint = ROOT / "deploy" / "docker" / "offline" / "postgres-entrypoint.sh"
    result = subprocess.run(["sh", "-n", str(entrypoint)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "POSTGRES_PASSWORD_FILE" in entrypoint.read_text()


def test_services_and_published_ports() -> None:
    services = _compose()["services"]
    assert set(services) == {
        "keygen",
        "postgres",
        "redis",
        "setup",
        "provision-worker",
        "web1",
        "web2",
        "celery",
        "streaming",
        "turn",
        "gateway",
        "prometheus",
        "grafana",
    }
    ports = {name: [str(p) for p in s.get("ports", [])] for name, s in services.items()}
    assert ports["gateway"] == ["${GATEWAY_HTTP_PORT:-80}:8080", "${GATEWAY_HTTPS_PORT:-443}:8443"]
    assert ports["prometheus"][0].endswith(":${PROMETHEUS_PORT:-9090}:9090")
    assert ports["grafana"][0].endswith(":${GRAFANA_PORT:-3000}:3000")
    # The data layer is never published.
    assert ports["postgres"] == ports["redis"] == []


def test_platform_services_share_one_image_and_their_roles() -> None:
    services = _compose()["services"]
    roles = {
        "keygen": "keygen",
        "setup": "setup",
        "provision-worker": "provision-worker",
        "web1": "web",
        "web2": "web",
        "celery": "celery",
        "streaming": "streaming",
        "turn": "turn",
    }
    for name, role in roles.items():
        service = services[name]
        assert service["command"] == [role]
        assert service["build"] == {
            "context": ".",
            "dockerfile": "deploy/Dockerfile",
            "target": "runtime",
        }
        assert (
            service["environment"]
            .get("DJANGO_SETTINGS_MODULE", "production")
            .endswith("production")
        )
    assert services["web1"]["networks"]["backend"]["aliases"] == ["web"]
    assert services["web2"]["networks"]["backend"]["aliases"] == ["web"]


def test_start_order_and_worker_token_provisioning() -> None:
    services = _compose()["services"]

    def needs(name: str) -> dict[str, str]:
        deps = services[name].get("depends_on", {})
        if isinstance(deps, list):
            return dict.fromkeys(deps, "service_started")
        return {dep: spec["condition"] for dep, spec in deps.items()}

    assert needs("postgres") == {"keygen": "service_completed_successfully"}
    assert needs("setup") == {"postgres": "service_healthy", "redis": "service_healthy"}
    assert needs("provision-worker") == {"setup": "service_completed_successfully"}
    assert needs("web1")["setup"] == "service_completed_successfully"
    assert needs("streaming")["provision-worker"] == "service_completed_successfully"
    assert needs("gateway") == {"web1": "service_healthy", "web2": "service_healthy"}
    for one_shot in ("keygen", "setup", "provision-worker"):
        assert services[one_shot]["restart"] == "no"

    # The token travels through a volume: written by provision-worker, read by streaming.
    token_file = services["provision-worker"]["environment"]["WORKER_TOKEN_FILE"]
    assert services["streaming"]["environment"]["WORKER_TOKEN_FILE"] == token_file
    assert "worker-token:/var/lib/vrp/worker" in services["provision-worker"]["volumes"]
    assert "worker-token:/var/lib/vrp/worker:ro" in services["streaming"]["volumes"]
    # The streaming worker is a client only: no secrets volume, no database settings.
    assert not any("secrets" in v for v in services["streaming"]["volumes"])
    assert "POSTGRES_PASSWORD_FILE" not in services["streaming"]["environment"]


def test_volumes_are_declared_and_mounted_files_exist() -> None:
    compose = _compose()
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
    assert {"postgres-data", "redis-data", "secrets", "tls", "media", "worker-token"} <= declared


def test_entrypoint_and_scripts_parse() -> None:
    result = subprocess.run(
        ["sh", "-n", str(ROOT / "deploy" / "docker" / "entrypoint.sh")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "USER vrp:vrp" in dockerfile
    assert "collectstatic" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    assert "AS gpu" in dockerfile
    for package in ("libegl1", "libgl1-mesa-dri"):
        assert package in (ROOT / "deploy" / "system-packages.txt").read_text()


def test_the_turn_relay_and_the_web_processes_share_one_secret_file() -> None:
    services = _compose()["services"]
    turn = services["turn"]
    assert turn["network_mode"] == "host"
    secret_file = turn["environment"]["TURN_SHARED_SECRET_FILE"]
    for web in ("web1", "web2"):
        environment = services[web]["environment"]
        assert environment["TURN_SHARED_SECRET_FILE"] == secret_file
        # Unset unless `.env` or the shell sets it: the entrypoint then names the relay.
        assert environment["TURN_URLS"] is None
        assert environment["TURN_HOST"] == "${PUBLIC_HOST:-localhost}"
    # The streaming worker gets per-stream credentials, never the secret.
    assert not any("TURN" in k for k in services["streaming"]["environment"])
    keygen = (ROOT / "deploy/docker/keygen.py").read_text()
    assert Path(secret_file).name in keygen
    assert "TURN_SHARED_SECRET" in (ROOT / "deploy/docker/entrypoint.sh").read_text()


@pytest.mark.parametrize(
    ("environment", "urls"),
    [
        (
            {"TURN_HOST": "vr.example"},
            "turn:vr.example:3478?transport=udp,turn:vr.example:3478?transport=tcp",
        ),
        ({"TURN_HOST": "vr.example", "TURN_URLS": ""}, ""),  # TURN off
        (
            {"TURN_HOST": "vr.example", "TURN_URLS": "turn:relay.example:3478"},
            "turn:relay.example:3478",
        ),
        ({}, "unset"),  # Kubernetes and others: no TURN_HOST, no default
    ],
)
def test_the_entrypoint_names_the_turn_relay_unless_told_otherwise(
    environment: dict[str, str], urls: str
) -> None:
    result = subprocess.run(
        ["/bin/sh", "deploy/docker/entrypoint.sh", "sh", "-c", 'echo "${TURN_URLS-unset}"'],
        env={"PATH": "/usr/bin:/bin", **environment},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=True,
    )
    assert result.stdout.strip() == urls


def test_no_nested_defaults_in_the_compose_files() -> None:
    """``${A-${B}}`` is mis-expanded by Debian's docker-compose 1.29 (seen: TURN_URLS came out
    as ``turn:${PUBLIC_HOST:-localhost:3478…``)."""
    for path in (COMPOSE, ROOT / "deploy/docker/offline.yml"):
        for line in path.read_text().splitlines():
            assert not re.search(r"\$\{[^}]*\$\{", line), f"{path.name}: {line.strip()}"


def _healthcheck_module() -> Any:
    path = ROOT / "deploy" / "docker" / "healthcheck.py"
    return load_script("vrp_healthcheck", path)


def test_healthcheck_sees_only_an_established_connection_of_the_process() -> None:
    """celery and streaming are healthy while PID 1 holds its broker / platform connection."""
    import os
    import socket

    healthcheck = _healthcheck_module()
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert not healthcheck.connected_to(port, pid=os.getpid())  # listening is not connected
        with socket.create_connection(("127.0.0.1", port)) as client:
            peer, _ = server.accept()
            with peer:
                assert healthcheck.connected_to(port, pid=os.getpid())
                # A connection to another port is not the one asked about.
                assert not healthcheck.connected_to(port + 1, pid=os.getpid())
            client.close()
    assert healthcheck._port("redis://redis:6379/0", 1) == 6379
    assert healthcheck._port("http://127.0.0.1:18000", 1) == 18000
    assert healthcheck._port("https://vr.example.com", 1) == 443
