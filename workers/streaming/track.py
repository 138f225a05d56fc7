"""The stereo video track: paced frames rendered from the latest predicted pose."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from workers.protocol import Pose, RigidPose
from workers.streaming.frames import STAMP_WIDTH, FrameSource, Image, is_i420, stamp_frame_id
from workers.streaming.governor import RenderGovernor, scaled_size
from workers.streaming.prediction import PosePredictor

logger = logging.getLogger(__name__)

CLOCK_RATE = 90_000
TIME_BASE = fractions.Fraction(1, CLOCK_RATE)
_INFO_KEEP = 256  # frame infos waiting for their encode; older ones are dropped frames
EARLY_START = 0.75  # a new pose may start a frame this fraction of a period after the last
JIT_MARGIN_S = 0.002  # a just-in-time render aims to be ready this much before it is taken


def _ms() -> float:
    return time.time() * 1000.0


def _ewma(previous: float, value: float, weight: float = 0.2) -> float:
    return value if previous <= 0 else previous + weight * (value - previous)


@dataclass(slots=True)
class FrameInfo:
    """What the track knows about a frame until the encoder reports it sent."""

    frame_id: int
    pts: int
    pose: RigidPose
    pose_seq: int
    size: tuple[int, int]
    t: dict[str, float] = field(default_factory=dict)  # stage -> wall-clock ms
    scale: float = 1.0  # render scale of this frame (see governor.py)
    views: int = 2  # 2: both eyes side by side; 1: one centre view (a flat client)


class StereoVideoTrack(MediaStreamTrack):
    """Video track pulling pictures from a :class:`FrameSource` at ``target_fps``.

    Frames are paced on the event loop clock. Each frame renders the pose predicted for
    display time on a single dedicated thread (renderers hold thread-bound GL contexts).
    If a frame takes longer than its slot, the missed slots are skipped (counted in
    ``dropped``), never queued: late frames are worse than missing ones in VR. A
    :class:`RenderGovernor`, when given, scales the rendered size to keep frames in their slot.

    Render and encode overlap, one frame deep: as soon as the sender takes frame N (to encode
    and send it), frame N+1 may start rendering, so a pose that arrives while N is encoding
    starts its render at once instead of queueing behind N's encode and send. Never deeper:
    a frame rendered two ahead would wait with an old pose.
    """

    kind = "video"

    def __init__(
        self,
        source: FrameSource,
        *,
        predictor: PosePredictor,
        size: tuple[int, int],
        target_fps: float = 90.0,
        avatars: Callable[[], Mapping[str, Pose]] | None = None,
        stamp: bool = True,
        governor: RenderGovernor | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.governor = governor
        self.predictor = predictor
        self.size = size
        self.target_fps = target_fps
        self.stamp = stamp
        self.views = 2  # what the client shows; frames fall back to 2 when 1 cannot be stamped
        self._avatars = avatars
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._start: float | None = None
        self._tick = 0
        self._last_start = 0.0
        self._pose_event = asyncio.Event()
        self._pts_base = 0
        self._last_pts = 0
        self._next_id = 0
        self._infos: OrderedDict[int, FrameInfo] = OrderedDict()
        # The pipeline: the producer renders into _ready (at most one frame) once the sender
        # has taken the previous one (_taken); None in _ready means the track ended.
        self._producer: asyncio.Future[None] | None = None
        self._ready: asyncio.Queue[av.VideoFrame | None] = asyncio.Queue(maxsize=1)
        self._taken = asyncio.Event()
        # Just in time: when the sender's encode and send (consumer) take longer than a render,
        # the next render starts late enough to finish as the sender comes back for it, so it
        # uses the freshest pose instead of waiting rendered. EWMAs in seconds.
        self._taken_at: float | None = None
        self._consumer_s = 0.0
        self._render_s = 0.0
        self.frames = 0
        self.dropped = 0
        self.render_ms: list[float] = []  # recent render+convert durations, for stats

    def set_size(self, size: tuple[int, int]) -> None:
        """Switch resolution (a rung change); applies from the next frame."""
        if size != self.size and self.governor is not None:
            self.governor.reset()
        self.size = size

    def set_views(self, views: int) -> None:
        """Render both eyes (2) or one centre view (1, a flat desktop client: half the pixels
        to render, encode and decode); applies from the next frame."""
        if views != self.views and self.governor is not None:
            self.governor.reset()  # the frame cost changes with the pixel count
        self.views = views

    def _layout(self, size: tuple[int, int]) -> tuple[tuple[int, int], int]:
        """The picture size and view count of the next frame: one view only when the client
        wants one and the half-width picture still holds the frame-id stamp."""
        width, height = size
        if self.views == 1 and (not self.stamp or width // 2 >= STAMP_WIDTH):
            return (width // 2, height), 1
        return size, 2

    def set_fps(self, fps: float) -> None:
        """Change the pace (e.g. to the client's display rate); restarts the slot clock."""
        if fps != self.target_fps:
            self.target_fps = fps
            self._start = None
            # RTP timestamps must keep rising across the restart of the slot clock.
            self._pts_base = self._last_pts + round(CLOCK_RATE / fps)
            if self.governor is not None:
                self.governor.set_fps(fps)

    @property
    def scale(self) -> float:
        return self.governor.scale if self.governor is not None else 1.0

    def pop_info(self, pts: int) -> FrameInfo | None:
        """The info of the frame with ``pts`` (once), for the encoder's report."""
        return self._infos.pop(pts, None)

    def pose_arrived(self) -> None:
        """A new head pose was accepted: a frame waiting for its slot may start now."""
        self._pose_event.set()

    def _new_pose_since(self, t: float) -> bool:
        latest = self.predictor.latest
        return latest is not None and latest.rx > t

    async def _wait_for_slot(self) -> int:
        """Wait for the next frame's turn: its slot on the pacing clock, or earlier, as soon
        as a new pose has arrived and at least EARLY_START of a period has passed since the
        last frame. A client sending poses at its display rate then has each pose rendered at
        once instead of waiting up to a period for the next slot (the "queue" stage), while
        the rate stays at most ``target_fps``; without poses the clock alone paces."""
        loop = asyncio.get_running_loop()
        period = 1.0 / self.target_fps
        if self._start is None:
            self._start = self._last_start = loop.time()
            self._tick = 0
            return 0
        self._tick += 1
        now = loop.time()
        due = self._start + self._tick * period
        if now > due + period / 2:
            missed = int((now - due) / period)
            self._tick += missed
            self.dropped += missed
            due = self._start + self._tick * period
        # Never two frames closer than EARLY_START of a period, not even catching up.
        earliest = self._last_start + EARLY_START * period
        while True:
            now = loop.time()
            if now < earliest:
                await asyncio.sleep(earliest - now)
                continue
            if now >= due or self._new_pose_since(self._last_start):
                break
            self._pose_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pose_event.wait(), due - now)
        self._last_start = loop.time()
        return self._tick

    def _produce(
        self,
        pose: Pose,
        frame_id: int,
        size: tuple[int, int],
        avatars: Mapping[str, Pose],
        views: int,
    ) -> tuple[av.VideoFrame, dict[str, float]]:
        t = {"render_start": _ms()}
        image: Image = self.source.render(pose, frame_id, size, avatars, views=views)
        t["render_end"] = _ms()
        if is_i420(image, size):
            if self.stamp:
                stamp_frame_id(image, frame_id)
            # Zero-copy wrap: no colour conversion for I420 sources.
            frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image), "yuv420p")
        else:
            if self.stamp:
                stamp_frame_id(image, frame_id)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        t["convert_end"] = _ms()
        return frame, t

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._producer is None:
            self._taken.set()
            self._producer = asyncio.ensure_future(self._produce_frames())
        elif self._taken_at is not None:
            self._consumer_s = _ewma(self._consumer_s, loop.time() - self._taken_at)
        frame = await self._ready.get()
        if frame is None:
            self._ready.put_nowait(None)  # ended: every later recv() raises too
            raise MediaStreamError
        self._taken_at = loop.time()
        self._taken.set()  # the next frame may render while this one is encoded
        return frame

    async def _start_just_in_time(self) -> None:
        lead = self._consumer_s - self._render_s - JIT_MARGIN_S
        if self._taken_at is not None and lead > 0:
            delay = self._taken_at + lead - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _produce_frames(self) -> None:
        try:
            while True:
                await self._taken.wait()
                self._taken.clear()
                await self._start_just_in_time()
                self._ready.put_nowait(await self._next_frame())
        except Exception:  # not CancelledError (a BaseException): stop() cancels us
            logger.exception("render failed for frame %d", self._next_id - 1)
            self.stop()

    async def _next_frame(self) -> av.VideoFrame:
        tick = await self._wait_for_slot()
        loop = asyncio.get_running_loop()
        predicted = self.predictor.predict(loop.time())
        latest = self.predictor.latest
        # The participant's locomotion origin on top of the head pose: what is rendered, and
        # what the frame's metadata reports, is the pose in the scene.
        pose = (predicted or Pose()).world()
        pose_rx = _ms() - (loop.time() - latest.rx) * 1000.0 if latest else 0.0
        avatars = dict(self._avatars()) if self._avatars else {}
        frame_id, scale = self._next_id, self.scale
        size, views = self._layout(scaled_size(self.size, scale))
        self._next_id += 1
        frame, times = await loop.run_in_executor(
            self._executor, self._produce, pose, frame_id, size, avatars, views
        )
        pts = self._pts_base + round(tick * CLOCK_RATE / self.target_fps)
        self._last_pts = pts
        frame.pts, frame.time_base = pts, TIME_BASE
        times["pose_rx"] = pose_rx
        seq = pose.seq if latest else 0
        info = FrameInfo(frame_id, pts, pose.rigid(), seq, size, times, scale, views)
        self._infos[pts] = info
        while len(self._infos) > _INFO_KEEP:
            self._infos.popitem(last=False)
        self.frames += 1
        self.render_ms.append(times["convert_end"] - times["render_start"])
        self._render_s = _ewma(self._render_s, self.render_ms[-1] / 1000.0)
        del self.render_ms[:-256]
        return frame

    def stop(self) -> None:
        super().stop()
        if self._producer is not None and self._producer is not asyncio.current_task():
            self._producer.cancel()
        # Wake a waiting recv(): the frame not yet taken is dropped, the end marker takes its place.
        with contextlib.suppress(asyncio.QueueEmpty):
            self._ready.get_nowait()
        self._ready.put_nowait(None)
        # Do not wait: a render in flight finishes on its own; the loop must not block.
        self._executor.shutdown(wait=False, cancel_futures=True)
