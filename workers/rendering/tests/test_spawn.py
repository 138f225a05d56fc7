"""Where viewers start (workers/rendering/spawn.py): a glTF camera, else outside the bounds
framed as the thumbnail, with a scale that keeps a centimetre-authored model life-size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workers.rendering.spawn import CENTIMETRES, compute_spawn, yaw_pitch


def _forward(yaw: float, pitch: float) -> np.ndarray:
    """The client's quatFromYawPitch applied to -Z."""
    return np.array(
        [-math.sin(yaw) * math.cos(pitch), math.sin(pitch), -math.cos(yaw) * math.cos(pitch)]
    )


def test_the_first_camera_node_is_honoured_through_its_parents() -> None:
    s = math.sin(math.pi / 4)
    doc = {
        "scene": 0,
        "scenes": [{"nodes": [0, 2]}],
        "nodes": [
            {"name": "rig", "translation": [10, 0, 0], "children": [1]},
            # Turned 90 degrees left (about +Y): looks down -X.
            {"name": "Overview", "camera": 0, "translation": [0, 2, 5], "rotation": [0, s, 0, s]},
            {"name": "Second", "camera": 0},
        ],
        "cameras": [{"type": "perspective", "perspective": {"yfov": 1.0, "znear": 0.1}}],
    }
    spawn = compute_spawn(doc, np.array([-1.0, 0, -1]), np.array([1.0, 2, 1]))
    assert spawn["source"] == "camera"
    assert spawn["position"] == pytest.approx([10, 2, 5])
    assert _forward(spawn["yaw"], spawn["pitch"]) == pytest.approx([-1, 0, 0], abs=1e-6)
    assert [c["name"] for c in spawn["cameras"]] == ["Overview", "Second"]
    assert spawn["scale"] == 1.0
    assert spawn["framing"]["position"] != spawn["position"]


def test_without_a_camera_the_viewer_starts_outside_the_bounds_looking_at_them() -> None:
    lo, hi = np.array([-1.0, 0.0, -0.5]), np.array([1.0, 1.5, 0.5])
    spawn = compute_spawn({"nodes": []}, lo, hi)
    assert spawn["source"] == "bounds"
    eye = np.array(spawn["position"])
    assert ((eye < lo) | (eye > hi)).any()  # outside the box
    radius = np.linalg.norm(hi - lo) / 2
    assert np.linalg.norm(eye - (lo + hi) / 2) > radius  # outside its bounding sphere too
    to_centre = (lo + hi) / 2 - eye
    forward = _forward(spawn["yaw"], spawn["pitch"])
    assert forward == pytest.approx(to_centre / np.linalg.norm(to_centre), abs=1e-6)
    assert spawn["scale"] == 1.0


def test_a_centimetre_scene_is_not_a_giant() -> None:
    """Fox-sized (79 units tall, 150 long): taken as centimetres, the viewer is scaled by 100
    (eye height 160 units), and starts outside it, not inside."""
    lo, hi = np.array([-15.0, 0.0, -75.0]), np.array([15.0, 79.0, 75.0])
    spawn = compute_spawn({"nodes": []}, lo, hi)
    assert spawn["scale"] == CENTIMETRES
    eye = np.array(spawn["position"])
    assert ((eye < lo) | (eye > hi)).any()
    # A metre-sized scene keeps scale 1.
    assert compute_spawn({"nodes": []}, lo / 100, hi / 100)["scale"] == 1.0


def test_yaw_pitch_convention() -> None:
    assert yaw_pitch(np.array([0.0, 0, -1])) == pytest.approx((0.0, 0.0))
    yaw, pitch = yaw_pitch(np.array([1.0, 1.0, 0.0]))
    assert _forward(yaw, pitch) == pytest.approx(np.array([1, 1, 0]) / math.sqrt(2))
