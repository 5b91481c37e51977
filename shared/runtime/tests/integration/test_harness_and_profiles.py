"""The test harness and every service's copy of tenant profiles, on the real PostgreSQL server."""

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from nordflow_runtime.app import Resources, ServiceApp
from nordflow_runtime.consumer import Context, PermanentError
from nordflow_runtime.jobs import Job, schedule
from nordflow_runtime.settings import ServiceSettings
from nordflow_runtime.tenant_profiles import PgTenantProfiles
from nordflow_runtime.testing import FakeTenantProfiles, ServiceHarness
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.envelope import Envelope, encode, envelope
from nordflow_schemas.events import (
    EntryKind,
    LedgerEntryPosted,
    PaymentReceived,
    TenantUpdated,
)
from nordflow_schemas.invoice import Address, Party
from nordflow_schemas.tenant import Locale, TenantProfile
from nordflow_schemas.topics import PAYMENT_RECEIVED, TENANT_UPDATED

pytestmark = pytest.mark.integration


def profile(zone: str = "Europe/Oslo", name: str = "Fjord AS") -> TenantProfile:
    return TenantProfile(
        legal_name=name,
        country="NO",
        time_zone=zone,
        locale=Locale.NB,
        accounting_currency="NOK",
        seller=Party(name=name, address=Address(country_code="NO")),
    )


def payment(tenant: str, n: int = 1) -> PaymentReceived:
    return PaymentReceived(
        tenant_id=tenant,
        invoice_id=f"inv_{n}",
        source=SourceRef(system=SourceSystem.FORTNOX, connection_id="c", document_id=str(n)),
        payment_id=f"pay-{n}",
        amount=Decimal("100.50"),
        currency="NOK",
        paid_on=dt.date(2026, 11, 23),
        payer="Kunde AS",
    )


class Deps:
    """What the toy service's handlers are given."""

    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def on_payment_received(ctx: Context[Deps], env: Envelope[PaymentReceived]) -> None:
    """Books the payment: a local date in the tenant's zone; a refused one is poison."""
    if env.body.amount < 0:
        raise PermanentError("amount.negative: a payment is never negative")
    await schedule(
        ctx.conn,
        kind="book",
        key=env.body.payment_id,
        tenant_id=env.tenant_id,
        payload={"invoice_id": env.body.invoice_id, "amount": str(env.body.amount)},
        due_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )


async def book(ctx: Context[Deps], job: Job) -> dict[str, Any]:
    found = await PgTenantProfiles(ctx.conn).get(job.tenant_id)
    await ctx.emit(
        LedgerEntryPosted(
            tenant_id=job.tenant_id,
            invoice_id=job.payload["invoice_id"],
            source=SourceRef(system=SourceSystem.FORTNOX, connection_id="c", document_id="1"),
            entry_kind=EntryKind.INVOICE_PAYMENT,
            erp_reference=found.time_zone if found else "no profile",
            amount=Decimal(job.payload["amount"]),
            currency="NOK",
            account="1920",
            posted_at=dt.datetime.now(dt.UTC),
        )
    )
    return {"ok": True}


async def build(_: Resources) -> Deps:
    return Deps()


def toy_app() -> ServiceApp[Deps]:
    settings = ServiceSettings(kafka_bootstrap_servers="unused:9092", database_url="postgresql://x")
    app: ServiceApp[Deps] = ServiceApp(f"toy-{uuid.uuid4().hex[:6]}", settings, None, deps=build)
    app.subscribe(PAYMENT_RECEIVED.name, on_payment_received)
    app.job("book", book)
    return app


@pytest.fixture
async def harness(database_url):
    h = await ServiceHarness.start(toy_app(), database_url)
    yield h
    await h.close()


async def test_every_service_subscribes_to_tenant_updated_unless_it_owns_the_profiles() -> None:
    assert TENANT_UPDATED.name in toy_app().handlers
    settings = ServiceSettings(kafka_bootstrap_servers="k:9092", database_url="postgresql://x")
    owner: ServiceApp[None] = ServiceApp("owner", settings, None, tenant_profiles=False)
    assert TENANT_UPDATED.name not in owner.handlers


async def test_a_handler_runs_once_and_its_job_emits_through_the_outbox(harness) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await harness.tenant(tenant, profile("Europe/Oslo"))
    event = envelope(payment(tenant), source="/test")
    first = await harness.deliver(event, event)  # the same event twice in one batch
    assert first.events == []
    assert first.dead_letters == []
    assert [j["job_key"] for j in await harness.jobs("book")] == ["pay-1"]
    assert (await harness.run_jobs()).events == []  # not due for an hour
    done = await harness.run_jobs(include_future=True)
    [posted] = done.of(LedgerEntryPosted)
    assert posted.erp_reference == "Europe/Oslo"
    assert done.events[0].key == posted.invoice_id
    again = await harness.deliver(event)
    assert again.events == []
    assert len(await harness.jobs()) == 1


async def test_a_poison_record_is_dead_lettered_naming_why(harness) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    bad = payment(tenant).model_copy(update={"amount": Decimal("-1")})
    out = await harness.publish(bad)
    [letter] = out.dead_letters
    assert letter.origin_topic == PAYMENT_RECEIVED.name
    assert "amount.negative" in letter.reason
    key, _value, headers = encode(envelope(payment(tenant, 2), source="/test"))
    garbled = await harness.deliver_records([(PAYMENT_RECEIVED.name, key, b"{not json", headers)])
    assert "body invalid" in garbled.dead_letters[0].reason


async def test_the_newest_profile_revision_wins_whatever_the_order(harness) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    profiles = PgTenantProfiles(harness.pool)
    assert await profiles.get(tenant) is None
    await harness.tenant(tenant, profile("Europe/Oslo", "Ny AS"), revision=2)
    await harness.tenant(tenant, profile("Europe/Stockholm", "Gammel AS"), revision=1)
    await harness.tenant(tenant, profile("Europe/Stockholm", "Gammel AS"), revision=2)
    kept = await profiles.get(tenant)
    assert kept is not None
    assert (kept.legal_name, kept.time_zone) == ("Ny AS", "Europe/Oslo")
    assert await profiles.revision(tenant) == 2


async def test_the_profiles_of_a_batchs_tenants_are_read_at_once(harness) -> None:
    oslo, stockholm, unknown = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(3))
    await harness.tenant(oslo, profile("Europe/Oslo", "Fjord AS"))
    await harness.tenant(stockholm, profile("Europe/Stockholm", "Skog AB"))
    await harness.tenant(stockholm, profile("Europe/Stockholm", "Skog och Sjö AB"), revision=2)
    found = await PgTenantProfiles(harness.pool).of_tenants([oslo, stockholm, unknown])
    assert {t: p.legal_name for t, p in found.items()} == {
        oslo: "Fjord AS",
        stockholm: "Skog och Sjö AB",
    }
    assert await PgTenantProfiles(harness.pool).of_tenants([]) == {}
    fake = FakeTenantProfiles({oslo: profile()})
    assert await fake.of_tenants([oslo, unknown]) == {oslo: profile()}


async def test_tenant_updated_is_keyed_by_tenant() -> None:
    update = TenantUpdated(
        tenant_id="fjord", revision=1, profile=profile(), updated_at=dt.datetime.now(dt.UTC)
    )
    key, _, _ = encode(envelope(update, source="/erp-poller"))
    assert key == b"fjord"


async def test_closing_the_harness_closes_the_dependencies(database_url) -> None:
    h = await ServiceHarness.start(toy_app(), database_url)
    deps = h.deps
    await h.close()
    assert deps.closed
