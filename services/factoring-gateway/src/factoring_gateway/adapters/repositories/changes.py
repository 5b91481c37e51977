"""Due-date changes (``due_date_changes``), settlements (``settlement_files``,
``settlement_lines``) and the durable jobs this service schedules (the runtime's ``jobs``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import asyncpg
from nordflow_runtime import jobs

from ...domain.settlements import SettlementLine
from ...service.ports import Change, SettlementRecord


def _change(row: asyncpg.Record) -> Change:
    return Change(
        change_id=row["change_id"],
        invoice_id=row["invoice_id"],
        agreement_id=row["agreement_id"],
        old_due_date=row["old_due_date"],
        new_due_date=row["new_due_date"],
        state=row["state"],
        batch_id=row["batch_id"],
    )


class PgChangeRepository:
    """``due_date_changes``: one per invoice version whose due date moved."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def record(
        self,
        invoice_id: str,
        agreement_id: str,
        version: str,
        old_due_date: dt.date,
        new_due_date: dt.date,
    ) -> bool:
        """A change, once per invoice version."""
        return bool(
            await self.conn.fetchval(
                "INSERT INTO due_date_changes (invoice_id, agreement_id, version, old_due_date, "
                "new_due_date) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (invoice_id, version) DO NOTHING RETURNING true",
                invoice_id,
                agreement_id,
                version,
                old_due_date,
                new_due_date,
            )
        )

    async def pending(self, agreement_id: str) -> list[Change]:
        """Pending changes of invoices the provider has, locked, oldest first."""
        rows = await self.conn.fetch(
            "SELECT c.* FROM due_date_changes c JOIN invoices i USING (invoice_id) "
            "WHERE c.agreement_id = $1 AND c.state = 'pending' AND i.state = 'transferred' "
            "ORDER BY c.change_id FOR UPDATE OF c",
            agreement_id,
        )
        return [_change(r) for r in rows]

    async def batched(self, change_ids: Sequence[int], batch_id: str) -> None:
        """The changes are in a batch."""
        await self.conn.execute(
            "UPDATE due_date_changes SET state = 'batched', batch_id = $2 "
            "WHERE change_id = ANY($1::bigint[])",
            list(change_ids),
            batch_id,
        )

    async def finish(self, batch_id: str, state: str) -> None:
        """The batch's changes were received (``sent``) or refused."""
        await self.conn.execute(
            "UPDATE due_date_changes SET state = $2 WHERE batch_id = $1", batch_id, state
        )

    async def reopen(self, batch_id: str) -> None:
        """A refused change batch's changes are pending again."""
        await self.conn.execute(
            "UPDATE due_date_changes SET state = 'pending', batch_id = NULL "
            "WHERE batch_id = $1 AND state = 'refused'",
            batch_id,
        )


class PgSettlementRepository:
    """``settlement_files`` and ``settlement_lines``."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def known_files(self, agreement_id: str) -> set[str]:
        """The names already fetched."""
        rows = await self.conn.fetch(
            "SELECT name FROM settlement_files WHERE agreement_id = $1", agreement_id
        )
        return {r["name"] for r in rows}

    async def record_file(
        self, agreement_id: str, name: str, lines: int, error: str | None
    ) -> bool:
        """Note a fetched file; False when it was fetched before."""
        return bool(
            await self.conn.fetchval(
                "INSERT INTO settlement_files (agreement_id, name, lines, error) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
                agreement_id,
                name,
                lines,
                error,
            )
        )

    async def record_line(self, record: SettlementRecord) -> bool:
        """One line, once."""
        line = record.line
        return bool(
            await self.conn.fetchval(
                """INSERT INTO settlement_lines (agreement_id, file_name, line_no, tenant_id,
                       reference, invoice_number, paid_on, currency, amount, fee, payer,
                       invoice_id, state)
                   SELECT $1, $2, $3, tenant_id, $4, $5, $6, $7, $8, $9, $10, $11, $12
                   FROM agreements WHERE agreement_id = $1
                   ON CONFLICT DO NOTHING RETURNING true""",
                record.agreement_id,
                record.file_name,
                line.line_no,
                line.reference,
                line.invoice_number,
                line.paid_on,
                line.currency,
                line.amount,
                line.fee,
                line.payer,
                record.invoice_id,
                record.state,
            )
        )

    async def listing(
        self, tenant_id: str, *, state: str | None, limit: int
    ) -> list[SettlementRecord]:
        """The tenant's settlement lines, newest first."""
        rows = await self.conn.fetch(
            "SELECT * FROM settlement_lines WHERE tenant_id = $1 "
            "AND ($2::text IS NULL OR state = $2) "
            "ORDER BY recorded_at DESC, file_name, line_no LIMIT $3",
            tenant_id,
            state,
            limit,
        )
        return [
            SettlementRecord(
                agreement_id=r["agreement_id"],
                file_name=r["file_name"],
                line=SettlementLine(
                    line_no=r["line_no"],
                    reference=r["reference"],
                    invoice_number=r["invoice_number"],
                    paid_on=r["paid_on"],
                    currency=r["currency"],
                    amount=r["amount"],
                    fee=r["fee"],
                    payer=r["payer"],
                ),
                invoice_id=r["invoice_id"],
                state=r["state"],
                recorded_at=r["recorded_at"],
            )
            for r in rows
        ]


class PgScheduler:
    """Durable jobs in the runtime's ``jobs`` table, in the caller's transaction."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def schedule(
        self,
        kind: str,
        key: str,
        tenant_id: str,
        payload: dict[str, Any],
        due_at: dt.datetime,
    ) -> bool:
        """A job (a timer when ``due_at`` is ahead); a second with the key is ignored."""
        return await jobs.schedule(
            self.conn, kind=kind, key=key, tenant_id=tenant_id, payload=payload, due_at=due_at
        )

    async def cancel_pending(self, kind: str, key_prefix: str) -> int:
        """Drop pending jobs of ``kind`` whose key starts with ``key_prefix``.

        A job being run holds its row and may schedule its successor as it ends (the next
        settlement read, the next window). Such runs are waited for first; the delete, a
        statement of its own, then sees the successors they committed and drops them too
        (one statement would wait for the row, find it done, and miss the new one)."""
        await self.conn.execute(
            "SELECT 1 FROM jobs WHERE kind = $1 AND state = 'pending' "
            "AND starts_with(job_key, $2) FOR UPDATE",
            kind,
            key_prefix,
        )
        status: str = await self.conn.execute(
            "DELETE FROM jobs WHERE kind = $1 AND state = 'pending' AND starts_with(job_key, $2)",
            kind,
            key_prefix,
        )
        return int(status.rsplit(maxsplit=1)[-1])

    async def outcome(self, kind: str, key: str) -> tuple[str, dict[str, Any], str | None] | None:
        """A job's state, result and last error (operator commands wait on it)."""
        row = await self.conn.fetchrow(
            "SELECT state, result::text AS result, last_error FROM jobs "
            "WHERE kind = $1 AND job_key = $2",
            kind,
            key,
        )
        if row is None:
            return None
        return row["state"], json.loads(row["result"]) if row["result"] else {}, row["last_error"]
