"""The stream forecast where it runs: on the worker, once per stats report."""

import itertools
from dataclasses import asdict

from workers.protocol import parse_stream_report
from workers.streaming.forecast import (
    OracleConfig,
    StreamForecaster,
    StreamPoint,
    forecast_report,
)


def _declining(i: int) -> StreamPoint:
    """A 2K stream whose receiver estimate falls 3 Mbit/s a second."""
    return StreamPoint(
        t=float(i), rung="2K", fps=90.0, bitrate_bps=40e6, available_bps=75e6 - 3e6 * i
    )


def test_a_falling_estimate_caps_the_stream_once_per_cooldown() -> None:
    forecaster = StreamForecaster(OracleConfig(cooldown_s=5.0))
    acted = []
    for i in range(12):
        fc, cap = forecaster.update(_declining(i), now=float(i))
        if cap is not None:
            acted.append((i, cap))
    assert acted, "the forecast never acted on a falling estimate"
    _first, rung = acted[0]
    assert rung == "1080p"
    assert all(b - a >= 5 for (a, _), (b, _) in itertools.pairwise(acted))
    assert fc.rung == "2K"


def test_a_steady_link_never_acts_and_low_confidence_waits() -> None:
    steady = StreamForecaster()
    for i in range(20):
        point = StreamPoint(t=float(i), rung="1080p", bitrate_bps=24e6, available_bps=60e6)
        assert steady.update(point, now=float(i))[1] is None
    doubtful = StreamForecaster(OracleConfig(min_confidence=0.99))
    assert all(doubtful.update(_declining(i), now=float(i))[1] is None for i in range(12))


def test_the_report_carries_the_forecast_and_whether_it_acted() -> None:
    forecaster = StreamForecaster()
    for i in range(12):
        fc, _cap = forecaster.update(_declining(i), now=float(i))
    carried = forecast_report(fc, acted=True)
    assert carried.recommended_rung == fc.recommended_rung
    assert forecast_report(fc, acted=False).recommended_rung is None
    # ...and the platform's parser takes it.
    report = parse_stream_report({"t": 1.0, "rung": "2K", "forecast": asdict(carried)})
    assert report.forecast == carried
