"""Generated glTF files that the official Khronos glTF-Validator rejects, one per error class
that our own checks used to let through (accessor bounds, invalid floats, empty arrays, animation
samplers, duplicate or matrix animation targets), plus a valid animated scene. Written into a
directory the caller owns; nothing binary is committed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workers.rendering.gltf_builder import UNSIGNED_SHORT, GltfBuilder, box, write_glb

Mutate = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class InvalidCase:
    name: str
    make: Callable[[Path], Path]
    code: str  # the validator's issue code
    pointer: str  # and its JSON pointer


def animated_box(
    *, times: tuple[float, ...] = (0.0, 1.0, 2.0), input_type: int | None = None
) -> tuple[dict[str, Any], bytes]:
    """A box whose node slides along x and back (node TRS animation, linear)."""
    b = GltfBuilder()
    positions, normals, uvs, indices = box()
    mesh = b.add_mesh(positions, normals=normals, uvs=uvs, indices=indices)
    b.add_node(mesh=mesh, translation=(0.0, 0.0, 0.0), name="slider")
    n = len(times)
    values = np.zeros((n, 3), np.float32)
    values[:, 0] = [math.sin(math.pi * t / max(times[-1], 1e-6)) for t in times]
    t_acc = b.add_accessor(np.asarray(times), target=None, component_type=input_type)
    v_acc = b.add_accessor(values, target=None, with_bounds=False)
    doc, bin_chunk = b.to_document_and_bin()
    doc["animations"] = [
        {
            "name": "slide",
            "samplers": [{"input": t_acc, "output": v_acc, "interpolation": "LINEAR"}],
            "channels": [{"sampler": 0, "target": {"node": 0, "path": "translation"}}],
        }
    ]
    return doc, bin_chunk


def _glb(
    doc_and_bin: Callable[[], tuple[dict[str, Any], bytes]], mutate: Mutate | None = None
) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        doc, bin_chunk = doc_and_bin()
        if mutate is not None:
            mutate(doc)
        root.mkdir(parents=True, exist_ok=True)
        path = root / "scene.glb"
        write_glb(doc, bin_chunk, path)
        return path

    return make


def _box_with(positions: np.ndarray) -> Callable[[], tuple[dict[str, Any], bytes]]:
    def build() -> tuple[dict[str, Any], bytes]:
        b = GltfBuilder()
        _, normals, uvs, indices = box()
        mesh = b.add_mesh(positions, normals=normals, uvs=uvs, indices=indices)
        b.add_node(mesh=mesh)
        return b.to_document_and_bin()

    return build


def _shrink_max(doc: dict[str, Any]) -> None:
    doc["accessors"][0]["max"] = [0.25, 0.5, 0.5]


def _nan_positions() -> np.ndarray:
    positions = np.array(box()[0], np.float32).reshape(-1, 3)
    positions[3, 1] = np.nan
    return positions


def _finite_bounds(doc: dict[str, Any]) -> None:
    # The declared bounds stay valid JSON numbers; only the data holds the NaN.
    doc["accessors"][0]["min"] = [-0.5, -0.5, -0.5]
    doc["accessors"][0]["max"] = [0.5, 0.5, 0.5]


def _empty_materials(doc: dict[str, Any]) -> None:
    doc["materials"] = []


def _duplicate_target(doc: dict[str, Any]) -> None:
    doc["animations"][0]["channels"].append(
        {"sampler": 0, "target": {"node": 0, "path": "translation"}}
    )


def _matrix_node(doc: dict[str, Any]) -> None:
    node = doc["nodes"][0]
    node.pop("translation", None)
    node["matrix"] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]


def _short_output(doc: dict[str, Any]) -> None:
    doc["accessors"][doc["animations"][0]["samplers"][0]["output"]]["count"] = 2


INVALID_CASES: list[InvalidCase] = [
    InvalidCase(
        "accessor_max_mismatch",
        _glb(_box_with(np.array(box()[0], np.float32)), _shrink_max),
        "ACCESSOR_MAX_MISMATCH",
        "/accessors/0/max/0",
    ),
    InvalidCase(
        "accessor_invalid_float",
        _glb(_box_with(_nan_positions()), _finite_bounds),
        "ACCESSOR_INVALID_FLOAT",
        "/accessors/0",
    ),
    InvalidCase(
        "empty_array",
        _glb(_box_with(np.array(box()[0], np.float32)), _empty_materials),
        "EMPTY_ENTITY",
        "/materials",
    ),
    InvalidCase(
        "sampler_input_not_float",
        _glb(lambda: animated_box(times=(0, 1, 2), input_type=UNSIGNED_SHORT)),
        "ANIMATION_SAMPLER_INPUT_ACCESSOR_INVALID_FORMAT",
        "/animations/0/samplers/0/input",
    ),
    InvalidCase(
        "sampler_input_not_increasing",
        _glb(lambda: animated_box(times=(0.0, 2.0, 1.0))),
        "ACCESSOR_ANIMATION_INPUT_NON_INCREASING",
        "/animations/0/samplers/0/input",
    ),
    InvalidCase(
        "sampler_output_count",
        _glb(animated_box, _short_output),
        "ANIMATION_SAMPLER_OUTPUT_ACCESSOR_INVALID_COUNT",
        "/animations/0/channels/0/sampler",
    ),
    InvalidCase(
        "duplicate_animation_target",
        _glb(animated_box, _duplicate_target),
        "ANIMATION_DUPLICATE_TARGETS",
        "/animations/0/channels/0/target",
    ),
    InvalidCase(
        "animated_matrix_node",
        _glb(animated_box, _matrix_node),
        "ANIMATION_CHANNEL_TARGET_NODE_MATRIX",
        "/animations/0/channels/0/target",
    ),
]


def make_animated(root: Path) -> Path:
    return _glb(animated_box)(root)
