"""Visma.net as ledger-closer writes into it: a closing or reported payment as a
`customerPayment` of type Payment against the invoice (Refund against a credit note) on the
entry's cash account, then released; found again by our `paymentRef`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from nordflow_connectors.client_credentials import ClientCredentialsSession
from nordflow_connectors.visma_net import PaymentApplication, VismaNetClient, payment_released
from nordflow_schemas.events import EntryKind

from ...domain import Booking, ErpEntry, UnpostableError, Written
from .refusals import refusals

NOT_BOOKED = "booking documents into visma-net is not built (only payments and closings)"


def _value(raw: Any) -> Any:
    return raw.get("value") if isinstance(raw, dict) and "value" in raw else raw


@dataclass
class VismaNetWriter:
    """``LedgerWriter`` on one Visma.net company.

    The payment closes the whole amount on the cash account (the factoring receivable for a
    closing): a factor's fee is not booked into Visma.net (its customer payment has no fee
    line; ``fee_booked`` says so).
    """

    client: VismaNetClient
    tokens: ClientCredentialsSession | None = None
    fee_booked: bool = False

    async def aclose(self) -> None:
        """Close the client (and the token session)."""
        await self.client.aclose()
        if self.tokens is not None:
            await self.tokens.aclose()

    def _supported(self, entry: ErpEntry) -> None:
        if entry.kind is EntryKind.FINANCING_ADVANCE or entry.advance:
            raise UnpostableError(
                "financing advances are written as vouchers into fortnox only, not into visma-net"
            )

    async def find_entry(self, entry: ErpEntry, known: set[str], state: str | None) -> str | None:
        """A payment applied to the document that carries our reference."""
        self._supported(entry)
        with refusals():
            for payment in await self.client.payments_for_invoice(entry.document_id):
                if _value(payment.get("paymentRef")) == entry.reference:
                    return str(_value(payment.get("refNbr")))
        return None

    async def prepare_entry(self, entry: ErpEntry) -> str | None:
        """Payments are found by their reference: nothing to note."""
        return None

    async def create_entry(self, entry: ErpEntry) -> str:
        """The payment (a refund for a credit note) of the whole amount on the cash account."""
        self._supported(entry)
        with refusals():
            document = (
                await self.client.credit_note(entry.document_id)
                if entry.credit_note
                else await self.client.invoice(entry.document_id)
            )
            customer = document.get("customer") or {}
            number = str(customer.get("number") if isinstance(customer, dict) else customer)
            return await self.client.create_payment(
                customer_number=number,
                applications=[
                    PaymentApplication(
                        document_type="CreditNote" if entry.credit_note else "Invoice",
                        ref_nbr=entry.document_id,
                        amount=abs(entry.amount),
                    )
                ],
                payment_date=entry.paid_on,
                payment_ref=entry.reference,
                cash_account=str(entry.account),
                payment_type="Refund" if entry.credit_note else "Payment",
            )

    async def settle_entry(self, entry: ErpEntry, reference: str) -> None:
        """Release the payment unless it is released (its applications then book)."""
        with refusals():
            payment = await self.client.payment(reference)
            if not payment_released(payment):
                await self.client.release_payment(
                    reference, payment_type="Refund" if entry.credit_note else "Payment"
                )

    async def sent(self, document_id: str, document_number: str) -> bool | None:
        """Not read from Visma.net."""
        return None

    async def book(self, booking: Booking, original: str | None, *, dry_run: bool) -> Written:
        """Not built."""
        raise UnpostableError(NOT_BOOKED)

    async def invoice_order(
        self, order: str, booking: Booking, invoice_date: dt.date, *, dry_run: bool
    ) -> Written:
        """Not built."""
        raise UnpostableError(NOT_BOOKED)
