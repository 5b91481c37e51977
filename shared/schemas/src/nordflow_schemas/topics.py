"""Every Kafka topic of the system: name, event model, producer and consumers (one place)."""

from __future__ import annotations

from dataclasses import dataclass

from .events import (
    ChannelSuggested,
    ChannelSuggestionDecided,
    ConnectionUpdated,
    DeliveryHoldUpdated,
    ErpDocumentChunked,
    ErpDocumentFetched,
    Event,
    InvoiceBooked,
    InvoiceBookingSkipped,
    InvoiceClosingHeld,
    InvoiceCreated,
    InvoiceDeliveryFailed,
    InvoiceDeliveryUncertain,
    InvoiceDistributed,
    InvoiceFactoringDecided,
    InvoiceRejected,
    InvoiceTransferFailed,
    InvoiceTransferred,
    InvoiceUpdated,
    JobFailed,
    JobRetried,
    LedgerEntryPosted,
    OperatorActionCompleted,
    OperatorActionRequested,
    PaymentReceived,
    TenantUpdated,
)

ERP_POLLER = "erp-poller"
MAPPER = "mapper"
FACTORING_GATEWAY = "factoring-gateway"
DISTRIBUTION_ROUTER = "distribution-router"
LEDGER_CLOSER = "ledger-closer"
CONTROL_PANEL = "control-panel"
SERVICES = (
    ERP_POLLER,
    MAPPER,
    FACTORING_GATEWAY,
    DISTRIBUTION_ROUTER,
    LEDGER_CLOSER,
    CONTROL_PANEL,
)
# Readers outside the services: dashboards built on the topics, operators' tools.
DASHBOARDS = "dashboards"
OPERATORS = "operators"


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its event model (None for raw topics), who writes it and who reads it."""

    name: str
    event: type[Event] | None
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    partitions: int = 6
    version: int = 1
    key: str = "invoice_id"
    compacted: bool = False
    # Read by each consumer in a consumer group of its own (`consumer_group`), so that a
    # record of another topic waiting for this one never holds this one up.
    separate_group: bool = False

    @property
    def ce_type(self) -> str:
        """The CloudEvents type, which carries the schema version."""
        return f"nordflow.{self.name}.v{self.version}"


ERP_DOCUMENT_CHUNKED = TopicSpec(
    "erp.document.chunked",
    ErpDocumentChunked,
    (ERP_POLLER,),
    (MAPPER,),
    "One chunk of a document's content too large for its erp.document.fetched event (a "
    "claim check: the event carries payload_ref), published before that event; keep it at "
    "least as long as erp.document.fetched",
    partitions=12,
    key="tenant_id:sha256",
    separate_group=True,
)
ERP_DOCUMENT_FETCHED = TopicSpec(
    "erp.document.fetched",
    ErpDocumentFetched,
    (ERP_POLLER,),
    (MAPPER, CONTROL_PANEL),
    "A new or changed source document, raw as the source returned it",
    partitions=12,
)
INVOICE_CREATED = TopicSpec(
    "invoice.created",
    InvoiceCreated,
    (MAPPER,),
    (FACTORING_GATEWAY, DISTRIBUTION_ROUTER, LEDGER_CLOSER, CONTROL_PANEL),
    "A canonical invoice, mapped and validated, first version",
)
INVOICE_UPDATED = TopicSpec(
    "invoice.updated",
    InvoiceUpdated,
    (MAPPER,),
    (FACTORING_GATEWAY, CONTROL_PANEL),
    "A later version of a created invoice (e.g. paid, due date moved)",
)
INVOICE_REJECTED = TopicSpec(
    "invoice.rejected",
    InvoiceRejected,
    (MAPPER,),
    (CONTROL_PANEL,),
    "A document that could not be mapped, with every error naming its field",
)
INVOICE_TRANSFERRED = TopicSpec(
    "invoice.transferred",
    InvoiceTransferred,
    (FACTORING_GATEWAY,),
    (LEDGER_CLOSER, CONTROL_PANEL),
    "An invoice handed over to the provider under an agreement: the provider has its file "
    "(receipt or API acknowledgement); batch, serial, advance, fee, KID and payee",
)
INVOICE_FACTORING_DECIDED = TopicSpec(
    "invoice.factoring_decided",
    InvoiceFactoringDecided,
    (FACTORING_GATEWAY,),
    (DISTRIBUTION_ROUTER, CONTROL_PANEL),
    "Whether an invoice goes to a provider under an agreement; when it does, the factor's "
    "account, payment reference and assignment text every channel must show",
)
INVOICE_TRANSFER_FAILED = TopicSpec(
    "invoice.transfer_failed",
    InvoiceTransferFailed,
    (FACTORING_GATEWAY,),
    (CONTROL_PANEL,),
    "A provider refused an invoice or its file, with the provider's reason",
)
INVOICE_DISTRIBUTED = TopicSpec(
    "invoice.distributed",
    InvoiceDistributed,
    (DISTRIBUTION_ROUTER,),
    (LEDGER_CLOSER, CONTROL_PANEL),
    "An invoice sent by the cheapest channel its recipient can take (partner accepted it)",
)
INVOICE_DELIVERY_FAILED = TopicSpec(
    "invoice.delivery_failed",
    InvoiceDeliveryFailed,
    (DISTRIBUTION_ROUTER,),
    (LEDGER_CLOSER, CONTROL_PANEL),
    "An invoice that could not be sent, with the rule ids and messages",
)
INVOICE_DELIVERY_UNCERTAIN = TopicSpec(
    "invoice.delivery_uncertain",
    InvoiceDeliveryUncertain,
    (DISTRIBUTION_ROUTER,),
    (LEDGER_CLOSER, CONTROL_PANEL),
    "A send whose outcome is unknown and cannot be looked up (e-mail); never resent by itself",
)
CHANNEL_SUGGESTED = TopicSpec(
    "channel.suggested",
    ChannelSuggested,
    (DISTRIBUTION_ROUTER,),
    (CONTROL_PANEL,),
    "A paper or e-mail customer can now take a cheaper channel (once until decided)",
)
CHANNEL_SUGGESTION_DECIDED = TopicSpec(
    "channel.suggestion_decided",
    ChannelSuggestionDecided,
    (DISTRIBUTION_ROUTER,),
    (CONTROL_PANEL,),
    "A suggested cheaper channel accepted (the customer's channel from then on) or dismissed; "
    "keyed like its channel.suggested",
)
DELIVERY_HOLD_UPDATED = TopicSpec(
    "delivery.hold_updated",
    DeliveryHoldUpdated,
    (DISTRIBUTION_ROUTER,),
    (CONTROL_PANEL,),
    "An invoice held before sending (quarantine) so files can be attached: placed, a file "
    "added or removed, released early; the whole hold with a growing revision",
)
PAYMENT_RECEIVED = TopicSpec(
    "payment.received",
    PaymentReceived,
    (MAPPER, FACTORING_GATEWAY),
    (LEDGER_CLOSER, CONTROL_PANEL),
    "A payment against an invoice: picked up from the source (already booked there), or "
    "reported by a bank or a factor's settlement file (to be booked in the ERP)",
)
LEDGER_ENTRY_POSTED = TopicSpec(
    "ledger.entry.posted",
    LedgerEntryPosted,
    (LEDGER_CLOSER,),
    (CONTROL_PANEL,),
    "A payment or closing entry written into the tenant's ERP",
)
INVOICE_BOOKED = TopicSpec(
    "invoice.booked",
    InvoiceBooked,
    (LEDGER_CLOSER,),
    (CONTROL_PANEL,),
    "A document written into the accounting system its flow books it into (customer, "
    "invoice, credit, cancellation, project, products, order); in test mode what would be",
)
INVOICE_BOOKING_SKIPPED = TopicSpec(
    "invoice.booking_skipped",
    InvoiceBookingSkipped,
    (LEDGER_CLOSER,),
    (CONTROL_PANEL,),
    "A document its flow books that is deliberately not written, with the reason (a cash "
    "receipt already paid through Stripe)",
)
INVOICE_CLOSING_HELD = TopicSpec(
    "invoice.closing_held",
    InvoiceClosingHeld,
    (LEDGER_CLOSER,),
    (CONTROL_PANEL,),
    "A transferred invoice not closed because it did not reach its buyer",
)
TENANT_UPDATED = TopicSpec(
    "tenant.updated",
    TenantUpdated,
    (ERP_POLLER,),
    (MAPPER, FACTORING_GATEWAY, DISTRIBUTION_ROUTER, LEDGER_CLOSER, CONTROL_PANEL),
    "A tenant's profile (name, country, time zone, locale, currency, seller, bank accounts); "
    "compacted: the newest per tenant stays",
    # As wide as the widest topic, so that it never caps how many replicas a consumer runs.
    partitions=12,
    key="tenant_id",
    compacted=True,
)
EVENT_DEAD_LETTERED = TopicSpec(
    "event.dead_lettered",
    None,
    SERVICES,
    (CONTROL_PANEL, OPERATORS),
    "Poison records, unchanged, with the reason and origin in x-nordflow-dlq-* headers",
)
JOB_FAILED = TopicSpec(
    "job.failed",
    JobFailed,
    SERVICES,
    (CONTROL_PANEL,),
    "A service's durable job (ERP write, send) failed for good; emitted by the runtime",
    key="service:job_id",
)
JOB_RETRIED = TopicSpec(
    "job.retried",
    JobRetried,
    SERVICES,
    (CONTROL_PANEL,),
    "A failed durable job made pending again (jobs retry, or an operator's retry_job)",
    key="service:job_id",
)
OPERATOR_ACTION_REQUESTED = TopicSpec(
    "operator.action_requested",
    OperatorActionRequested,
    (CONTROL_PANEL,),
    SERVICES,
    "A command to one service (retry_job, replay_dead_letter, sync_connection, "
    "accept_suggestion, dismiss_suggestion, release_hold); the runtime of every service "
    "consumes it, the one named carries it out",
    # Every service consumes it: as wide as the widest topic, so it never caps replicas.
    partitions=12,
    key="service:target_id",
)
OPERATOR_ACTION_COMPLETED = TopicSpec(
    "operator.action_completed",
    OperatorActionCompleted,
    SERVICES,
    (CONTROL_PANEL,),
    "The outcome of an operator action (done, not_found, refused, unsupported)",
    key="service:target_id",
)
CONNECTION_UPDATED = TopicSpec(
    "connection.updated",
    ConnectionUpdated,
    (ERP_POLLER,),
    (CONTROL_PANEL,),
    "A source connection's system, mode, last poll and last error; compacted: the newest "
    "per connection stays",
    key="tenant_id:connection_id",
    compacted=True,
)

TOPICS: tuple[TopicSpec, ...] = (
    TENANT_UPDATED,
    ERP_DOCUMENT_CHUNKED,
    ERP_DOCUMENT_FETCHED,
    INVOICE_CREATED,
    INVOICE_UPDATED,
    INVOICE_REJECTED,
    INVOICE_FACTORING_DECIDED,
    INVOICE_TRANSFERRED,
    INVOICE_TRANSFER_FAILED,
    INVOICE_DISTRIBUTED,
    INVOICE_DELIVERY_FAILED,
    INVOICE_DELIVERY_UNCERTAIN,
    CHANNEL_SUGGESTED,
    CHANNEL_SUGGESTION_DECIDED,
    DELIVERY_HOLD_UPDATED,
    PAYMENT_RECEIVED,
    LEDGER_ENTRY_POSTED,
    INVOICE_BOOKED,
    INVOICE_BOOKING_SKIPPED,
    INVOICE_CLOSING_HELD,
    CONNECTION_UPDATED,
    JOB_FAILED,
    JOB_RETRIED,
    OPERATOR_ACTION_REQUESTED,
    OPERATOR_ACTION_COMPLETED,
    EVENT_DEAD_LETTERED,
)
BY_NAME = {t.name: t for t in TOPICS}
BY_CE_TYPE = {t.ce_type: t for t in TOPICS if t.event is not None}


def consumer_group(service: str, topic: str) -> str:
    """The consumer group in which a service reads a topic: the service's name, or
    ``<service>.<topic>`` for a topic read in a group of its own (``separate_group``)."""
    spec = BY_NAME.get(topic)
    if spec is not None and spec.separate_group:
        return f"{service}.{topic}"
    return service


def topic_for(event: type[Event]) -> TopicSpec:
    """The topic an event model is published on."""
    for spec in TOPICS:
        if spec.event is event:
            return spec
    raise KeyError(f"no topic carries {event.__name__}")
