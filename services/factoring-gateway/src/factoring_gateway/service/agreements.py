"""Agreements: stored valid or refused naming the field; each save (re)schedules the
agreement's next window and starts its settlement polling again, with a read due now."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid

from nordflow_schemas.tenant import tenant_zone

from ..domain.agreements import Agreement, check_agreement
from ..domain.formats import FormatRegistry
from ..domain.transfer import TransferSecret
from ..domain.windows import next_window, window_job_key
from .ports import SETTLEMENT_JOB, WINDOW_JOB, Repositories, SecretSealer, StoredAgreement

# Without a profile yet, windows are taken in Sweden's zone (the country most tenants have).
FALLBACK_COUNTRY = "SE"


class AgreementOfAnotherTenantError(LookupError):
    """The agreement id belongs to another tenant (answered like an unknown id)."""


def seal_secret(sealer: SecretSealer, secret: TransferSecret) -> bytes:
    """The secret as stored."""
    return sealer.seal(json.dumps(dataclasses.asdict(secret)))


def open_secret(sealer: SecretSealer, sealed: bytes | None) -> TransferSecret:
    """The stored secret (empty when none)."""
    if sealed is None:
        return TransferSecret()
    return TransferSecret(**json.loads(sealer.open(sealed).get_secret_value()))


async def agreement(repos: Repositories, tenant_id: str, agreement_id: str) -> StoredAgreement:
    """The tenant's agreement; another tenant's is as unknown as a missing one."""
    found = await repos.agreements.get(agreement_id)
    if found is None or found.agreement.tenant_id != tenant_id:
        raise AgreementOfAnotherTenantError(f"no agreement {agreement_id!r}")
    return found


async def set_agreement(
    repos: Repositories,
    formats: FormatRegistry,
    sealer: SecretSealer,
    new: Agreement,
    secret: TransferSecret | None,
    now: dt.datetime,
) -> StoredAgreement:
    """Create or replace an agreement (InvalidAgreementError names each bad field).

    A secret left out keeps the stored one. The pending window timer is replaced by one for
    the next window under the new terms; changed terms apply to invoices decided later.
    The pending settlement reads are replaced by one due now: each read schedules the next
    with the running service's own interval (``SETTLEMENT_POLL_SECONDS``), so where the
    agreement was saved — the service's API, or the CLI in a process with other settings —
    never decides when the reads come, and a second save never starts a second series.
    """
    existing = await repos.agreements.get(new.agreement_id)
    if existing is not None and existing.agreement.tenant_id != new.tenant_id:
        raise AgreementOfAnotherTenantError(f"agreement {new.agreement_id!r} is taken")
    given = secret is not None and secret.present
    kept = existing is not None and existing.sealed_secret is not None
    check_agreement(new, formats.ids, has_secret=given or kept)
    sealed = seal_secret(sealer, secret) if secret is not None and given else None
    await repos.agreements.save(new, sealed)
    await repos.jobs.cancel_pending(WINDOW_JOB, f"window:{new.agreement_id}:")
    await schedule_next_window(repos, new, now)
    await repos.jobs.cancel_pending(SETTLEMENT_JOB, f"settlements:{new.agreement_id}:")
    await schedule_settlements(repos, new, now)
    stored = await repos.agreements.get(new.agreement_id)
    assert stored is not None
    return stored


async def schedule_next_window(
    repos: Repositories,
    agreement: Agreement,
    now: dt.datetime,
    *,
    after_day: dt.date | None = None,
) -> None:
    """The durable timer of the agreement's next window (none while it is disabled): the
    first that opens after ``now`` and, when given, on a later date than ``after_day`` (the
    window that just ran, even if it ran before its time)."""
    if not agreement.enabled:
        return
    zone = tenant_zone(await repos.profiles.get(agreement.tenant_id), FALLBACK_COUNTRY)
    day, opens = next_window(now, agreement.window_start, zone)
    while after_day is not None and day <= after_day:
        day, opens = next_window(opens, agreement.window_start, zone)
    await repos.jobs.schedule(
        WINDOW_JOB,
        window_job_key(agreement.agreement_id, day),
        agreement.tenant_id,
        {"agreement_id": agreement.agreement_id, "date": day.isoformat()},
        opens,
    )


async def schedule_settlements(repos: Repositories, agreement: Agreement, at: dt.datetime) -> None:
    """The next look for settlement files. Its key is new each time: a save in the second
    of a read that already ran would otherwise find the key taken and start no series."""
    if not agreement.enabled:
        return
    await repos.jobs.schedule(
        SETTLEMENT_JOB,
        f"settlements:{agreement.agreement_id}:{int(at.timestamp())}:{uuid.uuid4().hex[:8]}",
        agreement.tenant_id,
        {"agreement_id": agreement.agreement_id},
        at,
    )
