"""Errors every part of a service may raise."""

from __future__ import annotations


class PermanentError(Exception):
    """The event (or job) can never be processed as it is: the event goes to the dead-letter
    topic, the job fails; retrying would change nothing."""


class UnavailableError(Exception):
    """What the handler needs is not there yet (a claim check's chunks still on their way):
    not the record's fault. The consumer waits and tries again without counting the try, as
    when the database is away, so nothing is dead-lettered for it; meanwhile the record's
    partition waits and readiness turns red after ``STUCK_AFTER_FAILURES`` tries."""
