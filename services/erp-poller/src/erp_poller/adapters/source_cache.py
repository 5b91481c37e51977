"""One source (client, rate limiter, OAuth session) per connection, reused across runs."""

from __future__ import annotations

import datetime as dt

import asyncpg
from nordflow_runtime.crypto import SecretBox

from ..domain.connections import Connection
from ..service.ports import Source
from .sources import ClientOptions, open_source


class SourceCache:
    """The source of each connection, reused across polls, syncs and backfills so its rate
    limiter spans them; rebuilt when the connection's configuration changes (``updated_at``)."""

    def __init__(
        self,
        box: SecretBox,
        pool: asyncpg.Pool,
        options: ClientOptions = ClientOptions(),  # noqa: B008 - frozen
    ) -> None:
        self.box = box
        self.pool = pool
        self.options = options
        self.sources: dict[str, tuple[dt.datetime | None, Source]] = {}

    async def source_for(self, connection: Connection) -> Source:
        """The cached source of a connection, opened on first use or after a change."""
        cached = self.sources.get(connection.connection_id)
        if cached is not None and cached[0] == connection.updated_at:
            return cached[1]
        if cached is not None:
            del self.sources[connection.connection_id]
            await cached[1].aclose()
        source = open_source(connection, self.box, self.pool, self.options)
        self.sources[connection.connection_id] = (connection.updated_at, source)
        return source

    async def aclose(self) -> None:
        """Close every source."""
        sources, self.sources = self.sources, {}
        for _, source in sources.values():
            await source.aclose()
