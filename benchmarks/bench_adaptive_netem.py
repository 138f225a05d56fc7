"""Adaptive quality on a real impaired link: the rung steps down under impairment and back up.

Run as root: ``.venv/bin/python benchmarks/bench_adaptive_netem.py [--oracle both|on|off]
[--clean-s 10] [--impaired-s 15] [--recover-s 20] [--json OUT]``

Builds a network namespace joined to the root namespace by a veth pair (10.200.77.0/30),
runs daphne (bound to 0.0.0.0, throw-away SQLite) and one streaming worker (pattern source,
small rung sizes so every rung fits 2 cores) in the root namespace, and the synthetic headset
inside the namespace, so every packet between worker and headset crosses the veth. Once the
headset decodes its first frame the script applies a schedule on the root side of the veth
(the video direction): clean, impaired, clean. It then prints a per-second timeline (rung,
sent bitrate, fps, loss and RTT from the worker's RTCP-based stats reports, decoded fps at the
headset) and every rung change with its reason (from the worker's log).

The impairment: ``tc qdisc ... netem loss 5% delay 80ms`` when the kernel has ``sch_netem``.
Kernels without it (the development VMs: no netem, no tc classifiers or actions) get a token
bucket instead (``tbf rate R latency 80ms``): a bottleneck that queues up to 80 ms and drops
the excess, i.e. congestion loss and queueing delay rather than random loss plus fixed delay.
The table says which one ran.

``--oracle off`` runs the platform with the oracle's confidence bar out of reach (it never
sends ``quality_hint``), ``on`` with the defaults, ``both`` runs both, one after the other.
The namespace, the veth and the processes are always removed (try/finally).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.core.testing import Processes, free_port, http_ok, wait_until  # noqa: E402

PY = sys.executable
RUNG_SIZES = "720p=320x180,1080p=480x270,2K=640x360,4K=960x540"
HOST_IP, NS_IP = "10.200.77.1", "10.200.77.2"
_CHANGE = re.compile(
    r"^(?P<ts>\S+ \S+) INFO \S+: stream \S+ rung (?P<old>\S+) -> (?P<new>\S+) \((?P<why>.*)\)$"
)


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True)


def netem_available() -> bool:
    """Try a netem qdisc on a throw-away dummy link (the module may be missing)."""
    name = f"vrprobe{os.getpid() % 10000}"
    if sh("ip", "link", "add", name, "type", "dummy", check=False).returncode != 0:
        return False
    try:
        probe = sh("tc", "qdisc", "add", "dev", name, "root", "netem", "delay", "1ms", check=False)
        return probe.returncode == 0
    finally:
        sh("ip", "link", "del", name, check=False)


@dataclass
class Link:
    """A namespace and a veth pair; ``impair``/``clear`` act on the root side (egress)."""

    ns: str
    host_if: str
    netem: bool
    tbf_rate: str

    def up(self) -> None:
        peer = self.host_if + "p"
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", peer)
        sh("ip", "link", "set", peer, "netns", self.ns)
        sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        inside = ["ip", "netns", "exec", self.ns]
        sh(*inside, "ip", "addr", "add", f"{NS_IP}/30", "dev", peer)
        sh(*inside, "ip", "link", "set", peer, "up")
        sh(*inside, "ip", "link", "set", "lo", "up")

    def impair(self) -> str:
        if self.netem:
            args = ["netem", "loss", "5%", "delay", "80ms"]
        else:
            args = ["tbf", "rate", self.tbf_rate, "burst", "16kb", "latency", "80ms"]
        sh("tc", "qdisc", "replace", "dev", self.host_if, "root", *args)
        return " ".join(args)

    def clear(self) -> None:
        sh("tc", "qdisc", "del", "dev", self.host_if, "root", check=False)

    def down(self) -> None:
        self.clear()
        sh("ip", "netns", "del", self.ns, check=False)  # takes the peer end with it
        sh("ip", "link", "del", self.host_if, check=False)


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def run_once(args: argparse.Namespace, *, oracle: bool, netem: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-adaptive-"))
    settings_dir = tmp / "settings"
    settings_dir.mkdir()
    # A settings module of our own: the oracle's thresholds are settings, not environment.
    (settings_dir / "bench_adaptive_settings.py").write_text(
        "from vrplatform.settings.base import *  # noqa\n"
        + ("" if oracle else "MONITORING_ORACLE_MIN_CONFIDENCE = 2.0  # never reached: off\n")
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{settings_dir}:{ROOT}",
        "DJANGO_SETTINGS_MODULE": "bench_adaptive_settings",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}?transaction_mode=IMMEDIATE&timeout=20",
        "REDIS_URL": "",
        "MEDIA_ROOT": str(tmp / "media"),
        "ALLOWED_HOSTS": f"127.0.0.1,localhost,{HOST_IP}",
        "THROTTLE_AUTHENTICATE": "1000/min",
        "LOG_LEVEL": "INFO",
    }
    link = Link(f"vrbench{os.getpid()}", f"vrb{os.getpid() % 100000}", netem, args.tbf_rate)
    procs = Processes(tmp)
    schedule: list[tuple[float, str]] = []
    try:
        manage(env, "migrate", "-v0")
        manage(env, "create_demo_users")
        token = manage(env, "create_worker", "--name", "bench-w").splitlines()[-1].strip()
        link.up()
        port = free_port()
        daphne = ["-m", "daphne", "-b", "0.0.0.0", "-p", str(port), "vrplatform.asgi:application"]  # noqa: S104
        procs.start("daphne", daphne, env)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), "daphne", 60)
        worker = [
            "-m", "workers.streaming", "--platform-url", f"http://127.0.0.1:{port}",
            "--token", token, "--name", "bench-w", "--heartbeat-s", "1",
            "--max-fps", str(args.max_fps), "--rung-sizes", RUNG_SIZES,
        ]  # fmt: skip
        procs.start("worker", worker, {**env, "NVENC_ENABLED": "0"})
        wait_until(lambda: "registered" in procs.log("worker") or _online(env), "worker", 30)
        ready = tmp / "ready"
        total = args.clean_s + args.impaired_s + args.recover_s
        headset = [
            "ip", "netns", "exec", link.ns, PY, "-m", "workers.headset",
            "--platform-url", f"http://{HOST_IP}:{port}", "--username", "player",
            "--password", "player-demo", "--seconds", str(total), "--fps", "60",
            "--quality", args.quality, "--json", str(tmp / "headset.json"),
            "--ready-file", str(ready),
        ]  # fmt: skip
        log = (tmp / "headset.log").open("wb")
        proc = subprocess.Popen(headset, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: ready.exists() or proc.poll() is not None, "first frame", 60)
        if proc.poll() is not None:
            raise RuntimeError(f"headset exited: {(tmp / 'headset.log').read_text()[-2000:]}")
        t0 = time.time()
        schedule.append((0.0, "clean"))
        time.sleep(args.clean_s)  # the schedule itself: wall-clock phases, not synchronisation
        schedule.append((time.time() - t0, link.impair()))
        time.sleep(args.impaired_s)
        link.clear()
        schedule.append((time.time() - t0, "clean"))
        proc.wait(timeout=total + 60)
        result = json.loads((tmp / "headset.json").read_text())
        changes = _rung_changes(tmp / "worker.log", t0)
        return {
            "oracle": oracle,
            "impairment": "netem" if netem else f"tbf {args.tbf_rate}",
            "t0_ms": t0 * 1000.0,
            "schedule": schedule,
            "history": result.get("worker_history", []),
            "frames": [f["decoded_ms"] for f in result.get("frames", [])],
            "changes": changes,
            "summary": result.get("summary", {}),
        }
    finally:
        procs.stop_all()
        link.down()
        if args.keep:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _online(env: dict[str, str]) -> bool:
    out = manage(env, "shell", "-c", _ONLINE_QUERY)
    return out.endswith("True")


_ONLINE_QUERY = (
    "from apps.streaming.models import StreamingWorker as W;"
    "print(W.objects.filter(status=W.Status.ONLINE).exists())"
)


def _rung_changes(log: Path, t0: float) -> list[dict[str, Any]]:
    """Rung changes with their reasons, from the worker's log (local-time asctime)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        m = _CHANGE.match(line)
        if not m:
            continue
        stamp = time.mktime(time.strptime(m["ts"].split(",")[0], "%Y-%m-%d %H:%M:%S"))
        t = stamp + int(m["ts"].split(",")[1]) / 1000.0 - t0
        out.append({"t": round(t, 1), "from": m["old"], "to": m["new"], "reason": m["why"]})
    return out


def timeline(run: dict[str, Any]) -> str:
    """Markdown: one row per worker stats report (about one a second)."""
    t0 = run["t0_ms"]
    phases = run["schedule"]

    def phase(t: float) -> str:
        current = phases[0][1]
        for start, name in phases:
            if t >= start:
                current = name
        return "impaired" if current != "clean" else "clean"

    frames = run["frames"]
    lines = [
        "| t s | link | rung | sent Mbit/s | worker fps | decoded fps | loss % | RTT ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for h in run["history"]:
        t = (h["t"] - t0) / 1000.0
        if t < -1.0:
            continue
        decoded = sum(1 for f in frames if h["t"] - 1000.0 <= f < h["t"])
        loss = h.get("loss")
        rtt = h.get("rtt_ms")
        lines.append(
            f"| {t:.0f} | {phase(t)} | {h.get('rung')} | {(h.get('bitrate_bps') or 0) / 1e6:.2f}"
            f" | {h.get('fps') or 0:.0f} | {decoded} | "
            f"{'-' if loss is None else f'{100 * loss:.1f}'} | "
            f"{'-' if rtt is None else f'{rtt:.0f}'} |"
        )
    return "\n".join(lines)


def changes_text(run: dict[str, Any]) -> str:
    rows = [f"- t={c['t']:.1f} s: {c['from']} -> {c['to']} ({c['reason']})" for c in run["changes"]]
    return "\n".join(rows) or "- none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--oracle", choices=("both", "on", "off"), default="both")
    parser.add_argument("--clean-s", type=float, default=10.0)
    parser.add_argument("--impaired-s", type=float, default=15.0)
    parser.add_argument("--recover-s", type=float, default=20.0)
    parser.add_argument("--quality", default="auto")
    parser.add_argument("--max-fps", type=float, default=30.0)
    parser.add_argument("--tbf-rate", default="1mbit", help="bottleneck when netem is missing")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the logs")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (ip netns, tc)")
    netem = netem_available()
    if not netem:
        print(
            "tc netem is NOT available on this kernel (sch_netem missing): impairing with a "
            f"tbf bottleneck ({args.tbf_rate}, 80 ms queue) instead of 5% loss + 80 ms delay.",
            flush=True,
        )
    runs = []
    for oracle in {"both": (False, True), "on": (True,), "off": (False,)}[args.oracle]:
        run = run_once(args, oracle=oracle, netem=netem)
        runs.append(run)
        schedule = ", ".join(f"{t:.1f} s: {name}" for t, name in run["schedule"])
        print(f"\n### oracle {'on' if oracle else 'off'}; impairment {run['impairment']}")
        print(f"schedule (from the first decoded frame): {schedule}\n")
        print(timeline(run))
        print("\nrung changes (worker log):")
        print(changes_text(run), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(runs, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
