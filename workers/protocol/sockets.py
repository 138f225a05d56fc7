"""What every platform WebSocket shares: the subprotocol, how the token rides, the close codes,
and the version of the worker message set negotiated at register."""

from __future__ import annotations

from typing import Final

SUBPROTOCOL: Final = "vrplatform.v1"  # every platform WebSocket (sessions, workers, dashboard)
BEARER_PREFIX: Final = "bearer."  # the token rides as a second subprotocol, never in the URL
# The session socket's heartbeat, chosen like Socket.IO's 25 s ping (Phoenix: 30 s): well inside
# the 60 s after which proxies, load balancers and NATs drop an idle TCP flow, yet 2.5x fewer
# messages than a 10 s beat (at 10,000 users: 400 beats/s instead of 1,000). The server closes a
# socket that sent nothing for SESSION_IDLE_TIMEOUT_S: more than two beats, so one lost or late
# beat never closes it. The web client (static/client/js/socket.js HEARTBEAT_MS), the headset
# client and the load generator beat at this interval; settings read the timeout from here.
SESSION_HEARTBEAT_S: Final = 25.0
SESSION_IDLE_TIMEOUT_S: Final = 60.0
# Versions of the worker message set. A worker lists those it speaks in ``register``; the
# platform answers ``registered`` with the highest one both speak, or ``error``
# ``unsupported_version`` and closes with CLOSE_UNSUPPORTED_VERSION. A register without
# ``versions`` is a version-1 worker (untyped stats reports), which this platform refuses.
# Version 3 adds ``stats_batch`` (one message a second carrying every stream's report); a
# version-2 worker still sends one ``stats`` per stream, which the platform still takes.
PROTOCOL_VERSION: Final = 3
SUPPORTED_VERSIONS: Final[tuple[int, ...]] = (2, 3)
STATS_BATCH_VERSION: Final = 3  # the first version with ``stats_batch``

# Close codes of every platform socket, one meaning each (RFC 6455 leaves 4000-4999 to us;
# the last three digits follow HTTP where one fits).
CLOSE_SESSION_ENDED: Final = 4000  # sessions: the session ended
CLOSE_UNAUTHORIZED: Final = 4401  # bad, missing or expired token: retrying will not help
CLOSE_FORBIDDEN: Final = 4403  # authenticated, but not allowed here
CLOSE_NOT_FOUND: Final = 4404  # no such session
CLOSE_IDLE: Final = 4408  # sessions: nothing received for too long
CLOSE_SUPERSEDED: Final = 4409  # workers: the same worker connected again elsewhere
CLOSE_DECLARED_DEAD: Final = 4410  # workers: silent too long, its streams moved; register again
CLOSE_UNSUPPORTED_VERSION: Final = 4426  # workers: no protocol version in common
CLOSE_RATE_LIMITED: Final = 4429  # too many messages, or too many bad ones
CLOSE_OVERLOADED: Final = 4503  # sessions: the process is busy admitting others; retry later
CLOSE_CODES: Final[dict[int, str]] = {
    CLOSE_SESSION_ENDED: "session_ended",
    CLOSE_UNAUTHORIZED: "unauthorized",
    CLOSE_FORBIDDEN: "forbidden",
    CLOSE_NOT_FOUND: "not_found",
    CLOSE_IDLE: "idle_timeout",
    CLOSE_SUPERSEDED: "superseded",
    CLOSE_DECLARED_DEAD: "declared_dead",
    CLOSE_UNSUPPORTED_VERSION: "unsupported_version",
    CLOSE_RATE_LIMITED: "rate_limited",
    CLOSE_OVERLOADED: "overloaded",
}


def negotiate_version(versions: tuple[int, ...]) -> int | None:
    """The highest version both sides speak, or None."""
    common = set(versions) & set(SUPPORTED_VERSIONS)
    return max(common) if common else None
