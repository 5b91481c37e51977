"""Visma.net-shaped errors: the exception the sandbox raises and the fault codes it answers with."""

from __future__ import annotations

import uuid
from typing import Any

from nordflow_sandboxes.kit.errors import PartnerError

# Codes Visma.net is publicly seen to answer with (Visma community knowledge base and
# Stack Overflow answers quoting real `IPPException` bodies).
COMPANY_NOT_SET = "12002"  # ipp-company-id missing, or the user has no access to that company

# Sandbox-only codes. Visma.net answers these situations with codes it does not publish;
# connectors must branch on the HTTP status, never on these values.
SANDBOX_BAD_REQUEST = "99400"
SANDBOX_UNAUTHORIZED = "99401"
SANDBOX_NOT_FOUND = "99404"
SANDBOX_PRECONDITION_FAILED = "99412"
SANDBOX_RATE_LIMITED = "99429"
SANDBOX_SYSTEM_ERROR = "99500"


class VismaNetError(PartnerError[str]):
    """An error answered as Visma.net's `IPPException` body with an HTTP status."""

    def body(self) -> dict[str, Any]:
        """The `IPPException` structure Visma.net answers errors with."""
        return {
            "ExceptionType": "IPPException",
            "ExceptionMessage": self.message,
            "ExceptionFaultCode": self.code,
            "ExceptionMessageID": f"{self.code}_{uuid.uuid4()}",
            "ExceptionDetails": "",
        }


def bad_request(message: str) -> VismaNetError:
    """A 400: invalid input or a business rule the request breaks."""
    return VismaNetError(400, SANDBOX_BAD_REQUEST, message)


def not_found(message: str) -> VismaNetError:
    """A 404 for a record that does not exist in this company."""
    return VismaNetError(404, SANDBOX_NOT_FOUND, message)


def precondition_failed(resource: str) -> VismaNetError:
    """A 412: the If-Match ETag is not the record's current version."""
    return VismaNetError(
        412,
        SANDBOX_PRECONDITION_FAILED,
        f"Precondition Failed: {resource} was changed since the given ETag was read",
    )
