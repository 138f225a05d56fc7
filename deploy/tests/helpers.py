"""Helpers of the deploy checks: a throwaway certificate, processes that are ready."""

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
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


def wait_until(
    ready: Callable[[], bool],
    *,
    process: subprocess.Popen[bytes],
    what: str,
    log: Path,
    timeout: float = 30.0,
) -> None:
    """Poll a readiness condition of a process we started (not a test assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{log.read_text()}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout} s:\n{log.read_text()}")


def port_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        return False

    return check


@contextlib.contextmanager
def running(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
