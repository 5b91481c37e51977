"""PostgreSQL token store: one connection's rotating OAuth tokens, sealed, shared by replicas.

Each service keeps the table in its own schema (the pool's ``search_path`` picks it):

    CREATE TABLE oauth_tokens (
        connection_id  text PRIMARY KEY,      -- references the service's connection table
        tenant_id      text NOT NULL,
        grant_id       text NOT NULL,         -- SHA-256 of the grant's first refresh token
        tokens_sealed  bytea NOT NULL,
        expires_at     timestamptz NOT NULL,
        rotations      integer NOT NULL DEFAULT 1,
        updated_at     timestamptz NOT NULL DEFAULT now()
    );

Two services that talk to one partner company (erp-poller reads, ledger-closer writes) each
hold their own authorization and their own table, so neither ever spends the other's
refresh token.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from nordflow_runtime import db
from nordflow_runtime.crypto import SecretBox

from .oauth import Tokens


def grant_id(tokens: Tokens) -> str:
    """Which authorization a chain of rotations descends from (a hash, never the token)."""
    return hashlib.sha256(tokens.refresh_token.get_secret_value().encode()).hexdigest()


class PgTokenStore:
    """`ExclusiveTokenStore` for one connection, in the service's ``oauth_tokens``.

    - ``load`` returns the last saved tokens of the current grant; before the first refresh
      (or after the connection was re-added with a new refresh token) the ``initial`` tokens
      from the connection's credentials.
    - ``save`` commits in its own transaction: durable when it returns, because the refresh
      token it replaces is already spent at the partner.
    - ``exclusive`` holds a PostgreSQL advisory lock per connection on a connection of its
      own, so two replicas never redeem one refresh token: the second waits, then reads and
      adopts the tokens the first saved. A crashed holder's lock goes with its connection.
      ``lock_namespace`` keeps the lock keys of services sharing one database apart.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        connection_id: str,
        tenant_id: str,
        initial: Tokens,
        *,
        lock_namespace: str = "oauth",
    ) -> None:
        self.pool = pool
        self.box = box
        self.connection_id = connection_id
        self.tenant_id = tenant_id
        self.initial = initial
        self.grant = grant_id(initial)
        self.lock_key = f"{lock_namespace}:{connection_id}"

    def __repr__(self) -> str:
        return f"PgTokenStore(connection_id={self.connection_id!r}, tenant_id={self.tenant_id!r})"

    async def load(self) -> Tokens | None:
        """The current tokens of this connection's grant."""
        row = await self.pool.fetchrow(
            "SELECT grant_id, tokens_sealed FROM oauth_tokens WHERE connection_id = $1",
            self.connection_id,
        )
        if row is None or row["grant_id"] != self.grant:
            return self.initial
        opened = self.box.open(bytes(row["tokens_sealed"]))
        return Tokens.load_secrets(json.loads(opened.get_secret_value()))

    async def save(self, tokens: Tokens) -> None:
        """Replace the stored tokens (committed before this returns)."""
        sealed = self.box.seal(json.dumps(tokens.dump_secrets()))
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO oauth_tokens (connection_id, tenant_id, grant_id, tokens_sealed,
                                             expires_at)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (connection_id) DO UPDATE SET
                     grant_id = EXCLUDED.grant_id, tokens_sealed = EXCLUDED.tokens_sealed,
                     expires_at = EXCLUDED.expires_at, updated_at = now(),
                     rotations = CASE WHEN oauth_tokens.grant_id = EXCLUDED.grant_id
                                      THEN oauth_tokens.rotations + 1 ELSE 1 END""",
                self.connection_id,
                self.tenant_id,
                self.grant,
                sealed,
                tokens.expires_at,
            )

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """At most one process refreshes this connection's tokens at a time."""
        async with db.session_lock(self.pool, self.lock_key):
            yield
