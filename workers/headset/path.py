"""Scripted head motion: a seated user looking around, reproducible from a time alone."""

from __future__ import annotations

import math


def head_pose(t: float) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    """Position (m) and orientation quaternion (x, y, z, w) at ``t`` seconds.

    Yaw sweeps +-40 degrees every 4 s, pitch +-10 degrees every 3 s, and the head sways a
    few centimetres: enough motion that every frame differs, smooth like a real head.
    """
    yaw = math.radians(40.0) * math.sin(2 * math.pi * t / 4.0)
    pitch = math.radians(10.0) * math.sin(2 * math.pi * t / 3.0)
    p = (0.05 * math.sin(2 * math.pi * t / 5.0), 1.6 + 0.02 * math.sin(2 * math.pi * t / 2.0), 0.0)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    # q = q_yaw(Y) * q_pitch(X)
    q = (cy * sp, sy * cp, -sy * sp, cy * cp)
    return p, q
