"""Helpers of the deploy checks: a throwaway certificate. (Ports, waits and processes are the
suite's, in ``apps/core/testing.py``.)"""

from pathlib import Path


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 that is its own CA (clients can verify it),
    made by the same code as the compose deployment's keygen."""
    from deploy.docker.keygen import self_signed

    cert_pem, key_pem = self_signed(["localhost", "127.0.0.1"])
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_text(cert_pem)
    key_path.write_text(key_pem)
    return cert_path, key_path
