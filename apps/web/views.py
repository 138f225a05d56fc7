"""The client's pages and its one API endpoint.

The pages are static shells: the platform JWT lives in the browser (sessionStorage) and every
call the page makes carries it, so nothing here needs a server-side login. That keeps the
pages cacheable and the same for a headset browser and a desktop one.
"""

import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

# Download size bounds of the pre-flight check: big enough to measure a few hundred Mbit/s
# in a fraction of a second, small enough that a page cannot turn us into a traffic source.
NETCHECK_MAX_BYTES = 4 * 1024 * 1024
NETCHECK_DEFAULT_BYTES = 256 * 1024


def _page(request: HttpRequest, template: str, **context: object) -> HttpResponse:
    # Read by the page's script from a JSON block (json_script escapes it safely).
    context["client_config"] = {
        "targetFps": settings.TARGET_FRAME_RATE,
        "defaultQuality": settings.DEFAULT_QUALITY,
        "sessionId": context.get("session_id"),
    }
    return render(request, template, context)


@ensure_csrf_cookie  # the page trades a sign-in page session for tokens (CSRF-checked)
def login_page(request: HttpRequest) -> HttpResponse:
    return _page(request, "web/login.html", page="login")


def lobby_page(request: HttpRequest) -> HttpResponse:
    return _page(request, "web/lobby.html", page="lobby")


def play_page(request: HttpRequest, session_id: str) -> HttpResponse:
    return _page(request, "web/play.html", page="play", session_id=str(session_id))


class NetcheckQuery(serializers.Serializer):
    bytes = serializers.IntegerField(
        min_value=0, max_value=NETCHECK_MAX_BYTES, default=NETCHECK_DEFAULT_BYTES
    )


class NetcheckView(APIView):
    """Random (incompressible) bytes of the asked size, never cached: the lobby times these
    downloads to estimate throughput to the platform before a stream starts."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "bytes", int, description=f"payload size, 0..{NETCHECK_MAX_BYTES}", required=False
            )
        ],
        responses={(200, "application/octet-stream"): bytes},
        summary="Pre-flight network check payload",
    )
    def get(self, request: Request) -> HttpResponse:
        query = NetcheckQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        size = query.validated_data["bytes"]
        response = HttpResponse(os.urandom(size), content_type="application/octet-stream")
        response["Cache-Control"] = "no-store"
        response["Content-Length"] = str(size)
        return response


netcheck = never_cache(NetcheckView.as_view())
