"""Percentiles: the one definition every report, benchmark and dashboard uses.

A percentile here is linearly interpolated between the two nearest ranks, with ``q`` in 0..1
(numpy's default method): ``percentile([1, 2], 0.5) == 1.5``. Nearest-rank definitions jump
from one sample to the next as the sample count changes, so two reports of the same stream
could disagree by a whole frame time; interpolation does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50/p95/p99 of one measure, as stats reports carry them."""

    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0


def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..1) of ``values``; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def percentiles(values: Iterable[float], *, digits: int = 3) -> Percentiles:
    """p50/p95/p99 of ``values`` rounded to ``digits`` (zeros when empty)."""
    ordered = sorted(values)
    if not ordered:
        return Percentiles()
    p50, p95, p99 = (round(float(percentile(ordered, q) or 0.0), digits) for q in (0.5, 0.95, 0.99))
    return Percentiles(p50, p95, p99)
