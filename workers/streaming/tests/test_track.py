"""Frame pacing: a new pose starts its frame at once, and the rate never exceeds the target."""

from __future__ import annotations

import asyncio

import numpy as np

from workers.protocol import Pose
from workers.streaming.frames import PatternSource
from workers.streaming.prediction import PosePredictor
from workers.streaming.track import StereoVideoTrack

FPS = 30.0
PERIOD = 1 / FPS


async def test_a_new_pose_starts_its_frame_at_once_and_the_rate_stays_capped() -> None:
    predictor = PosePredictor()
    track = StereoVideoTrack(PatternSource(), predictor=predictor, size=(640, 180), target_fps=FPS)
    loop = asyncio.get_running_loop()

    async def client() -> None:
        # Poses at the display rate, in the middle of the pacing clock's slots: waiting for
        # the next slot would cost every pose half a period before its render.
        await asyncio.sleep(PERIOD / 2)
        for seq in range(1, 1000):
            predictor.add(Pose(t=seq * PERIOD * 1000, seq=seq), loop.time())
            track.pose_arrived()
            await asyncio.sleep(PERIOD)

    poses = asyncio.ensure_future(client())
    starts, queues = [], []
    try:
        for _ in range(40):
            await track.recv()
            info = track._infos[next(reversed(track._infos))]
            starts.append(info.t["render_start"])
            if "pose_rx" in info.t and info.pose_seq:
                queues.append(info.t["render_start"] - info.t["pose_rx"])
    finally:
        poses.cancel()
        track.stop()
    intervals = np.diff(starts[5:])
    # Never faster than the target: each start at least EARLY_START of a period after the last.
    assert intervals.min() >= 0.7 * PERIOD * 1000
    assert len(queues) > 20
    # The render follows its pose closely, not half a period later.
    assert np.median(queues) < 0.25 * PERIOD * 1000
