"""Login lockout, counted in the cache (Redis in production), per account and client.

Two counters, each over ``LOGIN_LOCKOUT_WINDOW_SECONDS`` from its first failure:

- per (account, client address): ``LOGIN_LOCKOUT_THRESHOLD`` failures lock that pair. The
  account is the user the login string names (username or e-mail, either case), so
  ``player``, ``PLAYER`` and ``player@corp.test`` share one count; a string that names no
  account (or several) is counted as itself. Keying on the pair stops password guessing
  without letting anyone lock a victim out from everywhere.
- per client address: ``LOGIN_LOCKOUT_CLIENT_THRESHOLD`` failures, whatever the account, lock
  that address (password spraying across many accounts). A success does not reset it.

While locked every attempt, right or wrong, gets 429 until the window ends. The DRF throttles
cap the overall rate per address besides.
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q

from apps.accounts.models import User
from apps.core.errors import RateLimited


def _account(login: str) -> str:
    """``user:<id>`` when the login string names exactly one account, else the string."""
    login = login.strip()
    if login and len(login) <= 254:
        match = Q(username__iexact=login)
        if "@" in login:
            match |= Q(email__iexact=login)
        ids = list(User.objects.filter(match).values_list("pk", flat=True)[:2])
        if len(ids) == 1:
            return f"user:{ids[0]}"
    return f"login:{login.lower()}"


def _keys(subject: str) -> tuple[str, str]:
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"athena:login-fail:{digest}", f"athena:login-start:{digest}"


def _pair(username: str, client_ip: str) -> tuple[str, str]:
    return _keys(f"{_account(username)}|{client_ip}")


def _client(client_ip: str) -> tuple[str, str]:
    return _keys(f"client|{client_ip}")


def _locked_for(keys: tuple[str, str], threshold: int) -> int | None:
    """Seconds left if this counter is at its threshold, else None."""
    count_key, start_key = keys
    values = cache.get_many([count_key, start_key])
    if int(values.get(count_key, 0)) < threshold:
        return None
    started = float(values.get(start_key, time.time()))
    return int(started + settings.LOGIN_LOCKOUT_WINDOW_SECONDS - time.time()) + 1


def login_lockout_check(*, username: str, client_ip: str) -> None:
    waits = [
        wait
        for wait in (
            _locked_for(_pair(username, client_ip), settings.LOGIN_LOCKOUT_THRESHOLD),
            _locked_for(_client(client_ip), settings.LOGIN_LOCKOUT_CLIENT_THRESHOLD),
        )
        if wait is not None
    ]
    if waits:
        raise RateLimited(
            "Too many failed sign-in attempts. Try again later.",
            code="login_locked",
            retry_after=max(waits),
        )


def _count(keys: tuple[str, str]) -> None:
    count_key, start_key = keys
    window = settings.LOGIN_LOCKOUT_WINDOW_SECONDS
    cache.add(start_key, time.time(), timeout=window)
    if cache.add(count_key, 1, timeout=window):
        return
    try:
        cache.incr(count_key)
    except ValueError:  # expired between add and incr: start a new window
        cache.set(count_key, 1, timeout=window)


def login_failure_record(*, username: str, client_ip: str) -> None:
    _count(_pair(username, client_ip))
    _count(_client(client_ip))


def login_failures_clear(*, username: str, client_ip: str) -> None:
    # The client's own count stays: signing in to one's own account between guesses at
    # others must not reset it.
    cache.delete_many(list(_pair(username, client_ip)))
