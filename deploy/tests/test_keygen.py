"""deploy/docker/keygen.py: the secrets of a one-machine deployment, made once, never replaced."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SECRETS_DIR": str(tmp_path / "secrets"),
        "TLS_DIR": str(tmp_path / "tls"),
        "PUBLIC_HOST": "vr.example.test",
    }
    subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "docker" / "keygen.py")],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_keygen_creates_usable_secrets_once(tmp_path: Path) -> None:
    _run(tmp_path)
    secrets = tmp_path / "secrets"
    first = {p.name: p.read_text() for p in secrets.iterdir()}
    assert set(first) == {
        "django_secret_key",
        "jwt_secret",
        "oidc_rsa_private.pem",
        "postgres_password",
        "metrics_token",
        "turn_shared_secret",
    }
    assert len(first["jwt_secret"]) >= 32  # production settings demand it
    assert all(c in "0123456789abcdef" for c in first["postgres_password"])
    serialization.load_pem_private_key(first["oidc_rsa_private.pem"].encode(), password=None)
    assert (secrets / "jwt_secret").stat().st_mode & 0o777 == 0o600

    cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "fullchain.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "vr.example.test" in names.get_values_for_type(x509.DNSName)

    _run(tmp_path)  # a second start keeps everything
    assert {p.name: p.read_text() for p in secrets.iterdir()} == first
