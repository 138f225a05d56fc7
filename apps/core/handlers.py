"""One DRF exception handler: every API error has the shape
``{"error": {"code": str, "message": str, "detail": any}}``."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions as drf
from rest_framework.response import Response

from apps.core.errors import PlatformError

logger = logging.getLogger(__name__)

# DRF's own exceptions mapped onto platform codes where the default code is too vague.
_DRF_CODES: dict[type[drf.APIException], str] = {
    drf.ParseError: "malformed_request",
    drf.NotAuthenticated: "not_authenticated",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
    drf.ValidationError: "invalid_input",
}


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, PlatformError):
        return Response(
            error_body(exc.code, exc.message, exc.detail),
            status=exc.status_code,
            headers=exc.headers,
        )
    if isinstance(exc, RequestDataTooBig):
        # Raised by request.data past DATA_UPLOAD_MAX_MEMORY_SIZE; Django would answer HTML.
        return Response(
            error_body("payload_too_large", "The request body is too large."), status=413
        )
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, OperationalError | InterfaceError) or type(exc) is DatabaseError:
        # The database is down or restarting: a retryable 503, not a 500.
        logger.warning("database unavailable: %s", exc)
        return _unavailable("database_unavailable", "The database is temporarily unavailable.")
    elif isinstance(exc, RedisConnectionError | RedisTimeoutError):
        # Redis (cache, lockout counters, denylist, channel layer) is down or restarting.
        logger.warning("cache unavailable: %s", exc)
        return _unavailable("cache_unavailable", "The cache is temporarily unavailable.")
    if not isinstance(exc, drf.APIException):
        return None  # a bug: let Django log it and answer 500 through handler500

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if isinstance(exc, drf.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(max(1, int(exc.wait)))

    code = _code_for(exc)
    if isinstance(exc, drf.ValidationError):
        message, detail = "The request data is invalid.", exc.detail
    elif isinstance(exc, drf.ParseError):
        message, detail = "The request body could not be parsed.", str(exc.detail)
    else:
        message, detail = str(exc.detail), None
    return Response(error_body(code, message, detail), status=exc.status_code, headers=headers)


def _unavailable(code: str, message: str) -> Response:
    return Response(error_body(code, message), status=503, headers={"Retry-After": "5"})


def _code_for(exc: drf.APIException) -> str:
    codes = exc.get_codes()
    # A specific code raised by our authentication classes wins (token_expired, ...).
    if isinstance(codes, str) and codes not in ("error", "invalid", exc.default_code):
        return codes
    for klass in type(exc).__mro__:
        if klass in _DRF_CODES:
            return _DRF_CODES[klass]
    return exc.default_code if isinstance(exc.default_code, str) else "error"
