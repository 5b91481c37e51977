"""Fakes of mapper's repositories and test factories (fetched documents, tenant profiles) for
fast use-case tests; importable by tests, never used by production code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.testing import PERSONAL_DATA_KEY
from nordflow_schemas.claims import cut
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.events import (
    RELATED_TENANT,
    DocumentKind,
    ErpDocumentChunked,
    ErpDocumentFetched,
    ValidationIssue,
)
from nordflow_schemas.invoice import Address, Party
from nordflow_schemas.tenant import AccountScheme, BankAccount, TenantProfile
from nordflow_schemas.testing import tenant_profile
from pydantic import SecretStr, TypeAdapter

from .app import create_app
from .config import Settings
from .deps import Deps
from .domain.references import TenantReferencePolicy
from .service import (
    InvoiceStatus,
    MappedRow,
    MappedVersion,
    PaymentKey,
    Repositories,
    SeenPayment,
    StoredChunk,
)

# -- the service and its fakes ----------------------------------------------------------------


def app_for(database_url: str) -> ServiceApp[Deps]:
    """The service as ``run`` builds it, on a database (no broker: the harness needs none)."""
    return create_app(
        Settings(
            kafka_bootstrap_servers="unused:9092",
            database_url=SecretStr(database_url),
            personal_data_key=SecretStr(PERSONAL_DATA_KEY),  # the session's shared key
        )
    )


@dataclass
class StoredInvoice:
    """A fake ``invoices`` row."""

    tenant_id: str
    version: str
    status: InvoiceStatus
    number: str | None
    errors: tuple[ValidationIssue, ...]
    created_emitted: bool


@dataclass
class FakeInvoiceRepository:
    """Invoices' last mapped versions in a dict by invoice id."""

    rows: dict[str, StoredInvoice] = field(default_factory=dict)

    async def lock(self, invoice_ids: list[str]) -> dict[str, MappedVersion]:
        """The invoices' last mapped versions."""
        return {
            i: MappedVersion(row.version, row.status, row.created_emitted)
            for i in invoice_ids
            if (row := self.rows.get(i)) is not None
        }

    async def record(self, rows: list[MappedRow]) -> None:
        """Keep the versions; created_emitted stays true once set."""
        for r in rows:
            status = InvoiceStatus.REJECTED if r.errors else InvoiceStatus.CREATED
            before = self.rows.get(r.invoice_id)
            emitted = status is InvoiceStatus.CREATED or (
                before is not None and before.created_emitted
            )
            self.rows[r.invoice_id] = StoredInvoice(
                r.tenant_id, r.version, status, r.number, r.errors, emitted
            )


@dataclass
class FakePaymentRepository:
    """Emitted payments in a dict by key: (version, emitted amount, last amount, currency)."""

    rows: dict[PaymentKey, tuple[str, Decimal, Decimal, str]] = field(default_factory=dict)

    async def insert(
        self, key: PaymentKey, *, version: str, amount: Decimal, currency: str
    ) -> bool:
        """Record the payment; False if it is recorded already."""
        if key in self.rows:
            return False
        self.rows[key] = (version, amount, amount, currency)
        return True

    async def lock(self, key: PaymentKey) -> SeenPayment | None:
        """The recorded payment, if any."""
        row = self.rows.get(key)
        return None if row is None else SeenPayment(row[0], row[1], row[2])

    async def update_seen(self, key: PaymentKey, *, version: str, amount: Decimal) -> None:
        """Note a later version and its amount."""
        _, emitted, _, currency = self.rows[key]
        self.rows[key] = (version, emitted, amount, currency)


@dataclass
class FakeReferencePolicies:
    """Policies in a dict by tenant."""

    policies: dict[str, TenantReferencePolicy] = field(default_factory=dict)

    async def get(self, tenant_id: str) -> TenantReferencePolicy | None:
        """The tenant's policy, if any."""
        return self.policies.get(tenant_id)

    async def of_tenants(self, tenant_ids: list[str]) -> dict[str, TenantReferencePolicy]:
        """The policies of those tenants that have one."""
        return {t: self.policies[t] for t in tenant_ids if t in self.policies}

    async def save(self, policy: TenantReferencePolicy) -> None:
        """Create or replace the tenant's policy."""
        self.policies[policy.tenant_id] = policy


@dataclass
class FakePayloadChunks:
    """Chunks by (tenant, sha256, index), each with the time it was last received."""

    rows: dict[tuple[str, str, int], tuple[StoredChunk, dt.datetime]] = field(default_factory=dict)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    async def store(self, chunks: list[StoredChunk]) -> None:
        """Keep each chunk once; again: only its time moves."""
        for chunk in chunks:
            key = (chunk.tenant_id, chunk.sha256, chunk.index)
            kept = self.rows[key][0] if key in self.rows else chunk
            self.rows[key] = (kept, self.clock())

    async def pieces(self, tenant_id: str, sha256: str, count: int) -> dict[int, bytes]:
        """The tenant's chunks of that content below ``count``."""
        return {
            i: chunk.data
            for (t, s, i), (chunk, _) in self.rows.items()
            if t == tenant_id and s == sha256 and i < count
        }

    async def purge(self, received_before: dt.datetime) -> int:
        """Forget the chunks last received before then."""
        old = [k for k, (_, at) in self.rows.items() if at < received_before]
        for key in old:
            del self.rows[key]
        return len(old)


@dataclass(frozen=True)
class Fakes(Repositories):
    """The fakes of every repository, typed as such (so tests can look inside)."""

    invoices: FakeInvoiceRepository
    payments: FakePaymentRepository
    policies: FakeReferencePolicies
    chunks: FakePayloadChunks


def fake_repositories() -> Fakes:
    """Empty fakes of every repository."""
    return Fakes(
        invoices=FakeInvoiceRepository(),
        payments=FakePaymentRepository(),
        policies=FakeReferencePolicies(),
        chunks=FakePayloadChunks(),
    )


# -- documents as erp-poller sends them -------------------------------------------------------


def seller_profile(
    country: str = "SE",
    *,
    name: str | None = None,
    company_id: str | None = None,
    vat_id: str | None = None,
    street: str | None = None,
    postal_code: str | None = None,
    city: str | None = None,
    email: str | None = None,
    bankgiro: str | None = None,
    accounts: tuple[BankAccount, ...] = (),
) -> TenantProfile:
    """A tenant's profile (``nordflow_schemas.testing.tenant_profile``) whose seller has these
    details; ``bankgiro`` adds a Bankgiro account for every currency."""
    base = tenant_profile(country, name=name)
    if bankgiro is not None:
        accounts = (BankAccount(scheme=AccountScheme.BANKGIRO, account_id=bankgiro), *accounts)
    return TenantProfile(
        legal_name=base.legal_name,
        country=base.country,
        time_zone=base.time_zone,
        locale=base.locale,
        accounting_currency=base.accounting_currency,
        seller=Party(
            name=base.legal_name,
            company_id=company_id,
            vat_id=vat_id,
            address=Address(
                lines=(street,) if street else (),
                postal_code=postal_code,
                city=city,
                country_code=country,
            ),
            email=email,
        ),
        bank_accounts=accounts,
    )


SWEDISH_SELLER = seller_profile(
    "SE",
    name="Demo AB",
    company_id="556036-0793",
    vat_id="SE556036079301",
    street="Storgatan 1",
    postal_code="11122",
    city="Stockholm",
    bankgiro="5050-1055",
)
"""A Swedish tenant with a valid organisation and VAT number and a Bankgiro account."""
NORWEGIAN_SELLER = seller_profile(
    "NO",
    name="Demo AS",
    company_id="974760673",
    vat_id="NO974760673MVA",
    street="Storgata 1",
    postal_code="0155",
    city="Oslo",
    email="faktura@demo.no",
)
"""A Norwegian tenant with a valid organisation and VAT number and no bank account."""


def with_seller(profile: TenantProfile, **changes: Any) -> TenantProfile:
    """The profile with its seller party's fields changed (e.g. ``company_id=...``)."""
    seller = Party.model_validate({**profile.seller.model_dump(), **changes})
    return TenantProfile.model_validate({**profile.model_dump(), "seller": seller})


def related_tenant(profile: TenantProfile | None) -> dict[str, dict[str, Any]]:
    """``related`` carrying the profile as erp-poller sends it (nothing for None)."""
    return {} if profile is None else {RELATED_TENANT: profile.model_dump(mode="json")}


def fetched(
    system: SourceSystem,
    payload: dict[str, Any],
    *,
    kind: DocumentKind = DocumentKind.INVOICE,
    profile: TenantProfile | None = SWEDISH_SELLER,
    related: dict[str, dict[str, Any]] | None = None,
    tenant_id: str = "acme",
    invoice_id: str = "inv_1",
    connection_id: str = "c1",
    document_id: str = "1001",
    document_number: str | None = None,
    version: str = "v1",
    test_mode: bool = False,
) -> ErpDocumentFetched:
    """``erp.document.fetched`` for a source document, with the tenant's ``profile``
    (``None``: a document without one) and further ``related`` records."""
    return ErpDocumentFetched(
        tenant_id=tenant_id,
        invoice_id=invoice_id,
        test_mode=test_mode,
        source=SourceRef(
            system=system,
            connection_id=connection_id,
            document_id=document_id,
            document_number=document_number,
        ),
        kind=kind,
        version=version,
        fetched_at=dt.datetime.now(dt.UTC),
        payload=payload,
        related={**related_tenant(profile), **(related or {})},
    )


def fortnox_invoice(number: str = "12345", **changes: Any) -> dict[str, Any]:
    """A valid Fortnox invoice of 1000 SEK + 25 % VAT as ``GET /3/invoices/{n}`` returns it,
    with no OCR set (``changes`` replace fields)."""
    return {
        "DocumentNumber": number,
        "CustomerNumber": "7",
        "CustomerName": "Kund AB",
        "InvoiceDate": "2026-11-20",
        "DueDate": "2026-12-20",
        "Currency": "SEK",
        "OCR": "",
        "Address1": "Kundvägen 2",
        "City": "Uppsala",
        "ZipCode": "75320",
        "InvoiceRows": [
            {"Description": "Konsult", "DeliveredQuantity": 2, "Price": 500, "VAT": 25,
             "Total": 1000}
        ],
        "Net": 1000,
        "TotalVAT": 250,
        "RoundOff": 0,
        "Total": 1250,
        "Balance": 1250,
        **changes,
    }  # fmt: skip


def fortnox_payment(number: str = "12", invoice: str = "12345", **changes: Any) -> dict[str, Any]:
    """A Fortnox invoice payment of 1250 SEK as ``GET /3/invoicepayments/{n}`` returns it."""
    return {
        "Number": number,
        "InvoiceNumber": int(invoice),
        "Amount": 1250,
        "AmountCurrency": 1250,
        "Currency": "SEK",
        "PaymentDate": "2026-11-25",
        "InvoiceCustomerName": "Kund AB",
        "InvoiceOCR": None,
        **changes,
    }


def json_values(*samples: object, keys: Sequence[str] = ("name",)) -> st.SearchStrategy[Any]:
    """Any JSON value a source field may hold by mistake (for the mappers' property tests):
    null, booleans, integers, text, decimal strings (NaN and infinities too), floats, and short
    lists and objects (with ``keys``) of those; ``samples`` are values that get further into a
    mapper (dates, codes, account numbers)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**6), 10**6),
        st.text(max_size=12),
        st.decimals(allow_nan=True, allow_infinity=True, places=2).map(str),
        st.floats(),
        *([st.sampled_from(samples)] if samples else []),
    )
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=2),
        st.dictionaries(st.sampled_from(list(keys)), scalars),
    )


def by_reference(
    event: ErpDocumentFetched, chunk_bytes: int = 64 * 1024
) -> tuple[ErpDocumentFetched, list[ErpDocumentChunked]]:
    """The event as erp-poller sends one too large to travel inline, and the chunks that
    carry its content (its payload and the source's related records; the tenant's profile
    stays in the event), cut ``chunk_bytes`` at a time."""
    source = {k: v for k, v in event.related.items() if k != RELATED_TENANT}
    content = TypeAdapter(dict[str, Any]).dump_json({"payload": event.payload, "related": source})
    ref, chunks = cut(event.tenant_id, content, chunk_bytes)
    kept = {k: v for k, v in event.related.items() if k == RELATED_TENANT}
    sent = event.model_copy(update={"payload": {}, "related": kept, "payload_ref": ref})
    return sent, chunks
