"""Rate limits of the sandboxes: at most so many requests per window, on a monotonic clock."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """`limit` requests per `window_seconds`; `monotonic` is injectable so tests move time."""

    def __init__(self, limit: int, window_seconds: float, monotonic: Callable[[], float]) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("rate limit and window must be positive")
        self.limit = limit
        self.window_seconds = window_seconds
        self._monotonic = monotonic


class SlidingWindowRateLimiter(RateLimiter):
    """At most `limit` requests in any `window_seconds`, per key (a token, a client…).

    Rejected requests are not counted, so a client that backs off for Retry-After
    seconds gets through again.
    """

    def __init__(self, limit: int, window_seconds: float, monotonic: Callable[[], float]) -> None:
        super().__init__(limit, window_seconds, monotonic)
        self._hits: dict[str, deque[float]] = {}

    def acquire(self, key: str) -> int | None:
        """Count one request; None when allowed, else the whole seconds to wait (>= 1)."""
        now = self._monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_seconds:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window_seconds - now))
        hits.append(now)
        return None
