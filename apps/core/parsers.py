"""The REST API's JSON parser: every body that is not JSON the server can hold is a 400
``bad_json``, the code the WebSocket gateway uses for the same mistake.

DRF's own parser lets ``RecursionError`` through (a body of a few thousand nested ``[``), so
unauthenticated endpoints answered 500. Every API body is a JSON object: a list, string or
number at the top (``[1]``, ``"str"``) is refused here, once, instead of failing in each view
that reads ``request.data.get``. JSON may also spell strings no database, cache or UTF-8 encoder
can hold (a lone surrogate, ``"\\ud800"``); those are refused too, here and on the sockets
(:func:`unencodable`).
"""

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

NOT_AN_OBJECT = "The body must be a JSON object."
UNENCODABLE = "The JSON holds a string that is not valid Unicode (a lone surrogate)."


def unencodable(value: Any) -> bool:
    """True when a decoded JSON value holds a string (or key) UTF-8 cannot encode."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except ParseError as exc:
            raise ParseError(str(exc.detail), code="bad_json") from exc
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply", code="bad_json") from exc
        if not isinstance(data, dict):
            raise ParseError(NOT_AN_OBJECT, code="bad_json")
        if unencodable(data):
            raise ParseError(UNENCODABLE, code="bad_json")
        return data
