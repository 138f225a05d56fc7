"""The real renderer (moderngl over EGL, Mesa llvmpipe here) behind the streaming track."""

from pathlib import Path

import av
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


def test_renderer_source_converts_on_the_gpu_by_default_and_rgb_on_request(scene: Path) -> None:
    """I420 from the renderer's own pass by default (also on llvmpipe, where it measured
    faster than RGB readback + swscale); RGB for the track's swscale only when asked."""
    default, cpu = RendererSource(scene), RendererSource(scene, cpu_convert=True)
    try:
        pose = Pose(p=(0, 1.6, 3))
        i420 = default.render(pose, 0, SIZE).copy()
        rgb = cpu.render(pose, 0, SIZE)
        assert i420.shape == (SIZE[1] * 3 // 2, SIZE[0])
        assert rgb.shape == (SIZE[1], SIZE[0], 3)
        # The same picture both ways: swscale's luma of the RGB render matches the pass's.
        luma = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        y = luma.to_ndarray()[: SIZE[1]].astype(int)
        assert np.abs(y - i420[: SIZE[1]].astype(int)).mean() < 3
    finally:
        default.close()
        cpu.close()


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_viewers_of_one_session_see_the_same_animation_pose(tmp_path: Path) -> None:
    """The worker's session clock, not each stream, decides the animation time: two viewers of
    one session render the same pose at the same moment; the pose moves and loops."""
    from workers.rendering.tests.animated import DURATION, make_slider
    from workers.streaming.session import SessionPoses

    path = make_slider(tmp_path)
    clock = _Clock()
    session = SessionPoses(clock=clock)
    clock.now += 0.5
    other_session = SessionPoses(clock=clock)  # a session that started half a second later
    viewers = [RendererSource(path, cpu_convert=True) for _ in range(3)]
    for viewer in viewers[:2]:
        viewer.clock = session.scene_time
    viewers[2].clock = other_session.scene_time
    pose = Pose(p=(0, 0.1, 1.6))

    def changed(x: np.ndarray, y: np.ndarray) -> int:
        return int((np.abs(x.astype(int) - y.astype(int)).max(axis=-1) > 30).sum())

    try:
        clock.now += 0.5
        a, b, c = (v.render(pose, 0, SIZE).copy() for v in viewers)
        assert np.array_equal(a, b)  # same session, same moment: the same picture
        assert changed(a, c) > 100  # another session's time: another pose
        clock.now += 0.5
        moved = viewers[0].render(pose, 1, SIZE).copy()
        assert changed(a, moved) > 100  # the scene moves
        clock.now += DURATION
        assert np.array_equal(viewers[1].render(pose, 2, SIZE), moved)  # and loops
    finally:
        for viewer in viewers:
            viewer.close()


def test_a_clip_change_reaches_every_viewer_of_the_session_from_its_start(
    tmp_path: Path,
) -> None:
    """The host's clip change (SessionPoses.set_clip, from the platform's clip_change): both
    viewers of the session render the new clip, from its first frame, at the same time."""
    from workers.rendering.tests.animated import make_two_clips
    from workers.streaming.session import SessionPoses

    path = make_two_clips(tmp_path)
    clock = _Clock()
    session = SessionPoses(clock=clock)
    viewers = [RendererSource(path, cpu_convert=True) for _ in range(2)]
    for viewer in viewers:
        viewer.clock, viewer.clip = session.scene_time, session.current_clip
    # A reference that always plays Bob at a fixed time, to compare pictures with.
    reference = RendererSource(path, cpu_convert=True)
    reference.clip = lambda: "Bob"
    pose = Pose(p=(0.75, 0.5, 4.0))
    try:
        clock.now += 1.25
        slide = viewers[0].render(pose, 0, SIZE).copy()  # Slide at 1.25 s: the default
        session.set_clip("Bob")
        clock.now += 0.25  # Bob's highest point, 0.25 s after the switch
        a, b = (v.render(pose, 1, SIZE).copy() for v in viewers)
        reference.clock = lambda: 0.25
        assert np.array_equal(a, b)
        assert np.array_equal(a, reference.render(pose, 0, SIZE))
        assert not np.array_equal(a, slide)
        session.set_clip("Bob")  # the same clip again (a stream_start): no restart
        assert session.scene_time() == pytest.approx(0.25)
    finally:
        for viewer in (*viewers, reference):
            viewer.close()


def test_controllers_and_hands_are_drawn_for_the_owner_and_on_others_avatars(
    scene: Path,
) -> None:
    from workers.protocol import RigidPose, XrInput

    me = Pose(p=(0, 1.6, 3))
    held = RigidPose((0.0, 1.45, 2.55))  # a controller 45 cm ahead, below the eyes
    source = RendererSource(scene, cpu_convert=False)
    try:
        empty = source.render(me, 0, SIZE).copy()
        own = source.render(Pose(p=(0, 1.6, 3), hands={"right": held}), 1, SIZE).copy()
        # The owner sees what they hold, in the lower middle of each eye.
        diff = np.abs(own[:96].astype(int) - empty[:96].astype(int))
        assert (diff > 20).sum() > 50  # a 5x14 cm box at 45 cm, 256x96 per eye
        assert diff[:, :256].sum() > 0
        assert diff[:, 256:].sum() > 0
        # Another participant's hands by kind: a tracked hand is a ball, a controller a box.
        other = Pose(
            p=(0.0, 1.6, 1.5),
            hands={"left": RigidPose((-0.25, 1.3, 1.7)), "right": RigidPose((0.25, 1.3, 1.7))},
            xr=XrInput(kinds={"left": "hand", "right": "controller"}),
        )
        shapes = RendererSource._hands(other, (1.0, 0.0, 0.0))
        assert [a.kind for a in shapes] == ["sphere", "box"]
        with_avatar = source.render(me, 2, SIZE, {"u2": other}).copy()
        without_hands = source.render(me, 3, SIZE, {"u2": Pose(p=(0.0, 1.6, 1.5))}).copy()
        assert (
            np.abs(with_avatar[:96].astype(int) - without_hands[:96].astype(int)) > 20
        ).sum() > 20
    finally:
        source.close()


def test_one_view_is_the_centre_eye_at_the_full_picture_size(scene: Path) -> None:
    """A flat client's picture: one view from between the eyes, filling the picture, with the
    same projection as a stereo eye (so it looks like either eye, minus half the parallax)."""
    from workers.streaming.ssim import ssim

    source = RendererSource(scene)
    try:
        pose = Pose(p=(0, 1.6, 3))
        eye = (SIZE[0] // 2, SIZE[1])
        mono = source.render(pose, 0, eye, views=1).copy()
        stereo = source.render(pose, 1, SIZE).copy()
    finally:
        source.close()
    assert mono.shape == (eye[1] * 3 // 2, eye[0])
    height = eye[1]
    left, right = stereo[:height, : eye[0]], stereo[:height, eye[0] :]
    # Between the two eyes: closer to each eye than the eyes are to each other.
    assert ssim(mono[:height], left) > ssim(left, right)
    assert ssim(mono[:height], right) > ssim(left, right)


def test_a_centimetre_scene_at_its_world_scale_looks_like_the_metre_scene(tmp_path: Path) -> None:
    """stream_start.world_scale (spawn.py): the same boxes authored 100 times larger, seen from
    100 times farther with world_scale 100, give the same stereo picture as the metre scene at
    scale 1: eye separation and near plane grow with the scene, so it is not a giant."""
    from workers.rendering.gltf_builder import GltfBuilder, box

    def write(name: str, k: float) -> Path:
        b = GltfBuilder()
        red = b.add_material(base_color_factor=(0.9, 0.2, 0.1, 1.0))
        pos, nrm, uv, idx = box((0.4, 0.4, 0.4))
        mesh = b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=red)
        for x, z in ((-0.3, 0.0), (0.3, -0.6)):  # two depths: stereo disparity differs
            b.add_node(mesh=mesh, translation=(x * k, 0.0, z * k), scale=(k, k, k))
        b.write_glb(tmp_path / name)
        return tmp_path / name

    metres = RendererSource(write("m.glb", 1.0), cpu_convert=True)
    centimetres = RendererSource(write("cm.glb", 100.0), cpu_convert=True, world_scale=100.0)
    plain = RendererSource(tmp_path / "cm.glb", cpu_convert=True)  # the old, unscaled viewer
    try:
        a = metres.render(Pose(p=(0, 0.2, 1.2)), 0, SIZE).astype(int)
        b = centimetres.render(Pose(p=(0, 20, 120)), 0, SIZE).astype(int)
        c = plain.render(Pose(p=(0, 20, 120)), 0, SIZE).astype(int)
        assert (np.abs(a - b).max(axis=-1) > 40).sum() < 30  # the same, but for rounding
        assert (np.abs(a - c).max(axis=-1) > 40).sum() > 100  # a giant's eyes see less depth
    finally:
        for source in (metres, centimetres, plain):
            source.close()
