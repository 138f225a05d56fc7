"""The fidelity benchmark's harness (benchmarks/bench_fidelity.py): our renderer and the
three.js reference, given one small generated scene, agree; and the comparison notices when the
two disagree on the camera. The recorded run over public models is by hand (RESULTS.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from apps.core.testing import load_script
from workers.rendering.camera import CameraPose
from workers.rendering.gltf_builder import GltfBuilder, box, uv_sphere
from workers.rendering.gltf_package import load_package
from workers.rendering.scene import build_scene_data
from workers.rendering.transforms import mat3_to_quat, quat_from_axis_angle, quat_to_mat3

ROOT = Path(__file__).resolve().parents[3]
SIZE = 128
THRESHOLD = 0.9  # the target per model, at full quality


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_fidelity", ROOT / "benchmarks" / "bench_fidelity.py")


def blocks_scene(path: Path) -> Path:
    """Matte blocks and a ball of different colours, placed asymmetrically, so a mirrored,
    turned or wrongly framed view does not look the same."""
    b = GltfBuilder()
    items = [
        ((1.0, 0.25, 1.0), (0.0, -0.125, 0.0), (0.8, 0.8, 0.8, 1.0), "box"),
        ((0.3, 0.6, 0.3), (-0.3, 0.3, -0.2), (0.9, 0.2, 0.1, 1.0), "box"),
        ((0.2, 0.2, 0.5), (0.3, 0.1, 0.25), (0.1, 0.3, 0.9, 1.0), "box"),
        ((0.35, 0.35, 0.35), (0.25, 0.2, -0.3), (0.2, 0.8, 0.2, 1.0), "sphere"),
    ]
    for size, at, colour, kind in items:
        pos, nrm, _uv, idx = box(size) if kind == "box" else uv_sphere(size[0] / 2, 32, 16)
        mat = b.add_material(base_color_factor=colour, metallic_factor=0.0, roughness_factor=1.0)
        b.add_node(mesh=b.add_mesh(pos, normals=nrm, indices=idx, material=mat), translation=at)
    b.write_glb(path)
    return path


def turned(pose: CameraPose, degrees: float) -> CameraPose:
    """The same eye, turned about its own up axis."""
    r = quat_to_mat3(pose.orientation) @ quat_to_mat3(
        quat_from_axis_angle((0.0, 1.0, 0.0), np.radians(degrees))
    )
    return CameraPose(pose.position, mat3_to_quat(r))


@pytest.mark.browser
def test_reference_matches_ours_and_a_wrong_camera_is_caught(
    bench: ModuleType, tmp_path: Path
) -> None:
    path = blocks_scene(tmp_path / "blocks.glb")
    ours = bench.render_ours(path, size=SIZE, fov_y_deg=45.0, frames=1)
    view = ours.view
    reference = bench.ReferenceRenderer()
    with reference.running():
        same = reference.render(path, view, lights=True)
        wrong = {
            "eye turned 3 degrees": reference.render(
                path, replace(view, pose=turned(view.pose, 3.0)), lights=True
            ),
            "vertical FOV 40, not 45": reference.render(
                path, replace(view, fov_y_deg=40.0), lights=True
            ),
        }
    # The reference is a different renderer, so not equal; but on a matte scene under the
    # shared lighting contract it must look the same (0.97 measured).
    assert model_ssim(bench, ours.rgb, same) >= THRESHOLD
    # A camera error of a few degrees, a wrong FOV, or a mirrored image (a flipped axis) is
    # what the comparison exists to catch: each falls far below the threshold (0.36-0.53).
    wrong["mirrored"] = same[:, ::-1]
    for what, image in wrong.items():
        assert model_ssim(bench, ours.rgb, image) < THRESHOLD - 0.2, what


def model_ssim(bench: ModuleType, ours: np.ndarray, reference: np.ndarray) -> float:
    crop = bench.model_crop(ours, reference)
    return float(bench.ssim(bench.luma(ours[crop]), bench.luma(reference[crop])))


def test_models_are_found_as_files_and_one_per_folder(bench: ModuleType, tmp_path: Path) -> None:
    written = bench.write_generated(tmp_path)
    khronos = tmp_path / "Blocks" / "glTF"  # the Khronos layout: Model/glTF/Model.gltf
    khronos.mkdir(parents=True)
    GltfBuilder().write_gltf(khronos / "Blocks.gltf")
    (tmp_path / "notes.txt").write_text("not a model")
    found = bench.find_models(tmp_path)
    assert found == sorted([khronos / "Blocks.gltf", *written])
    assert [bench.model_name(p, tmp_path) for p in found] == [
        "Blocks",
        "gen-AlphaModes",
        "gen-MetalRoughGrid",
        "gen-NormalMap",
    ]
    # The generated models pass the platform's strict reader, with nothing skipped.
    for path in written:
        scene = build_scene_data(load_package(path))
        assert scene.triangles > 0
        assert scene.skipped == [], path.name
