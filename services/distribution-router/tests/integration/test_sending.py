"""The send-invoice job on the real PostgreSQL: routing, exactly-once sends, fallbacks,
holds, test mode, overrides and suggestions. The partners are fakes implementing
`service.ports.Sender` that count every send they take (`distribution_router.testing`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet
from distribution_router.adapters.channels.base import (
    PermanentSendError,
    Receipt,
    TransientSendError,
)
from distribution_router.adapters.channels.peppol_ap import PeppolAccessPointSender
from distribution_router.adapters.repositories import PgHoldRepository
from distribution_router.adapters.smp import ParticipantLookup
from distribution_router.deps import Deps
from distribution_router.domain.channels import SEND_INVOICE
from distribution_router.entrypoints.jobs import on_send_invoice
from distribution_router.service import holds
from distribution_router.service.ports import CapabilityLookup
from distribution_router.service.routing import distribute_invoice
from distribution_router.testing import (
    Registered,
    fake_senders,
    outbox_bodies,
    send_worker,
    start_harness,
)
from distribution_router.testing.invoices import GLN, company, consumer
from distribution_router.testing.invoices import created_event as created
from nordflow_runtime import jobs
from nordflow_runtime.jobs import Job, JobRun
from nordflow_runtime.personal_data import PersonalData
from nordflow_runtime.testing import PERSONAL_DATA_KEY, ServiceHarness
from nordflow_sandboxes.peppol_ap.testing import PeppolNetwork, running_peppol_network
from nordflow_schemas.events import Channel, Flow, InvoiceCreated
from nordflow_schemas.invoice import Party
from pydantic import SecretStr

pytestmark = pytest.mark.integration


@dataclasses.dataclass(frozen=True)
class OutcomeLost(JobRun[Deps]):
    """A run whose outcome's transaction is lost (the process died after the partner took
    the send and before the outcome committed)."""

    def transaction(self) -> Any:
        raise ConnectionResetError("the outcome's transaction was lost after the send")


class World:
    """The routing handler and the send job wired to fakes, on one database."""

    def __init__(self, harness: ServiceHarness[Deps]) -> None:
        self.harness = harness
        self.pool = harness.pool
        self.smp: CapabilityLookup = Registered()
        self.senders: dict[Channel, Any] = dict(fake_senders())
        self.crash_after_send = False

    def deps(self) -> Deps:
        """The service's dependencies with this world's SMP and partners."""
        return dataclasses.replace(
            self.harness.deps,
            senders=self.senders,
            lookup=self.smp,
            registry=self.senders[Channel.B2C_BANK],
        )

    async def handler(self, run: JobRun[Deps], job: Job) -> dict[str, Any]:
        if self.crash_after_send:
            self.crash_after_send = False
            run = OutcomeLost(run.pool, run.service, run.deps, run.job_id, run.lease)
        return await on_send_invoice(run, job)

    async def route(self, event: InvoiceCreated, now: dt.datetime | None = None) -> Any:
        deps = self.deps()
        async with self.pool.acquire() as conn, conn.transaction():
            return await distribute_invoice(
                deps.repositories(conn), deps.partners, event, now or dt.datetime.now(dt.UTC)
            )

    async def run_job(self) -> bool:
        """Run the send job once (making a retry due at once: no waiting in tests)."""
        await self.pool.execute(
            "UPDATE jobs SET due_at = LEAST(due_at, now()) WHERE kind = $1 AND state = 'pending' "
            "AND attempts > 0",
            SEND_INVOICE,
        )
        self.harness.deps = self.deps()
        return await send_worker(self.harness, self.handler, max_attempts=3).run_one()

    @property
    def registered(self) -> set[tuple[str, str]]:
        assert isinstance(self.smp, Registered)
        return self.smp.participants

    def sends(self, channel: Channel) -> int:
        return len(self.senders[channel].received)

    async def delivery(self, invoice_id: str) -> asyncpg.Record:
        row = await self.pool.fetchrow("SELECT * FROM deliveries WHERE invoice_id = $1", invoice_id)
        assert row is not None
        return row

    async def events(self, invoice_id: str, topic: str) -> list[dict[str, Any]]:
        return await outbox_bodies(self.harness, invoice_id, topic)

    async def attempts(self, invoice_id: str) -> list[asyncpg.Record]:
        return list(
            await self.pool.fetch(
                "SELECT * FROM delivery_attempts WHERE invoice_id = $1 ORDER BY started_at",
                invoice_id,
            )
        )

    async def job_row(self, invoice_id: str) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.pool.fetchrow(
            "SELECT * FROM jobs WHERE kind = $1 AND job_key = $2", SEND_INVOICE, invoice_id
        )
        return row


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    harness = await start_harness(database_url)
    yield World(harness)
    await harness.close()


async def test_a_peppol_recipient_is_sent_once_archived_and_announced(world: World) -> None:
    world.registered.add(GLN)
    event = created(company(gln=True, email="ap@kund.example"))

    assert await world.route(event) is None
    assert (await world.delivery(event.invoice_id))["status"] == "scheduled"
    assert await world.events(event.invoice_id, "invoice.distributed") == []
    assert await world.run_job()

    assert world.sends(Channel.PEPPOL) == 1
    (key,) = world.senders[Channel.PEPPOL].received
    assert key == f"{event.invoice_id}:peppol:1"
    sent = world.senders[Channel.PEPPOL].received[key]
    assert sent.recipient == "0088:7300010000001"
    assert sent.content_type == "application/xml"
    assert b"7300010000001" in sent.document
    row = await world.delivery(event.invoice_id)
    assert row["status"] == "sent"
    assert row["partner_reference"] == f"peppol-{key}"
    assert row["cost"] == Decimal("0.50")
    (body,) = await world.events(event.invoice_id, "invoice.distributed")
    assert body["channel"] == "peppol"
    assert body["document_format"] == "peppol-bis-billing-3"
    assert body["recipient"] == "0088:7300010000001"
    assert body["partner_reference"] == f"peppol-{key}"
    assert body["archive_sequence"] == row["archive_sequence"] == 1
    archived = await world.pool.fetchrow(
        "SELECT * FROM archived_documents WHERE invoice_id = $1", event.invoice_id
    )
    assert archived is not None
    assert bytes(archived["content"]) == sent.document
    assert not await world.run_job()  # nothing left to do


async def test_a_registered_consumer_gets_the_invoice_in_the_bank(world: World) -> None:
    world.senders[Channel.B2C_BANK].consumers.add("198503172384")
    event = created(consumer(email="anna@example.se"))
    await world.route(event)
    # What the API shows of a scheduled delivery never holds the whole personal number.
    assert (await world.delivery(event.invoice_id))["recipient"] == "******2384"
    assert await world.run_job()
    (sent,) = world.senders[Channel.B2C_BANK].received.values()
    assert sent.recipient == "198503172384"
    assert sent.content_type == "application/pdf"
    (body,) = await world.events(event.invoice_id, "invoice.distributed")
    assert body["channel"] == "b2c_bank"
    assert body["recipient"] == "******2384"  # never the whole personal number in an event
    assert world.sends(Channel.EMAIL) == 0


async def test_a_consumer_whose_number_travels_sealed_gets_the_invoice_in_the_bank(
    world: World,
) -> None:
    """invoice.created carries the consumer's number masked and sealed (decision 0010): the
    consumer handler opens it, and the bank gets the whole number; nothing else does."""
    world.senders[Channel.B2C_BANK].consumers.add("198503172384")
    event = created(consumer(email="anna@example.se"))
    sealer = PersonalData(SecretStr(PERSONAL_DATA_KEY))
    sealed = event.model_copy(
        update={"invoice": sealer.seal_invoice(event.invoice), "flow": Flow(factor=False)}
    )
    assert "198503172384" not in sealed.model_dump_json()
    assert sealed.invoice.buyer.company_id == "******2384"
    world.harness.deps = world.deps()
    assert (await world.harness.publish(sealed)).dead_letters == []
    assert await world.run_job()
    (sent,) = world.senders[Channel.B2C_BANK].received.values()
    assert sent.recipient == "198503172384"
    (body,) = await world.events(event.invoice_id, "invoice.distributed")
    assert body["recipient"] == "******2384"


async def test_a_number_sealed_with_another_key_is_dead_lettered_never_sent(
    world: World,
) -> None:
    event = created(consumer(email="anna@example.se"))
    other = PersonalData(SecretStr(Fernet.generate_key().decode()))
    sealed = event.model_copy(
        update={"invoice": other.seal_invoice(event.invoice), "flow": Flow(factor=False)}
    )
    world.harness.deps = world.deps()
    [letter] = (await world.harness.publish(sealed)).dead_letters
    assert "PERSONAL_DATA_KEY" in letter.reason
    assert not await world.run_job()


@pytest.mark.parametrize(
    ("buyer", "channel", "recipient"),
    [
        (company(email="ap@kund.example"), Channel.EMAIL, "ap@kund.example"),
        (company(), Channel.PAPER, "post: Luleå"),
        (consumer(email="anna@example.se"), Channel.EMAIL, "anna@example.se"),
        (consumer(), Channel.PAPER, "post: Kiruna"),
    ],
)
async def test_without_an_e_invoice_network_it_is_email_else_paper(
    world: World, buyer: Party, channel: Channel, recipient: str
) -> None:
    event = created(buyer)
    await world.route(event)
    assert await world.run_job()
    assert [c for c in Channel if world.sends(c)] == [channel]
    (sent,) = world.senders[channel].received.values()
    assert sent.content_type == "application/pdf"
    assert sent.document.startswith(b"%PDF")
    (body,) = await world.events(event.invoice_id, "invoice.distributed")
    assert (body["channel"], body["recipient"]) == (channel.value, recipient)


async def test_a_crash_after_the_send_is_found_by_lookup_and_not_sent_again(world: World) -> None:
    world.registered.add(GLN)
    event = created(company(gln=True))
    await world.route(event)

    world.crash_after_send = True
    assert await world.run_job()  # sent, then the outcome's transaction was lost
    assert world.sends(Channel.PEPPOL) == 1
    assert (await world.delivery(event.invoice_id))["status"] == "scheduled"
    assert [a["state"] for a in await world.attempts(event.invoice_id)] == ["sending"]
    assert await world.events(event.invoice_id, "invoice.distributed") == []

    assert await world.run_job()  # the retry asks the partner first
    assert world.senders[Channel.PEPPOL].calls == 1
    assert world.sends(Channel.PEPPOL) == 1
    row = await world.delivery(event.invoice_id)
    assert row["status"] == "sent"
    assert len(await world.events(event.invoice_id, "invoice.distributed")) == 1
    assert [a["state"] for a in await world.attempts(event.invoice_id)] == ["sent"]
    job = await world.job_row(event.invoice_id)
    assert job is not None
    assert (job["state"], job["attempts"]) == ("done", 2)


async def test_an_email_of_unknown_outcome_is_never_sent_again_and_is_shown(world: World) -> None:
    event = created(company(email="ap@kund.example"))
    await world.route(event)
    world.crash_after_send = True
    assert await world.run_job()
    assert await world.run_job()
    assert await world.run_job() is False  # done: nothing is retried

    assert world.senders[Channel.EMAIL].calls == 1
    assert world.sends(Channel.PAPER) == 0
    row = await world.delivery(event.invoice_id)
    assert row["status"] == "uncertain"
    (attempt,) = await world.attempts(event.invoice_id)
    assert attempt["state"] == "uncertain"
    (body,) = await world.events(event.invoice_id, "invoice.delivery_uncertain")
    assert body["channel"] == "email"
    assert body["reference"] == f"{event.invoice_id}:email:1"
    assert await world.events(event.invoice_id, "invoice.distributed") == []


async def test_an_email_answer_lost_after_the_whole_message_is_uncertain_at_once(
    world: World,
) -> None:
    event = created(company(email="ap@kund.example"))
    await world.route(event)
    world.senders[Channel.EMAIL].script = [TransientSendError("timeout", maybe_delivered=True)]
    assert await world.run_job()
    assert (await world.delivery(event.invoice_id))["status"] == "uncertain"
    assert len(await world.events(event.invoice_id, "invoice.delivery_uncertain")) == 1
    assert await world.run_job() is False
    assert world.senders[Channel.EMAIL].calls == 1


async def test_a_bounced_email_falls_back_to_paper_and_says_so(world: World) -> None:
    event = created(company(email="gone@kund.example"))
    await world.route(event)
    world.senders[Channel.EMAIL].script = [
        PermanentSendError("550 5.1.1 mailbox unknown", fallback=True)
    ]
    assert await world.run_job()
    assert world.sends(Channel.PAPER) == 1
    (body,) = await world.events(event.invoice_id, "invoice.distributed")
    assert body["channel"] == "paper"
    assert body["fallbacks"] == [{"channel": "email", "reason": "550 5.1.1 mailbox unknown"}]
    assert [(a["channel"], a["state"]) for a in await world.attempts(event.invoice_id)] == [
        ("email", "fallback"),
        ("paper", "sent"),
    ]


async def test_an_unknown_peppol_receiver_falls_back_to_email(world: World) -> None:
    world.registered.add(GLN)
    event = created(company(gln=True, email="ap@kund.example"))
    await world.route(event)
    world.senders[Channel.PEPPOL].script = [
        PermanentSendError("receiver unknown at the access point", fallback=True)
    ]
    assert await world.run_job()
    assert (world.sends(Channel.PEPPOL), world.sends(Channel.EMAIL)) == (0, 1)
    assert (await world.delivery(event.invoice_id))["channel"] == "email"


async def test_a_refusal_without_fallback_fails_the_delivery(world: World) -> None:
    event = created(company())
    await world.route(event)
    world.senders[Channel.PAPER].script = [
        PermanentSendError("the address cannot be printed", fallback=False)
    ]
    assert await world.run_job()
    (body,) = await world.events(event.invoice_id, "invoice.delivery_failed")
    assert body["channel"] == "paper"
    assert body["errors"] == [
        {
            "field": "delivery.paper",
            "rule": "NF-SEND-REFUSED",
            "message": "the address cannot be printed",
        }
    ]
    assert (await world.delivery(event.invoice_id))["status"] == "failed"
    assert await world.run_job() is False


async def test_a_transient_error_is_retried_with_the_next_attempt_key(world: World) -> None:
    event = created(company())
    await world.route(event)
    world.senders[Channel.PAPER].script = [TransientSendError("503 from the print house")]
    assert await world.run_job()
    assert (await world.delivery(event.invoice_id))["status"] == "scheduled"
    job = await world.job_row(event.invoice_id)
    assert job is not None
    assert job["state"] == "pending"
    assert "503" in job["last_error"]
    assert await world.run_job()
    assert list(world.senders[Channel.PAPER].received) == [f"{event.invoice_id}:paper:2"]
    assert [a["state"] for a in await world.attempts(event.invoice_id)] == ["failed", "sent"]


async def test_after_the_last_transient_failure_an_operator_retry_sends_once(
    world: World,
) -> None:
    event = created(company())
    await world.route(event)
    world.senders[Channel.PAPER].script = [TransientSendError("503")] * 3
    for _ in range(3):
        assert await world.run_job()
    job = await world.job_row(event.invoice_id)
    assert job is not None
    assert job["state"] == "failed"
    assert "gave up after 3 attempts" in job["last_error"]
    assert (await world.delivery(event.invoice_id))["status"] == "scheduled"
    assert world.sends(Channel.PAPER) == 0
    async with world.pool.acquire() as conn:
        assert await jobs.retry_failed(conn, ids=[job["id"]]) == [job["id"]]
    assert await world.run_job()  # the print house is back
    assert world.sends(Channel.PAPER) == 1
    assert (await world.delivery(event.invoice_id))["status"] == "sent"
    (body,) = await world.events(event.invoice_id, "invoice.distributed")
    assert body["channel"] == "paper"


async def test_a_decided_outcome_stays_decided_when_the_job_runs_again(world: World) -> None:
    """The attempt log commits on its own; if the job's transaction is then lost, the rerun
    must not send an uncertain e-mail again nor go past a final refusal."""
    mail = created(company(email="ap@kund.example"))
    paper = created(company())
    await world.route(mail)
    await world.route(paper)
    async with world.pool.acquire() as conn:
        for event, channel, state in (
            (mail, "email", "uncertain"),
            (paper, "paper", "rejected"),
        ):
            await conn.execute(
                "INSERT INTO delivery_attempts (idempotency_key, tenant_id, invoice_id, channel, "
                "attempt, recipient, state, error) VALUES ($1, $2, $3, $4, 1, 'x', $5, 'cut off')",
                f"{event.invoice_id}:{channel}:1",
                event.tenant_id,
                event.invoice_id,
                channel,
                state,
            )
    assert await world.run_job()
    assert await world.run_job()
    assert world.sends(Channel.EMAIL) == 0
    assert world.sends(Channel.PAPER) == 0
    assert (await world.delivery(mail.invoice_id))["status"] == "uncertain"
    assert (await world.delivery(paper.invoice_id))["status"] == "failed"
    (failed,) = await world.events(paper.invoice_id, "invoice.delivery_failed")
    assert failed["errors"][0]["rule"] == "NF-SEND-REFUSED"


async def test_a_hold_delays_the_send_until_it_ends(world: World) -> None:
    event = created(company(email="ap@kund.example", customer_number="17"))
    async with world.pool.acquire() as conn:
        await holds.set_policy(
            PgHoldRepository(conn),
            tenant_id=event.tenant_id,
            customer_key="17",
            enabled=True,
            duration=dt.timedelta(hours=2),
        )
    now = dt.datetime.now(dt.UTC)
    await world.route(event, now)
    job = await world.job_row(event.invoice_id)
    assert job is not None
    assert job["due_at"] == now + dt.timedelta(hours=2)
    assert (await world.delivery(event.invoice_id))["due_at"] == job["due_at"]
    assert await world.run_job() is False
    assert world.sends(Channel.EMAIL) == 0
    # Releasing the hold early makes the job due now (the holds API does this).
    await world.pool.execute("UPDATE jobs SET due_at = now() WHERE id = $1", job["id"])
    assert await world.run_job()
    assert world.sends(Channel.EMAIL) == 1


async def test_test_mode_routes_renders_and_validates_but_sends_nothing(world: World) -> None:
    world.registered.add(GLN)
    good = created(company(gln=True), test_mode=True)
    bad = created(company(gln=True), test_mode=True, buyer_reference=None)
    assert await world.route(good) is None
    failed = await world.route(bad)
    assert failed is not None
    assert failed.test_mode is True
    assert "PEPPOL-EN16931-R003" in {e.rule for e in failed.errors}
    assert await world.job_row(good.invoice_id) is None
    assert await world.job_row(bad.invoice_id) is None
    assert await world.run_job() is False
    row = await world.delivery(good.invoice_id)
    assert (row["status"], row["channel"], row["test_mode"]) == ("test", "peppol", True)
    assert len(row["document_sha256"]) == 64
    assert sum(world.sends(c) for c in Channel) == 0


async def test_an_e_invoice_breaking_the_rules_is_never_scheduled(world: World) -> None:
    world.registered.add(GLN)
    event = created(company(gln=True), buyer_reference=None)
    failed = await world.route(event)
    assert failed is not None
    assert "PEPPOL-EN16931-R003" in {e.rule for e in failed.errors}
    assert await world.job_row(event.invoice_id) is None
    assert (await world.delivery(event.invoice_id))["status"] == "failed"


async def test_a_tenant_default_and_a_customer_override_choose_the_channel(world: World) -> None:
    world.registered.add(GLN)
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    await world.pool.execute(
        "INSERT INTO channel_overrides (tenant_id, customer_key, channel) VALUES "
        "($1, '', 'paper'), ($1, '42', 'email')",
        tenant,
    )
    by_default = created(company(gln=True, customer_number="7"), tenant=tenant)
    by_customer = created(
        company(gln=True, email="ap@kund.example", customer_number="42"), tenant=tenant
    )
    await world.route(by_default)
    await world.route(by_customer)
    assert await world.run_job()
    assert await world.run_job()
    assert (await world.delivery(by_default.invoice_id))["channel"] == "paper"
    assert (await world.delivery(by_customer.invoice_id))["channel"] == "email"
    assert world.sends(Channel.PEPPOL) == 0


async def test_an_override_the_recipient_cannot_take_falls_back_with_the_reason(
    world: World,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    await world.pool.execute(
        "INSERT INTO channel_overrides (tenant_id, customer_key, channel) "
        "VALUES ($1, '', 'peppol')",
        tenant,
    )
    event = created(company(email="ap@kund.example"), tenant=tenant)
    await world.route(event)
    row = await world.delivery(event.invoice_id)
    assert row["channel"] == "email"
    assert row["route_reason"] == (
        "override peppol not followed: the buyer is not registered in PEPPOL"
    )
    assert await world.run_job()
    assert world.sends(Channel.EMAIL) == 1


async def test_a_cheaper_channel_is_suggested_once_per_customer_until_decided(
    world: World,
) -> None:
    world.registered.add(GLN)
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    await world.pool.execute(
        "INSERT INTO channel_overrides (tenant_id, customer_key, channel) VALUES ($1, '', 'paper')",
        tenant,
    )
    events = [created(company(gln=True, customer_number="42"), tenant=tenant) for _ in range(2)]
    for event in events:
        await world.route(event)
        assert await world.run_job()
    suggested = await world.events(events[0].invoice_id, "channel.suggested")
    assert len(suggested) == 1
    assert suggested[0]["suggested_channel"] == "peppol"
    assert suggested[0]["current_channel"] == "paper"
    assert suggested[0]["customer_key"] == "42"
    assert suggested[0]["recipient"] == "0088:7300010000001"
    assert await world.events(events[1].invoice_id, "channel.suggested") == []
    rows = await world.pool.fetch("SELECT * FROM channel_suggestions WHERE tenant_id = $1", tenant)
    assert [(r["state"], r["suggested_channel"]) for r in rows] == [("open", "peppol")]

    # Dismissed: not suggested again for the snooze period.
    await world.pool.execute(
        "UPDATE channel_suggestions SET state = 'dismissed', decided_at = now() "
        "WHERE tenant_id = $1",
        tenant,
    )
    later = created(company(gln=True, customer_number="42"), tenant=tenant)
    await world.route(later)
    assert await world.run_job()
    assert await world.events(later.invoice_id, "channel.suggested") == []


async def test_a_consumer_newly_registered_at_the_bank_is_suggested(world: World) -> None:
    event = created(consumer(email="anna@example.se"))
    await world.route(event)  # not registered yet: e-mail
    world.senders[Channel.B2C_BANK].consumers.add("198503172384")
    assert await world.run_job()
    assert world.sends(Channel.EMAIL) == 1
    (body,) = await world.events(event.invoice_id, "channel.suggested")
    assert (body["current_channel"], body["suggested_channel"]) == ("email", "b2c_bank")
    assert body["recipient"] == "******2384"


async def test_a_routed_invoice_is_routed_once(world: World) -> None:
    event = created(company(email="ap@kund.example"))
    await world.route(event)
    await world.route(event)
    assert await world.run_job()
    assert await world.run_job() is False
    assert world.sends(Channel.EMAIL) == 1


@pytest.fixture(scope="module")
def peppol_network() -> Any:
    with running_peppol_network() as network:
        yield network


async def test_exactly_once_through_the_real_access_point_and_smp_sandboxes(
    world: World, peppol_network: PeppolNetwork
) -> None:
    """The crash between send and commit, with the real adapter, SMP lookup and sandbox."""
    account = peppol_network.ap.create_account(organisation_number="556036-0793")
    peppol_network.register("0088:7300010000001")
    lookup = ParticipantLookup(smp_url=peppol_network.smp_url)
    adapter = PeppolAccessPointSender(
        peppol_network.ap.api_url, SecretStr(account.token), timeout=5.0
    )
    world.smp = lookup
    world.senders[Channel.PEPPOL] = adapter
    try:
        event = created(company(gln=True))
        await world.route(event)
        world.crash_after_send = True
        assert await world.run_job()  # accepted by the access point, then rolled back here
        assert await world.run_job()  # finds it by its key instead of sending again
    finally:
        await adapter.aclose()
        await lookup.aclose()
    with peppol_network.admin() as admin:
        (delivered,) = admin.deliveries(account.token)
    row = await world.delivery(event.invoice_id)
    assert row["status"] == "sent"
    assert row["partner_reference"] == delivered["id"]
    assert delivered["idempotency_key"] == f"{event.invoice_id}:peppol:1"
    assert delivered["receiver"] == "0088:7300010000001"
    (body,) = await world.events(event.invoice_id, "invoice.distributed")
    assert body["partner_reference"] == delivered["id"]


async def test_a_lost_attempt_is_sent_again_under_its_own_key(world: World) -> None:
    """The partner took the letter but its listing lags: the lookup finds nothing, so the
    letter goes again — with the same key, which the partner's idempotency check catches."""
    event = created(company())
    await world.route(event)
    paper = world.senders[Channel.PAPER]
    paper.script = [ConnectionResetError("answer lost")]
    lagging = paper.lookup

    async def lookup_lagging(key: str) -> Receipt | None:
        paper.lookup = lagging  # type: ignore[method-assign]
        return None

    paper.lookup = lookup_lagging  # type: ignore[method-assign]
    assert await world.run_job()
    assert await world.run_job()
    key = f"{event.invoice_id}:paper:1"
    assert paper.calls == 2
    assert list(paper.received) == [key]
    assert [(a["idempotency_key"], a["state"]) for a in await world.attempts(event.invoice_id)] == [
        (key, "sent")
    ]
    (body,) = await world.events(event.invoice_id, "invoice.distributed")
    assert body["partner_reference"] == f"paper-{key}"
