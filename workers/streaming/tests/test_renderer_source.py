"""The real renderer (moderngl over EGL, Mesa llvmpipe here) behind the streaming track."""

from pathlib import Path

import numpy as np
import pytest

from workers.protocol import Pose
from workers.streaming.frames import RendererSource, read_frame_id, stamp_frame_id

pytest.importorskip("moderngl")

SIZE = (512, 96)  # stereo: 256x96 per eye; I420 needs width % 4 == 0


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from workers.rendering.demo_scene import build_demo_scene

    path = tmp_path_factory.mktemp("scene") / "demo.glb"
    build_demo_scene(path, target_triangles=2_000)
    return path


def test_renderer_source_gives_stampable_i420_that_follows_the_pose(scene: Path) -> None:
    source = RendererSource(scene, cpu_convert=False)
    try:
        a = source.render(Pose(p=(0, 1.6, 3)), 0, SIZE).copy()
        assert a.shape == (SIZE[1] * 3 // 2, SIZE[0])
        assert a.dtype == np.uint8
        turned = Pose(p=(0, 1.6, 3), q=(0.0, 0.7071068, 0.0, 0.7071068))
        b = source.render(turned, 1, SIZE)
        assert np.abs(a[:96].astype(int) - b[:96].astype(int)).mean() > 5
        # Avatars reach the renderer: a participant right in front changes the picture.
        c = source.render(Pose(p=(0, 1.6, 3)), 2, SIZE, {"u2": Pose(p=(0, 1.6, 2.5))}).copy()
        assert (np.abs(a[:96].astype(int) - c[:96].astype(int)) > 20).sum() > 100
        stamp_frame_id(c, 77)
        assert read_frame_id(c) == 77
    finally:
        source.close()


def test_renderer_source_hands_rgb_to_the_cpu_on_software_gl(scene: Path) -> None:
    source = RendererSource(scene)
    try:
        image = source.render(Pose(p=(0, 1.6, 3)), 0, SIZE)
        software = source._renderer.software
        expected = (SIZE[1], SIZE[0], 3) if software else (SIZE[1] * 3 // 2, SIZE[0])
        assert image.shape == expected
    finally:
        source.close()
