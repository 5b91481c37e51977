"""Errors of the Sirvoy sandbox's read API: the exception routes raise and the JSON they answer."""

from __future__ import annotations

from typing import Any

from nordflow_sandboxes.kit.errors import PartnerError

# ASSUMPTION (confirm with Sirvoy): Sirvoy publishes no REST API, hence no error format.
# This body is the sandbox's own design: {"error": {"code": "<slug>", "message": "..."}}.
UNAUTHORIZED = "unauthorized"
INVALID_PARAMETER = "invalid_parameter"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
RATE_LIMITED = "rate_limited"
INTERNAL_ERROR = "internal_error"
INJECTED_FAULT = "injected_fault"


class SirvoyApiError(PartnerError[str]):
    """An error answered as `{"error": {...}}` with an HTTP status."""

    def body(self) -> dict[str, Any]:
        """The sandbox's error structure."""
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str) -> SirvoyApiError:
    """A 400 for a malformed parameter or body."""
    return SirvoyApiError(400, INVALID_PARAMETER, message)


def not_found(message: str) -> SirvoyApiError:
    """A 404 for a record that does not exist in this account."""
    return SirvoyApiError(404, NOT_FOUND, message)


def conflict(message: str) -> SirvoyApiError:
    """A 409 for a change the record's state forbids (e.g. crediting a credit invoice)."""
    return SirvoyApiError(409, CONFLICT, message)
