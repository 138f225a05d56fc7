"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSocket consumers authenticate themselves (token in the subprotocol or a first message),
so the router only validates the Origin header here.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vrplatform.settings.base")
django_asgi_app = get_asgi_application()  # must run before importing consumers

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.core.bodylimit import install_daphne_body_limit  # noqa: E402
from apps.core.origin import OriginValidator  # noqa: E402
from vrplatform.routing import websocket_urlpatterns  # noqa: E402


def _daphne_leaves_bodies_to_django() -> None:
    """Twisted's request parses multipart POST bodies into ``request.args`` before daphne sees
    them (daphne never reads those): a malformed body got a bare 400 without our error body
    (found by Schemathesis), and every scene upload was parsed twice in memory."""
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # not served by daphne
        return
    init = WebRequest.__init__

    def __init__(self: WebRequest, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    WebRequest.__init__ = __init__  # type: ignore[method-assign]


class _Deferred:
    """``pformat(obj)`` when a log line is actually written, not before."""

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __str__(self) -> str:
        from pprint import pformat

        return pformat(self.obj)


def _autobahn_formats_debug_lines_lazily() -> None:
    """autobahn builds the arguments of its debug log lines whether debug is on or not: a
    pretty-printed table of 50 options per connection and click colour codes per frame
    (``bench_load.py``'s profile: ~6 % of a daphne's loop under a connect ramp). Plain text
    and deferred formatting; with debug logging on the lines read the same, uncoloured."""
    try:
        import autobahn.util
        import autobahn.websocket.protocol
    except ImportError:  # not served by daphne
        return
    autobahn.util._HAS_CLICK = False  # type: ignore[attr-defined]
    protocol = autobahn.websocket.protocol
    protocol.pformat = _Deferred  # type: ignore[attr-defined,assignment]
    protocol.Timings.__str__ = lambda self: str(_Deferred(self._timings))  # type: ignore[method-assign]


def _request_threads_close_their_connections() -> None:
    """Under ASGI, Django runs each request's sync code on a thread of its own (asgiref's
    ThreadSensitiveContext), so with ``CONN_MAX_AGE`` > 0 every request opened a PostgreSQL
    connection that nothing closed when its thread ended: a reconnect storm's token refreshes
    exhausted ``max_connections`` ("too many clients", 503s; ``bench_load.py``). Django's
    docs say: no persistent connections under ASGI. Close the request's connections when it
    finishes; the session sockets' executor threads keep theirs (``CONN_MAX_AGE``)."""
    from django.core.handlers.asgi import ASGIHandler
    from django.core.signals import request_finished
    from django.db import connections

    def close(sender: object, **kwargs: object) -> None:
        if isinstance(sender, type) and issubclass(sender, ASGIHandler):
            connections.close_all()

    request_finished.connect(close, dispatch_uid="vrplatform.asgi.request_threads_close")


_daphne_leaves_bodies_to_django()
_request_threads_close_their_connections()
_autobahn_formats_debug_lines_lazily()
install_daphne_body_limit()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
