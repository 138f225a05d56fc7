"""``python -m workers.streaming --platform-url URL --token TOKEN``: run a streaming worker.

Options also come from the environment: ``PLATFORM_URL``, ``WORKER_TOKEN``, ``WORKER_NAME``,
``WORKER_MAX_STREAMS``, ``WORKER_METRICS_PORT``, ``NVENC_ENABLED``, ``MORPHEUS_RUNG_SIZES``
(``320x180`` for every rung, or ``720p=640x360,1080p=960x540``), ``MORPHEUS_MAX_FPS``,
``WORKER_HEARTBEAT_S``, ``SCENE_CACHE_DIR``, ``MORPHEUS_RENDER_GOVERNOR`` (scale the render size
to hold the frame rate; on by default) and ``MORPHEUS_MIN_RENDER_SCALE`` (its floor, 0.4).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from pathlib import Path

from workers.streaming.agent import AgentConfig, FatalAgentError, WorkerAgent, parse_rung_sizes


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def parse_args(argv: list[str] | None = None) -> AgentConfig:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m workers.streaming", description=__doc__)
    parser.add_argument("--platform-url", default=env.get("PLATFORM_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=env.get("WORKER_TOKEN", ""))
    parser.add_argument("--name", default=env.get("WORKER_NAME", socket.gethostname()))
    parser.add_argument("--max-streams", type=int, default=int(env.get("WORKER_MAX_STREAMS", "4")))
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(env.get("WORKER_METRICS_PORT", "0")),
        help="Prometheus metrics port (0: off)",
    )
    parser.add_argument(
        "--heartbeat-s", type=float, default=float(env.get("WORKER_HEARTBEAT_S", "5"))
    )
    parser.add_argument("--rung-sizes", default=env.get("MORPHEUS_RUNG_SIZES", ""))
    parser.add_argument("--max-fps", type=float, default=float(env.get("MORPHEUS_MAX_FPS", "0")))
    parser.add_argument("--cache-dir", default=env.get("SCENE_CACHE_DIR", ""))
    parser.add_argument(
        "--render-governor",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("MORPHEUS_RENDER_GOVERNOR", True),
        help="scale the render size to hold the frame rate (--no-render-governor: full size)",
    )
    parser.add_argument(
        "--min-render-scale",
        type=float,
        default=float(env.get("MORPHEUS_MIN_RENDER_SCALE", "0.4")),
    )
    parser.add_argument("--log-level", default=env.get("LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a worker token is required (--token or WORKER_TOKEN)")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = AgentConfig(
        platform_url=args.platform_url,
        token=args.token,
        name=args.name,
        max_streams=max(1, args.max_streams),
        metrics_port=args.metrics_port,
        heartbeat_s=max(0.2, args.heartbeat_s),
        nvenc_enabled=_env_bool("NVENC_ENABLED", True),
        rung_sizes=parse_rung_sizes(args.rung_sizes),
        max_fps=args.max_fps or None,
        render_governor=args.render_governor,
        min_render_scale=min(1.0, max(0.1, args.min_render_scale)),
    )
    if args.cache_dir:
        config.cache_dir = Path(args.cache_dir)
    return config


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        asyncio.run(WorkerAgent(config).run())
    except FatalAgentError as exc:
        logging.getLogger("workers.streaming").error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
