"""Forecasts on known series (pure logic, no database): the capacity forecast and the
worker's per-stream link forecast it shares ``Holt`` with."""

import math

import numpy as np
import pytest

from apps.monitoring.capacity_forecast import (
    DAY_BUCKETS_5MIN,
    capacity_forecast,
    holt_winters_fit,
    mape,
    workers_for,
)
from workers.streaming import forecast
from workers.streaming.forecast import (
    ForecastConfig,
    Holt,
    StreamPoint,
    predict_stream,
    trendline_slope,
)


def test_holt_extrapolates_a_line_exactly() -> None:
    holt = Holt(alpha=0.5, beta=0.3)
    for t in range(30):
        holt.update(float(t), 100.0 - 2.0 * t)
    # Starting from a zero slope it converges geometrically onto the line.
    assert holt.forecast(3.0) == pytest.approx(100.0 - 2.0 * 32, abs=1e-3)


def test_trendline_slope_is_least_squares() -> None:
    ts = [0.0, 1.0, 2.0, 3.0]
    assert trendline_slope(ts, [5.0, 8.0, 11.0, 14.0]) == pytest.approx(3.0)
    assert trendline_slope([1.0], [2.0]) == 0.0


def _points(remb: list[float], rtt: list[float], rung: str = "2K") -> list[StreamPoint]:
    return [
        StreamPoint(
            t=float(i),
            rung=rung,
            fps=90.0,
            bitrate_bps=40e6,
            available_bps=b,
            rtt_ms=r,
            loss=0.0,
        )
        for i, (b, r) in enumerate(zip(remb, rtt, strict=True))
    ]


def test_steady_stream_keeps_its_rung() -> None:
    fc = predict_stream(_points([60e6] * 12, [30.0] * 12))
    assert fc.recommended_rung is None
    assert fc.bandwidth_bps == pytest.approx(60e6)
    assert not fc.overuse
    assert fc.confidence > 0.5


def test_declining_bandwidth_steps_down_before_it_crosses_the_rung() -> None:
    # 2K needs 40 Mbit/s. The estimate falls 3 Mbit/s a second from 70: it is still above 40
    # now (46 at the last point) but will not be in 3 s.
    remb = [70e6 - 3e6 * i for i in range(9)]
    fc = predict_stream(_points(remb, [30.0] * 9))
    assert remb[-1] > 40e6
    assert fc.recommended_rung == "1080p"
    assert fc.bandwidth_bps == pytest.approx(remb[-1] - 9e6, rel=0.05)
    assert "2K needs 40.0 Mbit/s" in fc.reason


def test_rising_delay_is_overuse_even_with_a_flat_estimate() -> None:
    # A queue building at 15 ms/s while REMB still claims 60 Mbit/s: GCC's trendline says
    # overuse; the path carries ~85% of what arrives.
    fc = predict_stream(
        [
            StreamPoint(float(i), "2K", 90.0, 40e6, 42e6, 30.0 + max(0, i - 4) * 15.0, 0.0)
            for i in range(12)
        ]
    )
    assert fc.overuse
    assert fc.delay_slope_ms_per_s > 10
    # 0.85 * 40 = 34 Mbit/s: 1080p (25 Mbit/s) fits inside the 90% margin, 2K does not.
    assert fc.recommended_rung == "1080p"
    assert fc.bandwidth_bps == pytest.approx(0.85 * 40e6)
    assert fc.delay_ms is not None
    assert fc.delay_ms > 30.0 + 7 * 15.0


def test_noisy_flat_delay_is_not_overuse() -> None:
    rng = np.random.default_rng(3)
    rtt = (30.0 + rng.normal(0, 3, 20)).tolist()
    fc = predict_stream(_points([60e6] * 20, rtt))
    assert not fc.overuse
    assert fc.recommended_rung is None


def test_short_history_and_lowest_rung_never_recommend() -> None:
    assert predict_stream([]).reason == "no data"
    assert predict_stream(_points([1e6] * 2, [30.0] * 2)).recommended_rung is None
    low = predict_stream(_points([1e6] * 10, [30.0] * 10, rung="720p"))
    assert low.recommended_rung is None


def test_point_from_report_reads_a_worker_report() -> None:
    report = {"t": 1_700_000_000_000.0, "rung": "1080p", "target_fps": 72, "bitrate_bps": 2e7}
    report |= {"remb_bps": 3e7, "rtt_ms": 20.0, "loss": 0.01}
    p = forecast.point_from_report(report)
    assert p == StreamPoint(1_700_000_000.0, "1080p", 72.0, 2e7, 3e7, 20.0, 0.01)
    assert forecast.point_from_report({"t": 1, "rung": "8K"}) is None


def synthetic_streams(days: int, seed: int = 7) -> np.ndarray:
    """Concurrent streams with a daily cycle (evening peak), a slow trend and noise."""
    rng = np.random.default_rng(seed)
    n = days * DAY_BUCKETS_5MIN
    i = np.arange(n)
    phase = 2 * math.pi * (i % DAY_BUCKETS_5MIN) / DAY_BUCKETS_5MIN
    daily = 60 + 40 * np.sin(phase - math.pi / 2) + 12 * np.sin(2 * phase)
    trend = 0.004 * i
    return np.maximum(daily + trend + rng.normal(0, 3, n), 0.0)


def test_holt_winters_mape_on_held_out_day_is_below_10_percent() -> None:
    series = synthetic_streams(10)
    train, held = series[: 9 * DAY_BUCKETS_5MIN], series[9 * DAY_BUCKETS_5MIN :]
    model = holt_winters_fit(train.tolist())
    # Rolling origin: at each held-out bucket forecast 60 minutes (12 buckets) ahead, then
    # feed the actual value.
    predicted, actual = [], []
    for k, value in enumerate(held):
        if k + 12 <= len(held):
            predicted.append(model.forecast(12))
            actual.append(held[k + 11])
        model.update(float(value))
    error = mape(actual, predicted)
    assert error < 0.10, error


def test_capacity_forecast_methods_and_workers() -> None:
    series = synthetic_streams(3).tolist()
    fc = capacity_forecast(series, streams_per_worker=4, headroom=0.25)
    assert fc.method == "holt-winters"
    assert set(fc.streams) == {"15m", "60m"}
    peak = max(fc.current, *fc.streams.values())
    assert fc.workers_desired == math.ceil(peak * 1.25 / 4)
    assert capacity_forecast([2, 4, 6, 8]).method == "holt"
    assert capacity_forecast([5]).streams == {"15m": 5.0, "60m": 5.0}
    assert capacity_forecast([], min_workers=2).workers_desired == 2


def test_workers_for_rounds_up_with_headroom() -> None:
    assert workers_for(8, streams_per_worker=4, headroom=0.0, minimum=1) == 2
    assert workers_for(8.1, streams_per_worker=4, headroom=0.0, minimum=1) == 3
    assert workers_for(8, streams_per_worker=4, headroom=0.2, minimum=1) == 3
    assert workers_for(0, streams_per_worker=4, headroom=0.2, minimum=1) == 1


def test_holt_winters_needs_two_seasons() -> None:
    with pytest.raises(ValueError, match="at least"):
        holt_winters_fit([1.0] * 10, season=8)
    assert ForecastConfig().horizon_s == 3.0
