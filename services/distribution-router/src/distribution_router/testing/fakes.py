"""Fakes of distribution-router's repositories, for fast use-case tests: each keeps its
rows in memory with the semantics of its PostgreSQL twin (no locks, no transactions)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from nordflow_runtime.testing import FakeTenantProfiles
from nordflow_schemas.events import (
    Channel,
    EventBody,
    HoldReason,
    InvoiceCreated,
    InvoiceFactoringDecided,
)

from ..domain.archive import ArchivedDocument, NewDocument
from ..domain.channels import Route, public_recipient
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
from ..domain.sending import Attachment
from ..domain.statistics import PeriodRow
from ..service.ports import Repositories, SendStore

EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class FakeDeliveryRepository:
    """Deliveries by invoice id, and the send jobs scheduled (invoice id → due time)."""

    rows: dict[str, NewDelivery] = field(default_factory=dict)
    outcome: dict[str, dict[str, object]] = field(default_factory=dict)
    scheduled: dict[str, dt.datetime] = field(default_factory=dict)

    async def exists(self, invoice_id: str) -> bool:
        return invoice_id in self.rows

    async def record(self, delivery: NewDelivery) -> None:
        self.rows[delivery.invoice_id] = delivery
        self.outcome[delivery.invoice_id] = {"status": delivery.status}

    async def schedule_send(self, tenant_id: str, invoice_id: str, due_at: dt.datetime) -> None:
        self.scheduled.setdefault(invoice_id, due_at)

    def status(self, invoice_id: str) -> str:
        """The delivery's status now."""
        return str(self.outcome[invoice_id]["status"])

    async def get(self, tenant_id: str, invoice_id: str) -> ClaimedDelivery | None:
        row = self.rows.get(invoice_id)
        if row is None or row.tenant_id != tenant_id:
            return None
        return ClaimedDelivery(
            self.status(invoice_id),
            row.customer_key,
            row.invoice,
            row.routes,
            row.document_sha256 if not row.errors else None,
        )

    async def mark_sent(self, invoice_id: str, sent: SentDelivery) -> bool:
        if self.status(invoice_id) != "scheduled":
            return False
        self.outcome[invoice_id] = {
            "status": "sent",
            "channel": sent.route.channel,
            "recipient": public_recipient(sent.route),
            "completed_at": sent.now,
            "partner_reference": sent.reference,
            "cost": sent.cost,
            "archive_sequence": sent.archive_sequence,
            "attachments": sent.attachments,
        }
        return True

    async def finish(
        self,
        invoice_id: str,
        status: str,
        route: Route,
        now: dt.datetime,
        errors: list[dict[str, str]] | None,
    ) -> bool:
        if self.status(invoice_id) != "scheduled":
            return False
        self.outcome[invoice_id] = {
            "status": status,
            "channel": route.channel,
            "recipient": public_recipient(route),
            "completed_at": now,
            "errors": errors,
        }
        return True

    async def views(
        self, tenant_id: str, invoice_id: str | None, status: str | None, limit: int
    ) -> list[DeliveryView]:
        out = []
        for row in sorted(self.rows.values(), key=lambda r: r.routed_at, reverse=True):
            now = self.outcome[row.invoice_id]
            if row.tenant_id != tenant_id or invoice_id not in (None, row.invoice_id):
                continue
            if status not in (None, now["status"]):
                continue
            out.append(
                DeliveryView(
                    invoice_id=row.invoice_id,
                    number=row.number,
                    status=str(now["status"]),
                    test_mode=row.test_mode,
                    channel=now.get("channel", row.channel),  # type: ignore[arg-type]
                    recipient=str(now.get("recipient", row.recipient)),
                    document_format=row.document_format,
                    customer_key=row.customer_key,
                    routed_at=row.routed_at,
                    due_at=row.due_at,
                    completed_at=now.get("completed_at"),  # type: ignore[arg-type]
                    routes=row.routes,
                    route_reason=row.route_reason,
                    partner_reference=now.get("partner_reference"),  # type: ignore[arg-type]
                    cost=now.get("cost"),  # type: ignore[arg-type]
                    archive_sequence=now.get("archive_sequence"),  # type: ignore[arg-type]
                    errors=[e.model_dump() for e in row.errors],
                    attachments=list(now.get("attachments") or []),  # type: ignore[call-overload]
                )
            )
        return out[:limit]

    def completed(self) -> list[tuple[NewDelivery, dict[str, object]]]:
        """Every delivery with its outcome (for the fake statistics)."""
        return [(row, self.outcome[i]) for i, row in self.rows.items()]


@dataclass
class FakeAttemptLog:
    """Attempts by key, in the order begun."""

    attempts: dict[str, Attempt] = field(default_factory=dict)

    async def begin(
        self, *, key: str, tenant_id: str, invoice_id: str, route: Route, attempt: int
    ) -> None:
        found = self.attempts.get(key)
        if found is not None and found.state != "lost":
            raise RuntimeError(f"attempt {key} exists and is not lost")
        self.attempts[key] = Attempt(
            key, route.channel, attempt, "sending", public_recipient(route), _now()
        )

    async def finish(self, key: str, state: str, error: str | None = None) -> None:
        self.attempts[key] = dataclasses.replace(
            self.attempts[key], state=state, error=error, finished_at=_now()
        )

    async def of_invoice(self, invoice_id: str) -> list[Attempt]:
        return [a for k, a in self.attempts.items() if k.startswith(f"{invoice_id}:")]

    async def mark_sent(self, key: str, *, now: dt.datetime, reference: str, cost: Decimal) -> None:
        self.attempts[key] = dataclasses.replace(
            self.attempts[key],
            state="sent",
            finished_at=now,
            partner_reference=reference,
            cost=cost,
            error=None,
        )

    def states(self, invoice_id: str) -> list[tuple[str, str]]:
        """(channel, state) of each attempt of the invoice."""
        return [
            (a.channel.value, a.state)
            for k, a in self.attempts.items()
            if k.startswith(f"{invoice_id}:")
        ]


@dataclass
class FakeArchiveRepository:
    """Documents per tenant with gapless counters."""

    documents: dict[tuple[str, int], tuple[ArchivedDocument, bytes]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    start_months: dict[str, int] = field(default_factory=dict)

    async def lock_counter(self, tenant_id: str) -> int | None:
        self.counters.setdefault(tenant_id, 0)
        return self.start_months.get(tenant_id)

    async def store_once(self, tenant_id: str, document: NewDocument, content: bytes) -> int:
        for (tenant, sequence), (d, _) in self.documents.items():
            same = (d.invoice_id, d.channel, d.sha256)
            if tenant == tenant_id and same == (
                document.invoice_id,
                document.channel,
                document.sha256,
            ):
                return sequence
        self.counters[tenant_id] += 1
        sequence = self.counters[tenant_id]
        entry = ArchivedDocument(
            sequence=sequence,
            size=len(content),
            archived_at=document.sent_at,
            **dataclasses.asdict(document),
        )
        self.documents[(tenant_id, sequence)] = (entry, content)
        return sequence

    async def fiscal_year_start_month(self, tenant_id: str) -> int | None:
        return self.start_months.get(tenant_id)

    async def set_fiscal_year_start_month(self, tenant_id: str, month: int) -> None:
        self.start_months[tenant_id] = month

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
        found = [
            d
            for (tenant, sequence), (d, _) in sorted(self.documents.items())
            if tenant == tenant_id
            and sequence > after
            and invoice_id in (None, d.invoice_id)
            and source_document_number in (None, d.source_document_number)
            and number in (None, d.number)
        ]
        return found[:limit]

    async def get(self, tenant_id: str, sequence: int) -> ArchivedDocument | None:
        found = self.documents.get((tenant_id, sequence))
        return None if found is None else found[0]

    async def content(self, tenant_id: str, sequence: int) -> tuple[ArchivedDocument, bytes] | None:
        return self.documents.get((tenant_id, sequence))

    async def purge_expired(self) -> int:
        today = _now().date()
        expired = [k for k, (d, _) in self.documents.items() if d.retain_until < today]
        for k in expired:
            del self.documents[k]
        return len(expired)


@dataclass
class FakeHoldRepository:
    """Policies by (tenant, customer key or ''), holds and files by invoice id."""

    policies: dict[tuple[str, str], HoldPolicy] = field(default_factory=dict)
    holds: dict[str, tuple[str, Hold]] = field(default_factory=dict)
    files: dict[str, list[tuple[AttachmentInfo, bytes]]] = field(default_factory=dict)
    clock: object = _now
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _clock(self) -> dt.datetime:
        return self.clock()  # type: ignore[operator, no-any-return]

    async def effective_policy(self, tenant_id: str, customer_key: str) -> HoldPolicy | None:
        return self.policies.get((tenant_id, customer_key)) or self.policies.get((tenant_id, ""))

    async def save_policy(
        self, tenant_id: str, customer_key: str | None, enabled: bool, seconds: int
    ) -> HoldPolicy:
        policy = HoldPolicy(customer_key, enabled, dt.timedelta(seconds=seconds), self._clock())
        self.policies[(tenant_id, customer_key or "")] = policy
        return policy

    async def get_policy(self, tenant_id: str, customer_key: str | None) -> HoldPolicy | None:
        return self.policies.get((tenant_id, customer_key or ""))

    async def delete_policy(self, tenant_id: str, customer_key: str | None) -> bool:
        return self.policies.pop((tenant_id, customer_key or ""), None) is not None

    async def customer_policies(self, tenant_id: str) -> list[HoldPolicy]:
        return [p for (t, k), p in sorted(self.policies.items()) if t == tenant_id and k]

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
        if invoice_id in self.holds:
            return False
        hold = Hold(invoice_id, customer_key, self._clock(), until, None, None, 0, number, reason)
        self.holds[invoice_id] = (tenant_id, hold)
        return True

    async def bump(self, invoice_id: str) -> int:
        tenant, hold = self.holds[invoice_id]
        self.holds[invoice_id] = (tenant, dataclasses.replace(hold, revision=hold.revision + 1))
        return hold.revision + 1

    async def get(self, tenant_id: str, invoice_id: str) -> Hold | None:
        tenant, hold = self.holds.get(invoice_id, ("", None))
        if hold is None or tenant != tenant_id:
            return None
        return dataclasses.replace(hold, attachment_count=len(self.files.get(invoice_id, [])))

    async def open_holds(self, tenant_id: str, after: str | None, limit: int) -> list[Hold]:
        now = self._clock()
        found = [
            h
            for i, (t, h) in sorted(self.holds.items())
            if t == tenant_id and h.is_open(now) and (after is None or i > after)
        ]
        return found[:limit]

    async def lock(self, tenant_id: str, invoice_id: str) -> HoldLock | None:
        hold = await self.get(tenant_id, invoice_id)
        return None if hold is None else HoldLock(hold.released_at, hold.held_until, self._clock())

    async def release(self, tenant_id: str, invoice_id: str, released_by: str) -> None:
        tenant, hold = self.holds[invoice_id]
        self.holds[invoice_id] = (
            tenant,
            dataclasses.replace(hold, released_at=self._clock(), released_by=released_by),
        )

    async def count_attachments(self, invoice_id: str) -> int:
        return len(self.files.get(invoice_id, []))

    async def add_attachment(
        self, tenant_id: str, invoice_id: str, filename: str, content_type: str, content: bytes
    ) -> AttachmentInfo:
        info = AttachmentInfo(
            next(self._ids),
            invoice_id,
            filename,
            content_type,
            len(content),
            hashlib.sha256(content).hexdigest(),
            self._clock(),
        )
        self.files.setdefault(invoice_id, []).append((info, content))
        return info

    async def remove_attachment(self, invoice_id: str, attachment_id: int) -> bool:
        kept = [f for f in self.files.get(invoice_id, []) if f[0].attachment_id != attachment_id]
        removed = len(kept) != len(self.files.get(invoice_id, []))
        self.files[invoice_id] = kept
        return removed

    async def list_attachments(self, tenant_id: str, invoice_id: str) -> list[AttachmentInfo]:
        return [info for info, _ in self.files.get(invoice_id, [])]

    async def attachments_for_send(self, invoice_id: str) -> tuple[Attachment, ...]:
        return tuple(
            Attachment(i.filename, i.content_type, c) for i, c in self.files.get(invoice_id, [])
        )


@dataclass
class FakeOverrideRepository:
    """Overrides by (tenant, customer key or '')."""

    overrides: dict[tuple[str, str], Override] = field(default_factory=dict)

    async def for_customer(self, tenant_id: str, customer_key: str) -> Channel | None:
        found = self.overrides.get((tenant_id, customer_key)) or self.overrides.get((tenant_id, ""))
        return None if found is None else found.channel

    async def list(self, tenant_id: str) -> list[Override]:
        return [o for (t, _), o in sorted(self.overrides.items()) if t == tenant_id]

    async def save(self, tenant_id: str, customer_key: str | None, channel: Channel) -> Override:
        override = Override(customer_key or None, channel, _now())
        self.overrides[(tenant_id, customer_key or "")] = override
        return override

    async def delete(self, tenant_id: str, customer_key: str | None) -> bool:
        return self.overrides.pop((tenant_id, customer_key or ""), None) is not None


@dataclass
class FakeSuggestionRepository:
    """Suggestions by id, with their tenant."""

    rows: dict[int, tuple[str, Suggestion]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def record_once(self, new: NewSuggestion) -> int | None:
        for tenant, s in self.rows.values():
            if (tenant, s.customer_key, s.suggested_channel) != (
                new.tenant_id,
                new.customer_key,
                new.suggested,
            ):
                continue
            recently = s.decided_at is not None and s.decided_at > new.now - new.snooze
            if s.state == "open" or (s.state == "dismissed" and recently):
                return None
        sid = next(self._ids)
        self.rows[sid] = (
            new.tenant_id,
            Suggestion(
                sid,
                new.customer_key,
                new.invoice_id,
                new.current,
                new.suggested,
                new.recipient,
                "open",
                new.now,
                None,
            ),
        )
        return sid

    async def list(self, tenant_id: str, state: str) -> list[Suggestion]:
        return [
            s
            for _, (t, s) in sorted(self.rows.items(), reverse=True)
            if t == tenant_id and state in ("all", s.state)
        ]

    async def lock(self, tenant_id: str, suggestion_id: int) -> Suggestion | None:
        tenant, found = self.rows.get(suggestion_id, ("", None))
        return found if tenant == tenant_id else None

    async def decide(self, suggestion_id: int, state: str) -> Suggestion:
        tenant, found = self.rows[suggestion_id]
        decided = dataclasses.replace(found, state=state, decided_at=_now())  # type: ignore[arg-type]
        self.rows[suggestion_id] = (tenant, decided)
        return decided


@dataclass
class FakePaperOptionsRepository:
    """Paper options by tenant."""

    options: dict[str, PaperOptions] = field(default_factory=dict)

    async def get(self, tenant_id: str) -> PaperOptions:
        return self.options.get(tenant_id, PaperOptions())

    async def save(self, tenant_id: str, options: PaperOptions) -> PaperOptions:
        saved = dataclasses.replace(options, updated_at=_now())
        self.options[tenant_id] = saved
        return saved

    async def delete(self, tenant_id: str) -> bool:
        return self.options.pop(tenant_id, None) is not None


@dataclass
class FakeStatisticsRepository:
    """Counts over the fake deliveries, grouped by day or month of the zone asked for."""

    deliveries: FakeDeliveryRepository

    async def period_rows(
        self,
        tenant_id: str,
        from_date: dt.date,
        to_date: dt.date,
        granularity: str,
        time_zone: str,
    ) -> list[PeriodRow]:
        zone = ZoneInfo(time_zone)
        table: dict[tuple[dt.date, Channel], list[int | Decimal]] = {}
        for row, outcome in self.deliveries.completed():
            completed = outcome.get("completed_at")
            if row.tenant_id != tenant_id or row.test_mode or completed is None:
                continue
            day = completed.astimezone(zone).date()  # type: ignore[attr-defined]
            if not from_date <= day <= to_date:
                continue
            period = day if granularity == "day" else day.replace(day=1)
            channel: Channel = outcome.get("channel", row.channel)  # type: ignore[assignment]
            cell = table.setdefault((period, channel), [0, 0, 0, Decimal(0)])
            status = outcome["status"]
            for i, name in enumerate(("sent", "failed", "uncertain")):
                cell[i] += status == name
            if status == "sent":
                cell[3] += outcome.get("cost") or Decimal(0)  # type: ignore[operator]
        return [
            PeriodRow(p, c, int(s), int(f), int(u), Decimal(cost))
            for (p, c), (s, f, u, cost) in table.items()
        ]

    async def seller_country(self, tenant_id: str) -> str | None:
        rows = [r for r in self.deliveries.rows.values() if r.tenant_id == tenant_id]
        if not rows:
            return None
        return max(rows, key=lambda r: r.routed_at).invoice.seller.address.country_code


@dataclass
class FakeTokenNames:
    """Token names by token."""

    names: dict[str, str] = field(default_factory=dict)

    async def name_of(self, token: str) -> str | None:
        return self.names.get(token)


@contextlib.asynccontextmanager
async def _no_savepoint() -> AsyncIterator[None]:
    yield


@dataclass
class FakeFactoringRepository:
    """Decisions and waiting invoices by invoice id."""

    decisions: dict[str, InvoiceFactoringDecided] = field(default_factory=dict)
    parked: dict[str, InvoiceCreated] = field(default_factory=dict)

    async def decision(self, invoice_id: str) -> InvoiceFactoringDecided | None:
        """The invoice's decision, if it has arrived."""
        return self.decisions.get(invoice_id)

    async def record(self, decision: InvoiceFactoringDecided) -> bool:
        """Keep the decision; False if the invoice had one."""
        if decision.invoice_id in self.decisions:
            return False
        self.decisions[decision.invoice_id] = decision
        return True

    async def park(self, created: InvoiceCreated) -> None:
        """Keep a created invoice until its decision arrives."""
        self.parked.setdefault(created.invoice_id, created)

    async def take_parked(self, invoice_id: str) -> InvoiceCreated | None:
        """The waiting invoice, no longer waiting."""
        return self.parked.pop(invoice_id, None)


@dataclass
class FakeOutbox:
    """The events written to the outbox, with their subjects, in order (no transactions:
    what a use case adds is kept even if it raises afterwards)."""

    events: list[EventBody] = field(default_factory=list)
    subjects: list[str | None] = field(default_factory=list)

    async def add(self, event: EventBody, *, subject: str | None = None) -> None:
        self.events.append(event)
        self.subjects.append(subject)

    def of(self, body_type: type[EventBody]) -> list[EventBody]:
        """The events of one type, in the order added."""
        return [e for e in self.events if isinstance(e, body_type)]


def fake_repositories(profiles: FakeTenantProfiles | None = None) -> Repositories:
    """Empty fakes of every repository (the statistics count the fake deliveries)."""
    deliveries = FakeDeliveryRepository()
    return Repositories(
        deliveries=deliveries,
        factoring=FakeFactoringRepository(),
        attempts=FakeAttemptLog(),
        archive=FakeArchiveRepository(),
        holds=FakeHoldRepository(),
        overrides=FakeOverrideRepository(),
        suggestions=FakeSuggestionRepository(),
        paper=FakePaperOptionsRepository(),
        statistics=FakeStatisticsRepository(deliveries),
        tokens=FakeTokenNames(),
        profiles=profiles or FakeTenantProfiles(),
        outbox=FakeOutbox(),
        savepoint=_no_savepoint,
    )


def fake_store(repos: Repositories) -> SendStore:
    """The send job's store on the fakes: its reads and each transaction on ``repos`` (a
    transaction of the fakes is never rolled back)."""

    @contextlib.asynccontextmanager
    async def transaction() -> AsyncIterator[Repositories]:
        yield repos

    return SendStore(reads=repos, transaction=transaction)
