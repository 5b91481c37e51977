"""Use cases of the tenants' profiles, which erp-poller owns: saving one publishes it on
``tenant.updated`` (every other service keeps its copy from there) and lets pushes that
waited for it flow; the sellers connections carried before profiles existed become their
tenants' first profiles."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from nordflow_runtime.logs import log_context
from nordflow_schemas.common import ConnectionMode, TenantId
from nordflow_schemas.events import TenantUpdated
from nordflow_schemas.tenant import TenantProfile
from pydantic import TypeAdapter, ValidationError

from ..domain.connections import InvalidInputError
from ..domain.profiles import StoredProfile, profile_from_seller
from .documents import release_pending
from .ports import Repositories, UnitOfWork

log = logging.getLogger(__name__)

_TENANT_ID: TypeAdapter[str] = TypeAdapter(TenantId)


def check_tenant_id(tenant_id: str) -> None:
    """A tenant id every event may carry (lower-case letters, digits, hyphens)."""
    try:
        _TENANT_ID.validate_python(tenant_id)
    except ValidationError:
        raise InvalidInputError(
            "tenant", f"{tenant_id!r} is not a tenant id (a-z, 0-9 and -, at most 64)"
        ) from None


async def set_profile(
    repos: Repositories, tenant_id: str, profile: TenantProfile, now: dt.datetime
) -> tuple[StoredProfile, bool]:
    """Save the tenant's profile; ``(stored, changed)``.

    A change is a new revision, published on ``tenant.updated`` in the same transaction, and
    releases the pushes of the tenant's test and automatic connections that waited for a
    profile. Saving the profile it already has changes nothing and publishes nothing.
    """
    check_tenant_id(tenant_id)
    revision = await repos.profiles.save(tenant_id, profile, now)
    await repos.profiles.forget_legacy_seller(tenant_id)
    if revision is None:
        stored = await repos.profiles.stored(tenant_id)
        assert stored is not None
        return stored, False
    await repos.outbox.add(
        TenantUpdated(tenant_id=tenant_id, revision=revision, profile=profile, updated_at=now)
    )
    for connection in await repos.connections.of_tenant(tenant_id):
        if connection.mode is not ConnectionMode.MANUAL:
            await release_pending(repos, connection, profile, limit=None, documents=(), now=now)
    return StoredProfile(tenant_id, revision, now, profile), True


async def stored_profile(repos: Repositories, tenant_id: str) -> StoredProfile | None:
    """The tenant's profile with its revision, or None."""
    return await repos.profiles.stored(tenant_id)


async def adopt_legacy_sellers(uow: UnitOfWork, now: Callable[[], dt.datetime]) -> int:
    """Give each tenant whose connections carried a seller before profiles existed (and that
    has no profile yet) the profile that seller stands for, published like any other.

    One transaction per tenant; replicas starting together skip each other's tenants. A
    seller that cannot be a profile is kept with its problem (logged) for an operator, who
    sets the profile by hand. Returns how many profiles were created.
    """
    adopted = 0
    while True:
        async with uow.transaction() as repos:
            legacy = await repos.profiles.next_legacy_seller()
            if legacy is None:
                return adopted
            tenant_id = legacy.tenant_id
            with log_context(tenant_id, None):
                if await repos.profiles.get(tenant_id) is not None:
                    await repos.profiles.forget_legacy_seller(tenant_id)
                    continue
                try:
                    check_tenant_id(tenant_id)
                    profile = profile_from_seller(legacy.seller)
                except ValueError as exc:
                    problem = f"the seller of connection {legacy.connection_id!r}: {exc}"[:1000]
                    await repos.profiles.legacy_problem(tenant_id, problem)
                    log.warning("tenant %s needs a profile set by hand: %s", tenant_id, problem)
                    continue
                await set_profile(repos, tenant_id, profile, now())
                adopted += 1
                log.info(
                    "tenant %s: profile created from connection %s's seller",
                    tenant_id,
                    legacy.connection_id,
                )
