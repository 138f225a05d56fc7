"""Placement under concurrency, on real PostgreSQL connections (one per thread): placements no
longer wait for each other's row locks, yet never overfill a worker, and two participants of one
session starting at the same instant still share a worker."""

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, transaction

from apps.core.errors import ServiceUnavailable
from apps.sessions import services as session_services
from apps.streaming import services
from apps.streaming.models import Stream, StreamingWorker
from apps.streaming.selectors import streams_queued
from apps.streaming.services.placement import session_turn_lock

pytestmark = pytest.mark.django_db(transaction=True)


def _in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` at once, each on its own thread and database connection; their results
    (or the exceptions they raised) in order."""
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = calls[i]()
        except Exception as exc:  # handed back to the test to assert on
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


@contextlib.contextmanager
def _held_elsewhere(lock: Callable[[], Any], *, for_s: float = 20.0) -> Iterator[None]:
    """``lock()`` run in a transaction on another thread's connection, held until the block
    ends (or ``for_s`` passes), as a concurrent placement would hold it."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                lock()
                held.set()
                release.wait(timeout=for_s)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(timeout=10)
        yield
    finally:
        release.set()
        holder.join(timeout=for_s)


def _worker_row(worker: StreamingWorker) -> Callable[[], Any]:
    return lambda: StreamingWorker.objects.select_for_update(no_key=True).get(pk=worker.pk)


def _start(user: Any, session: Any) -> Callable[[], Stream]:
    return lambda: services.stream_start(user=user, session_id=session.id)[0]


def test_concurrent_placements_never_overfill_a_worker(
    make_user: Any, make_session: Any, online_worker: Any
) -> None:
    workers = [online_worker(f"w{i}", max_streams=2) for i in range(3)]
    users = [make_user() for _ in range(10)]
    sessions = [make_session(u) for u in users]  # ten sessions: no stickiness to help
    results = _in_threads([_start(u, s) for u, s in zip(users, sessions, strict=True)])

    placed = [r for r in results if isinstance(r, Stream)]
    refused = [r for r in results if isinstance(r, ServiceUnavailable)]
    assert len(placed) == 6, results
    assert len(refused) == 4, results
    assert {r.code for r in refused} == {"no_capacity"}
    for worker in workers:
        assert Stream.objects.filter(worker=worker, status__in=Stream.ACTIVE).count() == 2
    assert streams_queued().count() == 4


def test_a_placement_takes_the_next_worker_instead_of_waiting_for_a_locked_one(
    make_user: Any, make_session: Any, online_worker: Any
) -> None:
    best = online_worker("a-best", max_streams=4)
    other = online_worker("b-other", max_streams=4)
    user = make_user()
    session = make_session(user)
    with _held_elsewhere(_worker_row(best)):  # a placement onto ``best`` in progress
        began = time.monotonic()
        stream, _ = services.stream_start(user=user, session_id=session.id)
        took = time.monotonic() - began
    assert stream.worker_id == other.id
    # The old placement locked every live worker and would have waited the full 20 s.
    assert took < 10, took


def test_a_placement_waits_for_the_only_worker_when_it_stays_locked(
    make_user: Any, make_session: Any, online_worker: Any
) -> None:
    only = online_worker("only", max_streams=4)
    user = make_user()
    session = make_session(user)
    with _held_elsewhere(_worker_row(only), for_s=1.0):  # past the skip rounds (~0.3 s)
        stream, _ = services.stream_start(user=user, session_id=session.id)
    assert stream.worker_id == only.id  # placed, not queued behind a lock held for a second


def test_participants_of_one_session_starting_at_once_share_a_worker(
    make_user: Any, make_session: Any, online_worker: Any
) -> None:
    for i in range(4):
        online_worker(f"w{i}", max_streams=8)
    host = make_user()
    session = make_session(host)
    guests = [make_user() for _ in range(5)]
    for guest in guests:
        session_services.participant_join(session_id=session.id, user=guest)
    results = _in_threads([_start(u, session) for u in [host, *guests]])

    assert all(isinstance(r, Stream) for r in results), results
    assert len({r.worker_id for r in results}) == 1


def test_a_placement_goes_on_without_its_sessions_turn_when_it_waits_too_long(
    make_user: Any, make_session: Any, online_worker: Any
) -> None:
    online_worker("w", max_streams=4)
    user = make_user()
    session = make_session(user)

    def the_turn() -> None:  # as a transaction placing a dead worker's streams would hold it
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", list(session_turn_lock(session.id))
            )

    with _held_elsewhere(the_turn):
        began = time.monotonic()
        stream, _ = services.stream_start(user=user, session_id=session.id)
        took = time.monotonic() - began
    assert stream.worker_id is not None
    assert 0.45 < took < 10, took  # waited its turn for the bounded half second, then placed


def test_new_sessions_prefer_different_workers_among_equally_loaded_ones(
    make_user: Any, make_session: Any, online_worker: Any
) -> None:
    """Ties go by a hash of (session, worker), not by name: placements of new sessions at the
    same instant do not all start from (and contend for) the same worker."""
    for i in range(8):
        online_worker(f"w{i}", max_streams=8)
    user = make_user()
    sessions = [make_session(user) for _ in range(16)]
    firsts = set()
    for session in sessions:
        with transaction.atomic():  # nothing placed: every choice sees the same loads
            firsts.add(services.worker_choose(session_id=session.id).id)
            transaction.set_rollback(True)
    assert len(firsts) >= 4
    # And one session always prefers the same one.
    with transaction.atomic():
        again = {services.worker_choose(session_id=sessions[0].id).id for _ in range(3)}
        transaction.set_rollback(True)
    assert len(again) == 1
