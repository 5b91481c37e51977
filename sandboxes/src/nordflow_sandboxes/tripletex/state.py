"""The Tripletex sandbox's in-memory store: companies, their employee tokens, the consumer
tokens of integrations, session tokens, the rate limit, faults and request logs."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from nordflow_sandboxes.kit.limits import SlidingWindowRateLimiter
from nordflow_sandboxes.kit.state import SandboxState, TokenInUseError
from nordflow_sandboxes.kit.values import utc_now
from nordflow_sandboxes.tripletex.service import Company


@dataclass(frozen=True)
class Session:
    """A session token: the company it opens and the last day it is valid."""

    company_id: int
    employee_token: str
    expires: date


class TripletexState(SandboxState[Company]):
    """Everything the Tripletex sandbox knows, guarded by one re-entrant lock.

    An integration has a consumer token; each company gives it an employee token; the two
    make session tokens (`PUT /token/session/:create`), valid to the end of their
    `expirationDate`. A new company gets a fresh employee token, so tests never share data.
    """

    def __init__(
        self,
        *,
        rate_limit: int = 100,
        rate_window_seconds: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        consumer_tokens: tuple[str, ...] = (),
        request_log_size: int = 2000,
    ) -> None:
        super().__init__(clock=clock, request_log_size=request_log_size)
        self.rate_limiter = SlidingWindowRateLimiter(rate_limit, rate_window_seconds, monotonic)
        self.consumer_tokens: set[str] = set(consumer_tokens)
        self._companies: dict[int, Company] = {}
        self._employee_tokens: dict[str, int] = {}
        self._sessions: dict[str, Session] = {}
        self._ids = itertools.count(100_001)

    def today(self) -> date:
        """Today's date (UTC: the sandbox compares session expiry by date)."""
        return self.now().date()

    def create_company(
        self, name: str, employee_token: str | None = None, consumer_token: str | None = None
    ) -> tuple[Company, str, str]:
        """A new empty company with its employee token, and the consumer token that may use
        it (a new one unless given); both generated when None."""
        with self.lock:
            employee_token = employee_token or f"emp-{secrets.token_urlsafe(24)}"
            if employee_token in self._employee_tokens:
                raise TokenInUseError("that employee token already belongs to a company")
            consumer_token = consumer_token or f"con-{secrets.token_urlsafe(24)}"
            self.consumer_tokens.add(consumer_token)
            company = Company(
                company_id=next(self._ids),
                name=name,
                employee_id=next(self._ids),
                created=self.now(),
                requests=self.request_log(),
            )
            self._companies[company.company_id] = company
            self._employee_tokens[employee_token] = company.company_id
            return company, employee_token, consumer_token

    def create_session(self, consumer: str, employee: str, expires: date) -> str | None:
        """A new session token, or None when either token is unknown."""
        with self.lock:
            company_id = self._employee_tokens.get(employee)
            if consumer not in self.consumer_tokens or company_id is None:
                return None
            token = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(12)}"
            self._sessions[token] = Session(company_id, employee, expires)
            return token

    def session(self, token: str) -> Session | None:
        """The session a token opens, if it exists and has not expired."""
        with self.lock:
            found = self._sessions.get(token)
            if found is None or found.expires < self.today():
                return None
            return found

    def expire_sessions(self, company: Company) -> int:
        """End every session of the company now (tests of a renewal); how many ended."""
        with self.lock:
            ended = [t for t, s in self._sessions.items() if s.company_id == company.company_id]
            for token in ended:
                del self._sessions[token]
            return len(ended)

    def company(self, company_id: int) -> Company | None:
        """A company by id."""
        with self.lock:
            return self._companies.get(company_id)

    def company_for_employee_token(self, token: str) -> Company | None:
        """The company an employee token belongs to (the admin API names companies by it)."""
        with self.lock:
            company_id = self._employee_tokens.get(token)
            return None if company_id is None else self._companies.get(company_id)

    def acquire_rate(self, company: Company) -> int | None:
        """Count a request against the company's window; seconds to wait when over it."""
        with self.lock:
            return self.rate_limiter.acquire(str(company.company_id))

    def tenants(self) -> list[Company]:
        """Every company, oldest first."""
        with self.lock:
            return list(self._companies.values())

    def stats(self, company: Company) -> dict[str, Any]:
        """Counts of the company's records."""
        with self.lock:
            return {
                "company_id": company.company_id,
                "name": company.name,
                "customers": len(company.customers),
                "projects": len(company.projects),
                "products": len(company.products),
                "orders": len(company.orders),
                "invoices": len(company.invoices),
                "requests": len(company.requests),
                "faults_pending": self.faults_pending(company),
            }
