"""WebSocket fuzzing (Hypothesis) against the real ASGI application and Redis channel layer.

The session socket and the streaming workers' control socket get random and mutated
envelopes, wrong types, huge numbers, deep nesting, oversized and binary frames. For every
frame: no consumer exception (no ``internal_error``, nothing logged at ERROR), every reply is a
well-formed error (or a reply the valid part of a mutated message earns), the socket stays
open unless it closes with a documented code, and a second client is unaffected.

Rate limits are raised for these tests so each frame reaches the parsers; the limits have
their own tests in the apps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async as db
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.accounts.services import token_pair_issue
from apps.accounts.tests.factories import UserFactory
from apps.sessions import services as session_services
from apps.streaming import services as stream_services
from apps.streaming.models import StreamingWorker

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]
TIMEOUT = 5.0
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same frames every run: a failure here is a bug, not bad luck
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- strategies ----------------------------------------------------------------------------

HUGE = st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1, 1e308, 5e-324])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    # lone surrogates: valid JSON escapes no UTF-8 encoder (Redis, PostgreSQL) can hold
    | st.sampled_from(["\ud800", "a\udfffb", "\udbff\udbff"])
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
SESSION_EVENTS = [
    "hermes:pose",
    "athena:heartbeat",
    "hermes:session_join",
    "athena:authenticate",
    "morpheus:signal",
    "morpheus:quality_change",
    "hermes:poses",
    "error",
]
VALID_POSE = {"p": [0.0, 1.6, 0.0], "q": [0.0, 0.0, 0.0, 1.0], "t": 1.0, "seq": 1}


def _text(value: Any) -> str:
    return json.dumps(value)  # allow_nan: Infinity/NaN are what a hostile client sends


def _mutated(valid: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``valid`` with one field replaced, removed or added."""
    keys = st.sampled_from(sorted(valid))
    return st.one_of(
        st.builds(lambda k, v: {**valid, k: v}, keys, JSON),
        st.builds(lambda k: {key: v for key, v in valid.items() if key != k}, keys),
        st.builds(lambda k, v: {**valid, k: v}, st.text(max_size=8), JSON),
    )


def _deep(n: int, kind: str) -> str:
    inner = "[" * n + "]" * n if kind == "list" else '{"a":' * n + "1" + "}" * n
    return f'{{"event":"hermes:pose","data":{inner}}}'


ENVELOPE_TEXT = st.one_of(
    # random envelopes: known or random events, random data
    st.builds(
        lambda e, d: _text({"event": e, "data": d}),
        st.sampled_from(SESSION_EVENTS) | st.text(max_size=30) | JSON,
        JSON,
    ),
    # mutated valid messages
    st.builds(lambda d: _text({"event": "hermes:pose", "data": d}), _mutated(VALID_POSE)),
    st.builds(lambda d: _text({"event": "athena:heartbeat", "data": d}), _mutated({"t": 1.0})),
    st.builds(
        lambda d: _text({"event": "morpheus:quality_change", "data": d}),
        _mutated({"quality": "720p"}),
    ),
    st.builds(
        lambda d: _text({"event": "morpheus:signal", "data": d}),
        _mutated({"stream_id": "00000000-0000-0000-0000-000000000000", "candidate": {}}),
    ),
    st.builds(_text, _mutated({"event": "hermes:pose", "data": VALID_POSE})),
    # not envelopes at all
    st.builds(_text, JSON),
    st.text(max_size=200),
    # deep nesting, huge literal numbers, oversized frames
    st.builds(_deep, st.integers(50, 5000), st.sampled_from(["list", "dict"])),
    st.integers(300, 6000).map(lambda n: '{"event":"hermes:pose","data":{"t":' + "9" * n + "}}"),
    st.integers(16 * 1024, 40 * 1024).map(lambda n: _text({"event": "x", "data": "a" * n})),
)


@dataclass(frozen=True)
class Frame:
    text: str | None = None
    binary: bytes | None = None


FRAMES = st.one_of(
    ENVELOPE_TEXT.map(lambda t: Frame(text=t)),
    st.binary(max_size=300).map(lambda b: Frame(binary=b)),
    ENVELOPE_TEXT.map(lambda t: Frame(binary=t.encode())),
)


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    # channels_redis binds locks to the event loop; each async test has its own loop.
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    settings.HERMES_WS_RATE = settings.HERMES_WS_POSE_RATE = 1e6
    settings.HERMES_WS_BURST = settings.HERMES_WS_POSE_BURST = 1e6


async def _connect(path: str, token: str) -> WebsocketCommunicator:
    from vrplatform.asgi import application

    comm = WebsocketCommunicator(
        application, path, subprotocols=["vrplatform.v1", f"bearer.{token}"]
    )
    connected, subprotocol = await comm.connect(timeout=TIMEOUT)
    assert connected
    assert subprotocol == "vrplatform.v1"
    return comm


async def _send(comm: WebsocketCommunicator, frame: Frame) -> None:
    # send_input, not send_to: empty frames are frames too.
    if frame.text is not None:
        await comm.send_input({"type": "websocket.receive", "text": frame.text})
    else:
        await comm.send_input({"type": "websocket.receive", "bytes": frame.binary})


async def _until(comm: WebsocketCommunicator, done: Any) -> list[dict[str, Any]]:
    """Replies up to and including the first one ``done`` accepts (a close fails the test)."""
    seen: list[dict[str, Any]] = []
    while True:
        message = await comm.receive_output(timeout=TIMEOUT)
        assert message["type"] != "websocket.close", f"closed with {message.get('code')}: {seen}"
        assert "text" in message, message  # the servers only ever send text frames
        reply = json.loads(message["text"])
        seen.append(reply)
        if done(reply):
            return seen


def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("apps")]
    assert not errors, [r.getMessage() for r in errors]


# --- the session socket --------------------------------------------------------------------


@dataclass
class Room:
    fuzzer: WebsocketCommunicator
    witness: WebsocketCommunicator
    counter: list[int]


@pytest.fixture
async def room() -> AsyncIterator[Room]:
    host = await db(UserFactory)(roles=["participant"])
    guest = await db(UserFactory)(roles=["participant"])
    session = await db(session_services.session_create)(owner=host, name="fuzz")
    path = f"/ws/hermes/sessions/{session.id}/"
    comms = []
    for user in (host, guest):
        comm = await _connect(path, (await db(token_pair_issue)(user=user)).access)
        await comm.send_to(text_data=_text({"event": "hermes:session_join", "data": {}}))
        established = await _until(comm, lambda r: r["event"] == "hermes:session_established")
        assert established[-1]["data"]["user_id"] == user.pk
        comms.append(comm)
    # the host hears the guest arrive before the fuzzing starts
    await _until(comms[0], lambda r: r["event"] == "hermes:participant_joined")
    yield Room(comms[0], comms[1], [0])
    for comm in comms:
        await comm.disconnect()
    # Async tests write through another thread's connection, outside the test transaction:
    # remove what this test made so later tests (counts of sessions, users) never see it.
    await db(session.delete)()
    for user in (host, guest):
        await db(user.delete)()


async def _heartbeat(comm: WebsocketCommunicator, t: float) -> list[dict[str, Any]]:
    """Send a heartbeat and return everything up to its echo: a barrier after a frame."""
    await comm.send_to(text_data=_text({"event": "athena:heartbeat", "data": {"t": t}}))
    return await _until(comm, lambda r: r["event"] == "athena:heartbeat" and r["data"]["t"] == t)


def _check_session_reply(reply: dict[str, Any]) -> None:
    assert set(reply) == {"event", "data"}, reply
    if reply["event"] == "error":
        data = reply["data"]
        assert isinstance(data["code"], str), reply
        assert data["code"], reply
        assert isinstance(data["message"], str), reply
        assert "detail" in data, reply
        assert data["code"] != "internal_error", reply
    else:
        # A frame that happens to be a valid heartbeat is echoed; valid poses come back
        # in the per-tick snapshot.
        assert reply["event"] in ("athena:heartbeat", "hermes:poses"), reply


@FUZZ
@given(frame=FRAMES)
async def test_session_socket_survives_fuzzing(
    room: Room, frame: Frame, caplog: pytest.LogCaptureFixture
) -> None:
    room.counter[0] += 1
    barrier = -float(room.counter[0])
    await _send(room.fuzzer, frame)
    for reply in await _heartbeat(room.fuzzer, barrier):
        _check_session_reply(reply)
    # the other member still works and heard nothing but poses
    for reply in await _heartbeat(room.witness, barrier):
        assert reply["event"] in ("athena:heartbeat", "hermes:poses"), reply
    _no_errors_logged(caplog)


async def test_session_socket_answers_known_hostile_frames(room: Room) -> None:
    """The frames fuzzing found, pinned: each gets the documented error code."""
    cases = [
        (Frame(binary=b"\x00\xff"), "binary_not_supported"),
        (Frame(text="{"), "bad_json"),
        (Frame(text="[" * 100_00 + "]" * 100_00), "too_large"),
        (Frame(text=_deep(3000, "list")), "bad_json"),  # past the decoder's recursion limit
        (Frame(text='{"event":"hermes:pose","data":{"t":' + "9" * 5000 + "}}"), "bad_json"),
        (Frame(text=_text({"event": "hermes:pose", "data": {**VALID_POSE, "t": 10**400}})), ""),
        (Frame(text=_text({"event": 1, "data": {}})), "bad_envelope"),
        (Frame(text=_text({"event": "nope", "data": {}})), "unknown_event"),
        # issue 25 item 12: a renewal token no encoder can hold was an internal_error
        (Frame(text=_text({"event": "athena:heartbeat", "data": {"token": "\ud800"}})), "bad_json"),
        (Frame(text=_text({"event": "hermes:pose", "data": {"\udfff": 1}})), "bad_json"),
    ]
    for n, (frame, code) in enumerate(cases):
        await _send(room.fuzzer, frame)
        replies = await _heartbeat(room.fuzzer, float(n))
        errors = [r["data"]["code"] for r in replies if r["event"] == "error"]
        for reply in replies:
            _check_session_reply(reply)
        if code:
            assert errors == [code], (frame, replies)
        else:
            assert len(errors) == 1, (frame, replies)


# --- the worker socket ---------------------------------------------------------------------

WORKER_TYPES = ["register", "heartbeat", "signal", "stats", "stream_stopped", "stream_start"]
WORKER_TEXT = st.one_of(
    st.builds(
        lambda t, d: _text({**d, "type": t}) if isinstance(d, dict) else _text(d),
        st.sampled_from(WORKER_TYPES) | st.text(max_size=20),
        JSON,
    ),
    st.builds(_text, _mutated({"type": "heartbeat", "worker_id": "w", "streams": 0, "load": 0.5})),
    st.builds(
        _text,
        _mutated({"type": "register", "worker_id": "w", "capabilities": {}, "versions": [2]}),
    ),
    st.builds(
        _text,
        _mutated(
            {
                "type": "stats",
                "stream_id": "00000000-0000-0000-0000-000000000000",
                "stats": {"t": 1.0, "rung": "720p", "stage_ms": {"render": {"p50": 1.0}}},
            }
        ),
    ),
    st.builds(
        _text,
        _mutated({"type": "signal", "stream_id": "x", "candidate": {"candidate": "c"}}),
    ),
    st.builds(_text, _mutated({"type": "stream_stopped", "stream_id": "x", "reason": "r"})),
    ENVELOPE_TEXT,
)
WORKER_FRAMES = st.one_of(
    WORKER_TEXT.map(lambda t: Frame(text=t)),
    WORKER_TEXT.map(lambda t: Frame(binary=t.encode())),
    st.binary(max_size=300).map(lambda b: Frame(binary=b)),
)
REGISTER = _text(
    {"type": "register", "worker_id": "w", "capabilities": {"max_streams": 1}, "versions": [2]}
)
# Answered with error too_large, which no fuzzed frame (all far smaller) earns: a barrier.
SENTINEL = "x" * (256 * 1024 + 1)


@dataclass
class Workers:
    fuzzer_token: str
    witness: WebsocketCommunicator


@pytest.fixture
async def workers() -> AsyncIterator[Workers]:
    _, fuzzer_token = await db(stream_services.worker_create)(name="fuzzer")
    _, witness_token = await db(stream_services.worker_create)(name="witness")
    witness = await _connect("/ws/morpheus/worker/", witness_token)
    await witness.send_to(text_data=REGISTER)
    assert (await _until(witness, lambda r: True))[0]["type"] == "registered"
    yield Workers(fuzzer_token, witness)
    await witness.disconnect()
    await db(lambda: StreamingWorker.objects.filter(name__in=["fuzzer", "witness"]).delete())()


def _check_worker_reply(reply: dict[str, Any]) -> None:
    if reply.get("type") == "error":
        assert isinstance(reply["code"], str), reply
        assert reply["code"], reply
        assert isinstance(reply["message"], str), reply
        assert reply["code"] != "internal_error", reply
    else:
        assert reply.get("type") == "registered", reply  # a valid register is answered


@FUZZ
@given(frames=st.lists(WORKER_FRAMES, min_size=1, max_size=3), register_first=st.booleans())
async def test_worker_socket_survives_fuzzing(
    workers: Workers, frames: list[Frame], register_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # A fresh socket per example: the consumer closes (4429) after 50 bad messages.
    comm = await _connect("/ws/morpheus/worker/", workers.fuzzer_token)
    try:
        if register_first:
            await comm.send_to(text_data=REGISTER)
            assert (await _until(comm, lambda r: True))[0]["type"] == "registered"
        for frame in frames:
            await _send(comm, frame)
            await comm.send_to(text_data=SENTINEL)
            replies = await _until(
                comm, lambda r: r.get("code") in ("too_large", "unsupported_version")
            )
            for reply in replies:
                _check_worker_reply(reply)
            if replies[-1]["code"] == "unsupported_version":
                # A register with no protocol version in common: refused, then closed (4426).
                closed = await comm.receive_output(timeout=TIMEOUT)
                assert closed == {"type": "websocket.close", "code": 4426}
                break
    finally:
        await comm.disconnect()
    # the other worker is still connected and answered (registering again is no strike)
    await workers.witness.send_to(text_data=REGISTER)
    assert (await _until(workers.witness, lambda r: True))[0]["type"] == "registered"
    _no_errors_logged(caplog)
