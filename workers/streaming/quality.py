"""Adaptive quality: pick a ladder rung and a bitrate from periodic stream statistics.

Pure logic with an injected notion of time (``QualitySample.t``), so it is unit-tested
without a network. Policy: step down fast (one rung per bad sample), step up slowly (after
``up_after_s`` of clean samples, one rung, only if the machine can render+encode the next
rung inside the frame budget and the bandwidth estimate allows its bitrate). A pinned rung
wins over everything; the user's cap wins over the controller.

Bitrate: the rung's nominal rate from the first frame. A receiver's estimate (REMB) is not a
ceiling: it starts low and stays near 1.5x what arrives, so a sender that obeys it starves on a
clean link (the picture then breaks into blocks as soon as the head moves). Only evidence of
congestion (loss, rising delay, a sharp fall of the estimate) caps the rate, at what got
through; every clean sample after that probes the cap upward until it is gone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from workers.protocol import RUNG_ORDER, RUNGS, scaled_bitrate


@dataclass(frozen=True, slots=True)
class QualitySample:
    t: float  # seconds, any monotonic clock
    loss: float = 0.0  # fraction of packets lost since the last sample, 0..1
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    available_bps: int | None = None  # REMB / bandwidth estimate
    frame_ms: float | None = None  # worker render+convert+encode per frame, current rung
    client_decode_ms: float | None = None
    client_dropped: float = 0.0  # fraction of frames the client dropped
    sent_bps: float | None = None  # what actually went out (encoders undershoot easy content)


@dataclass(frozen=True, slots=True)
class QualityChange:
    old: str
    new: str
    reason: str
    bitrate: int


# Trouble reasons that mean the network, not the machine: only these cap the bitrate.
_NETWORK_TROUBLE = ("loss", "rising delay", "bandwidth estimate")


def _pixels(rung: str) -> int:
    w, h = RUNGS[rung]
    return w * h


class QualityController:
    def __init__(
        self,
        *,
        initial: str = "1080p",
        fps: float = 90.0,
        max_rung: str | None = None,
        pinned: str | None = None,
        up_after_s: float = 5.0,
        loss_threshold: float = 0.02,
        budget_headroom: float = 0.85,
        min_bitrate: int = 500_000,
        rung_sizes: Mapping[str, tuple[int, int]] | None = None,
        probe_step: float = 1.25,
    ) -> None:
        self.fps = fps
        self.budget_headroom = budget_headroom
        self.probe_step = probe_step
        # Set by congestion, raised by every clean sample, dropped once it reaches nominal.
        self.rate_cap: int | None = None
        self.up_after_s = up_after_s
        self.loss_threshold = loss_threshold
        # Fraction of the frame interval that render+encode may use: the rest is slack for
        # the event loop, RTP sending and jitter.
        self.budget_ms = 1000.0 / fps * budget_headroom
        self.min_bitrate = min_bitrate
        # Nominal bitrates are for the standard per-eye sizes; a worker configured with other
        # sizes (MORPHEUS_RUNG_SIZES) needs proportionally more or fewer bits.
        sizes = rung_sizes or RUNGS
        self._size_factor = {
            r: (sizes[r][0] * sizes[r][1]) / (RUNGS[r][0] * RUNGS[r][1]) for r in RUNG_ORDER
        }
        self.max_rung = max_rung
        self.pinned = pinned
        self._frame_ms: dict[str, float] = {}  # EWMA of measured per-frame cost per rung
        self._rtts: deque[float] = deque(maxlen=30)
        self._clean_since: float | None = None
        self._available: int | None = None
        self._estimate_fell = False  # the last sample's estimate dropped by over 20%
        # A temporary cap from the platform's forecast (rung, until t), on top of the user's.
        self._forecast_cap: tuple[str, float] | None = None
        self.rung = self._allowed(initial)
        self.bitrate = self._bitrate_for(self.rung)

    # ------------------------------------------------------------------ helpers

    def _index(self, rung: str) -> int:
        return RUNG_ORDER.index(rung)

    def _allowed(self, rung: str) -> str:
        if self.pinned is not None:
            return self.pinned
        if self.max_rung is not None and self._index(rung) < self._index(self.max_rung):
            return self.max_rung
        return rung

    def nominal_bitrate(self, rung: str) -> int:
        """The rung's bitrate on an unconstrained link, for this frame rate and size."""
        return int(scaled_bitrate(rung, self.fps) * self._size_factor[rung])

    def _bitrate_for(self, rung: str) -> int:
        bitrate = self.nominal_bitrate(rung)
        if self.rate_cap is not None:
            bitrate = min(bitrate, self.rate_cap)
        return max(bitrate, self.min_bitrate)

    def set_fps(self, fps: float) -> None:
        """A new frame rate (the client's display rate): budget and bitrates follow it."""
        self.fps = fps
        self.budget_ms = 1000.0 / fps * self.budget_headroom
        self.bitrate = self._bitrate_for(self.rung)

    def _congested(self, sample: QualitySample) -> None:
        """Cap the rate at what got through (or the estimate, if lower), with margin."""
        through = min(self.bitrate, int(sample.sent_bps)) if sample.sent_bps else self.bitrate
        if self._available is not None:
            through = min(through, self._available)
        self.rate_cap = max(self.min_bitrate, int(through * 0.85))

    def _probe(self) -> None:
        if self.rate_cap is None:
            return
        self.rate_cap = int(self.rate_cap * self.probe_step)
        if self.rate_cap >= self.nominal_bitrate(self.rung):
            self.rate_cap = None

    def estimate_frame_ms(self, rung: str) -> float | None:
        """Measured cost at ``rung``, else scaled by pixel count from the nearest measured."""
        if rung in self._frame_ms:
            return self._frame_ms[rung]
        if not self._frame_ms:
            return None
        nearest = min(self._frame_ms, key=lambda r: abs(self._index(r) - self._index(rung)))
        return self._frame_ms[nearest] * _pixels(rung) / _pixels(nearest)

    def sustainable(self, rung: str) -> bool:
        cost = self.estimate_frame_ms(rung)
        return cost is None or cost <= self.budget_ms

    def _change(self, new: str, reason: str) -> QualityChange | None:
        old = self.rung
        self.rung = new
        self.bitrate = self._bitrate_for(new)
        self._clean_since = None
        if new == old:
            return None
        return QualityChange(old, new, reason, self.bitrate)

    def _highest_sustainable_below(self, rung: str) -> str:
        lower = RUNG_ORDER[self._index(rung) + 1 :]
        for candidate in lower:
            if self.sustainable(candidate):
                return candidate
        return lower[-1] if lower else rung

    def _delay_rising(self) -> bool:
        if len(self._rtts) < 3:
            return False
        baseline = min(self._rtts)
        recent = list(self._rtts)[-3:]
        # Queues building up: RTT well above the best seen, and still climbing.
        above = recent[-1] > baseline + max(30.0, baseline * 0.5)
        climbing = recent[0] < recent[1] < recent[2] and recent[2] - recent[0] > 20.0
        return (above and climbing) or recent[-1] > baseline + max(100.0, baseline)

    # ------------------------------------------------------------------ inputs

    def set_limits(
        self, *, max_rung: str | None, pinned: str | None, reason: str = "user"
    ) -> QualityChange | None:
        """Apply the user's cap and pin (None clears). Returns the change, if any."""
        self.max_rung, self.pinned = max_rung, pinned
        target = self._allowed(self.rung)
        change = self._change(target, f"{reason}: pinned" if pinned else f"{reason}: cap")
        return change

    def forecast_cap(self, rung: str, *, now: float, hold_s: float) -> QualityChange | None:
        """Cap at ``rung`` until ``now + hold_s``: the platform forecasts that higher rungs will
        not hold, so step down before loss shows. The user's pin still wins."""
        self._forecast_cap = (rung, now + hold_s)
        if self.pinned is None and self._index(self.rung) < self._index(rung):
            return self._change(rung, "forecast")
        return None

    def _cap(self, now: float) -> str | None:
        """The lowest of the user's cap and an unexpired forecast cap."""
        caps = [self.max_rung] if self.max_rung is not None else []
        if self._forecast_cap is not None and now < self._forecast_cap[1]:
            caps.append(self._forecast_cap[0])
        return max(caps, key=self._index) if caps else None

    def update(self, sample: QualitySample) -> QualityChange | None:
        if sample.frame_ms is not None:
            previous = self._frame_ms.get(self.rung)
            self._frame_ms[self.rung] = (
                sample.frame_ms if previous is None else 0.7 * previous + 0.3 * sample.frame_ms
            )
        if sample.rtt_ms is not None:
            self._rtts.append(sample.rtt_ms)
        self._estimate_fell = False
        if sample.available_bps is not None:
            previous_estimate = self._available
            self._estimate_fell = (
                previous_estimate is not None and sample.available_bps < 0.8 * previous_estimate
            )
            self._available = sample.available_bps
        reason = self._trouble(sample)
        if reason is not None and reason.startswith(_NETWORK_TROUBLE):
            self._congested(sample)
        elif reason is None:
            self._probe()
        self.bitrate = self._bitrate_for(self.rung)
        if self.pinned is not None:
            return self._change(self.pinned, "pinned") if self.rung != self.pinned else None

        if reason is not None:
            if self._index(self.rung) == len(RUNG_ORDER) - 1:
                self._clean_since = None
                return None
            target = RUNG_ORDER[self._index(self.rung) + 1]
            if reason == "render/encode over budget":
                target = self._highest_sustainable_below(self.rung)
            return self._change(target, reason)

        if self._clean_since is None:
            self._clean_since = sample.t
            return None
        if sample.t - self._clean_since < self.up_after_s or self._index(self.rung) == 0:
            return None
        up = RUNG_ORDER[self._index(self.rung) - 1]
        cap = self._cap(sample.t)
        if cap is not None and self._index(up) < self._index(cap):
            return None
        cost = self.estimate_frame_ms(up)
        if cost is None or cost > self.budget_ms:
            # Unmeasured (no frame has gone out yet) or too slow: the machine's capacity
            # is not known to cover the next rung, so stay.
            return None
        sending = min(self.bitrate, sample.sent_bps) if sample.sent_bps else self.bitrate
        if self._available is not None and self._available < min(
            0.8 * self.nominal_bitrate(up), 1.3 * sending
        ):
            # A receiver's estimate (REMB) never exceeds about 1.5x what it receives, so it can
            # never show room for a rung that needs twice the bits: 30% headroom over what we
            # actually send is the signal that the link has room; the new rung probes upward.
            return None
        return self._change(up, "clean network, headroom")

    def _trouble(self, sample: QualitySample) -> str | None:
        if sample.loss > self.loss_threshold:
            return f"loss {sample.loss:.1%}"
        if self._delay_rising():
            return "rising delay"
        cost = self._frame_ms.get(self.rung)
        if cost is not None and cost > self.budget_ms / 0.85:
            return "render/encode over budget"
        if sample.client_decode_ms is not None and sample.client_decode_ms > 1000.0 / self.fps:
            return "client decode too slow"
        if sample.client_dropped > 0.05:
            return "client dropping frames"
        lowest = self._index(self.rung) == len(RUNG_ORDER) - 1
        # A *low* estimate is not congestion: a receiver's estimate (REMB) stays near 1.5x
        # what arrives, so it is always low right after a step up, or on easy content the
        # encoder undershoots. A sharp *fall* to well under the rung's needs is the signal.
        if (
            not lowest  # nothing lower to go to: let the clean timer run so we can recover
            and self._estimate_fell
            and self._available is not None
            and self._available < 0.5 * self.nominal_bitrate(self.rung)
        ):
            return "bandwidth estimate"
        return None
