"""Writes for accounts: sign-in, token rotation, logout, users and roles."""

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.lockout import (
    login_failure_record,
    login_failures_clear,
    login_lockout_check,
)
from apps.accounts.models import RefreshToken, User
from apps.accounts.roles import ROLES, STAFF_ROLES, role_grants
from apps.accounts.selectors import user_roles
from apps.accounts.signins import jwt_signin_key, signins_end_notify
from apps.accounts.tokens import access_token_deny, access_token_encode
from apps.core.errors import AuthenticationFailed, InvalidInput
from apps.core.events import send_event_on_commit


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int
    user: User


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def user_group_name(user_id: int) -> str:
    """Channel-layer group of every socket of one user (for ``athena:wisdom_updated``)."""
    return f"user.{user_id}"


def auth_login(*, username: str, password: str, client_ip: str) -> TokenPair:
    login_lockout_check(username=username, client_ip=client_ip)
    user = authenticate(username=username, password=password)
    if user is None:
        login_failure_record(username=username, client_ip=client_ip)
        raise AuthenticationFailed("Wrong username or password.", code="invalid_credentials")
    login_failures_clear(username=username, client_ip=client_ip)
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    return token_pair_issue(user=user)


def token_pair_issue(*, user: User, family: uuid.UUID | None = None) -> TokenPair:
    access, claims = access_token_encode(user_id=user.pk, roles=user_roles(user))
    refresh = secrets.token_urlsafe(48)
    RefreshToken.objects.create(
        user=user,
        family=family or uuid.uuid4(),
        token_hash=_hash(refresh),
        access_jti=claims.jti,
        access_expires_at=claims.expires_at,
        expires_at=timezone.now() + settings.JWT_REFRESH_TTL,
    )
    return TokenPair(access, refresh, int(settings.JWT_ACCESS_TTL.total_seconds()), user)


def token_refresh(*, refresh: str) -> TokenPair:
    """Spend ``refresh`` and issue the next pair of its family.

    A refresh token presented twice is a replay: the family is revoked (committed before the
    error is raised) and the caller must sign in again.
    """
    reused_family: uuid.UUID | None = None
    with transaction.atomic():
        token = (
            RefreshToken.objects.select_for_update()
            .select_related("user")
            .filter(token_hash=_hash(refresh))
            .first()
        )
        if token is None:
            raise AuthenticationFailed("The refresh token is invalid.", code="token_invalid")
        if token.revoked_at is not None:
            raise AuthenticationFailed("The refresh token was revoked.", code="token_revoked")
        if token.used_at is not None:
            reused_family = token.family
        elif token.expires_at <= timezone.now():
            raise AuthenticationFailed("The refresh token has expired.", code="token_expired")
        elif not token.user.is_active:
            raise AuthenticationFailed("This account is disabled.", code="user_inactive")
        else:
            token.used_at = timezone.now()
            token.save(update_fields=["used_at"])
            return token_pair_issue(user=token.user, family=token.family)
    token_family_revoke(family=reused_family, reason="refresh_token_reused")
    raise AuthenticationFailed(
        "This refresh token was already used; all sessions of this sign-in were revoked.",
        code="refresh_token_reused",
    )


def token_family_revoke(*, family: uuid.UUID, reason: str = "token_revoked") -> int:
    """Revoke every refresh token of a family, deny its live access tokens, close the
    sockets that signed in with one of them (4401) and end the sign-in (``signin_ended``:
    the streams it started stop)."""
    now = timezone.now()
    with transaction.atomic():
        tokens = list(
            RefreshToken.objects.select_for_update().filter(family=family, revoked_at__isnull=True)
        )
        RefreshToken.objects.filter(pk__in=[t.pk for t in tokens]).update(revoked_at=now)
    live = RefreshToken.objects.filter(family=family, access_expires_at__gt=now)
    by_user: dict[int, list[str]] = {}
    for user_id, jti, expires_at in live.values_list("user_id", "access_jti", "access_expires_at"):
        access_token_deny(jti=jti, expires_at=expires_at)
        by_user.setdefault(user_id, []).append(jti)
    for user_id, jtis in by_user.items():
        sockets_revoke_notify(user_id=user_id, jtis=jtis, reason=reason)
    signins_end_notify(keys=[jwt_signin_key(family)], reason=reason)
    return len(tokens)


def user_signins_revoke(*, user_id: int, reason: str) -> int:
    """End every sign-in of a user (a password change or reset): each platform token family
    as ``token_family_revoke`` does, and every OAuth2 token (django-oauth-toolkit revokes a
    refresh token with its access token; deleting an access token closes its sockets and ends
    its sign-in, ``signals.py``). Returns how many sign-ins ended."""
    from oauth2_provider.models import get_access_token_model, get_refresh_token_model

    families = set(
        RefreshToken.objects.filter(user_id=user_id, revoked_at__isnull=True).values_list(
            "family", flat=True
        )
    )
    for family in families:
        token_family_revoke(family=family, reason=reason)
    refresh_tokens = list(
        get_refresh_token_model().objects.filter(user_id=user_id, revoked__isnull=True)
    )
    for refresh_token in refresh_tokens:
        refresh_token.revoke()
    access_tokens = list(get_access_token_model().objects.filter(user_id=user_id))
    for access_token in access_tokens:
        access_token.revoke()
    return len(families) + len(refresh_tokens) + len(access_tokens)


def auth_logout(
    *, user: User, refresh: str, access_jti: str | None, access_expires_at: datetime | None
) -> None:
    """Sign out of one sign-in: its whole token family (every access token it issued, so a
    socket opened before a refresh closes too), and the presented access token."""
    token = RefreshToken.objects.filter(token_hash=_hash(refresh), user=user).first()
    if token is None:
        raise InvalidInput("Unknown refresh token for this user.", code="token_invalid")
    if access_jti and access_expires_at:
        access_token_deny(jti=access_jti, expires_at=access_expires_at)
        sockets_revoke_notify(user_id=user.pk, jtis=[access_jti], reason="signed_out")
    token_family_revoke(family=token.family, reason="signed_out")


def sockets_revoke_notify(*, user_id: int, jtis: list[str] | None, reason: str) -> None:
    """After commit, close this user's sockets authenticated with one of ``jtis`` (every one
    of their sockets for ``None``) with 4401. Withdrawn roles take the ``wisdom_updated``
    path instead: each socket re-checks whether it may stay."""
    send_event_on_commit(
        user_group_name(user_id), {"type": "athena.revoked", "jtis": jtis, "reason": reason}
    )


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str | None,
    email: str = "",
    roles: Iterable[str] = ("participant",),
    display_name: str = "",
    validate: bool = True,
) -> User:
    """A new account. Its password must pass ``AUTH_PASSWORD_VALIDATORS`` (the same rules as
    sign-up and password change); only the development demo accounts pass ``validate=False``."""
    user = User(username=username, email=email, display_name=display_name)
    if password:
        if validate:
            password_check(password=password, user=user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    user_set_roles(user=user, roles=roles)
    return user


def password_check(*, password: str, user: User | None = None) -> None:
    """Raise ``InvalidInput`` (``weak_password``, the validators' messages as detail)."""
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(
            "The password is too weak.", code="weak_password", detail={"password": exc.messages}
        ) from exc


@transaction.atomic
def user_set_roles(*, user: User, roles: Iterable[str]) -> User:
    wanted = set(roles)
    unknown = wanted - set(ROLES)
    if unknown:
        raise InvalidInput(f"Unknown roles: {', '.join(sorted(unknown))}.", code="unknown_role")
    groups = list(Group.objects.filter(name__in=wanted))
    if len(groups) != len(wanted):
        raise InvalidInput("Roles are not set up; run migrations.", code="roles_missing")
    user.groups.set(groups)  # m2m_changed notifies the user's sockets (signals.py)
    is_staff = bool(wanted & STAFF_ROLES)
    is_superuser = "admin" in wanted
    if (user.is_staff, user.is_superuser) != (is_staff, is_superuser):
        user.is_staff, user.is_superuser = is_staff, is_superuser
        user.save(update_fields=["is_staff", "is_superuser"])
    return user


def roles_sync() -> None:
    """Create the role groups and attach every existing permission their patterns grant."""
    permissions = list(Permission.objects.select_related("content_type"))
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        granted = [
            p for p in permissions if role_grants(role, f"{p.content_type.app_label}.{p.codename}")
        ]
        group.permissions.set(granted)


def user_roles_changed_notify(*, user_id: int) -> None:
    """After commit, tell the user's open sockets that their roles changed (the wire event keeps
    its name, ``wisdom.updated``)."""

    def message() -> dict[str, Any]:
        user = User.objects.filter(pk=user_id).first()
        roles = user_roles(user) if user else []
        return {"type": "wisdom.updated", "reason": "roles_changed", "roles": roles}

    send_event_on_commit(user_group_name(user_id), message)
