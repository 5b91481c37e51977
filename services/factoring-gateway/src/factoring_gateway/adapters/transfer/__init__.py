"""Transfer methods behind one registry: an agreement's ``transfer.method`` picks the client
(SFTP or the HTTPS factor API) that hands its files over and reads the answers back."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from ...domain.agreements import Agreement, TransferMethod
from ...domain.transfer import TransferSecret
from ...service.ports import FactorClient
from .https import connect_https
from .sftp import connect_sftp

Connector = Callable[[Agreement, TransferSecret], AbstractAsyncContextManager[FactorClient]]


class TransferClients:
    """The transfer methods by name; ``connect`` opens the agreement's."""

    def __init__(self, connectors: dict[TransferMethod, Connector]) -> None:
        self.connectors = dict(connectors)

    @asynccontextmanager
    async def connect(
        self, agreement: Agreement, secret: TransferSecret
    ) -> AsyncIterator[FactorClient]:
        """A client for the agreement's method."""
        async with self.connectors[agreement.transfer.method](agreement, secret) as client:
            yield client


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store, or only the CA in ``ca_file`` (a provider's own CA)."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return ssl.create_default_context()


def default_clients(
    *,
    timeout: float,
    poll_seconds: float,
    ca_file: str | None = None,
    allow_internal: bool | None = None,
) -> TransferClients:
    """SFTP and HTTPS with the service's timeouts and trust; hosts and URLs are the tenant's,
    so only public addresses are connected to (``allow_internal``: ALLOW_INTERNAL_URLS)."""
    context = tls_context(ca_file)

    def sftp(
        agreement: Agreement, secret: TransferSecret
    ) -> AbstractAsyncContextManager[FactorClient]:
        return connect_sftp(
            agreement,
            secret,
            timeout=timeout,
            poll_seconds=poll_seconds,
            allow_internal=allow_internal,
        )

    def https(
        agreement: Agreement, secret: TransferSecret
    ) -> AbstractAsyncContextManager[FactorClient]:
        return connect_https(
            agreement, secret, timeout=timeout, verify=context, allow_internal=allow_internal
        )

    return TransferClients({TransferMethod.SFTP: sftp, TransferMethod.HTTPS: https})
