"""The platform's one error family.

Services raise these; the DRF exception handler and the WebSocket consumers turn them into
``{"error": {"code", "message", "detail"}}`` with the same codes everywhere.
"""

from typing import Any


class PlatformError(Exception):
    status_code = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        detail: Any = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.detail = detail
        self.headers = headers or {}
        if status_code is not None:
            self.status_code = status_code
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}


class InvalidInput(PlatformError):
    status_code = 400
    code = "invalid_input"
    message = "The request data is invalid."


class AuthenticationFailed(PlatformError):
    status_code = 401
    code = "authentication_failed"
    message = "Authentication failed."


class PermissionDenied(PlatformError):
    status_code = 403
    code = "permission_denied"
    message = "You do not have permission to do this."


class NotFound(PlatformError):
    status_code = 404
    code = "not_found"
    message = "Not found."


class Conflict(PlatformError):
    status_code = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class PayloadTooLarge(PlatformError):
    status_code = 413
    code = "payload_too_large"
    message = "The request body is too large."


class RateLimited(PlatformError):
    status_code = 429
    code = "rate_limited"
    message = "Too many requests."

    def __init__(self, message: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        self.retry_after = max(1, int(retry_after))
        headers = {"Retry-After": str(self.retry_after)}
        super().__init__(message, headers=headers, **kwargs)


class ServiceUnavailable(PlatformError):
    status_code = 503
    code = "service_unavailable"
    message = "The service is temporarily unavailable."
