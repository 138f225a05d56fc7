"""Capacity forecasts (Holt-Winters additive: level, trend, daily season on 5-minute buckets of
concurrent streams, parameters picked by one-step SSE). Pure logic: no Django, numpy only.

Not to be confused with the per-stream *link* forecast, which runs on the worker
(``workers/streaming/forecast.py``); only its ``Holt`` smoother is shared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workers.streaming.forecast import Holt

# ------------------------------------------------------------------ capacity

DAY_BUCKETS_5MIN = 288


@dataclass(slots=True)
class HoltWinters:
    """Additive Holt-Winters state after fitting; ``update`` rolls it forward one bucket."""

    alpha: float
    beta: float
    gamma: float
    season: int
    level: float
    trend: float
    seasonals: list[float]  # seasonals[i % season] for the bucket index i
    index: int  # index of the next bucket
    sse: float = 0.0

    def update(self, y: float) -> float:
        """Consume one observation; return the one-step forecast it was compared against."""
        i = self.index % self.season
        predicted = self.level + self.trend + self.seasonals[i]
        level = self.alpha * (y - self.seasonals[i]) + (1 - self.alpha) * (self.level + self.trend)
        self.trend = self.beta * (level - self.level) + (1 - self.beta) * self.trend
        self.seasonals[i] = self.gamma * (y - level) + (1 - self.gamma) * self.seasonals[i]
        self.level = level
        self.index += 1
        self.sse += (y - predicted) ** 2
        return predicted

    def forecast(self, steps: int) -> float:
        i = (self.index + steps - 1) % self.season
        return self.level + steps * self.trend + self.seasonals[i]


def _hw_init(y: Sequence[float], season: int, params: tuple[float, float, float]) -> HoltWinters:
    first = float(np.mean(y[:season]))
    second = float(np.mean(y[season : 2 * season]))
    seasons = len(y) // season
    # Seasonal offsets averaged over every whole season we have, so one odd day does not
    # become the shape forever.
    matrix = np.asarray(y[: seasons * season], dtype=float).reshape(seasons, season)
    seasonals = (matrix - matrix.mean(axis=1, keepdims=True)).mean(axis=0).tolist()
    return HoltWinters(*params, season, first, (second - first) / season, seasonals, 0)


def holt_winters_fit(
    y: Sequence[float],
    season: int = DAY_BUCKETS_5MIN,
    grid: Iterable[tuple[float, float, float]] | None = None,
) -> HoltWinters:
    """Fit on ``y`` (at least two seasons), choosing (alpha, beta, gamma) by one-step SSE."""
    if len(y) < 2 * season:
        raise ValueError(f"need at least {2 * season} points, got {len(y)}")
    candidates = grid or [
        (a, b, g) for a in (0.1, 0.3, 0.6) for b in (0.0, 0.02) for g in (0.05, 0.2)
    ]
    values = [float(v) for v in y]
    best: HoltWinters | None = None
    for params in candidates:
        state = _hw_init(values, season, params)
        for v in values:
            state.update(v)
        if best is None or state.sse < best.sse:
            best = state
    assert best is not None
    return best


@dataclass(frozen=True, slots=True)
class CapacityForecast:
    current: float
    streams: dict[str, float] = field(default_factory=dict)  # horizon label -> streams
    workers_desired: int = 1
    method: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "streams": {k: round(v, 2) for k, v in self.streams.items()},
            "workers_desired": self.workers_desired,
            "method": self.method,
        }


def workers_for(streams: float, *, streams_per_worker: int, headroom: float, minimum: int) -> int:
    need = math.ceil(max(streams, 0.0) * (1.0 + headroom) / max(streams_per_worker, 1) - 1e-9)
    return max(need, minimum)


def capacity_forecast(
    history: Sequence[float],
    *,
    bucket_s: int = 300,
    season: int = DAY_BUCKETS_5MIN,
    horizons_s: Mapping[str, int] | None = None,
    streams_per_worker: int = 4,
    headroom: float = 0.2,
    min_workers: int = 1,
) -> CapacityForecast:
    """Concurrent streams ``horizons_s`` ahead from bucketed history (oldest first), and the
    workers to run: enough for the peak of now and every horizon, plus headroom."""
    horizons = horizons_s or {"15m": 900, "60m": 3600}
    current = float(history[-1]) if len(history) else 0.0
    steps = {k: max(1, round(v / bucket_s)) for k, v in horizons.items()}
    if len(history) >= 2 * season:
        hw = holt_winters_fit(history, season)
        method = "holt-winters"
        forecasts = {k: max(hw.forecast(s), 0.0) for k, s in steps.items()}
    elif len(history) >= 3:
        holt = Holt(alpha=0.5, beta=0.2)
        for i, v in enumerate(history):
            holt.update(float(i), float(v))
        method = "holt"
        forecasts = {k: max(holt.forecast(float(s)), 0.0) for k, s in steps.items()}
    else:
        method = "last value"
        forecasts = {k: current for k in steps}
    peak = max([current, *forecasts.values()])
    desired = workers_for(
        peak, streams_per_worker=streams_per_worker, headroom=headroom, minimum=min_workers
    )
    return CapacityForecast(current, forecasts, desired, method)


def mape(actual: Sequence[float], predicted: Sequence[float]) -> float:
    """Mean absolute percentage error over points whose actual value is not zero."""
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    mask = a != 0
    return float(np.mean(np.abs((a[mask] - p[mask]) / a[mask])))
