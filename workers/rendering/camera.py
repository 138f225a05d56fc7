"""Where the renderer draws from: a camera pose, and the framing that fits a scene in view.

A :class:`CameraPose` is camera-to-world: a position and a quaternion [x, y, z, w]; the camera
looks down -Z with +Y up (WebXR/glTF convention). ``Renderer.render_stereo`` offsets the two
eyes from it by the IPD; ``render_view`` draws from it as it is. It is not the wire pose
(``workers.protocol.Pose``: a viewer's head with hands and inputs, ``p``/``q``), which the
streaming worker turns into one of these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from workers.rendering.transforms import look_at_quat

F64 = npt.NDArray[np.float64]
Vec3 = Sequence[float] | npt.NDArray[Any]
Quat = Sequence[float] | npt.NDArray[Any]


@dataclass(frozen=True)
class CameraPose:
    """A camera's position and orientation (camera-to-world, [x, y, z, w])."""

    position: Vec3 = (0.0, 0.0, 0.0)
    orientation: Quat = (0.0, 0.0, 0.0, 1.0)  # [x, y, z, w]


def frame_bounds_pose(
    bounds_min: F64, bounds_max: F64, fov_y_deg: float, aspect: float
) -> tuple[CameraPose, float, float]:
    """A pose looking at the bounds from the front-upper-right that fits them in view, with
    matching near/far planes."""
    centre = (bounds_min + bounds_max) / 2
    radius = max(float(np.linalg.norm(bounds_max - bounds_min)) / 2, 1e-3)
    half_fov = math.radians(fov_y_deg) / 2
    half_fov = min(half_fov, math.atan(math.tan(half_fov) * aspect))
    dist = radius / math.sin(half_fov) * 1.02
    direction = np.array([0.55, 0.45, 1.0])
    eye = centre + direction / np.linalg.norm(direction) * dist
    near = max(dist - radius * 1.5, radius * 1e-3)
    return CameraPose(tuple(eye), look_at_quat(eye, centre)), near, dist + radius * 1.5
