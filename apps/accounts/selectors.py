"""Reads for accounts."""

from typing import Any

from apps.accounts.models import User
from apps.accounts.roles import ROLES
from apps.core.errors import NotFound


def user_roles(user: User) -> list[str]:
    names = {g.name for g in user.groups.all()}
    return [r for r in ROLES if r in names]


def user_permissions(user: User) -> list[str]:
    return sorted(user.get_all_permissions())


def user_profile(user: User) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name or user.username,
        "roles": user_roles(user),
        "permissions": user_permissions(user),
        "is_staff": user.is_staff,
        "date_joined": user.date_joined,
    }


def users_list() -> list[dict[str, Any]]:
    users = User.objects.prefetch_related("groups").order_by("username")
    return [user_profile(u) for u in users]


def user_get(*, user_id: int) -> User:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound("No such user.")
    return user
