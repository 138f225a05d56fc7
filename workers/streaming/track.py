"""The stereo video track: paced frames rendered from the latest predicted pose."""

from __future__ import annotations

import asyncio
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
from workers.streaming.frames import FrameSource, Image, is_i420, stamp_frame_id
from workers.streaming.prediction import PosePredictor

logger = logging.getLogger(__name__)

CLOCK_RATE = 90_000
TIME_BASE = fractions.Fraction(1, CLOCK_RATE)
_INFO_KEEP = 256  # frame infos waiting for their encode; older ones are dropped frames


def _ms() -> float:
    return time.time() * 1000.0


@dataclass(slots=True)
class FrameInfo:
    """What the track knows about a frame until the encoder reports it sent."""

    frame_id: int
    pts: int
    pose: RigidPose
    pose_seq: int
    size: tuple[int, int]
    t: dict[str, float] = field(default_factory=dict)  # stage -> wall-clock ms


class StereoVideoTrack(MediaStreamTrack):
    """Video track pulling pictures from a :class:`FrameSource` at ``target_fps``.

    Frames are paced on the event loop clock. Each frame renders the pose predicted for
    display time on a single dedicated thread (renderers hold thread-bound GL contexts).
    If a frame takes longer than its slot, the missed slots are skipped (counted in
    ``dropped``), never queued: late frames are worse than missing ones in VR.
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
    ) -> None:
        super().__init__()
        self.source = source
        self.predictor = predictor
        self.size = size
        self.target_fps = target_fps
        self.stamp = stamp
        self._avatars = avatars
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._start: float | None = None
        self._tick = 0
        self._next_id = 0
        self._infos: OrderedDict[int, FrameInfo] = OrderedDict()
        self.frames = 0
        self.dropped = 0
        self.render_ms: list[float] = []  # recent render+convert durations, for stats

    def set_size(self, size: tuple[int, int]) -> None:
        """Switch resolution (a rung change); applies from the next frame."""
        self.size = size

    def pop_info(self, pts: int) -> FrameInfo | None:
        """The info of the frame with ``pts`` (once), for the encoder's report."""
        return self._infos.pop(pts, None)

    async def _wait_for_slot(self) -> int:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.target_fps
        if self._start is None:
            self._start = loop.time()
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
        if due > now:
            await asyncio.sleep(due - now)
        return self._tick

    def _produce(
        self, pose: Pose, frame_id: int, size: tuple[int, int], avatars: Mapping[str, Pose]
    ) -> tuple[av.VideoFrame, dict[str, float]]:
        t = {"render_start": _ms()}
        image: Image = self.source.render(pose, frame_id, size, avatars)
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
        tick = await self._wait_for_slot()
        loop = asyncio.get_running_loop()
        predicted = self.predictor.predict(loop.time())
        latest = self.predictor.latest
        # The participant's locomotion origin on top of the head pose: what is rendered, and
        # what the frame's metadata reports, is the pose in the scene.
        pose = (predicted or Pose()).world()
        pose_rx = _ms() - (loop.time() - latest.rx) * 1000.0 if latest else 0.0
        avatars = dict(self._avatars()) if self._avatars else {}
        frame_id, size = self._next_id, self.size
        self._next_id += 1
        try:
            frame, times = await loop.run_in_executor(
                self._executor, self._produce, pose, frame_id, size, avatars
            )
        except Exception as exc:
            logger.exception("render failed for frame %d", frame_id)
            self.stop()
            raise MediaStreamError from exc
        pts = round(tick * CLOCK_RATE / self.target_fps)
        frame.pts, frame.time_base = pts, TIME_BASE
        times["pose_rx"] = pose_rx
        info = FrameInfo(frame_id, pts, pose.rigid(), pose.seq if latest else 0, size, times)
        self._infos[pts] = info
        while len(self._infos) > _INFO_KEEP:
            self._infos.popitem(last=False)
        self.frames += 1
        self.render_ms.append(times["convert_end"] - times["render_start"])
        del self.render_ms[:-256]
        return frame

    def stop(self) -> None:
        super().stop()
        # Do not wait: a render in flight finishes on its own; the loop must not block.
        self._executor.shutdown(wait=False, cancel_futures=True)
