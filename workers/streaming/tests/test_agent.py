"""The worker agent's pure helpers (the process itself runs in the end-to-end test)."""

import pytest

from workers.protocol import RUNGS, Percentiles, StreamReport, frame_stages, parse_worker_message
from workers.streaming.agent import parse_rung_sizes, ws_url


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


def test_prometheus_metrics_follow_stats_and_forget_closed_streams() -> None:
    from prometheus_client import generate_latest

    from workers.streaming.agent import StreamMetrics

    metrics = StreamMetrics()
    report = StreamReport(
        t=1.0,
        fps=88.0,
        bitrate_bps=10_000_000,
        rung="720p",
        stage_ms={"render": Percentiles(4.5), "encode": Percentiles(3.0)},
        latency_ms=Percentiles(20.0, 25.0, 30.0),
    )
    metrics.update("s1", report, RUNGS)
    text = generate_latest(metrics.registry).decode()
    assert 'morpheus_stream_fps{stream_id="s1"} 88.0' in text
    assert 'morpheus_stream_rung_height{stream_id="s1"} 720.0' in text
    assert 'morpheus_stream_stage_ms{stage="render",stream_id="s1"} 4.5' in text
    assert 'morpheus_stream_latency_ms{quantile="p99",stream_id="s1"} 30.0' in text
    metrics.forget("s1")
    assert 'stream_id="s1"' not in generate_latest(metrics.registry).decode()
