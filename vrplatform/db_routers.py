"""Database routing for an optional read replica (``DATABASE_REPLICA_URL``).

Only the reads of the apps in ``DATABASE_REPLICA_APPS`` go to the ``replica`` alias: they are
read-heavy and tolerate a replica's lag of a second or so (monitoring's capacity history and
dashboard). Everything else, and every write, stays on ``default``, so read-your-writes holds
wherever the code relied on it. Migrations run on ``default`` only (the replica follows it).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Model


class ReplicaRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        if model._meta.app_label in settings.DATABASE_REPLICA_APPS:
            return "replica"
        return None

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return "default"

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        return True  # one database and its copy

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "default"
