from django.urls import URLPattern, URLResolver, path

from apps.streaming.consumers import WorkerConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/morpheus/worker/", WorkerConsumer.as_asgi()),
]
