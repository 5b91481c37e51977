"""PostgreSQL queries behind the pages and the API (``tenant_id`` None: every tenant)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, TypeAlias

import asyncpg

from ..domain.journey import Status, Summary
from ..domain.paging import Cursor
from ..domain.records import (
    ActionRow,
    ConnectionRow,
    Counts,
    CustomerChannel,
    DeadLetterRow,
    EntryRow,
    FailedJob,
    HoldFile,
    HoldNeeds,
    HoldRow,
    InvoiceRow,
    InvoiceSearch,
    JobState,
    PaymentRow,
    SuggestionRow,
    TransferRow,
)

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool
# An invoice's day: its issue date, else the day it was first seen in its tenant's zone.
_DAY = (
    "coalesce(i.issue_date, (i.first_seen_at AT TIME ZONE "
    "coalesce(p.profile->>'time_zone', 'UTC'))::date)"
)


def invoice_row(r: asyncpg.Record) -> InvoiceRow:
    """An invoice as stored."""
    return InvoiceRow(
        tenant_id=r["tenant_id"],
        invoice_id=r["invoice_id"],
        summary=Summary(
            number=r["number"],
            customer=r["customer"],
            customer_key=r["customer_key"],
            source_system=r["source_system"],
            connection_id=r["connection_id"],
            document_id=r["document_id"],
            document_type=r["document_type"],
            currency=r["currency"],
            amount=r["amount"],
            issue_date=r["issue_date"],
            due_date=r["due_date"],
            status=Status(r["status"]),
            channel=r["channel"],
            partner_reference=r["partner_reference"],
            archive_sequence=r["archive_sequence"],
            error_count=r["error_count"],
            test_mode=r["test_mode"],
            trace_id=r["trace_id"],
            first_seen_at=r["first_seen_at"],
            last_event_at=r["last_event_at"],
        ),
    )


def hold_row(r: asyncpg.Record) -> HoldRow:
    """A hold as stored (its files and needs as the event said them)."""
    needed = json.loads(r["needed_json"]) if r["needed_json"] else None
    return HoldRow(
        tenant_id=r["tenant_id"],
        invoice_id=r["invoice_id"],
        number=r["number"],
        customer=r["customer"],
        revision=r["revision"],
        change=r["change"],
        reason=r["reason"],
        held_at=r["held_at"],
        held_until=r["held_until"],
        released_at=r["released_at"],
        released_by=r["released_by"],
        needed=HoldNeeds(
            what=str(needed.get("what", "attachments")),
            content_types=tuple(needed.get("content_types", ())),
            max_files=int(needed.get("max_files", 0)),
            max_file_bytes=int(needed.get("max_file_bytes", 0)),
        )
        if needed
        else None,
        attachments=tuple(
            HoldFile(f["filename"], f["content_type"], int(f["size"]))
            for f in json.loads(r["files_json"] or "[]")
        ),
        updated_at=r["updated_at"],
    )


# Suggestions with their decisions; holds with their files, needs and customers.
_SUGGESTIONS = (
    "SELECT s.*, d.decision, d.decided_by, d.decided_at FROM suggestions s "
    "LEFT JOIN suggestion_decisions d USING (tenant_id, suggestion_id)"
)
_HOLDS = (
    "SELECT h.*, h.needed::text AS needed_json, h.attachments::text AS files_json, i.customer "
    "FROM holds h LEFT JOIN invoices i USING (tenant_id, invoice_id)"
)


class _Where:
    """A WHERE clause built from optional filters, with numbered parameters."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, clause: str) -> None:
        self.clauses.append(clause)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "true"


def _failed_job(r: asyncpg.Record) -> FailedJob:
    return FailedJob(
        service=r["service"],
        job_id=r["job_id"],
        tenant_id=r["tenant_id"],
        kind=r["kind"],
        job_key=r["job_key"],
        invoice_id=r["invoice_id"],
        state=JobState(r["state"]),
        attempts=r["attempts"],
        error=r["error"],
        failed_at=r["failed_at"],
        retried_at=r["retried_at"],
        retried_by=r["retried_by"],
        updated_at=r["updated_at"],
    )


def _dead_letter(r: asyncpg.Record) -> DeadLetterRow:
    return DeadLetterRow(
        letter_id=r["letter_id"],
        tenant_id=r["tenant_id"],
        consumer=r["consumer"],
        origin_topic=r["origin_topic"],
        origin_partition=r["origin_partition"],
        origin_offset=r["origin_offset"],
        position=r["position"],
        event_id=r["event_id"],
        event_type=r["event_type"],
        invoice_id=r["invoice_id"],
        subject=r["subject"],
        reason=r["reason"],
        dead_lettered_at=r["dead_lettered_at"],
        replayed_at=r["replayed_at"],
    )


def _action(r: asyncpg.Record) -> ActionRow:
    return ActionRow(**{k: r[k] for k in ActionRow.__dataclass_fields__})


class PgReadRepository:
    """Everything the pages and the API read."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def search(
        self, tenant_id: str | None, search: InvoiceSearch, limit: int, after: Cursor | None
    ) -> list[InvoiceRow]:
        """Invoices newest first (by first seen), after the cursor."""
        w = _Where()
        if tenant_id is not None:
            w.add(f"i.tenant_id = {w.arg(tenant_id)}")
        if search.text:
            text = w.arg(search.text.lower())
            w.add(
                f"(strpos(lower(coalesce(i.number, '')), {text}) > 0 "
                f"OR strpos(lower(coalesce(i.customer, '')), {text}) > 0 "
                f"OR lower(i.invoice_id) = {text})"
            )
        if search.number:
            w.add(f"starts_with(lower(coalesce(i.number, '')), {w.arg(search.number.lower())})")
        if search.customer:
            w.add(f"strpos(lower(coalesce(i.customer, '')), {w.arg(search.customer.lower())}) > 0")
        if search.source:
            w.add(f"i.source_system = {w.arg(search.source)}")
        if search.status:
            w.add(f"i.status = {w.arg(search.status.value)}")
        if search.date_from:
            w.add(f"{_DAY} >= {w.arg(search.date_from)}")
        if search.date_to:
            w.add(f"{_DAY} <= {w.arg(search.date_to)}")
        if search.amount_min is not None:
            w.add(f"i.amount >= {w.arg(search.amount_min)}")
        if search.amount_max is not None:
            w.add(f"i.amount <= {w.arg(search.amount_max)}")
        if after is not None:
            w.add(f"(i.first_seen_at, i.invoice_id) < ({w.arg(after.at)}, {w.arg(after.key)})")
        rows = await self.conn.fetch(
            f"SELECT i.* FROM invoices i LEFT JOIN tenant_profiles p ON p.tenant_id = i.tenant_id "
            f"WHERE {w.sql()} ORDER BY i.first_seen_at DESC, i.invoice_id DESC "
            f"LIMIT {w.arg(limit)}",
            *w.args,
        )
        return [invoice_row(r) for r in rows]

    async def invoice(self, tenant_id: str | None, invoice_id: str) -> InvoiceRow | None:
        """One invoice, if the tenant (or any, for None) has it."""
        row = await self.conn.fetchrow(
            "SELECT * FROM invoices WHERE invoice_id = $1 AND ($2::text IS NULL OR tenant_id = $2)"
            " ORDER BY tenant_id LIMIT 1",
            invoice_id,
            tenant_id,
        )
        return invoice_row(row) if row is not None else None

    async def document(self, tenant_id: str, invoice_id: str) -> dict[str, Any] | None:
        """The newest canonical invoice of the invoice."""
        text = await self.conn.fetchval(
            "SELECT document::text FROM invoice_documents WHERE tenant_id = $1 AND invoice_id = $2",
            tenant_id,
            invoice_id,
        )
        found: dict[str, Any] | None = json.loads(text) if text is not None else None
        return found

    async def failed_jobs(
        self, tenant_id: str | None, state: str | None, limit: int, after: Cursor | None
    ) -> list[FailedJob]:
        """Failed (and retried) jobs, newest first."""
        rows = await self.conn.fetch(
            """SELECT * FROM failed_jobs
               WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR state = $2)
                 AND ($3::timestamptz IS NULL
                      OR (updated_at, service || ':' || job_id) < ($3, $4))
               ORDER BY updated_at DESC, service || ':' || job_id DESC LIMIT $5""",
            tenant_id,
            state,
            after.at if after else None,
            after.key if after else None,
            limit,
        )
        return [_failed_job(r) for r in rows]

    async def failed_job(self, service: str, job_id: int) -> FailedJob | None:
        """One job the panel heard of."""
        row = await self.conn.fetchrow(
            "SELECT * FROM failed_jobs WHERE service = $1 AND job_id = $2", service, job_id
        )
        return _failed_job(row) if row is not None else None

    _LETTERS = """SELECT d.*, (SELECT max(a.completed_at) FROM actions a
                       WHERE a.service = d.consumer AND a.target_id = d.position
                         AND a.action = 'replay_dead_letter' AND a.outcome = 'done')
                      AS replayed_at
                  FROM dead_letters d"""

    async def dead_letters(
        self, tenant_id: str | None, limit: int, after: Cursor | None
    ) -> list[DeadLetterRow]:
        """Dead letters, newest first, with when they were last replayed."""
        rows = await self.conn.fetch(
            f"""{self._LETTERS}
               WHERE ($1::text IS NULL OR d.tenant_id = $1)
                 AND ($2::timestamptz IS NULL OR (d.dead_lettered_at, d.letter_id) < ($2, $3))
               ORDER BY d.dead_lettered_at DESC, d.letter_id DESC LIMIT $4""",
            tenant_id,
            after.at if after else None,
            after.key if after else None,
            limit,
        )
        return [_dead_letter(r) for r in rows]

    async def dead_letter(self, letter_id: str) -> DeadLetterRow | None:
        """One dead letter."""
        row = await self.conn.fetchrow(f"{self._LETTERS} WHERE d.letter_id = $1", letter_id)
        return _dead_letter(row) if row is not None else None

    async def actions(
        self, tenant_id: str | None, limit: int, target: tuple[str, str] | None = None
    ) -> list[ActionRow]:
        """Operator actions, newest first (optionally of one ``(service, target_id)``)."""
        rows = await self.conn.fetch(
            """SELECT * FROM actions WHERE ($1::text IS NULL OR tenant_id = $1)
                 AND ($2::text IS NULL OR (service = $2 AND target_id = $3))
               ORDER BY coalesce(requested_at, completed_at) DESC, action_id LIMIT $4""",
            tenant_id,
            target[0] if target else None,
            target[1] if target else None,
            limit,
        )
        return [_action(r) for r in rows]

    async def action(self, action_id: str) -> ActionRow | None:
        """One operator action."""
        row = await self.conn.fetchrow("SELECT * FROM actions WHERE action_id = $1", action_id)
        return _action(row) if row is not None else None

    async def connections(self, tenant_id: str | None) -> list[ConnectionRow]:
        """Connections' newest states (removed ones left out)."""
        rows = await self.conn.fetch(
            "SELECT * FROM connections WHERE ($1::text IS NULL OR tenant_id = $1) "
            "AND NOT removed ORDER BY tenant_id, connection_id",
            tenant_id,
        )
        return [
            ConnectionRow(**{k: r[k] for k in ConnectionRow.__dataclass_fields__}) for r in rows
        ]

    async def connection(self, tenant_id: str, connection_id: str) -> ConnectionRow | None:
        """One connection of a tenant."""
        r = await self.conn.fetchrow(
            "SELECT * FROM connections WHERE tenant_id = $1 AND connection_id = $2",
            tenant_id,
            connection_id,
        )
        if r is None:
            return None
        return ConnectionRow(**{k: r[k] for k in ConnectionRow.__dataclass_fields__})

    async def transfers(self, tenant_id: str | None, limit: int) -> list[TransferRow]:
        """Transfers to factors, newest first."""
        rows = await self.conn.fetch(
            "SELECT * FROM transfers WHERE ($1::text IS NULL OR tenant_id = $1) "
            "ORDER BY transferred_at DESC, transfer_id LIMIT $2",
            tenant_id,
            limit,
        )
        return [TransferRow(**{k: r[k] for k in TransferRow.__dataclass_fields__}) for r in rows]

    async def entries(self, tenant_id: str | None, limit: int) -> list[EntryRow]:
        """Ledger entries, newest first, with their invoice's number."""
        rows = await self.conn.fetch(
            """SELECT e.*, i.number FROM ledger_entries e
               LEFT JOIN invoices i USING (tenant_id, invoice_id)
               WHERE ($1::text IS NULL OR e.tenant_id = $1)
               ORDER BY e.posted_at DESC, e.erp_reference LIMIT $2""",
            tenant_id,
            limit,
        )
        return [EntryRow(**{k: r[k] for k in EntryRow.__dataclass_fields__}) for r in rows]

    async def payments(self, tenant_id: str | None, limit: int) -> list[PaymentRow]:
        """Payments, newest first, with their invoice's number."""
        rows = await self.conn.fetch(
            """SELECT pm.*, i.number FROM payments pm
               LEFT JOIN invoices i USING (tenant_id, invoice_id)
               WHERE ($1::text IS NULL OR pm.tenant_id = $1)
               ORDER BY pm.paid_on DESC, pm.received_at DESC, pm.payment_id LIMIT $2""",
            tenant_id,
            limit,
        )
        return [PaymentRow(**{k: r[k] for k in PaymentRow.__dataclass_fields__}) for r in rows]

    async def customer_channels(self, tenant_id: str | None, limit: int) -> list[CustomerChannel]:
        """Per customer, the channel its newest send used and how many sends it had."""
        rows = await self.conn.fetch(
            """SELECT * FROM (
                 SELECT DISTINCT ON (i.tenant_id, i.customer_key) i.tenant_id, i.customer_key,
                        i.customer, d.channel, d.occurred_at AS last_sent_at,
                        count(*) OVER (PARTITION BY i.tenant_id, i.customer_key) AS sent
                 FROM deliveries d JOIN invoices i USING (tenant_id, invoice_id)
                 WHERE d.outcome = 'distributed' AND i.customer_key IS NOT NULL
                   AND ($1::text IS NULL OR d.tenant_id = $1)
                 ORDER BY i.tenant_id, i.customer_key, d.occurred_at DESC) newest
               ORDER BY last_sent_at DESC LIMIT $2""",
            tenant_id,
            limit,
        )
        return [
            CustomerChannel(**{k: r[k] for k in CustomerChannel.__dataclass_fields__}) for r in rows
        ]

    async def suggestions(self, tenant_id: str | None, limit: int) -> list[SuggestionRow]:
        """Cheaper channels found, newest first, with their decisions once made."""
        rows = await self.conn.fetch(
            f"{_SUGGESTIONS} WHERE ($1::text IS NULL OR s.tenant_id = $1) "
            "ORDER BY s.suggested_at DESC, s.suggestion_id DESC LIMIT $2",
            tenant_id,
            limit,
        )
        return [
            SuggestionRow(**{k: r[k] for k in SuggestionRow.__dataclass_fields__}) for r in rows
        ]

    async def suggestion(self, tenant_id: str, suggestion_id: int) -> SuggestionRow | None:
        """One suggestion of a tenant, with its decision once made."""
        r = await self.conn.fetchrow(
            f"{_SUGGESTIONS} WHERE s.tenant_id = $1 AND s.suggestion_id = $2",
            tenant_id,
            suggestion_id,
        )
        if r is None:
            return None
        return SuggestionRow(**{k: r[k] for k in SuggestionRow.__dataclass_fields__})

    async def hold(self, tenant_id: str, invoice_id: str) -> HoldRow | None:
        """A tenant's invoice's hold as its newest revision says (also once it ended)."""
        r = await self.conn.fetchrow(
            f"""{_HOLDS}
               WHERE h.tenant_id = $1 AND h.invoice_id = $2""",
            tenant_id,
            invoice_id,
        )
        return hold_row(r) if r is not None else None

    async def holds(self, tenant_id: str | None, now: dt.datetime, limit: int) -> list[HoldRow]:
        """Invoices held right now (not released, ``held_until`` still ahead), the soonest
        to leave first, with their customers."""
        rows = await self.conn.fetch(
            f"""{_HOLDS}
               WHERE ($1::text IS NULL OR h.tenant_id = $1) AND h.released_at IS NULL
                 AND h.held_until > $2
               ORDER BY h.held_until, h.invoice_id LIMIT $3""",
            tenant_id,
            now,
            limit,
        )
        return [hold_row(r) for r in rows]

    async def counts(
        self,
        tenant_id: str | None,
        start: dt.datetime,
        end: dt.datetime,
        zone: str,
        month: bool,
        currency: str = "SEK",
    ) -> Counts:
        """Sends per channel, created per source, rejections and failed sends per period of
        ``zone`` (distinct invoices; test-mode invoices left out); of the sends, what those
        priced in ``currency`` cost, and how many were not."""
        unit = "month" if month else "day"
        period = "date_trunc($4, {col} AT TIME ZONE $5)::date"
        deliveries = await self.conn.fetch(
            f"""SELECT period, outcome, channel, count(*) AS n,
                       sum(cost) FILTER (WHERE cost_currency = $6) AS priced,
                       count(*) FILTER (WHERE cost IS NULL OR cost_currency <> $6) AS unpriced
                FROM (SELECT DISTINCT ON (invoice_id, outcome, channel, period)
                             invoice_id, outcome, channel, period, cost, cost_currency
                      FROM (SELECT *, {period.format(col="occurred_at")} AS period
                            FROM deliveries
                            WHERE ($1::text IS NULL OR tenant_id = $1) AND NOT test_mode
                              AND occurred_at >= $2 AND occurred_at < $3
                              AND outcome <> 'uncertain') d
                      ORDER BY invoice_id, outcome, channel, period, occurred_at) once
                GROUP BY 1, 2, 3""",
            tenant_id,
            start,
            end,
            unit,
            zone,
            currency,
        )
        steps = await self.conn.fetch(
            f"""SELECT {period.format(col="occurred_at")} AS period, kind,
                       coalesce(facts->>'source_system', '?') AS source,
                       count(DISTINCT invoice_id) AS n
                FROM steps WHERE ($1::text IS NULL OR tenant_id = $1) AND NOT test_mode
                  AND occurred_at >= $2 AND occurred_at < $3
                  AND kind IN ('invoice.created', 'invoice.rejected')
                GROUP BY 1, 2, 3""",
            tenant_id,
            start,
            end,
            unit,
            zone,
        )
        counts = Counts(sent={}, created={}, rejected={}, failed={})
        for r in deliveries:
            if r["outcome"] == "distributed":
                counts.sent[(r["period"], r["channel"])] = r["n"]
                if r["priced"] is not None:
                    counts.cost[(r["period"], r["channel"])] = r["priced"]
                if r["unpriced"]:
                    counts.unpriced[(r["period"], r["channel"])] = r["unpriced"]
            else:
                counts.failed[r["period"]] = counts.failed.get(r["period"], 0) + r["n"]
        for r in steps:
            if r["kind"] == "invoice.created":
                counts.created[(r["period"], r["source"])] = r["n"]
            else:
                counts.rejected[r["period"]] = counts.rejected.get(r["period"], 0) + r["n"]
        return counts

    async def tenants(self) -> list[str]:
        """Every tenant the read model knows (with invoices or a profile)."""
        rows = await self.conn.fetch(
            "SELECT tenant_id FROM tenant_profiles UNION "
            "SELECT DISTINCT tenant_id FROM invoices ORDER BY 1"
        )
        return [r["tenant_id"] for r in rows]

    async def seller_country(self, tenant_id: str) -> str | None:
        """The seller's country on the tenant's newest invoice."""
        country: str | None = await self.conn.fetchval(
            "SELECT document->'seller'->'address'->>'country_code' FROM invoice_documents "
            "WHERE tenant_id = $1 ORDER BY occurred_at DESC LIMIT 1",
            tenant_id,
        )
        return country
