"""Short-horizon forecasts of one stream's link, run on the worker that streams it.

Pure logic (numpy only for the fit). The worker feeds every stats report it makes into a
:class:`StreamForecaster`; when the forecast says the current rung will not hold, the worker
caps itself ahead of the trouble and its report carries the forecast, so the platform only
records it and tells the viewer (no round trip per stream per second).

Two signals, in the spirit of WebRTC's GCC:

- bandwidth: Holt's linear trend (level + slope, exponentially smoothed) over the receiver's
  bandwidth estimate (REMB), extrapolated ``horizon_s`` ahead;
- delay: a trendline filter, the least-squares slope of smoothed RTT over a sliding window
  (GCC fits the slope of accumulated one-way delay variation the same way). A rising trend
  means a queue is building: the path carries less than we send. The throughput the path
  can take is then about what the receiver gets (REMB), minus a safety factor.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.protocol import RUNG_ORDER, ForecastReport, scaled_bitrate


@dataclass(frozen=True, slots=True)
class StreamPoint:
    """One stats report, reduced to what the forecast needs."""

    t: float  # seconds
    rung: str
    fps: float = 90.0
    bitrate_bps: float | None = None  # sent
    available_bps: float | None = None  # receiver estimate (REMB)
    rtt_ms: float | None = None
    loss: float | None = None


@dataclass(frozen=True, slots=True)
class StreamForecast:
    bandwidth_bps: float | None  # forecast available bandwidth at t + horizon_s
    delay_ms: float | None  # forecast RTT at t + horizon_s
    horizon_s: float
    confidence: float  # 0..1
    recommended_rung: str | None  # a lower rung to switch to now, or None
    reason: str
    rung: str = ""
    needed_bps: float = 0.0  # what the current rung needs
    delay_slope_ms_per_s: float = 0.0
    overuse: bool = False


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def point_from_report(report: Mapping[str, Any]) -> StreamPoint | None:
    """A StreamPoint from a worker stats report dict (``t`` in ms since the epoch)."""
    t = _num(report.get("t"))
    rung = report.get("rung")
    if t is None or rung not in RUNG_ORDER:
        return None
    return StreamPoint(
        t=t / 1000.0,
        rung=str(rung),
        fps=_num(report.get("target_fps")) or _num(report.get("fps")) or 90.0,
        bitrate_bps=_num(report.get("bitrate_bps")),
        available_bps=_num(report.get("remb_bps")) or _num(report.get("available_bps")),
        rtt_ms=_num(report.get("rtt_ms")),
        loss=_num(report.get("loss")),
    )


@dataclass(slots=True)
class Holt:
    """Holt's linear trend: level and slope per unit time, smoothed exponentially."""

    alpha: float = 0.5
    beta: float = 0.3
    level: float | None = None
    slope: float = 0.0
    t: float = 0.0
    abs_err: float = 0.0  # EWMA of |one-step error|, for confidence
    n: int = 0

    def update(self, t: float, y: float) -> None:
        if self.level is None:
            self.level, self.t, self.n = y, t, 1
            return
        dt = max(t - self.t, 1e-3)
        predicted = self.level + self.slope * dt
        self.abs_err = 0.7 * self.abs_err + 0.3 * abs(y - predicted) if self.n > 1 else 0.0
        level = self.alpha * y + (1 - self.alpha) * predicted
        self.slope = self.beta * (level - self.level) / dt + (1 - self.beta) * self.slope
        self.level, self.t, self.n = level, t, self.n + 1

    def forecast(self, ahead_s: float) -> float:
        assert self.level is not None
        return self.level + self.slope * ahead_s


def trendline_slope(ts: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` over ``ts`` (units of y per second)."""
    if len(ts) < 2:
        return 0.0
    t = np.asarray(ts, dtype=float)
    y = np.asarray(ys, dtype=float)
    tc = t - t.mean()
    denom = float((tc * tc).sum())
    return float((tc * (y - y.mean())).sum() / denom) if denom > 0 else 0.0


@dataclass(frozen=True, slots=True)
class ForecastConfig:
    horizon_s: float = 3.0
    window: int = 8  # trendline window (samples)
    delay_smoothing: float = 0.6  # EWMA weight of the newest RTT in the trendline input
    overuse_slope_ms_per_s: float = 4.0  # a queue growing this fast is overuse
    overuse_min_rise_ms: float = 8.0  # ...once RTT is this far above its floor
    decrease_factor: float = 0.85  # GCC: the path takes ~85% of what the receiver gets
    fit_margin: float = 0.9  # a rung fits when its bitrate <= margin * forecast bandwidth
    min_decline: float = 0.05  # a trend counts when it loses 5% of the level over the horizon
    min_points: int = 4


def rung_bitrate(rung: str, fps: float) -> int:
    return scaled_bitrate(rung, fps)


def highest_rung_fitting(bandwidth: float, fps: float, margin: float, below: str) -> str:
    """The best rung strictly below ``below`` whose bitrate fits; the lowest if none does."""
    lower = RUNG_ORDER[RUNG_ORDER.index(below) + 1 :]
    for rung in lower:
        if rung_bitrate(rung, fps) <= margin * bandwidth:
            return rung
    return lower[-1] if lower else below


def predict_stream(
    history: Sequence[StreamPoint], config: ForecastConfig | None = None
) -> StreamForecast:
    """Forecast bandwidth and delay ``horizon_s`` ahead; recommend a step down if the current
    rung's bitrate will not hold."""
    cfg = config or ForecastConfig()
    if not history:
        return StreamForecast(None, None, cfg.horizon_s, 0.0, None, "no data")
    last = history[-1]
    needed = float(rung_bitrate(last.rung, last.fps))
    if len(history) < cfg.min_points:
        return StreamForecast(
            None, None, cfg.horizon_s, 0.0, None, "not enough history", last.rung, needed
        )

    bw = Holt(alpha=0.5, beta=0.3)
    delay = Holt(alpha=0.5, beta=0.3)
    smoothed: list[tuple[float, float]] = []
    s: float | None = None
    rtt_floor = math.inf
    for p in history:
        if p.available_bps is not None:
            bw.update(p.t, p.available_bps)
        if p.rtt_ms is not None:
            delay.update(p.t, p.rtt_ms)
            rtt_floor = min(rtt_floor, p.rtt_ms)
            s = (
                p.rtt_ms
                if s is None
                else cfg.delay_smoothing * p.rtt_ms + (1 - cfg.delay_smoothing) * s
            )
            smoothed.append((p.t, s))

    window = smoothed[-cfg.window :]
    slope = trendline_slope([w[0] for w in window], [w[1] for w in window])
    delay_now = smoothed[-1][1] if smoothed else None
    delay_fc = None
    if delay.level is not None:
        delay_fc = max(delay.forecast(cfg.horizon_s), 0.0)
    overuse = (
        delay_now is not None
        and slope > cfg.overuse_slope_ms_per_s
        and delay_now - rtt_floor > cfg.overuse_min_rise_ms
    )

    bw_fc: float | None = None
    if bw.level is not None:
        bw_fc = max(bw.forecast(cfg.horizon_s), 0.0)
    reasons: list[str] = []
    if overuse:
        # A growing queue says the path takes less than we send; the receiver's estimate (or,
        # without one, what we send) times GCC's decrease factor is what it can carry.
        received = last.available_bps or last.bitrate_bps or needed
        capped = cfg.decrease_factor * min(received, last.bitrate_bps or received)
        bw_fc = capped if bw_fc is None else min(bw_fc, capped)
        reasons.append(f"delay rising {slope:.1f} ms/s")

    confidence = _confidence(bw, delay, len(history), cfg)
    # Act on a *trend* (or a building queue) only. A flat, low estimate right after a step up
    # is the receiver not having seen more traffic yet (application-limited), not a shrinking
    # path; the reactive controller already weighs the estimate's level.
    declining = bw.level is not None and bw.slope * cfg.horizon_s < -cfg.min_decline * bw.level
    recommended = None
    if (
        bw_fc is not None
        and (overuse or declining)
        and bw_fc * cfg.fit_margin < needed
        and last.rung != RUNG_ORDER[-1]
    ):
        recommended = highest_rung_fitting(bw_fc, last.fps, cfg.fit_margin, last.rung)
        reasons.append(
            f"{last.rung} needs {needed / 1e6:.1f} Mbit/s, forecast {bw_fc / 1e6:.1f} Mbit/s "
            f"in {cfg.horizon_s:g} s"
        )
    reason = "; ".join(reasons) if reasons else "current rung holds"
    return StreamForecast(
        bw_fc,
        delay_fc,
        cfg.horizon_s,
        confidence,
        recommended,
        reason,
        last.rung,
        needed,
        slope,
        overuse,
    )


def _confidence(bw: Holt, delay: Holt, n: int, cfg: ForecastConfig) -> float:
    """More history and smaller one-step errors mean more confidence."""
    amount = min(n / (2.0 * cfg.window), 1.0)
    errors = []
    if bw.level:
        errors.append(bw.abs_err / max(abs(bw.level), 1.0))
    if delay.level:
        errors.append(delay.abs_err / max(abs(delay.level), 1.0))
    noise = min(max(errors), 1.0) if errors else 1.0
    return round(amount * (1.0 - 0.5 * noise), 3)


@dataclass(frozen=True, slots=True)
class OracleConfig:
    """When a forecast acts: enough confidence, at most once per cooldown, for ``hold_s``."""

    forecast: ForecastConfig = ForecastConfig()
    min_confidence: float = 0.4
    cooldown_s: float = 5.0
    hold_s: float = 10.0
    history: int = 30  # reports the forecast looks at


class StreamForecaster:
    """One per stream on the worker: the recent points, the latest forecast, and whether it
    acts now (a step down to cap at, the cooldown permitting)."""

    def __init__(self, config: OracleConfig | None = None) -> None:
        self.config = config or OracleConfig()
        self._points: deque[StreamPoint] = deque(maxlen=self.config.history)
        self._last_action = -math.inf
        self.latest: StreamForecast | None = None

    def update(self, point: StreamPoint, *, now: float) -> tuple[StreamForecast, str | None]:
        """Add one report's point; returns the forecast and the rung to cap at (or None)."""
        self._points.append(point)
        fc = predict_stream(list(self._points), self.config.forecast)
        self.latest = fc
        if fc.recommended_rung is None or fc.confidence < self.config.min_confidence:
            return fc, None
        if now - self._last_action < self.config.cooldown_s:
            return fc, None
        self._last_action = now
        return fc, fc.recommended_rung


def forecast_report(fc: StreamForecast, *, acted: bool) -> ForecastReport:
    """The forecast as a stats report carries it; ``recommended_rung`` only when it acted."""
    return ForecastReport(
        bandwidth_bps=fc.bandwidth_bps,
        delay_ms=fc.delay_ms,
        horizon_s=fc.horizon_s,
        confidence=fc.confidence,
        recommended_rung=fc.recommended_rung if acted else None,
        reason=fc.reason[:256],
        rung=fc.rung,
        needed_bps=fc.needed_bps,
        delay_slope_ms_per_s=fc.delay_slope_ms_per_s,
        overuse=fc.overuse,
    )
