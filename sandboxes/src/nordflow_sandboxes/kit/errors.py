"""The error every sandbox raises to refuse a request: an HTTP status and the partner's body."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi.responses import JSONResponse

C = TypeVar("C")


class PartnerError(Exception, Generic[C]):
    """A refusal answered in the partner's error shape; subclasses say what `body()` is."""

    media_type = "application/json"

    def __init__(
        self, status: int, code: C, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    def body(self) -> dict[str, Any]:
        """The partner's error body."""
        raise NotImplementedError

    def response(self) -> JSONResponse:
        """The answer this error gives."""
        return JSONResponse(
            self.body(), status_code=self.status, headers=self.headers, media_type=self.media_type
        )
