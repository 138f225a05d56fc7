"""Streams across NATs and through a TURN relay, on networks built the way they really are.

Each test builds its own topology of network namespaces joined by veth pairs (unique names,
always removed), with only addresses inside those namespaces and loopback:

    client 10.231.1.2 -- [client NAT, MASQUERADE] -- public 10.231.0.1 / 10.232.0.1 (coturn)
    worker 10.232.1.2 -- [worker NAT, MASQUERADE] --/

The public namespace has no route to either private network, so host candidates never
connect: media must go through coturn. The synthetic headset (the client) and the streaming
worker run inside their namespaces (``ip netns exec``); their signalling reaches the platform
(daphne on this machine's loopback) through a forwarder this test listens with inside each
namespace's own loopback, so cutting a media link leaves the session socket up.

Needs root and ``ip netns`` (as on CI) and coturn's ``turnserver``: skipped otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from apps.core.testing import free_port, wait_until
from apps.core.testing_browser import ARTIFACTS, ROOT, Server, orm
from apps.streaming.coturn import coturn_command
from apps.streaming.ice import turn_password

SECRET = "nat-test-secret-" + uuid.uuid4().hex
CLONE_NEWNET = 0x40000000


def _netns_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables", "turnserver"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (deploy/system-packages-test.txt)"
    probe = f"vrpprobe{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
        return "ip netns add failed (no CAP_SYS_ADMIN here?)"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


SKIP = _netns_usable()
pytestmark = [
    pytest.mark.skipif(SKIP is not None, reason=SKIP or ""),
    pytest.mark.timeout(120),
]


def sh(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {result.stderr.strip()}")


# ---------------------------------------------------------------- topology


@dataclass
class Topology:
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    made: list[str] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"vrp{self.tag}{role}"

    def exec(self, role: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(role)]

    def ip(self, role: str, *args: str) -> None:
        sh("ip", "-n", self.ns(role), *args)

    def iptables(self, role: str, *args: str) -> None:
        sh(*self.exec(role), "iptables", *args)

    def link(self, a: str, a_if: str, a_addr: str, b: str, b_if: str, b_addr: str) -> None:
        # veth names are global until moved: tag them; at most 15 characters.
        ta, tb = f"{self.tag}{a_if}", f"{self.tag}{b_if}"
        sh("ip", "link", "add", ta, "type", "veth", "peer", "name", tb)
        for ns, tmp, name, addr in ((a, ta, a_if, a_addr), (b, tb, b_if, b_addr)):
            sh("ip", "link", "set", tmp, "netns", self.ns(ns))
            self.ip(ns, "link", "set", tmp, "name", name)
            self.ip(ns, "addr", "add", addr, "dev", name)
            self.ip(ns, "link", "set", name, "up")

    def build(self) -> None:
        for role in ("c", "cn", "pub", "wn", "w"):
            sh("ip", "netns", "add", self.ns(role))
            self.made.append(self.ns(role))
            self.ip(role, "link", "set", "lo", "up")
        self.link("c", "c0", "10.231.1.2/24", "cn", "cn0", "10.231.1.1/24")
        self.link("cn", "cn1", "10.231.0.2/24", "pub", "p0", "10.231.0.1/24")
        self.link("w", "w0", "10.232.1.2/24", "wn", "wn0", "10.232.1.1/24")
        self.link("wn", "wn1", "10.232.0.2/24", "pub", "p1", "10.232.0.1/24")
        self.ip("c", "route", "add", "default", "via", "10.231.1.1")
        self.ip("cn", "route", "add", "default", "via", "10.231.0.1")
        self.ip("w", "route", "add", "default", "via", "10.232.1.1")
        self.ip("wn", "route", "add", "default", "via", "10.232.0.1")
        for router, out in (("cn", "cn1"), ("wn", "wn1")):
            sh(*self.exec(router), "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self.iptables(router, "-t", "nat", "-A", "POSTROUTING", "-o", out, "-j", "MASQUERADE")
            # A NAT lets in only what answers what went out.
            self.iptables(router, "-A", "FORWARD", "-i", out, "-m", "conntrack", "--ctstate",
                          "ESTABLISHED,RELATED", "-j", "ACCEPT")  # fmt: skip
            self.iptables(router, "-A", "FORWARD", "-i", out, "-j", "DROP")

    def remove(self) -> None:
        for ns in self.made:  # deleting a namespace deletes its veth ends
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made.clear()


def _listen_in(ns: str, port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:port *inside* ``ns``: a socket keeps the network
    namespace it was made in, so a short-lived thread enters ``ns`` (setns affects only the
    calling thread), makes it, and ends."""
    made: dict[str, Any] = {}

    def enter_and_listen() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(32)
            made["sock"] = sock
        except Exception as exc:  # reported in the caller's thread
            made["error"] = exc

    thread = threading.Thread(target=enter_and_listen)
    thread.start()
    thread.join()
    if "error" in made:
        raise made["error"]
    return made["sock"]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for s in (src, dst):
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


def forward_signalling(ns: str, port: int) -> socket.socket:
    """127.0.0.1:port inside ``ns`` -> 127.0.0.1:port here (the platform). Close the returned
    socket to stop."""
    listener = _listen_in(ns, port)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                inner, _ = listener.accept()
                outer = socket.create_connection(("127.0.0.1", port))
                for a, b in ((inner, outer), (outer, inner)):
                    threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener


# ---------------------------------------------------------------- fixtures


@dataclass
class Net:
    topo: Topology
    platform: Server
    procs: list[subprocess.Popen[bytes]]
    logs: Path

    def run_in(self, role: str, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [*self.topo.exec(role), *args],
            cwd=ROOT,
            env=self.platform.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]


TURN_URLS = "turn:10.231.0.1:3478?transport=udp,turn:10.231.0.1:3478?transport=tcp"


@pytest.fixture
def net(transactional_db: Any, tmp_path: Path) -> Iterator[Net]:
    from apps.accounts.services import roles_sync

    orm(roles_sync)
    topo = Topology()
    procs: list[subprocess.Popen[bytes]] = []
    listeners: list[socket.socket] = []
    ARTIFACTS.mkdir(exist_ok=True)
    platform = Server(ARTIFACTS)
    platform.env.update(
        TURN_URLS=TURN_URLS, TURN_SHARED_SECRET=SECRET, ICE_TRANSPORT_POLICY="relay"
    )
    net = Net(topo, platform, procs, tmp_path)
    try:
        topo.build()
        net.run_in(
            "pub",
            "coturn",
            coturn_command(secret=SECRET, listen_ip="10.231.0.1", state_dir=tmp_path),
        )
        platform.start()
        listeners += [forward_signalling(topo.ns(r), platform.port) for r in ("c", "w")]
        yield net
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for listener in listeners:
            listener.close()
        platform.stop()
        topo.remove()


def start_worker(net: Net) -> None:
    from apps.streaming.models import StreamingWorker
    from apps.streaming.services import worker_create

    name = f"nat-{net.topo.tag}"
    _, token = orm(worker_create, name=name)
    net.run_in(
        "w",
        "worker",
        [
            sys.executable, "-m", "workers.streaming",
            "--platform-url", f"http://127.0.0.1:{net.platform.port}",
            "--token", token, "--name", name, "--heartbeat-s", "1",
            "--max-fps", "30", "--rung-sizes", "256x144", "--no-render-governor",
        ],
    )  # fmt: skip

    def online() -> bool:
        if net.procs[-1].poll() is not None:
            raise AssertionError(net.log("worker"))
        return bool(orm(StreamingWorker.objects.filter(name=name, status="online").exists))

    wait_until(online, "the worker in its namespace to register", 30)


def run_headset(
    net: Net,
    user: Any,
    *,
    seconds: float,
    extra: list[str] = (),  # type: ignore[assignment]
    while_running: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    out, ready = net.logs / "headset.json", net.logs / "ready"
    from apps.core.testing_browser import PASSWORD

    proc = net.run_in(
        "c",
        "headset",
        [
            sys.executable, "-m", "workers.headset",
            "--platform-url", f"http://127.0.0.1:{net.platform.port}",
            "--username", user.username, "--password", PASSWORD, "--scene", "none",
            "--seconds", str(seconds), "--fps", "30", "--json", str(out),
            "--ready-file", str(ready), "--log-level", "INFO", *extra,
        ],
    )  # fmt: skip
    if while_running is not None:
        wait_until(lambda: ready.exists() or proc.poll() is not None, "the first frame", 60)
        assert ready.exists(), net.log("headset") + net.log("worker")
        while_running(ready)
    try:
        proc.wait(seconds + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
    assert proc.returncode == 0, net.log("headset") + "\n--- worker\n" + net.log("worker")
    return dict(json.loads(out.read_text()))


def latest_report(stream_id: str) -> dict[str, Any]:
    from apps.streaming.models import Stream
    from apps.streaming.selectors import latest_report as live_or_flushed

    # The live second (batched reports reach the row at the next flush).
    return dict(orm(lambda: live_or_flushed(Stream.objects.get(pk=stream_id))))


# ---------------------------------------------------------------- the tests


def test_both_ends_behind_nat_stream_through_the_relay(net: Net, user_factory: Any) -> None:
    start_worker(net)
    result = run_headset(net, user_factory("natuser"), seconds=3)
    summary = result["summary"]
    assert summary["frames"] >= 30, summary  # stamped frames decoded, read back
    report = latest_report(summary["stream_id"])
    assert report["candidate_pair"] == "relay"


def test_udp_blocked_on_the_client_side_turn_over_tcp(net: Net, user_factory: Any) -> None:
    # Nothing but TCP leaves the client (the signalling forwarder is on its loopback).
    net.topo.iptables("c", "-A", "OUTPUT", "-o", "c0", "-p", "udp", "-j", "DROP")
    start_worker(net)
    result = run_headset(net, user_factory("tcpuser"), seconds=3, extra=["--turn-transport", "tcp"])
    summary = result["summary"]
    assert summary["frames"] >= 30, summary
    assert latest_report(summary["stream_id"])["candidate_pair"] == "relay"


def test_link_dropped_for_5_s_and_a_new_address_ice_restarts_in_the_same_session(
    net: Net, user_factory: Any
) -> None:
    from apps.streaming.models import Stream

    start_worker(net)
    times: dict[str, float] = {}

    def drop_link(_: Path) -> None:
        time.sleep(1.0)
        times["down"] = time.time() * 1000
        net.topo.ip("cn", "link", "set", "cn1", "down")  # the client's uplink: Wi-Fi gone
        # ...and it comes back with another address (a roam): the old path cannot resume by
        # itself, only a new ICE negotiation finds the new one.
        net.topo.ip("c", "addr", "del", "10.231.1.2/24", "dev", "c0")
        net.topo.ip("c", "addr", "add", "10.231.1.3/24", "dev", "c0")
        net.topo.ip("c", "route", "add", "default", "via", "10.231.1.1")
        time.sleep(5.0)
        net.topo.ip("cn", "link", "set", "cn1", "up")
        times["up"] = time.time() * 1000

    result = run_headset(net, user_factory("roamer"), seconds=15, while_running=drop_link)
    summary = result["summary"]
    after = [f for f in result["frames"] if f["decoded_ms"] > times["up"]]
    assert after, f"no frame after the link came back: {summary}"
    resumed_s = (after[0]["decoded_ms"] - times["up"]) / 1000
    assert resumed_s < 8, f"frames resumed {resumed_s:.1f} s after the link came back"
    assert len(after) >= 30
    assert summary["ice_restarts"] >= 1
    assert summary["render_started"] >= 2  # the worker's new offer(s)
    started = [e["data"] for e in result["events"] if e["event"] == "morpheus:render_started"]
    assert {s["stream_id"] for s in started} == {summary["stream_id"]}  # the same stream
    stream = orm(Stream.objects.get, pk=summary["stream_id"])
    assert str(stream.session_id) == summary["session_id"]  # the same session
    assert stream.participant_id == summary["participant_id"]  # and participant
    assert stream.placements == 1  # restarted in place, not placed again
    assert latest_report(summary["stream_id"])["candidate_pair"] == "relay"


# ---------------------------------------------------------------- credentials


@pytest.fixture
def loopback_coturn(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    log = (tmp_path / "coturn.log").open("ab")
    proc = subprocess.Popen(
        coturn_command(secret=SECRET, listen_ip="127.0.0.1", port=port, state_dir=tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(0.5)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _allocate(port: int, username: str, password: str) -> bool:
    from aioice.turn import create_turn_endpoint

    async def go() -> bool:
        try:
            transport, _ = await asyncio.wait_for(
                create_turn_endpoint(
                    asyncio.DatagramProtocol, ("127.0.0.1", port), username, password
                ),
                5,
            )
        except Exception:
            return False
        transport.close()
        return True

    for _ in range(20):  # coturn may still be starting
        with contextlib.suppress(ConnectionRefusedError):
            return asyncio.run(go())
    return False


def test_coturn_refuses_expired_forged_and_borrowed_credentials(
    loopback_coturn: int, settings: Any
) -> None:
    from apps.streaming.ice import turn_credentials

    settings.TURN_SHARED_SECRET = SECRET
    settings.TURN_CREDENTIAL_TTL_S = 600
    username, credential, _ = turn_credentials(user_id=1)
    assert _allocate(loopback_coturn, username, credential)  # the platform's own: accepted
    expired = f"{int(time.time()) - 10}:1"
    assert not _allocate(loopback_coturn, expired, turn_password(expired, SECRET))
    assert not _allocate(loopback_coturn, username, turn_password(username, "not-the-secret"))
    other_username, _, _ = turn_credentials(user_id=2)
    assert not _allocate(loopback_coturn, other_username, credential)  # user 1's, as user 2
