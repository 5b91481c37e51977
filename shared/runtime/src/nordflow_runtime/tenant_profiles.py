"""Each service's copy of its tenants' profiles, kept from the compacted ``tenant.updated``.

Every ``ServiceApp`` subscribes to ``tenant.updated`` (the owner, erp-poller, excepted) and
keeps the newest revision per tenant in its own ``tenant_profiles`` table. Use cases read a
profile through the ``TenantProfiles`` protocol: ``PgTenantProfiles`` on the batch's or
job's connection, ``nordflow_runtime.testing.FakeTenantProfiles`` in fast tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import TenantUpdated
from nordflow_schemas.tenant import TenantProfile

from .consumer import Context


class TenantProfiles(Protocol):
    """Where a use case finds a tenant's profile (its time zone, locale, seller …)."""

    async def get(self, tenant_id: str) -> TenantProfile | None:
        """The tenant's newest profile, or None if none has arrived yet."""
        ...

    async def of_tenants(self, tenant_ids: Sequence[str]) -> dict[str, TenantProfile]:
        """The newest profiles of those of the tenants that have one (a batch's tenants)."""
        ...


class PgTenantProfiles:
    """Profiles in the service's own ``tenant_profiles`` table."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def get(self, tenant_id: str) -> TenantProfile | None:
        """The tenant's newest profile, or None."""
        text = await self.conn.fetchval(
            "SELECT profile::text FROM tenant_profiles WHERE tenant_id = $1", tenant_id
        )
        return None if text is None else TenantProfile.model_validate_json(text)

    async def of_tenants(self, tenant_ids: Sequence[str]) -> dict[str, TenantProfile]:
        """The newest profiles of those of the tenants that have one, in one statement."""
        rows = await self.conn.fetch(
            "SELECT tenant_id, profile::text AS profile FROM tenant_profiles "
            "WHERE tenant_id = ANY($1::text[])",
            list(tenant_ids),
        )
        return {row["tenant_id"]: TenantProfile.model_validate_json(row["profile"]) for row in rows}

    async def revision(self, tenant_id: str) -> int:
        """The tenant's newest revision; 0 when it has none."""
        found = await self.conn.fetchval(
            "SELECT revision FROM tenant_profiles WHERE tenant_id = $1", tenant_id
        )
        return int(found or 0)

    async def save(self, update: TenantUpdated) -> bool:
        """Keep ``update`` unless a newer (or the same) revision is already kept."""
        saved = await self.conn.fetchval(
            """INSERT INTO tenant_profiles (tenant_id, revision, profile, updated_at)
               VALUES ($1, $2, $3::jsonb, $4)
               ON CONFLICT (tenant_id) DO UPDATE SET revision = EXCLUDED.revision,
                   profile = EXCLUDED.profile, updated_at = EXCLUDED.updated_at,
                   received_at = now()
               WHERE tenant_profiles.revision < EXCLUDED.revision
               RETURNING true""",
            update.tenant_id,
            update.revision,
            update.profile.model_dump_json(),
            update.updated_at,
        )
        return bool(saved)


async def on_tenant_updated(ctx: Context[Any], env: Envelope[TenantUpdated]) -> None:
    """Keep the newest profile of the tenant (records may arrive twice or out of order)."""
    await PgTenantProfiles(ctx.conn).save(env.body)
