"""Batches, their files and invoices, serials, windows and upload attempts."""

from __future__ import annotations

import datetime as dt
import json

import asyncpg

from ...domain.batches import BatchKind, BatchState, Trigger
from ...domain.transfer import FactorAnswer, FileStatus
from ...service.ports import Attempt, Batch, BatchFile, BatchInvoice


class PgBatchRepository:
    """``batches``, ``batch_files``, ``batch_invoices``, ``file_serials``, ``windows``."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def next_serial(self, agreement_id: str) -> int:
        """The next serial; the row stays locked until the caller's transaction ends, so a
        rollback gives the number back and no two transactions get the same."""
        serial: int = await self.conn.fetchval(
            "INSERT INTO file_serials (agreement_id, last_serial) VALUES ($1, 1) "
            "ON CONFLICT (agreement_id) DO UPDATE SET last_serial = file_serials.last_serial + 1 "
            "RETURNING last_serial",
            agreement_id,
        )
        return serial

    async def record(self, batch: Batch) -> None:
        """A batch with its files and invoices."""
        await self.conn.execute(
            "INSERT INTO batches (batch_id, tenant_id, agreement_id, serial, kind, trigger, "
            "state, window_date, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            batch.batch_id,
            batch.tenant_id,
            batch.agreement_id,
            batch.serial,
            batch.kind.value,
            batch.trigger.value,
            batch.state.value,
            batch.window_date,
            batch.created_at,
        )
        await self.conn.executemany(
            "INSERT INTO batch_files (batch_id, seq, name, media_type, content, sha256) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (batch.batch_id, f.seq, f.name, f.media_type, f.content, f.sha256)
                for f in batch.files
            ],
        )
        await self.conn.executemany(
            "INSERT INTO batch_invoices (batch_id, invoice_id, line, number, amount, currency, "
            "fee, advance, payment_reference) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [
                (
                    batch.batch_id,
                    i.invoice_id,
                    n,
                    i.number,
                    i.amount,
                    i.currency,
                    i.fee,
                    i.advance,
                    i.payment_reference,
                )
                for n, i in enumerate(batch.invoices, start=1)
            ],
        )

    async def get(self, batch_id: str) -> Batch | None:
        """A batch with its files, invoices and changes."""
        row = await self.conn.fetchrow("SELECT * FROM batches WHERE batch_id = $1", batch_id)
        if row is None:
            return None
        return await self._full(row)

    async def _full(self, row: asyncpg.Record, *, content: bool = True) -> Batch:
        files = await self.conn.fetch(
            "SELECT seq, name, media_type, "
            + ("content" if content else "''::bytea AS content")
            + ", sha256, state, receipt::text AS receipt, reason "
            "FROM batch_files WHERE batch_id = $1 ORDER BY seq",
            row["batch_id"],
        )
        invoices = await self.conn.fetch(
            "SELECT * FROM batch_invoices WHERE batch_id = $1 ORDER BY line", row["batch_id"]
        )
        changes = await self.conn.fetch(
            "SELECT change_id FROM due_date_changes WHERE batch_id = $1 ORDER BY change_id",
            row["batch_id"],
        )
        return Batch(
            batch_id=row["batch_id"],
            tenant_id=row["tenant_id"],
            agreement_id=row["agreement_id"],
            serial=row["serial"],
            kind=BatchKind(row["kind"]),
            trigger=Trigger(row["trigger"]),
            state=BatchState(row["state"]),
            created_at=row["created_at"],
            window_date=row["window_date"],
            transferred_at=row["transferred_at"],
            reason=row["reason"],
            files=tuple(
                BatchFile(
                    seq=f["seq"],
                    name=f["name"],
                    media_type=f["media_type"],
                    content=bytes(f["content"]),
                    sha256=f["sha256"],
                    state=f["state"],
                    receipt=json.loads(f["receipt"]) if f["receipt"] else {},
                    reason=f["reason"],
                )
                for f in files
            ),
            invoices=tuple(
                BatchInvoice(
                    invoice_id=i["invoice_id"],
                    number=i["number"],
                    amount=i["amount"],
                    currency=i["currency"],
                    fee=i["fee"],
                    advance=i["advance"],
                    payment_reference=i["payment_reference"],
                )
                for i in invoices
            ),
            change_ids=tuple(c["change_id"] for c in changes),
        )

    async def earlier_unfinished(self, agreement_id: str, serial: int) -> Batch | None:
        """The lowest-serial batch before ``serial`` that is still recorded."""
        row = await self.conn.fetchrow(
            "SELECT * FROM batches WHERE agreement_id = $1 AND serial < $2 "
            "AND state = 'recorded' ORDER BY serial LIMIT 1",
            agreement_id,
            serial,
        )
        return await self._full(row, content=False) if row is not None else None

    async def file_answered(self, batch_id: str, seq: int, answer: FactorAnswer) -> None:
        """The provider's receipt or refusal of one file."""
        state = "received" if answer.status is FileStatus.RECEIVED else "refused"
        await self.conn.execute(
            "UPDATE batch_files SET state = $3, receipt = $4::jsonb, reason = $5, "
            "answered_at = now() WHERE batch_id = $1 AND seq = $2",
            batch_id,
            seq,
            state,
            json.dumps(answer.receipt),
            answer.reason,
        )

    async def finish(
        self, batch_id: str, state: BatchState, at: dt.datetime, reason: str | None
    ) -> None:
        """A batch's end; a refused batch's invoices may go into another batch."""
        await self.conn.execute(
            "UPDATE batches SET state = $2, transferred_at = $3, reason = $4 WHERE batch_id = $1",
            batch_id,
            state.value,
            at if state is BatchState.TRANSFERRED else None,
            reason,
        )
        if state is BatchState.REFUSED:
            await self.conn.execute(
                "UPDATE batch_invoices SET active = false WHERE batch_id = $1", batch_id
            )

    async def record_window(self, agreement_id: str, day: dt.date, at: dt.datetime) -> bool:
        """The window of ``day`` runs now; False when it ran before."""
        return bool(
            await self.conn.fetchval(
                "INSERT INTO windows (agreement_id, window_date, ran_at) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING RETURNING true",
                agreement_id,
                day,
                at,
            )
        )

    async def window_done(
        self, agreement_id: str, day: dt.date, batches: int, invoices: int
    ) -> None:
        """What the window made."""
        await self.conn.execute(
            "UPDATE windows SET batches = $3, invoices = $4 "
            "WHERE agreement_id = $1 AND window_date = $2",
            agreement_id,
            day,
            batches,
            invoices,
        )

    async def listing(self, tenant_id: str, *, agreement_id: str | None, limit: int) -> list[Batch]:
        """The tenant's batches, newest first (without the files' bytes)."""
        rows = await self.conn.fetch(
            "SELECT * FROM batches WHERE tenant_id = $1 "
            "AND ($2::text IS NULL OR agreement_id = $2) "
            "ORDER BY created_at DESC, serial DESC LIMIT $3",
            tenant_id,
            agreement_id,
            limit,
        )
        return [await self._full(r, content=False) for r in rows]

    async def file_content(self, batch_id: str, seq: int) -> tuple[str, str, bytes] | None:
        """One file's name, media type and bytes."""
        row = await self.conn.fetchrow(
            "SELECT name, media_type, content FROM batch_files WHERE batch_id = $1 AND seq = $2",
            batch_id,
            seq,
        )
        return (row["name"], row["media_type"], bytes(row["content"])) if row else None


class PgAttemptLog:
    """``upload_attempts``: begin and finish commit on their own pooled connection, so the
    intent survives whatever happens to the job's transaction."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool, pool: asyncpg.Pool | None) -> None:
        self.conn = conn
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool the committed-at-once writes use."""
        if self._pool is None:
            raise RuntimeError("the attempt log needs the service's pool to commit on its own")
        return self._pool

    async def begin(self, key: str, batch_id: str, seq: int, attempt: int) -> None:
        """The attempt, committed before the provider is called."""
        await self.pool.execute(
            "INSERT INTO upload_attempts (attempt_key, batch_id, seq, attempt) "
            "VALUES ($1, $2, $3, $4)",
            key,
            batch_id,
            seq,
            attempt,
        )

    async def finish(self, key: str, state: str, detail: str | None) -> None:
        """What became of the attempt."""
        await self.pool.execute(
            "UPDATE upload_attempts SET state = $2, detail = $3, finished_at = now() "
            "WHERE attempt_key = $1",
            key,
            state,
            detail[:2000] if detail else None,
        )

    async def of_file(self, batch_id: str, seq: int) -> list[Attempt]:
        """Every attempt of a file, oldest first."""
        rows = await self.conn.fetch(
            "SELECT * FROM upload_attempts WHERE batch_id = $1 AND seq = $2 ORDER BY attempt",
            batch_id,
            seq,
        )
        return [
            Attempt(
                key=r["attempt_key"],
                batch_id=r["batch_id"],
                seq=r["seq"],
                attempt=r["attempt"],
                state=r["state"],
                started_at=r["started_at"],
                detail=r["detail"],
            )
            for r in rows
        ]
