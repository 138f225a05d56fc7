"""Immersive input on the worker: select/squeeze events out of the counters a WebXR client
sends with its poses, with a flood limit, and the per-stream summary for the stats report."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from workers.protocol import INPUT_EVENTS, Pose, RigidPose, TokenBucket

EVENT_RATE = 10.0  # select/squeeze events per second a person can plausibly make
EVENT_BURST = 20.0


@dataclass(slots=True)
class InputReport:
    """What one pose brought: the events accepted (side, kind) and how many were dropped."""

    events: list[tuple[str, str]] = field(default_factory=list)
    dropped: int = 0


class InputTracker:
    """One per stream. Counters only grow; a client that restarts its session starts them
    again at zero, which becomes the new baseline instead of a negative number of events."""

    def __init__(self, rate: float = EVENT_RATE, burst: float = EVENT_BURST) -> None:
        self._bucket = TokenBucket(rate, burst)
        self._last: dict[str, tuple[int, int]] = {}
        self.events: Counter[str] = Counter()  # accepted, by kind
        self.dropped = 0
        self.kinds: dict[str, str] = {}
        self.origin: RigidPose | None = None
        self.fov_deg: list[float] | None = None

    def observe(self, pose: Pose, now: float) -> InputReport:
        report = InputReport()
        if pose.proj is not None:
            # fov_y = 2 atan(1 / m[5]) for a WebXR (OpenGL-style) projection matrix.
            self.fov_deg = [
                round(math.degrees(2 * math.atan(1 / m[5])), 2) if m[5] else 0.0 for m in pose.proj
            ]
        if pose.xr is None:
            return report
        self.kinds = dict(pose.xr.kinds)
        self.origin = pose.xr.origin
        self._bucket.refill(now)
        for side, counts in sorted(pose.xr.events.items()):
            last = self._last.get(side)
            self._last[side] = counts
            if last is None:
                continue  # first sight: the baseline, whatever happened before we joined
            for kind, new, old in zip(INPUT_EVENTS, counts, last, strict=True):
                fresh = new - old if new >= old else 0
                # Arithmetic, not a loop per event: a hostile counter can jump by 2**31.
                accepted = self._bucket.take_up_to(fresh)
                self.events[kind] += accepted
                report.events += [(side, kind)] * accepted
                self.dropped += fresh - accepted
                report.dropped += fresh - accepted
        return report

    def summary(self) -> dict[str, Any]:
        return {
            "kinds": dict(self.kinds),
            "events": {kind: self.events[kind] for kind in INPUT_EVENTS},
            "events_dropped": self.dropped,
            "origin": None if self.origin is None else self.origin.to_dict(),
            "fov_deg": self.fov_deg,
        }
