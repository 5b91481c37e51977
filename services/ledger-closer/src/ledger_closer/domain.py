"""Pure rules of closing: what an entry is, its amount and sign, the account it is booked on,
its business date, and which payment already in the ERP counts as ours (adoption)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from nordflow_schemas.common import SourceRef
from nordflow_schemas.events import EntryKind
from nordflow_schemas.invoice import DocumentType
from nordflow_schemas.tenant import TenantProfile, tenant_zone

# The durable job kind that writes one entry into the ERP.
POST_ENTRY = "post-entry"

# invoice.transferred names no country; a tenant without a profile yet keeps the zone of
# Sweden (nordflow_schemas.tenant.COUNTRY_ZONES["SE"]), as every closing had before profiles:
# the only ERP written to is Fortnox, whose companies are Swedish.
COUNTRY_WITHOUT_PROFILE = "SE"


class AccountRole(StrEnum):
    """Which of the write connection's accounts an entry is booked against."""

    FACTORING = "factoring"  # a closing: the factor paid the invoice
    BANK = "bank"  # a reported payment: the money came into the bank


class WriteSystem(StrEnum):
    """ERPs ledger-closer can write into."""

    FORTNOX = "fortnox"


class UnpostableError(Exception):
    """The entry can never be written as it is (the job fails; retrying cannot help)."""


class EntryRefusedError(UnpostableError):
    """The ERP refused the entry for good (a 4xx other than 408/429)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"ERP refused the entry: {detail}")


class AuthorizationRefusedError(UnpostableError):
    """The ERP refused ledger-closer's authorization (the grant is spent, expired or revoked)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"ERP authorization refused: {detail} (authorize ledger-closer again and "
            "re-add the connection with the new refresh token; then retry the job)"
        )


class WriteConnectionMissingError(LookupError):
    """No write connection for the entry's source connection yet (retried: one may be added)."""

    def __init__(self, tenant_id: str, connection_id: str) -> None:
        super().__init__(f"no ERP write connection {connection_id!r} for tenant {tenant_id}")


class ConnectionOfAnotherTenantError(PermissionError):
    """A write connection id that is already another tenant's."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(f"connection {connection_id!r} belongs to another tenant")


@dataclass(frozen=True)
class WriteConnection:
    """Where and how ledger-closer writes for one source (erp-poller) connection.

    ``token_sealed`` is the sealed credentials (see ``credentials``); ``updated_at`` is when
    the connection was last saved (None before it is saved).
    """

    connection_id: str
    tenant_id: str
    system: str
    base_url: str
    token_sealed: bytes
    mode_of_payment: str = "FACT"
    factoring_account: int = 1512
    bank_account: int = 1930
    updated_at: dt.datetime | None = None

    def account_for(self, role: AccountRole) -> int:
        """The account an entry of ``role`` is booked against."""
        return self.factoring_account if role is AccountRole.FACTORING else self.bank_account


@dataclass(frozen=True)
class PlannedEntry:
    """One entry to write: the ``post-entry`` job's payload."""

    invoice_id: str
    kind: EntryKind
    source: SourceRef
    amount: Decimal
    currency: str
    paid_on: dt.date
    account_role: AccountRole

    def payload(self) -> dict[str, Any]:
        """The job payload (JSON)."""
        return {
            "invoice_id": self.invoice_id,
            "kind": self.kind.value,
            "source": self.source.model_dump(mode="json"),
            "amount": str(self.amount),
            "currency": self.currency,
            "paid_on": self.paid_on.isoformat(),
            "account_role": self.account_role.value,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PlannedEntry:
        """The entry a job's payload describes."""
        return cls(
            invoice_id=payload["invoice_id"],
            kind=EntryKind(payload["kind"]),
            source=SourceRef.model_validate(payload["source"]),
            amount=Decimal(payload["amount"]),
            currency=payload["currency"],
            paid_on=dt.date.fromisoformat(payload["paid_on"]),
            account_role=AccountRole(payload["account_role"]),
        )


def closing_key(invoice_id: str) -> str:
    """The job (and entry) key of an invoice's closing: one per invoice."""
    return f"closing:{invoice_id}"


def payment_key(payment_id: str) -> str:
    """The job (and entry) key of a reported payment: one per payment id."""
    return f"payment:{payment_id}"


def closing_amount(amount: Decimal, document_type: DocumentType) -> Decimal:
    """What closes a transferred document: its amount; a credit note by a refund (negative)."""
    return -amount if document_type is DocumentType.CREDIT_NOTE else amount


def closing_zone(profile: TenantProfile | None) -> ZoneInfo:
    """The zone a closing's business date is taken in: the tenant's profile's zone; without a
    profile, Sweden's (``COUNTRY_WITHOUT_PROFILE``)."""
    return tenant_zone(profile, COUNTRY_WITHOUT_PROFILE)


def matches(
    payment: Mapping[str, Any], amount: Decimal, mode: str, account: int, paid_on: str
) -> bool:
    """Whether an ERP payment has every detail of the entry: amount, mode, account, date."""
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
