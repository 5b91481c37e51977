"""Internet-bank channel (B2C): an e-invoice in the consumer's bank, payment prefilled.

The banks' registry says which consumers take e-invoices (`GET {base}/recipients?
personal_number=` → registered, whether they take them from us, and the e-invoice reference to
send to); `registered` is what the router asks when it chooses a consumer's channel.
`POST {base}/einvoices` sends one with the payee account, the OCR/KID, the amount and the due
date prefilled (and the PDF), with an `Idempotency-Key`; `GET {base}/einvoices?
client_reference=` finds an earlier send.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Final, Protocol

import httpx
from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import DocumentType, Invoice
from nordflow_schemas.money import CENT
from pydantic import SecretStr

from .base import Outgoing, PermanentSendError, Receipt, TransientSendError
from .partner_http import (
    IDEMPOTENCY_HEADER,
    PartnerHttp,
    client_reference,
    created_record,
    found_id,
    read_problem,
)

PARTNER: Final = "internet bank e-invoice service"
# Refusals that say this consumer cannot get this invoice in the bank: paper can.
_CHANNEL_CODES: Final = frozenset({"not_registered", "issuer_not_accepted", "currency_mismatch"})
# The bank's request field → the canonical invoice's field, for error messages.
_INVOICE_FIELDS: Final = {
    "payment_reference": "payment.payment_reference",
    "payee_account.type": "payment.account_scheme",
    "payee_account.number": "payment.account_id",
    "amount": "totals.payable",
    "currency": "currency",
    "due_date": "due_date",
    "invoice_number": "number",
    "issuer_name": "seller.name",
}
_NON_DIGIT = re.compile(r"\D")


class ConsumerRegistry(Protocol):
    """Who takes e-invoices in their internet bank (`B2cBankSender` is one)."""

    async def registered(self, personal_number: str) -> bool:
        """Whether the consumer takes e-invoices there, from this issuer."""
        ...


def payee_account(invoice: Invoice) -> dict[str, str]:
    """The account the bank prefills: Bankgiro/PlusGiro (SEK), a Norwegian account (NOK).

    Raises `PermanentSendError(fallback=True)` naming the field when the invoice has no account
    an internet bank can prefill: a paper invoice can still carry it.
    """
    payment = invoice.payment
    account = (payment.account_id or "").strip()
    scheme = (payment.account_scheme or "").strip().upper()
    if not account:
        raise PermanentSendError(
            "payment.account_id: no payee account to prefill in the internet bank", fallback=True
        )
    if scheme == "SE:BANKGIRO":
        return {"type": "bankgiro", "number": account}
    if scheme == "SE:PLUSGIRO":
        return {"type": "plusgiro", "number": account}
    compact = re.sub(r"[\s.]", "", account).upper()
    if scheme == "IBAN" and compact.startswith("NO") and len(compact) == 15:
        return {"type": "bank_account", "number": compact[4:]}  # the BBAN inside NOkk + 11
    if invoice.currency == "NOK" and scheme in ("", "BBAN", "NO:BBAN", "NO:KONTONR", "LOCAL"):
        return {"type": "bank_account", "number": _NON_DIGIT.sub("", account)}
    raise PermanentSendError(
        f"payment.account_scheme: {payment.account_scheme or 'none'} ({invoice.currency}) "
        "cannot be prefilled in an internet bank; Bankgiro, PlusGiro or a Norwegian account can",
        fallback=True,
    )


def einvoice_body(outgoing: Outgoing, consumer_reference: str, reference: str) -> dict[str, Any]:
    """The `POST /einvoices` body; what the bank cannot take is refused here, naming the field."""
    invoice = outgoing.invoice
    if invoice.document_type is DocumentType.CREDIT_NOTE or invoice.totals.payable <= 0:
        raise PermanentSendError(
            "totals.payable: an internet bank e-invoice asks for a payment; a credit note or an "
            "invoice with nothing to pay goes another way",
            fallback=True,
        )
    ocr = _NON_DIGIT.sub("", invoice.payment.payment_reference or "")
    if not ocr:
        raise PermanentSendError(
            "payment.payment_reference: an internet bank e-invoice needs an OCR/KID",
            fallback=True,
        )
    if invoice.due_date is None:
        raise PermanentSendError(
            "due_date: an internet bank e-invoice needs a due date", fallback=True
        )
    body: dict[str, Any] = {
        "consumer_reference": consumer_reference,
        "payee_account": payee_account(invoice),
        "payment_reference": ocr,
        "amount": str(invoice.totals.payable.quantize(CENT))
        if invoice.totals.payable == invoice.totals.payable.quantize(CENT)
        else str(invoice.totals.payable),
        "currency": invoice.currency,
        "due_date": invoice.due_date.isoformat(),
        "invoice_number": invoice.number,
        "issuer_name": " ".join(invoice.seller.name.split())[:70],
        "client_reference": reference,
    }
    if outgoing.content_type.split(";")[0].strip().lower() == "application/pdf":
        body["pdf"] = base64.b64encode(outgoing.document).decode("ascii")
    return body


class B2cBankSender:
    """`Sender` for `Channel.B2C_BANK`, and the registry the router asks (`registered`).

    `Outgoing.recipient` is the consumer's personal number. A consumer not (or no longer)
    registered, or not taking e-invoices from us, and invoices the bank cannot prefill →
    `PermanentSendError(fallback=True)` (paper); a value the bank refuses (OCR/KID or account
    check digit, amount, due date) → `fallback=False`. 429/5xx/timeouts → `TransientSendError`.
    """

    channel: Channel = Channel.B2C_BANK
    can_lookup: bool = True

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = PartnerHttp(PARTNER, base_url, token, timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"B2cBankSender(base_url={self._http.base_url!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _recipient(self, personal_number: str) -> dict[str, Any] | None:
        """The registry's answer for a consumer; None when the number is not a valid one."""
        response = await self._http.request(
            "GET", "recipients", params={"personal_number": personal_number.strip()}
        )
        if response.status_code == 200:
            try:
                found = response.json()
            except ValueError:
                found = None
            if not isinstance(found, dict):
                raise TransientSendError(f"{PARTNER}: the registry answered no JSON object")
            return found
        problem = read_problem(response)
        transient = self._http.transient_refusal(response, problem, creates=False)
        if transient is not None:
            raise transient
        if response.status_code == 422:
            return None  # not a valid personal number: nobody is registered under it
        raise TransientSendError(
            f"{PARTNER}: the registry refused the lookup (HTTP {response.status_code}: "
            f"{self._http.redact(problem.describe())})"
        )

    async def registered(self, personal_number: str) -> bool:
        """Whether the consumer takes e-invoices in the bank, from us (the issuer account)."""
        found = await self._recipient(personal_number)
        return bool(found and found.get("registered") and found.get("accepts_issuer"))

    async def send(self, outgoing: Outgoing) -> Receipt:
        """Send the e-invoice once; the bank dedupes on the idempotency key."""
        found = await self._recipient(outgoing.recipient)
        consumer_reference = found.get("efaktura_reference") if found else None
        if not found or not found.get("registered") or not consumer_reference:
            raise PermanentSendError(
                "recipient: the consumer is not registered for e-invoices in an internet bank",
                fallback=True,
            )
        if not found.get("accepts_issuer"):
            raise PermanentSendError(
                "recipient: the consumer does not accept e-invoices from this issuer",
                fallback=True,
            )
        reference = client_reference(outgoing.idempotency_key)
        body = einvoice_body(outgoing, str(consumer_reference), reference)
        response = await self._http.request(
            "POST",
            "einvoices",
            creates=True,
            json=body,
            headers={IDEMPOTENCY_HEADER: reference},
        )
        if response.status_code in (200, 201):
            record = created_record(PARTNER, response)
            return Receipt(channel=self.channel, reference=str(record["id"]))
        problem = read_problem(response)
        transient = self._http.transient_refusal(response, problem, creates=True)
        if transient is not None:
            raise transient
        if "idempotency_key_reused" in problem.codes():
            earlier = await self.lookup(outgoing.idempotency_key)
            if earlier is not None:
                return earlier
            raise TransientSendError(f"{PARTNER}: {problem.describe()}; no earlier send found")
        refused = (
            "; ".join(
                f"{_INVOICE_FIELDS.get(e.field, e.field)}: {e.message}" for e in problem.errors
            )
            or problem.describe()
        )
        raise PermanentSendError(
            f"{PARTNER} refused the e-invoice (HTTP {response.status_code}): "
            + self._http.redact(refused),
            fallback=bool(problem.codes() & _CHANNEL_CODES),
        )

    async def lookup(self, idempotency_key: str) -> Receipt | None:
        """The e-invoice sent under this key (presented or paid since, perhaps), or None."""
        record = await self._http.find_by_reference(
            "einvoices", "einvoices", client_reference(idempotency_key)
        )
        if record is None:
            return None
        return Receipt(channel=self.channel, reference=found_id(PARTNER, record))
