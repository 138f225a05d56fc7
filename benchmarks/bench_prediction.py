"""Does forecasting bandwidth save stalls and time at a too-high rung? A bottleneck simulation.

Each trace is a capacity curve (bits/s over time). A sender at the controller's bitrate pushes
through a drop-tail bottleneck queue (fluid model, 50 ms steps): excess over capacity queues,
a full buffer drops, queueing delay = queue / capacity. The receiver's bandwidth estimate is
GCC-like AIMD (x0.85 of the received rate on a rising delay, +5%/s while the queue is empty,
bounded by 1.5x what arrives). Once a second both controllers get a stats sample:

- reactive: workers/streaming/quality.py QualityController alone (loss, delay, REMB);
- oracle: the same controller, plus workers/streaming/forecast.predict_stream on the report
  history; when it recommends a lower rung (confidence >= 0.4, at most every 5 s) the rung is
  capped there for 10 s, the way the worker caps itself (StreamForecaster).

Counted per run: stall seconds (loss > 2% or queueing delay > 100 ms in that second), seconds
at a too-high rung (the rung's nominal bitrate above the capacity), seconds at a too-low rung
(the next rung up would fit with 10% to spare: what caution costs), rung changes, and mean
delivered bitrate.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_prediction.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from workers.protocol import RUNG_ORDER, scaled_bitrate
from workers.streaming.forecast import ForecastConfig, StreamPoint, predict_stream
from workers.streaming.quality import QualityController, QualitySample

DT = 0.05
FPS = 90.0
BUFFER_BITS = 4_000_000  # drop-tail buffer (~80 ms at 50 Mbit/s)
BASE_RTT_MS = 20.0

Trace = Callable[[float], float]


def ramp(t: float) -> float:
    """Walking away from the access point: 70 -> 18 Mbit/s over 50 s, then back."""
    if t < 20:
        return 70e6
    if t < 70:
        return 70e6 - (t - 20) / 50 * 52e6
    if t < 110:
        return 18e6
    return min(70e6, 18e6 + (t - 110) * 2e6)


def sawtooth(t: float) -> float:
    """Shared link: a competing flow ramps up for 25 s and leaves, three times."""
    phase = t % 40
    return 75e6 - (phase / 25 * 45e6 if phase < 25 else 0.0)


def random_walk(seed: int) -> Trace:
    rng = random.Random(seed)
    points = [60e6]
    for _ in range(200):
        drift = -1.2e6 if (len(points) // 30) % 2 else 1.0e6
        points.append(min(90e6, max(10e6, points[-1] + drift + rng.gauss(0, 1.5e6))))

    def trace(t: float) -> float:
        i = min(int(t), len(points) - 2)
        f = t - int(t)
        return points[i] * (1 - f) + points[i + 1] * f

    return trace


@dataclass
class Result:
    stall_s: int = 0
    too_high_s: int = 0
    too_low_s: int = 0
    changes: int = 0
    mean_mbps: float = 0.0
    oracle_actions: int = 0


def run(trace: Trace, duration_s: int, *, oracle: bool, seed: int = 0) -> Result:
    rng = random.Random(seed)
    ctl = QualityController(initial="2K", fps=FPS)
    remb = 60e6
    queue = 0.0
    history: list[StreamPoint] = []
    cap_until = -1.0
    last_action = -math.inf
    out = Result()
    delivered_total = 0.0
    prev_delay = 0.0
    for second in range(duration_s):
        sent = dropped = delivered = 0.0
        max_delay = 0.0
        rung_at_start = ctl.rung
        rate = float(ctl.bitrate)
        for k in range(int(1 / DT)):
            capacity = trace(second + k * DT)
            queue += rate * DT
            sent += rate * DT
            out_bits = min(queue, capacity * DT)
            queue -= out_bits
            delivered += out_bits
            if queue > BUFFER_BITS:
                dropped += queue - BUFFER_BITS
                queue = BUFFER_BITS
            max_delay = max(max_delay, queue / capacity * 1000.0)
        delay_ms = queue / trace(second + 1.0) * 1000.0
        loss = dropped / sent if sent else 0.0
        # Receiver estimate (GCC-like AIMD).
        if delay_ms > 10.0 and delay_ms > prev_delay + 2.0:
            remb = 0.85 * delivered
        elif delay_ms < 5.0:
            remb = min(remb * 1.05, 1.5 * delivered + 2e6)
        prev_delay = delay_ms
        rtt = BASE_RTT_MS + delay_ms + rng.gauss(0, 1.0)
        delivered_total += delivered
        if loss > 0.02 or max_delay > 100.0:
            out.stall_s += 1
        if scaled_bitrate(rung_at_start, FPS) > trace(second + 0.5):
            out.too_high_s += 1
        up = RUNG_ORDER.index(rung_at_start) - 1
        if up >= 0 and scaled_bitrate(RUNG_ORDER[up], FPS) <= 0.9 * trace(second + 0.5):
            out.too_low_s += 1  # a higher rung would have fitted with 10% to spare

        t = float(second + 1)
        ctl.update(QualitySample(t=t, loss=loss, rtt_ms=rtt, available_bps=int(remb)))
        history.append(StreamPoint(t, ctl.rung, FPS, rate, remb, rtt, loss))
        del history[:-30]
        if oracle:
            if cap_until >= 0 and t >= cap_until:
                ctl.set_limits(max_rung=None, pinned=None, reason="oracle released")
                cap_until = -1.0
            fc = predict_stream(history, ForecastConfig(horizon_s=3.0))
            if fc.recommended_rung and fc.confidence >= 0.4 and t - last_action >= 5.0:
                ctl.set_limits(max_rung=fc.recommended_rung, pinned=None, reason="oracle")
                cap_until, last_action = t + 10.0, t
                out.oracle_actions += 1
        if ctl.rung != rung_at_start:
            out.changes += 1
    out.mean_mbps = delivered_total / duration_s / 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    traces: list[tuple[str, Trace, int]] = [("ramp", ramp, 150), ("sawtooth", sawtooth, 160)]
    traces += [(f"walk-{s}", random_walk(s), 180) for s in range(args.seeds)]
    print(f"rungs {', '.join(f'{r}={scaled_bitrate(r, FPS) / 1e6:g}M' for r in RUNG_ORDER)}")
    header = f"{'trace':10} {'controller':9} {'stall s':>8} {'too-high s':>10} {'too-low s':>9} "
    print(header + f"{'changes':>8} {'Mbit/s':>7} {'actions':>8}")
    totals = {False: Result(), True: Result()}
    for name, trace, duration in traces:
        for oracle in (False, True):
            r = run(trace, duration, oracle=oracle)
            total = totals[oracle]
            total.stall_s += r.stall_s
            total.too_high_s += r.too_high_s
            total.too_low_s += r.too_low_s
            total.changes += r.changes
            total.mean_mbps += r.mean_mbps / len(traces)
            total.oracle_actions += r.oracle_actions
            label = "oracle" if oracle else "reactive"
            print(
                f"{name:10} {label:9} {r.stall_s:8d} {r.too_high_s:10d} {r.too_low_s:9d} "
                f"{r.changes:8d} {r.mean_mbps:7.1f} {r.oracle_actions:8d}"
            )
    for oracle, r in totals.items():
        label = "oracle" if oracle else "reactive"
        print(
            f"{'TOTAL':10} {label:9} {r.stall_s:8d} {r.too_high_s:10d} {r.too_low_s:9d} "
            f"{r.changes:8d} {r.mean_mbps:7.1f} {r.oracle_actions:8d}"
        )


if __name__ == "__main__":
    main()
