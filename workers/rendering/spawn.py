"""Where a viewer starts in a scene, and how big the viewer is there: computed at processing time
(``apps/scenes/processing.py``), stored with the version's stats, sent to clients with the
session and applied by ``static/client/js/viewer.js`` (desktop camera and the XR origin).

The rule, in order:

1. **A glTF camera.** The scene's first camera node (in node order, of the default scene), or the
   one the creator picks: the viewer's eye starts at the camera, looking where it looks (yaw and
   pitch; roll is dropped, a headset cannot roll the world).
2. **A spawn point the creator sets** (position, yaw, pitch): resolved by the platform, not here.
3. **Otherwise, outside the bounds**, framed as the thumbnail frames them: the same
   :func:`workers.rendering.camera.frame_bounds_pose` (same direction, front-upper-right,
   looking at the centre), fitted to a 75-degree view rather than the thumbnail's 45: the
   viewer sees 90 degrees (desktop) or about that (headsets), so the scene fills most of the
   view as it fills the thumbnail, with a margin, and the eye stays outside its bounding sphere.

**Scale** (``scale``: scene units per metre of the viewer). glTF units are metres, and a scene
up to ``HUMAN_SCALE_DIAGONAL`` units across (an object, a room, a courtyard) is taken as
authored: ``scale = 1``. A bigger one is almost always a model exported in centimetres (Fox:
79 units tall; FBX from 3ds Max, Maya, Mixamo), so ``scale = 100``: the viewer's eye height,
walking speed and eye separation are 100 times larger in scene units, and the fox looks 79 cm
tall rather than a 79-metre giant, on the desktop and in the headset alike. A creator whose big
scene really is in metres (a city) sets the scale to 1 on the scene page.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from workers.rendering.camera import frame_bounds_pose  # the thumbnail's framing
from workers.rendering.scene import MAX_NODE_DEPTH
from workers.rendering.transforms import node_local_matrix

F64 = npt.NDArray[np.float64]

HUMAN_SCALE_DIAGONAL = 50.0  # units: larger scenes are taken as authored in centimetres
CENTIMETRES = 100.0
EYE_HEIGHT_M = 1.6  # a standing viewer's eye above the floor, in metres
FRAMING_FOV_Y_DEG = 75.0  # the scene's sphere fills about 80% of a 90-degree view's height
FRAMING_ASPECT = 16 / 9  # as the thumbnail (512x288)
MAX_CAMERAS = 16


def yaw_pitch(forward: F64) -> tuple[float, float]:
    """Yaw about +Y (0: looking down -Z) and pitch (up positive) of a direction, as the client's
    ``quatFromYawPitch`` takes them."""
    x, y, z = (float(v) for v in forward)
    return math.atan2(-x, -z), math.atan2(y, math.hypot(x, z))


def scene_scale(bounds_min: F64, bounds_max: F64) -> float:
    diagonal = float(np.linalg.norm(np.asarray(bounds_max) - np.asarray(bounds_min)))
    return CENTIMETRES if diagonal > HUMAN_SCALE_DIAGONAL else 1.0


def cameras(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of the default scene that holds a camera, in node order (at most
    ``MAX_CAMERAS``): its name, eye position and view direction as yaw and pitch."""
    nodes = document.get("nodes") or []
    scenes = document.get("scenes") or []
    if scenes:
        roots = list(scenes[int(document.get("scene", 0))].get("nodes", []))
    else:
        children = {c for n in nodes for c in n.get("children", [])}
        roots = [i for i in range(len(nodes)) if i not in children]
    found: list[tuple[int, F64]] = []
    stack: list[tuple[int, F64, int]] = [(int(r), np.eye(4), 0) for r in reversed(roots)]
    seen: set[int] = set()
    while stack:
        index, parent, depth = stack.pop()
        if index in seen or depth > MAX_NODE_DEPTH or not 0 <= index < len(nodes):
            continue
        seen.add(index)
        node = nodes[index]
        world = parent @ node_local_matrix(node)
        if "camera" in node:
            found.append((index, world))
        stack.extend((int(c), world, depth + 1) for c in reversed(node.get("children", [])))
    out: list[dict[str, Any]] = []
    for index, world in sorted(found, key=lambda f: f[0])[:MAX_CAMERAS]:
        forward = world[:3, :3] @ np.array([0.0, 0.0, -1.0])  # a glTF camera looks down -Z
        if float(np.linalg.norm(forward)) < 1e-9:
            continue
        yaw, pitch = yaw_pitch(forward)
        name = nodes[index].get("name")
        out.append(
            {
                "node": index,
                "name": name[:128] if isinstance(name, str) and name else f"Camera {len(out)}",
                "position": [round(float(v), 6) for v in world[:3, 3]],
                "yaw": round(yaw, 6),
                "pitch": round(pitch, 6),
            }
        )
    return out


def compute_spawn(document: dict[str, Any], bounds_min: F64, bounds_max: F64) -> dict[str, Any]:
    """The spawn data stored with a version: the default start (``source`` camera or bounds),
    the framing start (``framing``, always there, for a creator who prefers it), the cameras a
    creator may pick, and the scale. Positions are the viewer's *eye*, in scene units."""
    lo, hi = np.asarray(bounds_min, np.float64), np.asarray(bounds_max, np.float64)
    pose, _, _ = frame_bounds_pose(lo, hi, FRAMING_FOV_Y_DEG, FRAMING_ASPECT)
    eye = np.asarray(pose.position, np.float64)
    yaw, pitch = yaw_pitch((lo + hi) / 2 - eye)
    framing = {
        "position": [round(float(v), 6) for v in eye],
        "yaw": round(yaw, 6),
        "pitch": round(pitch, 6),
    }
    found = cameras(document)
    start = (
        {"source": "camera", "camera": 0, **{k: found[0][k] for k in ("position", "yaw", "pitch")}}
        if found
        else {"source": "bounds", **framing}
    )
    return {
        **start,
        "scale": scene_scale(lo, hi),
        "framing": framing,
        "cameras": found,
    }
