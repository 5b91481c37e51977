"""Pure rules of payments and closings: what an entry is, its parts (the money, a fee, an
advance cleared), its business date, how it is closed per agreement kind, and which payment
already in the ERP counts as ours (adoption)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nordflow_schemas.common import SourceRef
from nordflow_schemas.events import AgreementKind, EntryKind
from nordflow_schemas.invoice import DocumentType
from nordflow_schemas.tenant import TenantProfile, tenant_zone

from .connections import AccountMapping, AccountRole

# The durable job kinds that write one entry into the ERP: a closing (waits for the send to
# be reported, so it retries for days) and every other entry.
POST_ENTRY = "post-entry"
CLOSE_INVOICE = "close-invoice"

# invoice.transferred names no country; a tenant without a profile yet keeps the zone of
# Sweden (nordflow_schemas.tenant.COUNTRY_ZONES["SE"]), as every closing had before profiles.
COUNTRY_WITHOUT_PROFILE = "SE"
ZERO = Decimal(0)


@dataclass(frozen=True)
class PlannedEntry:
    """One entry to write: a job's payload.

    ``amount`` is what the entry settles of the document (negative: a refund of a credit
    note). Of it, ``fee`` goes to the fee account and ``advance`` clears the financing
    liability; the rest is the money on the role's account. ``target`` names the connection
    to write into when it is not the source's own (a flow's ``book_into``); then the document
    there is the one ledger-closer booked, and the payment is bookkept.
    """

    invoice_id: str
    kind: EntryKind
    source: SourceRef
    amount: Decimal
    currency: str
    paid_on: dt.date
    account_role: AccountRole
    fee: Decimal = ZERO
    advance: Decimal = ZERO
    target: str | None = None
    document_type: DocumentType = DocumentType.INVOICE
    entry_key: str | None = None

    @property
    def cash(self) -> Decimal:
        """The money on the role's account: the amount less the fee and the advance."""
        return self.amount - self.fee - self.advance

    @property
    def connection_id(self) -> str:
        """The connection written into."""
        return self.target or self.source.connection_id

    def payload(self) -> dict[str, Any]:
        """The job payload (JSON)."""
        body: dict[str, Any] = {
            "invoice_id": self.invoice_id,
            "kind": self.kind.value,
            "source": self.source.model_dump(mode="json"),
            "amount": str(self.amount),
            "currency": self.currency,
            "paid_on": self.paid_on.isoformat(),
            "account_role": self.account_role.value,
            "document_type": self.document_type.value,
        }
        if self.fee:
            body["fee"] = str(self.fee)
        if self.advance:
            body["advance"] = str(self.advance)
        if self.target is not None:
            body["target"] = self.target
        if self.entry_key is not None:
            body["entry_key"] = self.entry_key
        return body

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PlannedEntry:
        """The entry a job's payload describes (payloads of earlier versions too)."""
        return cls(
            invoice_id=payload["invoice_id"],
            kind=EntryKind(payload["kind"]),
            source=SourceRef.model_validate(payload["source"]),
            amount=Decimal(payload["amount"]),
            currency=payload["currency"],
            paid_on=dt.date.fromisoformat(payload["paid_on"]),
            account_role=AccountRole(payload["account_role"]),
            fee=Decimal(payload.get("fee", "0")),
            advance=Decimal(payload.get("advance", "0")),
            target=payload.get("target"),
            document_type=DocumentType(payload.get("document_type", DocumentType.INVOICE)),
            entry_key=payload.get("entry_key"),
        )


@dataclass(frozen=True)
class ErpEntry:
    """An entry as one ERP is asked to write it: the document there, the accounts, our
    reference (the entry key, and a short form of it for fields of limited length)."""

    key: str
    kind: EntryKind
    document_id: str
    document_number: str
    credit_note: bool
    amount: Decimal
    cash: Decimal
    fee: Decimal
    advance: Decimal
    currency: str
    paid_on: dt.date
    account: int
    accounts: AccountMapping
    mode_of_payment: str
    bookkeep: bool

    @property
    def reference(self) -> str:
        """Our reference in 20 characters (payment references are short in every ERP)."""
        return short_reference(self.key)


def short_reference(key: str) -> str:
    """``NF`` and 18 hex digits of the key's SHA-256: unique enough, short enough."""
    return "NF" + hashlib.sha256(key.encode()).hexdigest()[:18].upper()


def closing_key(invoice_id: str) -> str:
    """The job (and entry) key of an invoice's closing: one per invoice."""
    return f"closing:{invoice_id}"


def payment_key(invoice_id: str, payment_id: str, target: str | None = None) -> str:
    """The job (and entry) key of a reported payment: one per invoice it is booked on,
    payment id (and target). A payment id alone is unique only in its source: two Sirvoy
    accounts of one tenant both have a payment 900001, and a Visma.net payment applied to
    two invoices is one id; the invoice id is scoped by tenant and connection."""
    return f"payment:{invoice_id}:{payment_id}" + ("" if target is None else f"@{target}")


def legacy_payment_key(payment_id: str, target: str | None = None) -> str:
    """The key a payment was scheduled under before its invoice was part of it (jobs and
    entries made then keep it)."""
    return f"payment:{payment_id}" if target is None else f"payment:{payment_id}@{target}"


def advance_key(invoice_id: str) -> str:
    """The job (and entry) key of a financing advance: one per invoice."""
    return f"advance:{invoice_id}"


def closing_amount(amount: Decimal, document_type: DocumentType) -> Decimal:
    """What closes a transferred document: its amount; a credit note by a refund (negative)."""
    return -amount if document_type is DocumentType.CREDIT_NOTE else amount


def closes_at_transfer(kind: AgreementKind) -> bool:
    """Factoring closes the invoice against the factoring receivable after the transfer;
    financing (the advance is a liability) and invoice service close when the buyer's payment
    is reported."""
    return kind is AgreementKind.FACTORING


def closing_zone(profile: TenantProfile | None) -> ZoneInfo:
    """The zone a closing's business date is taken in: the tenant's profile's zone; without a
    profile, Sweden's (``COUNTRY_WITHOUT_PROFILE``)."""
    return tenant_zone(profile, COUNTRY_WITHOUT_PROFILE)


def matches(
    payment: Mapping[str, Any], amount: Decimal, mode: str, account: int, paid_on: str
) -> bool:
    """Whether a Fortnox payment has every detail of the entry: amount, mode, account, date."""
    return (
        Decimal(str(payment.get("Amount", "0"))) == amount
        and str(payment.get("ModeOfPayment") or "") == mode
        and str(payment.get("ModeOfPaymentAccount") or "") == str(account)
        and str(payment.get("PaymentDate") or "") == paid_on
    )


def adoptable(
    payments: Iterable[Mapping[str, Any]],
    *,
    amount: Decimal,
    mode: str,
    account: int,
    paid_on: dt.date,
    known: set[str],
) -> Mapping[str, Any] | None:
    """The first ERP payment that an earlier attempt may have made: every detail equal, and
    not already recorded as another entry of ours (its ``Number`` not in ``known``)."""
    day = paid_on.isoformat()
    for payment in payments:
        if matches(payment, amount, mode, account, day) and str(payment.get("Number")) not in known:
            return payment
    return None
