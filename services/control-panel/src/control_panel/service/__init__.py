"""Use cases of the control panel and the repositories they take (Protocols).

``readmodel``: every topic into the read model. ``queries``: what the pages and the API
show, within what the principal may see. ``actions``: operator actions as commands.
``tokens``: API tokens and web sessions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from nordflow_runtime.tenant_profiles import TenantProfiles
from nordflow_schemas.events import (
    ChannelSuggested,
    ChannelSuggestionDecided,
    ConnectionUpdated,
    DeliveryHoldUpdated,
    InvoiceDeliveryFailed,
    InvoiceDeliveryUncertain,
    InvoiceDistributed,
    InvoiceTransferred,
    JobFailed,
    JobRetried,
    LedgerEntryPosted,
    OperatorActionCompleted,
    OperatorActionRequested,
    PaymentReceived,
)

from ..domain.access import Principal
from ..domain.journey import Step, Summary
from ..domain.paging import Cursor
from ..domain.records import (
    ActionRow,
    ConnectionRow,
    Counts,
    CustomerChannel,
    DeadLetterRow,
    EntryRow,
    FailedJob,
    HoldRow,
    InvoiceRow,
    InvoiceSearch,
    PaymentRow,
    SuggestionRow,
    TransferRow,
)


class JourneyRepository(Protocol):
    """Steps of every invoice, their summaries, and the newest canonical document."""

    async def add_step(self, step: Step) -> bool:
        """Record a step (serialised per invoice); False if its event was recorded before."""
        ...

    async def steps(self, tenant_id: str, invoice_id: str) -> list[Step]:
        """Every step of the invoice."""
        ...

    async def save_summary(self, tenant_id: str, invoice_id: str, summary: Summary) -> None:
        """Replace the invoice's summary."""
        ...

    async def keep_document(
        self,
        tenant_id: str,
        invoice_id: str,
        event_id: str,
        occurred_at: dt.datetime,
        document: dict[str, Any],
    ) -> None:
        """Keep the canonical invoice unless a newer one is kept."""
        ...


class BooksRepository(Protocol):
    """Transfers, deliveries, suggestions and their decisions, holds, payments and ledger
    entries (each once)."""

    async def add_transfer(self, event: InvoiceTransferred) -> None:
        """Record a transfer to a factor."""
        ...

    async def add_delivery(
        self,
        event_id: str,
        event: InvoiceDistributed | InvoiceDeliveryFailed | InvoiceDeliveryUncertain,
    ) -> None:
        """Record a send, a failed send or an uncertain one."""
        ...

    async def add_suggestion(self, event: ChannelSuggested) -> None:
        """Record a cheaper channel found for a customer."""
        ...

    async def add_suggestion_decision(self, event: ChannelSuggestionDecided) -> None:
        """Record a suggestion's decision (its suggestion may not be known yet)."""
        ...

    async def hold_updated(self, event: DeliveryHoldUpdated) -> None:
        """Keep the hold's highest revision."""
        ...

    async def add_payment(self, event: PaymentReceived, received_at: dt.datetime) -> None:
        """Record a payment."""
        ...

    async def add_entry(self, event: LedgerEntryPosted) -> None:
        """Record an entry written into the ERP."""
        ...


class OperationsRepository(Protocol):
    """Failed jobs, dead letters, operator actions and connections' states."""

    async def job_failed(self, event: JobFailed) -> None:
        """A job failed (again), unless something newer is known about it."""
        ...

    async def job_retried(self, event: JobRetried) -> None:
        """A job was made pending again, unless something newer is known about it."""
        ...

    async def add_dead_letter(self, letter: DeadLetterRow) -> None:
        """Record a dead letter (once per letter id)."""
        ...

    async def action_requested(self, command: OperatorActionRequested) -> None:
        """Record an action's request (its outcome may be known already)."""
        ...

    async def action_completed(self, outcome: OperatorActionCompleted) -> None:
        """Record an action's outcome (its request may not be known yet)."""
        ...

    async def connection_updated(self, event: ConnectionUpdated) -> None:
        """Keep the connection's newest revision."""
        ...


class ReadRepository(Protocol):
    """What the pages and the API read; ``tenant_id`` None means every tenant's."""

    async def search(
        self,
        tenant_id: str | None,
        search: InvoiceSearch,
        limit: int,
        after: Cursor | None,
    ) -> list[InvoiceRow]:
        """Invoices newest first (by first seen), after the cursor."""
        ...

    async def invoice(self, tenant_id: str | None, invoice_id: str) -> InvoiceRow | None:
        """One invoice, if the tenant (or any, for None) has it."""
        ...

    async def document(self, tenant_id: str, invoice_id: str) -> dict[str, Any] | None:
        """The newest canonical invoice of the invoice."""
        ...

    async def failed_jobs(
        self, tenant_id: str | None, state: str | None, limit: int, after: Cursor | None
    ) -> list[FailedJob]:
        """Failed (and retried) jobs, newest first."""
        ...

    async def failed_job(self, service: str, job_id: int) -> FailedJob | None:
        """One job the panel heard of."""
        ...

    async def dead_letters(
        self, tenant_id: str | None, limit: int, after: Cursor | None
    ) -> list[DeadLetterRow]:
        """Dead letters, newest first."""
        ...

    async def dead_letter(self, letter_id: str) -> DeadLetterRow | None:
        """One dead letter."""
        ...

    async def actions(
        self, tenant_id: str | None, limit: int, target: tuple[str, str] | None = None
    ) -> list[ActionRow]:
        """Operator actions, newest first (optionally of one ``(service, target_id)``)."""
        ...

    async def action(self, action_id: str) -> ActionRow | None:
        """One operator action."""
        ...

    async def connections(self, tenant_id: str | None) -> list[ConnectionRow]:
        """Connections' newest states."""
        ...

    async def connection(self, tenant_id: str, connection_id: str) -> ConnectionRow | None:
        """One connection of a tenant."""
        ...

    async def transfers(self, tenant_id: str | None, limit: int) -> list[TransferRow]:
        """Transfers to factors, newest first."""
        ...

    async def entries(self, tenant_id: str | None, limit: int) -> list[EntryRow]:
        """Ledger entries, newest first."""
        ...

    async def payments(self, tenant_id: str | None, limit: int) -> list[PaymentRow]:
        """Payments, newest first."""
        ...

    async def customer_channels(self, tenant_id: str | None, limit: int) -> list[CustomerChannel]:
        """Per customer, the channel its newest send used."""
        ...

    async def suggestions(self, tenant_id: str | None, limit: int) -> list[SuggestionRow]:
        """Cheaper channels found, newest first, with their decisions once made."""
        ...

    async def holds(self, tenant_id: str | None, now: dt.datetime, limit: int) -> list[HoldRow]:
        """Invoices held at ``now``, the soonest to leave first."""
        ...

    async def suggestion(self, tenant_id: str, suggestion_id: int) -> SuggestionRow | None:
        """One suggestion of a tenant, with its decision once made."""
        ...

    async def hold(self, tenant_id: str, invoice_id: str) -> HoldRow | None:
        """A tenant's invoice's hold as its newest revision says (also once it ended)."""
        ...

    async def counts(
        self,
        tenant_id: str | None,
        start: dt.datetime,
        end: dt.datetime,
        zone: str,
        month: bool,
        currency: str = "SEK",
    ) -> Counts:
        """Sends per channel, created per source, rejections and failed sends per period;
        what the sends priced in ``currency`` cost, and how many were not priced."""
        ...

    async def tenants(self) -> list[str]:
        """Every tenant the read model knows."""
        ...

    async def seller_country(self, tenant_id: str) -> str | None:
        """The seller's country on the tenant's newest invoice (for a tenant without a
        profile yet)."""
        ...


class TokenRepository(Protocol):
    """API tokens (hashes only) and web sessions."""

    async def add_token(
        self, token_hash: str, tenant_id: str | None, operator: bool, name: str
    ) -> None:
        """Store a new token's hash."""
        ...

    async def principal(self, token_hash: str) -> Principal | None:
        """The holder of an unrevoked token."""
        ...

    async def revoke(self, name: str, tenant_id: str | None) -> int:
        """Revoke tokens by name (of a tenant, or operators' for None); how many."""
        ...

    async def open_session(
        self, session_hash: str, token_hash: str, csrf: str, expires_at: dt.datetime
    ) -> None:
        """Store a session of a token."""
        ...

    async def session(self, session_hash: str, now: dt.datetime) -> tuple[Principal, str] | None:
        """The principal and CSRF token of a live session of an unrevoked token."""
        ...

    async def close_session(self, session_hash: str) -> None:
        """End a session."""
        ...


@dataclass(frozen=True)
class Repositories:
    """Everything a use case of this service reads or writes, on one connection."""

    journeys: JourneyRepository
    books: BooksRepository
    operations: OperationsRepository
    read: ReadRepository
    tokens: TokenRepository
    profiles: TenantProfiles
