"""The streaming pipeline in one process: the worker's peer with the real renderer, to an aiortc
receiver that decodes every frame. No platform, database or browser: what the render, encode
and WebRTC path alone sustains, per rung (and what `device_check.sh` runs on a GPU machine).

Run: ``.venv/bin/python benchmarks/bench_pipeline.py [--rungs 720p,1080p] [--seconds 10]
[--fps 90] [--no-governor] [--json out.json]``

Per rung it streams the demo scene (built by code) while the receiver sends head poses at
``--fps`` on the unreliable pose channel, and reports: frames decoded per second, pose ->
decoded latency (pose sent by the receiver to the frame that rendered it decoded, one clock),
the worker's stage medians, bitrate, render scale (the governor) and the GL renderer string.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from workers.protocol import RUNGS, frame_stages, parse_frame_meta, percentiles
from workers.rendering.demo_scene import build_demo_scene
from workers.streaming.encoder import select_encoder
from workers.streaming.frames import ID_MODULO, RendererSource, read_frame_id
from workers.streaming.peer import StreamConfig, StreamPeer


def _ms() -> float:
    return time.time() * 1000.0


async def run_rung(
    scene: Path, rung: str, *, seconds: float, fps: float, governor: bool
) -> dict[str, Any]:
    source = RendererSource(scene)
    peer = StreamPeer(
        StreamConfig(
            stream_id=f"bench-{rung}",
            quality=rung,
            pinned_quality=rung,
            target_fps=fps,
            render_governor=governor,
        ),
        source,
        encoder_choice=select_encoder(nvenc_enabled=True),
    )
    pc = RTCPeerConnection()
    loop = asyncio.get_running_loop()
    track_ready: asyncio.Future[MediaStreamTrack] = loop.create_future()
    channels: dict[str, Any] = {}
    opened = asyncio.Event()
    metas: dict[int, Any] = {}
    sent_at: dict[int, float] = {}

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if not track_ready.done():
            track_ready.set_result(track)

    @pc.on("datachannel")
    def on_channel(channel: Any) -> None:
        channels[channel.label] = channel
        if channel.label == "frames":
            channel.on("message", lambda m: metas.__setitem__(*_meta(m)))
        if {"pose", "frames"} <= channels.keys():
            opened.set()

    def _meta(message: str) -> tuple[int, Any]:
        meta = parse_frame_meta(message)
        return meta.frame_id % ID_MODULO, meta

    offer = await peer.create_offer()
    await pc.setRemoteDescription(RTCSessionDescription(**offer))
    await pc.setLocalDescription(await pc.createAnswer())
    await peer.set_answer({"type": "answer", "sdp": pc.localDescription.sdp})
    await asyncio.wait_for(opened.wait(), 30)
    track = await asyncio.wait_for(track_ready, 30)
    channels["frames"].send(json.dumps({"display_hz": fps}))

    async def send_poses() -> None:
        seq = 0
        start = time.monotonic()
        while True:
            seq += 1
            a = 0.6 * math.sin((time.monotonic() - start) * 0.8)  # look left and right
            q = [0.0, math.sin(a / 2), 0.0, math.cos(a / 2)]
            sent_at[seq] = _ms()
            channels["pose"].send(
                json.dumps({"p": [0.0, 1.6, 0.0], "q": q, "t": sent_at[seq], "seq": seq})
            )
            await asyncio.sleep(1 / fps)

    poser = asyncio.ensure_future(send_poses())
    decoded: list[tuple[float, int | None]] = []
    warm_until = time.monotonic() + 3.0
    end = warm_until + seconds
    try:
        while time.monotonic() < end:
            frame = await asyncio.wait_for(track.recv(), 30)
            now = _ms()
            if time.monotonic() < warm_until:
                continue
            image = frame.to_ndarray(format="yuv420p")  # type: ignore[union-attr]
            decoded.append((now, read_frame_id(image)))
        report = await peer.collect_stats()
    finally:
        poser.cancel()
        await pc.close()
        await peer.close()
        source.close()
    latencies, stages = [], []
    for now, frame_id in decoded:
        meta = metas.get(frame_id) if frame_id is not None else None
        if meta is None or meta.pose_seq not in sent_at:
            continue
        latencies.append(now - sent_at[meta.pose_seq])
        stages.append(frame_stages(meta.t))
    stage_p50 = {
        k: round(percentiles([s[k] for s in stages if k in s]).p50, 1)
        for k in (stages[0] if stages else {})
    }
    latency = percentiles(latencies) if latencies else None
    return {
        "rung": rung,
        "size": list(report.size or ()),
        "fps": round(len(decoded) / seconds, 1),
        "latency_p50_ms": round(latency.p50, 1) if latency else None,
        "latency_p99_ms": round(latency.p99, 1) if latency else None,
        "stage_p50_ms": stage_p50,
        "bitrate_mbps": round(report.bitrate_bps / 1e6, 2),
        "render_scale": report.render_scale,
        "encoder": report.encoder,
        "frames_matched": len(latencies),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rungs", default="720p,1080p")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=90.0)
    parser.add_argument("--no-governor", action="store_true", help="always render full size")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from workers.rendering.gl_context import renderer_info

    info = renderer_info()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "demo.glb"
        build_demo_scene(scene)
        for rung in args.rungs.split(","):
            if rung not in RUNGS:
                parser.error(f"unknown rung {rung}")
            result = asyncio.run(
                run_rung(
                    scene, rung, seconds=args.seconds, fps=args.fps, governor=not args.no_governor
                )
            )
            results.append(result)
            print(json.dumps(result), flush=True)
    print(f"\nGL renderer: {info}; target {args.fps:g} fps\n")
    print("| rung | size sent | fps | pose→decoded p50 / p99 ms | stage p50 ms | Mbit/s | scale |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        stages = ", ".join(f"{k} {v}" for k, v in r["stage_p50_ms"].items())
        print(
            f"| {r['rung']} | {r['size']} | {r['fps']} | {r['latency_p50_ms']} / "
            f"{r['latency_p99_ms']} | {stages} | {r['bitrate_mbps']} | {r['render_scale']} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"renderer": info, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
