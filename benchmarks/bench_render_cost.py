"""Cost of one stereo frame of the demo scene, in CPU time as well as wall time.

Run: ``.venv/bin/python benchmarks/bench_render_cost.py [--root DIR] [--frames N] [--size WxH]``

On llvmpipe the renderer's cost is CPU time on the rasteriser threads. On a shared machine wall
time swings with everyone else's load, but the process's CPU time (all threads, from
``getrusage``) barely does, so this is the figure to compare two shader versions with.
``--root`` imports ``workers`` from another checkout (e.g. ``git archive <commit> workers |
tar -x -C /tmp/base``) so a before/after pair runs the same script on the same scene.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _cpu_ms() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return (r.ru_utime + r.ru_stime) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", default="1280x720", help="per eye")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    from workers.rendering.camera import CameraPose
    from workers.rendering.demo_scene import build_demo_scene
    from workers.rendering.renderer import Renderer
    from workers.rendering.transforms import look_at_quat

    width, height = (int(v) for v in args.size.split("x"))

    def pose_at(i: int) -> CameraPose:  # as bench_renderer.py: a slow walk around the room
        a = 0.02 * i
        eye = (1.2 * math.sin(a), 1.6, 1.2 * math.cos(a))
        target = (3.0 * math.sin(a + 0.6), 1.2, 3.0 * math.cos(a + 0.6) - 0.5)
        return CameraPose(eye, look_at_quat(eye, target))

    with tempfile.TemporaryDirectory() as tmp:
        summary = build_demo_scene(Path(tmp) / "demo.glb")
        with Renderer(width, height) as r:
            r.load_scene(summary.path)
            for i in range(3):  # warm-up: shader JIT, texture residency
                r.render_stereo(pose_at(i)).rgb()
            walls, cpus = [], []
            for i in range(args.frames):
                cpu0, t0 = _cpu_ms(), time.perf_counter()
                r.render_stereo(pose_at(i))
                walls.append((time.perf_counter() - t0) * 1000)
                cpus.append(_cpu_ms() - cpu0)
            info = r.info
    print(f"root {args.root} on {info}, {width}x{height} per eye, {summary.triangles} triangles")
    print(
        f"render per stereo frame: CPU p50 {statistics.median(cpus):.1f} ms, "
        f"wall p50 {statistics.median(walls):.1f} ms (min {min(walls):.1f})"
    )


if __name__ == "__main__":
    main()
