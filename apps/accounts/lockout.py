"""Login lockout per (username, client IP), counted in the cache (Redis in production).

After ``LOGIN_LOCKOUT_THRESHOLD`` failures inside ``LOGIN_LOCKOUT_WINDOW_SECONDS`` every attempt
for that pair, right or wrong, gets 429 until the window that began with the first failure
ends. Keying on the pair stops password guessing without letting anyone lock a victim out from
everywhere; the DRF throttles cap the overall rate per IP.
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache

from apps.core.errors import RateLimited


def _keys(username: str, client_ip: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"{username.strip().lower()}|{client_ip}".encode()).hexdigest()[:32]
    return f"athena:login-fail:{digest}", f"athena:login-start:{digest}"


def login_lockout_check(*, username: str, client_ip: str) -> None:
    count_key, start_key = _keys(username, client_ip)
    values = cache.get_many([count_key, start_key])
    if int(values.get(count_key, 0)) < settings.LOGIN_LOCKOUT_THRESHOLD:
        return
    window = settings.LOGIN_LOCKOUT_WINDOW_SECONDS
    started = float(values.get(start_key, time.time()))
    raise RateLimited(
        "Too many failed sign-in attempts. Try again later.",
        code="login_locked",
        retry_after=int(started + window - time.time()) + 1,
    )


def login_failure_record(*, username: str, client_ip: str) -> None:
    count_key, start_key = _keys(username, client_ip)
    window = settings.LOGIN_LOCKOUT_WINDOW_SECONDS
    cache.add(start_key, time.time(), timeout=window)
    if cache.add(count_key, 1, timeout=window):
        return
    try:
        cache.incr(count_key)
    except ValueError:  # expired between add and incr: start a new window
        cache.set(count_key, 1, timeout=window)


def login_failures_clear(*, username: str, client_ip: str) -> None:
    cache.delete_many(list(_keys(username, client_ip)))
