"""In-memory state of the Visma.net sandbox: companies, tokens, the hourly rate limit, faults."""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from nordflow_sandboxes.kit.limits import RateLimiter
from nordflow_sandboxes.kit.state import SandboxState
from nordflow_sandboxes.kit.values import utc_now
from nordflow_sandboxes.visma_net.connect import VismaConnect
from nordflow_sandboxes.visma_net.domain import Company
from nordflow_sandboxes.visma_net.values import truncate_ms

RATE_LIMIT_POLICY = "4-fixed-window"


class CompanyIdInUseError(ValueError):
    """A company was requested with an id another company already has."""


@dataclass(frozen=True)
class RateDecision:
    """The outcome of counting one request, with the values of the X-RateLimit-* headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """The informational headers Visma.net sends on every answer."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
            "X-RateLimit-Policy": RATE_LIMIT_POLICY,
        }


class FixedWindowRateLimiter(RateLimiter):
    """Visma.net's standard policy: `limit` requests per fixed window per company and client.

    A window opens with the first request of a key and lasts `window_seconds`; refused
    requests are not counted, so a client that waits Retry-After seconds gets through.
    """

    def __init__(self, limit: int, window_seconds: float, monotonic: Callable[[], float]) -> None:
        super().__init__(limit, window_seconds, monotonic)
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}

    def acquire(self, key: tuple[str, str]) -> RateDecision:
        """Count one request of `key` (company id, client) when it fits in the window."""
        now = self._monotonic()
        start, used = self._windows.get(key, (now, 0))
        if now - start >= self.window_seconds:
            start, used = now, 0
        reset = max(1, math.ceil(start + self.window_seconds - now))
        if used >= self.limit:
            self._windows[key] = (start, used)
            return RateDecision(False, self.limit, 0, reset)
        used += 1
        self._windows[key] = (start, used)
        return RateDecision(True, self.limit, self.limit - used, reset)


class VismaNetState(SandboxState[Company]):
    """Everything the Visma.net sandbox knows, guarded by one re-entrant lock.

    A bearer token stands for one client (an application and its user); it opens the companies
    it was granted, and every API call names one of them in `ipp-company-id`. Tests that create
    their own company with a random token never see each other's data.
    """

    def __init__(
        self,
        *,
        rate_limit: int = 15_000,
        rate_window_seconds: float = 3600.0,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        api_timezone: str | tzinfo = "UTC",
        default_page_size: int = 100,
        max_page_size: int = 1000,
        require_company_header: bool = True,
        request_log_size: int = 2000,
        access_token_lifetime_seconds: int = 3600,
    ) -> None:
        if default_page_size < 1 or max_page_size < 1:
            raise ValueError("page sizes must be positive")
        super().__init__(clock=clock, request_log_size=request_log_size)
        self.rate_limiter = FixedWindowRateLimiter(rate_limit, rate_window_seconds, monotonic)
        self.api_timezone: tzinfo = (
            ZoneInfo(api_timezone) if isinstance(api_timezone, str) else api_timezone
        )
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self.require_company_header = require_company_header
        self._companies: dict[str, Company] = {}
        self._grants: dict[str, list[str]] = {}
        self._rowversion = 0x4D182000
        # Visma Connect: client-credentials access tokens that expire (fixed tokens never do).
        self.connect = VismaConnect(
            self, access_token_lifetime_seconds=access_token_lifetime_seconds
        )

    # --------------------------------------------------------------------------- time

    def now(self) -> datetime:
        """The current instant (aware, millisecond precision); injectable so tests move time."""
        return truncate_ms(self._clock().astimezone(UTC))

    def today(self) -> date:
        """Today's date in the API's time zone."""
        return self.now().astimezone(self.api_timezone).date()

    def next_rowversion(self) -> int:
        """A new row version (database-wide, like SQL Server's rowversion); ETags derive from it."""
        with self.lock:
            self._rowversion += 1
            return self._rowversion

    # ---------------------------------------------------------------------- companies

    def create_company(
        self, name: str, token: str | None = None, company_id: str | None = None
    ) -> tuple[Company, str]:
        """Create an empty company and grant `token` (generated when None) access to it.

        A token that exists already keeps its other companies: one client may open several.
        """
        with self.lock:
            token = token or secrets.token_urlsafe(24)
            if company_id is not None and company_id in self._companies:
                raise CompanyIdInUseError(f"company id {company_id} is taken")
            while company_id is None or company_id in self._companies:
                company_id = str(secrets.randbelow(9_000_000) + 1_000_000)
            company = Company(
                company_id=company_id, name=name, created=self.now(), requests=self.request_log()
            )
            self._companies[company_id] = company
            self._grants.setdefault(token, []).append(company_id)
            return company, token

    def token_known(self, token: str) -> bool:
        """Whether the bearer token belongs to a client (and has not expired)."""
        with self.lock:
            return token in self._grants and not self.connect.expired(token)

    def grant(self, token: str, company_id: str) -> None:
        """Let `token` open an existing company (an access token Visma Connect issued)."""
        with self.lock:
            granted = self._grants.setdefault(token, [])
            if company_id not in granted:
                granted.append(company_id)

    def company(self, company_id: str) -> Company | None:
        """A company by its id."""
        with self.lock:
            return self._companies.get(company_id)

    def company_for(
        self, token: str, company_id: str | None, *, require_header: bool | None = None
    ) -> Company | None:
        """The company `token` opens with that `ipp-company-id` (None when not granted).

        Without the header the token's only company is used, unless the header is required
        (`require_header`, by default the state's `require_company_header`).
        """
        required = self.require_company_header if require_header is None else require_header
        with self.lock:
            granted = self._grants.get(token, [])
            if company_id is None:
                if required or len(granted) != 1:
                    return None
                company_id = granted[0]
            if company_id not in granted:
                return None
            return self._companies.get(company_id)

    def companies(self) -> list[Company]:
        """All companies, oldest first."""
        with self.lock:
            return list(self._companies.values())

    def tenants(self) -> list[Company]:
        """All companies, oldest first."""
        return self.companies()

    def acquire_rate(self, company: Company, token: str) -> RateDecision:
        """Count a request against the company-and-client window."""
        with self.lock:
            return self.rate_limiter.acquire((company.company_id, token))

    # ------------------------------------------------------------------------- stats

    def stats(self, company: Company) -> dict[str, Any]:
        """Counts of the company's records."""
        return self.ledger_stats(company)
