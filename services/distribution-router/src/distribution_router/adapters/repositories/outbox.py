"""The runtime's transactional outbox on a transaction's connection."""

from __future__ import annotations

import asyncpg
from nordflow_runtime import outbox
from nordflow_schemas.envelope import envelope
from nordflow_schemas.events import EventBody
from nordflow_schemas.topics import DISTRIBUTION_ROUTER

SOURCE = f"/{DISTRIBUTION_ROUTER}"


class PgOutbox:
    """Events written to ``outbox`` in the caller's transaction, with the current trace
    context (the consumed record's, or the HTTP request's); the relay publishes them."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def add(self, event: EventBody, *, subject: str | None = None) -> None:
        """Publish ``event`` once this transaction commits."""
        if not isinstance(self.conn, asyncpg.Connection) or not self.conn.is_in_transaction():
            # On a pool (or outside a transaction) the event would not share the change's fate.
            raise TypeError("an outgoing event needs the transaction of its change")
        await outbox.add(self.conn, envelope(event, source=SOURCE, subject=subject))
