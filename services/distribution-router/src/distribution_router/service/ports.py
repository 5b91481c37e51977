"""What the use cases take: the repositories (on one transaction) and the partners' clients.

Implemented by `adapters` (PostgreSQL, the partner senders, the SMP lookup) and, for fast
tests, by the fakes in `distribution_router.testing`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from nordflow_documents.registry import RendererRegistry
from nordflow_documents.validation import ValidationReport
from nordflow_runtime.tenant_profiles import TenantProfiles
from nordflow_schemas.events import (
    Channel,
    EventBody,
    HoldReason,
    InvoiceCreated,
    InvoiceFactoringDecided,
)

from ..domain.archive import ArchivedDocument, NewDocument
from ..domain.channels import Route
from ..domain.costs import DEFAULT_UNIT_PRICES
from ..domain.deliveries import (
    Attempt,
    ClaimedDelivery,
    DeliveryView,
    NewDelivery,
    NewSuggestion,
    Override,
    SentDelivery,
    Suggestion,
)
from ..domain.documents import PaperOptions
from ..domain.holds import AttachmentInfo, Hold, HoldLock, HoldPolicy
from ..domain.sending import Attachment, Outgoing, Receipt
from ..domain.statistics import PeriodRow

# -- partners ---------------------------------------------------------------------------------


class Sender(Protocol):
    """A channel's delivery adapter."""

    channel: Channel
    can_lookup: bool

    async def send(self, outgoing: Outgoing) -> Receipt:
        """Deliver once; the partner dedupes on ``outgoing.idempotency_key`` where it can."""
        ...

    async def lookup(self, idempotency_key: str) -> Receipt | None:
        """The receipt of an earlier send with this key, or None if the partner never got it.

        Only called when ``can_lookup`` is true.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class CapabilityLookup(Protocol):
    """Whether a participant accepts a document type (ParticipantLookup satisfies it)."""

    async def accepts(self, scheme: str, value: str, document_type: str) -> bool:
        """True when the participant is registered for the document type."""
        ...


class ConsumerRegistry(Protocol):
    """The banks' B2C e-invoice registry (the B2C bank adapter satisfies it)."""

    async def registered(self, personal_number: str) -> bool:
        """True when the consumer takes e-invoices from us in the internet bank."""
        ...


T = TypeVar("T")


class Processes(Protocol):
    """Worker processes for CPU work (`nordflow_runtime.processes.ProcessPool`)."""

    async def call(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(*args)`` in a worker process."""
        ...


class DocumentValidator(Protocol):
    """Official rules for a rendered document (PeppolValidator satisfies it)."""

    def validate(self, document: bytes) -> ValidationReport:
        """Every rule violation found."""
        ...


@dataclass(frozen=True)
class Partners:
    """The clients routing and sending use: renderers and validator, the PEPPOL lookup, the
    banks' registry, one sender per configured channel, and what a send costs."""

    renderers: RendererRegistry
    validator: DocumentValidator
    lookup: CapabilityLookup | None = None
    registry: ConsumerRegistry | None = None
    senders: Mapping[Channel, Sender] = field(default_factory=dict)
    unit_prices: Mapping[Channel, Decimal] = field(default_factory=lambda: DEFAULT_UNIT_PRICES)
    suggestion_snooze: dt.timedelta = dt.timedelta(days=90)
    # Renderer processes (documents and the official rules off the event loop); None: inline.
    processes: Processes | None = None


# -- repositories -----------------------------------------------------------------------------


class DeliveryRepository(Protocol):
    """`deliveries`: one per invoice, and its send job."""

    async def exists(self, invoice_id: str) -> bool:
        """Whether the invoice was routed before."""
        ...

    async def record(self, delivery: NewDelivery) -> None:
        """Insert the routed invoice."""
        ...

    async def schedule_send(self, tenant_id: str, invoice_id: str, due_at: dt.datetime) -> None:
        """Record the invoice's send-invoice job, due at ``due_at``."""
        ...

    async def get(self, tenant_id: str, invoice_id: str) -> ClaimedDelivery | None:
        """The delivery as the send job reads it (unlocked: the job's lease keeps other runs
        away, and an outcome is recorded only while the delivery is scheduled)."""
        ...

    async def mark_sent(self, invoice_id: str, sent: SentDelivery) -> bool:
        """Record the accepted send; False (nothing changed) unless it was scheduled."""
        ...

    async def finish(
        self,
        invoice_id: str,
        status: str,
        route: Route,
        now: dt.datetime,
        errors: list[dict[str, str]] | None,
    ) -> bool:
        """Record a final outcome other than sent (failed, uncertain); False (nothing
        changed) unless it was scheduled."""
        ...

    async def views(
        self, tenant_id: str, invoice_id: str | None, status: str | None, limit: int
    ) -> list[DeliveryView]:
        """The tenant's deliveries with their attempts, newest first."""
        ...


class AttemptLog(Protocol):
    """`delivery_attempts`. ``begin`` and ``finish`` commit at once (outside the job's
    transaction, so they survive its rollback); the rest is in the job's transaction."""

    async def begin(
        self, *, key: str, tenant_id: str, invoice_id: str, route: Route, attempt: int
    ) -> None:
        """Record the intent to send, before the partner is called."""
        ...

    async def finish(self, key: str, state: str, error: str | None = None) -> None:
        """Record an outcome that must survive the job's rollback (failure, fallback, …)."""
        ...

    async def of_invoice(self, invoice_id: str) -> list[Attempt]:
        """Every attempt of the invoice, oldest first."""
        ...

    async def mark_sent(self, key: str, *, now: dt.datetime, reference: str, cost: Decimal) -> None:
        """Record the accepted attempt (in the job's transaction)."""
        ...


class ArchiveRepository(Protocol):
    """`archived_documents`, `archive_counters`, `archive_settings`."""

    async def lock_counter(self, tenant_id: str) -> int | None:
        """Create and lock the tenant's counter row until the transaction ends; the month
        the tenant's fiscal year starts, if it set one."""
        ...

    async def store_once(self, tenant_id: str, document: NewDocument, content: bytes) -> int:
        """The number of the same document (invoice, channel, sha256) archived before; else
        the tenant's next number (its counter locked), with the document stored under it."""
        ...

    async def fiscal_year_start_month(self, tenant_id: str) -> int | None:
        """The month the tenant's fiscal year starts, if it set one."""
        ...

    async def set_fiscal_year_start_month(self, tenant_id: str, month: int) -> None:
        """Set the tenant's fiscal year."""
        ...

    async def find(
        self,
        tenant_id: str,
        *,
        invoice_id: str | None,
        source_document_number: str | None,
        number: str | None,
        after: int,
        limit: int,
    ) -> list[ArchivedDocument]:
        """The tenant's documents matching every filter given, by sequence."""
        ...

    async def get(self, tenant_id: str, sequence: int) -> ArchivedDocument | None:
        """One document without its bytes."""
        ...

    async def content(self, tenant_id: str, sequence: int) -> tuple[ArchivedDocument, bytes] | None:
        """One document with its bytes."""
        ...

    async def purge_expired(self) -> int:
        """Delete the documents past their retention; how many."""
        ...


class HoldRepository(Protocol):
    """`hold_policies`, `holds`, `hold_attachments` (and the held send job's due time)."""

    async def effective_policy(self, tenant_id: str, customer_key: str) -> HoldPolicy | None:
        """The customer's policy, else the tenant's default."""
        ...

    async def save_policy(
        self, tenant_id: str, customer_key: str | None, enabled: bool, seconds: int
    ) -> HoldPolicy:
        """Create or replace a policy."""
        ...

    async def get_policy(self, tenant_id: str, customer_key: str | None) -> HoldPolicy | None:
        """One policy, if set."""
        ...

    async def delete_policy(self, tenant_id: str, customer_key: str | None) -> bool:
        """Remove a policy; False if none was set."""
        ...

    async def customer_policies(self, tenant_id: str) -> list[HoldPolicy]:
        """Every customer policy of the tenant, by customer key."""
        ...

    async def start(
        self,
        tenant_id: str,
        invoice_id: str,
        customer_key: str,
        until: dt.datetime,
        *,
        number: str | None = None,
        reason: HoldReason | None = None,
    ) -> bool:
        """Record a held invoice (revision 1); False if it was held before."""
        ...

    async def bump(self, invoice_id: str) -> int:
        """Count a change of the hold (under its row lock); the new revision."""
        ...

    async def get(self, tenant_id: str, invoice_id: str) -> Hold | None:
        """One hold of the tenant."""
        ...

    async def open_holds(self, tenant_id: str, after: str | None, limit: int) -> list[Hold]:
        """The tenant's invoices held right now, by invoice id."""
        ...

    async def lock(self, tenant_id: str, invoice_id: str) -> HoldLock | None:
        """Lock the hold row; what it says, with the database's clock after the lock."""
        ...

    async def release(self, tenant_id: str, invoice_id: str, released_by: str) -> None:
        """End the hold now and make its pending send job due now."""
        ...

    async def count_attachments(self, invoice_id: str) -> int:
        """How many files the invoice has."""
        ...

    async def add_attachment(
        self, tenant_id: str, invoice_id: str, filename: str, content_type: str, content: bytes
    ) -> AttachmentInfo:
        """Store a file."""
        ...

    async def remove_attachment(self, invoice_id: str, attachment_id: int) -> bool:
        """Delete a file; False when there is no such file."""
        ...

    async def list_attachments(self, tenant_id: str, invoice_id: str) -> list[AttachmentInfo]:
        """The files of a hold, in the order added."""
        ...

    async def attachments_for_send(self, invoice_id: str) -> tuple[Attachment, ...]:
        """The files with their bytes, after a share lock on the hold row."""
        ...


class OverrideRepository(Protocol):
    """`channel_overrides` (``''`` = the tenant's default)."""

    async def for_customer(self, tenant_id: str, customer_key: str) -> Channel | None:
        """The customer's own channel, else the tenant's default."""
        ...

    async def list(self, tenant_id: str) -> list[Override]:
        """The default and every customer's, by customer key."""
        ...

    async def save(self, tenant_id: str, customer_key: str | None, channel: Channel) -> Override:
        """Create or replace."""
        ...

    async def delete(self, tenant_id: str, customer_key: str | None) -> bool:
        """Remove; False if none was set."""
        ...


class SuggestionRepository(Protocol):
    """`channel_suggestions`."""

    async def record_once(self, new: NewSuggestion) -> int | None:
        """The new suggestion's id; None when one is open, or was dismissed within
        ``snooze``, for this customer and channel."""
        ...

    async def list(self, tenant_id: str, state: str) -> list[Suggestion]:
        """The tenant's suggestions in a state (``all``: any), newest first."""
        ...

    async def lock(self, tenant_id: str, suggestion_id: int) -> Suggestion | None:
        """One of the tenant's suggestions, locked until the transaction ends."""
        ...

    async def decide(self, suggestion_id: int, state: str) -> Suggestion:
        """Record the decision now."""
        ...


class PaperOptionsRepository(Protocol):
    """`paper_options`."""

    async def get(self, tenant_id: str) -> PaperOptions:
        """The tenant's options (all None when it set none)."""
        ...

    async def save(self, tenant_id: str, options: PaperOptions) -> PaperOptions:
        """Replace the tenant's options."""
        ...

    async def delete(self, tenant_id: str) -> bool:
        """Back to the defaults; False when none were set."""
        ...


class StatisticsRepository(Protocol):
    """Counts over `deliveries`."""

    async def period_rows(
        self,
        tenant_id: str,
        from_date: dt.date,
        to_date: dt.date,
        granularity: str,
        time_zone: str,
    ) -> list[PeriodRow]:
        """Per period (days or months of ``time_zone``) and channel: completed deliveries."""
        ...

    async def seller_country(self, tenant_id: str) -> str | None:
        """The seller's country on the tenant's latest routed invoice, if any."""
        ...


class TokenNames(Protocol):
    """`api_tokens`: who acted."""

    async def name_of(self, token: str) -> str | None:
        """The name the token was created with."""
        ...


class FactoringRepository(Protocol):
    """factoring-gateway's decisions, and the created invoices that wait for theirs."""

    async def decision(self, invoice_id: str) -> InvoiceFactoringDecided | None:
        """The invoice's decision, if it has arrived."""
        ...

    async def record(self, decision: InvoiceFactoringDecided) -> bool:
        """Keep the decision; False if the invoice had one (the first one stands)."""
        ...

    async def park(self, created: InvoiceCreated) -> None:
        """Keep a created invoice until its decision arrives."""
        ...

    async def take_parked(self, invoice_id: str) -> InvoiceCreated | None:
        """The waiting invoice, no longer waiting; None if none waits."""
        ...


class EventOutbox(Protocol):
    """The service's transactional outbox: an event added here is published once the
    transaction it was added in commits (and never if it rolls back)."""

    async def add(self, event: EventBody, *, subject: str | None = None) -> None:
        """Publish ``event`` (CloudEvents subject ``subject``) when the transaction commits."""
        ...


@dataclass(frozen=True)
class Repositories:
    """Everything a use case of this service reads or writes, on one transaction."""

    deliveries: DeliveryRepository
    factoring: FactoringRepository
    attempts: AttemptLog
    archive: ArchiveRepository
    holds: HoldRepository
    overrides: OverrideRepository
    suggestions: SuggestionRepository
    paper: PaperOptionsRepository
    statistics: StatisticsRepository
    tokens: TokenNames
    profiles: TenantProfiles
    # Events a use case writes in the transaction of its change (holds, suggestion decisions).
    outbox: EventOutbox
    # A savepoint: what fails inside it is undone without undoing the transaction.
    savepoint: Callable[[], AbstractAsyncContextManager[object]]


@dataclass(frozen=True)
class SendStore:
    """Where the send job reads and writes without holding a transaction across a partner
    call: ``reads`` commit statement by statement (the attempt log's writes too), and each
    outcome is written in a short ``transaction()`` of its own (with its events), which
    commits only while the job's lease is still its run's."""

    reads: Repositories
    transaction: Callable[[], AbstractAsyncContextManager[Repositories]]
