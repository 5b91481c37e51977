"""Fakes of control-panel's repositories, ``app_for``, and factories of whole journeys'
events (importable by the tests of this service, the browser tests and the demo's docs)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nordflow_runtime.app import ServiceApp
from nordflow_runtime.testing import FakeTenantProfiles
from nordflow_schemas.common import SourceRef, SourceSystem, canonical_invoice_id
from nordflow_schemas.envelope import Envelope, encode, envelope
from nordflow_schemas.events import (
    AgreementKind,
    Channel,
    ChannelFallback,
    ChannelSuggested,
    ChannelSuggestionDecided,
    DeliveryHoldUpdated,
    DocumentKind,
    EntryKind,
    ErpDocumentFetched,
    Event,
    HeldAttachment,
    HoldChange,
    HoldNeeds,
    HoldReason,
    InvoiceDistributed,
    InvoiceRejected,
    InvoiceTransferred,
    JobFailed,
    JobRetried,
    LedgerEntryPosted,
    PaymentReceived,
    SuggestionDecision,
    ValidationIssue,
)
from nordflow_schemas.invoice import Invoice
from nordflow_schemas.testing import created, simple_invoice
from nordflow_schemas.topics import EVENT_DEAD_LETTERED
from pydantic import SecretStr

from .app import create_app
from .config import Settings
from .deps import Deps
from .domain.journey import Step, Summary
from .service import Repositories


def settings_for(database_url: str, bootstrap: str = "unused:9092", **extra: Any) -> Settings:
    """Settings on a database (and a broker), for tests: the cookie works over plain HTTP."""
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        database_url=SecretStr(database_url),
        session_cookie_secure=False,
        **extra,
    )


def app_for(database_url: str, bootstrap: str = "unused:9092") -> ServiceApp[Deps]:
    """The service as ``run`` builds it, on a database (the harness needs no broker)."""
    return create_app(settings_for(database_url, bootstrap))


@dataclass
class FakeJourneyRepository:
    """Steps, summaries and documents in dicts."""

    steps_by_id: dict[str, Step] = field(default_factory=dict)
    summaries: dict[tuple[str, str], Summary] = field(default_factory=dict)
    documents: dict[tuple[str, str], tuple[dt.datetime, str, dict[str, Any]]] = field(
        default_factory=dict
    )

    async def add_step(self, step: Step) -> bool:
        """Record a step; False if its event was recorded before."""
        if step.event_id in self.steps_by_id:
            return False
        self.steps_by_id[step.event_id] = step
        return True

    async def steps(self, tenant_id: str, invoice_id: str) -> list[Step]:
        """Every step of the invoice."""
        return [
            s
            for s in self.steps_by_id.values()
            if (s.tenant_id, s.invoice_id) == (tenant_id, invoice_id)
        ]

    async def save_summary(self, tenant_id: str, invoice_id: str, summary: Summary) -> None:
        """Replace the invoice's summary."""
        self.summaries[(tenant_id, invoice_id)] = summary

    async def keep_document(
        self,
        tenant_id: str,
        invoice_id: str,
        event_id: str,
        occurred_at: dt.datetime,
        document: dict[str, Any],
    ) -> None:
        """Keep the canonical invoice unless a newer one is kept."""
        kept = self.documents.get((tenant_id, invoice_id))
        if kept is None or (kept[0], kept[1]) < (occurred_at, event_id):
            self.documents[(tenant_id, invoice_id)] = (occurred_at, event_id, document)


class Recorder:
    """Any other repository: records each call (name, arguments) and returns nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        async def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def fake_repositories(profiles: FakeTenantProfiles | None = None) -> Repositories:
    """Fakes: the journeys in memory; books, operations, reads and tokens recorded."""
    recorder: Any = Recorder()
    return Repositories(
        journeys=FakeJourneyRepository(),
        books=recorder,
        operations=recorder,
        read=recorder,
        tokens=recorder,
        profiles=profiles or FakeTenantProfiles(),
    )


# -- event factories: whole journeys as their producers would publish them ----------------------
BASE_TIME = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
BASE_DAY = BASE_TIME.date()


def traceparent(seed: str) -> str:
    """A W3C traceparent whose trace id follows from ``seed`` (one trace per journey)."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"00-{digest[:32]}-{digest[32:48]}-01"


def _wrap(body: Event, source: str, at: dt.datetime, trace: str, subject: str | None) -> Env:
    env = envelope(body, source=f"/{source}", subject=subject, time=at)
    return dataclasses.replace(env, traceparent=trace)


Env = Envelope[Event]


def invoice_for(
    tenant_id: str,
    number: str,
    *,
    customer: str = "Köpare AB",
    payable: Decimal = Decimal("1250.00"),
    issue_date: dt.date = BASE_DAY,
    system: SourceSystem = SourceSystem.FORTNOX,
) -> Invoice:
    """A canonical invoice of the tenant, with its canonical id, number and customer."""
    base = simple_invoice(tenant_id, number=number, payable=payable, issue_date=issue_date)
    source = base.source.model_copy(update={"system": system, "document_id": number})
    return base.model_copy(
        update={
            "invoice_id": canonical_invoice_id(tenant_id, system.value, "conn-1", number),
            "source": source,
            "buyer": base.buyer.model_copy(update={"name": customer, "customer_number": "K-7"}),
        }
    )


def journey(
    tenant_id: str,
    number: str = "1001",
    *,
    customer: str = "Köpare AB",
    payable: Decimal = Decimal("1250.00"),
    start: dt.datetime = BASE_TIME,
    system: SourceSystem = SourceSystem.FORTNOX,
    test_mode: bool = False,
    cost: Decimal | None = None,
) -> list[Env]:
    """Fetched, created, transferred (in batch ``b-<number>``, file 7), sent by e-mail after
    PEPPOL refused (for ``cost`` SEK; None: as before the router said what a send cost), paid
    by the factor, the payment booked and the invoice closed: every topic of a good invoice,
    in order."""
    invoice = invoice_for(
        tenant_id,
        number,
        customer=customer,
        payable=payable,
        issue_date=start.date(),
        system=system,
    )
    iid, trace = invoice.invoice_id, traceparent(invoice.invoice_id)
    minute = dt.timedelta(minutes=1)
    bodies: list[tuple[Event, str, dt.datetime]] = [
        (
            ErpDocumentFetched(
                tenant_id=tenant_id,
                invoice_id=iid,
                test_mode=test_mode,
                source=invoice.source,
                kind=DocumentKind.INVOICE,
                version="v1",
                fetched_at=start,
                payload={"DocumentNumber": number, "CustomerName": customer},
            ),
            "erp-poller",
            start,
        ),
        (created(invoice, test_mode=test_mode), "mapper", start + minute),
        (
            InvoiceTransferred(
                tenant_id=tenant_id,
                invoice_id=iid,
                test_mode=test_mode,
                source=invoice.source,
                document_type=invoice.document_type,
                number=number,
                provider="Nordic Factor AB",
                agreement_kind=AgreementKind.FACTORING,
                transfer_id=f"tr_{number}",
                amount=payable,
                currency=invoice.currency,
                transferred_at=start + 2 * minute,
                batch_id=f"b-{number}",
                file_serial=7,
            ),
            "factoring-gateway",
            start + 2 * minute,
        ),
        (
            InvoiceDistributed(
                tenant_id=tenant_id,
                invoice_id=iid,
                test_mode=test_mode,
                number=number,
                channel=Channel.EMAIL,
                document_format="pdf",
                recipient="ekonomi@kopare.example",
                distributed_at=start + 3 * minute,
                partner_reference=f"<{number}@nordflow.localhost>",
                archive_sequence=17,
                fallbacks=(
                    ChannelFallback(
                        channel=Channel.PEPPOL, reason="the receiver is not in the PEPPOL SMP"
                    ),
                ),
                cost=cost,
                cost_currency="SEK" if cost is not None else None,
            ),
            "distribution-router",
            start + 3 * minute,
        ),
        (
            PaymentReceived(
                tenant_id=tenant_id,
                invoice_id=iid,
                test_mode=test_mode,
                source=invoice.source,
                payment_id=f"pay-{number}",
                amount=payable,
                currency=invoice.currency,
                paid_on=start.date(),
                payer="Nordic Factor AB",
                reference=f"FACT-{number}",
            ),
            "mapper",
            start + 4 * minute,
        ),
        (
            LedgerEntryPosted(
                tenant_id=tenant_id,
                invoice_id=iid,
                test_mode=test_mode,
                source=invoice.source,
                entry_kind=EntryKind.INVOICE_PAYMENT,
                erp_reference=f"P-{number}",
                amount=payable,
                currency=invoice.currency,
                account="1512",
                posted_at=start + 5 * minute,
            ),
            "ledger-closer",
            start + 5 * minute,
        ),
    ]
    return [_wrap(body, source, at, trace, number) for body, source, at in bodies]


def hold_events(
    tenant_id: str,
    number: str = "1001",
    *,
    start: dt.datetime = BASE_TIME,
    hours: int = 48,
    released: bool = True,
) -> list[Env]:
    """distribution-router's ``delivery.hold_updated`` of the invoice ``number`` (as
    ``journey`` makes it): held by the tenant's policy for ``hours``, a PDF attached, then
    (when ``released``) released early by a token named ``ekonomi``; revisions 1, 2, 3."""
    iid = invoice_for(tenant_id, number).invoice_id
    trace = traceparent(iid)
    until = start + dt.timedelta(hours=hours)
    needs = HoldNeeds(
        content_types=("application/pdf", "image/png", "text/csv"),
        max_files=20,
        max_file_bytes=10 * 1024 * 1024,
    )
    terms = HeldAttachment(filename="villkor.pdf", content_type="application/pdf", size=48_213)

    def hold(change: HoldChange, revision: int, at: dt.datetime, **more: Any) -> Env:
        body = DeliveryHoldUpdated(
            tenant_id=tenant_id,
            invoice_id=iid,
            number=number,
            change=change,
            revision=revision,
            reason=HoldReason.TENANT_POLICY,
            held_at=start,
            held_until=until,
            updated_at=at,
            **({"needed": needs} | more),
        )
        return _wrap(body, "distribution-router", at, trace, number)

    minute = dt.timedelta(minutes=1)
    out = [
        hold(HoldChange.PLACED, 1, start),
        hold(
            HoldChange.ATTACHMENT_ADDED,
            2,
            start + 10 * minute,
            attachments=(terms,),
            attachment=terms,
        ),
    ]
    if released:
        out.append(
            hold(
                HoldChange.RELEASED,
                3,
                start + 20 * minute,
                attachments=(terms,),
                released_at=start + 20 * minute,
                released_by="api token 'ekonomi'",
                needed=None,
            )
        )
    return out


def suggestion_events(
    tenant_id: str,
    number: str = "1001",
    *,
    suggestion_id: int = 5,
    decision: SuggestionDecision | None = SuggestionDecision.ACCEPTED,
    start: dt.datetime = BASE_TIME,
) -> list[Env]:
    """A cheaper channel (PEPPOL instead of e-mail) found at the send of invoice ``number``,
    and (unless ``decision`` is None) what the tenant decided an hour later."""
    iid = invoice_for(tenant_id, number).invoice_id
    trace = traceparent(iid)
    found = ChannelSuggested(
        tenant_id=tenant_id,
        invoice_id=iid,
        suggestion_id=suggestion_id,
        customer_key="K-7",
        current_channel=Channel.EMAIL,
        suggested_channel=Channel.PEPPOL,
        recipient="0007:5560360793",
        suggested_at=start,
    )
    out = [_wrap(found, "distribution-router", start, trace, number)]
    if decision is not None:
        at = start + dt.timedelta(hours=1)
        decided = ChannelSuggestionDecided(
            tenant_id=tenant_id,
            invoice_id=iid,
            suggestion_id=suggestion_id,
            decision=decision,
            current_channel=Channel.EMAIL,
            suggested_channel=Channel.PEPPOL,
            decided_by="api token 'ekonomi'",
            decided_at=at,
        )
        out.append(_wrap(decided, "distribution-router", at, trace, number))
    return out


def rejected(
    tenant_id: str,
    number: str = "1002",
    *,
    customer: str = "Felaktig AB",
    start: dt.datetime = BASE_TIME,
) -> list[Env]:
    """A document fetched and rejected by the mapper, with two errors naming their fields."""
    iid = canonical_invoice_id(tenant_id, "fortnox", "conn-1", number)
    source = SourceRef(
        system=SourceSystem.FORTNOX,
        connection_id="conn-1",
        document_id=number,
        document_number=number,
    )
    trace = traceparent(iid)
    fetched = ErpDocumentFetched(
        tenant_id=tenant_id,
        invoice_id=iid,
        source=source,
        kind=DocumentKind.INVOICE,
        version="v1",
        fetched_at=start,
        payload={"DocumentNumber": number, "CustomerName": customer},
    )
    refused = InvoiceRejected(
        tenant_id=tenant_id,
        invoice_id=iid,
        source=source,
        version="v1",
        errors=(
            ValidationIssue(
                field="Invoice.OrganisationNumber",
                rule="NF-ORGNR",
                message="556677-889 is not a Swedish organisation number",
            ),
            ValidationIssue(
                field="Invoice.DueDate", rule="NF-DATE", message="'2025-02-30' is not a date"
            ),
        ),
    )
    return [
        _wrap(fetched, "erp-poller", start, trace, number),
        _wrap(refused, "mapper", start + dt.timedelta(seconds=30), trace, number),
    ]


def job_failed(
    tenant_id: str,
    invoice_id: str | None,
    *,
    service: str = "ledger-closer",
    job_id: int = 7,
    at: dt.datetime = BASE_TIME,
    error: str = "Fortnox refused the payment: the period 2025-03 is locked",
) -> Env:
    """``job.failed`` as the runtime of ``service`` publishes it."""
    body = JobFailed(
        tenant_id=tenant_id,
        service=service,
        job_id=job_id,
        kind="post_entry",
        job_key=f"payment:{job_id}",
        invoice_id=invoice_id,
        attempts=1,
        error=error,
        failed_at=at,
    )
    return _wrap(body, service, at, traceparent(f"{service}:{job_id}"), None)


def job_retried(
    tenant_id: str,
    invoice_id: str | None,
    *,
    service: str = "ledger-closer",
    job_id: int = 7,
    at: dt.datetime = BASE_TIME,
    by: str = "operator:ops",
) -> Env:
    """``job.retried`` as the runtime of ``service`` publishes it."""
    body = JobRetried(
        tenant_id=tenant_id,
        service=service,
        job_id=job_id,
        kind="post_entry",
        job_key=f"payment:{job_id}",
        invoice_id=invoice_id,
        retried_at=at,
        requested_by=by,
    )
    return _wrap(body, service, at, traceparent(f"{service}:{job_id}"), None)


def dead_letter_record(
    tenant_id: str,
    env: Env,
    *,
    consumer: str = "mapper",
    origin_offset: int = 41,
    reason: str = "invoice.created body invalid: invoice.totals: Field required",
) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    """A record of event.dead_lettered for an event a consumer refused: ``(topic, key,
    value, headers)`` as the runtime writes it."""
    key, value, headers = encode(env)
    return (
        EVENT_DEAD_LETTERED.name,
        key,
        value,
        [
            *headers,
            ("x-nordflow-dlq-reason", reason.encode()),
            ("x-nordflow-dlq-consumer", consumer.encode()),
            ("x-nordflow-dlq-topic", env.topic.encode()),
            ("x-nordflow-dlq-partition", b"3"),
            ("x-nordflow-dlq-offset", str(origin_offset).encode()),
        ],
    )
