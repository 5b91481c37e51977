"""Event bodies: one frozen model per topic, named like the topic in PascalCase."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, model_validator

from .common import (
    Amount,
    BigId,
    Code,
    ConnectionMode,
    CurrencyCode,
    FileName,
    Frozen,
    Label,
    Message,
    SaneDate,
    SingleLine,
    SourceRef,
    SourceSystem,
    TenantId,
    Timestamp,
)
from .invoice import DocumentType, Invoice
from .tenant import TenantProfile


class Event(Frozen):
    """What every event body carries: its tenant. ``record_key`` is the Kafka record key."""

    tenant_id: TenantId

    @property
    def record_key(self) -> str:
        """The record key: events of one key stay in order on one partition."""
        return self.tenant_id


class TenantUpdated(Event):
    """A tenant's profile was created or changed; the record key is the tenant id.

    The topic is compacted: the newest profile of every tenant stays on it, so a service
    reading it from the beginning learns every tenant's current settings.
    """

    revision: int = Field(ge=1, description="Grows with every change; a lower one is older")
    profile: TenantProfile
    updated_at: Timestamp


InvoiceId = Annotated[
    str,
    Field(min_length=1, max_length=200, description="Canonical invoice id; the record key"),
    SingleLine,
]
"""A canonical invoice id, bounded (``inv_`` and 32 hex digits when made by
``canonical_invoice_id``); the events added since bound it, the older ones take any."""


class EventBody(Event):
    """Fields every invoice event carries; the key of the record is ``invoice_id``."""

    invoice_id: str = Field(min_length=1, description="Canonical invoice id; the record key")
    test_mode: bool = Field(
        default=False,
        description="From a connection in test mode: nothing may be written to an ERP, "
        "factor or recipient because of this event",
    )

    @property
    def record_key(self) -> str:
        """The canonical invoice id, so one invoice's events stay in order."""
        return self.invoice_id


# The key of ErpDocumentFetched.related that carries the tenant's profile (TenantProfile JSON).
RELATED_TENANT = "tenant"


class Flow(Frozen):
    """What happens to a connection's documents, chosen per connection and carried in every
    event of the document, so each service decides from what it consumes.

    Any combination: ``book_into`` names another connection of the tenant (its accounting
    system) that ledger-closer writes the document into; ``factor`` lets factoring-gateway
    decide it under the tenant's agreements; ``distribute`` lets distribution-router send it
    to the buyer. All off: the document is only recorded.
    """

    book_into: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The tenant's connection id of the accounting system to book into",
    )
    factor: bool = Field(default=True, description="Decided under the tenant's agreements")
    distribute: bool = Field(default=True, description="Sent to the buyer by distribution")

    @property
    def record_only(self) -> bool:
        """Nothing is booked, factored or sent."""
        return self.book_into is None and not self.factor and not self.distribute


class DocumentKind(StrEnum):
    """What kind of source document was fetched."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    PAYMENT = "payment"  # payload: the source's payment; related["invoice"]: the invoice paid
    ORDER = "order"  # an accepted quote converted to an order, to be invoiced (Winner)


# The most content bytes one erp.document.chunked event carries (base64 in the event: about
# 342 KiB), well under the runtime's 900 KiB event budget and Kafka's 1 MiB default.
CHUNK_BYTES = 256 * 1024
_SHA256 = r"^[0-9a-f]{64}$"
# A document's content may be up to 10 MiB (erp-poller's push limit) plus its related
# records; the bound keeps a forged reference from claiming an absurd size.
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
MAX_CHUNKS = MAX_PAYLOAD_BYTES // CHUNK_BYTES


class PayloadRef(Frozen):
    """Where the content of a document too large for its event is (a claim check): the
    ``erp.document.chunked`` events of the same tenant and ``sha256``, ``chunks`` of them.

    The content is the JSON object ``{"payload": …, "related": …}``: the event's ``payload``
    and the source's related records exactly as they would have travelled inline (the
    tenant's profile stays in the event). A consumer assembles the chunks in index order and
    checks ``size`` and ``sha256`` before it reads them.
    """

    sha256: str = Field(
        min_length=64,
        max_length=64,
        pattern=_SHA256,
        description="SHA-256 (hex) of the whole content",
    )
    size: int = Field(ge=1, le=MAX_PAYLOAD_BYTES, description="Length of the content in bytes")
    chunks: int = Field(
        ge=1, le=MAX_CHUNKS, description="How many erp.document.chunked events carry it"
    )


class ErpDocumentChunked(Event):
    """One chunk of a document's content too large for its ``erp.document.fetched`` event.

    Keyed by ``<tenant_id>:<sha256>``, so one content's chunks stay in order on one partition.
    Its producer writes every chunk before the event that refers to them (``payload_ref``),
    in the same transaction. The same content may be published again (another version that
    is the same bytes): consumers keep each (tenant, sha256, index) once.
    """

    sha256: str = Field(
        min_length=64,
        max_length=64,
        pattern=_SHA256,
        description="SHA-256 (hex) of the whole content",
    )
    size: int = Field(ge=1, le=MAX_PAYLOAD_BYTES, description="Length of the whole content")
    index: int = Field(ge=0, lt=MAX_CHUNKS, description="This chunk's place, from 0")
    count: int = Field(ge=1, le=MAX_CHUNKS, description="How many chunks the content has")
    data: str = Field(
        min_length=4,
        max_length=4 * ((CHUNK_BYTES + 2) // 3),
        pattern=r"^[A-Za-z0-9+/]+={0,2}$",
        description=f"Base64 (RFC 4648) of this chunk's bytes, at most {CHUNK_BYTES}",
    )

    @model_validator(mode="after")
    def _index_within_count(self) -> ErpDocumentChunked:
        if self.index >= self.count:
            raise ValueError(f"chunk index {self.index} is not below its count {self.count}")
        return self

    @property
    def record_key(self) -> str:
        """One content's chunks on one partition, per tenant."""
        return f"{self.tenant_id}:{self.sha256}"


class ErpDocumentFetched(EventBody):
    """A new or changed document was picked up from a source system (raw, before mapping).

    A document too large to travel in its event comes by reference (``payload_ref``): then
    ``payload`` is empty, ``related`` holds only the tenant's profile, and the content is on
    ``erp.document.chunked``, published before this event.
    """

    source: SourceRef
    kind: DocumentKind
    version: str = Field(description="Content hash of the payload; a new version is a change")
    fetched_at: Timestamp
    payload: dict[str, Any] = Field(description="The document as the source system returned it")
    flow: Flow = Field(default_factory=Flow, description="The connection's flow")
    related: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Related records by role: the source's ('customer', 'invoice' paid or "
        "credited …) and, under 'tenant' (RELATED_TENANT), the tenant's profile as erp-poller "
        "held it when the document was fetched (the seller party and bank accounts)",
    )
    payload_ref: PayloadRef | None = Field(
        default=None,
        description="Set when the payload and the source's related records were too large "
        "for the event: where their content is (erp.document.chunked); None: inline",
    )


class InvoiceCreated(EventBody):
    """A document was mapped and validated into a canonical invoice for the first time."""

    version: str
    invoice: Invoice
    flow: Flow = Field(default_factory=Flow, description="The source connection's flow")
    source_kind: DocumentKind | None = Field(
        default=None,
        description="The source document's kind: an invoice, a credit note, or an order "
        "(a Winner order is booked as an order, not an invoice); None from older producers",
    )


class InvoiceUpdated(EventBody):
    """A later version of an already created invoice was mapped and validated."""

    version: str
    invoice: Invoice
    flow: Flow = Field(default_factory=Flow, description="The source connection's flow")
    source_kind: DocumentKind | None = Field(
        default=None, description="The source document's kind (see InvoiceCreated)"
    )


class ValidationIssue(Frozen):
    """One problem with a document: the field, the rule it breaks, and a readable message."""

    field: Label = Field(description="Dotted path of the field in the source document")
    rule: Label = Field(description="Rule id, e.g. BR-CO-15 or NF-REQUIRED")
    message: Message


class InvoiceRejected(EventBody):
    """A document could not become a canonical invoice; every problem is listed."""

    source: SourceRef
    version: str
    errors: tuple[ValidationIssue, ...] = Field(min_length=1)


class AgreementKind(StrEnum):
    """Factoring (sold), financing (advance) or invoice service (sent and collected)."""

    FACTORING = "factoring"
    FINANCING = "financing"
    INVOICE_SERVICE = "invoice_service"


class PayeeAccount(Frozen):
    """Where the buyer pays an assigned invoice: the factor's account (BG-10, BT-84)."""

    name: str = Field(min_length=1, description="BT-59 payee name (the factor)")
    scheme: str = Field(description="SE:BANKGIRO, SE:PLUSGIRO, IBAN or BBAN")
    account_id: str = Field(min_length=1)
    bic: str | None = None
    company_id: str | None = Field(default=None, description="BT-61 the payee's legal id")


class InvoiceFactoringDecided(EventBody):
    """factoring-gateway decided whether an invoice goes to a provider under an agreement.

    When eligible, the buyer must be told the invoice was assigned: every channel shows the
    payee's account, the payment reference and the assignment text. distribution-router
    waits for this decision before sending an invoice whose flow includes factoring.
    """

    number: str
    eligible: bool
    reason: Message = Field(description="'eligible', or why not (e.g. the currency is not covered)")
    agreement_id: str | None = None
    agreement_kind: AgreementKind | None = None
    provider: str | None = None
    payee: PayeeAccount | None = Field(default=None, description="Set when eligible")
    payment_reference: str | None = Field(default=None, description="The KID/OCR to pay with")
    assignment_text: str | None = Field(
        default=None, description="The notice of assignment printed on the invoice"
    )
    decided_at: Timestamp


class InvoiceTransferred(EventBody):
    """An invoice or credit note was handed to the tenant's factoring/financing provider:
    the provider has the file (its receipt) or acknowledged it (its API)."""

    source: SourceRef
    document_type: DocumentType
    number: str
    provider: str
    agreement_kind: AgreementKind
    transfer_id: str
    amount: Amount = Field(description="Payable amount transferred (positive for credit notes)")
    currency: CurrencyCode
    transferred_at: Timestamp
    agreement_id: str | None = None
    batch_id: str | None = Field(default=None, description="The transfer batch (one file)")
    file_serial: int | None = Field(default=None, description="The batch file's serial number")
    advance_amount: Amount | None = Field(
        default=None,
        description="What the provider pays at transfer: the amount less the fee (factoring), "
        "the advance (financing); None for invoice service",
    )
    fee_amount: Amount | None = Field(default=None, description="The provider's fee")
    payment_reference: str | None = Field(default=None, description="The KID/OCR on the invoice")
    payee: PayeeAccount | None = Field(default=None, description="The factor's account")


class InvoiceTransferFailed(EventBody):
    """A provider refused a transferred invoice (or its whole file), with its reason."""

    number: str
    provider: str
    agreement_id: str | None = None
    batch_id: str | None = None
    file_serial: int | None = None
    reason: Message
    failed_at: Timestamp


class Channel(StrEnum):
    """Distribution channels, cheapest first."""

    PEPPOL = "peppol"
    B2C_BANK = "b2c_bank"
    EMAIL = "email"
    PAPER = "paper"


class ChannelFallback(Frozen):
    """A channel that refused an invoice for good, so the next cheapest one was tried."""

    channel: Channel
    reason: Message


class InvoiceDistributed(EventBody):
    """An invoice left for its recipient by one channel (the partner accepted it)."""

    number: str
    channel: Channel
    document_format: str = Field(description="e.g. peppol-bis-billing-3, pdf")
    recipient: str = Field(
        description="Participant id, e-mail address, postal city, or a consumer's masked "
        "personal number"
    )
    distributed_at: Timestamp
    partner_reference: str | None = Field(
        default=None,
        description="The partner's id of the send: transmission id, Message-ID, letter id",
    )
    archive_sequence: int | None = Field(
        default=None, description="The sent document's per-tenant number in the archive"
    )
    fallbacks: tuple[ChannelFallback, ...] = Field(
        default=(), description="Cheaper channels that refused the invoice first, in order"
    )
    cost: Amount | None = Field(
        default=None,
        description="What the send cost: the partner's price when it gave one, else the "
        "channel's unit price (excl. VAT); None from producers before it was carried",
    )
    cost_currency: CurrencyCode | None = Field(
        default=None, description="The cost's currency; set exactly when cost is"
    )

    @model_validator(mode="after")
    def cost_has_a_currency(self) -> InvoiceDistributed:
        """A cost is never without its currency, nor a currency without a cost."""
        if (self.cost is None) != (self.cost_currency is None):
            raise ValueError("cost and cost_currency go together")
        return self


class InvoiceDeliveryUncertain(EventBody):
    """A send whose outcome is unknown and cannot be asked at the partner (plain e-mail).

    It is never repeated automatically: the user checks with the recipient (or the mail
    provider's log, by the reference) and resends by hand if needed.
    """

    number: str
    channel: Channel
    document_format: str
    recipient: str
    reference: str = Field(description="The attempt's idempotency key (the e-mail's Message-ID)")
    reason: Message
    detected_at: Timestamp


class ChannelSuggested(EventBody):
    """A customer sent to on paper or by e-mail could now take a cheaper channel.

    Recorded once per customer and channel until the user accepts (it becomes the
    customer's channel override) or dismisses it. ``invoice_id`` is the send that found it.
    """

    suggestion_id: int
    customer_key: str = Field(description="Customer number, else company id, else name")
    current_channel: Channel
    suggested_channel: Channel
    recipient: str = Field(description="Where the cheaper channel reaches the customer (masked)")
    suggested_at: Timestamp


class SuggestionDecision(StrEnum):
    """What the tenant did with a suggested cheaper channel."""

    ACCEPTED = "accepted"  # the channel became the customer's override
    DISMISSED = "dismissed"  # not now: not suggested again for a while


class ChannelSuggestionDecided(EventBody):
    """A suggestion of ``channel.suggested`` was accepted or dismissed (distribution-router's
    API), in the transaction that recorded the decision.

    ``invoice_id`` is the send that found it, as on ``channel.suggested``, so both events of
    one suggestion stay in order on one partition. Accepting makes ``suggested_channel`` the
    customer's channel from the next invoice on. The customer is named by
    ``channel.suggested`` (``suggestion_id``), not again here.
    """

    invoice_id: InvoiceId
    suggestion_id: BigId
    decision: SuggestionDecision
    current_channel: Channel
    suggested_channel: Channel
    decided_by: Label | None = Field(default=None, description="Who decided: the API token's name")
    decided_at: Timestamp


class HoldChange(StrEnum):
    """What happened to a held invoice."""

    PLACED = "placed"  # held when it was routed, until held_until
    ATTACHMENT_ADDED = "attachment_added"
    ATTACHMENT_REMOVED = "attachment_removed"
    RELEASED = "released"  # sent early by a user, before held_until


class HoldReason(StrEnum):
    """Why an invoice is held: which hold policy applied when it was routed."""

    CUSTOMER_POLICY = "customer_policy"  # the customer's own hold policy
    TENANT_POLICY = "tenant_policy"  # the tenant's default for every customer


class HoldNeed(StrEnum):
    """What a hold waits for."""

    ATTACHMENTS = "attachments"  # files to send with the invoice, added by the tenant


MediaType = Annotated[
    str, Field(min_length=3, max_length=100, pattern=r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")
]
"""A MIME type without parameters, e.g. ``application/pdf``."""


class HeldAttachment(Frozen):
    """A file attached to a held invoice (without its bytes)."""

    filename: FileName
    content_type: MediaType
    size: int = Field(ge=0, le=2**31 - 1, description="Bytes")


class HoldNeeds(Frozen):
    """What an open hold waits for, and what may be added to it (distribution-router's API:
    ``POST /api/v1/holds/{invoice_id}/attachments``)."""

    what: HoldNeed = HoldNeed.ATTACHMENTS
    content_types: tuple[MediaType, ...] = Field(
        max_length=20, description="The types a file may have"
    )
    max_files: int = Field(ge=0, le=1000, description="How many files an invoice may have")
    max_file_bytes: int = Field(ge=0, le=2**31 - 1, description="How large one file may be")


class DeliveryHoldUpdated(EventBody):
    """A held (quarantined) invoice changed: placed on hold when routed, a file attached or
    removed, or released early. Published by distribution-router in the transaction of the
    change; keyed by the invoice id.

    Each event is the whole hold as it is after the change, with a ``revision`` that grows
    with every change, so a reader keeps the highest revision whatever order it reads them
    in. A hold that simply runs out is not announced: it ends at ``held_until`` and the
    invoice is sent (``invoice.distributed``).
    """

    invoice_id: InvoiceId
    number: Code | None = Field(
        default=None, description="The invoice's number (None only for holds placed before it)"
    )
    change: HoldChange
    revision: int = Field(ge=1, le=2**31 - 1, description="Grows with every change of the hold")
    reason: HoldReason | None = Field(
        default=None, description="The policy that held it (None for holds placed before it)"
    )
    held_at: Timestamp
    held_until: Timestamp = Field(description="When the invoice leaves by itself")
    released_at: Timestamp | None = None
    released_by: Label | None = Field(default=None, description="Who released it early")
    needed: HoldNeeds | None = Field(
        default=None, description="What the hold waits for while it is open; None once released"
    )
    attachments: tuple[HeldAttachment, ...] = Field(
        default=(), max_length=1000, description="The files attached now, in the order added"
    )
    attachment: HeldAttachment | None = Field(
        default=None, description="The file this change added or removed"
    )
    updated_at: Timestamp


class InvoiceDeliveryFailed(EventBody):
    """An invoice could not be sent by a channel; every reason is listed (rule ids included)."""

    number: str
    channel: Channel
    document_format: str
    errors: tuple[ValidationIssue, ...] = Field(min_length=1)
    failed_at: Timestamp


class PaymentReceived(EventBody):
    """Money arrived against an invoice (bank, factor settlement, provider report)."""

    source: SourceRef = Field(description="The invoice in the ERP the payment is booked on")
    payment_id: Code
    amount: Amount
    currency: CurrencyCode
    paid_on: SaneDate
    payer: Label
    reference: str | None = None
    fee_amount: Amount | None = Field(
        default=None, description="A provider's fee withheld from the payment (settlements)"
    )
    agreement_id: str | None = Field(
        default=None, description="Reported in a provider's settlement: the agreement"
    )
    agreement_kind: AgreementKind | None = Field(
        default=None,
        description="Reported in a provider's settlement: factoring (the buyer paid the factor, "
        "who owns the invoice), financing (the rest is due to the company) or invoice service",
    )
    flow: Flow = Field(default_factory=Flow, description="The source connection's flow")
    recorded_at_source: bool = Field(
        default=False,
        description="Already booked in the system it was picked up from; "
        "ledger-closer must not book it again",
    )


class EntryKind(StrEnum):
    """What ledger-closer wrote into the ERP."""

    INVOICE_PAYMENT = "invoice_payment"
    CLOSING_ENTRY = "closing_entry"
    FINANCING_ADVANCE = "financing_advance"  # a voucher: the advance as a liability


class BookingTarget(Frozen):
    """The tenant's accounting system a document was written into: its connection."""

    system: SourceSystem
    connection_id: str = Field(min_length=1, description="The erp-poller connection id")


class LedgerEntryPosted(EventBody):
    """A payment or closing entry was written into the tenant's ERP (exactly once)."""

    source: SourceRef
    entry_kind: EntryKind
    erp_reference: str = Field(description="The ERP's id of what was written")
    amount: Amount
    currency: CurrencyCode
    account: str = Field(description="The account the payment was booked against")
    posted_at: Timestamp
    fee_amount: Amount | None = Field(
        default=None, description="A factoring fee booked with the closing (on its fee account)"
    )
    target: BookingTarget | None = Field(
        default=None,
        description="Where it was written when that is not the source's own ERP (a Sirvoy "
        "payment booked in Fortnox); None: the ERP the document came from",
    )


class BookingAction(StrEnum):
    """What ledger-closer did with a document in the accounting system it is booked into."""

    INVOICE = "invoice"  # created the invoice (its customer first) and booked it
    CREDIT_INVOICE = "credit_invoice"  # credited the booked original
    CANCELLATION = "cancellation"  # cancelled the original, which was not booked yet
    ORDER = "order"  # created the order (customer, project and products first)
    ORDER_INVOICED = "order_invoiced"  # invoiced an order when its part came due


class BookedRecord(Frozen):
    """One record a booking wrote, found or (in test mode) would write."""

    resource: str = Field(description="customer, invoice, project, product, order, …")
    reference: str | None = Field(
        default=None, description="The accounting system's number or id; None when planned"
    )
    outcome: str = Field(
        description="created, updated, found (already there), adopted (an earlier attempt's), "
        "booked, cancelled, credited, invoiced, or planned (test mode: nothing was written)"
    )


class InvoiceBooked(EventBody):
    """A document was written into the tenant's accounting system named by its flow's
    ``book_into`` (exactly once). In test mode nothing was written: ``records`` are what
    would have been (outcome ``planned``)."""

    number: str
    source: SourceRef
    target: BookingTarget
    action: BookingAction
    erp_reference: str | None = Field(
        default=None, description="The main record's number or id (invoice, credit, order)"
    )
    records: tuple[BookedRecord, ...] = ()
    booked_at: Timestamp


class InvoiceBookingSkipped(EventBody):
    """A document whose flow books it was deliberately not written, with the reason (e.g. a
    cash receipt already paid through Stripe, whose payout is booked from the provider)."""

    number: str
    source: SourceRef
    target: BookingTarget
    reason: str
    skipped_at: Timestamp


class InvoiceClosingHeld(EventBody):
    """A transferred invoice was not closed in the ERP because it did not reach its buyer
    (a failed or uncertain send, or the ERP says it was never sent); shown to the user."""

    number: str
    source: SourceRef
    reason: str
    held_at: Timestamp


# A service's name as it appears in events about its own work (job, operator action).
ServiceName = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$", description="Service")
]


class JobFailed(Event):
    """A service's durable job failed for good (refused, or its attempts ran out).

    Emitted by the runtime in the job's own transaction; the record key is
    ``<service>:<job_id>``, so one job's events stay in order. ``retry_job`` (an
    ``operator.action_requested``) or ``<service> jobs retry`` makes it pending again.
    """

    service: ServiceName
    job_id: int = Field(ge=1, description="The job's id in its service (target of retry_job)")
    kind: str = Field(min_length=1, max_length=100)
    job_key: str = Field(min_length=1, max_length=500)
    invoice_id: str | None = Field(default=None, description="The invoice the job was for")
    attempts: int = Field(ge=0)
    error: str = Field(max_length=2000, description="Why it failed, as the job recorded it")
    failed_at: Timestamp

    @property
    def record_key(self) -> str:
        """One job's events on one partition."""
        return f"{self.service}:{self.job_id}"


class JobRetried(Event):
    """A failed durable job was made pending again, due now, with a fresh count of attempts."""

    service: ServiceName
    job_id: int = Field(ge=1)
    kind: str = Field(min_length=1, max_length=100)
    job_key: str = Field(min_length=1, max_length=500)
    invoice_id: str | None = None
    retried_at: Timestamp
    requested_by: str = Field(
        max_length=200, description="Who asked: an operator action's requester, or `cli`"
    )
    action_id: str | None = Field(
        default=None, description="The operator.action_requested it carried out, if any"
    )

    @property
    def record_key(self) -> str:
        """One job's events on one partition."""
        return f"{self.service}:{self.job_id}"


class OperatorAction(StrEnum):
    """What an operator (or a tenant, for its own data) may ask a service to do."""

    RETRY_JOB = "retry_job"  # target: the failed job's id in that service
    REPLAY_DEAD_LETTER = "replay_dead_letter"  # target: "<partition>:<offset>" in the DLQ topic
    SYNC_CONNECTION = "sync_connection"  # target: the connection id (erp-poller)
    # distribution-router's: a cheaper channel it suggested, and an invoice it holds
    ACCEPT_SUGGESTION = "accept_suggestion"  # target: the suggestion id
    DISMISS_SUGGESTION = "dismiss_suggestion"  # target: the suggestion id
    RELEASE_HOLD = "release_hold"  # target: the held invoice's id


class OperatorActionRequested(Event):
    """A command: the service named in ``service`` carries the action out, every other
    service ignores it. The runtime carries out ``retry_job`` and ``replay_dead_letter`` for
    every service; other actions are the service's own (``ServiceApp.operator_action``).
    The outcome is announced on ``operator.action_completed``.
    """

    action_id: str = Field(min_length=1, max_length=64, description="Unique per request")
    service: ServiceName = Field(description="The service that carries the action out")
    action: OperatorAction
    target_id: str = Field(min_length=1, max_length=200)
    requested_by: str = Field(min_length=1, max_length=200, description="The token's name")
    requested_at: Timestamp

    @property
    def record_key(self) -> str:
        """Actions on one target stay in order."""
        return f"{self.service}:{self.target_id}"


class ActionOutcome(StrEnum):
    """How an operator action ended."""

    DONE = "done"
    NOT_FOUND = "not_found"  # no such job or dead letter (of that tenant, in that service)
    REFUSED = "refused"  # e.g. the job is not failed, the letter is another service's
    UNSUPPORTED = "unsupported"  # the service does not carry out this action (yet)


class OperatorActionCompleted(Event):
    """A service carried out (or refused) an ``operator.action_requested`` addressed to it."""

    action_id: str = Field(min_length=1, max_length=64)
    service: ServiceName
    action: OperatorAction
    target_id: str = Field(min_length=1, max_length=200)
    outcome: ActionOutcome
    message: str = Field(max_length=2000)
    completed_at: Timestamp

    @property
    def record_key(self) -> str:
        """Beside the request."""
        return f"{self.service}:{self.target_id}"


class ConnectionUpdated(Event):
    """A source connection's state: its system, mode and polling (compacted per connection).

    Published by the connection's owner (erp-poller) whenever the mode changes or a poll
    ends, with a growing ``revision``; keyed by ``<tenant_id>:<connection_id>``, so the
    newest state of every connection stays on the topic. Never carries credentials.
    """

    connection_id: str = Field(min_length=1, max_length=200)
    system: SourceSystem
    mode: ConnectionMode
    revision: int = Field(ge=1, description="Grows with every change; a lower one is older")
    last_poll_at: Timestamp | None = Field(default=None, description="When the last poll ended")
    last_success_at: Timestamp | None = Field(
        default=None, description="When a poll last ended without an error"
    )
    last_error: str | None = Field(
        default=None, max_length=2000, description="The last poll's error; None after success"
    )
    next_poll_at: Timestamp | None = None
    removed: bool = Field(default=False, description="The connection was deleted")
    updated_at: Timestamp

    @property
    def record_key(self) -> str:
        """The newest state of each connection stays on the compacted topic."""
        return f"{self.tenant_id}:{self.connection_id}"
