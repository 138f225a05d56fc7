"""The playout-delay header extension: declared in the offer, written when the answer accepts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription, rtp

from workers.protocol import RUNGS
from workers.streaming import playout
from workers.streaming.encoder import X264, EncoderChoice
from workers.streaming.frames import PatternSource
from workers.streaming.peer import StreamConfig, StreamPeer

SMALL = {rung: (320, 180) for rung in RUNGS}


def test_delay_bytes_are_two_12_bit_values_in_10_ms_units() -> None:
    assert playout.encode_delay(0, 0) == b"\x00\x00\x00"
    assert playout.encode_delay(100, 400) == bytes((0x00, 0xA0, 0x28))  # 10 and 40 units
    assert playout.encode_delay(10**9, -5) == bytes((0xFF, 0xF0, 0x00))  # clamped


def test_answer_acceptance_is_read_from_the_answer_text() -> None:
    answer = f"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\na=extmap:4 {playout.URI}\r\n"
    assert playout.accepted_id(answer) == 4
    assert playout.accepted_id("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\n") is None


async def _stream(accept: bool) -> list[list[tuple[int, bytes]]]:
    peer = StreamPeer(
        StreamConfig(stream_id="p", rung_sizes=SMALL, render_governor=False),
        PatternSource(),
        encoder_choice=EncoderChoice(X264, "test"),
    )
    offer = await peer.create_offer()
    assert f"a=extmap:{playout.EXTENSION_ID} {playout.URI}" in offer["sdp"]
    pc = RTCPeerConnection()
    got: asyncio.Queue[Any] = asyncio.Queue()
    pc.on("track", lambda track: got.put_nowait(track))
    await pc.setRemoteDescription(RTCSessionDescription(**offer))
    await pc.setLocalDescription(await pc.createAnswer())
    answer = pc.localDescription.sdp
    if accept:  # what a browser that supports it answers (aiortc's own receiver does not)
        answer = playout.offer_with_extension(answer)
    # Record the extensions of the video packets as they arrive, before aiortc parses them.
    seen: list[list[tuple[int, bytes]]] = []
    original = rtp.RtpPacket.parse

    def spy(data: bytes, extensions_map: Any = None) -> rtp.RtpPacket:
        packet = original(data, extensions_map)
        if packet.payload_type not in (0, 200):
            raw = data[12 + 4 * (data[0] & 0x0F) :]
            if data[0] & 0x10:  # extension bit
                profile = int.from_bytes(raw[0:2], "big")
                length = int.from_bytes(raw[2:4], "big") * 4
                seen.append(rtp.unpack_header_extensions(profile, raw[4 : 4 + length]))
        return packet

    rtp.RtpPacket.parse = staticmethod(spy)  # type: ignore[method-assign]
    try:
        await peer.set_answer({"type": "answer", "sdp": answer})
        track = await asyncio.wait_for(got.get(), 20)
        for _ in range(3):
            await asyncio.wait_for(track.recv(), 20)
    finally:
        rtp.RtpPacket.parse = staticmethod(original)  # type: ignore[method-assign]
        await pc.close()
        await peer.close()
    return seen


@pytest.mark.parametrize("accept", [True, False])
async def test_video_packets_carry_zero_playout_delay_only_when_accepted(accept: bool) -> None:
    seen = await _stream(accept)
    assert seen, "no video packets observed"
    with_delay = [ext for ext in seen if (playout.EXTENSION_ID, b"\x00\x00\x00") in ext]
    if accept:
        assert len(with_delay) == len(seen)
        assert all(any(i == 1 for i, _ in ext) for ext in seen)  # aiortc's own (mid) kept
    else:
        assert with_delay == []
