"""The project's H.264 encoder for aiortc.

aiortc's own ``H264Encoder`` caps at 30 fps, 3 Mbps, level 3.1 and lets x264 use its
default preset: fine for a webcam, wrong for 90 fps stereo VR. We subclass it to keep its
RTP packetisation (FU-A / STAP-A) and replace the encoding.

Integration point (the only place we reach into aiortc's internals): ``RTCRtpSender`` keeps
its encoder in the private ``__encoder`` attribute and only calls ``get_encoder(codec)``
when that is still ``None`` on the first frame. :func:`install_encoder` sets it on ONE
sender before media starts, so other users of aiortc in the process keep the defaults
(no global monkeypatch). The sender then hands us keyframe requests (PLI/FIR) as
``force_keyframe`` and REMB estimates via the ``target_bitrate`` setter.
"""

from __future__ import annotations

import fractions
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
from aiortc.codecs.h264 import H264Encoder
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase
from aiortc.rtcrtpsender import RTCRtpSender
from av.frame import Frame
from av.video.codeccontext import VideoCodecContext

logger = logging.getLogger(__name__)

X264 = "libx264"
NVENC = "h264_nvenc"
# Keyframes only on request (PLI/FIR) or after reconfiguration: periodic IDRs are large
# bursts that cause loss spikes at VR bitrates. The value is x264's/NVENC's GOP length.
LONG_GOP = 100_000

# (pts, encode_start_s, encode_end_s, keyframe, nbytes, encoder_name); called on the
# encoder's thread, so receivers must hop to their event loop themselves.
EncodedCallback = Callable[[int, float, float, bool, int, str], None]


@dataclass(frozen=True, slots=True)
class EncoderChoice:
    name: str  # libx264 or h264_nvenc
    reason: str  # why this one: shown in logs and stats


@functools.lru_cache(maxsize=8)
def probe_encoder(name: str) -> str | None:
    """Open ``name`` and encode one tiny frame. None if it works, else the reason it does not.

    Checking that PyAV *has* the codec is not enough: the wheel ships h264_nvenc everywhere,
    but it only opens with an NVIDIA driver and an NVENC-capable GPU.
    """
    try:
        codec = av.CodecContext.create(name, "w")
        assert isinstance(codec, VideoCodecContext)
        codec.width, codec.height, codec.pix_fmt = 256, 256, "yuv420p"
        codec.time_base = fractions.Fraction(1, 90)
        frame = av.VideoFrame(256, 256, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = 0
        codec.encode(frame)
        codec.encode(None)
    except Exception as exc:  # any failure (no driver, no GPU, no codec) means "no"
        return f"{type(exc).__name__}: {exc}"
    return None


def select_encoder(*, nvenc_enabled: bool) -> EncoderChoice:
    """Pick the encoder once at worker startup (the probe result is cached)."""
    if not nvenc_enabled:
        return EncoderChoice(X264, "NVENC disabled")
    failure = probe_encoder(NVENC)
    if failure is None:
        return EncoderChoice(NVENC, "NVENC enabled and available")
    reason = f"NVENC enabled but unavailable ({failure}); using libx264"
    logger.warning("encoder: %s", reason)
    return EncoderChoice(X264, reason)


@dataclass(slots=True)
class EncoderConfig:
    fps: float = 90.0
    bitrate: int = 25_000_000
    min_bitrate: int = 500_000
    max_bitrate: int = 200_000_000
    threads: int = 0  # 0: let the codec decide (x264 uses sliced threads with zerolatency)
    # Constrained baseline matches the profile-level-id aiortc puts in the SDP (42e01f),
    # which every WebRTC H.264 decoder accepts.
    profile: str = "baseline"
    # x264's speed/quality trade-off. "ultrafast" has no deblocking and the crudest motion
    # search: on the demo room at 1024x288 and 8 Mbit/s it gave SSIM 0.917 p10 against the
    # rendered picture while the head moves; "superfast" 0.973 for 0.7 ms more per frame
    # (2.0 -> 2.7 ms on the 2-core VM), "veryfast" 0.982 for 4.6 ms.
    x264_preset: str = "superfast"
    # Receivers repeat PLI/FIR while a keyframe is in flight; honour at most one per interval.
    min_keyframe_interval_s: float = 0.5
    # Reopening for a new held frame rate costs a keyframe: at most once per interval.
    min_rate_reopen_interval_s: float = 3.0


def _options(name: str, config: EncoderConfig, bitrate: int, fps: float) -> dict[str, str]:
    # VBV of about two frames keeps each frame near its share of the bitrate: large enough
    # for quality, small enough that a frame does not burst into a loss spike. (Four frames
    # sent 99% of the target instead of 85-93% on a clean link, but on a congested one the
    # stream then never climbed back a rung within 20 s of the link clearing: 3 runs of
    # bench_adaptive_netem.py out of 3, against 2 of 2 climbing back with two frames.)
    bufsize = str(int(bitrate * 2 / max(fps, 1.0)))
    if name == NVENC:
        return {
            "preset": "p1",
            "tune": "ull",
            "zerolatency": "1",
            "rc": "cbr",
            "delay": "0",
            "forced-idr": "1",
            "bf": "0",
            "g": str(LONG_GOP),
            "maxrate": str(bitrate),
            "bufsize": bufsize,
        }
    return {
        "preset": config.x264_preset,
        "tune": "zerolatency",
        "forced-idr": "1",
        "bf": "0",
        "g": str(LONG_GOP),
        "sc_threshold": "0",  # no scene-cut IDRs either
        "maxrate": str(bitrate),
        "bufsize": bufsize,
    }


class FrameRateMeter:
    """The frame rate the stream actually holds, from the frames' timestamps (90 kHz).

    Rate control in x264 and NVENC is per frame: bits per frame = bitrate / configured fps.
    A stream that runs at a third of its configured rate (slow renders, dropped slots) sends a
    third of its bitrate and the picture starves, so the encoder reopens at the held rate.
    """

    def __init__(self, *, window: int = 30) -> None:
        self.window = window
        self._pts: list[int] = []

    def add(self, pts: int) -> None:
        if self._pts and pts <= self._pts[-1]:
            self._pts.clear()  # a new clock (the track restarted its pacing)
        self._pts.append(pts)
        del self._pts[: -self.window - 1]

    @property
    def fps(self) -> float | None:
        if len(self._pts) <= self.window // 2:
            return None
        span = self._pts[-1] - self._pts[0]
        return (len(self._pts) - 1) * 90_000 / span if span > 0 else None


class StreamEncoder(H264Encoder):
    """H.264 encoder with our settings, plugged into one ``RTCRtpSender``.

    ``set_bitrate`` is how the quality controller steers it; a REMB from the receiver is
    only recorded (``remb_bps``) because the controller, not the receiver, owns the rate.
    """

    def __init__(
        self,
        choice: EncoderChoice,
        config: EncoderConfig | None = None,
        *,
        on_encoded: EncodedCallback | None = None,
    ) -> None:
        super().__init__()
        self.choice = choice
        self.config = config or EncoderConfig()
        self.on_encoded = on_encoded
        self.remb_bps: int | None = None
        self.active_name = choice.name
        self.keyframes = 0
        self._lock = threading.Lock()  # set_bitrate (loop) vs encode (sender's executor)
        self._bitrate = self._clamp(self.config.bitrate)
        self._codec: VideoCodecContext | None = None
        self._codec_bitrate = 0
        self._codec_maxrate = 0
        self._codec_fps = self.config.fps
        self._opened_at = -math.inf
        self.rate = FrameRateMeter()
        self._last_forced = -math.inf  # monotonic time of the last requested keyframe

    def _clamp(self, bitrate: int) -> int:
        return max(self.config.min_bitrate, min(int(bitrate), self.config.max_bitrate))

    # aiortc calls this setter with the receiver's REMB estimate.
    @property
    def target_bitrate(self) -> int:
        return self._bitrate

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self.remb_bps = int(bitrate)

    def set_bitrate(self, bitrate: int) -> None:
        with self._lock:
            self._bitrate = self._clamp(bitrate)

    def _held_fps(self) -> float:
        """The rate to size per-frame bits for: what the stream holds, at most the target."""
        held = self.rate.fps
        return self.config.fps if held is None else max(1.0, min(held, self.config.fps))

    def _open(self, name: str, width: int, height: int, bitrate: int) -> VideoCodecContext:
        codec = av.CodecContext.create(name, "w")
        assert isinstance(codec, VideoCodecContext)
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        self._codec_fps = self._held_fps()
        fps = fractions.Fraction(self._codec_fps).limit_denominator(1001)
        codec.framerate = fps
        codec.time_base = VIDEO_TIME_BASE
        codec.bit_rate = bitrate
        codec.gop_size = LONG_GOP
        codec.max_b_frames = 0
        codec.thread_count = self.config.threads
        codec.profile = "Baseline" if self.config.profile == "baseline" else self.config.profile
        codec.options = _options(name, self.config, bitrate, self._codec_fps)
        codec.open()
        return codec

    def _ensure_codec(self, frame: av.VideoFrame) -> tuple[VideoCodecContext, bool]:
        """Open or reopen the codec for this frame's size/bitrate; True if (re)opened."""
        with self._lock:
            bitrate = self._bitrate
        codec = self._codec
        if frame.pts is not None:
            self.rate.add(int(frame.pts))
        held = self._held_fps()
        if (
            codec is not None
            and codec.width == frame.width
            and codec.height == frame.height
            # The VBV max rate is fixed when the codec opens (PyAV cannot set it later).
            and bitrate <= self._codec_maxrate
            # Per-frame bits follow the frame rate the codec was opened with (see
            # FrameRateMeter): reopen when the stream holds a clearly different one, at most
            # every few seconds (each reopen is a keyframe).
            and (
                abs(held / self._codec_fps - 1.0) <= 0.25
                or time.monotonic() - self._opened_at < self.config.min_rate_reopen_interval_s
            )
        ):
            if abs(bitrate - self._codec_bitrate) > 0.1 * self._codec_bitrate:
                # x264 (and NVENC) retune an open encoder between frames (FFmpeg's
                # reconfig_encoder): no reopen, so no IDR — on a congested link a keyframe is
                # the largest frame there is, exactly when it can least be afforded.
                codec.bit_rate = bitrate
                self._codec_bitrate = bitrate
            return codec, False
        try:
            codec = self._open(self.choice.name, frame.width, frame.height, bitrate)
            self.active_name = self.choice.name
        except Exception as exc:
            if self.choice.name == X264:
                raise
            # NVENC can still refuse a size (H.264 NVENC tops out at 4096 px wide).
            logger.warning(
                "encoder: %s refused %dx%d (%s); using libx264",
                self.choice.name,
                frame.width,
                frame.height,
                exc,
            )
            codec = self._open(X264, frame.width, frame.height, bitrate)
            self.active_name = X264
        self._codec, self._codec_bitrate, self._codec_maxrate = codec, bitrate, bitrate
        self._opened_at = time.monotonic()
        return codec, True

    def encode_bitstream(self, frame: av.VideoFrame, force_keyframe: bool = False) -> bytes:
        """Encode one frame to Annex-B bytes (used by ``encode`` and by tests)."""
        if frame.format.name != "yuv420p":
            # Only RGB sources pay for this; I420 sources go straight to the codec.
            frame = frame.reformat(format="yuv420p")
        codec, reopened = self._ensure_codec(frame)
        now = time.monotonic()
        # A receiver asks again while the last keyframe is still in flight (or was dropped by
        # the same bottleneck): at most one requested keyframe per interval, else a storm.
        honour = force_keyframe and now - self._last_forced >= self.config.min_keyframe_interval_s
        if honour:
            self._last_forced = now
        frame.pict_type = (
            av.video.frame.PictureType.I if honour or reopened else av.video.frame.PictureType.NONE
        )
        return b"".join(bytes(packet) for packet in codec.encode(frame))

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, av.VideoFrame)
        start = time.time()
        data = self.encode_bitstream(frame, force_keyframe)
        end = time.time()
        # IDR slice NAL type 5 right after a start code: cheap keyframe check on Annex-B.
        keyframe = b"\x00\x00\x01\x65" in data or b"\x00\x00\x01\x25" in data
        self.keyframes += int(keyframe)
        assert frame.pts is not None
        assert frame.time_base is not None
        timestamp = convert_timebase(frame.pts, frame.time_base, VIDEO_TIME_BASE)
        if self.on_encoded is not None:
            self.on_encoded(frame.pts, start, end, keyframe, len(data), self.active_name)
        if not data:
            return [], timestamp
        return self._packetize(self._split_bitstream(data)), timestamp


def install_encoder(sender: RTCRtpSender, encoder: StreamEncoder) -> None:
    """Make ``sender`` use ``encoder`` instead of aiortc's default. Call before media starts.

    The one documented reach into aiortc internals (see module docstring). If a future
    aiortc renames the attribute this raises instead of silently using the 3 Mbps encoder.
    """
    attribute = "_RTCRtpSender__encoder"
    if not hasattr(sender, attribute):
        raise RuntimeError("aiortc RTCRtpSender has no __encoder slot; update install_encoder")
    if getattr(sender, attribute) is not None:
        raise RuntimeError("sender already started encoding; install the encoder earlier")
    setattr(sender, attribute, encoder)
