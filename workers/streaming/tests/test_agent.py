"""The worker agent's pure helpers (the process itself runs in the end-to-end test)."""

import pytest

from workers.protocol import RUNGS, parse_worker_message
from workers.streaming.agent import frame_stages, parse_rung_sizes, ws_url


def test_rung_sizes_from_text() -> None:
    assert parse_rung_sizes("") == dict(RUNGS)
    assert parse_rung_sizes("320x180") == {rung: (320, 180) for rung in RUNGS}
    sizes = parse_rung_sizes("720p=640x360")
    assert sizes["720p"] == (640, 360)
    assert sizes["4K"] == RUNGS["4K"]
    for bad in ("12x7", "8K=640x360", "abc"):
        with pytest.raises(ValueError, match=r"size|rung|literal"):
            parse_rung_sizes(bad)


def test_ws_url() -> None:
    assert ws_url("http://h:8000") == "ws://h:8000/ws/morpheus/worker/"
    assert ws_url("https://vr.example/") == "wss://vr.example/ws/morpheus/worker/"


def test_frame_stages() -> None:
    t = {
        "pose_rx": 0.0,
        "render_start": 1.0,
        "render_end": 3.0,
        "convert_end": 4.0,
        "encode_end": 7.0,
        "send": 7.5,
    }
    # pose_rx 0 means "no pose yet": no queue stage.
    assert frame_stages(t) == {"render": 2.0, "convert": 1.0, "encode": 3.0, "send": 0.5}


def test_quality_request_carries_the_bitrate_ceiling() -> None:
    message = parse_worker_message(
        {"type": "quality", "stream_id": "s", "pinned_quality": "720p", "max_bitrate_kbps": 8000}
    )
    assert message.max_bitrate_kbps == 8000  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="max_bitrate_kbps"):
        parse_worker_message({"type": "quality", "stream_id": "s", "max_bitrate_kbps": 1})
