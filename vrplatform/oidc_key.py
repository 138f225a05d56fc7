"""The RSA key that signs OpenID Connect ID tokens.

Production passes it in ``OIDC_RSA_PRIVATE_KEY``; development creates one on first use in
``var/`` (ignored by git) so a fresh checkout works without a setup step.
"""

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes


def private_key_pem(key: PrivateKeyTypes) -> str:
    """``key`` as unencrypted PKCS#8 PEM (also the compose deployment's keys: keygen.py)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def rsa_private_key_pem() -> str:
    """A new 2048-bit RSA private key, PKCS#8 PEM."""
    return private_key_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def load_or_create_dev_key(path: Path) -> str:
    if path.exists():
        return path.read_text()
    pem = rsa_private_key_pem()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(pem)
    tmp.chmod(0o600)
    tmp.replace(path)  # atomic: concurrent first starts never read half a key
    return pem
