"""Settings of the daphne process the end-to-end tests start: the test settings with a short
dead-worker timeout, so the worker-kill test does not wait 15 s."""

from vrplatform.settings.test import *  # noqa: F403

MORPHEUS_WORKER_DEAD_AFTER_S = 3.0
