"""Pose and quaternion maths: the one definition shared by the protocol (pose composition),
the streaming worker (pose prediction), the renderer and the scene validator (node transforms).

Pure Python (``math`` only) so that the protocol package stays light for the platform; the
numpy callers wrap the results (``np.array(quat_to_mat3(q))``). Conventions follow
glTF/WebXR/OpenGL: quaternions are ``(x, y, z, w)``, matrices are rows of the math convention
(``M @ v`` with column vectors), glTF's ``matrix`` is column-major.

A quaternion is normalised before it becomes a matrix, and a degenerate one (norm below
:data:`MIN_QUAT_NORM`, zero included) is the identity rotation: that is what the renderer has
always drawn, so scene bounds computed by the validator now match the picture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

Quat = tuple[float, float, float, float]
Vec3 = tuple[float, float, float]
Mat3 = tuple[Vec3, Vec3, Vec3]
Mat4 = tuple[
    tuple[float, float, float, float],
    tuple[float, float, float, float],
    tuple[float, float, float, float],
    tuple[float, float, float, float],
]

IDENTITY_QUAT: Final[Quat] = (0.0, 0.0, 0.0, 1.0)
# Below this norm a quaternion has no direction to normalise to: it is drawn as no rotation.
MIN_QUAT_NORM: Final = 1e-12


def quat_mul(a: Sequence[float], b: Sequence[float]) -> Quat:
    """Hamilton product ``a * b`` of (x, y, z, w) quaternions (``b`` applied first)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


def quat_conj(q: Sequence[float]) -> Quat:
    """The conjugate: the inverse rotation of a unit quaternion."""
    return (-q[0], -q[1], -q[2], q[3])


def quat_rotate(q: Sequence[float], v: Sequence[float]) -> Vec3:
    """``v`` rotated by the unit quaternion ``q``."""
    x, y, z, w = q
    vx, vy, vz = v
    # v' = v + 2w (u x v) + 2 u x (u x v)
    tx, ty, tz = 2 * (y * vz - z * vy), 2 * (z * vx - x * vz), 2 * (x * vy - y * vx)
    return (
        vx + w * tx + (y * tz - z * ty),
        vy + w * ty + (z * tx - x * tz),
        vz + w * tz + (x * ty - y * tx),
    )


def quat_to_rotvec(q: Iterable[float]) -> Vec3:
    """Rotation vector (axis * angle, radians) of a unit quaternion, shortest arc."""
    x, y, z, w = (float(v) for v in q)
    if w < 0:
        x, y, z, w = -x, -y, -z, -w
    s = math.sqrt(x * x + y * y + z * z)
    if s < MIN_QUAT_NORM:
        return (0.0, 0.0, 0.0)
    k = 2.0 * math.atan2(s, w) / s
    return (x * k, y * k, z * k)


def rotvec_to_quat(v: Iterable[float]) -> Quat:
    """The unit quaternion of a rotation vector (axis * angle, radians)."""
    x, y, z = (float(c) for c in v)
    angle = math.sqrt(x * x + y * y + z * z)
    if angle < MIN_QUAT_NORM:
        return IDENTITY_QUAT
    k = math.sin(angle / 2) / angle
    return (x * k, y * k, z * k, math.cos(angle / 2))


def quat_from_axis_angle(axis: Iterable[float], angle_rad: float) -> Quat:
    """Rotation by ``angle_rad`` about ``axis`` (any non-zero length)."""
    ax, ay, az = (float(c) for c in axis)
    n = math.sqrt(ax * ax + ay * ay + az * az)
    if n == 0.0:
        raise ValueError("the rotation axis must not be zero")
    s = math.sin(angle_rad / 2) / n
    return (ax * s, ay * s, az * s, math.cos(angle_rad / 2))


def quat_to_mat3(q: Iterable[float]) -> Mat3:
    """Rotation matrix of ``q`` after normalising it; the identity for a degenerate ``q``."""
    x, y, z, w = (float(v) for v in q)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if n < MIN_QUAT_NORM:
        return ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    x, y, z, w = x / n, y / n, z / n, w / n
    return (
        (1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
        (2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
        (2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)),
    )


def mat3_to_quat(m: Any) -> Quat:
    """The unit quaternion of a 3x3 rotation matrix (rows; a numpy array or nested lists),
    by Shepperd's method: the largest of w, x, y, z is found first, so no division is small."""
    tr = m[0][0] + m[1][1] + m[2][2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        w, x = 0.25 * s, (m[2][1] - m[1][2]) / s
        y, z = (m[0][2] - m[2][0]) / s, (m[1][0] - m[0][1]) / s
    elif m[0][0] > m[1][1] and m[0][0] > m[2][2]:
        s = math.sqrt(1.0 + m[0][0] - m[1][1] - m[2][2]) * 2
        w, x = (m[2][1] - m[1][2]) / s, 0.25 * s
        y, z = (m[0][1] + m[1][0]) / s, (m[0][2] + m[2][0]) / s
    elif m[1][1] > m[2][2]:
        s = math.sqrt(1.0 + m[1][1] - m[0][0] - m[2][2]) * 2
        w, x = (m[0][2] - m[2][0]) / s, (m[0][1] + m[1][0]) / s
        y, z = 0.25 * s, (m[1][2] + m[2][1]) / s
    else:
        s = math.sqrt(1.0 + m[2][2] - m[0][0] - m[1][1]) * 2
        w, x = (m[1][0] - m[0][1]) / s, (m[0][2] + m[2][0]) / s
        y, z = (m[1][2] + m[2][1]) / s, 0.25 * s
    return (float(x), float(y), float(z), float(w))


def _floats(value: Iterable[Any], n: int, what: str) -> list[float]:
    try:
        out = [float(v) for v in value]
    except TypeError as exc:  # a number where a list belongs, or a list inside the list
        raise ValueError(f"{what} must have {n} numbers") from exc
    if len(out) != n:
        raise ValueError(f"{what} must have {n} numbers")
    return out


def node_matrix(node: Mapping[str, Any]) -> Mat4:
    """A glTF node's local 4x4 matrix (math convention): its ``matrix`` (column-major), else
    T * R * S from ``translation``, ``rotation`` and ``scale``. ValueError on a wrong shape."""
    if "matrix" in node:
        m = _floats(node["matrix"], 16, "node.matrix")
        return (
            (m[0], m[4], m[8], m[12]),
            (m[1], m[5], m[9], m[13]),
            (m[2], m[6], m[10], m[14]),
            (m[3], m[7], m[11], m[15]),
        )
    t = _floats(node.get("translation", (0.0, 0.0, 0.0)), 3, "node.translation")
    r = _floats(node.get("rotation", IDENTITY_QUAT), 4, "node.rotation")
    s = _floats(node.get("scale", (1.0, 1.0, 1.0)), 3, "node.scale")
    rot = quat_to_mat3(r)
    return (
        (rot[0][0] * s[0], rot[0][1] * s[1], rot[0][2] * s[2], t[0]),
        (rot[1][0] * s[0], rot[1][1] * s[1], rot[1][2] * s[2], t[1]),
        (rot[2][0] * s[0], rot[2][1] * s[1], rot[2][2] * s[2], t[2]),
        (0.0, 0.0, 0.0, 1.0),
    )
