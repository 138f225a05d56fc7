"""Receivers: keep role permissions in sync after migrations; tell sockets when roles change;
end sign-ins when a password changes or an OAuth2 token is revoked.

Signals for the apps above accounts (streaming connects to them in its ``ready()``; accounts
may not import it), each sent after commit with the kwarg ``user_id``:
- ``user_roles_reduced``: a user lost roles; what they may still do is judged on the end state.
- ``user_deactivated``: the account was disabled (its tokens are refused from now on).
"""

from typing import Any

from django.db.models.signals import (
    m2m_changed,
    post_delete,
    post_migrate,
    post_save,
    pre_delete,
    pre_save,
)
from django.dispatch import Signal, receiver
from oauth2_provider.models import get_access_token_model

from apps.accounts.authentication import oauth2_socket_key
from apps.accounts.models import User
from apps.accounts.services import (
    roles_sync,
    sockets_revoke_notify,
    user_roles_changed_notify,
    user_signins_revoke,
)
from apps.accounts.signins import (
    oauth2_signin_is_live,
    signin_key_for_oauth2,
    signins_end_notify,
)
from apps.core.events import run_on_commit

user_roles_reduced = Signal()
user_deactivated = Signal()


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
    user_ids = [instance.pk] if not reverse else list(kwargs.get("pk_set") or ())
    for user_id in user_ids:
        user_roles_changed_notify(user_id=user_id)
        if action != "post_add":
            _stop_streams_unless_allowed(user_id)


def _stop_streams_unless_allowed(user_id: int) -> None:
    # After commit: ``groups.set()`` clears and adds in one transaction; judge the end state.
    run_on_commit(
        lambda: user_roles_reduced.send(sender=User, user_id=user_id),
        what="stop the streams of a user who may no longer stream",
    )


@receiver(pre_save, sender=User)
def _remember_active(sender: Any, instance: User, **kwargs: Any) -> None:
    if instance.pk is None:
        instance._was_active = instance.is_active  # type: ignore[attr-defined]
        return
    old = User.objects.filter(pk=instance.pk).values_list("is_active", flat=True).first()
    instance._was_active = old  # type: ignore[attr-defined]


@receiver(post_save, sender=User)
def _deactivated(sender: Any, instance: User, **kwargs: Any) -> None:
    # The admin's "active" box, a service, anything that saves the user: a disabled account's
    # open sockets close with 4401 (its tokens are refused from now on anyway).
    if getattr(instance, "_was_active", None) and not instance.is_active:
        sockets_revoke_notify(user_id=instance.pk, jtis=None, reason="user_inactive")
        user_id = instance.pk
        run_on_commit(
            lambda: user_deactivated.send(sender=User, user_id=user_id),
            what="stop a disabled user's streams",
        )


@receiver(post_save, sender=User)
def _password_changed(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    # ``set_password`` keeps the new raw password in ``_password`` until ``save`` has sent
    # this signal; a hasher upgrade at sign-in clears it first (Django: "hash upgrades
    # shouldn't be considered password changes"). So this is a real change: the allauth
    # change and reset pages, the admin's password form, ``changepassword``, a service.
    # Every earlier sign-in ends: its tokens, its sockets, its streams.
    if created or getattr(instance, "_password", None) is None:
        return
    user_id = instance.pk
    run_on_commit(
        lambda: user_signins_revoke(user_id=user_id, reason="password_changed"),
        what="end the sign-ins of a user whose password changed",
    )


@receiver(pre_delete, sender=get_access_token_model())
def _oauth_token_signin(sender: Any, instance: Any, **kwargs: Any) -> None:
    # Read before the delete: deleting the token unlinks its refresh token.
    instance._signin_key = signin_key_for_oauth2(instance)


@receiver(post_delete, sender=get_access_token_model())
def _oauth_token_revoked(sender: Any, instance: Any, **kwargs: Any) -> None:
    # django-oauth-toolkit deletes an access token when it is revoked (/o/revoke_token/, a
    # replayed refresh token, the admin): the sockets that signed in with it close.
    user_id = instance.user_id or (
        instance.application.user_id if instance.application_id else None
    )
    if user_id:
        sockets_revoke_notify(
            user_id=user_id, jtis=[oauth2_socket_key(instance.pk)], reason="token_revoked"
        )
    key = getattr(instance, "_signin_key", "")
    if key:
        # A refresh deletes the token it spends and creates the next in one transaction:
        # the sign-in ends only if no live token of it is left once that commits.
        run_on_commit(
            lambda: (
                None
                if oauth2_signin_is_live(key)
                else signins_end_notify(keys=[key], reason="token_revoked")
            ),
            what="end an OAuth2 sign-in",
        )
