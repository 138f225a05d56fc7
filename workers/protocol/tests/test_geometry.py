"""The shared quaternion maths agrees with itself: products, matrices and rotation vectors
describe the same rotations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workers.protocol.geometry import (
    mat3_to_quat,
    node_matrix,
    quat_conj,
    quat_from_axis_angle,
    quat_mul,
    quat_rotate,
    quat_to_mat3,
    quat_to_rotvec,
    rotvec_to_quat,
)

A = quat_from_axis_angle((1.0, 2.0, 3.0), 0.7)
B = quat_from_axis_angle((0.0, 1.0, 0.0), -1.9)


def test_product_is_composition_of_matrices() -> None:
    np.testing.assert_allclose(
        quat_to_mat3(quat_mul(A, B)), np.array(quat_to_mat3(A)) @ quat_to_mat3(B), atol=1e-12
    )
    np.testing.assert_allclose(quat_mul(A, quat_conj(A)), (0.0, 0.0, 0.0, 1.0), atol=1e-12)


def test_rotate_matches_the_matrix() -> None:
    v = (0.3, -1.0, 2.5)
    np.testing.assert_allclose(quat_rotate(A, v), np.array(quat_to_mat3(A)) @ v, atol=1e-12)


def test_rotation_vector_round_trip() -> None:
    rotvec = quat_to_rotvec(A)
    assert math.hypot(*rotvec) == pytest.approx(0.7)
    np.testing.assert_allclose(rotvec_to_quat(rotvec), A, atol=1e-12)
    assert quat_to_rotvec((0.0, 0.0, 0.0, 1.0)) == (0.0, 0.0, 0.0)


def test_matrix_to_quaternion_round_trip() -> None:
    for q in (A, B, quat_from_axis_angle((0.0, 0.0, 1.0), math.pi)):
        back = mat3_to_quat(quat_to_mat3(q))
        assert abs(float(np.dot(back, q))) == pytest.approx(1.0)  # q and -q: one rotation


def test_degenerate_quaternion_is_no_rotation() -> None:
    identity = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    assert quat_to_mat3((0.0, 0.0, 0.0, 0.0)) == identity
    assert quat_to_mat3((1e-13, 0.0, 0.0, 0.0)) == identity


def test_node_matrix_reads_column_major_and_rejects_wrong_shapes() -> None:
    m = np.arange(16.0)
    np.testing.assert_array_equal(node_matrix({"matrix": list(m)}), m.reshape(4, 4).T)
    for node in ({"matrix": [1.0] * 15}, {"rotation": [0.0, 0.0, 1.0]}, {"scale": 2.0}):
        with pytest.raises(ValueError, match="must have"):
            node_matrix(node)
