"""Fault injection every sandbox shares: the queued fault, its admin body, how a gate applies it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response

FaultStatus = Literal[429, 500, 502, 503, 504]
HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]


@dataclass
class Fault:
    """A failure injected for the next `remaining` matching requests of one tenant.

    Before commit (`after_commit` false) the request waits `delay_seconds`, then gets
    `status` without running; after commit it runs fully, then waits and gets `status`
    instead of its real answer: "the call succeeded but the client saw an error".
    A `status` of None is pure latency.
    """

    status: int | None
    remaining: int
    path_prefix: str
    method: str | None
    delay_seconds: float
    after_commit: bool = False
    retry_after_seconds: int = 1

    def matches(self, method: str, path: str) -> bool:
        """True when the request is one this fault targets."""
        return (
            self.remaining > 0
            and path.startswith(self.path_prefix)
            and (self.method is None or self.method == method)
        )

    def as_json(self) -> dict[str, Any]:
        """The admin view of the fault."""
        return {
            "status": self.status,
            "remaining": self.remaining,
            "path_prefix": self.path_prefix,
            "method": self.method,
            "delay_seconds": self.delay_seconds,
            "after_commit": self.after_commit,
            "retry_after_seconds": self.retry_after_seconds,
        }


@dataclass
class ReadFault(Fault):
    """A fault of a read-only API: nothing is committed, so it always strikes before."""

    def as_json(self) -> dict[str, Any]:
        """The admin view, without the `after_commit` a read-only API has no use for."""
        view = super().as_json()
        del view["after_commit"]
        return view


class ReadFaultIn(BaseModel):
    """A fault to inject into a read-only API; each sandbox narrows `path_prefix` in a subclass."""

    model_config = ConfigDict(extra="forbid")
    fault_type: ClassVar[type[Fault]] = ReadFault

    status: FaultStatus | None = 500
    count: int = Field(default=1, ge=1, le=10_000)
    path_prefix: str = "/"
    method: HttpMethod | None = None
    delay_seconds: float = Field(default=0.0, ge=0.0, le=600.0)
    retry_after_seconds: int = Field(default=1, ge=0, le=3600)

    @model_validator(mode="after")
    def _does_something(self) -> ReadFaultIn:
        if self.status is None and self.delay_seconds == 0:
            raise ValueError("a fault needs a status, a delay_seconds, or both")
        return self

    def fault_fields(self) -> dict[str, Any]:
        """The keyword arguments of `Fault` this body asks for."""
        return {
            "status": self.status,
            "remaining": self.count,
            "path_prefix": self.path_prefix,
            "method": self.method,
            "delay_seconds": self.delay_seconds,
            "retry_after_seconds": self.retry_after_seconds,
        }

    def fault(self) -> Fault:
        """The fault this body asks for, of the sandbox's `fault_type`."""
        return self.fault_type(**self.fault_fields())


class FaultIn(ReadFaultIn):
    """A fault to inject (`POST /sandbox/…/faults`), before or after the request commits."""

    fault_type: ClassVar[type[Fault]] = Fault

    after_commit: bool = False

    @model_validator(mode="before")
    @classmethod
    def _upper_method(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("method"), str):
            return {**data, "method": data["method"].upper()}
        return data

    def fault_fields(self) -> dict[str, Any]:
        """The keyword arguments of `Fault` this body asks for."""
        return {**super().fault_fields(), "after_commit": self.after_commit}


async def drain(response: Response) -> None:
    """Consume a streamed answer that will not be sent, so its producer finishes."""
    body_iterator = getattr(response, "body_iterator", None)
    if body_iterator is not None:
        async for _chunk in body_iterator:
            pass


async def strikes_before(fault: Fault | None) -> bool:
    """Wait a before-commit fault's delay; True when its status answers instead of the request."""
    if fault is None or fault.after_commit:
        return False
    if fault.delay_seconds:
        await asyncio.sleep(fault.delay_seconds)
    return fault.status is not None


async def strikes_after(fault: Fault | None, response: Response | None = None) -> bool:
    """Wait an after-commit fault's delay; True when its status replaces the real answer."""
    if fault is None or not fault.after_commit:
        return False
    # The change is committed; the client now sees a slow answer or an error.
    if fault.delay_seconds:
        await asyncio.sleep(fault.delay_seconds)
    if fault.status is None:
        return False
    if response is not None:
        await drain(response)
    return True


async def answer_with_fault(
    fault: Fault | None,
    run: Callable[[], Awaitable[Response]],
    fault_response: Callable[[Fault], Response],
    log: Callable[[Response, bool], Response],
) -> Response:
    """Run a request under `fault` (or none); every answer goes through `log(answer, faulted)`."""
    if fault is not None and await strikes_before(fault):
        return log(fault_response(fault), True)
    response = await run()
    if fault is not None and await strikes_after(fault, response):
        return log(fault_response(fault), True)
    return log(response, fault is not None)
