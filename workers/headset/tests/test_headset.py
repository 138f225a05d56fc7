"""Pure parts of the headset: the scripted head path and the stage arithmetic. The full
client runs against a real platform in apps/streaming/tests/test_end_to_end.py."""

import math

from workers.headset.__main__ import summary_line
from workers.headset.client import _stages, percentiles
from workers.headset.path import head_pose
from workers.protocol import parse_pose


def test_head_path_is_valid_smooth_and_moving() -> None:
    previous = None
    yaws = []
    for i in range(0, 900):
        t = i / 90.0
        p, q = head_pose(t)
        pose = parse_pose({"p": list(p), "q": list(q), "t": t * 1000, "seq": i})
        assert math.isclose(sum(c * c for c in pose.q), 1.0, rel_tol=1e-9)
        if previous is not None:
            # 1/90 s apart: no jumps larger than a fast head turn allows (~300 deg/s).
            dot = abs(sum(a * b for a, b in zip(previous, q, strict=True)))
            assert 2 * math.degrees(math.acos(min(1.0, dot))) < 300 / 90
        previous = q
        yaws.append(math.atan2(2 * (q[3] * q[1] + q[0] * q[2]), 1 - 2 * (q[0] ** 2 + q[1] ** 2)))
    assert max(yaws) - min(yaws) > math.radians(60)


def test_stage_times_from_frame_metadata() -> None:
    t = {
        "pose_rx": 1000.0,
        "render_start": 1002.0,
        "render_end": 1010.0,
        "convert_end": 1011.0,
        "encode_end": 1015.0,
        "send": 1015.5,
    }
    stages = _stages(t, decoded=1030.0)
    assert stages == {
        "queue": 2.0,
        "render": 8.0,
        "convert": 1.0,
        "encode": 4.0,
        "send": 0.5,
        "network_decode": 14.5,
    }
    assert _stages({}, 1.0) == {}


def test_percentiles_and_summary_line() -> None:
    assert percentiles([]) is None
    p = percentiles([float(i) for i in range(101)])
    assert p == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    line = summary_line(
        {
            "frames": 10,
            "fps": 30.0,
            "size": [512, 144],
            "latency_ms": p,
            "bitrate_bps": 2e6,
            "rung": "720p",
            "overhead_ratio": 1.1,
            "render_started": 1,
        }
    )
    assert "fps=30.0" in line
    assert "latency_p50=50.0ms" in line
    assert "bitrate=2.00Mbps" in line
