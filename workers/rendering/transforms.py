"""Small 3D math helpers (numpy, float64, math convention: ``M @ v`` with column vectors).

Conventions follow glTF/WebXR/OpenGL: right-handed, +Y up, the camera looks down -Z,
quaternions are [x, y, z, w], clip space z in [-1, 1]. Quaternion and node-transform maths
is defined once, in :mod:`workers.protocol.geometry` (the scene validator uses it too); the
functions here are its numpy face.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from workers.protocol import geometry
from workers.protocol.geometry import mat3_to_quat, quat_from_axis_angle

F64 = npt.NDArray[np.float64]
VecLike = Sequence[float] | npt.NDArray[Any]

__all__ = [
    "as_matrix4",
    "frustum_from_tangents",
    "look_at_quat",
    "mat3_to_quat",
    "node_local_matrix",
    "perspective",
    "pose_matrix",
    "quat_from_axis_angle",
    "quat_to_mat3",
    "view_matrix",
]


def quat_to_mat3(q: VecLike) -> F64:
    """Rotation matrix of ``q`` (normalised; the identity for a degenerate ``q``): the shared
    definition of :mod:`workers.protocol.geometry` as a numpy array."""
    return np.array(geometry.quat_to_mat3(q))


def node_local_matrix(node: Mapping[str, Any]) -> F64:
    """A glTF node's local 4x4 matrix (:func:`workers.protocol.geometry.node_matrix`), the one
    the renderer draws and the scene validator bounds. ValueError on a wrong shape."""
    return np.array(geometry.node_matrix(node))


def look_at_quat(
    eye: VecLike, target: VecLike, up: VecLike = (0.0, 1.0, 0.0)
) -> tuple[float, float, float, float]:
    """Orientation of a camera at ``eye`` looking at ``target`` (camera -Z towards target)."""
    e, t, u = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    back = e - t
    back /= np.linalg.norm(back)
    right = np.cross(u, back)
    if np.linalg.norm(right) < 1e-9:  # looking straight up/down: pick another up
        right = np.cross(np.array([0.0, 0.0, 1.0]), back)
    right /= np.linalg.norm(right)
    true_up = np.cross(back, right)
    return mat3_to_quat(np.stack([right, true_up, back], axis=1))


def pose_matrix(position: VecLike, orientation: VecLike) -> F64:
    """Local-to-world matrix of a pose."""
    m = np.eye(4)
    m[:3, :3] = quat_to_mat3(orientation)
    m[:3, 3] = np.asarray(position, dtype=np.float64)
    return m


def view_matrix(position: VecLike, orientation: VecLike) -> F64:
    """World-to-camera matrix for a camera pose (the inverse of its pose matrix)."""
    r = quat_to_mat3(orientation)
    m = np.eye(4)
    m[:3, :3] = r.T
    m[:3, 3] = -r.T @ np.asarray(position, dtype=np.float64)
    return m


def perspective(fov_y_deg: float, aspect: float, near: float, far: float) -> F64:
    f = 1.0 / math.tan(math.radians(fov_y_deg) / 2)
    m = np.zeros((4, 4))
    m[0, 0] = f / aspect
    m[1, 1] = f
    m[2, 2] = (far + near) / (near - far)
    m[2, 3] = 2 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def frustum_from_tangents(
    left: float, right: float, down: float, up: float, near: float, far: float
) -> F64:
    """Asymmetric projection from the tangents of the half angles (OpenXR-style fov:
    ``left``/``down`` usually negative)."""
    m = np.zeros((4, 4))
    m[0, 0] = 2 / (right - left)
    m[0, 2] = (right + left) / (right - left)
    m[1, 1] = 2 / (up - down)
    m[1, 2] = (up + down) / (up - down)
    m[2, 2] = (far + near) / (near - far)
    m[2, 3] = 2 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def as_matrix4(m: VecLike) -> F64:
    """A 4x4 numpy array is taken as is (math convention); a flat sequence of 16 numbers is
    taken as column-major, the way WebXR's ``projectionMatrix`` and glTF store matrices."""
    a = np.asarray(m, dtype=np.float64)
    if a.shape == (4, 4):
        return a
    if a.size == 16:
        return a.reshape(4, 4).T
    raise ValueError("expected a 4x4 matrix or 16 numbers")
