"""Create the secrets of a one-machine deployment (docker compose) where they are missing.

Writes into ``$SECRETS_DIR`` (default /var/lib/vrp/secrets): the Django secret key, the JWT
secret, the OIDC RSA key, the PostgreSQL password, and into ``$TLS_DIR`` (default
``$SECRETS_DIR/../tls``) a self-signed certificate for ``$PUBLIC_HOST`` unless a certificate is
there already (put real ones there: ``fullchain.pem``, ``privkey.pem``). Never overwrites, so
it is safe to run on every start.
"""

import datetime
import ipaddress
import logging
import os
import secrets
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# The repository's root (/app in the image, where entrypoint.sh runs this file as a script, with
# requirements.txt installed): the OIDC key is made by the platform's own code.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from vrplatform.oidc_key import private_key_pem, rsa_private_key_pem

logger = logging.getLogger("keygen")


def write_new(path: Path, data: str, mode: int = 0o600) -> None:
    if path.exists() and path.stat().st_size > 0:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(data)
    tmp.chmod(mode)
    tmp.replace(path)
    logger.info("created %s", path)


def self_signed(hosts: list[str]) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    alt: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), private_key_pem(key)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="keygen: %(message)s")
    base = Path(os.environ.get("SECRETS_DIR", "/var/lib/vrp/secrets"))
    tls = Path(os.environ.get("TLS_DIR", str(base.parent / "tls")))
    base.mkdir(parents=True, exist_ok=True)
    tls.mkdir(parents=True, exist_ok=True)
    write_new(base / "django_secret_key", secrets.token_urlsafe(64))
    write_new(base / "jwt_secret", secrets.token_urlsafe(48))
    write_new(base / "oidc_rsa_private.pem", rsa_private_key_pem())
    # Hex: safe inside a DATABASE_URL without quoting.
    write_new(base / "postgres_password", secrets.token_hex(24))
    # Prometheus (another user) reads it to scrape /metrics; it grants nothing else.
    write_new(base / "metrics_token", secrets.token_urlsafe(32), mode=0o644)
    # coturn's static-auth-secret and the platform's TURN_SHARED_SECRET (one value, two readers).
    write_new(base / "turn_shared_secret", secrets.token_urlsafe(32))
    if not (tls / "fullchain.pem").exists():
        hosts = [os.environ.get("PUBLIC_HOST", "localhost"), "localhost", "127.0.0.1"]
        cert, key = self_signed(list(dict.fromkeys(hosts)))
        # The gateway's master process reads the key as root, or as a member of this group.
        write_new(tls / "privkey.pem", key, mode=0o640)
        write_new(tls / "fullchain.pem", cert, mode=0o644)
    return 0


if __name__ == "__main__":
    sys.exit(main())
