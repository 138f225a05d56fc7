"""Stereo frame time of the glTF renderer on the demo scene.

Run: ``.venv/bin/python benchmarks/bench_renderer.py [--frames N] [--warmup N] [--sizes 720p,...]``

For each per-eye size (720p 1280x720, 1080p 1920x1080, 2K 2560x1440) it renders a moving
stereo view of the demo scene (about 300k triangles) and times, per frame: render (draw calls
until glFinish), RGB readback, and I420 (GPU conversion pass + readback). Prints a markdown
table of medians and p90 and the GL renderer string.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers.rendering.camera import CameraPose
from workers.rendering.demo_scene import build_demo_scene
from workers.rendering.renderer import Avatar, Renderer
from workers.rendering.transforms import look_at_quat

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "2K": (2560, 1440), "4K": (3840, 2160)}


def pose_at(i: int) -> CameraPose:
    # Walk slowly around the room centre, looking at the ring of objects.
    a = 0.02 * i
    eye = (1.2 * math.sin(a), 1.6, 1.2 * math.cos(a))
    target = (3.0 * math.sin(a + 0.6), 1.2, 3.0 * math.cos(a + 0.6) - 0.5)
    return CameraPose(eye, look_at_quat(eye, target))


def stats(values: list[float]) -> str:
    arr = np.asarray(values)
    return f"{np.median(arr):.1f} / {np.percentile(arr, 90):.1f}"


def bench_size(r: Renderer, name: str, frames: int, warmup: int) -> str:
    w, h = SIZES[name]
    r.resize(w, h)
    avatars = [Avatar((0.0, 1.5, -1.5), color=(1, 0.3, 0.3)), Avatar((0.3, 1.2, -1.4), kind="box")]
    render, rgb, conv, yuv_read, total_rgb, total_yuv = [], [], [], [], [], []
    for i in range(warmup + frames):
        t0 = time.perf_counter()
        frame = r.render_stereo(pose_at(i), avatars=avatars)
        frame.rgb()
        t1 = time.perf_counter()
        rgb_read = frame.readback_ms
        frame2 = r.render_stereo(pose_at(i), avatars=avatars)
        frame2.i420()
        t2 = time.perf_counter()
        if i < warmup:
            continue
        render.append((frame.render_ms + frame2.render_ms) / 2)
        rgb.append(rgb_read)
        conv.append(frame2.convert_ms)
        yuv_read.append(frame2.readback_ms)
        total_rgb.append((t1 - t0) * 1000)
        total_yuv.append((t2 - t1) * 1000)
    fps = 1000.0 / float(np.median(total_yuv))
    return (
        f"| {name} ({2 * w}x{h}) | {stats(render)} | {stats(rgb)} | {stats(conv)} | "
        f"{stats(yuv_read)} | {stats(total_rgb)} | {stats(total_yuv)} | {fps:.1f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--sizes", default="720p,1080p,2K")
    parser.add_argument("--triangles", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        summary = build_demo_scene(Path(tmp) / "demo.glb", target_triangles=args.triangles)
        with Renderer(640, 360) as r:
            t = time.perf_counter()
            scene = r.load_scene(summary.path)
            load_ms = (time.perf_counter() - t) * 1000
            print(f"GL renderer: {r.info}")
            print(
                f"scene: {scene.triangles} triangles, {len(scene.draws)} draw calls per eye, "
                f"{len(scene.textures)} textures, load {load_ms:.0f} ms; "
                f"{args.frames} frames after {args.warmup} warm-up, median / p90 in ms"
            )
            print()
            print(
                "| per eye (frame) | render | RGB readback | I420 GPU pass | I420 readback "
                "| render+RGB | render+I420 | fps (I420) |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for name in args.sizes.split(","):
                print(bench_size(r, name, args.frames, args.warmup), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
