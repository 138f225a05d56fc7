"""Animated glTF: node TRS, morph targets and skins posed in closed-form-checkable ways, looped,
and drawn by the real renderer through its one hook; static scenes skip all of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workers.rendering.animation import SceneAnimation
from workers.rendering.gltf_builder import GltfBuilder, box
from workers.rendering.gltf_package import load_package
from workers.rendering.tests import animated


def _anim(path: Path) -> SceneAnimation:
    anim = SceneAnimation.from_package(load_package(path))
    assert anim is not None
    return anim


def _item_vertices(anim: SceneAnimation, t: float, item: int) -> np.ndarray:
    it = anim.items[item]
    return anim.pose(t)[it.offset : it.offset + it.positions.shape[0], 0:3].copy()


def test_a_static_scene_stays_on_the_fast_path(tmp_path: Path) -> None:
    b = GltfBuilder()
    pos, nrm, uv, idx = box()
    b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx))
    b.write_glb(tmp_path / "static.glb")
    assert SceneAnimation.from_package(load_package(tmp_path / "static.glb")) is None


def test_node_translation_is_sampled_linearly_and_loops(tmp_path: Path) -> None:
    anim = _anim(animated.make_slider(tmp_path))
    assert anim.duration == animated.DURATION
    slider = next(i for i, it in enumerate(anim.items) if it.node == 0)
    for t, x in ((0.0, -0.6), (0.5, 0.0), (1.0, 0.6), (1.5, 0.0), (2.5, 0.0), (3.0, 0.6)):
        centre = _item_vertices(anim, t, slider).mean(axis=0)
        assert centre == pytest.approx((x, 0.0, 0.0), abs=1e-5), t
    floor = next(i for i, it in enumerate(anim.items) if it.node == 1)
    assert _item_vertices(anim, 0.3, floor).mean(axis=0) == pytest.approx((0, -0.4, 0), abs=1e-5)


def test_clips_are_separate_and_loop_at_their_own_length(tmp_path: Path) -> None:
    """Fox-like file (two clips, different lengths, different nodes): the chosen clip alone
    plays, looped at its own duration; the other clip's node keeps its rest pose."""
    anim = _anim(animated.make_two_clips(tmp_path))
    assert [(c.name, c.duration) for c in anim.clips] == list(animated.TWO_CLIPS.items())
    slider = next(i for i, it in enumerate(anim.items) if it.node == 0)
    bobber = next(i for i, it in enumerate(anim.items) if it.node == 1)

    def centre(t: float, item: int, clip: str | None) -> tuple[float, ...]:
        it = anim.items[item]
        v = anim.pose(t, clip)[it.offset : it.offset + it.positions.shape[0], 0:3]
        return tuple(float(c) for c in v.mean(axis=0))

    # The default is the first clip (Slide): the bobber stays at rest all the while.
    for t, x in ((0.0, -0.6), (0.5, 0.0), (1.0, 0.6), (2.5, 0.0)):
        assert centre(t, slider, None) == pytest.approx((x, 0, 0), abs=1e-5), t
        assert centre(t, bobber, None) == pytest.approx((1.5, 0, 0), abs=1e-5), t
    # Bob loops every 0.5 s (not over the longest clip's 2 s); the slider stays at rest x = 0.
    for t, y in ((0.0, 0.0), (0.25, 1.0), (0.75, 1.0), (1.125, 0.5), (1.75, 1.0)):
        assert centre(t, bobber, "Bob") == pytest.approx((1.5, y, 0), abs=1e-5), t
        assert centre(t, slider, "Bob") == pytest.approx((0, 0, 0), abs=1e-5), t
    assert anim.loop_time(1.75, "Bob") == pytest.approx(0.25)
    # An unknown name falls back to the first clip rather than failing the worker.
    assert centre(0.0, slider, "Run") == pytest.approx((-0.6, 0, 0), abs=1e-5)
    # Culling spheres cover every clip: the bobber's chunk reaches y = 1 + 0.25.
    scene = anim.scene_at(0.0)
    blue = next(c for c in scene.chunks if scene.materials[c.material].base_color[2] > 0.8)
    assert blue.center[1] + blue.radius >= 1.25


def test_clip_names_are_unique_and_stable() -> None:
    from workers.rendering.animation import clip_names

    doc = {"animations": [{"name": "Walk"}, {}, {"name": "Walk"}, {"name": "  "}]}
    assert clip_names(doc) == ["Walk", "Animation 1", "Walk #2", "Animation 3"]


def test_morph_target_weights_move_the_vertices(tmp_path: Path) -> None:
    anim = _anim(animated.make_morph(tmp_path))
    for t, top in ((0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (2.0, 0.5)):
        v = _item_vertices(anim, t, 0)
        assert v[2:, 1] == pytest.approx([top, top], abs=1e-5), t
        assert v[:2, 1] == pytest.approx([-0.5, -0.5], abs=1e-5)


def test_skin_bends_the_bar_at_its_joint(tmp_path: Path) -> None:
    anim = _anim(animated.make_skinned(tmp_path))
    rest = _item_vertices(anim, 0.0, 0)
    np.testing.assert_allclose(rest[4:], [[-0.1, 2, 0], [0.1, 2, 0]], atol=1e-5)
    bent = _item_vertices(anim, 1.0, 0)
    # The tip turns 90 degrees about z around the elbow (0, 1, 0); the lower half stays.
    np.testing.assert_allclose(bent[4:], [[-1, 0.9, 0], [-1, 1.1, 0]], atol=1e-5)
    np.testing.assert_allclose(bent[:2], rest[:2], atol=1e-6)
    normals = anim.pose(1.0)[:, 3:6]
    assert np.linalg.norm(normals, axis=1) == pytest.approx(np.ones(6), abs=1e-5)


def test_culling_spheres_cover_the_whole_loop(tmp_path: Path) -> None:
    anim = _anim(animated.make_slider(tmp_path))
    scene = anim.scene_at(0.0)
    slider = next(c for c in scene.chunks if scene.materials[c.material].base_color[0] > 0.8)
    for t in np.linspace(0, animated.DURATION, 9):
        v = _item_vertices(anim, float(t), 0 if anim.items[0].node == 0 else 1)
        d = np.linalg.norm(v - np.asarray(slider.center), axis=1)
        assert (d <= slider.radius + 1e-6).all(), t


def test_the_renderer_draws_the_pose(tmp_path: Path) -> None:
    pytest.importorskip("moderngl")
    from workers.rendering.camera import frame_bounds_pose
    from workers.rendering.renderer import Renderer

    anim = _anim(animated.make_slider(tmp_path))
    scene = anim.scene_at(0.0)
    pose, near, far = frame_bounds_pose(
        np.array([-1.0, -0.5, -0.5]), np.array([1, 0.5, 0.5]), 45, 2
    )
    with Renderer(128, 64, lod=False) as r:
        r.load_scene(scene)

        def picture(t: float) -> np.ndarray:
            r.update_scene_vertices(anim.pose(t))
            return r.render_view(pose, fov_y_deg=45, near=near, far=far).rgb().astype(int)

        first, middle, looped = picture(0.0), picture(1.0), picture(animated.DURATION)
    assert np.abs(first - middle).mean() > 2  # the red box moved across the picture
    assert np.abs(first - looped).max() == 0  # one loop later: the same frame
    red = (first[..., 0] > 150) & (first[..., 1] < 80)
    assert red[:, : first.shape[1] // 2].sum() > red[:, first.shape[1] // 2 :].sum()  # x = -0.6
