"""End-to-end streaming benchmark with the synthetic headset.

Run: ``.venv/bin/python benchmarks/bench_streaming.py [--seconds 10] [--fps 90]
[--max-concurrent 6] [--json OUT]``

Starts its own platform (daphne on a throw-away SQLite database, in-memory channel layer),
one streaming worker process and synthetic headsets in this process, then measures:

1. one stream of the demo scene (about 300k triangles) at 720p and at 1080p per eye: achieved
   fps, pose-to-decoded latency p50/p99, per-stage p50 (queue = pose age at render start,
   render, convert, encode, send, network+decode) and the overhead ratio
   (p50 latency / sum of p50 stage times);
2. the same with the synthetic pattern source (no 3D render), which isolates encode+transport;
3. how many concurrent 720p streams one worker sustains at >= 30 fps (pattern source, and the
   demo scene when a single stream reaches 30 fps at all).

Everything (platform, worker, headsets) shares this machine's cores: on the 2-core development
VM the headsets' H.264 decoding competes with the worker's render and encode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.core.testing import free_port, http_ok, wait_until  # noqa: E402
from workers.headset.client import HeadsetOptions, SyntheticHeadset  # noqa: E402

PY = sys.executable


class Platform:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "vrplatform.settings.base",
            # IMMEDIATE transactions: SQLite's default (deferred) ones fail with "database is
            # locked" when several streams' stats writes meet (a read lock cannot upgrade).
            "DATABASE_URL": (
                f"sqlite:///{tmp / 'bench.sqlite3'}?transaction_mode=IMMEDIATE&timeout=20"
            ),
            "REDIS_URL": "",
            "MEDIA_ROOT": str(tmp / "media"),
            "LOG_LEVEL": "WARNING",
            "THROTTLE_AUTHENTICATE": "1000/min",
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        out = subprocess.run(
            [PY, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True
        )
        return out.stdout.decode().strip()

    def start(self, *, demo_scene: bool = True) -> None:
        self.manage("migrate", "-v0")
        self.manage("create_demo_users")
        if demo_scene:  # without one, streams show the worker's pattern source
            self.scene = self.manage("create_demo_scene").splitlines()[-1].strip()
        self.spawn(
            "daphne",
            [
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "vrplatform.asgi:application",
            ],
        )
        wait_until(lambda: http_ok(f"{self.url}/healthz"), "daphne to start", 60)

    def spawn(self, name: str, args: list[str], **env: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [PY, *args], cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc

    def worker(self, name: str, rung_sizes: str, max_streams: int) -> subprocess.Popen[bytes]:
        token = self.manage("create_worker", "--name", name).splitlines()[-1].strip()
        proc = self.spawn(
            name,
            [
                "-m",
                "workers.streaming",
                "--platform-url",
                self.url,
                "--token",
                token,
                "--name",
                name,
                "--max-streams",
                str(max_streams),
                "--heartbeat-s",
                "1",
            ],
            NVENC_ENABLED="1",
            MORPHEUS_RUNG_SIZES=rung_sizes,
            LOG_LEVEL="WARNING",
        )
        # Wait for registration: render_start answers no_capacity until the worker is online.
        time.sleep(3)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()


async def run_headsets(
    platform: Platform, count: int, *, scene: str | None, quality: str, seconds: float, fps: float
) -> list[dict[str, Any]]:
    headsets = [
        SyntheticHeadset(
            HeadsetOptions(
                platform.url,
                "player",
                "player-demo",
                scene_version=scene,
                seconds=seconds,
                fps=fps,
                quality=quality,
                start_timeout_s=90,
            )
        )
        for _ in range(count)
    ]
    results = await asyncio.gather(*(h.run() for h in headsets), return_exceptions=True)
    out = []
    for r in results:
        if isinstance(r, BaseException):
            out.append({"error": repr(r)})
        else:
            out.append(r["summary"])
    return out


def stage_text(summary: dict[str, Any]) -> str:
    stages = summary.get("stage_ms") or {}
    order = ["queue", "render", "convert", "encode", "send", "network_decode"]
    return ", ".join(f"{k} {stages[k]['p50']:.1f}" for k in order if stages.get(k))


def row(label: str, s: dict[str, Any]) -> str:
    if "error" in s:
        return f"| {label} | error: {s['error'][:80]} | | | | | |"
    lat = s.get("latency_ms") or {}
    return (
        f"| {label} | {s['fps']:.1f} | {lat.get('p50', float('nan')):.1f} / "
        f"{lat.get('p99', float('nan')):.1f} | {stage_text(s)} | {s['overhead_ratio']} | "
        f"{s['bitrate_bps'] / 1e6:.1f} | {s.get('encoder')} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=90.0)
    parser.add_argument("--max-concurrent", type=int, default=6)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip-scene", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    results: dict[str, Any] = {"single": {}, "concurrent": {}}
    lines = [
        "| config (per eye) | fps | latency p50 / p99 ms | stage p50 ms | overhead | Mbps "
        "| encoder |",
        "|---|---|---|---|---|---|---|",
    ]
    platform = Platform(tmp)
    try:
        platform.start()
        # Real rung sizes: 720p = 1280x720 per eye (2560x720 stereo), 1080p = 1920x1080.
        platform.worker("bench-w1", "", args.max_concurrent + 1)
        configs = [("pattern", None)] + (
            [] if args.skip_scene else [("demo scene", platform.scene)]
        )
        for source, scene in configs:
            for quality in ("720p", "1080p"):
                summary = asyncio.run(
                    run_headsets(
                        platform,
                        1,
                        scene=scene,
                        quality=quality,
                        seconds=args.seconds,
                        fps=args.fps,
                    )
                )[0]
                label = f"{source}, {quality}"
                results["single"][label] = summary
                lines.append(row(label, summary))
                print(lines[-1], flush=True)
        for source, scene in configs:
            sustained = 0
            for n in range(1, args.max_concurrent + 1):
                summaries = asyncio.run(
                    run_headsets(
                        platform, n, scene=scene, quality="720p", seconds=args.seconds, fps=args.fps
                    )
                )
                fps = [s.get("fps", 0.0) for s in summaries]
                results["concurrent"][f"{source} x{n}"] = summaries
                print(f"{source}: {n} x 720p -> fps {fps}", flush=True)
                if min(fps) < 30.0:
                    break
                sustained = n
            results["concurrent"][f"{source} sustained_at_30fps"] = sustained
            lines.append(f"\n{source}: concurrent 720p streams at >= 30 fps each: {sustained}")
    finally:
        platform.stop()
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
