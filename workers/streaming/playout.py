"""The playout-delay RTP header extension: ask the browser to show each frame at once.

Chrome holds received video in a jitter buffer sized for smooth playback of a call (tens of
milliseconds, more after any jitter). A VR stream wants the newest frame on screen now: the
``http://www.webrtc.org/experiments/rtp-hdrext/playout-delay`` extension with a minimum and
maximum delay of 0 switches Chrome's receiver to rendering frames as soon as they are decoded
(what cloud gaming uses). aiortc does not implement it, so this module adds it to ONE peer:

- the offer the worker sends carries an ``a=extmap`` line for it (the SDP text is extended
  after aiortc made it; aiortc itself never sees the extension);
- if the client's answer accepts it (the browser echoes the line), the sender writes the
  3-byte extension (two 12-bit delays in units of 10 ms) into every video packet.

Integration point, like ``encoder.install_encoder``: the sender's private header-extension map
(``_RTCRtpSender__rtp_header_extensions_map``) is replaced by :class:`PlayoutDelayMap` before
media starts; a future aiortc without that slot raises instead of silently sending nothing.
"""

from __future__ import annotations

import re

from aiortc import rtp
from aiortc.rtcrtpsender import RTCRtpSender

URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
EXTENSION_ID = 9  # aiortc uses 1 (mid) and 2 (abs-send-time) for video
_ATTRIBUTE = "_RTCRtpSender__rtp_header_extensions_map"


def encode_delay(min_ms: int, max_ms: int) -> bytes:
    """The extension's 3 bytes: 12-bit minimum, 12-bit maximum, each in units of 10 ms."""
    lo, hi = (max(0, min(4095, round(v / 10))) for v in (min_ms, max_ms))
    return bytes(((lo >> 4) & 0xFF, ((lo & 0xF) << 4) | ((hi >> 8) & 0xF), hi & 0xFF))


class PlayoutDelayMap(rtp.HeaderExtensionsMap):
    """aiortc's header-extension map plus playout-delay, once the answer has accepted it."""

    def __init__(self, *, min_ms: int = 0, max_ms: int = 0) -> None:
        super().__init__()
        self.extension_id: int | None = None  # set by :func:`accept_from_answer`
        self.value = encode_delay(min_ms, max_ms)

    def set(self, values: rtp.HeaderExtensions) -> tuple[int, bytes]:
        profile, data = super().set(values)
        if self.extension_id is None:
            return profile, data
        extensions = rtp.unpack_header_extensions(profile, data) if data else []
        extensions.append((self.extension_id, self.value))
        return rtp.pack_header_extensions(extensions)


def install(sender: RTCRtpSender, *, min_ms: int = 0, max_ms: int = 0) -> PlayoutDelayMap:
    """Give ``sender`` a map that can write playout-delay. Call before media starts."""
    if not hasattr(sender, _ATTRIBUTE):
        raise RuntimeError("aiortc RTCRtpSender has no header-extension map slot; update playout")
    mapping = PlayoutDelayMap(min_ms=min_ms, max_ms=max_ms)
    setattr(sender, _ATTRIBUTE, mapping)
    return mapping


def offer_with_extension(sdp: str) -> str:
    """The offer's SDP with the extension declared in each video section."""
    out: list[str] = []
    pending = False  # inside a video section that does not declare it yet
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            pending = line.startswith("m=video")
        out.append(line)
        # After aiortc's own extmap lines (or its rtcp-mux line when it has none).
        if pending and line.startswith(("a=extmap:2 ", "a=rtcp-mux")):
            out.append(f"a=extmap:{EXTENSION_ID} {URI}")
            pending = False
    return "\r\n".join(out)


def accepted_id(answer_sdp: str) -> int | None:
    """The id the answer gives the extension (None: the client does not support it)."""
    match = re.search(rf"^a=extmap:(\d+)(?:/\w+)? {re.escape(URI)}\s*$", answer_sdp, re.M)
    return int(match.group(1)) if match else None
