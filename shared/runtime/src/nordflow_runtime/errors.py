"""Errors every part of a service may raise."""

from __future__ import annotations


class PermanentError(Exception):
    """The event (or job) can never be processed as it is: the event goes to the dead-letter
    topic, the job fails; retrying would change nothing."""
