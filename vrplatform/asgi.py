"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSocket consumers authenticate themselves (token in the subprotocol or a first message),
so the router only validates the Origin header here.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vrplatform.settings.base")
django_asgi_app = get_asgi_application()  # must run before importing consumers

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.core.origin import OriginValidator  # noqa: E402
from vrplatform.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
