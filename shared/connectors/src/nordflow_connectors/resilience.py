"""Client-side rate limiting and retries with backoff, jitter and Retry-After."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0


class PartnerError(Exception):
    """A partner API refused a request; ``status`` and the partner's message are kept."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message

    @property
    def permanent(self) -> bool:
        """A 4xx other than 408/429 will not succeed when retried unchanged."""
        return 400 <= self.status < 500 and self.status not in {408, 429}


class Slot:
    """One call's place in the window; stamped again when its answer arrives."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


class Limiter(Protocol):
    """Paces a client's calls: ``acquire`` before each call, ``done`` once it is answered.

    ``SlidingWindowLimiter`` paces one process; ``budget.PgRateBudget`` every process that
    calls the same company.
    """

    async def acquire(self) -> Slot:
        """Wait for room for one more call."""
        ...

    def done(self, slot: Slot) -> None:
        """The call was answered."""
        ...


class SlidingWindowLimiter:
    """At most ``limit`` calls in any ``window`` seconds (e.g. Fortnox: 25 per 5 s).

    The server counts a request when it arrives, which may be well after we let it go (a slow
    connect, a TLS handshake). So a call keeps its place until its answer is in
    (``Slot.done``): the window is measured from then, which is never earlier than the server's.
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._slots: list[Slot] = []
        self._lock = asyncio.Lock()

    async def acquire(self) -> Slot:
        """Wait until one more call fits in the window; stamp its slot done when answered."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._slots = [s for s in self._slots if now - s.at < self.window]
                if len(self._slots) < self.limit:
                    slot = Slot(now)
                    self._slots.append(slot)
                    return slot
                oldest = min(s.at for s in self._slots)
                await asyncio.sleep(self.window - (now - oldest) + 0.01)

    @staticmethod
    def done(slot: Slot) -> None:
        """The call was answered: its place in the window counts from now."""
        slot.at = time.monotonic()


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds, if it is a number."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


async def send_with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    attempts: int = 5,
    initial: float = 0.5,
    cap: float = 20.0,
    only_rejected: bool = False,
) -> httpx.Response:
    """Call ``send`` until it answers non-retryably; 429/5xx/timeouts back off with jitter.

    With ``only_rejected`` only a 429 is retried: the partner refused it before doing anything,
    so even a non-idempotent create may be sent again. Otherwise only for requests that are
    safe to repeat: reads, or writes whose duplicate the caller rules out by looking first.
    """
    retryable = frozenset({429}) if only_rejected else RETRYABLE_STATUS
    for attempt in range(1, attempts + 1):
        try:
            response = await send()
        except (httpx.TimeoutException, httpx.TransportError):
            if attempt == attempts or only_rejected:
                raise
            response = None
        if response is not None and response.status_code not in retryable:
            return response
        if attempt == attempts and response is not None:
            return response
        delay = min(cap, initial * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)  # noqa: S311
        if response is not None and (hint := retry_after_seconds(response)) is not None:
            # Honour the partner's hint, but never sleep for long holding a lock or a poll.
            delay = max(delay, min(hint, MAX_RETRY_AFTER))
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def public_reason(exc: BaseException) -> str | None:
    """What a tenant may read of a failed partner call: a status and a short reason of our
    own; None when ``exc`` is no partner call's failure. A partner's answer (its body, its
    error description) is never copied: the URL may be the tenant's, and what answers there
    is not theirs to read through our errors."""
    # Imported here: egress and oauth import this module.
    from .egress import ForbiddenDestinationError
    from .oauth import PERMANENT_ERRORS, OAuthError

    if isinstance(exc, ForbiddenDestinationError):
        return str(exc)  # ours: the host as the tenant gave it, never what it resolved to
    if isinstance(exc, PartnerError):
        return f"the partner answered HTTP {exc.status}"
    if isinstance(exc, OAuthError):
        known = (
            exc.error if exc.error in {*PERMANENT_ERRORS, "no_tokens", "invalid_response"} else ""
        )
        status = f"HTTP {exc.status}" if exc.status else "no answer"
        return f"the token endpoint refused the grant ({status}{', ' + known if known else ''})"
    if isinstance(exc, httpx.TimeoutException):
        return "the partner did not answer in time"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the partner answered HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TransportError):
        return "the partner could not be reached"
    return None
