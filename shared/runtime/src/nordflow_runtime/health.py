"""Whether a service's loops (the consumer, the outbox relay) keep failing or have stalled."""

from __future__ import annotations

import time
from collections.abc import Callable

from .metrics import STUCK


class Health:
    """Whether a loop (the consumer, the relay) is stuck: readiness turns red and
    ``nordflow_stuck{loop}`` is 1 while ``failures`` reach ``stuck_after`` in a row, or —
    with ``stall_seconds`` (the consumer) — while its polls have returned nothing for that
    long although records wait for it (a consumer that fails nothing yet moves nothing:
    docs/resilience.md, finding 1)."""

    def __init__(
        self,
        loop: str,
        stuck_after: int,
        *,
        stall_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loop = loop
        self.stuck_after = stuck_after
        self.stall_seconds = stall_seconds
        self.clock = clock
        self.failures = 0
        self.last_error = ""
        # Since when every poll returned nothing while records waited; None while moving.
        self.waiting_since: float | None = None

    def failed(self, exc: BaseException) -> None:
        """One more failure in a row."""
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        self._publish()

    def recovered(self) -> None:
        """A success: the run of failures is over."""
        self.failures = 0
        self.last_error = ""
        self._publish()

    def polled(self, *, records: int, behind: bool) -> None:
        """One poll returned ``records``; ``behind``: records wait that it did not return
        (a partition's lag above zero, or a partition whose position is not known yet)."""
        if records or not behind:
            self.waiting_since = None
        elif self.waiting_since is None:
            self.waiting_since = self.clock()
        self._publish()

    @property
    def failing(self) -> bool:
        """Failing ``stuck_after`` times in a row."""
        return self.failures >= self.stuck_after

    @property
    def stalled(self) -> bool:
        """Nothing returned for ``stall_seconds`` while records wait."""
        return (
            self.stall_seconds is not None
            and self.waiting_since is not None
            and self.clock() - self.waiting_since >= self.stall_seconds
        )

    @property
    def stuck(self) -> bool:
        """Failing, or stalled."""
        return self.failing or self.stalled

    def check(self) -> None:
        """Raise while stuck (a readiness check)."""
        self._publish()
        if self.failing:
            raise RuntimeError(f"{self.loop} stuck: {self.failures} failures in a row")
        if self.stalled:
            assert self.waiting_since is not None
            waited = self.clock() - self.waiting_since
            raise RuntimeError(
                f"{self.loop} stalled: nothing consumed for {waited:.0f} s while records wait"
            )

    def _publish(self) -> None:
        STUCK.labels(self.loop).set(1 if self.stuck else 0)
