"""What every sandbox's state shares: one lock, a clock, each tenant's faults and request log."""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Sized
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, Self, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from nordflow_sandboxes.kit.faults import Fault
from nordflow_sandboxes.kit.values import utc_now


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the tenant's request log shows it."""

    at: datetime
    method: str
    path: str
    query: str
    status: int
    fault: bool

    @classmethod
    def of(
        cls, at: datetime, request: Request, path: str, response: Response, faulted: bool
    ) -> Self:
        """The record of `request` (seen by the gate as `path`) answered with `response`."""
        method, query = request.method.upper(), request.url.query
        return cls(at, method, path, query, response.status_code, faulted)

    def as_json(self) -> dict[str, Any]:
        """The admin view of the record."""
        return {
            "at": self.at.isoformat(),
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "fault": self.fault,
        }


class Tenant(Protocol):
    """A company or account of a sandbox: whose faults and requests these are."""

    faults: list[Fault]
    requests: deque[RequestRecord]


class Ledger(Tenant, Protocol):
    """A company of an ERP sandbox, with its customer ledger's registers."""

    @property
    def company_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def customers(self) -> Sized: ...

    @property
    def invoices(self) -> Sized: ...

    @property
    def payments(self) -> Sized: ...


class TokenInUseError(ValueError):
    """A tenant was requested with a token another tenant already has."""


T = TypeVar("T", bound=Tenant)


class SandboxState(Generic[T]):
    """The part of a sandbox's state that is the same everywhere, guarded by one re-entrant lock.

    Callers hold `lock` around every read or change of a tenant; no code awaits while holding
    it. `clock` is injectable so tests can move time.
    """

    def __init__(self, *, clock: Callable[[], datetime] = utc_now, request_log_size: int) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self._request_log_size = request_log_size

    def now(self) -> datetime:
        """The current instant (aware); injectable so tests can move time."""
        return self._clock()

    def request_log(self) -> deque[RequestRecord]:
        """An empty request log for a new tenant (oldest entries fall off)."""
        return deque(maxlen=self._request_log_size)

    def tenants(self) -> list[T]:
        """Every tenant, oldest first."""
        raise NotImplementedError

    def stats(self, tenant: T) -> dict[str, Any]:
        """Counts of the tenant's records, as `GET /sandbox/stats` shows them."""
        raise NotImplementedError

    # ------------------------------------------------------------------------- faults

    def add_fault(self, tenant: T, fault: Fault) -> None:
        """Queue a fault; faults are consumed in the order they were added."""
        with self.lock:
            tenant.faults.append(fault)

    def take_fault(self, tenant: T, method: str, path: str) -> Fault | None:
        """The first fault matching this request, with one use consumed."""
        with self.lock:
            for fault in tenant.faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    taken = dataclasses.replace(fault)
                    tenant.faults = [x for x in tenant.faults if x.remaining > 0]
                    return taken
            return None

    def clear_faults(self, tenant: T) -> None:
        """Drop every queued fault of the tenant."""
        with self.lock:
            tenant.faults.clear()

    def ledger_stats(self, company: Ledger) -> dict[str, Any]:
        """An ERP company's counts: its registers, its request log and its pending faults."""
        with self.lock:
            return {
                "company_id": company.company_id,
                "name": company.name,
                "customers": len(company.customers),
                "invoices": len(company.invoices),
                "payments": len(company.payments),
                "requests": len(company.requests),
                "faults_pending": self.faults_pending(company),
            }

    def faults_pending(self, tenant: Tenant) -> int:
        """How many faulted requests the tenant's queue still holds."""
        with self.lock:
            return sum(f.remaining for f in tenant.faults)

    # ---------------------------------------------------------------------- request log

    def record_request(self, tenant: T, record: RequestRecord) -> None:
        """Append to the tenant's request log (oldest entries fall off)."""
        with self.lock:
            tenant.requests.append(record)

    def recent_requests(self, tenant: T, limit: int) -> list[RequestRecord]:
        """The last `limit` requests, oldest first."""
        with self.lock:
            records = list(tenant.requests)
        return records[-limit:] if limit > 0 else []
