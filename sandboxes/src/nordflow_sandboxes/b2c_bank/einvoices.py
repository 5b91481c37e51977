"""Consumers who take e-invoices in their internet bank, e-invoices, and how one is validated."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from nordflow_schemas.money import CENT

from nordflow_sandboxes.b2c_bank.references import (
    giro_number_ok,
    kid_mod11_ok,
    luhn_sum_ok,
    norwegian_account_ok,
)
from nordflow_sandboxes.kit.server import ApiError, FieldErrors, PartnerState
from nordflow_sandboxes.kit.values import STOCKHOLM, utc_now

EInvoiceStatus = Literal["accepted", "presented", "paid"]
Country = Literal["SE", "NO"]

CURRENCY_OF: dict[str, str] = {"SE": "SEK", "NO": "NOK"}
ACCOUNT_TYPES: dict[str, str] = {"bankgiro": "SEK", "plusgiro": "SEK", "bank_account": "NOK"}
FIELDS = {
    "consumer_reference",
    "payee_account",
    "payment_reference",
    "amount",
    "currency",
    "due_date",
    "invoice_number",
    "issuer_name",
    "client_reference",
    "pdf",
}
MAX_AMOUNT = Decimal("99999999.99")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_REFERENCE = re.compile(r"^[0-9]{2,25}$|^[0-9]{1,24}-$")
_REFUSED = "The e-invoice was refused: see errors"


def normalize_email(raw: str) -> str | None:
    """Lower-cased e-mail address, or None when it is not one."""
    value = raw.strip().lower()
    return value if _EMAIL.match(value) else None


def normalize_phone(raw: str) -> str | None:
    """E.164 (`+46701234567`) from that with spaces or dashes, or `0046…`; else None."""
    value = re.sub(r"[\s\-()]", "", raw)
    if value.startswith("00"):
        value = f"+{value[2:]}"
    return value if _PHONE.match(value) else None


def organisation_digits(raw: str) -> str:
    """An organisation number compared by its digits only (`556677-8899` = `5566778899`)."""
    return re.sub(r"[^0-9]", "", raw)


@dataclass
class Consumer:
    """A private person registered for e-invoices in an internet bank.

    `accepts_all_issuers` is the consent to e-invoices from every issuer (Norway's
    "ja takk til alle", Sweden's "alltid e-faktura"); otherwise only `accepted_issuers`
    may send. `blocked_issuers` never may. Issuers are organisation numbers (digits).
    """

    personal_number: str
    country: Country
    efaktura_reference: str
    email: str | None
    phone: str | None
    bank: str
    accepts_all_issuers: bool
    accepted_issuers: list[str]
    blocked_issuers: list[str]
    registered_at: datetime

    def accepts(self, organisation_number: str) -> bool:
        """Whether an issuer with this organisation number may send to the consumer."""
        issuer = organisation_digits(organisation_number)
        if issuer and issuer in self.blocked_issuers:
            return False
        return self.accepts_all_issuers or (bool(issuer) and issuer in self.accepted_issuers)

    def as_json(self) -> dict[str, Any]:
        """The admin view of the registration."""
        return {
            "personal_number": self.personal_number,
            "country": self.country,
            "efaktura_reference": self.efaktura_reference,
            "email": self.email,
            "phone": self.phone,
            "bank": self.bank,
            "accepts_all_issuers": self.accepts_all_issuers,
            "accepted_issuers": list(self.accepted_issuers),
            "blocked_issuers": list(self.blocked_issuers),
            "registered_at": self.registered_at.isoformat(),
        }


@dataclass
class EInvoice:
    """An e-invoice accepted for a consumer's internet bank, with the payment prefilled."""

    id: str
    client_reference: str | None
    idempotency_key: str | None
    consumer_reference: str
    payee_account_type: str
    payee_account: str
    payment_reference: str
    amount: Decimal
    currency: str
    due_date: date
    invoice_number: str | None
    issuer_name: str | None
    has_pdf: bool
    payload: bytes
    content_sha256: str
    received_at: datetime
    present_at: datetime
    paid_at: datetime | None = None

    def status_at(self, now: datetime) -> EInvoiceStatus:
        """accepted → presented in the internet bank at `present_at` → paid (by the consumer)."""
        if self.paid_at is not None:
            return "paid"
        return "accepted" if now < self.present_at else "presented"

    def content(self) -> tuple[bytes, str]:
        """The request body exactly as received."""
        return self.payload, "application/json"

    def view(self, now: datetime) -> dict[str, Any]:
        """The e-invoice as `GET /api/v1/einvoices/{id}` shows it (money as strings)."""
        status = self.status_at(now)
        return {
            "id": self.id,
            "status": status,
            "client_reference": self.client_reference,
            "consumer_reference": self.consumer_reference,
            "payee_account": {"type": self.payee_account_type, "number": self.payee_account},
            "payment_reference": self.payment_reference,
            "amount": str(self.amount.quantize(CENT)),
            "currency": self.currency,
            "due_date": self.due_date.isoformat(),
            "invoice_number": self.invoice_number,
            "issuer_name": self.issuer_name,
            "has_pdf": self.has_pdf,
            "content_sha256": self.content_sha256,
            "received_at": self.received_at.isoformat(),
            "presented_at": self.present_at.isoformat() if status != "accepted" else None,
            "paid_at": self.paid_at.isoformat() if self.paid_at else None,
        }


@dataclass(frozen=True)
class EInvoiceOrder:
    """A validated e-invoice request (the consumer not yet looked up)."""

    consumer_reference: str
    payee_account_type: str
    payee_account: str
    payment_reference: str
    amount: Decimal
    currency: str
    due_date: date
    invoice_number: str | None
    issuer_name: str | None
    client_reference: str | None
    pdf: bytes | None


def _pdf(raw: Any, errors: FieldErrors) -> bytes | None:
    if raw is None:
        return None
    try:
        pdf = base64.b64decode(raw, validate=True) if isinstance(raw, str) else None
    except binascii.Error:
        pdf = None
    if pdf is None:
        errors.add("pdf", "invalid_base64", "pdf is the invoice PDF, base64-encoded")
    elif not pdf.startswith(b"%PDF-"):
        errors.add("pdf", "not_a_pdf", "pdf does not decode to a PDF (no %PDF- header)")
    return pdf


def _string(
    data: dict[str, Any], key: str, errors: FieldErrors, *, required: bool, limit: int = 200
) -> str | None:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.add(key, "missing", f"{key} is required")
        return None
    if not isinstance(value, str):
        errors.add(key, "not_a_string", f"{key} must be a string")
        return None
    if len(value.strip()) > limit:
        errors.add(key, "too_long", f"{key} has more than {limit} characters")
        return None
    return value.strip()


def _amount(raw: Any, errors: FieldErrors) -> Decimal:
    if raw is None:
        errors.add("amount", "missing", "amount is required")
        return Decimal(0)
    if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal)):
        errors.add("amount", "not_a_number", "amount must be a decimal number or string")
        return Decimal(0)
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        errors.add("amount", "not_a_number", f"{raw!r} is not a decimal number")
        return Decimal(0)
    if not amount.is_finite() or amount <= 0:
        errors.add("amount", "must_be_positive", "amount must be greater than 0")
    elif amount > MAX_AMOUNT:
        errors.add("amount", "too_large", f"amount is at most {MAX_AMOUNT}")
    elif amount != amount.quantize(CENT):
        errors.add("amount", "too_many_decimals", "amount has at most two decimals (öre/øre)")
    return amount


def _due_date(raw: Any, today: date, errors: FieldErrors) -> date:
    if raw is None:
        errors.add("due_date", "missing", "due_date (YYYY-MM-DD) is required")
        return today
    try:
        due = date.fromisoformat(raw) if isinstance(raw, str) and len(raw) == 10 else None
    except ValueError:
        due = None
    if due is None:
        errors.add("due_date", "invalid_date", f"{raw!r} is not a date YYYY-MM-DD")
        return today
    if due < today:
        errors.add("due_date", "in_the_past", f"{due} is before today ({today})")
    return due


def _payee(raw: Any, currency: str | None, errors: FieldErrors) -> tuple[str, str]:
    if not isinstance(raw, dict):
        errors.add("payee_account", "missing", 'payee_account is {"type": …, "number": …}')
        return "", ""
    kind, number = raw.get("type"), raw.get("number")
    if kind not in ACCOUNT_TYPES:
        errors.add("payee_account.type", "unsupported", f"type is one of {sorted(ACCOUNT_TYPES)}")
        return "", ""
    if currency and ACCOUNT_TYPES[kind] != currency:
        errors.add(
            "payee_account.type",
            "not_for_currency",
            f"a {kind} takes {ACCOUNT_TYPES[kind]}, not {currency}",
        )
    if not isinstance(number, str) or not number.strip():
        errors.add("payee_account.number", "missing", "payee_account.number is required")
        return kind, ""
    number = number.strip()
    valid = {
        "bankgiro": lambda n: giro_number_ok(n, min_digits=7, max_digits=8),
        "plusgiro": lambda n: giro_number_ok(n, min_digits=2, max_digits=8),
        "bank_account": norwegian_account_ok,
    }[kind](number)
    if not valid:
        errors.add(
            "payee_account.number",
            "invalid_check_digit",
            f"{number!r} is not a valid {kind} number (length or check digit)",
        )
    return kind, number


def _payment_reference(raw: Any, currency: str | None, errors: FieldErrors) -> str:
    if not isinstance(raw, str) or not raw.strip():
        errors.add("payment_reference", "missing", "payment_reference (OCR/KID) is required")
        return ""
    reference = raw.strip()
    if not _REFERENCE.match(reference):
        errors.add("payment_reference", "invalid_format", "an OCR/KID has 2-25 digits")
    elif not (luhn_sum_ok(reference) or (currency == "NOK" and kid_mod11_ok(reference))):
        accepted = "MOD10 or MOD11" if currency == "NOK" else "MOD10 (Luhn)"
        errors.add(
            "payment_reference",
            "invalid_check_digit",
            f"{reference!r} does not end in a valid {accepted} check digit",
        )
    return reference


def validate_einvoice(data: Any, today: date, errors: FieldErrors) -> EInvoiceOrder:
    """Check every field of a `POST /api/v1/einvoices` body: 422 naming each refused one."""
    if not isinstance(data, dict):
        if not errors.has("body"):
            errors.add("body", "not_an_object", "send a JSON object")
        raise ApiError(422, "validation_failed", _REFUSED, errors.items)
    for unknown in sorted(set(data) - FIELDS):
        errors.add(unknown, "unknown_field", f"{unknown} is not an e-invoice field")
    currency = _string(data, "currency", errors, required=True)
    if currency is not None and currency not in CURRENCY_OF.values():
        errors.add("currency", "unsupported", "currency is SEK or NOK")
        currency = None
    consumer_reference = _string(data, "consumer_reference", errors, required=True)
    kind, number = _payee(data.get("payee_account"), currency, errors)
    reference = _payment_reference(data.get("payment_reference"), currency, errors)
    amount = _amount(data.get("amount"), errors)
    due = _due_date(data.get("due_date"), today, errors)
    invoice_number = _string(data, "invoice_number", errors, required=False, limit=35)
    issuer_name = _string(data, "issuer_name", errors, required=False, limit=70)
    client_reference = _string(data, "client_reference", errors, required=False)
    pdf = _pdf(data.get("pdf"), errors)
    errors.raise_if_any(_REFUSED)
    return EInvoiceOrder(
        consumer_reference=consumer_reference or "",
        payee_account_type=kind,
        payee_account=number,
        payment_reference=reference,
        amount=amount,
        currency=currency or "",
        due_date=due,
        invoice_number=invoice_number,
        issuer_name=issuer_name,
        client_reference=client_reference,
        pdf=pdf,
    )


class B2cBankState(PartnerState[EInvoice]):
    """Issuer accounts with their e-invoices, and the banks' registry of consumers.

    The registry is shared by all accounts, as the real one is by all issuers. An e-invoice
    is `presented` in the internet bank `presentation_delay` after it is accepted.
    """

    def __init__(
        self,
        *,
        presentation_delay: timedelta = timedelta(0),
        clock: Callable[[], datetime] = utc_now,
        idempotency_ttl: timedelta = timedelta(hours=24),
    ) -> None:
        super().__init__(clock=clock, idempotency_ttl=idempotency_ttl)
        self.presentation_delay = presentation_delay
        self.consumers: dict[str, Consumer] = {}

    def today(self) -> date:
        """Today's date in Sweden (the same date as in Norway)."""
        return self.now().astimezone(STOCKHOLM).date()

    def register_consumer(
        self,
        personal_number: str,
        country: Country,
        *,
        efaktura_reference: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        bank: str = "Sandbox Bank",
        accepts_all_issuers: bool = True,
        accepted_issuers: list[str] | None = None,
        blocked_issuers: list[str] | None = None,
    ) -> Consumer:
        """Create or replace a registration (values already validated)."""
        with self.lock:
            previous = self.consumers.get(personal_number)
            reference = efaktura_reference or (
                previous.efaktura_reference if previous else self._new_reference()
            )
            owner = self.find_consumer(efaktura_reference=reference)
            if owner is not None and owner.personal_number != personal_number:
                raise ValueError(f"efaktura_reference {reference} belongs to another consumer")
            consumer = Consumer(
                personal_number=personal_number,
                country=country,
                efaktura_reference=reference,
                email=email,
                phone=phone,
                bank=bank,
                accepts_all_issuers=accepts_all_issuers,
                accepted_issuers=[organisation_digits(o) for o in accepted_issuers or []],
                blocked_issuers=[organisation_digits(o) for o in blocked_issuers or []],
                registered_at=self.now(),
            )
            self.consumers[personal_number] = consumer
            return consumer

    def _new_reference(self) -> str:
        while True:
            reference = f"{secrets.randbelow(9 * 10**8) + 10**8}"
            if self.find_consumer(efaktura_reference=reference) is None:
                return reference

    def unregister_consumer(self, personal_number: str) -> bool:
        """Remove a registration; False when there was none."""
        with self.lock:
            return self.consumers.pop(personal_number, None) is not None

    def find_consumer(
        self,
        *,
        personal_number: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        efaktura_reference: str | None = None,
    ) -> Consumer | None:
        """The registration matching the one identifier given."""
        with self.lock:
            if personal_number is not None:
                return self.consumers.get(personal_number)
            for consumer in self.consumers.values():
                if (
                    (email is not None and consumer.email == email)
                    or (phone is not None and consumer.phone == phone)
                    or (
                        efaktura_reference is not None
                        and consumer.efaktura_reference == efaktura_reference
                    )
                ):
                    return consumer
            return None
