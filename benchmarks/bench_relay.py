"""Relayed vs direct: the latency a TURN relay adds to a stream, measured in one run.

Run: ``.venv/bin/python benchmarks/bench_relay.py [--rounds 3] [--seconds 6] [--json OUT]``

Starts a coturn on loopback (Debian's ``turnserver``, the platform's TURN REST credentials),
its own platform (daphne, throw-away SQLite) with ``TURN_URLS`` pointing at it, one streaming
worker (pattern source, 320x180 per eye, paced up to TARGET_FRAME_RATE) and the synthetic
headset, then alternates
rounds of one stream direct (host candidates) and one stream forced through the relay (the
headset's ``ice_transport_policy="relay"``: headset -> coturn -> worker), so both see the same
machine load. Reports pose-to-decoded latency p50 and the network+decode stage p50 of each, and
their relay/direct ratios. On loopback the relay's cost is coturn's own forwarding (two extra
user-space hops per packet), not a longer path: a real relay adds its network distance too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_streaming import Platform  # noqa: E402

from apps.core.testing import free_port  # noqa: E402
from apps.streaming.coturn import coturn_command  # noqa: E402
from workers.headset.client import HeadsetOptions, SyntheticHeadset  # noqa: E402


async def one_stream(url: str, policy: str | None, seconds: float) -> dict[str, Any]:
    headset = SyntheticHeadset(
        HeadsetOptions(
            url,
            "player",
            "player-demo",
            seconds=seconds,
            fps=30,
            start_timeout_s=60,
            ice_transport_policy=policy,
            ice_restart_after_s=0,
        )
    )
    result = await headset.run()
    summary = result["summary"]
    summary["candidate_pair"] = result["worker_metrics"].get("candidate_pair")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    secret, port = secrets.token_urlsafe(24), free_port()
    log = (tmp / "coturn.log").open("wb")
    coturn = subprocess.Popen(
        coturn_command(
            secret=secret, listen_ip="127.0.0.1", port=port, state_dir=tmp,
            allow_loopback_peers=True,
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    platform = Platform(tmp)
    platform.env.update(
        TURN_URLS=f"turn:127.0.0.1:{port}?transport=udp",
        TURN_SHARED_SECRET=secret,
        ICE_TRANSPORT_POLICY="all",
    )
    runs: dict[str, list[dict[str, Any]]] = {"direct": [], "relay": []}
    try:
        platform.start(demo_scene=False)  # the worker's pattern source is enough here
        platform.worker("bench-relay", "320x180", 2)
        for _ in range(args.rounds):
            for label, policy in (("direct", None), ("relay", "relay")):
                summary = asyncio.run(one_stream(platform.url, policy, args.seconds))
                runs[label].append(summary)
                lat = summary.get("latency_ms") or {}
                print(
                    f"{label:6} pair={summary['candidate_pair']} fps={summary['fps']} "
                    f"latency p50={lat.get('p50')} network_decode p50="
                    f"{(summary['stage_ms'].get('network_decode') or {}).get('p50')}",
                    flush=True,
                )
                time.sleep(1)
    finally:
        platform.stop()
        coturn.terminate()
        coturn.wait(10)

    def median(label: str, key: str) -> float:
        if key == "latency":
            values = [s["latency_ms"]["p50"] for s in runs[label] if s.get("latency_ms")]
        else:
            values = [
                s["stage_ms"]["network_decode"]["p50"]
                for s in runs[label]
                if (s.get("stage_ms") or {}).get("network_decode")
            ]
        return float(statistics.median(values))

    out = {
        "runs": runs,
        "latency_p50_ms": {k: median(k, "latency") for k in runs},
        "network_decode_p50_ms": {k: median(k, "network") for k in runs},
        "pairs": {k: sorted({str(s.get("candidate_pair")) for s in runs[k]}) for k in runs},
    }
    out["latency_ratio"] = out["latency_p50_ms"]["relay"] / out["latency_p50_ms"]["direct"]
    out["network_decode_ratio"] = (
        out["network_decode_p50_ms"]["relay"] / out["network_decode_p50_ms"]["direct"]
    )
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
