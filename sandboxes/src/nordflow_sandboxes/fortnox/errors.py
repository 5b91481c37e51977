"""Fortnox-shaped errors: the exception the sandbox raises and the codes it answers with."""

from __future__ import annotations

from typing import Any

from nordflow_sandboxes.kit.errors import PartnerError

# Codes and messages published on Fortnox's "Errors" guide
# (fortnox.se/developer/guides-and-good-to-know/errors).
SYSTEM_EXCEPTION = 1000003
VALUE_NOT_ALPHANUMERIC = 2000106
VALUE_NOT_NUMERIC = 2000108
VALUE_NOT_BOOLEAN = 2000134
INVALID_LOGIN = 2000310
MISSING_CREDENTIALS = 2000311
INVALID_CHARACTERS = 2000359
INVALID_PARAMETER = 2000588
CUSTOMER_NUMBER_IN_USE = 2000637
INVALID_IDENTIFIER = 2000729
NO_OR_INVALID_DATA = 2001392
INVALID_FIELD_NAME = 2001399
JSON_SYNTAX = 2002115

# Sandbox-only codes. Real Fortnox answers these situations with codes that are not
# published; connectors must branch on the HTTP status, never on these numbers.
SANDBOX_NOT_FOUND = 2999404
SANDBOX_RULE_VIOLATION = 2999400
SANDBOX_INVALID_VALUE = 2999422
SANDBOX_RATE_LIMITED = 2999429
SANDBOX_INJECTED_FAULT = 2999500


class FortnoxError(PartnerError[int]):
    """An error answered as `{"ErrorInformation": {...}}` with an HTTP status."""

    def body(self) -> dict[str, Any]:
        """Fortnox's error structure (`error` is always 1 in Fortnox's answers)."""
        return {"ErrorInformation": {"error": 1, "message": self.message, "code": self.code}}


def bad_request(code: int, message: str) -> FortnoxError:
    """A 400 with the given code."""
    return FortnoxError(400, code, message)


def rule_violation(message: str) -> FortnoxError:
    """A 400 for a business rule the request breaks (e.g. cancelling a booked invoice)."""
    return FortnoxError(400, SANDBOX_RULE_VIOLATION, message)


def not_found(message: str) -> FortnoxError:
    """A 404 for a resource that does not exist in this company."""
    return FortnoxError(404, SANDBOX_NOT_FOUND, message)
