"""The validator bounds a scene with the renderer's own node transforms.

Both take a node's matrix from :mod:`workers.protocol.geometry`: a zero (or degenerate)
rotation quaternion is no rotation, as the renderer has always drawn it, and a quaternion that
is not unit length is normalised, so the bounds the validator stores are those of the picture.
(Before, the validator turned a non-zero quaternion of norm below 1e-12 into a half-turn where
the renderer drew none.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from apps.scenes.validation import GltfLimits, validate_package
from apps.scenes.validation.transforms import local_matrix
from workers.rendering.gltf_builder import GltfBuilder, box
from workers.rendering.gltf_package import load_package
from workers.rendering.scene import build_scene_data
from workers.rendering.transforms import node_local_matrix, quat_to_mat3

QUATERNIONS = {
    "zero": (0.0, 0.0, 0.0, 0.0),
    "degenerate": (1e-13, 0.0, 0.0, 0.0),
    "not_normalised": (0.0, 0.0, 2.0, 2.0),  # 90 degrees about z, twice too long
    "unit": (0.0, 0.0, float(np.sqrt(0.5)), float(np.sqrt(0.5))),
}


@pytest.mark.parametrize("q", QUATERNIONS.values(), ids=QUATERNIONS.keys())
def test_validator_and_renderer_agree_on_a_node_matrix(q: tuple[float, ...]) -> None:
    node = {"translation": [1.0, 2.0, 3.0], "rotation": list(q), "scale": [2.0, 1.0, 0.5]}
    validated = local_matrix(node)
    drawn = node_local_matrix(node)
    np.testing.assert_allclose(validated, drawn, atol=1e-12)
    np.testing.assert_allclose(validated[:3, :3], quat_to_mat3(q) * [2.0, 1.0, 0.5], atol=1e-12)


def test_a_zero_quaternion_is_no_rotation() -> None:
    node = {"rotation": [0.0, 0.0, 0.0, 0.0], "scale": [2.0, 1.0, 0.5]}
    np.testing.assert_allclose(local_matrix(node), np.diag([2.0, 1.0, 0.5, 1.0]))
    np.testing.assert_allclose(node_local_matrix(node), np.diag([2.0, 1.0, 0.5, 1.0]))


@pytest.mark.parametrize("name", ["zero", "degenerate", "not_normalised"])
def test_validator_bounds_are_the_drawn_bounds(name: str, tmp_path: Path) -> None:
    pos, nrm, _uv, idx = box((2.0, 1.0, 1.0))
    b = GltfBuilder()
    mesh = b.add_mesh(pos, normals=nrm, indices=idx)
    b.add_node(mesh=mesh, rotation=QUATERNIONS[name], translation=(0.0, 0.0, 5.0))
    path = tmp_path / "scene.glb"
    b.write_glb(path)

    report = validate_package(path, limits=GltfLimits())
    drawn = build_scene_data(load_package(path))

    assert report.stats.bounds_min == pytest.approx(list(drawn.bounds_min), abs=1e-5)
    assert report.stats.bounds_max == pytest.approx(list(drawn.bounds_max), abs=1e-5)
    half = (0.5, 1.0, 0.5) if name == "not_normalised" else (1.0, 0.5, 0.5)  # 90 deg about z
    assert drawn.bounds_max == pytest.approx([half[0], half[1], 5.0 + half[2]], abs=1e-5)
