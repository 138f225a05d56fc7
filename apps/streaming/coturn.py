"""The command line of a coturn (Debian's ``turnserver``) that checks the platform's TURN REST
credentials: ``use-auth-secret`` with the same ``static-auth-secret`` as
``TURN_SHARED_SECRET``. Used by ``manage.py run_platform`` (``RUN_TURN=1``) and the tests;
deployments configure the same options in deploy/coturn/turnserver.conf."""

from __future__ import annotations

from pathlib import Path


def coturn_command(
    *,
    secret: str,
    listen_ip: str,
    port: int = 3478,
    relay_ip: str | None = None,
    min_port: int = 49160,
    max_port: int = 49400,
    realm: str = "vrplatform",
    state_dir: Path,
    allow_loopback_peers: bool = False,
) -> list[str]:
    """``turnserver`` in the foreground, no TLS/DTLS (``turns:`` needs a certificate: see
    deploy/README.md), its user database and pid file under ``state_dir``."""
    command = [
        "turnserver",
        "-n",  # no configuration file: everything is here
        f"--listening-ip={listen_ip}",
        f"--relay-ip={relay_ip or listen_ip}",
        f"--listening-port={port}",
        f"--min-port={min_port}",
        f"--max-port={max_port}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        f"--realm={realm}",
        "--fingerprint",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--no-multicast-peers",
        "--no-software-attribute",
        f"--userdb={state_dir / 'turndb'}",
        f"--pidfile={state_dir / 'turnserver.pid'}",
        "--log-file=stdout",
        "--simple-log",
    ]
    if allow_loopback_peers:
        command.append("--allow-loopback-peers")
    return command
