"""Frustum culling, levels of detail and shader variants: fewer triangles, the same picture."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from workers.rendering.camera import CameraPose
from workers.rendering.culling import ChunkTable, frustum_planes
from workers.rendering.demo_scene import build_demo_scene
from workers.rendering.gltf_builder import GltfBuilder, uv_sphere
from workers.rendering.lod import add_lods
from workers.rendering.renderer import Renderer, load_package_any
from workers.rendering.scene import build_scene_data
from workers.rendering.transforms import look_at_quat, perspective, view_matrix


def view_proj(eye: tuple[float, float, float], target: tuple[float, float, float]) -> np.ndarray:
    q = look_at_quat(np.array(eye), np.array(target))
    return perspective(90.0, 16 / 9, 0.05, 500.0) @ view_matrix(np.array(eye), q)


def dense_sphere(tmp_path: Path, *, centre: tuple[float, float, float]) -> Path:
    b = GltfBuilder()
    mat = b.add_material(base_color_factor=(0.8, 0.2, 0.2, 1.0), roughness_factor=0.5)
    pos, nrm, uv, idx = uv_sphere(0.5, segments=128, rings=64)  # ~16k triangles
    mesh = b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mat)
    b.add_node(mesh=mesh, translation=centre)
    path = tmp_path / "sphere.glb"
    b.write_glb(path)
    return path


def test_frustum_planes_keep_what_is_in_front_and_drop_what_is_behind() -> None:
    planes = frustum_planes(view_proj((0, 0, 0), (0, 0, -1)))
    inside = planes[:, :3] @ np.array([0.0, 0.0, -5.0]) + planes[:, 3]
    behind = planes[:, :3] @ np.array([0.0, 0.0, 5.0]) + planes[:, 3]
    assert (inside > 0).all()
    assert (behind < 0).any()


def test_lods_are_coarser_with_growing_error_and_share_the_vertices(tmp_path: Path) -> None:
    scene = build_scene_data(load_package_any(dense_sphere(tmp_path, centre=(0, 0, -3))))
    with_lods = add_lods(scene)
    (chunk,) = with_lods.chunks
    assert len(chunk.lods) >= 3
    counts = [count for _, count, _ in chunk.lods]
    errors = [error for _, _, error in chunk.lods]
    assert counts == sorted(counts, reverse=True)
    assert counts[-1] < counts[0] // 8
    assert errors[0] == 0.0
    assert errors == sorted(errors)
    assert errors[-1] > 0
    # Same vertex buffer: simplified ranges index into it, nothing was added.
    assert with_lods.vertices is scene.vertices
    for first, count, _ in chunk.lods[1:]:
        assert with_lods.indices[first : first + count].max() < scene.vertices.shape[0]
    assert with_lods.triangles == scene.triangles  # the scene's size is its full detail


def test_far_objects_get_coarse_levels_and_near_ones_full_detail(tmp_path: Path) -> None:
    scene = add_lods(build_scene_data(load_package_any(dense_sphere(tmp_path, centre=(0, 0, 0)))))
    table = ChunkTable(scene, max_error_px=0.5)
    focal_px = 360.0  # 720 px high, 90 degrees
    _, near_level = table.select(view_proj((0, 0, 1.2), (0, 0, 0)), np.array([0, 0, 1.2]), focal_px)
    _, mid_level = table.select(view_proj((0, 0, 60), (0, 0, 0)), np.array([0, 0, 60]), focal_px)
    _, far_level = table.select(view_proj((0, 0, 5000), (0, 0, 0)), np.array([0, 0, 5e3]), 360.0)
    assert near_level[0] == 0
    assert 0 < mid_level[0] < far_level[0]
    assert far_level[0] == len(scene.chunks[0].lods) - 1


def test_culling_draws_only_what_each_eye_can_see(tmp_path: Path) -> None:
    path = tmp_path / "demo.glb"
    build_demo_scene(path, target_triangles=20_000)
    scene = build_scene_data(load_package_any(path))
    table = ChunkTable(scene, max_error_px=0.0)  # full detail: culling alone
    eye = np.array([0.0, 1.6, 0.0])
    table.visible_ranges(view_proj((0, 1.6, 0), (0, 1.6, -1)), eye, 360.0)
    looking_forward = table.triangles_drawn
    assert 0 < looking_forward < scene.triangles * 0.75
    table.visible_ranges(view_proj((0, 1.6, 0), (0, 1.6, 1)), eye, 360.0)
    assert 0 < table.triangles_drawn < scene.triangles * 0.75


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.glb"
    build_demo_scene(path, target_triangles=60_000)
    return path


def test_culled_lod_picture_matches_the_full_detail_picture(demo: Path) -> None:
    """What the optimisations must not change: the picture (mean error well under 1 level
    in 255, no large local differences beyond silhouette pixels)."""
    eye = (1.0, 1.6, 1.5)
    pose = CameraPose(eye, look_at_quat(np.array(eye), np.array([3.0, 1.0, -2.0])))
    images = []
    drawn = []
    for lod in (False, True):
        with Renderer(320, 180, lod=lod) as r:
            r.load_scene(demo)
            images.append(r.render_stereo(pose).rgb().astype(int))
            assert r._culling is not None
            drawn.append(r._culling.triangles_drawn)
    full, fast = images
    diff = np.abs(full - fast)
    assert diff.mean() < 1.0
    assert (diff.max(axis=2) > 48).mean() < 0.01
    assert drawn[1] < drawn[0] / 2  # the right eye drew far fewer triangles


def test_alpha_mask_and_normal_map_variants_still_shade(tmp_path: Path) -> None:
    """Shader variants: a MASK material discards below the cutoff, an OPAQUE one never does."""
    b = GltfBuilder()
    opaque = b.add_material(base_color_factor=(0.1, 0.9, 0.1, 0.2))
    masked = b.add_material(base_color_factor=(0.9, 0.1, 0.1, 0.2), alpha_mode="MASK")
    pos, nrm, uv, idx = uv_sphere(0.5, segments=16, rings=8)
    for material, x in ((opaque, -0.7), (masked, 0.7)):
        mesh = b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=material)
        b.add_node(mesh=mesh, translation=(x, 0, -3))
    path = tmp_path / "variants.glb"
    b.write_glb(path)
    with Renderer(64, 48) as r:
        r.load_scene(path)
        img = r.render_view(CameraPose((0, 0, 0), (0, 0, 0, 1)), fov_y_deg=60).rgb().astype(int)
    left, right = img[:, :32], img[:, 32:]
    assert (left[..., 1] > 100).any()  # the opaque sphere is drawn, alpha ignored
    assert not (right[..., 0] > 100).any()  # the masked one is all below its cutoff
    assert math.isfinite(float(img.mean()))


def test_other_python_threads_run_while_a_frame_renders(demo: Path) -> None:
    """The wait for the GPU (llvmpipe here) releases the GIL: the streaming worker's event loop
    keeps sending packets and taking poses during a render. moderngl's own finish() held it."""
    import threading
    import time

    from workers.rendering import gl_context

    assert gl_context._GL_FINISH is not None
    with Renderer(1280, 720) as r:  # a raster of tens of ms a frame on llvmpipe
        r.load_scene(demo)
        r.render_stereo(CameraPose((0, 1.6, 2), (0, 0, 0, 1)))  # compile shaders first
        ticks: list[float] = []
        done = threading.Event()

        def render() -> None:
            for i in range(4):
                r.render_stereo(CameraPose((0.1 * i, 1.6, 2), (0, 0, 0, 1))).rgb()
            done.set()

        worker = threading.Thread(target=render)
        start = time.perf_counter()
        worker.start()
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)
        worker.join()
        elapsed = time.perf_counter() - start
    # With the GIL held for each frame's raster time this thread got a turn or two a frame
    # (one per 30+ ms); released, it ticks every millisecond or few even on a loaded machine.
    assert len(ticks) > elapsed * 1000 / 10
    assert np.median(np.diff(ticks)) < 0.01
