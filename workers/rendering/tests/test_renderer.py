"""Pixel tests of the renderer on small images (fast on llvmpipe)."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from workers.rendering.camera import CameraPose
from workers.rendering.demo_scene import build_demo_scene, png_bytes
from workers.rendering.gl_context import renderer_info
from workers.rendering.gltf_builder import GltfBuilder, box, write_glb
from workers.rendering.renderer import Avatar, Renderer, thumbnail
from workers.rendering.transforms import frustum_from_tangents, quat_from_axis_angle

W, H = 64, 48
BG = (15, 18, 26)  # Lighting().background as bytes
ORIGIN = CameraPose((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))


@pytest.fixture(scope="module")
def renderer() -> Iterator[Renderer]:
    r = Renderer(W, H)
    yield r
    r.close()


def red_cube(tmp_path: Path, *, parent_offset: tuple[float, float, float] = (0, 0, 0)) -> Path:
    b = GltfBuilder()
    mat = b.add_material(base_color_factor=(1, 0, 0, 1))
    pos, nrm, uv, idx = box()
    mesh = b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mat)
    parent = b.add_node(translation=parent_offset, name="parent")
    b.add_node(mesh=mesh, parent=parent, translation=(0, 0, -3))
    path = tmp_path / "cube.glb"
    b.write_glb(path)
    return path


def is_red(px: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    p = px.astype(int)
    return (p[..., 0] > 150) & (p[..., 1] < 80) & (p[..., 2] < 80)


def is_bg(px: npt.NDArray[np.uint8]) -> bool:
    return bool(np.all(np.abs(px.astype(int) - BG) <= 1))


def red_centroid_x(img: npt.NDArray[np.uint8]) -> float:
    cols = np.nonzero(is_red(img))[1]
    assert cols.size > 0, "no red pixels"
    return float(cols.mean())


def test_renderer_info_names_the_gl_renderer() -> None:
    info = renderer_info()
    assert isinstance(info, str)
    assert info
    with Renderer(8, 8) as r:
        assert r.info == info
        assert r.software == ("llvmpipe" in info.lower())


def test_red_cube_in_front_is_red_in_the_centre_and_background_elsewhere(
    renderer: Renderer, tmp_path: Path
) -> None:
    renderer.load_scene(red_cube(tmp_path))
    img = renderer.render_view(ORIGIN, fov_y_deg=60).rgb()
    assert img.shape == (H, W, 3)
    assert img.dtype == np.uint8
    assert is_red(img[H // 2, W // 2])
    for y, x in ((0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1)):
        assert is_bg(img[y, x]), img[y, x]


def test_top_row_comes_first(renderer: Renderer, tmp_path: Path) -> None:
    # A cube above the view axis must appear in the upper half of the array.
    b = GltfBuilder()
    mat = b.add_material(base_color_factor=(1, 0, 0, 1))
    pos, nrm, _uv, idx = box((0.5, 0.5, 0.5))
    b.add_node(
        mesh=b.add_mesh(pos, normals=nrm, indices=idx, material=mat), translation=(0, 0.8, -3)
    )
    b.write_glb(tmp_path / "up.glb")
    renderer.load_scene(tmp_path / "up.glb")
    rows = np.nonzero(is_red(renderer.render_view(ORIGIN, fov_y_deg=60).rgb()))[0]
    assert rows.size > 0
    assert rows.max() < H // 2


def test_moving_and_rotating_the_pose_changes_the_image(renderer: Renderer, tmp_path: Path) -> None:
    renderer.load_scene(red_cube(tmp_path))
    centred = red_centroid_x(renderer.render_view(ORIGIN, fov_y_deg=60).rgb().copy())
    # Camera moves right: the cube moves left in the image.
    moved = renderer.render_view(CameraPose((0.5, 0, 0), (0, 0, 0, 1)), fov_y_deg=60).rgb()
    assert red_centroid_x(moved) < centred - 3
    # Camera turns 90 degrees to the left: the cube leaves the view.
    turned = renderer.render_view(
        CameraPose((0, 0, 0), quat_from_axis_angle((0, 1, 0), math.pi / 2)), fov_y_deg=60
    ).rgb()
    assert not is_red(turned).any()
    # Turning a little left moves the cube right.
    yawed = renderer.render_view(
        CameraPose((0, 0, 0), quat_from_axis_angle((0, 1, 0), 0.15)), fov_y_deg=60
    ).rgb()
    assert red_centroid_x(yawed) > centred + 3


def test_stereo_frame_has_both_eyes_with_parallax(renderer: Renderer, tmp_path: Path) -> None:
    renderer.load_scene(red_cube(tmp_path))
    frame = renderer.render_stereo(ORIGIN, ipd=0.3, fov_y_deg=90)
    img = frame.rgb()
    assert img.shape == (H, 2 * W, 3)
    left, right = img[:, :W], img[:, W:]
    assert is_red(left[H // 2, W // 2])
    assert is_red(right[H // 2, W // 2])
    assert not np.array_equal(left, right)
    # The left eye sits left of centre, so it sees the cube right of its own centre.
    assert red_centroid_x(left) > red_centroid_x(right) + 1
    assert frame.render_ms > 0
    assert frame.readback_ms > 0


def test_stereo_projection_matrices_accept_webxr_column_major_and_asymmetric(
    renderer: Renderer, tmp_path: Path
) -> None:
    renderer.load_scene(red_cube(tmp_path))
    # Asymmetric frusta shifted outward, like a headset's per-eye views.
    lp = frustum_from_tangents(-1.2, 0.8, -0.75, 0.75, 0.05, 100)
    rp = frustum_from_tangents(-0.8, 1.2, -0.75, 0.75, 0.05, 100)
    as_numpy = renderer.render_stereo(ORIGIN, ipd=0.0, projections=(lp, rp)).rgb().copy()
    column_major = (lp.T.reshape(-1).tolist(), rp.T.reshape(-1).tolist())
    as_lists = renderer.render_stereo(ORIGIN, ipd=0.0, projections=column_major).rgb()
    assert np.array_equal(as_numpy, as_lists)
    # With zero IPD only the frusta differ: left frustum looks further left, so the cube
    # (dead ahead) sits right of centre in the left eye.
    assert red_centroid_x(as_numpy[:, :W]) > W / 2 + 2
    assert red_centroid_x(as_numpy[:, W:]) < W / 2 - 2


def rgb_to_i420(img: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Reference BT.601 limited-range conversion, chroma = mean of 2x2 blocks."""
    f = img.astype(np.float64) / 255.0
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    h, w = img.shape[:2]
    m = f.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    u = 128 - 37.797 * m[..., 0] - 74.203 * m[..., 1] + 112.0 * m[..., 2]
    v = 128 + 112.0 * m[..., 0] - 93.786 * m[..., 1] - 18.214 * m[..., 2]
    planes = [np.rint(p).clip(0, 255).astype(np.uint8).reshape(-1) for p in (y, u, v)]
    return np.concatenate(planes)


def test_gpu_i420_matches_numpy_conversion_of_the_rgb_readback(
    renderer: Renderer, tmp_path: Path
) -> None:
    scene = tmp_path / "demo.glb"
    build_demo_scene(scene, target_triangles=5_000)
    renderer.load_scene(scene)
    frame = renderer.render_stereo(CameraPose((0, 1.6, 3), (0, 0, 0, 1)))
    rgb = frame.rgb().copy()
    yuv = frame.i420().copy()
    assert yuv.shape == (2 * W * H * 3 // 2,)
    expected = rgb_to_i420(rgb)
    diff = np.abs(yuv.astype(int) - expected.astype(int))
    assert diff.max() <= 2, diff.max()
    assert np.ptp(yuv[: 2 * W * H]) > 50  # a real image, not a constant
    y, u, v = frame.i420(planes=True)
    assert y.shape == (H, 2 * W)
    assert u.shape == v.shape == (H // 2, W)
    assert np.array_equal(np.concatenate([y.ravel(), u.ravel(), v.ravel()]), yuv)
    out = np.empty_like(yuv)
    assert frame.i420(out=out) is out
    # Odd chroma widths and heights that are not multiples of 4 take the per-byte path.
    odd = renderer.render_view(CameraPose((0, 1.6, 3), (0, 0, 0, 1)), width=84, height=46)
    diff = np.abs(odd.i420().astype(int) - rgb_to_i420(odd.rgb()).astype(int))
    assert diff.max() <= 2, diff.max()


def test_texture_shows_up(renderer: Renderer, tmp_path: Path) -> None:
    # A camera-facing quad textured green on its left half and blue on its right half.
    tex = np.zeros((16, 16, 3), np.uint8)
    tex[:, :8] = (0, 255, 0)
    tex[:, 8:] = (0, 0, 255)
    b = GltfBuilder()
    mat = b.add_material(base_color_texture=png_bytes(tex))
    pos = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    nrm = np.tile(np.array([0, 0, 1], np.float32), (4, 1))
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    idx = np.array([0, 1, 2, 0, 2, 3], np.uint32)
    b.add_node(
        mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mat),
        translation=(0, 0, -2),
    )
    b.write_glb(tmp_path / "tex.glb")
    renderer.load_scene(tmp_path / "tex.glb")
    img = renderer.render_view(ORIGIN, fov_y_deg=90).rgb().astype(int)
    left, right = img[H // 2, W // 2 - 8], img[H // 2, W // 2 + 8]
    assert left[1] > 150 > left[2]
    assert right[2] > 150 > right[1]


def test_child_node_offset_puts_the_object_in_the_right_half(
    renderer: Renderer, tmp_path: Path
) -> None:
    renderer.load_scene(red_cube(tmp_path, parent_offset=(1.2, 0, 0)))
    mask = is_red(renderer.render_view(ORIGIN, fov_y_deg=60).rgb())
    assert mask[:, W // 2 :].sum() > 20
    assert mask[:, : W // 2].sum() == 0


def test_matrix_node_with_rotation_and_scale(renderer: Renderer, tmp_path: Path) -> None:
    b = GltfBuilder()
    mat = b.add_material(base_color_factor=(1, 0, 0, 1))
    pos, nrm, _uv, idx = box()
    mesh = b.add_mesh(pos, normals=nrm, indices=idx, material=mat)
    m = np.eye(4)
    m[:3, :3] = np.diag([0.5, 0.5, 0.5])
    m[:3, 3] = (-1.0, 0, -3)  # left of the view axis
    b.add_node(mesh=mesh, matrix=m)
    b.write_glb(tmp_path / "m.glb")
    renderer.load_scene(tmp_path / "m.glb")
    mask = is_red(renderer.render_view(ORIGIN, fov_y_deg=60).rgb())
    assert mask[:, : W // 2].sum() > 5
    assert mask[:, W // 2 :].sum() == 0


def test_non_indexed_mesh_without_normals_renders(renderer: Renderer, tmp_path: Path) -> None:
    pos, _nrm, _uv, idx = box()
    b = GltfBuilder()
    mat = b.add_material(base_color_factor=(1, 0, 0, 1))
    b.add_node(mesh=b.add_mesh(pos[idx], material=mat), translation=(0, 0, -3))
    b.write_glb(tmp_path / "flat.glb")
    scene = renderer.load_scene(tmp_path / "flat.glb")
    assert scene.triangles == 12
    assert is_red(renderer.render_view(ORIGIN, fov_y_deg=60).rgb()[H // 2, W // 2])


def test_unsupported_features_are_skipped_not_fatal(renderer: Renderer, tmp_path: Path) -> None:
    b = GltfBuilder()
    mat = b.add_material(base_color_factor=(1, 0, 0, 1))
    pos, nrm, _uv, idx = box()
    good = b.add_mesh(pos, normals=nrm, indices=idx, material=mat)
    lines = b.add_mesh(pos, indices=idx[:8])
    b.add_node(mesh=good, translation=(0, 0, -3))
    b.add_node(mesh=lines)
    doc, bin_chunk = b.to_document_and_bin()
    doc["meshes"][lines]["primitives"][0]["mode"] = 1  # LINES
    doc["materials"][0]["occlusionTexture"] = {"index": 0}
    doc["extensionsUsed"] = ["KHR_materials_sheen"]
    write_glb(doc, bin_chunk, tmp_path / "odd.glb")
    scene = renderer.load_scene(tmp_path / "odd.glb")
    assert scene.triangles == 12
    assert any("mode 1" in s for s in scene.skipped)
    assert any("KHR_materials_sheen" in s for s in scene.skipped)
    assert is_red(renderer.render_view(ORIGIN, fov_y_deg=60).rgb()[H // 2, W // 2])


def test_avatars_are_drawn_in_the_same_pass(renderer: Renderer, tmp_path: Path) -> None:
    renderer.load_scene(red_cube(tmp_path))
    green_box = Avatar((0, 0, -1.5), color=(0, 1, 0), kind="box", size=0.4)
    img = renderer.render_stereo(ORIGIN, ipd=0.0, avatars=[green_box]).rgb().astype(int)
    for centre in (img[H // 2, W // 2], img[H // 2, W + W // 2]):
        assert centre[1] > 150 > centre[0]  # the avatar occludes the red cube behind it
    sphere = Avatar((0.6, 0, -2), color=(0, 0, 1), kind="sphere", size=0.5)
    img = renderer.render_stereo(ORIGIN, ipd=0.0, avatars=[sphere]).rgb().astype(int)
    blue = (img[..., 2] > 150) & (img[..., 0] < 80)
    assert blue[:, W // 2 : W].any()


def test_stale_frame_cannot_be_read(renderer: Renderer, tmp_path: Path) -> None:
    renderer.load_scene(red_cube(tmp_path))
    first = renderer.render_stereo(ORIGIN)
    renderer.render_stereo(ORIGIN)
    with pytest.raises(RuntimeError, match="stale"):
        first.rgb()


def test_gltf_with_separate_files_and_data_uris_render_like_the_glb(
    renderer: Renderer, tmp_path: Path
) -> None:
    tex = np.zeros((8, 8, 3), np.uint8)
    tex[:] = (0, 200, 0)
    b = GltfBuilder()
    mat = b.add_material(base_color_texture=png_bytes(tex))
    pos, nrm, uv, idx = box()
    b.add_node(
        mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mat), translation=(0, 0, -3)
    )
    b.write_glb(tmp_path / "a.glb")
    b.write_gltf(tmp_path / "sep" / "a.gltf")
    b.write_gltf(tmp_path / "a.gltf", embed=True)
    images = []
    for path in (tmp_path / "a.glb", tmp_path / "sep" / "a.gltf", tmp_path / "a.gltf"):
        renderer.load_scene(path)
        images.append(renderer.render_view(ORIGIN, fov_y_deg=60).rgb().copy())
    assert images[0][H // 2, W // 2, 1] > 120
    assert np.array_equal(images[0], images[1])
    assert np.array_equal(images[0], images[2])


def test_thumbnail_is_a_non_blank_png_of_the_asked_size(tmp_path: Path) -> None:
    data = thumbnail(red_cube(tmp_path), size=(96, 54))
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    assert img.size == (96, 54)
    arr = np.asarray(img.convert("RGB"))
    assert is_red(arr).sum() > 0.05 * 96 * 54  # the cube fills a good part of the frame


def test_demo_scene_builds_loads_and_renders(renderer: Renderer, tmp_path: Path) -> None:
    summary = build_demo_scene(tmp_path / "demo.glb")
    assert summary.triangles >= 200_000
    assert summary.textures >= 3
    scene = renderer.load_scene(summary.path)
    assert scene.triangles == summary.triangles
    assert scene.skipped == []
    img = renderer.render_stereo(CameraPose((0, 1.6, 2), (0, 0, 0, 1))).rgb()
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50
    assert not is_bg(img[H - 1, W // 2])  # the floor is in view


def test_two_renderers_interleave_and_move_between_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    cube = red_cube(tmp_path)
    with Renderer(W, H) as a, Renderer(W, H) as b:
        a.load_scene(cube)
        frame_a = a.render_view(ORIGIN, fov_y_deg=60)
        b.load_scene(red_cube(tmp_path, parent_offset=(5, 0, 0)))  # out of view
        frame_b = b.render_view(ORIGIN, fov_y_deg=60)
        assert is_red(frame_a.rgb()[H // 2, W // 2])
        assert not is_red(frame_b.rgb()).any()
        with ThreadPoolExecutor(max_workers=1) as pool:
            img = pool.submit(lambda: a.render_view(ORIGIN, fov_y_deg=60).rgb().copy()).result()
        assert is_red(img[H // 2, W // 2])


def test_resize_changes_the_frame_size(tmp_path: Path) -> None:
    with Renderer(32, 16) as r:
        r.load_scene(red_cube(tmp_path))
        assert r.render_stereo(ORIGIN).rgb().shape == (16, 64, 3)
        r.resize(40, 24)
        frame = r.render_stereo(ORIGIN)
        assert frame.rgb().shape == (24, 80, 3)
        assert frame.i420().shape == (80 * 24 * 3 // 2,)
