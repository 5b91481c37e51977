"""PostgreSQL repositories that write the read model (steps, summaries, books, operations)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, TypeAlias

import asyncpg
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

from ..domain.journey import ErrorItem, Step, Summary
from ..domain.records import DeadLetterRow

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


def step_from(row: asyncpg.Record) -> Step:
    """A step as stored."""
    return Step(
        event_id=row["event_id"],
        tenant_id=row["tenant_id"],
        invoice_id=row["invoice_id"],
        kind=row["kind"],
        occurred_at=row["occurred_at"],
        trace_id=row["trace_id"],
        test_mode=row["test_mode"],
        facts=json.loads(row["facts"]),
        errors=tuple(ErrorItem(**e) for e in json.loads(row["errors"])),
    )


class PgJourneyRepository:
    """Steps in ``steps``, summaries in ``invoices``, documents in ``invoice_documents``."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def add_step(self, step: Step) -> bool:
        """Record a step; False if its event was recorded before.

        A transaction-scoped lock per invoice makes replicas that record steps of the same
        invoice at once take turns, so each recomputed summary sees every committed step.
        """
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || '|' || $2, 0))",
            step.tenant_id,
            step.invoice_id,
        )
        return bool(
            await self.conn.fetchval(
                """INSERT INTO steps (event_id, tenant_id, invoice_id, kind, occurred_at,
                                      trace_id, test_mode, facts, errors)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb)
                   ON CONFLICT (event_id) DO NOTHING RETURNING true""",
                step.event_id,
                step.tenant_id,
                step.invoice_id,
                step.kind,
                step.occurred_at,
                step.trace_id,
                step.test_mode,
                json.dumps(dict(step.facts)),
                json.dumps([e.__dict__ for e in step.errors]),
            )
        )

    async def steps(self, tenant_id: str, invoice_id: str) -> list[Step]:
        """Every step of the invoice."""
        rows = await self.conn.fetch(
            "SELECT event_id, tenant_id, invoice_id, kind, occurred_at, trace_id, test_mode, "
            "facts::text AS facts, errors::text AS errors FROM steps "
            "WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY occurred_at, event_id",
            tenant_id,
            invoice_id,
        )
        return [step_from(r) for r in rows]

    async def save_summary(self, tenant_id: str, invoice_id: str, summary: Summary) -> None:
        """Replace the invoice's summary."""
        s = summary
        await self.conn.execute(
            """INSERT INTO invoices (tenant_id, invoice_id, number, customer, customer_key,
                   source_system, connection_id, document_id, document_type, currency, amount,
                   issue_date, due_date, status, channel, partner_reference, archive_sequence,
                   error_count, test_mode, trace_id, first_seen_at, last_event_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                       $17, $18, $19, $20, $21, $22)
               ON CONFLICT (tenant_id, invoice_id) DO UPDATE SET number = EXCLUDED.number,
                   customer = EXCLUDED.customer, customer_key = EXCLUDED.customer_key,
                   source_system = EXCLUDED.source_system,
                   connection_id = EXCLUDED.connection_id, document_id = EXCLUDED.document_id,
                   document_type = EXCLUDED.document_type, currency = EXCLUDED.currency,
                   amount = EXCLUDED.amount, issue_date = EXCLUDED.issue_date,
                   due_date = EXCLUDED.due_date, status = EXCLUDED.status,
                   channel = EXCLUDED.channel, partner_reference = EXCLUDED.partner_reference,
                   archive_sequence = EXCLUDED.archive_sequence,
                   error_count = EXCLUDED.error_count, test_mode = EXCLUDED.test_mode,
                   trace_id = EXCLUDED.trace_id, first_seen_at = EXCLUDED.first_seen_at,
                   last_event_at = EXCLUDED.last_event_at""",
            tenant_id,
            invoice_id,
            s.number,
            s.customer,
            s.customer_key,
            s.source_system,
            s.connection_id,
            s.document_id,
            s.document_type,
            s.currency,
            s.amount,
            s.issue_date,
            s.due_date,
            s.status.value,
            s.channel,
            s.partner_reference,
            s.archive_sequence,
            s.error_count,
            s.test_mode,
            s.trace_id,
            s.first_seen_at,
            s.last_event_at,
        )

    async def keep_document(
        self,
        tenant_id: str,
        invoice_id: str,
        event_id: str,
        occurred_at: dt.datetime,
        document: dict[str, Any],
    ) -> None:
        """Keep the canonical invoice unless a newer one (time, then event id) is kept."""
        await self.conn.execute(
            """INSERT INTO invoice_documents (tenant_id, invoice_id, event_id, occurred_at,
                                              document)
               VALUES ($1, $2, $3, $4, $5::jsonb)
               ON CONFLICT (tenant_id, invoice_id) DO UPDATE SET event_id = EXCLUDED.event_id,
                   occurred_at = EXCLUDED.occurred_at, document = EXCLUDED.document
               WHERE (invoice_documents.occurred_at, invoice_documents.event_id)
                     < (EXCLUDED.occurred_at, EXCLUDED.event_id)""",
            tenant_id,
            invoice_id,
            event_id,
            occurred_at,
            json.dumps(document),
        )


class PgBooksRepository:
    """Transfers, deliveries, suggestions (and their decisions), holds, payments and ledger
    entries, each once (holds: the highest revision)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def add_transfer(self, event: InvoiceTransferred) -> None:
        """Record a transfer to a factor."""
        await self.conn.execute(
            """INSERT INTO transfers (transfer_id, tenant_id, invoice_id, number, provider,
                   agreement_kind, amount, currency, transferred_at, test_mode, batch_id,
                   file_serial)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
               ON CONFLICT (tenant_id, transfer_id) DO NOTHING""",
            event.transfer_id,
            event.tenant_id,
            event.invoice_id,
            event.number,
            event.provider,
            event.agreement_kind.value,
            event.amount,
            event.currency,
            event.transferred_at,
            event.test_mode,
            event.batch_id,
            event.file_serial,
        )

    async def add_delivery(
        self,
        event_id: str,
        event: InvoiceDistributed | InvoiceDeliveryFailed | InvoiceDeliveryUncertain,
    ) -> None:
        """Record a send, a failed send or an uncertain one."""
        cost, cost_currency = None, None
        if isinstance(event, InvoiceDistributed):
            outcome, at, recipient = "distributed", event.distributed_at, event.recipient
            reference, sequence = event.partner_reference, event.archive_sequence
            fallbacks = [{"channel": f.channel.value, "reason": f.reason} for f in event.fallbacks]
            cost, cost_currency = event.cost, event.cost_currency
        elif isinstance(event, InvoiceDeliveryFailed):
            outcome, at, recipient, reference, sequence = (
                "failed",
                event.failed_at,
                None,
                None,
                None,
            )
            fallbacks = []
        else:
            outcome, at, recipient = "uncertain", event.detected_at, event.recipient
            reference, sequence, fallbacks = event.reference, None, []
        await self.conn.execute(
            """INSERT INTO deliveries (event_id, tenant_id, invoice_id, number, outcome, channel,
                   document_format, recipient, partner_reference, archive_sequence, fallbacks,
                   occurred_at, test_mode, cost, cost_currency)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14, $15)
               ON CONFLICT (event_id) DO NOTHING""",
            event_id,
            event.tenant_id,
            event.invoice_id,
            event.number,
            outcome,
            event.channel.value,
            event.document_format,
            recipient,
            reference,
            sequence,
            json.dumps(fallbacks),
            at,
            event.test_mode,
            cost,
            cost_currency,
        )

    async def add_suggestion(self, event: ChannelSuggested) -> None:
        """Record a cheaper channel found for a customer."""
        await self.conn.execute(
            """INSERT INTO suggestions (tenant_id, suggestion_id, invoice_id, customer_key,
                   current_channel, suggested_channel, recipient, suggested_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (tenant_id, suggestion_id) DO NOTHING""",
            event.tenant_id,
            event.suggestion_id,
            event.invoice_id,
            event.customer_key,
            event.current_channel.value,
            event.suggested_channel.value,
            event.recipient,
            event.suggested_at,
        )

    async def add_suggestion_decision(self, event: ChannelSuggestionDecided) -> None:
        """Record a suggestion's decision (its suggestion may not be known yet); a later
        decision of the same suggestion wins (by its own time)."""
        await self.conn.execute(
            """INSERT INTO suggestion_decisions (tenant_id, suggestion_id, decision, decided_by,
                   decided_at)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (tenant_id, suggestion_id) DO UPDATE SET
                   decision = EXCLUDED.decision, decided_by = EXCLUDED.decided_by,
                   decided_at = EXCLUDED.decided_at
               WHERE suggestion_decisions.decided_at < EXCLUDED.decided_at""",
            event.tenant_id,
            event.suggestion_id,
            event.decision.value,
            event.decided_by,
            event.decided_at,
        )

    async def hold_updated(self, event: DeliveryHoldUpdated) -> None:
        """Keep the hold's highest revision (its events may come in any order, or twice)."""
        await self.conn.execute(
            """INSERT INTO holds (tenant_id, invoice_id, number, revision, change, reason,
                   held_at, held_until, released_at, released_by, needed, attachments,
                   updated_at, test_mode)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb, $13,
                       $14)
               ON CONFLICT (tenant_id, invoice_id) DO UPDATE SET number = EXCLUDED.number,
                   revision = EXCLUDED.revision, change = EXCLUDED.change,
                   reason = EXCLUDED.reason, held_at = EXCLUDED.held_at,
                   held_until = EXCLUDED.held_until, released_at = EXCLUDED.released_at,
                   released_by = EXCLUDED.released_by, needed = EXCLUDED.needed,
                   attachments = EXCLUDED.attachments, updated_at = EXCLUDED.updated_at,
                   test_mode = EXCLUDED.test_mode
               WHERE holds.revision < EXCLUDED.revision""",
            event.tenant_id,
            event.invoice_id,
            event.number,
            event.revision,
            event.change.value,
            event.reason.value if event.reason is not None else None,
            event.held_at,
            event.held_until,
            event.released_at,
            event.released_by,
            event.needed.model_dump_json() if event.needed is not None else None,
            json.dumps([a.model_dump(mode="json") for a in event.attachments]),
            event.updated_at,
            event.test_mode,
        )

    async def add_payment(self, event: PaymentReceived, received_at: dt.datetime) -> None:
        """Record a payment."""
        await self.conn.execute(
            """INSERT INTO payments (tenant_id, payment_id, invoice_id, amount, currency,
                   paid_on, payer, reference, recorded_at_source, received_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (tenant_id, payment_id) DO NOTHING""",
            event.tenant_id,
            event.payment_id,
            event.invoice_id,
            event.amount,
            event.currency,
            event.paid_on,
            event.payer,
            event.reference,
            event.recorded_at_source,
            received_at,
        )

    async def add_entry(self, event: LedgerEntryPosted) -> None:
        """Record an entry written into the ERP."""
        await self.conn.execute(
            """INSERT INTO ledger_entries (tenant_id, invoice_id, entry_kind, erp_reference,
                   amount, currency, account, posted_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
            event.tenant_id,
            event.invoice_id,
            event.entry_kind.value,
            event.erp_reference,
            event.amount,
            event.currency,
            event.account,
            event.posted_at,
        )


class PgOperationsRepository:
    """``failed_jobs``, ``dead_letters``, ``actions`` and ``connections``."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def job_failed(self, event: JobFailed) -> None:
        """A job failed: its newest failure's details are kept, and its state is failed
        unless a newer retry is known (the events may arrive in any order)."""
        await self.conn.execute(
            """INSERT INTO failed_jobs (service, job_id, tenant_id, kind, job_key, invoice_id,
                   state, attempts, error, failed_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, 'failed', $7, $8, $9, $9)
               ON CONFLICT (service, job_id) DO UPDATE SET
                   attempts = CASE WHEN failed_jobs.failed_at IS NULL
                                     OR failed_jobs.failed_at < EXCLUDED.failed_at
                                   THEN EXCLUDED.attempts ELSE failed_jobs.attempts END,
                   error = CASE WHEN failed_jobs.failed_at IS NULL
                                  OR failed_jobs.failed_at < EXCLUDED.failed_at
                                THEN EXCLUDED.error ELSE failed_jobs.error END,
                   failed_at = greatest(failed_jobs.failed_at, EXCLUDED.failed_at),
                   state = CASE WHEN failed_jobs.updated_at < EXCLUDED.updated_at
                                THEN 'failed' ELSE failed_jobs.state END,
                   updated_at = greatest(failed_jobs.updated_at, EXCLUDED.updated_at)""",
            event.service,
            event.job_id,
            event.tenant_id,
            event.kind,
            event.job_key,
            event.invoice_id,
            event.attempts,
            event.error,
            event.failed_at,
        )

    async def job_retried(self, event: JobRetried) -> None:
        """A job was made pending again: its newest retry is kept, and its state is pending
        unless a newer failure is known."""
        await self.conn.execute(
            """INSERT INTO failed_jobs (service, job_id, tenant_id, kind, job_key, invoice_id,
                   state, retried_at, retried_by, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $7)
               ON CONFLICT (service, job_id) DO UPDATE SET
                   retried_by = CASE WHEN failed_jobs.retried_at IS NULL
                                       OR failed_jobs.retried_at < EXCLUDED.retried_at
                                     THEN EXCLUDED.retried_by ELSE failed_jobs.retried_by END,
                   retried_at = greatest(failed_jobs.retried_at, EXCLUDED.retried_at),
                   state = CASE WHEN failed_jobs.updated_at < EXCLUDED.updated_at
                                THEN 'pending' ELSE failed_jobs.state END,
                   updated_at = greatest(failed_jobs.updated_at, EXCLUDED.updated_at)""",
            event.service,
            event.job_id,
            event.tenant_id,
            event.kind,
            event.job_key,
            event.invoice_id,
            event.retried_at,
            event.requested_by,
        )

    async def add_dead_letter(self, letter: DeadLetterRow) -> None:
        """Record a dead letter (once per letter id)."""
        await self.conn.execute(
            """INSERT INTO dead_letters (letter_id, tenant_id, consumer, origin_topic,
                   origin_partition, origin_offset, position, event_id, event_type, invoice_id,
                   subject, reason, dead_lettered_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
               ON CONFLICT (letter_id) DO NOTHING""",
            letter.letter_id,
            letter.tenant_id,
            letter.consumer,
            letter.origin_topic,
            letter.origin_partition,
            letter.origin_offset,
            letter.position,
            letter.event_id,
            letter.event_type,
            letter.invoice_id,
            letter.subject,
            letter.reason,
            letter.dead_lettered_at,
        )

    async def action_requested(self, command: OperatorActionRequested) -> None:
        """Record an action's request (its outcome may be known already)."""
        await self.conn.execute(
            """INSERT INTO actions (action_id, tenant_id, service, action, target_id,
                   requested_by, requested_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (action_id) DO UPDATE SET requested_by = EXCLUDED.requested_by,
                   requested_at = EXCLUDED.requested_at""",
            command.action_id,
            command.tenant_id,
            command.service,
            command.action.value,
            command.target_id,
            command.requested_by,
            command.requested_at,
        )

    async def action_completed(self, outcome: OperatorActionCompleted) -> None:
        """Record an action's outcome (its request may not be known yet)."""
        await self.conn.execute(
            """INSERT INTO actions (action_id, tenant_id, service, action, target_id, outcome,
                   message, completed_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (action_id) DO UPDATE SET outcome = EXCLUDED.outcome,
                   message = EXCLUDED.message, completed_at = EXCLUDED.completed_at""",
            outcome.action_id,
            outcome.tenant_id,
            outcome.service,
            outcome.action.value,
            outcome.target_id,
            outcome.outcome.value,
            outcome.message,
            outcome.completed_at,
        )

    async def connection_updated(self, event: ConnectionUpdated) -> None:
        """Keep the connection's newest revision."""
        await self.conn.execute(
            """INSERT INTO connections (tenant_id, connection_id, system, mode, revision,
                   last_poll_at, last_success_at, last_error, next_poll_at, removed, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
               ON CONFLICT (tenant_id, connection_id) DO UPDATE SET system = EXCLUDED.system,
                   mode = EXCLUDED.mode, revision = EXCLUDED.revision,
                   last_poll_at = EXCLUDED.last_poll_at,
                   last_success_at = EXCLUDED.last_success_at,
                   last_error = EXCLUDED.last_error, next_poll_at = EXCLUDED.next_poll_at,
                   removed = EXCLUDED.removed, updated_at = EXCLUDED.updated_at
               WHERE connections.revision < EXCLUDED.revision""",
            event.tenant_id,
            event.connection_id,
            event.system.value,
            event.mode.value,
            event.revision,
            event.last_poll_at,
            event.last_success_at,
            event.last_error,
            event.next_poll_at,
            event.removed,
            event.updated_at,
        )


# What a rebuild empties: the read model and what the runtime derived from the topics
# (never the tokens and sessions, the outbox or the migrations).
READ_MODEL_TABLES = (
    "steps",
    "invoices",
    "invoice_documents",
    "transfers",
    "deliveries",
    "suggestions",
    "suggestion_decisions",
    "holds",
    "payments",
    "ledger_entries",
    "failed_jobs",
    "dead_letters",
    "actions",
    "connections",
    "tenant_profiles",
    "inbox",
)


async def clear_read_model(conn: Conn) -> None:
    """Empty the read model, so the topics can be read into it again from the beginning."""
    await conn.execute(f"TRUNCATE {', '.join(READ_MODEL_TABLES)}")
