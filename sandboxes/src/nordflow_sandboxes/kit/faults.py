"""The fault-injection request body the ERP sandboxes share (`POST /sandbox/…/faults`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FaultIn(BaseModel):
    """A fault to inject; each sandbox narrows `path_prefix` to its own API in a subclass."""

    model_config = ConfigDict(extra="forbid")

    status: Literal[429, 500, 502, 503, 504] | None = 500
    count: int = Field(default=1, ge=1, le=10_000)
    path_prefix: str = "/"
    method: Literal["GET", "POST", "PUT", "DELETE"] | None = None
    delay_seconds: float = Field(default=0.0, ge=0.0, le=600.0)
    after_commit: bool = False
    retry_after_seconds: int = Field(default=1, ge=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _upper_method(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("method"), str):
            return {**data, "method": data["method"].upper()}
        return data

    @model_validator(mode="after")
    def _does_something(self) -> FaultIn:
        if self.status is None and self.delay_seconds == 0:
            raise ValueError("a fault needs a status, a delay_seconds, or both")
        return self

    def fault_fields(self) -> dict[str, Any]:
        """The keyword arguments of the sandboxes' `Fault` dataclasses."""
        return {
            "status": self.status,
            "remaining": self.count,
            "path_prefix": self.path_prefix,
            "method": self.method,
            "delay_seconds": self.delay_seconds,
            "after_commit": self.after_commit,
            "retry_after_seconds": self.retry_after_seconds,
        }
