from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.cache import never_cache

from apps.core.handlers import error_body
from apps.core.selectors import dependency_status


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches nothing else, so a database outage never
    gets healthy pods killed."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = dependency_status()
    ready = all(value == "ok" for value in checks.values())
    failed = [name for name, value in checks.items() if value != "ok"]
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks, "failed": failed},
        status=200 if ready else 503,
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return JsonResponse(
        error_body("not_found", f"No route or object at {request.path}."), status=404
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)


# Paths whose clients read JSON: the REST API and the OAuth2 endpoints. Django answers some
# errors before any view runs (a disallowed Host, a body over DATA_UPLOAD_MAX_MEMORY_SIZE);
# these handlers give those the same envelope as every other API error.
API_PREFIXES = ("/api/", "/o/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_path(request.path):
        return defaults.bad_request(request, exception)  # type: ignore[arg-type]
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(
            error_body("payload_too_large", "The request body is too large."), status=413
        )
    if isinstance(exception, TooManyFieldsSent):
        return JsonResponse(error_body("too_many_fields", "Too many form fields."), status=400)
    if isinstance(exception, DisallowedHost):
        return JsonResponse(
            error_body("disallowed_host", "This host name is not served here."), status=400
        )
    return JsonResponse(error_body("bad_request", "The request is malformed."), status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_path(request.path):
        return defaults.permission_denied(request, exception)  # type: ignore[arg-type]
    return JsonResponse(error_body("permission_denied", "Forbidden."), status=403)
