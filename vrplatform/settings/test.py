"""Test settings: real PostgreSQL and real Redis, always.

The test command (``make test``) exports ``DATABASE_URL`` and ``REDIS_URL``, starting embedded
servers when none are given (see ``vrplatform/devservices.py``). Refusing to run without them
keeps a silent fallback to SQLite or in-memory layers from hiding real-service bugs.
"""

import os
import sys

from django.core.exceptions import ImproperlyConfigured

for _name in ("DATABASE_URL", "REDIS_URL"):
    if not os.environ.get(_name):
        raise ImproperlyConfigured(
            f"{_name} is not set: run the suite with `make test`, which starts PostgreSQL and "
            "Redis when none are given."
        )

from .base import *  # noqa: E402, F403
from .base import CELERY_BROKER_URL, REST_FRAMEWORK  # noqa: E402

if not DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    raise ImproperlyConfigured("The test suite runs against PostgreSQL only.")

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, tests only
# Tasks run in-process in tests, through the real task code; the broker URL stays real Redis so
# tests that start a Celery worker process use it.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = CELERY_BROKER_URL
# Each test run gets its own key space so parallel runs on one Redis do not collide.
_prefix = os.environ.get("TEST_KEY_PREFIX", f"vrptest{os.getpid()}")
CACHES["default"]["KEY_PREFIX"] = _prefix  # noqa: F405
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"{_prefix}:asgi"  # noqa: F405
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
        "anon": "10000/min",
        "user": "10000/min",
        "authenticate": "10000/min",
    },
}
MEDIA_ROOT = os.environ.get("TEST_MEDIA_ROOT", "/tmp/vrplatform-test-media")  # noqa: S108

# The pytest process itself runs without the connection pool (DB_POOL, base.py): its harness
# lends connections to threads no request ends (async tests' executors, pytest-django's
# per-test transaction on the main thread), and those borrowed connections piled up until the
# pool ran dry mid-suite. The servers the suite starts (daphne, Celery, workers: separate
# processes, no pytest in them) run with the pool, as deployed.
if "pytest" in sys.modules:
    for _db in DATABASES.values():  # noqa: F405
        _db.get("OPTIONS", {}).pop("pool", None)
