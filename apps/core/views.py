from django.http import HttpRequest, HttpResponse, JsonResponse
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
