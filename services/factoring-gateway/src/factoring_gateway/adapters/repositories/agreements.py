"""Agreements as rows: the plain terms as JSON, the transfer secret sealed apart."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg
from nordflow_references import KidAlgorithm, OcrControl, ReferenceKind, ReferencePolicy
from nordflow_schemas.events import AgreementKind, PayeeAccount

from ...domain.agreements import Agreement, Fees, Transfer, TransferMethod
from ...service.ports import StoredAgreement


def reference_to_json(policy: ReferencePolicy) -> dict[str, Any]:
    """A KID/OCR policy as JSON."""
    return {
        "kind": policy.kind.value,
        "ocr_control": policy.ocr_control.value,
        "ocr_lengths": list(policy.ocr_lengths),
        "ocr_length_digit": policy.ocr_length_digit,
        "kid_algorithm": policy.kid_algorithm.value,
        "kid_length": policy.kid_length,
        "kid_allow_dash": policy.kid_allow_dash,
        "factor_layout": policy.factor_layout,
    }


def reference_from_json(data: dict[str, Any]) -> ReferencePolicy:
    """A KID/OCR policy from JSON (ValueError when the combination is invalid)."""
    return ReferencePolicy(
        kind=ReferenceKind(data.get("kind", "none")),
        ocr_control=OcrControl(data.get("ocr_control", "hard")),
        ocr_lengths=tuple(data.get("ocr_lengths") or ()),
        ocr_length_digit=bool(data.get("ocr_length_digit", False)),
        kid_algorithm=KidAlgorithm(data.get("kid_algorithm", "mod10")),
        kid_length=data.get("kid_length"),
        kid_allow_dash=bool(data.get("kid_allow_dash", False)),
        factor_layout=data.get("factor_layout"),
    )


def terms_to_json(a: Agreement) -> dict[str, Any]:
    """Everything of an agreement but its ids, provider, kind and enabled flag."""
    t = a.transfer
    return {
        "client_number": a.client_number,
        "company_name": a.company_name,
        "file_format": a.file_format,
        "transfer": {
            "method": t.method.value,
            "host": t.host,
            "port": t.port,
            "username": t.username,
            "host_key": t.host_key,
            "upload_dir": t.upload_dir,
            "receipt_dir": t.receipt_dir,
            "settlement_dir": t.settlement_dir,
            "base_url": t.base_url,
        },
        "payee": a.payee.model_dump(mode="json") if a.payee else None,
        "assignment_text": dict(a.assignment_text),
        "reference": reference_to_json(a.reference),
        "recourse": a.recourse,
        "advance_percent": str(a.advance_percent) if a.advance_percent is not None else None,
        "fees": {"per_invoice": str(a.fees.per_invoice), "percent": str(a.fees.percent)},
        "window_start": a.window_start.isoformat(),
        "window_end": a.window_end.isoformat(),
        "max_age_days": a.max_age_days,
        "include_credit_notes": a.include_credit_notes,
        "payment_methods": sorted(a.payment_methods) if a.payment_methods is not None else None,
        "currencies": sorted(a.currencies),
    }


def agreement_from_row(row: asyncpg.Record) -> Agreement:
    """The domain agreement of a row (read for every batch of invoices decided; built once
    per content of the row, since an `Agreement` is immutable)."""
    return _agreement(
        row["agreement_id"],
        row["tenant_id"],
        row["provider"],
        row["kind"],
        row["enabled"],
        row["terms"],
    )


@functools.lru_cache(maxsize=4096)
def _agreement(
    agreement_id: str, tenant_id: str, provider: str, kind: str, enabled: bool, terms_json: str
) -> Agreement:
    terms = json.loads(terms_json)
    t = terms["transfer"]
    advance = terms.get("advance_percent")
    methods = terms.get("payment_methods")
    return Agreement(
        agreement_id=agreement_id,
        tenant_id=tenant_id,
        provider=provider,
        kind=AgreementKind(kind),
        enabled=enabled,
        client_number=terms["client_number"],
        company_name=terms.get("company_name"),
        file_format=terms["file_format"],
        transfer=Transfer(
            method=TransferMethod(t["method"]),
            host=t.get("host"),
            port=t.get("port", 22),
            username=t.get("username"),
            host_key=t.get("host_key"),
            upload_dir=t.get("upload_dir", "inbox"),
            receipt_dir=t.get("receipt_dir", "outbox"),
            settlement_dir=t.get("settlement_dir", "settlements"),
            base_url=t.get("base_url"),
        ),
        payee=PayeeAccount.model_validate(terms["payee"]) if terms.get("payee") else None,
        assignment_text=terms.get("assignment_text") or {},
        reference=reference_from_json(terms.get("reference") or {}),
        recourse=terms.get("recourse"),
        advance_percent=Decimal(advance) if advance is not None else None,
        fees=Fees(Decimal(terms["fees"]["per_invoice"]), Decimal(terms["fees"]["percent"])),
        window_start=dt.time.fromisoformat(terms["window_start"]),
        window_end=dt.time.fromisoformat(terms["window_end"]),
        max_age_days=terms["max_age_days"],
        include_credit_notes=terms["include_credit_notes"],
        payment_methods=frozenset(methods) if methods is not None else None,
        currencies=frozenset(terms["currencies"]),
    )


def _stored(row: asyncpg.Record) -> StoredAgreement:
    return StoredAgreement(
        agreement=agreement_from_row(row),
        sealed_secret=bytes(row["sealed_secret"]) if row["sealed_secret"] is not None else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PgAgreementRepository:
    """``agreements``."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def get(self, agreement_id: str) -> StoredAgreement | None:
        """One agreement."""
        row = await self.conn.fetchrow(
            "SELECT * FROM agreements WHERE agreement_id = $1", agreement_id
        )
        return _stored(row) if row is not None else None

    async def of_tenant(self, tenant_id: str) -> list[StoredAgreement]:
        """The tenant's agreements, oldest first."""
        rows = await self.conn.fetch(
            "SELECT * FROM agreements WHERE tenant_id = $1 ORDER BY created_at, agreement_id",
            tenant_id,
        )
        return [_stored(r) for r in rows]

    async def of_tenants(self, tenant_ids: Sequence[str]) -> dict[str, list[StoredAgreement]]:
        """The agreements of each of the tenants that has some, oldest first, in one
        statement."""
        rows = await self.conn.fetch(
            "SELECT * FROM agreements WHERE tenant_id = ANY($1::text[]) "
            "ORDER BY tenant_id, created_at, agreement_id",
            list(tenant_ids),
        )
        found: dict[str, list[StoredAgreement]] = {}
        for row in rows:
            found.setdefault(row["tenant_id"], []).append(_stored(row))
        return found

    async def save(self, agreement: Agreement, sealed_secret: bytes | None) -> None:
        """Create or replace; a None secret keeps the stored one."""
        await self.conn.execute(
            """INSERT INTO agreements (agreement_id, tenant_id, provider, kind, enabled, terms,
                                       sealed_secret)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
               ON CONFLICT (agreement_id) DO UPDATE SET provider = EXCLUDED.provider,
                   kind = EXCLUDED.kind, enabled = EXCLUDED.enabled, terms = EXCLUDED.terms,
                   sealed_secret = COALESCE(EXCLUDED.sealed_secret, agreements.sealed_secret),
                   updated_at = now()
               WHERE agreements.tenant_id = EXCLUDED.tenant_id""",
            agreement.agreement_id,
            agreement.tenant_id,
            agreement.provider,
            agreement.kind.value,
            agreement.enabled,
            json.dumps(terms_to_json(agreement)),
            sealed_secret,
        )
