"""eAccounting-shaped errors: the exception the sandbox raises and the codes it answers with."""

from __future__ import annotations

import uuid
from typing import Any

from nordflow_sandboxes.kit.errors import PartnerError

# Codes published on developer.vismaonline.com/docs/error-codes (the eAccounting catalogue).
DATA_MODEL_VALIDATION_ERROR = 2000
RESOURCE_NOT_FOUND = 3000
CONFLICT = 4000
CAN_NOT_BE_CREATED_OR_UPDATED = 4002
NOT_AUTHORIZED = 4005
NO_ACCESS_TO_SCOPES = 4006
TOO_MANY_REQUESTS = 4010
FUTURE_DATE_CANNOT_BE_SET = 4023
INTERNAL_SERVER_ERROR = 5000
CANT_REACH_SYSTEM_DEPENDENCY = 5001
QUERY_PARAMETER_ERROR = 6000
INVALID_INPUT = 6001


class VismaApiError(PartnerError[int]):
    """An error answered as `{ErrorCode, DeveloperErrorMessage, ErrorId, Errors?}`."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, headers)
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The eAccounting error body."""
        return error_body(self.code, self.message, self.errors)


def error_body(
    code: int, message: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """eAccounting's error envelope; `ErrorId` is a fresh correlation id, as the real API sends."""
    body: dict[str, Any] = {
        "ErrorCode": code,
        "DeveloperErrorMessage": message,
        "ErrorId": str(uuid.uuid4()),
    }
    if errors:
        body["Errors"] = errors
    return body


def invalid_field(field: str, message: str) -> VismaApiError:
    """A 400 DataModelValidationError naming the field (the `Errors` list carries it too)."""
    return VismaApiError(
        400,
        DATA_MODEL_VALIDATION_ERROR,
        f"{field}: {message}",
        [{"Field": field, "ErrorCode": str(DATA_MODEL_VALIDATION_ERROR), "Message": message}],
    )


def not_found(what: str, identifier: str) -> VismaApiError:
    """A 404 ResourceNotFound for an id in the path."""
    return VismaApiError(404, RESOURCE_NOT_FOUND, f"{what} {identifier} was not found")


def rule_violation(message: str) -> VismaApiError:
    """A 400 CanNotBeCreatedOrUpdated for a business rule the request breaks."""
    return VismaApiError(400, CAN_NOT_BE_CREATED_OR_UPDATED, message)


def too_many_requests(limit: int, window_seconds: float, retry_after: int) -> dict[str, Any]:
    """The documented 429 body (developer.vismaonline.com/docs/rate-limits)."""
    per = "Minute" if window_seconds == 60 else f"{window_seconds:g} seconds"
    return error_body(
        TOO_MANY_REQUESTS,
        f"API calls quota exceeded! maximum admitted {limit} per {per}. "
        f"Try again in {retry_after} seconds.",
    )
