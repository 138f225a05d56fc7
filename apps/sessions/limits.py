"""Per-connection token buckets for the session WebSocket.

The bucket is the one the streaming worker rate-limits its data channels with: defined once in
:mod:`workers.protocol.limits` and imported here, so ``apps.sessions.limits.TokenBucket``
keeps working.
"""

from workers.protocol.limits import TokenBucket

__all__ = ["TokenBucket"]
