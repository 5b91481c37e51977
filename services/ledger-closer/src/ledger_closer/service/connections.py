"""Use case of the write connections: where ledger-closer writes for a connection."""

from __future__ import annotations

from ..domain import WriteConnection
from .ports import ConnectionRepository


async def add_connection(connections: ConnectionRepository, connection: WriteConnection) -> None:
    """Create or replace where ledger-closer writes for a connection (its credentials sealed
    already); ``ConnectionOfAnotherTenantError`` if the id is another tenant's."""
    await connections.save(connection)
