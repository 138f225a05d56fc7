"""Settings of the processes the integration tests start: the development/production base
(real PostgreSQL and Redis from the environment, Celery through the Redis broker, not eager)
with short timeouts so faults are noticed within a test, and throttles out of the way."""

from vrplatform.settings.base import *  # noqa: F403
from vrplatform.settings.base import REST_FRAMEWORK

MORPHEUS_WORKER_DEAD_AFTER_S = 3.0
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
        "anon": "100000/min",
        "user": "100000/min",
        "authenticate": "100000/min",
    },
}
