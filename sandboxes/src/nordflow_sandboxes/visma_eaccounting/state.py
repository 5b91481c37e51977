"""The sandbox's in-memory store: companies, OAuth clients and grants, limits, faults, logs."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from nordflow_sandboxes.kit.limits import SlidingWindowRateLimiter
from nordflow_sandboxes.kit.oauth import AccessTokens, ClientRegistry, OAuthClient
from nordflow_sandboxes.kit.state import SandboxState
from nordflow_sandboxes.kit.values import stockholm_today, utc_now
from nordflow_sandboxes.visma_eaccounting.domain import (
    DEFAULT_SCOPE,
    AccessGrant,
    Article,
    BankAccount,
    Company,
    RefreshGrant,
)

_UUID_SEGMENT = re.compile(
    r"/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

# One article per Swedish VAT rate, so rows can be priced without an article register API.
SEEDED_ARTICLES = (
    ("1", "Tjänst 25 %", Decimal("0.25")),
    ("2", "Livsmedel 12 %", Decimal("0.12")),
    ("3", "Böcker 6 %", Decimal("0.06")),
    ("4", "Momsfri tjänst", Decimal(0)),
)


class RefreshRefused(Exception):  # noqa: N818 - the OAuth error code is the point
    """The token endpoint refuses a refresh: `error` is the RFC 6749 §5.2 code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def endpoint_of(path: str) -> str:
    """The endpoint a path belongs to for rate limiting: ids replaced by `{id}`."""
    return _UUID_SEGMENT.sub("/{id}", path.rstrip("/").lower())


class VismaEAccountingState(SandboxState[Company]):
    """Everything the eAccounting sandbox knows, guarded by one re-entrant lock.

    Each company is one eAccounting company; a client (application) may hold grants to several.
    """

    def __init__(
        self,
        *,
        rate_limit: int = 600,
        rate_window_seconds: float = 60.0,
        access_token_lifetime_seconds: int = 3600,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        request_log_size: int = 2000,
    ) -> None:
        if access_token_lifetime_seconds < 1:
            raise ValueError("access tokens must live at least one second")
        super().__init__(clock=clock, request_log_size=request_log_size)
        self.rate_limiter = SlidingWindowRateLimiter(rate_limit, rate_window_seconds, monotonic)
        self.access_token_lifetime = timedelta(seconds=access_token_lifetime_seconds)
        self._companies: dict[str, Company] = {}
        self._clients = ClientRegistry(
            self.lock, OAuthClient, new_id=lambda: f"nordflow-{secrets.token_hex(6)}"
        )
        self._refresh: dict[str, RefreshGrant] = {}
        self._access = AccessTokens[AccessGrant](self.lock, self.now)

    # --------------------------------------------------------------------------- time

    def today(self) -> date:
        """Today's date in Sweden (eAccounting dates are in the company's time zone)."""
        return stockholm_today(self.now())

    # ---------------------------------------------------------------------- companies

    def create_company(
        self,
        name: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str = DEFAULT_SCOPE,
        organisation_number: str = "",
        currency: str = "SEK",
    ) -> tuple[Company, OAuthClient, str]:
        """A new company with seeded articles and bank account, and a refresh token for it.

        The client is created when `client_id` is new (secret generated unless given); an
        existing client keeps its secret, so one application can hold grants to many companies.
        """
        with self.lock:
            client = self._clients.register(client_id, client_secret)
            company = Company(
                company_id=f"cmp_{secrets.token_hex(8)}",
                name=name,
                organisation_number=organisation_number,
                currency=currency,
                created=self.now(),
                terms_of_payment_id=str(uuid.uuid4()),
                terms_of_payment_days=30,
                client_id=client.client_id,
                requests=self.request_log(),
            )
            for number, article_name, rate in SEEDED_ARTICLES:
                article = Article(str(uuid.uuid4()), number, article_name, rate, Decimal(100))
                company.articles[article.id] = article
            account = BankAccount(
                str(uuid.uuid4()), "Företagskonto", "5555-1234567", 1930, currency
            )
            company.bank_accounts[account.id] = account
            self._companies[company.company_id] = company
            refresh = self.issue_refresh_token(company, client.client_id, scope)
            return company, client, refresh

    def company(self, company_id: str) -> Company | None:
        """A company by id."""
        with self.lock:
            return self._companies.get(company_id)

    def companies(self) -> list[Company]:
        """All companies, oldest first."""
        with self.lock:
            return list(self._companies.values())

    def tenants(self) -> list[Company]:
        """All companies, oldest first."""
        return self.companies()

    # -------------------------------------------------------------------------- OAuth

    def issue_refresh_token(self, company: Company, client_id: str, scope: str) -> str:
        """A new refresh token, as a fresh authorization (code flow) would give the client."""
        with self.lock:
            token = secrets.token_urlsafe(32)
            self._refresh[token] = RefreshGrant(
                token, client_id, company.company_id, scope, issued=self.now()
            )
            return token

    def authenticate_client(self, client_id: str, client_secret: str) -> OAuthClient | None:
        """The client when id and secret match (compared in constant time)."""
        return self._clients.authenticate(client_id, client_secret)

    def refresh_grant(self, refresh_token: str) -> RefreshGrant | None:
        """The grant of a refresh token, used or not (to find the company for faults and logs)."""
        with self.lock:
            return self._refresh.get(refresh_token)

    def redeem_refresh_token(
        self, client: OAuthClient, refresh_token: str
    ) -> tuple[AccessGrant, str]:
        """Rotate: the old refresh token stops working, a new access and refresh token pair."""
        with self.lock:
            grant = self._refresh.get(refresh_token)
            if grant is None or grant.client_id != client.client_id:
                raise RefreshRefused("invalid_grant", "Unknown refresh token")
            if grant.used is not None:
                raise RefreshRefused("invalid_grant", "The refresh token has already been used")
            company = self._companies.get(grant.company_id)
            if company is None:
                raise RefreshRefused("invalid_grant", "The company no longer exists")
            now = self.now()
            grant.used = now
            expires = now + self.access_token_lifetime
            access = self._access.issue(
                lambda token: AccessGrant(
                    token, client.client_id, company.company_id, grant.scope, expires
                )
            )
            return access, self.issue_refresh_token(company, client.client_id, grant.scope)

    def access_grant(self, token: str) -> AccessGrant | None:
        """The grant of an access token, expired or not."""
        return self._access.grant(token)

    def expire_access_tokens(self, company: Company) -> int:
        """End every access token of the company now (refresh tokens stay valid)."""
        return self._access.expire(company.company_id)

    def acquire_rate(self, client_id: str, path: str) -> int | None:
        """Count a request against the client's window for this endpoint; None when allowed."""
        with self.lock:
            return self.rate_limiter.acquire(f"{client_id} {endpoint_of(path)}")

    # ------------------------------------------------------------------------- stats

    def stats(self, company: Company) -> dict[str, Any]:
        """Counts of the company's records and grants."""
        with self.lock:
            return {
                **self.ledger_stats(company),
                "refresh_tokens_redeemed": sum(
                    1
                    for g in self._refresh.values()
                    if g.company_id == company.company_id and g.used is not None
                ),
            }
