"""Field validators every message parser is built from, and the one error they raise.

Each takes an untrusted, JSON-decoded value and the field's name (for the message), and
returns the typed value or raises :class:`ProtocolError` with a stable ``code``. Messages
beyond a limit are rejected instead of trimmed: a client that sends them is buggy or hostile,
and silently accepting half a message hides the bug.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Final

MAX_ID_LEN: Final = 128
QUAT_NORM_TOLERANCE: Final = 0.1  # |q| must be within 10% of 1; we renormalise afterwards


class ProtocolError(ValueError):
    """A message failed validation. ``code`` is stable and safe to send back to the peer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def decode(raw: str | bytes | dict[str, Any], limit: int) -> dict[str, Any]:
    """The JSON object of a message (a dict passes through), at most ``limit`` bytes."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, (str, bytes)):
        raise ProtocolError("bad_type", "message must be a JSON object")
    if len(raw) > limit:
        raise ProtocolError("too_large", f"message larger than {limit} bytes")
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError("bad_json", "message is not valid JSON") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("bad_type", "message must be a JSON object")
    return obj


def number(value: Any, name: str, *, lo: float = -math.inf, hi: float = math.inf) -> float:
    """A finite number in ``[lo, hi]``."""
    # bool is an int subclass; a pose with `true` in it is a bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError("bad_type", f"{name} must be a number")
    try:
        result = float(value)
    except OverflowError as exc:  # an int past 1.8e308 (JSON has no size limit on them)
        raise ProtocolError("bad_value", f"{name} must be finite") from exc
    if not math.isfinite(result):
        raise ProtocolError("bad_value", f"{name} must be finite")
    if not lo <= result <= hi:
        raise ProtocolError("out_of_range", f"{name} out of range [{lo}, {hi}]")
    return result


def optional_number(
    obj: Mapping[str, Any], key: str, *, lo: float = 0.0, hi: float = 1e12
) -> float | None:
    """``obj[key]`` as a :func:`number`, or None where it is missing or null."""
    value = obj.get(key)
    return None if value is None else number(value, key, lo=lo, hi=hi)


def integer(value: Any, name: str, *, lo: int = 0, hi: int = 2**53) -> int:
    """An integer (not a bool, not a float) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("bad_type", f"{name} must be an integer")
    if not lo <= value <= hi:
        raise ProtocolError("out_of_range", f"{name} out of range [{lo}, {hi}]")
    return value


def text(value: Any, name: str, *, max_len: int = MAX_ID_LEN, allow_empty: bool = False) -> str:
    """A string of 1..``max_len`` characters (0.. with ``allow_empty``)."""
    if not isinstance(value, str):
        raise ProtocolError("bad_type", f"{name} must be a string")
    if len(value) > max_len or (not value and not allow_empty):
        raise ProtocolError("bad_value", f"{name} must be 1..{max_len} characters")
    return value


def choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise ProtocolError("bad_value", f"{name} must be one of {choices}")
    return str(value)


def vector(value: Any, name: str, n: int, *, bound: float = math.inf) -> tuple[float, ...]:
    """A list of ``n`` numbers, each within ``±bound``."""
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ProtocolError("bad_type", f"{name} must be a list of {n} numbers")
    return tuple(number(v, f"{name}[{i}]", lo=-bound, hi=bound) for i, v in enumerate(value))


def unit_quaternion(value: Any, name: str) -> tuple[float, float, float, float]:
    """An (x, y, z, w) quaternion within :data:`QUAT_NORM_TOLERANCE` of unit length,
    returned normalised."""
    x, y, z, w = vector(value, name, 4, bound=2.0)
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
        raise ProtocolError("bad_value", f"{name} is not a unit quaternion (|q|={norm:.3f})")
    return (x / norm, y / norm, z / norm, w / norm)


def mapping(value: Any, name: str) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise ProtocolError("bad_type", f"{name} must be an object")
    return value
