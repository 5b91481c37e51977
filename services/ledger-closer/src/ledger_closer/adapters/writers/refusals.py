"""The partners' refusals that retrying cannot change, as the domain's errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nordflow_connectors.oauth import OAuthError
from nordflow_connectors.resilience import PartnerError

from ...domain import AuthorizationRefusedError, EntryRefusedError


@contextmanager
def refusals() -> Iterator[None]:
    """A partner's answers that retrying cannot change, as ``EntryRefusedError`` /
    ``AuthorizationRefusedError``; anything else is left to retry."""
    try:
        yield
    except PartnerError as exc:
        if exc.permanent:
            raise EntryRefusedError(str(exc)) from exc
        raise
    except OAuthError as exc:
        if exc.permanent or exc.reauthorization_required:
            raise AuthorizationRefusedError(str(exc)) from exc
        raise
