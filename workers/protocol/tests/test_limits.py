"""The one token bucket: full at first, refilled by rate up to burst, spent one or many."""

from __future__ import annotations

from workers.protocol.limits import TokenBucket


def test_starts_full_and_refills_at_rate_up_to_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(100.5)  # half a second at 2/s: one token
    assert not bucket.take(100.5)
    bucket.refill(1000.0)
    assert bucket.tokens == 3.0


def test_take_up_to_spends_whole_tokens_only() -> None:
    bucket = TokenBucket(rate=1.0, burst=5.0)
    bucket.refill(0.0)
    assert bucket.take_up_to(2**31) == 5
    assert bucket.take_up_to(1) == 0
    bucket.refill(1.5)
    assert bucket.take_up_to(3) == 1
