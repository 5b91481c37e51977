"""PostgreSQL repositories of ledger-closer (all of its SQL): write connections (credentials
sealed at rest), entries and bookings with their intent log, transfers, the created invoices'
delivery, and the jobs."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, TypeAlias

import asyncpg
from nordflow_runtime import jobs
from nordflow_runtime.tenant_profiles import PgTenantProfiles
from nordflow_schemas.common import SourceRef
from nordflow_schemas.events import AgreementKind, BookedRecord

from ..domain import (
    AccountMapping,
    ConnectionOfAnotherTenantError,
    Delivery,
    PlannedEntry,
    WriteConnection,
)
from ..service.ports import DocumentState, Repositories, TransferRecord

Db: TypeAlias = asyncpg.Connection | asyncpg.Pool


class PgConnectionRepository:
    """Write connections in ``erp_connections`` (one per erp-poller connection id)."""

    def __init__(self, conn: Db) -> None:
        self.conn = conn

    async def find(self, tenant_id: str, connection_id: str) -> WriteConnection | None:
        """The tenant's write connection of that id, if any."""
        row = await self.conn.fetchrow(
            "SELECT * FROM erp_connections WHERE tenant_id = $1 AND connection_id = $2",
            tenant_id,
            connection_id,
        )
        if row is None:
            return None
        return WriteConnection(
            connection_id=row["connection_id"],
            tenant_id=row["tenant_id"],
            system=row["system"],
            base_url=row["base_url"],
            token_sealed=bytes(row["token_sealed"]),
            mode_of_payment=row["mode_of_payment"],
            accounts=AccountMapping(
                receivable=row["receivable_account"],
                factoring=row["factoring_account"],
                bank=row["bank_account"],
                fee=row["fee_account"],
                liability=row["liability_account"],
            ),
            updated_at=row["updated_at"],
        )

    async def save(self, connection: WriteConnection) -> None:
        """Create or replace a connection (not its system).

        Raises ``ConnectionOfAnotherTenantError`` if the id belongs to another tenant.
        """
        accounts = connection.accounts
        saved = await self.conn.fetchval(
            """INSERT INTO erp_connections (connection_id, tenant_id, system, base_url,
                                            token_sealed, mode_of_payment, factoring_account,
                                            bank_account, receivable_account, fee_account,
                                            liability_account)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
               ON CONFLICT (connection_id) DO UPDATE SET base_url = EXCLUDED.base_url,
                   token_sealed = EXCLUDED.token_sealed,
                   mode_of_payment = EXCLUDED.mode_of_payment,
                   factoring_account = EXCLUDED.factoring_account,
                   bank_account = EXCLUDED.bank_account,
                   receivable_account = EXCLUDED.receivable_account,
                   fee_account = EXCLUDED.fee_account,
                   liability_account = EXCLUDED.liability_account, updated_at = now()
               WHERE erp_connections.tenant_id = EXCLUDED.tenant_id
               RETURNING true""",
            connection.connection_id,
            connection.tenant_id,
            connection.system,
            connection.base_url,
            connection.token_sealed,
            connection.mode_of_payment,
            accounts.factoring,
            accounts.bank,
            accounts.receivable,
            accounts.fee,
            accounts.liability,
        )
        if not saved:
            raise ConnectionOfAnotherTenantError(connection.connection_id)

    async def lock_writes(self, connection_id: str) -> None:
        """Until the transaction ends, writes through the connection are this one's: jobs
        running at once (in this process or another replica) would each look up before the
        other's record is committed, and adopt the other's payment as an earlier attempt's
        or create the same customer twice."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"ledger-closer:write:{connection_id}",
        )


class PgIntentLog:
    """Intent rows of entries and bookings, written on a pooled connection of their own and
    committed at once, so they outlive the job's transaction (and a crash in the ERP call)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(
        self, entry_key: str, tenant_id: str, entry: PlannedEntry, account: int
    ) -> None:
        """Insert the entry's intent row, or count one more attempt on it."""
        await self.pool.execute(
            "INSERT INTO entries (entry_key, tenant_id, invoice_id, kind, amount, currency, "
            "account) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (entry_key) DO UPDATE "
            "SET attempts = entries.attempts + 1",
            entry_key,
            tenant_id,
            entry.invoice_id,
            entry.kind.value,
            entry.amount,
            entry.currency,
            account,
        )

    async def note_state(self, entry_key: str, state: str) -> None:
        """Keep the ERP's state before the first create (a later note changes nothing)."""
        await self.pool.execute(
            "UPDATE entries SET erp_state = $2 WHERE entry_key = $1 AND erp_state IS NULL",
            entry_key,
            state,
        )

    async def state(self, entry_key: str) -> str | None:
        """The noted state, if any."""
        state: str | None = await self.pool.fetchval(
            "SELECT erp_state FROM entries WHERE entry_key = $1", entry_key
        )
        return state

    async def begin_booking(
        self, key: str, tenant_id: str, invoice_id: str, action: str, target: str
    ) -> None:
        """Insert a booking's intent row, or count one more attempt on it."""
        await self.pool.execute(
            "INSERT INTO bookings (booking_key, tenant_id, invoice_id, action, target) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (booking_key) DO UPDATE "
            "SET attempts = bookings.attempts + 1",
            key,
            tenant_id,
            invoice_id,
            action,
            target,
        )


class PgEntryRepository:
    """What the ERP holds for each entry, on the job's connection (its transaction)."""

    def __init__(self, conn: Db) -> None:
        self.conn = conn

    async def known_references(self, invoice_id: str) -> set[str]:
        """The ERP references already recorded for the invoice's entries."""
        rows = await self.conn.fetch(
            "SELECT erp_reference FROM entries WHERE invoice_id = $1 AND erp_reference IS NOT NULL",
            invoice_id,
        )
        return {r["erp_reference"] for r in rows}

    async def record_posted(
        self, entry_key: str, erp_reference: str, adopted: bool, posted_at: dt.datetime
    ) -> None:
        """Store the ERP's reference, whether it was adopted, and when, on the intent row."""
        await self.conn.execute(
            "UPDATE entries SET erp_reference = $2, adopted = $3, posted_at = $4 "
            "WHERE entry_key = $1",
            entry_key,
            erp_reference,
            adopted,
            posted_at,
        )


class PgBookingRepository:
    """The documents written into targets, on the job's connection."""

    def __init__(self, conn: Db) -> None:
        self.conn = conn

    async def record_booked(
        self,
        key: str,
        erp_reference: str | None,
        records: tuple[BookedRecord, ...],
        booked_at: dt.datetime,
    ) -> None:
        """Store the outcome on the booking's intent row."""
        await self.conn.execute(
            "UPDATE bookings SET erp_reference = $2, records = $3::jsonb, booked_at = $4 "
            "WHERE booking_key = $1",
            key,
            erp_reference,
            json.dumps([r.model_dump(mode="json") for r in records]),
            booked_at,
        )

    async def record_skipped(
        self,
        key: str,
        tenant_id: str,
        invoice_id: str,
        target: str,
        reason: str,
        skipped_at: dt.datetime,
    ) -> None:
        """Keep that the document was deliberately not written, and why (first one stays)."""
        await self.conn.execute(
            "INSERT INTO bookings (booking_key, tenant_id, invoice_id, action, target, "
            "records, booked_at, skipped_reason) VALUES ($1, $2, $3, 'skipped', $4, '[]', $5, $6) "
            "ON CONFLICT (booking_key) DO NOTHING",
            key,
            tenant_id,
            invoice_id,
            target,
            skipped_at,
            reason,
        )

    async def skipped_reason(self, key: str) -> str | None:
        """Why the document was not written, when its booking was skipped."""
        reason: str | None = await self.conn.fetchval(
            "SELECT skipped_reason FROM bookings WHERE booking_key = $1", key
        )
        return reason

    async def reference_of(self, key: str) -> str | None:
        """The target's number or id of a finished booking."""
        reference: str | None = await self.conn.fetchval(
            "SELECT erp_reference FROM bookings WHERE booking_key = $1 AND booked_at IS NOT NULL",
            key,
        )
        return reference


class PgTransferRepository:
    """The transfers seen, one per invoice (``transfers``)."""

    def __init__(self, conn: Db) -> None:
        self.conn = conn

    async def save(self, tenant_id: str, transfer: TransferRecord) -> None:
        """Keep the first transfer of an invoice."""
        await self.conn.execute(
            "INSERT INTO transfers (invoice_id, tenant_id, agreement_kind, amount, advance, fee) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (invoice_id) DO NOTHING",
            transfer.invoice_id,
            tenant_id,
            transfer.agreement_kind.value,
            transfer.amount,
            transfer.advance,
            transfer.fee,
        )

    async def get(self, invoice_id: str) -> TransferRecord | None:
        """The invoice's transfer, if any."""
        row = await self.conn.fetchrow("SELECT * FROM transfers WHERE invoice_id = $1", invoice_id)
        if row is None:
            return None
        return TransferRecord(
            invoice_id=row["invoice_id"],
            agreement_kind=AgreementKind(row["agreement_kind"]),
            amount=Decimal(row["amount"]),
            advance=None if row["advance"] is None else Decimal(row["advance"]),
            fee=None if row["fee"] is None else Decimal(row["fee"]),
        )


def _document(row: asyncpg.Record) -> DocumentState:
    return DocumentState(
        invoice_id=row["invoice_id"],
        tenant_id=row["tenant_id"],
        number=row["number"],
        source=SourceRef.model_validate_json(row["source"]),
        delivery=Delivery(row["delivery"]),
        held=json.loads(row["held"]) if row["held"] is not None else None,
    )


class PgDocumentRepository:
    """The created invoices and their delivery (``documents``)."""

    def __init__(self, conn: Db) -> None:
        self.conn = conn

    async def record_created(
        self, tenant_id: str, invoice_id: str, number: str, source: SourceRef, delivery: Delivery
    ) -> None:
        """Keep a created invoice once; a distribution report that came first (kept in
        ``delivery_reports``) is its delivery."""
        await self._lock(invoice_id)
        await self.conn.execute(
            """WITH early AS (DELETE FROM delivery_reports WHERE invoice_id = $1
                              RETURNING delivery)
               INSERT INTO documents (invoice_id, tenant_id, number, source, delivery)
               VALUES ($1, $2, $3, $4::jsonb,
                       CASE WHEN $5 = 'pending' THEN coalesce((SELECT delivery FROM early), $5)
                            ELSE $5 END)
               ON CONFLICT (invoice_id) DO NOTHING""",
            invoice_id,
            tenant_id,
            number,
            source.model_dump_json(),
            delivery.value,
        )

    async def set_delivery(
        self, tenant_id: str, invoice_id: str, delivery: Delivery
    ) -> DocumentState | None:
        """Record distribution's report; a send is never undone by a later failure report.
        A report of an invoice not seen created yet is kept for ``record_created``."""
        await self._lock(invoice_id)
        row = await self.conn.fetchrow(
            "UPDATE documents SET delivery = $2, updated_at = now() WHERE invoice_id = $1 "
            "AND (delivery <> 'delivered' OR $2 = 'delivered') RETURNING *",
            invoice_id,
            delivery.value,
        )
        if row is not None:
            return _document(row)
        found = await self.get(invoice_id)
        if found is None:
            await self.conn.execute(
                "INSERT INTO delivery_reports (invoice_id, tenant_id, delivery) "
                "VALUES ($1, $2, $3) ON CONFLICT (invoice_id) DO UPDATE "
                "SET delivery = EXCLUDED.delivery, reported_at = now() "
                "WHERE delivery_reports.delivery <> 'delivered' OR EXCLUDED.delivery = 'delivered'",
                invoice_id,
                tenant_id,
                delivery.value,
            )
        return found

    async def _lock(self, invoice_id: str) -> None:
        """Until the transaction ends, the invoice's creation and its reports are applied one
        at a time: two consumers (replicas) applying them at once would each miss the other's
        uncommitted row, and the report would be lost."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"ledger-closer:document:{invoice_id}",
        )

    async def get(self, invoice_id: str, *, lock: bool = False) -> DocumentState | None:
        """The document, if it was seen created."""
        row = await self.conn.fetchrow(
            "SELECT * FROM documents WHERE invoice_id = $1" + (" FOR UPDATE" if lock else ""),
            invoice_id,
        )
        return None if row is None else _document(row)

    async def hold(self, invoice_id: str, payload: dict[str, Any]) -> None:
        """Keep a held closing's payload."""
        await self.conn.execute(
            "UPDATE documents SET held = $2::jsonb, updated_at = now() WHERE invoice_id = $1",
            invoice_id,
            json.dumps(payload),
        )

    async def release(self, invoice_id: str) -> dict[str, Any] | None:
        """The held closing's payload, no longer held."""
        held = await self.conn.fetchval(
            "UPDATE documents d SET held = NULL, updated_at = now() FROM "
            "(SELECT invoice_id, held FROM documents WHERE invoice_id = $1 AND held IS NOT NULL "
            "FOR UPDATE) old WHERE d.invoice_id = old.invoice_id RETURNING old.held",
            invoice_id,
        )
        return None if held is None else dict(json.loads(held))


class PgJobScheduler:
    """ledger-closer's jobs in the runtime's ``jobs``, in the caller's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def schedule(
        self,
        *,
        kind: str,
        key: str,
        tenant_id: str,
        payload: dict[str, Any],
        due_at: dt.datetime,
    ) -> bool:
        """Record a job; False if one with the same kind and key exists already."""
        return await jobs.schedule(
            self.conn, kind=kind, key=key, tenant_id=tenant_id, payload=payload, due_at=due_at
        )

    async def exists(self, *, kind: str, key: str, tenant_id: str, invoice_id: str) -> bool:
        """Whether the tenant has a job of that kind and key for that invoice."""
        found = await self.conn.fetchval(
            "SELECT true FROM jobs WHERE kind = $1 AND job_key = $2 AND tenant_id = $3 "
            "AND payload ->> 'invoice_id' = $4",
            kind,
            key,
            tenant_id,
            invoice_id,
        )
        return bool(found)


def pg_repositories(conn: asyncpg.Connection, pool: asyncpg.Pool) -> Repositories:
    """The repositories on one transaction's connection; the intent log on the pool."""
    return Repositories(
        connections=PgConnectionRepository(conn),
        entries=PgEntryRepository(conn),
        intents=PgIntentLog(pool),
        jobs=PgJobScheduler(conn),
        profiles=PgTenantProfiles(conn),
        bookings=PgBookingRepository(conn),
        transfers=PgTransferRepository(conn),
        documents=PgDocumentRepository(conn),
    )
