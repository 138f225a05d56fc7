"""Rate limits shared by the platform's sockets and the worker's data channels."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one message costs one.

    The bucket starts full and refills from its first use, so the clock is whatever the caller
    passes (the event loop's time, a test's numbers); ``take()`` without one uses
    ``time.monotonic()``.
    """

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def refill(self, now: float) -> None:
        """Add what ``rate`` earned since the last refill, up to ``burst``."""
        if self.updated is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, now: float | None = None) -> bool:
        """Refill, then spend one token; False when there was none."""
        self.refill(time.monotonic() if now is None else now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def take_up_to(self, count: int) -> int:
        """Spend up to ``count`` whole tokens without refilling (call :meth:`refill` first);
        how many were spent. Arithmetic, so a hostile ``count`` of 2**31 costs nothing."""
        spent = max(0, min(count, int(self.tokens)))
        self.tokens -= spent
        return spent
