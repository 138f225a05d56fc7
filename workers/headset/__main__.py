"""``python -m workers.headset --platform-url URL --username U --password P [--session ID]
[--scene VERSION_ID] --seconds S --fps 90 --json PATH``: one synthetic headset.

Prints a one-line summary; writes per-frame latency, fps, bitrate, rung changes and stage
times to ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from workers.headset.client import HeadsetOptions, SyntheticHeadset


def summary_line(summary: dict[str, object]) -> str:
    latency = summary.get("latency_ms") or {}
    assert isinstance(latency, dict)
    return (
        f"frames={summary['frames']} fps={summary['fps']} size={summary['size']} "
        f"latency_p50={latency.get('p50')}ms p99={latency.get('p99')}ms "
        f"bitrate={int(summary['bitrate_bps']) / 1e6:.2f}Mbps rung={summary['rung']} "  # type: ignore[call-overload]
        f"overhead={summary['overhead_ratio']} render_started={summary['render_started']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.headset", description=__doc__)
    parser.add_argument("--platform-url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--session", default=None, help="join this session instead of creating")
    parser.add_argument(
        "--scene",
        default=None,
        help="scene version id for a new session (default: the first published scene; "
        "'none': no scene, the worker's test pattern)",
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=90.0)
    parser.add_argument("--quality", default=None, help="auto, 4K, 2K, 1080p or 720p")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--turn-transport",
        choices=["udp", "tcp"],
        default=None,
        help="TURN transport to try first (tcp where UDP is blocked; aiortc uses one)",
    )
    parser.add_argument(
        "--ready-file", type=Path, default=None, help="written once the first frame decodes"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    headset = SyntheticHeadset(
        HeadsetOptions(
            platform_url=args.platform_url,
            username=args.username,
            password=args.password,
            session_id=args.session,
            scene_version=None if args.scene in (None, "none") else args.scene,
            published_scene=args.scene is None,
            seconds=args.seconds,
            fps=args.fps,
            quality=args.quality,
            ready_file=args.ready_file,
            turn_transport=args.turn_transport,
        )
    )
    result = asyncio.run(headset.run())
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    print(summary_line(result["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
