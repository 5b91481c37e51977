"""Whether a service's loops (the consumer, the outbox relay) keep failing."""

from __future__ import annotations

from .metrics import STUCK


class Health:
    """Whether a loop (the consumer, the relay) keeps failing: readiness turns red and
    ``nordflow_stuck{loop}`` is 1 while ``failures`` reach ``stuck_after`` in a row."""

    def __init__(self, loop: str, stuck_after: int) -> None:
        self.loop = loop
        self.stuck_after = stuck_after
        self.failures = 0
        self.last_error = ""

    def failed(self, exc: BaseException) -> None:
        """One more failure in a row."""
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        STUCK.labels(self.loop).set(1 if self.stuck else 0)

    def recovered(self) -> None:
        """A success: the run of failures is over."""
        self.failures = 0
        self.last_error = ""
        STUCK.labels(self.loop).set(0)

    @property
    def stuck(self) -> bool:
        """Failing ``stuck_after`` times in a row."""
        return self.failures >= self.stuck_after

    def check(self) -> None:
        """Raise while stuck (a readiness check)."""
        if self.stuck:
            raise RuntimeError(f"{self.loop} stuck: {self.failures} failures in a row")
