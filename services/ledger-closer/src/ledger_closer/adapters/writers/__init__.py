"""The writers of each accounting system ledger-closer writes into, one per write connection,
kept for the process's lifetime (so a company's rate budget is paced across jobs) and
replaced when the connection is saved again; the partners' refusals as the domain's errors."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import asyncpg
import httpx
from nordflow_connectors import egress
from nordflow_connectors.budget import PgRateBudget, budget_key, per_endpoint
from nordflow_connectors.client_credentials import ClientCredentialsSession
from nordflow_connectors.fortnox import FortnoxClient
from nordflow_connectors.oauth import OAuthSession, Tokens
from nordflow_connectors.pg_tokens import PgTokenStore
from nordflow_connectors.tripletex import TripletexClient
from nordflow_connectors.visma_eaccounting import VismaEAccountingClient
from nordflow_connectors.visma_net import VismaNetClient
from nordflow_runtime.crypto import SecretBox
from pydantic import SecretStr

from ...credentials import (
    OAuthCredentials,
    TripletexTokens,
    VismaNetToken,
    parse_credentials,
)
from ...credentials import (
    VismaNetClient as VismaNetClientCredentials,
)
from ...domain import UnpostableError, WriteConnection, WriteSystem
from .eaccounting import EAccountingWriter
from .fortnox import FortnoxWriter
from .refusals import refusals
from .tripletex import TripletexWriter
from .visma_net import VismaNetWriter

__all__ = [
    "EAccountingWriter",
    "FortnoxWriter",
    "TripletexWriter",
    "VismaNetWriter",
    "Writers",
    "refusals",
]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Keeps ledger-closer's advisory-lock keys apart from erp-poller's in a shared database.
LOCK_NAMESPACE = "ledger_closer.oauth"
# Fortnox: 25 calls per 5 s per company; Tripletex publishes no number: the sandbox's.
FORTNOX_BUDGET = (25, 5.0)
TRIPLETEX_BUDGET = (100, 10.0)
VISMA_EACCOUNTING_BUDGET = (600, 60.0)  # per OAuth client and endpoint


class Writer(Protocol):
    """What a cached writer is: the LedgerWriter and Booker of one connection, closable."""

    async def aclose(self) -> None:
        """Close its clients and sessions."""
        ...


class Writers:
    """``LedgerWriters``: the cached writer of each write connection.

    One client per connection, its calls paced by the company's shared budget (Fortnox and
    Tripletex: ``nordflow_connectors.budget``, with erp-poller and every replica; eAccounting
    per OAuth client and endpoint; Visma.net, whose hourly count is not published, by its
    429 and Retry-After); rebuilt
    when the connection is saved again (new credentials or URL). OAuth connections (Fortnox,
    eAccounting) refresh with ledger-closer's own grant, its rotating tokens sealed in this
    service's ``oauth_tokens`` under an advisory lock shared by its replicas.
    """

    def __init__(
        self, box: SecretBox, pool: asyncpg.Pool, *, allow_internal: bool | None = None
    ) -> None:
        self.box = box
        self.pool = pool
        # ALLOW_INTERNAL_URLS (None: the process's policy): connections reach only public
        # addresses, checked after DNS (``nordflow_connectors.egress``).
        self.allow_internal = allow_internal
        self.writers: dict[str, tuple[dt.datetime | None, Any]] = {}

    async def _cached(self, connection: WriteConnection) -> Any:
        cached = self.writers.get(connection.connection_id)
        if cached is not None and cached[0] == connection.updated_at:
            return cached[1]
        # Replaced before the old one is closed: jobs run at once, and none may find the
        # connection without a writer, or open a second one, while it closes.
        writer = self._open(connection)
        self.writers[connection.connection_id] = (connection.updated_at, writer)
        if cached is not None:
            await cached[1].aclose()
        return writer

    async def writer_for(self, connection: WriteConnection) -> Any:
        """The payments writer of a connection."""
        return await self._cached(connection)

    async def booker_for(self, connection: WriteConnection) -> Any:
        """The document writer of a connection."""
        return await self._cached(connection)

    def _session(self, connection: WriteConnection, credentials: OAuthCredentials) -> OAuthSession:
        initial = Tokens(
            access_token=SecretStr(""),  # expired at once: the first use refreshes
            refresh_token=credentials.refresh_token,
            expires_at=EPOCH,
        )
        store = PgTokenStore(
            self.pool,
            self.box,
            connection.connection_id,
            connection.tenant_id,
            initial,
            lock_namespace=LOCK_NAMESPACE,
        )
        return OAuthSession(
            credentials.token_url,
            credentials.client_id,
            credentials.client_secret,
            store,
            transport=self._transport(),
        )

    def _transport(self) -> httpx.AsyncHTTPTransport:
        return egress.guarded_transport(allow=self.allow_internal)

    def _open(self, connection: WriteConnection) -> Any:
        system = WriteSystem(connection.system)
        credentials = parse_credentials(self.box.open(connection.token_sealed), system)
        if system is WriteSystem.FORTNOX:
            limit, window = FORTNOX_BUDGET
            budget = PgRateBudget(
                self.pool, budget_key(system.value, connection.connection_id), limit, window
            )
            if isinstance(credentials, OAuthCredentials):
                session = self._session(connection, credentials)
                return FortnoxWriter(
                    FortnoxClient(
                        connection.base_url, session, limiter=budget, transport=self._transport()
                    ),
                    session,
                )
            assert isinstance(credentials, SecretStr)
            fortnox = FortnoxClient(
                connection.base_url, credentials, limiter=budget, transport=self._transport()
            )
            return FortnoxWriter(fortnox)
        if system is WriteSystem.TRIPLETEX:
            assert isinstance(credentials, TripletexTokens)
            limit, window = TRIPLETEX_BUDGET
            budget = PgRateBudget(
                self.pool, budget_key(system.value, connection.connection_id), limit, window
            )
            return TripletexWriter(
                TripletexClient(
                    connection.base_url,
                    credentials.consumer_token,
                    credentials.employee_token,
                    limiter=budget,
                    transport=self._transport(),
                )
            )
        if system is WriteSystem.VISMA_EACCOUNTING:
            assert isinstance(credentials, OAuthCredentials)
            session = self._session(connection, credentials)
            limit, window = VISMA_EACCOUNTING_BUDGET
            limiter_for = per_endpoint(
                self.pool, system.value, credentials.client_id, limit, window
            )
            return EAccountingWriter(
                VismaEAccountingClient(
                    connection.base_url,
                    session,
                    limiter_for=limiter_for,
                    transport=self._transport(),
                ),
                session,
            )
        if isinstance(credentials, VismaNetClientCredentials):
            tokens = ClientCredentialsSession(
                credentials.token_url,
                credentials.client_id,
                credentials.client_secret,
                scope=credentials.scope,
                tenant_id=credentials.tenant_id,
                transport=self._transport(),
            )
            client = VismaNetClient(
                connection.base_url, tokens, credentials.company_id, transport=self._transport()
            )
            return VismaNetWriter(client, tokens)
        if isinstance(credentials, VismaNetToken):
            return VismaNetWriter(
                VismaNetClient(
                    connection.base_url,
                    credentials.token,
                    credentials.company_id,
                    transport=self._transport(),
                )
            )
        raise UnpostableError(f"no ledger writer for {connection.system!r}")

    async def aclose(self) -> None:
        """Close every client and session (at shutdown)."""
        writers, self.writers = self.writers, {}
        for _, writer in writers.values():
            await writer.aclose()
