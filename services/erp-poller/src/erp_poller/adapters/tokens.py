"""erp-poller's OAuth token store: the shared `PgTokenStore` over its own ``oauth_tokens``.

The store lives in ``nordflow_connectors.pg_tokens`` (ledger-closer keeps its own grants the
same way, in its own schema); this module keeps erp-poller's name and lock namespace.
"""

from __future__ import annotations

import asyncpg
from nordflow_connectors.oauth import Tokens
from nordflow_connectors.pg_tokens import PgTokenStore as SharedPgTokenStore
from nordflow_connectors.pg_tokens import grant_id
from nordflow_runtime.crypto import SecretBox

LOCK_NAMESPACE = "erp_poller.oauth"


class PgTokenStore(SharedPgTokenStore):
    """The shared store, its advisory locks in erp-poller's namespace."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        connection_id: str,
        tenant_id: str,
        initial: Tokens,
    ) -> None:
        super().__init__(
            pool, box, connection_id, tenant_id, initial, lock_namespace=LOCK_NAMESPACE
        )


__all__ = ["LOCK_NAMESPACE", "PgTokenStore", "grant_id"]
