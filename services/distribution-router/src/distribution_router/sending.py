"""The send-invoice job: send a routed invoice exactly once, falling back channel by channel.

Exactly once rests on the attempt log (`delivery_attempts`): each attempt's row, keyed by
``<invoice id>:<channel>:<attempt of that channel>``, is committed on its own connection
before the adapter is called, so it survives a rollback of the job's transaction. Success
is recorded in the job's transaction with the archive entry and `invoice.distributed`; if
that transaction is lost after the partner accepted the send, the row stays `sending`, and
the next run asks the partner (`Sender.lookup`) before anything else. A partner that cannot
be asked (plain SMTP) is never sent to again: the attempt becomes `uncertain`, shown to the
user and announced with `invoice.delivery_uncertain`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import asyncpg
from nordflow_documents.registry import RendererRegistry
from nordflow_runtime.consumer import Context, PermanentError
from nordflow_runtime.jobs import Job
from nordflow_schemas.events import (
    Channel,
    ChannelFallback,
    ChannelSuggested,
    InvoiceDeliveryFailed,
    InvoiceDeliveryUncertain,
    InvoiceDistributed,
    ValidationIssue,
)
from nordflow_schemas.invoice import Invoice

from .channels.base import (
    Attachment,
    Outgoing,
    PermanentSendError,
    Receipt,
    Sender,
    TransientSendError,
)
from .domain import (
    DEFAULT_UNIT_PRICES,
    Reachability,
    Route,
    cheaper_channels,
    public_recipient,
)
from .service import (
    SEND_INVOICE,
    CapabilityLookup,
    ConsumerRegistry,
    DocumentValidator,
    Rendered,
    paper_options,
    reachability,
    render_document,
    routes_from,
)

log = logging.getLogger(__name__)

__all__ = ["SEND_INVOICE", "PgAttemptLog", "SendInvoice", "idempotency_key"]

# Runs of a send job before it fails (with the default backoff of 2 s doubling to 600 s,
# about three hours of a partner's outage); `jobs retry` resumes a failed one.
MAX_ATTEMPTS = 24


def idempotency_key(invoice_id: str, channel: Channel, attempt: int) -> str:
    """The key of one attempt: the partner dedupes on it, and lookups ask for it."""
    return f"{invoice_id}:{channel.value}:{attempt}"


class AttemptLog(Protocol):
    """Attempt rows written outside the job's transaction (committed at once)."""

    async def begin(
        self, *, key: str, tenant_id: str, invoice_id: str, route: Route, attempt: int
    ) -> None:
        """Record the intent to send, before the partner is called."""
        ...

    async def finish(self, key: str, state: str, error: str | None = None) -> None:
        """Record an outcome that must survive the job's rollback (failure, fallback, …)."""
        ...


class PgAttemptLog:
    """`delivery_attempts` rows on a separate pooled connection, so each commits on its own.

    It never touches `deliveries`, whose row the job's transaction holds locked.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def begin(
        self, *, key: str, tenant_id: str, invoice_id: str, route: Route, attempt: int
    ) -> None:
        """Insert the attempt in state `sending` (a lost one goes back to `sending`)."""
        began = await self.pool.fetchval(
            "INSERT INTO delivery_attempts (idempotency_key, tenant_id, invoice_id, channel, "
            "attempt, recipient) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (idempotency_key) DO UPDATE SET state = 'sending', error = NULL, "
            "finished_at = NULL WHERE delivery_attempts.state = 'lost' RETURNING 1",
            key,
            tenant_id,
            invoice_id,
            route.channel.value,
            attempt,
            public_recipient(route),
        )
        if began is None:  # never send under a key whose outcome is already recorded
            raise RuntimeError(f"attempt {key} exists and is not lost")

    async def finish(self, key: str, state: str, error: str | None = None) -> None:
        """Set the attempt's final state."""
        await self.pool.execute(
            "UPDATE delivery_attempts SET state = $2, error = $3, finished_at = now() "
            "WHERE idempotency_key = $1",
            key,
            state,
            error[:2000] if error else None,
        )


class ArchiveDocument(Protocol):
    """archive.archive_document: store a sent document, return its per-tenant sequence."""

    async def __call__(
        self,
        conn: asyncpg.Connection,
        *,
        tenant_id: str,
        invoice_id: str,
        source_document_number: str | None,
        number: str,
        channel: Channel,
        document_format: str,
        content: bytes,
        content_type: str,
        sent_at: dt.datetime,
        issue_date: dt.date,
    ) -> int:
        """The archive sequence number."""
        ...


class HoldAttachments(Protocol):
    """holds.attachments: the files added to an invoice while it was held."""

    async def __call__(self, conn: asyncpg.Connection, invoice_id: str) -> tuple[Attachment, ...]:
        """The attachments, in the order added."""
        ...


@dataclass
class SendInvoice:
    """The `send-invoice` job handler; one instance per process."""

    senders: Mapping[Channel, Sender]
    renderers: RendererRegistry
    validator: DocumentValidator
    attempts: AttemptLog
    archive: ArchiveDocument
    attachments: HoldAttachments
    lookup: CapabilityLookup | None = None
    registry: ConsumerRegistry | None = None
    unit_prices: Mapping[Channel, Decimal] = field(default_factory=lambda: DEFAULT_UNIT_PRICES)
    suggestion_snooze: dt.timedelta = dt.timedelta(days=90)
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    async def __call__(self, ctx: Context[None], job: Job) -> dict[str, Any]:
        """One run of the job, inside its transaction (row of the job locked)."""
        row = await ctx.conn.fetchrow(
            "SELECT * FROM deliveries WHERE invoice_id = $1 AND tenant_id = $2 FOR UPDATE",
            job.payload["invoice_id"],
            job.tenant_id,
        )
        if row is None:
            raise PermanentError(f"no delivery recorded for invoice {job.payload['invoice_id']}")
        if row["status"] != "scheduled":
            return {"status": row["status"]}  # finished by an earlier run
        run = _Run(self, ctx, job, row)
        return await run.execute()


class _Run:
    """One run of the job for one delivery."""

    def __init__(
        self, job: SendInvoice, ctx: Context[None], claimed: Job, row: asyncpg.Record
    ) -> None:
        self.job = job
        self.ctx = ctx
        self.claimed = claimed
        self.row = row
        self.invoice = Invoice.model_validate_json(row["invoice"])
        self.routes = routes_from(row["route"])
        self.fallbacks: list[ChannelFallback] = []
        self._attachments: tuple[Attachment, ...] | None = None

    @property
    def invoice_id(self) -> str:
        return self.invoice.invoice_id

    async def execute(self) -> dict[str, Any]:
        attempts = await self.ctx.conn.fetch(
            "SELECT * FROM delivery_attempts WHERE invoice_id = $1 ORDER BY started_at, attempt",
            self.invoice_id,
        )
        for a in attempts:
            if a["state"] == "fallback":
                self.fallbacks.append(
                    ChannelFallback(channel=Channel(a["channel"]), reason=a["error"] or "refused")
                )
        # First settle every attempt of unknown outcome: never send before knowing.
        lost: dict[Channel, int] = {
            Channel(a["channel"]): a["attempt"] for a in attempts if a["state"] == "lost"
        }
        for a in attempts:
            if a["state"] != "sending":
                continue
            route = self._route(Channel(a["channel"]))
            sender = self._sender(route.channel)
            if not sender.can_lookup:
                reason = "the send may have reached the recipient and the channel cannot be asked"
                await self.job.attempts.finish(a["idempotency_key"], "uncertain", reason)
                return await self._uncertain(route, a["idempotency_key"], reason)
            receipt = await sender.lookup(a["idempotency_key"])
            if receipt is not None:
                rendered = await self._render(route)
                return await self._sent(route, a["idempotency_key"], receipt, rendered)
            await self.job.attempts.finish(
                a["idempotency_key"], "lost", "the partner has no record of this attempt"
            )
            lost[Channel(a["channel"])] = a["attempt"]
        # An outcome already decided stays decided: a rerun after the job's transaction was
        # lost must neither send an uncertain e-mail again nor go past a final refusal.
        for a in attempts:
            if a["state"] == "uncertain":
                reason = a["error"] or "the send may have reached the recipient"
                route = self._route(Channel(a["channel"]))
                return await self._uncertain(route, a["idempotency_key"], reason)
            if a["state"] == "rejected":
                issue = ValidationIssue(
                    field=f"delivery.{a['channel']}",
                    rule="NF-SEND-REFUSED",
                    message=a["error"] or "refused",
                )
                return await self._failed(self._route(Channel(a["channel"])), (issue,))
        done = {Channel(a["channel"]) for a in attempts if a["state"] == "fallback"}
        counts: dict[Channel, int] = {}
        for a in attempts:
            channel = Channel(a["channel"])
            counts[channel] = max(counts.get(channel, 0), a["attempt"])
        for route in self.routes:
            if route.channel in done:
                continue
            # A lost attempt is sent again under its own key: should the partner have taken
            # it after all (its listing lagging behind), its idempotency check answers with
            # that first send instead of making a second.
            last = counts.get(route.channel, 0)
            attempt = last if lost.get(route.channel) == last else last + 1
            outcome = await self._try(route, attempt)
            if outcome is not None:
                return outcome
        return await self._failed(
            self.routes[-1],
            tuple(
                ValidationIssue(
                    field=f"delivery.{f.channel.value}", rule="NF-NO-CHANNEL", message=f.reason
                )
                for f in self.fallbacks
            )
            or (
                ValidationIssue(
                    field="delivery", rule="NF-NO-CHANNEL", message="no channel took the invoice"
                ),
            ),
        )

    async def _try(self, route: Route, attempt: int) -> dict[str, Any] | None:
        """Send over one channel; None means: fall back to the next one."""
        sender = self.job.senders.get(route.channel)
        key = idempotency_key(self.invoice_id, route.channel, attempt)
        log_args = {"tenant_id": self.claimed.tenant_id, "invoice_id": self.invoice_id}
        if sender is None:
            reason = f"no {route.channel.value} adapter is configured"
            await self._begin(key, route, attempt)
            await self.job.attempts.finish(key, "fallback", reason)
            self.fallbacks.append(ChannelFallback(channel=route.channel, reason=reason))
            return None
        rendered = await self._render(route)
        if rendered.errors:
            return await self._failed(route, rendered.errors)
        await self._begin(key, route, attempt)
        outgoing = Outgoing(
            idempotency_key=key,
            tenant_id=self.claimed.tenant_id,
            invoice=self.invoice,
            recipient=route.recipient,
            document=rendered.content,
            content_type=rendered.content_type,
            filename=rendered.filename,
            # Only e-mail carries the files beside the document; the others have them inside.
            attachments=await self._files() if route.channel is Channel.EMAIL else (),
            options=await self._options(route.channel),
        )
        try:
            receipt = await sender.send(outgoing)
        except PermanentSendError as exc:
            if exc.fallback:
                await self.job.attempts.finish(key, "fallback", str(exc))
                self.fallbacks.append(ChannelFallback(channel=route.channel, reason=str(exc)))
                log.warning(
                    "%s refused the invoice; trying the next channel",
                    route.channel.value,
                    extra={"fields": {**log_args, "reason": str(exc)}},
                )
                return None
            await self.job.attempts.finish(key, "rejected", str(exc))
            issue = ValidationIssue(
                field=f"delivery.{route.channel.value}", rule="NF-SEND-REFUSED", message=str(exc)
            )
            return await self._failed(route, (issue,))
        except TransientSendError as exc:
            if exc.maybe_delivered:
                if not sender.can_lookup:
                    reason = f"no answer after the whole message was sent: {exc}"
                    await self.job.attempts.finish(key, "uncertain", reason)
                    return await self._uncertain(route, key, reason)
                raise  # still `sending`: the retry looks it up first
            # The partner did not take it: the next run sends again, with a new key. After
            # the job's last attempt the job fails (`jobs list --state failed`), the delivery
            # stays scheduled, and `distribution-router jobs retry` resumes it once the
            # partner or its credentials are fixed.
            await self.job.attempts.finish(key, "failed", str(exc))
            raise
        # Any other exception leaves the attempt `sending` (outcome unknown) and is retried.
        return await self._sent(route, key, receipt, rendered)

    async def _begin(self, key: str, route: Route, attempt: int) -> None:
        await self.job.attempts.begin(
            key=key,
            tenant_id=self.claimed.tenant_id,
            invoice_id=self.invoice_id,
            route=route,
            attempt=attempt,
        )

    def _route(self, channel: Channel) -> Route:
        for route in self.routes:
            if route.channel is channel:
                return route
        raise PermanentError(f"an attempt on {channel.value} is not in the invoice's route")

    def _sender(self, channel: Channel) -> Sender:
        sender = self.job.senders.get(channel)
        if sender is None:
            # Retried: the outcome of that attempt must be settled before anything else.
            raise LookupError(f"no {channel.value} adapter to settle an earlier attempt with")
        return sender

    async def _files(self) -> tuple[Attachment, ...]:
        if self._attachments is None:
            self._attachments = await self.job.attachments(self.ctx.conn, self.invoice_id)
        return self._attachments

    async def _options(self, channel: Channel) -> dict[str, str]:
        """The tenant's options for the channel; unset ones are the adapter's defaults."""
        if channel is not Channel.PAPER:
            return {}
        return (await paper_options(self.ctx.conn, self.claimed.tenant_id)).channel_options()

    async def _render(self, route: Route) -> Rendered:
        rendered = render_document(
            route,
            self.invoice,
            renderers=self.job.renderers,
            validator=self.job.validator,
            attachments=await self._files(),
        )
        for skipped in rendered.not_printed:
            log.warning(
                "attachment not printed: %s",
                skipped.reason,
                extra={
                    "fields": {
                        "tenant_id": self.claimed.tenant_id,
                        "invoice_id": self.invoice_id,
                        "content_type": skipped.content_type,
                    }
                },
            )
        return rendered

    async def _sent(
        self, route: Route, key: str, receipt: Receipt, rendered: Rendered
    ) -> dict[str, Any]:
        """Archive, record and announce an accepted send, all in the job's transaction."""
        now = self.job.clock()
        conn = self.ctx.conn
        cost = receipt.cost if receipt.cost is not None else self.job.unit_prices[route.channel]
        # The cheaper-channel lookups (SMP, bank registry) are network calls: made before the
        # archive takes the tenant's sequence lock, so they never hold up the tenant's sends.
        reach: Reachability | None = None
        if route.channel in (Channel.EMAIL, Channel.PAPER):
            try:
                reach = await reachability(self.invoice, self.job.lookup, self.job.registry)
            except Exception as exc:  # the next send checks again
                log.warning("cheaper-channel check failed: %s", exc)
        sequence = await self.job.archive(
            conn,
            tenant_id=self.claimed.tenant_id,
            invoice_id=self.invoice_id,
            source_document_number=self.invoice.source.document_number,
            number=self.invoice.number,
            channel=route.channel,
            document_format=route.document_format,
            content=rendered.content,
            content_type=rendered.content_type,
            sent_at=now,
            issue_date=self.invoice.issue_date,
        )
        await conn.execute(
            "UPDATE delivery_attempts SET state = 'sent', finished_at = $2, "
            "partner_reference = $3, cost = $4, error = NULL WHERE idempotency_key = $1",
            key,
            now,
            receipt.reference,
            cost,
        )
        travelled = [a.as_json() for a in rendered.attachments]
        await conn.execute(
            "UPDATE deliveries SET status = 'sent', channel = $2, recipient = $3, "
            "document_format = $4, completed_at = $5, partner_reference = $6, cost = $7, "
            "archive_sequence = $8, document_sha256 = $9, attachments = $10::jsonb "
            "WHERE invoice_id = $1",
            self.invoice_id,
            route.channel.value,
            public_recipient(route),
            route.document_format,
            now,
            receipt.reference,
            cost,
            sequence,
            rendered.sha256,
            json.dumps(travelled) if travelled else None,
        )
        await self.ctx.emit(
            InvoiceDistributed(
                tenant_id=self.claimed.tenant_id,
                invoice_id=self.invoice_id,
                number=self.invoice.number,
                channel=route.channel,
                document_format=route.document_format,
                recipient=public_recipient(route),
                distributed_at=now,
                partner_reference=receipt.reference,
                archive_sequence=sequence,
                fallbacks=tuple(self.fallbacks),
            ),
            subject=self.invoice.number,
        )
        if reach is not None:
            try:
                async with conn.transaction():  # a savepoint: a failure never undoes the send
                    await self._suggest(route, now, reach)
            except Exception as exc:  # the next send checks again
                log.warning("recording a cheaper-channel suggestion failed: %s", exc)
        return {
            "status": "sent",
            "channel": route.channel.value,
            "reference": receipt.reference,
            "archive_sequence": sequence,
        }

    async def _suggest(self, route: Route, now: dt.datetime, reach: Reachability) -> None:
        """Record and announce, once, a cheaper channel the recipient can now take."""
        refused = {f.channel for f in self.fallbacks}
        customer = self.row["customer_key"]
        for cheaper in cheaper_channels(route.channel, reach, self.invoice):
            if cheaper.channel in refused:
                continue
            suggestion_id = await self.ctx.conn.fetchval(
                "INSERT INTO channel_suggestions (tenant_id, customer_key, invoice_id, "
                "current_channel, suggested_channel, recipient, suggested_at) "
                "SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS ("
                "  SELECT 1 FROM channel_suggestions WHERE tenant_id = $1 AND customer_key = $2 "
                "  AND suggested_channel = $5 AND (state = 'open' OR (state = 'dismissed' "
                "  AND decided_at > $7::timestamptz - $8::interval))) "
                "ON CONFLICT (tenant_id, customer_key, suggested_channel) WHERE state = 'open' "
                "DO NOTHING RETURNING suggestion_id",
                self.claimed.tenant_id,
                customer,
                self.invoice_id,
                route.channel.value,
                cheaper.channel.value,
                public_recipient(cheaper),
                now,
                self.job.suggestion_snooze,
            )
            if suggestion_id is None:
                continue
            await self.ctx.emit(
                ChannelSuggested(
                    tenant_id=self.claimed.tenant_id,
                    invoice_id=self.invoice_id,
                    suggestion_id=suggestion_id,
                    customer_key=customer,
                    current_channel=route.channel,
                    suggested_channel=cheaper.channel,
                    recipient=public_recipient(cheaper),
                    suggested_at=now,
                ),
                subject=self.invoice.number,
            )

    async def _uncertain(self, route: Route, key: str, reason: str) -> dict[str, Any]:
        now = self.job.clock()
        await self._finish("uncertain", route, now, errors=None)
        await self.ctx.emit(
            InvoiceDeliveryUncertain(
                tenant_id=self.claimed.tenant_id,
                invoice_id=self.invoice_id,
                number=self.invoice.number,
                channel=route.channel,
                document_format=route.document_format,
                recipient=public_recipient(route),
                reference=key,
                reason=reason,
                detected_at=now,
            ),
            subject=self.invoice.number,
        )
        return {"status": "uncertain", "channel": route.channel.value, "reference": key}

    async def _failed(self, route: Route, errors: tuple[ValidationIssue, ...]) -> dict[str, Any]:
        now = self.job.clock()
        await self._finish("failed", route, now, errors=errors)
        await self.ctx.emit(
            InvoiceDeliveryFailed(
                tenant_id=self.claimed.tenant_id,
                invoice_id=self.invoice_id,
                number=self.invoice.number,
                channel=route.channel,
                document_format=route.document_format,
                errors=errors,
                failed_at=now,
            ),
            subject=self.invoice.number,
        )
        return {"status": "failed", "channel": route.channel.value}

    async def _finish(
        self,
        status: str,
        route: Route,
        now: dt.datetime,
        *,
        errors: tuple[ValidationIssue, ...] | None,
    ) -> None:
        await self.ctx.conn.execute(
            "UPDATE deliveries SET status = $2, channel = $3, recipient = $4, "
            "document_format = $5, completed_at = $6, errors = $7::jsonb WHERE invoice_id = $1",
            self.invoice_id,
            status,
            route.channel.value,
            public_recipient(route),
            route.document_format,
            now,
            json.dumps([e.model_dump() for e in errors]) if errors else None,
        )
