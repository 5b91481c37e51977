"""The ERP writers: one Fortnox client (and OAuth session) per write connection, kept for the
process's lifetime, and Fortnox's refusals as the domain's errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from nordflow_connectors import egress
from nordflow_connectors.fortnox import FortnoxClient
from nordflow_connectors.oauth import OAuthError, OAuthSession, Tokens
from nordflow_connectors.pg_tokens import PgTokenStore
from nordflow_connectors.resilience import PartnerError
from nordflow_runtime.crypto import SecretBox
from pydantic import SecretStr

from ..credentials import FortnoxOAuthCredentials, parse_credentials
from ..domain import AuthorizationRefusedError, EntryRefusedError, WriteConnection

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Keeps ledger-closer's advisory-lock keys apart from erp-poller's in a shared database.
LOCK_NAMESPACE = "ledger_closer.oauth"


@contextmanager
def _refusals() -> Iterator[None]:
    """Fortnox's answers that retrying cannot change, as ``EntryRefusedError`` /
    ``AuthorizationRefusedError``; anything else is left to retry."""
    try:
        yield
    except PartnerError as exc:
        if exc.permanent:
            raise EntryRefusedError(str(exc)) from exc
        raise
    except OAuthError as exc:
        if exc.permanent or exc.reauthorization_required:
            raise AuthorizationRefusedError(str(exc)) from exc
        raise


@dataclass
class FortnoxWriter:
    """``LedgerWriter`` on one Fortnox company; closes its client and OAuth session."""

    client: FortnoxClient
    session: OAuthSession | None = None

    async def payments_for_invoice(self, document_number: str) -> list[dict[str, Any]]:
        """Every payment registered on an invoice, each read in full."""
        with _refusals():
            return await self.client.payments_for_invoice(document_number)

    async def create_payment(
        self,
        *,
        document_number: str,
        amount: Decimal,
        payment_date: dt.date,
        mode_of_payment: str,
        account: int,
    ) -> dict[str, Any]:
        """Register one payment (retried by the client only on 429)."""
        with _refusals():
            return await self.client.create_payment(
                document_number=document_number,
                amount=amount,
                payment_date=payment_date,
                mode_of_payment=mode_of_payment,
                account=account,
            )

    async def aclose(self) -> None:
        """Close the client and the session."""
        await self.client.aclose()
        if self.session is not None:
            await self.session.aclose()


class FortnoxWriters:
    """``LedgerWriters``: the cached writer of each write connection.

    One client per connection, so its rate limiter (25 calls per 5 s) spans every job of
    that company; replaced when the connection is saved again (new token or URL). An OAuth
    connection refreshes with ledger-closer's own grant, its rotating tokens sealed in this
    service's ``oauth_tokens`` (shared by its replicas under an advisory lock).
    """

    def __init__(
        self, box: SecretBox, pool: asyncpg.Pool, *, allow_internal: bool | None = None
    ) -> None:
        self.box = box
        self.pool = pool
        # ALLOW_INTERNAL_URLS (None: the process's policy): connections reach only public
        # addresses, checked after DNS (``nordflow_connectors.egress``).
        self.allow_internal = allow_internal
        self.writers: dict[str, tuple[dt.datetime | None, FortnoxWriter]] = {}

    async def writer_for(self, connection: WriteConnection) -> FortnoxWriter:
        """The cached writer of a write connection."""
        cached = self.writers.get(connection.connection_id)
        if cached is not None and cached[0] == connection.updated_at:
            return cached[1]
        if cached is not None:
            del self.writers[connection.connection_id]
            await cached[1].aclose()
        writer = self._open(connection)
        self.writers[connection.connection_id] = (connection.updated_at, writer)
        return writer

    def _open(self, connection: WriteConnection) -> FortnoxWriter:
        credentials = parse_credentials(self.box.open(connection.token_sealed))
        if not isinstance(credentials, FortnoxOAuthCredentials):
            return FortnoxWriter(
                FortnoxClient(connection.base_url, credentials, transport=self._transport())
            )
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
        session = OAuthSession(
            credentials.token_url,
            credentials.client_id,
            credentials.client_secret,
            store,
            transport=self._transport(),
        )
        client = FortnoxClient(connection.base_url, session, transport=self._transport())
        return FortnoxWriter(client, session)

    def _transport(self) -> httpx.AsyncHTTPTransport:
        return egress.guarded_transport(allow=self.allow_internal)

    async def aclose(self) -> None:
        """Close every client and session (at shutdown)."""
        writers, self.writers = self.writers, {}
        for _, writer in writers.values():
            await writer.aclose()
