"""On-premise ERPs: JSON and SIE 4i batches pushed by the agent, and the customer register SIE
vouchers are completed from (SIE 4 names a voucher's customer only by its dimension-8 object,
so name, identifiers, e-mail, GLN and postal address come from the register)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from nordflow_schemas.events import DocumentKind
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import sie
from .documents import Document, Outcome
from .pushed import AddressIn, In, Money, Rate, Text, field_errors

MAX_CUSTOMERS = 10_000  # per register push; a larger register is pushed in several requests
BATCH_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class ElectronicAddressIn(In):
    """A PEPPOL participant id: ISO 6523 scheme (0007, 0088, 0192 ...) and value."""

    scheme: str = Field(pattern=r"^\d{4}$")
    value: Text


class BuyerIn(In):
    """The invoice's buyer."""

    name: Text
    party_type: Literal["company", "private"] = "company"
    company_id: str | None = Field(default=None, max_length=20)
    vat_id: str | None = Field(default=None, max_length=20)
    customer_number: str | None = Field(default=None, max_length=50)
    email: str | None = Field(default=None, max_length=200)
    electronic_address: ElectronicAddressIn | None = None
    address: AddressIn = AddressIn()


class LineIn(In):
    """One line; ``net_amount`` defaults to quantity x unit_price."""

    description: Text
    quantity: Money
    unit_price: Money
    vat_rate: Rate
    vat_category: Literal["S", "Z", "E", "AE", "K", "G", "O"] | None = None
    net_amount: Money | None = None
    unit_code: str = Field(default="C62", max_length=3)
    article_number: str | None = Field(default=None, max_length=50)
    account_number: str | None = Field(default=None, max_length=20)


class TotalsIn(In):
    """The source's totals, checked against the lines by the mapper."""

    net: Money | None = None
    vat: Money | None = None
    rounding: Money | None = None
    payable: Money


class PaymentIn(In):
    """How to pay."""

    reference: str | None = Field(default=None, max_length=35, description="OCR / KID")
    terms: str | None = Field(default=None, max_length=100)
    method: str | None = Field(default=None, max_length=50)
    account_id: str | None = Field(default=None, max_length=50)
    account_scheme: str | None = Field(default=None, max_length=20)


class PrecedingIn(In):
    """The invoice a credit note credits."""

    number: Text
    document_id: str | None = Field(default=None, max_length=200)
    issue_date: dt.date | None = None


class JsonInvoice(In):
    """An on-premise invoice or credit note (amounts positive on credit notes too)."""

    issue_date: dt.date
    due_date: dt.date | None = None
    currency: str = Field(default="SEK", pattern=r"^[A-Z]{3}$")
    buyer: BuyerIn
    lines: list[LineIn] = Field(min_length=1, max_length=1000)
    totals: TotalsIn | None = None
    payment: PaymentIn | None = None
    buyer_reference: str | None = Field(default=None, max_length=200)
    order_reference: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    preceding_invoice: PrecedingIn | None = None


class BatchDocument(In):
    """One document of a JSON batch."""

    document_id: str = Field(pattern=r"^[^\s]{1,200}$")
    document_number: str | None = Field(default=None, max_length=100)
    kind: Literal["invoice", "credit_note"]
    invoice: JsonInvoice

    @model_validator(mode="after")
    def _credit_names_original(self) -> BatchDocument:
        if self.kind == "credit_note" and self.invoice.preceding_invoice is None:
            raise ValueError("a credit note must name the invoice it credits (preceding_invoice)")
        return self


class BatchIn(BaseModel):
    """The envelope of a JSON batch; its documents are validated one by one."""

    model_config = ConfigDict(extra="forbid")

    batch_id: str | None = Field(default=None, pattern=BATCH_ID.pattern)
    documents: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


def json_batch_documents(batch_id: str, batch: BatchIn) -> tuple[list[Document], list[Outcome]]:
    """The documents of a JSON batch, or (nothing, every problem) if any is invalid."""
    docs: list[Document] = []
    outcomes: list[Outcome] = []
    seen: set[str] = set()
    for index, raw in enumerate(batch.documents):
        raw_id = str(raw.get("document_id") or f"#{index}")
        try:
            doc = BatchDocument.model_validate(raw)
        except ValidationError as exc:
            outcomes.append(
                Outcome(
                    raw_id,
                    "error",
                    errors=[
                        {"field": f"documents[{index}].{e['field']}", "message": e["message"]}
                        for e in field_errors(exc)
                    ],
                )
            )
            continue
        if doc.document_id in seen:
            outcomes.append(
                Outcome(
                    doc.document_id,
                    "error",
                    errors=[
                        {
                            "field": f"documents[{index}].document_id",
                            "message": "appears twice in the batch",
                        }
                    ],
                )
            )
            continue
        seen.add(doc.document_id)
        outcomes.append(Outcome(doc.document_id, "valid", doc.kind, doc.document_number))
        docs.append(
            Document(
                document_id=doc.document_id,
                document_number=doc.document_number or doc.document_id,
                kind=DocumentKind(doc.kind),
                payload=dict(raw["invoice"]),
                related={"batch": {"batch_id": batch_id, "format": "json"}},
            )
        )
    if any(o.outcome == "error" for o in outcomes):
        return [], outcomes
    return docs, []


def sie_batch_documents(
    batch_id: str,
    parsed: sie.SieFile,
    customers: Mapping[str, dict[str, Any]] | None = None,
) -> tuple[list[Document], list[Outcome]]:
    """Each customer invoice voucher becomes a document; the others are reported as skipped.

    ``customers`` are the register entries of the vouchers' dimension-8 objects (see
    the connection's register): a voucher whose customer is registered carries the entry in
    ``related["customer"]``, and its version covers the entry, so a voucher pushed again
    after its customer was registered or changed flows again. Without an entry the document
    and its version are what they were before the register existed.
    """
    register = customers or {}
    docs: list[Document] = []
    skipped: list[Outcome] = []
    for voucher in parsed.vouchers:
        kind, reason = sie.invoice_kind(voucher)
        voucher_id = voucher.voucher_id or f"line-{voucher.line}"
        if kind is None:
            skipped.append(Outcome(voucher_id, "skipped", reason=reason))
            continue
        if not voucher.number:
            skipped.append(
                Outcome(
                    voucher_id,
                    "skipped",
                    reason="the voucher has no number, so it cannot be told apart across files",
                )
            )
            continue
        invoice_number = next(
            (obj for t in voucher.transactions for dim, obj in t.objects if dim == "10"), None
        )
        payload = parsed.voucher_json(voucher)
        related: dict[str, dict[str, Any]] = {"batch": {"batch_id": batch_id, "format": "sie4i"}}
        number = sie.customer_object(voucher)
        card = register.get(number) if number is not None else None
        if card is not None:
            related["customer"] = card
        docs.append(
            Document(
                document_id=parsed.document_id(voucher),
                document_number=invoice_number or voucher.voucher_id,
                kind=DocumentKind(kind),
                payload=payload,
                related=related,
                versioned=None if card is None else {"voucher": payload, "customer": card},
            )
        )
    return docs, skipped


# --------------------------------------------------------------------- customer register

# Deliberately loose: the address must reach a mail server, not satisfy RFC 5322 in full.
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def gln_is_valid(value: str) -> bool:
    """A GS1 Global Location Number: 13 digits, the last a GS1 mod-10 check digit."""
    if len(value) != 13 or not value.isdigit() or not value.isascii():
        return False
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(value[:12]))
    return (10 - weighted % 10) % 10 == int(value[12])


class CustomerAddressIn(In):
    """A registered customer's postal address; without a country the seller's is meant."""

    lines: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=4)
    postal_code: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=100)
    country_code: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")

    @field_validator("postal_code", "city", "country_code", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class RegisteredCustomer(In):
    """One customer of an on-premise ERP's register, by the number its SIE files give the
    customer's dimension-8 (kund) object."""

    customer_number: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    type: Literal["company", "private"]
    organisation_number: str | None = Field(
        default=None, max_length=20, description="Org. no., or a private customer's personal no."
    )
    vat_number: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=200, pattern=EMAIL)
    gln: str | None = Field(
        default=None, description="GS1 GLN: the PEPPOL electronic address (scheme 0088)"
    )
    address: CustomerAddressIn

    @field_validator("organisation_number", "vat_number", "email", "gln", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        # ERP exports write an empty field for "none".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("gln")
    @classmethod
    def _gln(cls, value: str | None) -> str | None:
        if value is not None and not gln_is_valid(value):
            raise ValueError("a GLN is 13 digits with a valid GS1 check digit")
        return value


class CustomerRegisterIn(BaseModel):
    """A push of (part of) a connection's customer register: upserted by customer number."""

    model_config = ConfigDict(extra="forbid")

    customers: list[RegisteredCustomer] = Field(max_length=MAX_CUSTOMERS)


def duplicate_customers(register: CustomerRegisterIn) -> list[dict[str, Any]]:
    """422 details for customer numbers given twice: which entry would win is not obvious."""
    first: dict[str, int] = {}
    problems: list[dict[str, Any]] = []
    for index, customer in enumerate(register.customers):
        seen = first.setdefault(customer.customer_number, index)
        if seen != index:
            problems.append(
                {
                    "loc": ["body", "customers", index, "customer_number"],
                    "msg": f"{customer.customer_number!r} is given twice (also customers[{seen}])",
                    "type": "duplicate",
                }
            )
    return problems
