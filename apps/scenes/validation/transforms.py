"""Node transforms for scene stats and repairs: the renderer's own maths
(:mod:`workers.protocol.geometry`), so the bounds the validator reports are those of what is
drawn (a zero or degenerate rotation quaternion is the identity, as the renderer draws it).

glTF: ``matrix`` is column-major; TRS is T * R * S, quaternion x, y, z, w.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from workers.protocol.geometry import node_matrix


def local_matrix(node: dict[str, Any]) -> npt.NDArray[np.float64]:
    """The node's local 4x4 matrix in math convention (M @ column vector)."""
    return np.array(node_matrix(node))
