"""Production settings: no insecure defaults, hardened transport, JSON logs.

Refuses to start without ``DJANGO_SECRET_KEY`` and ``JWT_SECRET``; ``manage.py check --deploy``
under these settings prints no warnings (a test shows it).
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEV_JWT_SECRET, DEV_SECRET_KEY, env

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
JWT_SECRET = env.str("JWT_SECRET", default="")
if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to a secret value in production.")
if not JWT_SECRET or JWT_SECRET == DEV_JWT_SECRET:
    raise ImproperlyConfigured("JWT_SECRET must be set to a secret value in production.")
if len(JWT_SECRET) < 32:
    raise ImproperlyConfigured("JWT_SECRET must be at least 32 characters.")

DEBUG = False
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
# Persistent connections where there is no pool (DB_POOL=false, base.py): each WebSocket
# sign-in otherwise opens a new PostgreSQL connection.
for _db in DATABASES.values():  # noqa: F405
    if "pool" not in _db.get("OPTIONS", {}):
        _db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
OIDC_RSA_PRIVATE_KEY = env.str("OIDC_RSA_PRIVATE_KEY", multiline=True)
OAUTH2_PROVIDER = {**OAUTH2_PROVIDER, "OIDC_RSA_PRIVATE_KEY": OIDC_RSA_PRIVATE_KEY}  # noqa: F405
OAUTH2_PROVIDER["ALLOWED_REDIRECT_URI_SCHEMES"] = ["https"]

# TLS terminates at the gateway, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Links in sign-in and password-reset e-mails, and external providers' callbacks, are https.
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "apps.core.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
