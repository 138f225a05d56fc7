"""Unit tests: protocol validation, pose prediction, quality controller."""

import json
import math
from typing import Any

import numpy as np
import pytest

from workers.protocol import (
    ProtocolError,
    QualityHint,
    Signal,
    StreamStart,
    parse_client_feedback,
    parse_frame_meta,
    parse_pose,
    parse_worker_message,
    scaled_bitrate,
)
from workers.streaming.prediction import PosePredictor
from workers.streaming.quality import QualityController, QualitySample


def _yaw_quat(yaw: float) -> tuple[float, float, float, float]:
    return (0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2))


def test_parse_pose_accepts_full_message_and_normalises_q() -> None:
    raw = {
        "p": [0, 1.6, 0],
        "q": [0, 0, 0, 1.05],
        "t": 12.5,
        "seq": 3,
        "hands": {"left": {"p": [0.2, 1, 0], "q": [0, 0, 0, 1]}, "right": None},
        "proj": [[1.0] * 16, [2.0] * 16],
    }
    pose = parse_pose(json.dumps(raw))
    assert pose.q == pytest.approx((0, 0, 0, 1))
    assert pose.hands["left"].p == (0.2, 1.0, 0.0)
    assert "right" not in pose.hands
    assert pose.proj is not None
    assert pose.proj[1][0] == 2.0


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ({"p": [0, 0], "q": [0, 0, 0, 1], "t": 0, "seq": 0}, "bad_type"),
        ({"p": [0, 0, True], "q": [0, 0, 0, 1], "t": 0, "seq": 0}, "bad_type"),
        ({"p": [0, 0, float("inf")], "q": [0, 0, 0, 1], "t": 0, "seq": 0}, "bad_value"),
        ({"p": [0, 0, 2e4], "q": [0, 0, 0, 1], "t": 0, "seq": 0}, "out_of_range"),
        ({"p": [0, 0, 0], "q": [0, 0, 0, 1], "t": 10**400, "seq": 0}, "bad_value"),
        ({"p": [0, 0, 0], "q": [0, 0, 0, 0.5], "t": 0, "seq": 0}, "bad_value"),
        ({"p": [0, 0, 0], "q": [0, 0, 0, 1], "t": 0, "seq": -1}, "out_of_range"),
        ({"p": [0, 0, 0], "q": [0, 0, 0, 1], "t": 0, "seq": 1, "proj": [[1] * 15]}, "bad_type"),
        ({"p": [0, 0, 0], "q": [0, 0, 0, 1], "t": 0, "seq": 1, "hands": {"x": None}}, "bad_value"),
    ],
)
def test_parse_pose_rejects(raw: dict, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_pose(raw)
    assert err.value.code == code


def test_worker_messages_round_trip_and_reject_unknown() -> None:
    start = parse_worker_message(
        {
            "type": "stream_start",
            "stream_id": "s",
            "session_id": "x",
            "scene_url": "/a.glb",
            "quality": "2K",
            "codec": "h264",
            "max_quality": "1080p",
        }
    )
    assert isinstance(start, StreamStart)
    assert start.max_quality == "1080p"
    assert start.voice_muted == []  # older platforms: nobody muted
    signal = parse_worker_message(
        {"type": "signal", "stream_id": "s", "sdp": {"type": "answer", "sdp": "v=0"}}
    )
    assert isinstance(signal, Signal)
    assert signal.sdp == {"type": "answer", "sdp": "v=0"}
    cases: list[tuple[Any, str]] = [
        ({"type": "nope"}, "unknown_type"),
        (
            {
                "type": "stream_start",
                "stream_id": "s",
                "session_id": "x",
                "scene_url": "u",
                "quality": "8K",
            },
            "bad_value",
        ),
        ({"type": "signal", "stream_id": "s"}, "bad_value"),
        ("x" * 300_000, "too_large"),
        *(
            (
                {
                    "type": "stream_start",
                    "stream_id": "s",
                    "session_id": "x",
                    "scene_url": "u",
                    "voice_muted": muted,
                },
                code,
            )
            for muted, code in (("4", "bad_type"), ([4], "bad_type"), (["4"] * 300, "bad_type"))
        ),
    ]
    for bad, code in cases:
        with pytest.raises(ProtocolError) as err:
            parse_worker_message(bad)
        assert err.value.code == code


def test_prediction_extrapolates_constant_angular_velocity() -> None:
    predictor = PosePredictor(latency_s=0.0)
    omega = 2.0  # rad/s about +Y
    for i in range(5):
        t_ms = i * 11.0
        predictor.add(
            parse_pose(
                {
                    "p": [0.1 * i / 90, 0, 0],
                    "q": list(_yaw_quat(omega * t_ms / 1000)),
                    "t": t_ms,
                    "seq": i,
                }
            ),
            rx=10.0 + t_ms / 1000,
        )
    _lin, ang = predictor.velocity()
    assert ang == pytest.approx([0, omega, 0], abs=1e-6)
    last_rx = 10.0 + 44.0 / 1000
    predicted = predictor.predict(last_rx + 0.05)
    assert predicted is not None
    assert np.allclose(predicted.q, _yaw_quat(omega * (0.044 + 0.05)), atol=1e-6) or np.allclose(
        predicted.q, [-c for c in _yaw_quat(omega * 0.094)], atol=1e-6
    )


def test_prediction_ignores_stale_and_duplicate_and_caps_horizon() -> None:
    predictor = PosePredictor(latency_s=0.0)
    assert predictor.predict(0.0) is None
    predictor.add(parse_pose({"p": [0, 0, 0], "q": [0, 0, 0, 1], "t": 0.0, "seq": 1}), rx=0.0)
    predictor.add(parse_pose({"p": [1, 0, 0], "q": [0, 0, 0, 1], "t": 10.0, "seq": 2}), rx=0.01)
    assert not predictor.add(
        parse_pose({"p": [9, 0, 0], "q": [0, 0, 0, 1], "t": 20.0, "seq": 2}), rx=0.02
    )
    assert not predictor.add(
        parse_pose({"p": [9, 0, 0], "q": [0, 0, 0, 1], "t": 5.0, "seq": 1}), rx=0.02
    )
    assert predictor.stale == 2
    # 100 m/s along x; ten seconds later the horizon is capped at 100 ms, not 10 s.
    predicted = predictor.predict(10.0)
    assert predicted is not None
    assert predicted.p[0] == pytest.approx(1 + 100 * 0.1)


def _clean(t: float, frame_ms: float = 2.0) -> QualitySample:
    return QualitySample(t=t, loss=0.0, rtt_ms=20.0, frame_ms=frame_ms)


def test_quality_steps_down_on_loss_fast_and_up_slowly() -> None:
    qc = QualityController(initial="2K", fps=90, up_after_s=5.0)
    change = qc.update(QualitySample(t=0.0, loss=0.05, rtt_ms=20.0))
    assert change is not None
    assert (change.old, change.new) == ("2K", "1080p")
    assert "loss" in change.reason
    assert change.bitrate == scaled_bitrate("1080p", 90)
    changes = [qc.update(_clean(float(t))) for t in range(1, 6)]
    assert changes == [None] * 5  # clean, but not long enough yet
    change = qc.update(_clean(6.5))
    assert change is not None
    assert change.new == "2K"


def test_quality_steps_down_on_rising_delay() -> None:
    qc = QualityController(initial="1080p")
    for t, rtt in enumerate([20.0, 20.0, 40.0, 70.0]):
        change = qc.update(QualitySample(t=float(t), rtt_ms=rtt))
    assert change is not None
    assert change.new == "720p"
    assert change.reason == "rising delay"


def test_quality_respects_cap_and_pin() -> None:
    qc = QualityController(initial="720p", max_rung="1080p", up_after_s=1.0)
    for t in range(10):
        qc.update(_clean(float(t)))
    assert qc.rung == "1080p"  # climbed to the cap, not beyond
    change = qc.set_limits(max_rung=None, pinned="4K")
    assert change is not None
    assert change.new == "4K"
    assert qc.update(QualitySample(t=20.0, loss=0.5)) is None
    assert qc.rung == "4K"  # pin wins over loss
    qc.set_limits(max_rung="720p", pinned=None)
    assert qc.rung == "720p"


def test_quality_skips_rungs_the_machine_cannot_sustain() -> None:
    qc = QualityController(initial="720p", fps=90, up_after_s=1.0)
    # 8 ms per frame at 720p: 1080p would need 18 ms, over the 9.4 ms budget at 90 fps.
    for t in range(10):
        assert qc.update(_clean(float(t), frame_ms=8.0)) is None
    assert not qc.sustainable("1080p")
    # Over budget at 2K: drop straight to the highest rung that fits, skipping 1080p.
    qc = QualityController(initial="2K", fps=90)
    qc.update(_clean(0.0, frame_ms=12.0))  # 2K: 12 ms -> 1080p ~6.75 ms would fit
    assert qc.rung == "1080p"
    qc = QualityController(initial="2K", fps=90)
    change = qc.update(_clean(0.0, frame_ms=20.0))  # 1080p ~11 ms no, 720p ~5 ms yes
    assert change is not None
    assert change.new == "720p"


def test_quality_never_climbs_before_the_machine_has_measured_a_frame() -> None:
    qc = QualityController(initial="720p", fps=60, up_after_s=1.0)
    for t in range(10):  # a clean link, but no frame has gone out yet (no client)
        assert qc.update(QualitySample(t=float(t), rtt_ms=5.0)) is None
    assert qc.rung == "720p"


def test_quality_sends_the_nominal_rate_on_a_clean_link_whatever_the_estimate() -> None:
    # A receiver's estimate starts low and trails what arrives: obeying it starves the stream.
    qc = QualityController(initial="1080p", fps=90)
    assert qc.bitrate == qc.nominal_bitrate("1080p")
    for t, estimate in enumerate((300_000, 450_000, 700_000)):  # REMB ramping from its start
        qc.update(QualitySample(t=float(t), available_bps=estimate, rtt_ms=5.0))
        assert qc.bitrate == qc.nominal_bitrate("1080p")
    assert qc.rung == "1080p"


def test_a_sharp_fall_of_the_estimate_steps_down_and_caps_at_what_got_through() -> None:
    qc = QualityController(initial="1080p", fps=90)
    qc.update(QualitySample(t=0.0, available_bps=20_000_000))
    change = qc.update(QualitySample(t=1.0, available_bps=5_000_000, sent_bps=6_000_000))
    assert change is not None
    assert change.new == "720p"
    assert change.reason == "bandwidth estimate"
    assert change.bitrate == int(5_000_000 * 0.85)


def test_after_loss_the_cap_is_probed_upward_back_to_nominal() -> None:
    qc = QualityController(initial="720p", fps=60, up_after_s=1000.0)
    nominal = qc.nominal_bitrate("720p")
    qc.update(QualitySample(t=0.0, loss=0.2, sent_bps=nominal / 4))
    assert qc.rate_cap == int(nominal / 4 * 0.85)
    assert qc.bitrate == qc.rate_cap
    rates = [qc.bitrate]
    t = 1.0
    while qc.rate_cap is not None and t < 30:
        qc.update(QualitySample(t=t, loss=0.0))
        rates.append(qc.bitrate)
        t += 1.0
    assert qc.bitrate == nominal
    assert rates == sorted(rates)  # only up: one probe step per clean sample
    assert t <= 10  # 1.25x a second: a quarter of nominal is back in about 7 s


def test_forecast_cap_steps_down_now_holds_then_releases() -> None:
    qc = QualityController(initial="2K", fps=90, up_after_s=1.0)
    change = qc.forecast_cap("1080p", now=0.0, hold_s=10.0)
    assert change is not None
    assert (change.old, change.new, change.reason) == ("2K", "1080p", "forecast")
    for t in range(1, 10):  # a clean network, but the forecast cap holds
        assert qc.update(_clean(float(t))) is None
    assert qc.rung == "1080p"
    change = qc.update(_clean(10.5))  # cap expired, network long clean: step back up
    assert change is not None
    assert change.new == "2K"


def test_forecast_cap_does_not_override_a_pin() -> None:
    qc = QualityController(initial="720p", pinned="2K")
    assert qc.forecast_cap("1080p", now=0.0, hold_s=5.0) is None
    assert qc.rung == "2K"


def test_quality_hint_message_round_trips_and_rejects_bad_values() -> None:
    hint = parse_worker_message(
        {"type": "quality_hint", "stream_id": "s1", "max_quality": "720p", "hold_s": 8}
    )
    assert isinstance(hint, QualityHint)
    assert (hint.max_quality, hint.hold_s) == ("720p", 8.0)
    for bad in ({"max_quality": "8K", "hold_s": 1}, {"max_quality": "720p", "hold_s": -1}):
        with pytest.raises(ProtocolError):
            parse_worker_message({"type": "quality_hint", "stream_id": "s1", **bad})


def test_quality_climbs_on_estimate_headroom_not_an_unreachable_nominal_rate() -> None:
    # A receiver estimate never exceeds ~1.5x what it receives, so from 720p it can never
    # show the 0.8 x 1080p nominal rate (2x 720p's): headroom over what we send must suffice.
    qc = QualityController(initial="720p", fps=90, up_after_s=1.0)
    sending = qc.bitrate
    assert 0.8 * qc.nominal_bitrate("1080p") > 1.5 * sending  # the old gate was unreachable
    changes = [
        qc.update(
            QualitySample(
                t=float(t),
                loss=0.0,
                rtt_ms=20.0,
                available_bps=int(1.4 * sending),
                frame_ms=2.0,
            )
        )
        for t in range(3)
    ]
    stepped = [c for c in changes if c is not None]
    assert [(c.old, c.new) for c in stepped] == [("720p", "1080p")]
    assert stepped[0].bitrate == qc.nominal_bitrate("1080p")  # no congestion: full rate


def test_quality_at_the_lowest_rung_recovers_after_a_bandwidth_dip() -> None:
    qc = QualityController(initial="720p", fps=30, up_after_s=2.0)
    low = int(0.2 * qc.nominal_bitrate("720p"))
    for t in range(5):  # the link was bad: estimate far below 720p's nominal rate
        assert qc.update(QualitySample(t=float(t), available_bps=low)) is None
    estimate, now = float(low), 5.0
    change = None
    while change is None and now < 60:  # the estimate recovers ~8%/s, as REMB does
        estimate *= 1.08
        change = qc.update(QualitySample(t=now, available_bps=int(estimate), frame_ms=2.0))
        now += 1.0
    assert change is not None
    assert change.new == "1080p"


def test_nominal_bitrate_follows_configured_rung_sizes() -> None:
    small = {"720p": (320, 180), "1080p": (480, 270), "2K": (640, 360), "4K": (960, 540)}
    qc = QualityController(initial="720p", fps=30, rung_sizes=small)
    assert qc.nominal_bitrate("720p") == scaled_bitrate("720p", 30) // 16
    assert qc.bitrate == max(qc.nominal_bitrate("720p"), qc.min_bitrate)


def test_quality_headroom_is_measured_against_what_is_actually_sent() -> None:
    # Easy content: the encoder sends a third of its target; the receiver's estimate (1.5x
    # what it receives) is below 1.3x the target but well above what is sent.
    qc = QualityController(initial="1080p", fps=90, up_after_s=1.0)
    sent = qc.bitrate // 3
    available = int(1.5 * sent)

    def sample(t: float, sent_bps: float | None) -> QualitySample:
        return QualitySample(
            t=t, rtt_ms=20.0, available_bps=available, sent_bps=sent_bps, frame_ms=2.0
        )

    # Measured against the target, the estimate shows no headroom: stay.
    assert [qc.update(sample(float(t), None)) for t in range(3)] == [None] * 3
    # Against what is actually sent, it is headroom: climb rung by rung, never back down
    # (a low but steady estimate is not congestion).
    changes = [qc.update(sample(float(t), sent)) for t in range(3, 12)]
    assert [c.new for c in changes if c is not None] == ["2K", "4K"]


def test_display_rate_and_render_scale_are_bounded_on_the_wire() -> None:
    """A client's display rate and a frame's render scale steer pacing and the viewer: absurd,
    non-numeric or missing values get a stable error code (or the safe default), never a crash."""
    assert parse_client_feedback({"display_hz": 59.94}).display_hz == 59.94
    assert parse_client_feedback({}).display_hz == 0.0  # older clients: not measured
    for bad, code in ((5000, "out_of_range"), (-1, "out_of_range"), (True, "bad_type"),
                      ("60", "bad_type")):  # fmt: skip
        with pytest.raises(ProtocolError) as err:
            parse_client_feedback({"display_hz": bad})
        assert err.value.code == code
    meta = {"frame_id": 1, "pose_seq": 1, "pose": {"p": [0, 0, 0], "q": [0, 0, 0, 1]}, "t": {}}
    assert parse_frame_meta(meta).scale == 1.0
    assert parse_frame_meta({**meta, "scale": 0.5}).scale == 0.5
    for scale in (0.0, 1.5, float("nan")):
        with pytest.raises(ProtocolError):
            parse_frame_meta({**meta, "scale": scale})


def test_view_count_is_one_or_two_on_the_wire() -> None:
    """The client says how many views it shows and each frame says its layout; absent means
    stereo (older clients, the synthetic headset); anything else is a stable error code."""
    assert parse_client_feedback({}).views == 2
    assert parse_client_feedback({"views": 1}).views == 1
    meta = {"frame_id": 1, "pose_seq": 1, "pose": {"p": [0, 0, 0], "q": [0, 0, 0, 1]}, "t": {}}
    assert parse_frame_meta(meta).views == 2
    assert parse_frame_meta({**meta, "views": 1}).views == 1
    for bad, code in ((0, "out_of_range"), (3, "out_of_range"), (1.0, "bad_type"),
                      ("1", "bad_type"), (True, "bad_type")):  # fmt: skip
        with pytest.raises(ProtocolError) as err:
            parse_client_feedback({"views": bad})
        assert err.value.code == code
        with pytest.raises(ProtocolError):
            parse_frame_meta({**meta, "views": bad})
