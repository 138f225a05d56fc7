"""Node transforms (glTF: matrix is column-major; TRS is T * R * S, quaternion x, y, z, w)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def quaternion_matrix(q: list[float]) -> npt.NDArray[np.float64]:
    x, y, z, w = q
    norm = x * x + y * y + z * z + w * w
    s = 2.0 / norm if norm > 0 else 0.0
    return np.array(
        [
            [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
            [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
            [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
        ]
    )


def local_matrix(node: dict[str, Any]) -> npt.NDArray[np.float64]:
    """The node's local 4x4 matrix in math convention (M @ column vector)."""
    if "matrix" in node:
        return np.array(node["matrix"], dtype=np.float64).reshape(4, 4).T
    m = np.eye(4)
    rotation = quaternion_matrix(node.get("rotation", [0.0, 0.0, 0.0, 1.0]))
    m[:3, :3] = rotation * np.array(node.get("scale", [1.0, 1.0, 1.0]))[None, :]
    m[:3, 3] = node.get("translation", [0.0, 0.0, 0.0])
    return m
