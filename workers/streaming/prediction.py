"""Head pose prediction: extrapolate the latest pose to the time the frame will be shown.

Client timestamps (``Pose.t``) are on the client's clock, which we cannot compare with
ours. So velocities come from client timestamps (consistent within one client) and the
prediction horizon is measured on our clock: time since we received the latest pose plus the
expected pipeline latency.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from workers.protocol import Pose
from workers.protocol.geometry import quat_conj, quat_mul, quat_to_rotvec, rotvec_to_quat

Vec = NDArray[np.float64]

# Beyond this horizon extrapolation does more harm than good (overshoot on head stops).
MAX_HORIZON_S = 0.1
# Velocity samples further apart than this describe a different motion.
MAX_SAMPLE_GAP_S = 0.25


@dataclass(frozen=True, slots=True)
class Sample:
    pose: Pose
    rx: float  # our clock (seconds) when it arrived


class PosePredictor:
    """Keeps a short pose history and predicts ahead.

    ``latency_s`` is the expected time from render start to photons (render + encode +
    network + decode + display); the stream updates it from measurements.
    """

    def __init__(self, *, history: int = 8, latency_s: float = 0.03) -> None:
        self._history: deque[Sample] = deque(maxlen=history)
        self.latency_s = latency_s
        self.stale = 0  # poses ignored because their seq was not newer

    @property
    def latest(self) -> Sample | None:
        return self._history[-1] if self._history else None

    def add(self, pose: Pose, rx: float) -> bool:
        """Record a pose received at ``rx`` (our clock). Returns False if it was stale."""
        last = self.latest
        if last is not None and (pose.seq <= last.pose.seq or pose.t < last.pose.t):
            self.stale += 1
            return False
        self._history.append(Sample(pose, rx))
        return True

    def velocity(self) -> tuple[Vec, Vec]:
        """Linear (m/s) and angular (rad/s, world frame) velocity from the recent history."""
        zero = np.zeros(3)
        if len(self._history) < 2:
            return zero, zero
        newest = self._history[-1]
        # Use the oldest sample within the gap window: a longer baseline averages jitter.
        base = None
        for sample in self._history:
            dt = (newest.pose.t - sample.pose.t) / 1000.0
            if 0 < dt <= MAX_SAMPLE_GAP_S:
                base = sample
                break
        if base is None:
            return zero, zero
        dt = (newest.pose.t - base.pose.t) / 1000.0
        lin = (np.array(newest.pose.p) - np.array(base.pose.p)) / dt
        # q_new = dq * q_old  (world-frame delta), so dq = q_new * conj(q_old).
        dq = quat_mul(newest.pose.q, quat_conj(base.pose.q))
        ang = np.array(quat_to_rotvec(dq)) / dt
        return lin, ang

    def predict(self, now: float, extra_s: float | None = None) -> Pose | None:
        """The pose expected at ``now + latency`` (our clock), or None before any pose."""
        last = self.latest
        if last is None:
            return None
        horizon = (now - last.rx) + (self.latency_s if extra_s is None else extra_s)
        horizon = min(max(horizon, 0.0), MAX_HORIZON_S)
        lin, ang = self.velocity()
        p = np.array(last.pose.p) + lin * horizon
        q: Vec = np.array(quat_mul(rotvec_to_quat(ang * horizon), last.pose.q), dtype=np.float64)
        q /= np.linalg.norm(q)
        # replace() keeps everything else the client sent (hands, projections, XR input).
        return replace(
            last.pose,
            p=(float(p[0]), float(p[1]), float(p[2])),
            q=(float(q[0]), float(q[1]), float(q[2]), float(q[3])),
            t=last.pose.t + horizon * 1000.0,
        )
