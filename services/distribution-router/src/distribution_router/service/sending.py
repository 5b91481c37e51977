"""The send-invoice job: send a routed invoice exactly once, falling back channel by channel.

The job runs under a lease, with no transaction open across a partner call (`SendStore`):
it reads, calls the partners, and then records the outcome in one short transaction.

Exactly once rests on the attempt log (`delivery_attempts`): each attempt's row, keyed by
``<invoice id>:<channel>:<attempt of that channel>``, is committed on its own before the
adapter is called. Success is recorded in the outcome's transaction with the archive entry
and `invoice.distributed`; if that transaction is lost after the partner accepted the send,
the row stays `sending`, and the next run asks the partner (`Sender.lookup`) before anything
else. A partner that cannot
be asked (plain SMTP) is never sent to again: the attempt becomes `uncertain`, shown to the
user and announced with `invoice.delivery_uncertain`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nordflow_schemas.events import (
    Channel,
    ChannelFallback,
    ChannelSuggested,
    EventBody,
    InvoiceDeliveryFailed,
    InvoiceDeliveryUncertain,
    InvoiceDistributed,
    ValidationIssue,
)
from nordflow_schemas.invoice import Invoice

from ..domain.channels import (
    Reachability,
    Route,
    cheaper_channels,
    public_customer_key,
    public_recipient,
)
from ..domain.costs import COST_CURRENCY, send_cost
from ..domain.deliveries import Attempt, ClaimedDelivery, NewSuggestion, SentDelivery
from ..domain.documents import Rendered
from ..domain.sending import (
    MAX_ATTEMPTS,
    Attachment,
    Outgoing,
    PermanentSendError,
    Receipt,
    TransientSendError,
    idempotency_key,
)
from . import archive, holds
from .ports import Partners, Repositories, Sender, SendStore
from .routing import reachability, render

log = logging.getLogger(__name__)

__all__ = ["MAX_ATTEMPTS", "NoDeliveryError", "SendOutcome", "idempotency_key", "send_invoice"]


class NoDeliveryError(Exception):
    """The job names an invoice that has no delivery, or an attempt outside its route: it
    can never succeed (the job entrypoint fails it for good)."""


@dataclass
class SendOutcome:
    """What one run of the job did: its result (kept on the job) and the events it wrote
    with its outcome, each with the invoice number as subject."""

    result: dict[str, Any]
    subject: str = ""
    events: list[EventBody] = field(default_factory=list)


class DeliveryFinishedError(Exception):
    """Another run recorded the delivery's outcome first (this run's lease ran out): this
    run's outcome is rolled back, and its job's next run finds the delivery finished."""


async def send_invoice(
    store: SendStore,
    partners: Partners,
    *,
    tenant_id: str,
    invoice_id: str,
    clock: Callable[[], dt.datetime],
) -> SendOutcome:
    """One run of the job: reads, the partners' calls, then the outcome's transaction."""
    claimed = await store.reads.deliveries.get(tenant_id, invoice_id)
    if claimed is None:
        raise NoDeliveryError(f"no delivery recorded for invoice {invoice_id}")
    if claimed.status != "scheduled":
        return SendOutcome({"status": claimed.status})  # finished by an earlier run
    return await _Run(store, partners, tenant_id, claimed, clock).execute()


class _Run:
    """One run of the job for one delivery."""

    def __init__(
        self,
        store: SendStore,
        partners: Partners,
        tenant_id: str,
        claimed: ClaimedDelivery,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.store = store
        self.repos = store.reads  # reads, and the attempt log (it commits on its own)
        self.partners = partners
        self.tenant_id = tenant_id
        self.claimed = claimed
        self.clock = clock
        self.invoice: Invoice = claimed.invoice
        self.routes = claimed.routes
        self.fallbacks: list[ChannelFallback] = []
        self.events: list[EventBody] = []
        self._attachments: tuple[Attachment, ...] | None = None

    @property
    def invoice_id(self) -> str:
        return self.invoice.invoice_id

    def _outcome(self, result: dict[str, Any]) -> SendOutcome:
        return SendOutcome(result, self.invoice.number, self.events)

    async def _announce(self, repos: Repositories, *events: EventBody) -> None:
        """Write events in the outcome's transaction (and keep them for the result)."""
        for event in events:
            await repos.outbox.add(event, subject=self.invoice.number)
        self.events.extend(events)

    async def execute(self) -> SendOutcome:
        attempts = await self.repos.attempts.of_invoice(self.invoice_id)
        for a in attempts:
            if a.state == "fallback":
                self.fallbacks.append(
                    ChannelFallback(channel=a.channel, reason=a.error or "refused")
                )
        # First settle every attempt of unknown outcome: never send before knowing.
        lost: dict[Channel, int] = {a.channel: a.attempt for a in attempts if a.state == "lost"}
        for a in attempts:
            if a.state != "sending":
                continue
            route = self._route(a.channel)
            sender = self._sender(route.channel)
            if not sender.can_lookup:
                reason = "the send may have reached the recipient and the channel cannot be asked"
                await self.repos.attempts.finish(a.idempotency_key, "uncertain", reason)
                return await self._uncertain(route, a.idempotency_key, reason)
            receipt = await sender.lookup(a.idempotency_key)
            if receipt is not None:
                rendered = await self._render(route)
                return await self._sent(route, a.idempotency_key, receipt, rendered)
            await self.repos.attempts.finish(
                a.idempotency_key, "lost", "the partner has no record of this attempt"
            )
            lost[a.channel] = a.attempt
        # An outcome already decided stays decided: a rerun after the job's transaction was
        # lost must neither send an uncertain e-mail again nor go past a final refusal.
        for a in attempts:
            if a.state == "uncertain":
                reason = a.error or "the send may have reached the recipient"
                return await self._uncertain(self._route(a.channel), a.idempotency_key, reason)
            if a.state == "rejected":
                issue = ValidationIssue(
                    field=f"delivery.{a.channel.value}",
                    rule="NF-SEND-REFUSED",
                    message=a.error or "refused",
                )
                return await self._failed(self._route(a.channel), (issue,))
        done = {a.channel for a in attempts if a.state == "fallback"}
        counts = _last_attempts(attempts)
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

    async def _try(self, route: Route, attempt: int) -> SendOutcome | None:
        """Send over one channel; None means: fall back to the next one."""
        sender = self.partners.senders.get(route.channel)
        key = idempotency_key(self.invoice_id, route.channel, attempt)
        log_args = {"tenant_id": self.tenant_id, "invoice_id": self.invoice_id}
        if sender is None:
            reason = f"no {route.channel.value} adapter is configured"
            await self._begin(key, route, attempt)
            await self.repos.attempts.finish(key, "fallback", reason)
            self.fallbacks.append(ChannelFallback(channel=route.channel, reason=reason))
            return None
        rendered = await self._render(route)
        if rendered.errors:
            return await self._failed(route, rendered.errors)
        await self._begin(key, route, attempt)
        outgoing = Outgoing(
            idempotency_key=key,
            tenant_id=self.tenant_id,
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
                await self.repos.attempts.finish(key, "fallback", str(exc))
                self.fallbacks.append(ChannelFallback(channel=route.channel, reason=str(exc)))
                log.warning(
                    "%s refused the invoice; trying the next channel",
                    route.channel.value,
                    extra={"fields": {**log_args, "reason": str(exc)}},
                )
                return None
            await self.repos.attempts.finish(key, "rejected", str(exc))
            issue = ValidationIssue(
                field=f"delivery.{route.channel.value}", rule="NF-SEND-REFUSED", message=str(exc)
            )
            return await self._failed(route, (issue,))
        except TransientSendError as exc:
            if exc.maybe_delivered:
                if not sender.can_lookup:
                    reason = f"no answer after the whole message was sent: {exc}"
                    await self.repos.attempts.finish(key, "uncertain", reason)
                    return await self._uncertain(route, key, reason)
                raise  # still `sending`: the retry looks it up first
            # The partner did not take it: the next run sends again, with a new key. After
            # the job's last attempt the job fails (`jobs list --state failed`), the delivery
            # stays scheduled, and `distribution-router jobs retry` resumes it once the
            # partner or its credentials are fixed.
            await self.repos.attempts.finish(key, "failed", str(exc))
            raise
        # Any other exception leaves the attempt `sending` (outcome unknown) and is retried.
        return await self._sent(route, key, receipt, rendered)

    async def _begin(self, key: str, route: Route, attempt: int) -> None:
        await self.repos.attempts.begin(
            key=key,
            tenant_id=self.tenant_id,
            invoice_id=self.invoice_id,
            route=route,
            attempt=attempt,
        )

    def _route(self, channel: Channel) -> Route:
        for route in self.routes:
            if route.channel is channel:
                return route
        raise NoDeliveryError(f"an attempt on {channel.value} is not in the invoice's route")

    def _sender(self, channel: Channel) -> Sender:
        sender = self.partners.senders.get(channel)
        if sender is None:
            # Retried: the outcome of that attempt must be settled before anything else.
            raise LookupError(f"no {channel.value} adapter to settle an earlier attempt with")
        return sender

    async def _files(self) -> tuple[Attachment, ...]:
        if self._attachments is None:
            self._attachments = await holds.attachments(self.repos.holds, self.invoice_id)
        return self._attachments

    async def _options(self, channel: Channel) -> dict[str, str]:
        """The tenant's options for the channel; unset ones are the adapter's defaults."""
        if channel is not Channel.PAPER:
            return {}
        return (await self.repos.paper.get(self.tenant_id)).channel_options()

    async def _render(self, route: Route) -> Rendered:
        rendered = await render(
            self.partners,
            route,
            self.invoice,
            await self._files(),
            validated=self.claimed.document_sha256,
        )
        for skipped in rendered.not_printed:
            log.warning(
                "attachment not printed: %s",
                skipped.reason,
                extra={
                    "fields": {
                        "tenant_id": self.tenant_id,
                        "invoice_id": self.invoice_id,
                        "content_type": skipped.content_type,
                    }
                },
            )
        return rendered

    async def _sent(
        self, route: Route, key: str, receipt: Receipt, rendered: Rendered
    ) -> SendOutcome:
        """Archive, record and announce an accepted send, all in the outcome's transaction."""
        now = self.clock()
        cost = send_cost(receipt.cost, route.channel, self.partners.unit_prices)
        # The cheaper-channel lookups (SMP, bank registry) are network calls: made before the
        # archive takes the tenant's sequence lock, so they never hold up the tenant's sends.
        reach: Reachability | None = None
        if route.channel in (Channel.EMAIL, Channel.PAPER):
            try:
                reach = await reachability(
                    self.invoice, self.partners.lookup, self.partners.registry
                )
            except Exception as exc:  # the next send checks again
                log.warning("cheaper-channel check failed: %s", exc)
        async with self.store.transaction() as repos:
            sequence = await archive.archive_document(
                repos.archive,
                tenant_id=self.tenant_id,
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
            await repos.attempts.mark_sent(key, now=now, reference=receipt.reference, cost=cost)
            sent = SentDelivery(
                route=route,
                now=now,
                reference=receipt.reference,
                cost=cost,
                archive_sequence=sequence,
                sha256=rendered.sha256,
                attachments=[a.as_json() for a in rendered.attachments],
            )
            if not await repos.deliveries.mark_sent(self.invoice_id, sent):
                raise DeliveryFinishedError(
                    f"invoice {self.invoice_id} was finished by another run"
                )
            await self._announce(
                repos,
                InvoiceDistributed(
                    tenant_id=self.tenant_id,
                    invoice_id=self.invoice_id,
                    number=self.invoice.number,
                    channel=route.channel,
                    document_format=route.document_format,
                    recipient=public_recipient(route),
                    distributed_at=now,
                    partner_reference=receipt.reference,
                    archive_sequence=sequence,
                    fallbacks=tuple(self.fallbacks),
                    cost=cost,
                    cost_currency=COST_CURRENCY,
                ),
            )
            try:
                cheaper = self._cheaper(route, reach)
                if cheaper:  # a savepoint only when there is something to record
                    async with repos.savepoint():  # a failure never undoes the send
                        suggested = await self._suggest(repos, route, now, cheaper)
                        await self._announce(repos, *suggested)
            except Exception as exc:  # the next send checks again
                log.warning("recording a cheaper-channel suggestion failed: %s", exc)
        return self._outcome(
            {
                "status": "sent",
                "channel": route.channel.value,
                "reference": receipt.reference,
                "archive_sequence": sequence,
            }
        )

    def _cheaper(self, route: Route, reach: Reachability | None) -> list[Route]:
        """The cheaper channels the recipient can now take, but for those that refused."""
        if reach is None:
            return []
        refused = {f.channel for f in self.fallbacks}
        return [
            cheaper
            for cheaper in cheaper_channels(route.channel, reach, self.invoice)
            if cheaper.channel not in refused
        ]

    async def _suggest(
        self, repos: Repositories, route: Route, now: dt.datetime, cheaper_routes: list[Route]
    ) -> list[ChannelSuggested]:
        """Record, once, each cheaper channel; the events of those recorded now."""
        customer = self.claimed.customer_key
        out: list[ChannelSuggested] = []
        for cheaper in cheaper_routes:
            suggestion_id = await repos.suggestions.record_once(
                NewSuggestion(
                    tenant_id=self.tenant_id,
                    customer_key=customer,
                    invoice_id=self.invoice_id,
                    current=route.channel,
                    suggested=cheaper.channel,
                    recipient=public_recipient(cheaper),
                    now=now,
                    snooze=self.partners.suggestion_snooze,
                )
            )
            if suggestion_id is None:
                continue
            out.append(
                ChannelSuggested(
                    tenant_id=self.tenant_id,
                    invoice_id=self.invoice_id,
                    suggestion_id=suggestion_id,
                    customer_key=public_customer_key(customer, self.invoice.buyer),
                    current_channel=route.channel,
                    suggested_channel=cheaper.channel,
                    recipient=public_recipient(cheaper),
                    suggested_at=now,
                )
            )
        return out

    async def _uncertain(self, route: Route, key: str, reason: str) -> SendOutcome:
        now = self.clock()
        await self._finish(
            "uncertain",
            route,
            now,
            None,
            InvoiceDeliveryUncertain(
                tenant_id=self.tenant_id,
                invoice_id=self.invoice_id,
                number=self.invoice.number,
                channel=route.channel,
                document_format=route.document_format,
                recipient=public_recipient(route),
                reference=key,
                reason=reason,
                detected_at=now,
            ),
        )
        return self._outcome(
            {"status": "uncertain", "channel": route.channel.value, "reference": key}
        )

    async def _failed(self, route: Route, errors: tuple[ValidationIssue, ...]) -> SendOutcome:
        now = self.clock()
        await self._finish(
            "failed",
            route,
            now,
            [e.model_dump() for e in errors] if errors else None,
            InvoiceDeliveryFailed(
                tenant_id=self.tenant_id,
                invoice_id=self.invoice_id,
                number=self.invoice.number,
                channel=route.channel,
                document_format=route.document_format,
                errors=errors,
                failed_at=now,
            ),
        )
        return self._outcome({"status": "failed", "channel": route.channel.value})

    async def _finish(
        self,
        status: str,
        route: Route,
        now: dt.datetime,
        errors: list[dict[str, str]] | None,
        event: EventBody,
    ) -> None:
        """Record a final outcome other than sent, with its event, in one transaction."""
        async with self.store.transaction() as repos:
            if not await repos.deliveries.finish(self.invoice_id, status, route, now, errors):
                raise DeliveryFinishedError(
                    f"invoice {self.invoice_id} was finished by another run"
                )
            await self._announce(repos, event)


def _last_attempts(attempts: list[Attempt]) -> dict[Channel, int]:
    """The highest attempt number of each channel."""
    counts: dict[Channel, int] = {}
    for a in attempts:
        counts[a.channel] = max(counts.get(a.channel, 0), a.attempt)
    return counts
