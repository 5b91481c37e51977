"""PostgreSQL repositories of mapper (all of its SQL)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import asyncpg
from nordflow_references import KidAlgorithm, OcrControl, ReferenceKind, ReferencePolicy

from ..domain.references import TenantReferencePolicy
from ..service import (
    InvoiceStatus,
    MappedRow,
    MappedVersion,
    PaymentKey,
    Repositories,
    SeenPayment,
    StoredChunk,
)


class PgInvoiceRepository:
    """Each invoice's last mapped version in ``invoices`` (one row per canonical id)."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def lock(self, invoice_ids: list[str]) -> dict[str, MappedVersion]:
        """The invoices' last mapped versions, locked until the transaction ends (in id order,
        so two transactions never wait for each other in a circle)."""
        rows = await self.conn.fetch(
            "SELECT invoice_id, version, status, created_emitted FROM invoices "
            "WHERE invoice_id = ANY($1::text[]) ORDER BY invoice_id FOR UPDATE",
            invoice_ids,
        )
        return {
            row["invoice_id"]: MappedVersion(
                version=row["version"],
                status=InvoiceStatus(row["status"]),
                created_emitted=row["created_emitted"],
            )
            for row in rows
        }

    async def record(self, rows: list[MappedRow]) -> None:
        """Upsert the rows (one per invoice); ``created_emitted`` becomes and stays true once
        a version is created."""
        await self.conn.execute(
            """INSERT INTO invoices (invoice_id, tenant_id, version, status, number, errors,
                                    created_emitted)
               SELECT i, t, v, s, n, e::jsonb, s = 'created'
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                           $6::text[]) AS x(i, t, v, s, n, e)
               ON CONFLICT (invoice_id) DO UPDATE SET version = EXCLUDED.version,
                   status = EXCLUDED.status, number = EXCLUDED.number, errors = EXCLUDED.errors,
                   created_emitted = invoices.created_emitted OR EXCLUDED.created_emitted,
                   updated_at = now()""",
            [r.invoice_id for r in rows],
            [r.tenant_id for r in rows],
            [r.version for r in rows],
            [(InvoiceStatus.REJECTED if r.errors else InvoiceStatus.CREATED).value for r in rows],
            [r.number for r in rows],
            [json.dumps([i.model_dump() for i in r.errors]) if r.errors else None for r in rows],
        )


class PgPaymentRepository:
    """Emitted payments in ``payments`` (one row per payment document and paid invoice)."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def insert(
        self, key: PaymentKey, *, version: str, amount: Decimal, currency: str
    ) -> bool:
        """Record the payment as emitted; False if it is recorded already."""
        inserted = await self.conn.fetchval(
            """INSERT INTO payments (tenant_id, system, connection_id, payment_id, invoice_id,
                                     version, emitted_amount, last_amount, currency)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)
               ON CONFLICT DO NOTHING RETURNING true""",
            key.tenant_id,
            key.system,
            key.connection_id,
            key.payment_id,
            key.invoice_id,
            version,
            amount,
            currency,
        )
        return bool(inserted)

    async def lock(self, key: PaymentKey) -> SeenPayment | None:
        """The recorded payment, locked until the transaction ends."""
        row = await self.conn.fetchrow(
            """SELECT version, emitted_amount, last_amount FROM payments
               WHERE tenant_id = $1 AND system = $2 AND connection_id = $3 AND payment_id = $4
                 AND invoice_id = $5 FOR UPDATE""",
            key.tenant_id,
            key.system,
            key.connection_id,
            key.payment_id,
            key.invoice_id,
        )
        if row is None:
            return None
        return SeenPayment(
            version=row["version"],
            emitted_amount=row["emitted_amount"],
            last_amount=row["last_amount"],
        )

    async def update_seen(self, key: PaymentKey, *, version: str, amount: Decimal) -> None:
        """Note a later version of a recorded payment and its amount."""
        await self.conn.execute(
            """UPDATE payments SET version = $6, last_amount = $7, updated_at = now()
               WHERE tenant_id = $1 AND system = $2 AND connection_id = $3 AND payment_id = $4
                 AND invoice_id = $5""",
            key.tenant_id,
            key.system,
            key.connection_id,
            key.payment_id,
            key.invoice_id,
            version,
            amount,
        )


def _policy(row: asyncpg.Record) -> TenantReferencePolicy:
    return TenantReferencePolicy(
        tenant_id=row["tenant_id"],
        policy=ReferencePolicy(
            kind=ReferenceKind(row["kind"]),
            ocr_control=OcrControl(row["ocr_control"]),
            ocr_lengths=tuple(row["ocr_lengths"]),
            ocr_length_digit=row["ocr_length_digit"],
            kid_algorithm=KidAlgorithm(row["kid_algorithm"]),
            kid_length=row["kid_length"],
            kid_allow_dash=row["kid_allow_dash"],
            factor_layout=row["factor_layout"],
        ),
        factoring_number=row["factoring_number"],
    )


class PgReferencePolicyRepository:
    """The tenants' payment-reference policies in ``reference_policies``."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def get(self, tenant_id: str) -> TenantReferencePolicy | None:
        """The tenant's stored policy, or None when it has none."""
        return (await self.of_tenants([tenant_id])).get(tenant_id)

    async def of_tenants(self, tenant_ids: list[str]) -> dict[str, TenantReferencePolicy]:
        """The stored policies of those tenants that have one."""
        rows = await self.conn.fetch(
            "SELECT * FROM reference_policies WHERE tenant_id = ANY($1::text[])", tenant_ids
        )
        return {row["tenant_id"]: _policy(row) for row in rows}

    async def save(self, policy: TenantReferencePolicy) -> None:
        """Create or replace the tenant's policy."""
        p = policy.policy
        await self.conn.execute(
            """INSERT INTO reference_policies (tenant_id, kind, ocr_control, ocr_lengths,
                   ocr_length_digit, kid_algorithm, kid_length, kid_allow_dash, factor_layout,
                   factoring_number)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (tenant_id) DO UPDATE SET kind = EXCLUDED.kind,
                   ocr_control = EXCLUDED.ocr_control, ocr_lengths = EXCLUDED.ocr_lengths,
                   ocr_length_digit = EXCLUDED.ocr_length_digit,
                   kid_algorithm = EXCLUDED.kid_algorithm, kid_length = EXCLUDED.kid_length,
                   kid_allow_dash = EXCLUDED.kid_allow_dash,
                   factor_layout = EXCLUDED.factor_layout,
                   factoring_number = EXCLUDED.factoring_number, updated_at = now()""",
            policy.tenant_id,
            p.kind.value,
            p.ocr_control.value,
            list(p.ocr_lengths),
            p.ocr_length_digit,
            p.kid_algorithm.value,
            p.kid_length,
            p.kid_allow_dash,
            p.factor_layout,
            policy.factoring_number,
        )


class PgPayloadChunkRepository:
    """Chunks of contents that came by reference, in ``payload_chunks``."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def store(self, chunks: list[StoredChunk]) -> None:
        """Insert the chunks in one statement; one kept already keeps its bytes and only
        ``received_at`` moves (its retention starts again)."""
        if not chunks:
            return
        await self.conn.execute(
            """INSERT INTO payload_chunks (tenant_id, sha256, chunk_index, chunk_count, size, data)
               SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::bigint[],
                                    $6::bytea[])
               ON CONFLICT (tenant_id, sha256, chunk_index) DO UPDATE SET received_at = now()""",
            [c.tenant_id for c in chunks],
            [c.sha256 for c in chunks],
            [c.index for c in chunks],
            [c.count for c in chunks],
            [c.size for c in chunks],
            [c.data for c in chunks],
        )

    async def pieces(self, tenant_id: str, sha256: str, count: int) -> dict[int, bytes]:
        """The tenant's chunks of that content below ``count``, by index."""
        rows = await self.conn.fetch(
            "SELECT chunk_index, data FROM payload_chunks "
            "WHERE tenant_id = $1 AND sha256 = $2 AND chunk_index < $3",
            tenant_id,
            sha256,
            count,
        )
        return {row["chunk_index"]: bytes(row["data"]) for row in rows}

    async def purge(self, received_before: dt.datetime) -> int:
        """Delete the chunks last received before then; how many."""
        rows = await self.conn.fetch(
            "DELETE FROM payload_chunks WHERE received_at < $1 RETURNING 1", received_before
        )
        return len(rows)


def pg_repositories(conn: asyncpg.Connection) -> Repositories:
    """The repositories on one connection (the consumer's batch transaction)."""
    return Repositories(
        invoices=PgInvoiceRepository(conn),
        payments=PgPaymentRepository(conn),
        policies=PgReferencePolicyRepository(conn),
        chunks=PgPayloadChunkRepository(conn),
    )
