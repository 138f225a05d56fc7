from django.urls import URLPattern, URLResolver, path

from apps.sessions.consumers import SessionConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/hermes/sessions/<uuid:session_id>/", SessionConsumer.as_asgi()),
]
