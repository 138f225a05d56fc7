"""Receivers: keep role permissions in sync after migrations; tell sockets when roles change."""

from typing import Any

from django.db.models.signals import m2m_changed, post_migrate
from django.dispatch import receiver

from apps.accounts.models import User
from apps.accounts.services import roles_sync, wisdom_updated_notify


@receiver(post_migrate)
def _sync_roles_after_migrate(sender: Any, **kwargs: Any) -> None:
    # Permissions of every app exist only after post_migrate's own create_permissions; running
    # on each app's signal means the last one sees them all.
    roles_sync()


@receiver(m2m_changed, sender=User.groups.through)
def _roles_changed(sender: Any, instance: Any, action: str, reverse: bool, **kwargs: Any) -> None:
    # Covers the admin panel and services alike: any change to a user's groups.
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        wisdom_updated_notify(user_id=instance.pk)
        return
    for user_id in kwargs.get("pk_set") or ():
        wisdom_updated_notify(user_id=user_id)
