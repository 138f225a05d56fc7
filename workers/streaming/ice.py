"""ICE for a stream's peer connection: the platform's ICE servers as aiortc wants them, and
the kind of candidate pair the media flows on (host, srflx, prflx or relay)."""

from __future__ import annotations

from typing import Any

from aiortc import RTCIceServer, RTCPeerConnection


def ice_servers(
    servers: list[dict[str, Any]], *, prefer_transport: str | None = None
) -> list[RTCIceServer]:
    """``RTCIceServer``s from the platform's ``{urls, username?, credential?}`` dicts.

    aiortc uses only the FIRST usable TURN URL (and the first STUN one), where a browser
    tries them all: ``prefer_transport`` ("udp" or "tcp") moves the TURN URLs of that
    transport first, for a client that knows UDP is blocked where it is (``turns:`` is TCP)."""

    def transport(url: str) -> str:
        if url.startswith("turns:"):
            return "tcp"
        return "tcp" if "transport=tcp" in url else "udp"

    out = []
    for s in servers:
        urls = s.get("urls", [])
        urls = [urls] if isinstance(urls, str) else [str(u) for u in urls]
        if prefer_transport:
            urls.sort(key=lambda u: u.startswith("turn") and transport(u) != prefer_transport)
        out.append(
            RTCIceServer(urls=urls, username=s.get("username"), credential=s.get("credential"))
        )
    return out


# Preference when the two ends of the selected pair differ: a pair is "relay" when either
# end is relayed (the media crosses a TURN server), and so on down to "host" (direct).
_PAIR_TYPES = ("relay", "srflx", "prflx", "host")


def selected_pair_type(pc: RTCPeerConnection) -> str:
    """host / srflx / prflx / relay of the candidate pair the media flows on ("" before ICE
    has selected one). aiortc has no candidate-pair stats: read the ICE connection's
    nominated pair (max-bundle: one transport carries everything)."""
    sctp = pc.sctp
    transport = sctp.transport.transport if sctp is not None else None
    if transport is None:
        for transceiver in pc.getTransceivers():
            if transceiver.sender.transport is not None:
                transport = transceiver.sender.transport.transport
                break
    connection = getattr(transport, "_connection", None)
    pair = getattr(connection, "_nominated", {}).get(1) if connection is not None else None
    if pair is None:
        return ""
    types = {pair.local_candidate.type, pair.remote_candidate.type}
    return next((t for t in _PAIR_TYPES if t in types), "")
