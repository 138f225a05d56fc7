import functools
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
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


def off_request_thread(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., Awaitable[HttpResponseBase]]:
    """``view`` as an async view that runs it on the event loop's executor, like the session
    socket's database helpers, instead of the one thread on which Django's ASGI handler runs
    every sync view of the process. For the token endpoints: a sign-in's password hash (about
    0.25 s of a core, GIL released) queued every other request of its process behind it, and a
    reconnect storm's token refreshes queued behind each other. Database connections are
    per executor thread, closed when stale before and after each call (Channels'
    ``database_sync_to_async``). The view's attributes (``cls`` for the OpenAPI schema,
    ``csrf_exempt``) are kept. Under WSGI (Django's test client) the view stays on the
    calling thread, with its connection and the test's transaction."""

    def render(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        rendering = getattr(response, "render", None)
        if callable(rendering):
            rendering()  # here, not back on the request thread
        return response

    pooled = database_sync_to_async(render, thread_sensitive=False)
    in_place = sync_to_async(render)  # back to the caller's thread: no connection handling

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        run = pooled if isinstance(request, ASGIRequest) else in_place
        return await run(request, *args, **kwargs)  # type: ignore[no-any-return]

    return wrapper
