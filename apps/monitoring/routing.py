from channels.auth import AuthMiddlewareStack
from django.urls import URLPattern, URLResolver, path

from apps.monitoring.consumers import DashboardConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    # Only this route uses cookie auth; every other socket authenticates with a bearer token.
    path("ws/delphi/dashboard/", AuthMiddlewareStack(DashboardConsumer.as_asgi())),
]
