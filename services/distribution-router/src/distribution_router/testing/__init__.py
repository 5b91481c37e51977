"""What distribution-router's tests share: the app on a database, a harness with partners
swapped for fakes, an API token, a fake sender and SMP, fakes of the repositories
(`testing.fakes`) and invoice factories (`testing.invoices`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import asyncpg
from nordflow_documents.registry import default_registry
from nordflow_documents.validation import shared_validator
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.jobs import JobWorker
from nordflow_runtime.tenants import create_token
from nordflow_runtime.testing import PERSONAL_DATA_KEY, ServiceHarness
from nordflow_schemas.events import Channel, HoldReason
from pydantic import SecretStr

from ..adapters.repositories import PgDeliveryRepository, pg_repositories
from ..app import create_app
from ..config import Settings
from ..deps import Deps
from ..domain.channels import SEND_INVOICE
from ..domain.sending import Outgoing, PermanentSendError, Receipt, TransientSendError
from ..service import holds
from ..service.ports import Partners
from .fakes import fake_repositories, fake_store

__all__ = [
    "FakeSender",
    "NotInPeppol",
    "Registered",
    "app_for",
    "bearer",
    "fake_partners",
    "fake_repositories",
    "fake_store",
    "held_invoice",
    "send_worker",
    "start_harness",
]


def app_for(database_url: str, **settings: Any) -> ServiceApp[Deps]:
    """The service as ``run`` builds it, on a database (no broker: the harness needs none);
    documents are rendered in the test's own process unless ``render_processes`` says."""
    settings.setdefault("render_processes", 0)
    settings.setdefault("personal_data_key", SecretStr(PERSONAL_DATA_KEY))
    return create_app(
        Settings(
            kafka_bootstrap_servers="unused:9092",
            database_url=SecretStr(database_url),
            **settings,
        )
    )


async def start_harness(
    database_url: str, *, pool_size: int = 4, **deps: Any
) -> ServiceHarness[Deps]:
    """The service on a fresh schema, its dependencies as start-up builds them (no partner
    configured) with ``deps`` replacing some (senders, lookup, registry, clock …)."""
    harness = await ServiceHarness.start(app_for(database_url), database_url, pool_size=pool_size)
    if deps:
        harness.deps = dataclasses.replace(harness.deps, **deps)
    return harness


async def bearer(pool: asyncpg.Pool, tenant: str, name: str = "test") -> dict[str, str]:
    """The Authorization header of a new API token of the tenant."""
    return {"Authorization": f"Bearer {await create_token(pool, tenant, name)}"}


def send_worker(harness: ServiceHarness[Deps], handler: Any = None, **options: Any) -> JobWorker:
    """A worker of the send-invoice job on the harness's schema (one `run_one` per run), with
    the service's options (its lease) unless ``options`` replace them."""
    registered, defaults = harness.app.job_handlers[SEND_INVOICE]
    return JobWorker(
        harness.pool,
        harness.app.name,
        SEND_INVOICE,
        handler or registered,
        deps=harness.deps,
        **{**defaults, **options},
    )


async def outbox_bodies(
    harness: ServiceHarness[Deps], key: str, topic: str
) -> list[dict[str, Any]]:
    """The bodies (as JSON) of the events of one topic keyed by ``key``, oldest first."""
    return [
        env.body.model_dump(mode="json")
        for env in (await harness.emitted()).events
        if env.topic == topic and env.key == key
    ]


async def held_invoice(
    conn: asyncpg.Connection,
    tenant: str,
    until: dt.datetime,
    invoice_id: str | None = None,
    customer_key: str = "17",
    number: str = "1001",
) -> str:
    """A held invoice with its pending send job due when the hold ends, as routing leaves
    them (in one transaction, ``delivery.hold_updated`` placed in the outbox); its id."""
    invoice_id = invoice_id or f"inv_{uuid.uuid4().hex}"
    async with conn.transaction():
        await PgDeliveryRepository(conn).schedule_send(tenant, invoice_id, until)
        await holds.start_hold(
            pg_repositories(conn),
            tenant_id=tenant,
            invoice_id=invoice_id,
            customer_key=customer_key,
            until=until,
            number=number,
            reason=HoldReason.TENANT_POLICY,
        )
    return invoice_id


class Registered:
    """A stand-in SMP: who is in PEPPOL."""

    def __init__(self, *participants: tuple[str, str]) -> None:
        self.participants = set(participants)

    async def accepts(self, scheme: str, value: str, document_type: str) -> bool:
        """Whether the participant was registered here."""
        return (scheme, value) in self.participants


class NotInPeppol(Registered):
    """A stand-in SMP where nobody is registered."""


class FakeSender:
    """A partner that dedupes on the idempotency key; ``script`` says what each send does:
    None takes it, a refusal or a transient error (not delivered) is raised before taking it,
    any other exception after taking it (the answer is lost)."""

    def __init__(self, channel: Channel, *, can_lookup: bool = True) -> None:
        self.channel = channel
        self.can_lookup = can_lookup
        self.script: list[Exception | None] = []
        self.received: dict[str, Outgoing] = {}
        self.calls = 0
        self.consumers: set[str] = set()

    async def send(self, outgoing: Outgoing) -> Receipt:
        """Take the document (once per key), or do what the script says."""
        self.calls += 1
        step = self.script.pop(0) if self.script else None
        if isinstance(step, TransientSendError) and not step.maybe_delivered:
            raise step
        if isinstance(step, PermanentSendError):
            raise step
        self.received[outgoing.idempotency_key] = outgoing
        if step is not None:
            raise step  # taken, but the answer is lost
        return self._receipt(outgoing.idempotency_key)

    async def lookup(self, idempotency_key: str) -> Receipt | None:
        """The receipt of a taken key."""
        return self._receipt(idempotency_key) if idempotency_key in self.received else None

    async def registered(self, personal_number: str) -> bool:
        """Whether the consumer takes e-invoices (as the B2C bank's registry)."""
        return personal_number in self.consumers

    async def aclose(self) -> None:
        """Nothing to close."""
        return

    def _receipt(self, key: str) -> Receipt:
        return Receipt(channel=self.channel, reference=f"{self.channel.value}-{key}")


def fake_senders() -> dict[Channel, FakeSender]:
    """A fake sender per channel; e-mail cannot be asked (like SMTP)."""
    return {c: FakeSender(c, can_lookup=c is not Channel.EMAIL) for c in Channel}


def fake_partners(
    senders: dict[Channel, FakeSender] | None = None, lookup: Registered | None = None
) -> Partners:
    """The real renderers and validator with fake senders (the bank's as the registry) and
    a stand-in SMP."""
    senders = senders if senders is not None else fake_senders()
    return Partners(
        renderers=default_registry(),
        validator=shared_validator(),
        lookup=lookup or Registered(),
        registry=senders.get(Channel.B2C_BANK),
        senders=senders,
    )
