"""Visma eAccounting as ledger-closer writes into it: a closing or reported payment as a
customer invoice payment (`POST /customerinvoices/{id}/payments`) to the company bank account
kept on the entry's ledger account, a factor's fee as its `FactoringFeeAmount`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from nordflow_connectors.oauth import OAuthSession
from nordflow_connectors.visma_eaccounting import VismaEAccountingClient
from nordflow_schemas.events import EntryKind

from ...domain import Booking, ErpEntry, UnpostableError, Written
from .refusals import refusals

NOT_BOOKED = "booking documents into visma-eaccounting is not built (only payments and closings)"


def _remaining(invoice: dict[str, object]) -> Decimal:
    return Decimal(str(invoice.get("RemainingAmountInvoiceCurrency", invoice["RemainingAmount"])))


@dataclass
class EAccountingWriter:
    """``LedgerWriter`` on one eAccounting company; closes its client and session.

    eAccounting cannot list an invoice's payments, so before the first create the invoice's
    remaining amount is noted (the intent row's ``erp_state``): when a later attempt finds it
    lower by exactly what the entry settles, the earlier attempt's payment is adopted (its
    reference then names the remaining amount it left, the API giving no id to look up).
    """

    client: VismaEAccountingClient
    session: OAuthSession
    fee_booked: bool = True

    async def aclose(self) -> None:
        """Close the client and the session."""
        await self.client.aclose()
        await self.session.aclose()

    def _supported(self, entry: ErpEntry) -> None:
        if entry.kind is EntryKind.FINANCING_ADVANCE or entry.advance:
            raise UnpostableError(
                "financing advances are written as vouchers into fortnox only, not into "
                "visma-eaccounting"
            )

    async def find_entry(self, entry: ErpEntry, known: set[str], state: str | None) -> str | None:
        """The earlier attempt's payment, when the remaining amount moved by the entry."""
        self._supported(entry)
        if state is None:
            return None
        with refusals():
            remaining = _remaining(await self.client.invoice(entry.document_id))
        if Decimal(state) - remaining == entry.amount:
            return f"{entry.document_id}:remaining {remaining}"
        return None

    async def prepare_entry(self, entry: ErpEntry) -> str | None:
        """The remaining amount before the first create."""
        self._supported(entry)
        with refusals():
            return str(_remaining(await self.client.invoice(entry.document_id)))

    async def create_entry(self, entry: ErpEntry) -> str:
        """The payment to the bank account on the entry's ledger account, the fee as the
        factoring fee on the fee account."""
        self._supported(entry)
        with refusals():
            accounts = await self.client.bank_accounts()
            chosen = [a for a in accounts if a.get("LedgerAccountNumber") == entry.account]
            if not chosen:
                raise UnpostableError(
                    f"visma-eaccounting has no bank account on ledger account {entry.account}: "
                    "add one (POST /v2/bankaccounts) or map another account"
                )
            payment = await self.client.create_payment(
                invoice_id=entry.document_id,
                amount=entry.cash,
                currency=entry.currency,
                payment_date=entry.paid_on,
                bank_account_id=str(chosen[0]["Id"]),
                factoring_fee=entry.fee or None,
                factoring_fee_account=entry.accounts.fee if entry.fee else None,
                reference=entry.reference,
            )
        return str(payment.get("BankTransactionId") or entry.reference)

    async def settle_entry(self, entry: ErpEntry, reference: str) -> None:
        """A payment is booked when it is registered."""

    async def sent(self, document_id: str, document_number: str) -> bool | None:
        """Not read from eAccounting."""
        return None

    async def book(self, booking: Booking, original: str | None, *, dry_run: bool) -> Written:
        """Not built."""
        raise UnpostableError(NOT_BOOKED)

    async def invoice_order(
        self, order: str, booking: Booking, invoice_date: dt.date, *, dry_run: bool
    ) -> Written:
        """Not built."""
        raise UnpostableError(NOT_BOOKED)
