"""The REST API's JSON parser: every body that is not JSON the server can hold is a 400
``bad_json``, the code the WebSocket gateway uses for the same mistake.

DRF's own parser lets ``RecursionError`` through (a body of a few thousand nested ``[``), so
unauthenticated endpoints answered 500.
"""

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except ParseError as exc:
            raise ParseError(str(exc.detail), code="bad_json") from exc
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply", code="bad_json") from exc
