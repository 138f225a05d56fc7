"""Frame sources and the frame-id stamp.

Pictures travel as numpy uint8 arrays, either I420 laid out as one ``(H * 3 // 2, W)`` array
(Y plane, then U, then V: what ``av.VideoFrame.from_numpy_buffer(..., "yuv420p")`` takes
without copying) or RGB ``(H, W, 3)``. Sizes are the whole side-by-side stereo picture.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from workers.protocol import Pose

Image = NDArray[np.uint8]

# Frame-id stamp: STAMP_BLOCKS square blocks along the top-left edge, each white (1) or
# black (0). Layout: marker "10", ID_BITS of the id (MSB first), CHECK_BITS of check.
STAMP_BLOCKS = 24
ID_BITS = 18
CHECK_BITS = 4
ID_MODULO = 1 << ID_BITS
DEFAULT_BLOCK = 16
STAMP_WIDTH = STAMP_BLOCKS * DEFAULT_BLOCK  # pixels a picture needs across for the stamp
_WHITE, _BLACK, _NEUTRAL = 235, 16, 128
# Slate (linear base colour): under the PBR lighting a light grey vanished against white floors.
OWN_HANDS_COLOR = (0.3, 0.35, 0.45)


class FrameSource(Protocol):
    """What the video track renders from. Called on one dedicated thread, never the loop."""

    def render(
        self,
        pose: Pose,
        frame_id: int,
        size: tuple[int, int],
        avatars: Mapping[str, Pose] | None = None,
        views: int = 2,
    ) -> Image:
        """Return the picture of ``size`` (width, height) as I420 or RGB: both eyes side by
        side (``views`` 2), or one centre view filling it (``views`` 1, a flat client)."""
        ...


def is_i420(image: Image, size: tuple[int, int]) -> bool:
    width, height = size
    return image.ndim == 2 and image.shape == (height * 3 // 2, width)


def yaw_pitch(q: tuple[float, float, float, float]) -> tuple[float, float]:
    """Yaw (about +Y) and pitch (about +X) in radians of an (x, y, z, w) quaternion, Y up."""
    x, y, z, w = q
    yaw = math.atan2(2.0 * (w * y + x * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * x - y * z))))
    return yaw, pitch


class PatternSource:
    """Cheap synthetic scene for tests and benchmarks: smooth bands that move with the pose.

    Horizontal phase follows yaw and x, vertical phase follows pitch and y, chroma follows z,
    so any head motion changes the picture, and the picture for a pose is reproducible
    (``render`` is a pure function of its inputs, apart from the avatar markers).
    """

    def render(
        self,
        pose: Pose,
        frame_id: int,
        size: tuple[int, int],
        avatars: Mapping[str, Pose] | None = None,
        views: int = 2,
    ) -> Image:
        width, height = size
        eye = width // views
        yaw, pitch = yaw_pitch(pose.q)
        cols = (np.arange(width) % eye) / eye
        rows = np.arange(height) / height
        h_phase = 2 * math.pi * cols + yaw + pose.p[0] * 2.0
        v_phase = 2 * math.pi * rows + pitch * 2.0 + pose.p[1] * 2.0
        y_plane = 128 + 60 * np.sin(h_phase)[None, :] + 40 * np.cos(v_phase)[:, None]
        out = np.empty((height * 3 // 2, width), dtype=np.uint8)
        out[:height] = np.clip(y_plane, 0, 255).astype(np.uint8)
        chroma = int(np.clip(128 + 40 * math.sin(pose.p[2] * 2.0), 0, 255))
        out[height:] = chroma
        # One grey square per other participant along the bottom edge: enough to see that
        # avatars reached the source without a real renderer.
        for i, _ in enumerate(sorted(avatars or {})):
            x0 = 8 + i * 24
            if x0 + 16 <= eye:
                out[height - 24 : height - 8, x0 : x0 + 16] = 200
        return out


class RendererSource:
    """Adapter from :class:`workers.rendering.renderer.Renderer` to :class:`FrameSource`.

    The renderer owns a GL context bound to the thread that made it, so this object must
    only be used from the track's single render thread (which is how the track calls it):
    the renderer is created on the first ``render`` call, on that thread. The import is
    lazy: moderngl/EGL costs time and fails on machines without it.

    ``Frame.i420()`` returns a view of a buffer the next readback overwrites; we read into
    two buffers in turn so the picture handed to the encoder stays intact while the next
    frame renders (the sender finishes encoding frame N before asking for N+1, so two are
    enough).
    """

    def __init__(
        self,
        scene_path: str | Path,
        *,
        ipd: float = 0.064,
        cpu_convert: bool = False,
        world_scale: float = 1.0,
    ) -> None:
        self.scene_path = Path(scene_path)
        # Scene units per metre of the viewer (stream_start.world_scale, from spawn.py): in a
        # scene authored in centimetres the eyes are 6.4 units apart, not 0.064, so the scene
        # looks life-size in the headset; the near plane and avatars grow alike.
        self.world_scale = world_scale
        self.ipd = ipd * world_scale
        # False (default): the renderer's I420 pass, then one readback of 1.5 bytes a pixel.
        # Since that pass was split (renderer._convert_i420) it beats RGB readback + swscale
        # on llvmpipe too: 6.3 vs 7.3 ms at 1024x288, 31.7 vs 33.8 ms at 2560x720 (render
        # included, 2-core VM). True: RGB + swscale, kept for comparisons and tests.
        self.cpu_convert = cpu_convert
        self._renderer: Any = None
        self._size: tuple[int, int] | None = None
        self._buffers: list[Image] = []
        self._turn = 0
        self.render_ms = 0.0
        # Animated scenes: the animation time of each frame. The worker points it at its
        # session's clock (SessionPoses.scene_time) so all viewers of a session agree.
        started = time.monotonic()
        self.clock: Callable[[], float] = lambda: time.monotonic() - started
        # And its clip ("": the scene's first), from the same session (SessionPoses.clip).
        self.clip: Callable[[], str] = lambda: ""
        self._animation: Any = None

    def _avatars(self, avatars: Mapping[str, Pose] | None) -> list[Any]:
        from workers.rendering.renderer import Avatar  # lazy on purpose

        out = []
        k = self.world_scale
        for participant, pose in sorted((avatars or {}).items()):
            # Stable colour per participant, so people recognise each other across frames.
            hue = zlib.crc32(participant.encode()) / 0xFFFFFFFF
            color = (0.4 + 0.6 * hue, 0.9 - 0.5 * hue, 0.5 + 0.4 * math.sin(6.28 * hue))
            out.append(Avatar(pose.p, pose.q, color=color, kind="sphere", size=0.25 * k))
            out += self._hands(pose, color, k)
        return out

    @staticmethod
    def _hands(pose: Pose, color: tuple[float, float, float], k: float = 1.0) -> list[Any]:
        """Controllers and tracked hands as simple shapes (no input-profile models here): a
        controller is a box a little longer than it is wide, a hand a small ball."""
        from workers.rendering.renderer import Avatar  # lazy on purpose

        kinds = pose.xr.kinds if pose.xr is not None else {}
        return [
            Avatar(h.p, h.q, color=color, kind="sphere", size=0.09 * k)
            if kinds.get(side) == "hand"
            else Avatar(h.p, h.q, color=color, kind="box", size=(0.05 * k, 0.05 * k, 0.14 * k))
            for side, h in sorted(pose.hands.items())
        ]

    def render(
        self,
        pose: Pose,
        frame_id: int,
        size: tuple[int, int],
        avatars: Mapping[str, Pose] | None = None,
        views: int = 2,
    ) -> Image:
        width, height = size
        eye_width = width // views
        if self._renderer is None:
            self._renderer = self._load(2 * eye_width, height)
        if self._animation is not None:
            self._renderer.update_scene_vertices(self._animation.pose(self.clock(), self.clip()))
        if self._size != size:
            self._renderer.resize(eye_width, height)
            self._buffers = [np.empty(width * height * 3 // 2, np.uint8) for _ in range(2)]
            self._size = size
        # The viewer's own controllers too, in a neutral grey: they see what they hold.
        shown = self._avatars(avatars) + self._hands(pose, OWN_HANDS_COLOR, self.world_scale)
        if views == 1:
            # One view from between the eyes, with the left eye's projection (or the same
            # 90-degree default render_stereo uses): what a flat desktop view shows.
            frame = self._renderer.render_view(
                (pose.p, pose.q),
                projection=pose.proj[0] if pose.proj else None,
                fov_y_deg=90.0,
                width=width,
                height=height,
                avatars=shown,
            )
        else:
            frame = self._renderer.render_stereo(
                (pose.p, pose.q), ipd=self.ipd, projections=pose.proj, avatars=shown
            )
        self.render_ms = float(frame.render_ms)
        if self.cpu_convert:
            # The track converts RGB with swscale; the picture is copied there, so reusing
            # the renderer's readback buffer is safe.
            rgb: Image = frame.rgb()
            return rgb
        self._turn ^= 1
        out = frame.i420(out=self._buffers[self._turn])
        return np.asarray(out).reshape(height * 3 // 2, width)

    def _load(self, width: int, height: int) -> Any:
        from workers.rendering.animation import SceneAnimation  # lazy on purpose
        from workers.rendering.renderer import FAR_M, NEAR_M, Renderer, load_package_any

        package = load_package_any(self.scene_path)
        self._animation = SceneAnimation.from_package(package)
        near, far = NEAR_M * self.world_scale, FAR_M * self.world_scale
        if self._animation is None:  # static: the fast path, levels of detail included
            renderer = Renderer(width // 2, height, near=near, far=far)
            renderer.load_scene(package)
        else:
            renderer = Renderer(width // 2, height, lod=False, near=near, far=far)
            renderer.load_scene(self._animation.scene_at(self.clock(), self.clip()))
        return renderer

    def close(self) -> None:
        renderer, self._renderer = self._renderer, None
        if renderer is not None:
            renderer.close()


# ---------------------------------------------------------------- frame-id stamp


def _check(value: int) -> int:
    """XOR of the id's nibbles: cheap, and a random picture passes it 1 time in 64."""
    check = 0
    while value:
        check ^= value & 0xF
        value >>= 4
    return check


def _bits(frame_id: int) -> list[int]:
    value = frame_id % ID_MODULO
    bits = [1, 0]
    bits += [(value >> (ID_BITS - 1 - i)) & 1 for i in range(ID_BITS)]
    check = _check(value)
    bits += [(check >> (CHECK_BITS - 1 - i)) & 1 for i in range(CHECK_BITS)]
    return bits


def stamp_frame_id(image: Image, frame_id: int, *, block: int = DEFAULT_BLOCK) -> Image:
    """Paint ``frame_id % ID_MODULO`` into the top-left corner, in place; returns ``image``.

    ``image`` is I420 ``(H*3//2, W)`` or RGB ``(H, W, 3)``. Blocks are ``block`` px square
    (>= 8, even) so they survive H.264 at ordinary bitrates; chroma under the strip is set
    neutral so that RGB readers see pure black/white.
    """
    if block < 8 or block % 2:
        raise ValueError("block must be an even number >= 8")
    bits = _bits(frame_id)
    if image.ndim == 3:
        if image.shape[1] < STAMP_BLOCKS * block or image.shape[0] < block:
            raise ValueError("image too small for the frame-id stamp")
        for i, bit in enumerate(bits):
            image[:block, i * block : (i + 1) * block, :] = 255 if bit else 0
        return image
    rows, width = image.shape
    height = rows * 2 // 3
    if width < STAMP_BLOCKS * block or height < block:
        raise ValueError("image too small for the frame-id stamp")
    for i, bit in enumerate(bits):
        image[:block, i * block : (i + 1) * block] = _WHITE if bit else _BLACK
    # U and V planes: each is (H/2, W/2) stored row-major right after Y, i.e. every
    # I420 row of width W holds two chroma rows.
    half_w, half_b, strip = width // 2, block // 2, STAMP_BLOCKS * block // 2
    for plane in range(2):
        flat = image[height:].reshape(-1)
        start = plane * (height // 2) * half_w
        chroma = flat[start : start + (height // 2) * half_w].reshape(height // 2, half_w)
        chroma[:half_b, :strip] = _NEUTRAL
    return image


def read_frame_id(image: Image, *, block: int = DEFAULT_BLOCK) -> int | None:
    """Read back a stamp from a decoded picture; None when there is no valid stamp.

    Accepts I420 ``(H*3//2, W)``, a bare luma plane ``(H, W)`` or RGB ``(H, W, 3)``.
    Returns the id modulo :data:`ID_MODULO`.
    """
    if image.ndim == 3:
        rgb = image[:block, : STAMP_BLOCKS * block, :3].astype(np.float32)
        luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    else:
        luma = image[:block, : STAMP_BLOCKS * block].astype(np.float32)
    if luma.shape != (block, STAMP_BLOCKS * block):
        return None
    # Sample the middle of each block: edges smear under compression.
    lo, hi = block // 4, block - block // 4
    blocks = luma[lo:hi].reshape(hi - lo, STAMP_BLOCKS, block)[:, :, lo:hi]
    bits = [int(v > _NEUTRAL) for v in blocks.mean(axis=(0, 2))]
    if bits[:2] != [1, 0]:
        return None
    value = 0
    for bit in bits[2 : 2 + ID_BITS]:
        value = (value << 1) | bit
    check = 0
    for bit in bits[2 + ID_BITS :]:
        check = (check << 1) | bit
    return value if check == _check(value) else None
