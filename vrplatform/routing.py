"""WebSocket routes of every app, in one list for the ASGI router."""

from django.urls import URLPattern, URLResolver

from apps.monitoring.routing import websocket_urlpatterns as monitoring_routes
from apps.sessions.routing import websocket_urlpatterns as session_routes
from apps.streaming.routing import websocket_urlpatterns as streaming_routes

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    *session_routes,
    *streaming_routes,
    *monitoring_routes,
]
