"""The tenant's choices in PostgreSQL: `channel_overrides`, `channel_suggestions`,
`paper_options`; and `api_tokens`' names."""

from __future__ import annotations

import asyncpg
from nordflow_runtime.tenants import token_hash
from nordflow_schemas.events import Channel

from ...domain.deliveries import NewSuggestion, Override, Suggestion
from ...domain.documents import PaperOptions

_SUGGESTION_COLUMNS = (
    "suggestion_id, customer_key, invoice_id, current_channel, suggested_channel, recipient, "
    "state, suggested_at, decided_at"
)


def _override(row: asyncpg.Record) -> Override:
    return Override(
        customer_key=row["customer_key"] or None,
        channel=Channel(row["channel"]),
        updated_at=row["updated_at"],
    )


def _suggestion(row: asyncpg.Record) -> Suggestion:
    return Suggestion(
        suggestion_id=row["suggestion_id"],
        customer_key=row["customer_key"],
        invoice_id=row["invoice_id"],
        current_channel=Channel(row["current_channel"]),
        suggested_channel=Channel(row["suggested_channel"]),
        recipient=row["recipient"],
        state=row["state"],
        suggested_at=row["suggested_at"],
        decided_at=row["decided_at"],
    )


class PgOverrideRepository:
    """Per tenant, ``customer_key`` ``''`` = the tenant's default."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def for_customer(self, tenant_id: str, customer_key: str) -> Channel | None:
        """The customer's own channel, else the tenant's default."""
        value: str | None = await self.conn.fetchval(
            "SELECT channel FROM channel_overrides WHERE tenant_id = $1 "
            "AND customer_key IN ($2, '') ORDER BY customer_key = '' LIMIT 1",
            tenant_id,
            customer_key,
        )
        return Channel(value) if value else None

    async def list(self, tenant_id: str) -> list[Override]:
        """The default and every customer's, by customer key."""
        rows = await self.conn.fetch(
            "SELECT * FROM channel_overrides WHERE tenant_id = $1 ORDER BY customer_key",
            tenant_id,
        )
        return [_override(r) for r in rows]

    async def save(self, tenant_id: str, customer_key: str | None, channel: Channel) -> Override:
        """Create or replace."""
        row = await self.conn.fetchrow(
            "INSERT INTO channel_overrides (tenant_id, customer_key, channel) VALUES ($1, $2, $3) "
            "ON CONFLICT (tenant_id, customer_key) DO UPDATE "
            "SET channel = EXCLUDED.channel, updated_at = now() RETURNING *",
            tenant_id,
            customer_key or "",
            channel.value,
        )
        assert row is not None
        return _override(row)

    async def delete(self, tenant_id: str, customer_key: str | None) -> bool:
        """Remove; False if none was set."""
        deleted = await self.conn.fetchval(
            "DELETE FROM channel_overrides WHERE tenant_id = $1 AND customer_key = $2 "
            "RETURNING true",
            tenant_id,
            customer_key or "",
        )
        return bool(deleted)


class PgSuggestionRepository:
    """Cheaper channels found for customers: open, dismissed or accepted."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def record_once(self, new: NewSuggestion) -> int | None:
        """The new suggestion's id, unless one is open or was dismissed within ``snooze``."""
        found: int | None = await self.conn.fetchval(
            "INSERT INTO channel_suggestions (tenant_id, customer_key, invoice_id, "
            "current_channel, suggested_channel, recipient, suggested_at) "
            "SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS ("
            "  SELECT 1 FROM channel_suggestions WHERE tenant_id = $1 AND customer_key = $2 "
            "  AND suggested_channel = $5 AND (state = 'open' OR (state = 'dismissed' "
            "  AND decided_at > $7::timestamptz - $8::interval))) "
            "ON CONFLICT (tenant_id, customer_key, suggested_channel) WHERE state = 'open' "
            "DO NOTHING RETURNING suggestion_id",
            new.tenant_id,
            new.customer_key,
            new.invoice_id,
            new.current.value,
            new.suggested.value,
            new.recipient,
            new.now,
            new.snooze,
        )
        return found

    async def list(self, tenant_id: str, state: str) -> list[Suggestion]:
        """The tenant's suggestions in a state (``all``: any), newest first."""
        rows = await self.conn.fetch(
            f"SELECT {_SUGGESTION_COLUMNS} FROM channel_suggestions "
            "WHERE tenant_id = $1 AND ($2 = 'all' OR state = $2) ORDER BY suggestion_id DESC "
            "LIMIT 500",
            tenant_id,
            state,
        )
        return [_suggestion(r) for r in rows]

    async def lock(self, tenant_id: str, suggestion_id: int) -> Suggestion | None:
        """One of the tenant's suggestions, locked until the transaction ends."""
        row = await self.conn.fetchrow(
            f"SELECT {_SUGGESTION_COLUMNS} FROM channel_suggestions "
            "WHERE suggestion_id = $1 AND tenant_id = $2 FOR UPDATE",
            suggestion_id,
            tenant_id,
        )
        return None if row is None else _suggestion(row)

    async def decide(self, suggestion_id: int, state: str) -> Suggestion:
        """Record the decision now."""
        row = await self.conn.fetchrow(
            "UPDATE channel_suggestions SET state = $2, decided_at = now() "
            f"WHERE suggestion_id = $1 RETURNING {_SUGGESTION_COLUMNS}",
            suggestion_id,
            state,
        )
        assert row is not None
        return _suggestion(row)


class PgPaperOptionsRepository:
    """Per tenant: postage, colour, duplex (null = the service's default)."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def get(self, tenant_id: str) -> PaperOptions:
        """The tenant's options (all None when it set none)."""
        row = await self.conn.fetchrow(
            "SELECT postage, colour, duplex, updated_at FROM paper_options WHERE tenant_id = $1",
            tenant_id,
        )
        if row is None:
            return PaperOptions()
        return PaperOptions(row["postage"], row["colour"], row["duplex"], row["updated_at"])

    async def save(self, tenant_id: str, options: PaperOptions) -> PaperOptions:
        """Replace the tenant's options."""
        row = await self.conn.fetchrow(
            "INSERT INTO paper_options (tenant_id, postage, colour, duplex) "
            "VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (tenant_id) DO UPDATE SET postage = EXCLUDED.postage, "
            "colour = EXCLUDED.colour, duplex = EXCLUDED.duplex, updated_at = now() "
            "RETURNING postage, colour, duplex, updated_at",
            tenant_id,
            options.postage,
            options.colour,
            options.duplex,
        )
        assert row is not None
        return PaperOptions(row["postage"], row["colour"], row["duplex"], row["updated_at"])

    async def delete(self, tenant_id: str) -> bool:
        """Back to the defaults; False when none were set."""
        deleted: bool | None = await self.conn.fetchval(
            "DELETE FROM paper_options WHERE tenant_id = $1 RETURNING true", tenant_id
        )
        return bool(deleted)


class PgTokenNames:
    """The names API tokens were created with (who released a hold)."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def name_of(self, token: str) -> str | None:
        """The name of a token, if it exists."""
        name: str | None = await self.conn.fetchval(
            "SELECT name FROM api_tokens WHERE token_hash = $1", token_hash(token)
        )
        return name
