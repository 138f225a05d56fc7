"""Role-based permission checks for views and consumers.

A caller may use a permission when their roles grant it and, for OAuth2 tokens, when the
token's scopes cover it (``roles.scopes_allow``).
"""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.accounts.authentication import TokenIdentity
from apps.accounts.roles import scopes_allow


def caller_has_perm(user: Any, identity: Any, permission: str) -> bool:
    if user is None or not user.is_authenticated or not user.has_perm(permission):
        return False
    if isinstance(identity, TokenIdentity) and identity.scopes is not None:
        return scopes_allow(identity.scopes, permission)
    return True


def HasPermission(*permissions: str) -> type[BasePermission]:
    """A DRF permission class requiring every one of ``permissions``."""

    class _HasPermission(BasePermission):
        message = "Your roles do not allow this."

        def has_permission(self, request: Request, view: Any) -> bool:
            return all(caller_has_perm(request.user, request.auth, p) for p in permissions)

    _HasPermission.__name__ = f"HasPermission({', '.join(permissions)})"
    return _HasPermission
