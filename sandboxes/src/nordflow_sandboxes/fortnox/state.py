"""The sandbox's in-memory store: companies by token, OAuth grants, rate limits, faults, logs."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from nordflow_sandboxes.fortnox.domain import Company
from nordflow_sandboxes.fortnox.oauth import FortnoxOAuth
from nordflow_sandboxes.kit.limits import SlidingWindowRateLimiter
from nordflow_sandboxes.kit.state import SandboxState, TokenInUseError
from nordflow_sandboxes.kit.values import stockholm_today, utc_now


class FortnoxState(SandboxState[Company]):
    """Everything the Fortnox sandbox knows, guarded by one re-entrant lock.

    Each token maps to one company (one Fortnox database), so tests that create their
    own company with a random token never see each other's data. A token is either a fixed
    one (given or generated when the company is created; it never expires) or an OAuth2
    access token from `oauth` (it expires after `access_token_lifetime_seconds`).
    """

    def __init__(
        self,
        *,
        rate_limit: int = 25,
        rate_window_seconds: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        payments_require_booked_invoice: bool = False,
        request_log_size: int = 2000,
        access_token_lifetime_seconds: int = 3600,
    ) -> None:
        super().__init__(clock=clock, request_log_size=request_log_size)
        self.rate_limiter = SlidingWindowRateLimiter(rate_limit, rate_window_seconds, monotonic)
        self.payments_require_booked_invoice = payments_require_booked_invoice
        self._companies: dict[str, Company] = {}
        self._tokens: dict[str, str] = {}
        self._database_numbers = itertools.count(1_000_001)
        self.oauth = FortnoxOAuth(self, access_token_lifetime_seconds=access_token_lifetime_seconds)

    def today(self) -> date:
        """Today's date in Sweden."""
        return stockholm_today(self.now())

    # ---------------------------------------------------------------------- companies

    def create_company(
        self,
        name: str,
        token: str | None = None,
        organisation_number: str = "",
        *,
        rate_limited: bool = True,
    ) -> tuple[Company, str]:
        """Create an empty company reachable with `token` (generated when None); with
        `rate_limited` False its requests are never refused for the rate limit (benchmarks)."""
        with self.lock:
            token = token or secrets.token_urlsafe(24)
            if token in self._tokens:
                raise TokenInUseError("that token already belongs to a company")
            company = Company(
                company_id=f"cmp_{secrets.token_hex(8)}",
                name=name,
                organisation_number=organisation_number,
                database_number=next(self._database_numbers),
                created=self.now(),
                rate_limited=rate_limited,
                requests=self.request_log(),
            )
            self._companies[company.company_id] = company
            self._tokens[token] = company.company_id
            return company, token

    def acquire_rate(self, token: str) -> int | None:
        """Count a request against the token's window; seconds to wait when over the limit
        (never for a company created without a rate limit)."""
        with self.lock:
            company = self.company_for_token(token)
            if company is not None and not company.rate_limited:
                return None
            return self.rate_limiter.acquire(token)

    def company_for_token(self, token: str) -> Company | None:
        """The company a bearer token opens, if any (an expired access token opens none)."""
        with self.lock:
            company_id = self._tokens.get(token)
            if company_id is None:
                grant = self.oauth.access_grant(token)
                if grant is not None and grant.expires > self.now():
                    company_id = grant.company_id
            return self._companies.get(company_id) if company_id else None

    def token_expired(self, token: str) -> bool:
        """Whether the token is an OAuth access token that has expired."""
        grant = self.oauth.access_grant(token)
        return grant is not None and grant.expires <= self.now()

    def company(self, company_id: str) -> Company | None:
        """A company by its id."""
        with self.lock:
            return self._companies.get(company_id)

    def companies(self) -> list[Company]:
        """All companies, oldest first."""
        with self.lock:
            return list(self._companies.values())

    def tenants(self) -> list[Company]:
        """All companies, oldest first."""
        return self.companies()

    # ------------------------------------------------------------------------- stats

    def stats(self, company: Company) -> dict[str, Any]:
        """Counts of the company's records."""
        with self.lock:
            return {
                **self.ledger_stats(company),
                "authorizations": self.oauth.counters(company).authorized,
                "refresh_tokens_redeemed": self.oauth.counters(company).redeemed,
            }
