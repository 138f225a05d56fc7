"""The quality ladder: the rungs a stream can be sent at, their sizes and default bitrates."""

from __future__ import annotations

from typing import Any, Final

from workers.protocol.fields import ProtocolError

# Resolution per eye; the stream is both eyes side by side.
RUNGS: Final[dict[str, tuple[int, int]]] = {
    "4K": (3840, 2160),
    "2K": (2560, 1440),
    "1080p": (1920, 1080),
    "720p": (1280, 720),
}
# Highest first; quality controllers walk this list.
RUNG_ORDER: Final[tuple[str, ...]] = ("4K", "2K", "1080p", "720p")
# Default bitrate (bits/s) per rung for the stereo stream at 90 fps. Sized for x264
# ultrafast/zerolatency, which spends more bits than slower presets for the same quality.
DEFAULT_BITRATES: Final[dict[str, int]] = {
    "4K": 80_000_000,
    "2K": 40_000_000,
    "1080p": 25_000_000,
    "720p": 12_000_000,
}
CODECS: Final[tuple[str, ...]] = ("h264",)


def stereo_size(rung: str) -> tuple[int, int]:
    """Frame size (width, height) of the side-by-side stereo picture for a rung."""
    w, h = RUNGS[rung]
    return 2 * w, h


def scaled_bitrate(rung: str, fps: float) -> int:
    """Default bitrate for ``rung`` scaled linearly from the 90 fps reference."""
    return int(DEFAULT_BITRATES[rung] * max(fps, 1.0) / 90.0)


def rung(value: Any, name: str, *, optional: bool) -> str | None:
    """Validate a rung name from a message (None passes where ``optional``)."""
    if value is None and optional:
        return None
    if value not in RUNGS:
        raise ProtocolError("bad_value", f"{name} must be one of {', '.join(RUNG_ORDER)}")
    return str(value)
