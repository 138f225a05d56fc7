"""``manage.py check --deploy`` under the production settings, with throwaway secrets.

Production refuses to start without its secrets; this generates random ones (never written
anywhere) so the check sees exactly what a real deployment would, and fails on any warning.

    python -m deploy.security.check_deploy
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from apps.core.testing import ROOT
from vrplatform.oidc_key import rsa_private_key_pem


def main() -> int:
    pem = rsa_private_key_pem()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vrplatform.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "JWT_SECRET": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "vr.example.com",
        "OIDC_RSA_PRIVATE_KEY": pem,
    }
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    return subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
