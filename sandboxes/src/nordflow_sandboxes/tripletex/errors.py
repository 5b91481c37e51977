"""Tripletex-shaped errors: `{status, code, message, link, developerMessage,
validationMessages, requestId}` (the API's ApiError), raised by the sandbox to refuse a call."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import JSONResponse

from nordflow_sandboxes.kit.errors import PartnerError

# The sandbox's codes: Tripletex puts a number in `code` but does not publish a list, so
# clients branch on the HTTP status, never on these.
BAD_REQUEST = 4000
UNAUTHORIZED = 3000
NOT_FOUND = 6000
REVISION = 8000
VALIDATION = 18000
RATE_LIMITED = 9429
SYSTEM_ERROR = 1000


class TripletexError(PartnerError[int]):
    """An error answered as Tripletex's ApiError with an HTTP status."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        headers: dict[str, str] | None = None,
        validation: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(status, code, message, headers)
        self.validation = validation or []
        self.request_id = str(uuid.uuid4())

    def body(self) -> dict[str, Any]:
        """The ApiError structure."""
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "link": "https://tripletex.no/v2-docs/",
            "developerMessage": self.message,
            "validationMessages": [
                {"field": name, "message": text} for name, text in self.validation
            ]
            or None,
            "requestId": self.request_id,
        }

    def response(self) -> JSONResponse:
        """The answer, with the request id header every Tripletex answer carries."""
        answer = super().response()
        answer.headers["x-tlx-request-id"] = self.request_id
        return answer


def invalid(field: str, message: str) -> TripletexError:
    """A 422 naming the field whose value is refused."""
    return TripletexError(422, VALIDATION, "Validering feilet.", validation=[(field, message)])


def not_found(what: str) -> TripletexError:
    """A 404: no such object in this company."""
    return TripletexError(404, NOT_FOUND, f"Object not found: {what}")
