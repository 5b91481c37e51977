"""Fortnox as ledger-closer writes into it: invoice payments (a closing, a payment, with the fee
and a financing advance as write-offs), the advance as a voucher, and documents booked into
it — customers, invoices (booked), credits or cancellations, projects, articles, orders and
their invoices. Every create is looked up first by our reference, or the record's own number."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nordflow_connectors.fortnox import FortnoxClient
from nordflow_connectors.oauth import OAuthSession
from nordflow_schemas.events import BookingAction, EntryKind

from ...domain import Booking, CustomerCard, ErpEntry, Line, Written, adoptable
from ...domain.booking import ADOPTED, BOOKED, CREATED, FOUND, PLANNED, UPDATED
from .refusals import refusals

VOUCHER_SERIES = "A"  # manual vouchers (Fortnox's series for "Redovisning")
# BAS "Öres- och kronutjämning": Fortnox rounds a SEK invoice's total to whole kronor, so a
# source's exact payment of a document booked here leaves the rounding open; it is written
# off there.
ROUNDING_ACCOUNT = 3740


def _number(value: Decimal) -> float:
    # The repr of a float with at most 2 decimals is its exact decimal text on the wire.
    return float(value)


def _row(line: Line) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Description": line.description[:255],
        "DeliveredQuantity": str(line.quantity),
        "Price": str(line.unit_price),
        "VAT": int(line.vat_rate),
    }
    if line.article_number:
        row["ArticleNumber"] = line.article_number
    return row


def _customer_body(card: CustomerCard) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Name": card.name,
        "Type": "PRIVATE" if card.private else "COMPANY",
        "CountryCode": card.country,
    }
    optional = {
        "OrganisationNumber": card.organisation_number,
        "Email": card.email,
        "EmailInvoice": card.email,
        "Address1": card.address,
        "ZipCode": card.postal_code,
        "City": card.city,
        "VATNumber": card.vat_number,
    }
    body.update({k: v for k, v in optional.items() if v})
    return body


@dataclass
class FortnoxWriter:
    """``LedgerWriter`` and ``Booker`` on one Fortnox company; closes its client and session."""

    client: FortnoxClient
    session: OAuthSession | None = None
    fee_booked: bool = True

    async def aclose(self) -> None:
        """Close the client and the session."""
        await self.client.aclose()
        if self.session is not None:
            await self.session.aclose()

    # ------------------------------------------------------------------------ entries

    async def find_entry(self, entry: ErpEntry, known: set[str], state: str | None) -> str | None:
        """A payment with every detail of the entry that no entry of ours holds yet; a
        voucher with our reference."""
        with refusals():
            if entry.kind is EntryKind.FINANCING_ADVANCE:
                vouchers = await self.client.search(
                    f"vouchers/sublist/{VOUCHER_SERIES}", "Vouchers", {}
                )
                for voucher in vouchers:
                    if voucher.get("ReferenceNumber") == entry.reference:
                        return f"{VOUCHER_SERIES}{voucher['VoucherNumber']}"
                return None
            found = adoptable(
                await self.client.payments_for_invoice(entry.document_number),
                amount=entry.cash,
                mode=entry.mode_of_payment,
                account=entry.account,
                paid_on=entry.paid_on,
                known=known,
            )
        return None if found is None else str(found.get("Number"))

    async def prepare_entry(self, entry: ErpEntry) -> str | None:
        """Fortnox lists an invoice's payments: nothing to note."""
        return None

    async def create_entry(self, entry: ErpEntry) -> str:
        """The payment (the fee and a cleared advance as write-offs), or the advance's
        voucher (bank debited, the liability credited)."""
        with refusals():
            if entry.kind is EntryKind.FINANCING_ADVANCE:
                voucher = await self.client.create(
                    "vouchers",
                    "Voucher",
                    {
                        "VoucherSeries": VOUCHER_SERIES,
                        "TransactionDate": entry.paid_on.isoformat(),
                        "Description": f"Förskott faktura {entry.document_number}"[:200],
                        "ReferenceNumber": entry.reference,
                        "ReferenceType": "MANUAL",
                        "VoucherRows": [
                            {"Account": entry.accounts.bank, "Debit": _number(entry.amount)},
                            {"Account": entry.accounts.liability, "Credit": _number(entry.amount)},
                        ],
                    },
                )
                return f"{VOUCHER_SERIES}{voucher['VoucherNumber']}"
            write_offs = [
                {"AccountNumber": account, "Amount": _number(amount), "Description": text}
                for account, amount, text in (
                    (entry.accounts.fee, entry.fee, "Factoringavgift"),
                    (entry.accounts.liability, entry.advance, "Förskott"),
                )
                if amount
            ]
            body: dict[str, Any] = {
                "InvoiceNumber": int(entry.document_number),
                "Amount": _number(entry.cash),
                "AmountCurrency": _number(entry.cash),
                "PaymentDate": entry.paid_on.isoformat(),
                "ModeOfPayment": entry.mode_of_payment,
                "ModeOfPaymentAccount": entry.account,
            }
            if entry.bookkeep:
                rounding = await self._rounding(entry, write_offs)
                if rounding:
                    write_offs.append(
                        {
                            "AccountNumber": ROUNDING_ACCOUNT,
                            "Amount": _number(rounding),
                            "Description": "Öresavrundning",
                        }
                    )
            if write_offs:
                body["WriteOffs"] = write_offs
            payment = await self.client.create("invoicepayments", "InvoicePayment", body)
        return str(payment["Number"])

    async def _rounding(self, entry: ErpEntry, write_offs: list[dict[str, Any]]) -> Decimal:
        """What is left of the booked invoice after this payment when that is less than a
        krona: Fortnox's rounding of its total (the source paid the exact amount)."""
        invoice = await self.client.invoice(entry.document_number)
        settled = entry.cash + sum((Decimal(str(w["Amount"])) for w in write_offs), Decimal(0))
        rest = Decimal(str(invoice.get("Balance", 0))) - settled
        return rest if 0 < abs(rest) < 1 else Decimal(0)

    async def settle_entry(self, entry: ErpEntry, reference: str) -> None:
        """A payment booked into Fortnox for another source is bookkept, its invoice first."""
        if not entry.bookkeep or entry.kind is EntryKind.FINANCING_ADVANCE:
            return
        with refusals():
            invoice = await self.client.invoice(entry.document_number)
            if not invoice.get("Booked"):
                await self.client.action("invoices", entry.document_number, "bookkeep", "Invoice")
            payment = await self.client.payment(reference)
            if not payment.get("Booked"):
                await self.client.action("invoicepayments", reference, "bookkeep", "InvoicePayment")

    async def sent(self, document_id: str, document_number: str) -> bool | None:
        """Fortnox's own send status (``Sent``: e-mailed, printed or sent as e-invoice)."""
        with refusals():
            invoice = await self.client.find("invoices", document_number, "Invoice")
        return None if invoice is None else bool(invoice.get("Sent"))

    # ------------------------------------------------------------------------ booking

    async def book(self, booking: Booking, original: str | None, *, dry_run: bool) -> Written:
        """The customer, then the invoice (booked), the credit or cancellation, or the
        project, articles and order."""
        written = Written([])
        with refusals():
            if booking.action is BookingAction.CREDIT_INVOICE:
                await self._credit(booking, original, dry_run, written)
                return written
            customer = await self._customer(booking.customer, dry_run, written)
            if booking.action is BookingAction.ORDER:
                await self._order(booking, customer, dry_run, written)
            else:
                await self._invoice(booking, customer, dry_run, written)
        return written

    async def _customer(self, card: CustomerCard, dry_run: bool, written: Written) -> str | None:
        """The customer card: by the source's number (created or updated under it), else the
        one with the same organisation number, e-mail or name (created when missing)."""
        body = _customer_body(card)
        if card.number:
            found = await self.client.find("customers", card.number, "Customer")
            if found is not None:
                if not dry_run:
                    await self.client.update("customers", card.number, "Customer", body)
                written.add("customer", card.number, PLANNED if dry_run else UPDATED)
                return card.number
            if dry_run:
                written.add("customer", card.number, PLANNED)
                return card.number
            created = await self.client.create(
                "customers", "Customer", {**body, "CustomerNumber": card.number}
            )
            written.add("customer", created["CustomerNumber"], CREATED)
            return str(created["CustomerNumber"])
        searches = (
            ("organisationnumber", "OrganisationNumber", card.organisation_number),
            ("email", "Email", card.email),
            ("name", "Name", card.name),
        )
        for param, field, wanted in searches:
            if not wanted:
                continue
            for item in await self.client.search("customers", "Customers", {param: wanted}):
                if str(item.get(field) or "").strip().lower() == wanted.strip().lower():
                    written.add("customer", item["CustomerNumber"], FOUND)
                    return str(item["CustomerNumber"])
            break  # the first identifier the card has decides; a weaker one could mismatch
        if dry_run:
            written.add("customer", None, PLANNED)
            return None
        created = await self.client.create("customers", "Customer", body)
        written.add("customer", created["CustomerNumber"], CREATED)
        return str(created["CustomerNumber"])

    async def _ours(self, resource: str, list_key: str, reference: str) -> dict[str, Any] | None:
        """The record carrying our reference in ExternalInvoiceReference1 (compared exactly:
        Fortnox searches by containment)."""
        for item in await self.client.search(
            resource, list_key, {"externalinvoicereference1": reference}
        ):
            if item.get("ExternalInvoiceReference1") == reference:
                return item
        return None

    async def _invoice(
        self, booking: Booking, customer: str | None, dry_run: bool, written: Written
    ) -> None:
        found = await self._ours("invoices", "Invoices", booking.reference)
        if found is None and dry_run:
            written.add("invoice", None, PLANNED)
            written.add("bookkeeping", None, PLANNED)
            return
        if found is None:
            body: dict[str, Any] = {
                "CustomerNumber": customer,
                "InvoiceDate": booking.issue_date.isoformat(),
                "Currency": booking.currency,
                "ExternalInvoiceReference1": booking.reference,
                "ExternalInvoiceReference2": booking.number[:80],
                "YourOrderNumber": (booking.quote_number or "")[:30],
                "InvoiceRows": [_row(line) for line in booking.lines],
            }
            if booking.due_date is not None:
                body["DueDate"] = booking.due_date.isoformat()
            created = await self.client.create("invoices", "Invoice", body)
            number = str(created["DocumentNumber"])
            written.add("invoice", number, CREATED)
            booked = bool(created.get("Booked"))
        else:
            number = str(found["DocumentNumber"])
            written.add("invoice", number, ADOPTED)
            booked = bool(found.get("Booked"))
        written.erp_reference = number
        await self._bookkeep(number, booked, dry_run, written)

    async def _bookkeep(self, number: str, booked: bool, dry_run: bool, written: Written) -> None:
        if booked:
            written.add("bookkeeping", number, FOUND)
        elif dry_run:
            written.add("bookkeeping", number, PLANNED)
        else:
            await self.client.action("invoices", number, "bookkeep", "Invoice")
            written.add("bookkeeping", number, BOOKED)

    async def _credit(
        self, booking: Booking, original: str | None, dry_run: bool, written: Written
    ) -> None:
        """An unbooked original is cancelled; a booked one is credited (the credit invoice
        carries our reference and is booked). The original's state says what an earlier
        attempt did."""
        if original is None:  # test mode before the original was booked
            written.add("credit or cancellation", None, PLANNED)
            return
        invoice = await self.client.invoice(original)
        credit = str(invoice.get("CreditInvoiceReference") or "0")
        if invoice.get("Cancelled"):
            written.action = BookingAction.CANCELLATION
            written.add("cancellation", original, ADOPTED)
            written.erp_reference = original
            return
        if credit != "0":
            written.action = BookingAction.CREDIT_INVOICE
            written.add("credit invoice", credit, ADOPTED)
        elif not invoice.get("Booked"):
            written.action = BookingAction.CANCELLATION
            if not dry_run:
                await self.client.action("invoices", original, "cancel", "Invoice")
            written.add("cancellation", original, PLANNED if dry_run else "cancelled")
            written.erp_reference = original
            return
        elif dry_run:
            written.action = BookingAction.CREDIT_INVOICE
            written.add("credit invoice", None, PLANNED)
            return
        else:
            written.action = BookingAction.CREDIT_INVOICE
            answer = await self.client.action("invoices", original, "credit", "Invoice")
            credit = str(answer["CreditInvoiceReference"])
            written.add("credit invoice", credit, CREATED)
        written.erp_reference = credit
        current = await self.client.invoice(credit)
        if current.get("ExternalInvoiceReference1") != booking.reference and not current.get(
            "Booked"
        ):
            await self.client.update(
                "invoices", credit, "Invoice", {"ExternalInvoiceReference1": booking.reference}
            )
        await self._bookkeep(credit, bool(current.get("Booked")), dry_run, written)

    async def _order(
        self, booking: Booking, customer: str | None, dry_run: bool, written: Written
    ) -> None:
        """The project (number and name from the source) and the lines' articles when
        missing, then the order naming customer and project."""
        if booking.project_number:
            if await self.client.find("projects", booking.project_number, "Project") is not None:
                written.add("project", booking.project_number, FOUND)
            elif dry_run:
                written.add("project", booking.project_number, PLANNED)
            else:
                await self.client.create(
                    "projects",
                    "Project",
                    {
                        "ProjectNumber": booking.project_number,
                        "Description": (booking.project_name or booking.project_number)[:50],
                        "Status": "ONGOING",
                        "StartDate": booking.issue_date.isoformat(),
                    },
                )
                written.add("project", booking.project_number, CREATED)
        articles = {line.article_number: line for line in booking.lines if line.article_number}
        for article, line in articles.items():
            assert article is not None
            if await self.client.find("articles", article, "Article") is not None:
                written.add("product", article, FOUND)
            elif dry_run:
                written.add("product", article, PLANNED)
            else:
                await self.client.create(
                    "articles",
                    "Article",
                    {
                        "ArticleNumber": article,
                        "Description": line.description[:200],
                        "Type": "SERVICE",
                        "VAT": _number(line.vat_rate),
                    },
                )
                written.add("product", article, CREATED)
        found = await self._ours("orders", "Orders", booking.reference)
        if found is not None:
            written.erp_reference = str(found["DocumentNumber"])
            written.add("order", written.erp_reference, ADOPTED)
            return
        if dry_run:
            written.add("order", None, PLANNED)
            return
        body: dict[str, Any] = {
            "CustomerNumber": customer,
            "OrderDate": booking.issue_date.isoformat(),
            "ExternalInvoiceReference1": booking.reference,
            "ExternalInvoiceReference2": booking.number[:80],
            "YourOrderNumber": (booking.quote_number or "")[:30],
            "OrderRows": [
                {
                    **{k: v for k, v in _row(line).items() if k != "DeliveredQuantity"},
                    "OrderedQuantity": str(line.quantity),
                }
                for line in booking.lines
            ],
        }
        if booking.project_number:
            body["Project"] = booking.project_number
        if booking.due_date is not None:
            body["DeliveryDate"] = booking.due_date.isoformat()
        created = await self.client.create("orders", "Order", body)
        written.erp_reference = str(created["DocumentNumber"])
        written.add("order", written.erp_reference, CREATED)

    async def invoice_order(
        self, order: str, booking: Booking, invoice_date: dt.date, *, dry_run: bool
    ) -> Written:
        """The order's invoice (``createinvoice``), unless the order names one already.
        Fortnox dates it today."""
        written = Written([])
        with refusals():
            current = await self.client.find("orders", order, "Order")
            if current is None:
                written.add("order", order, "missing")
                return written
            invoiced = str(current.get("InvoiceReference") or "0")
            if invoiced != "0":
                written.add("invoice", invoiced, ADOPTED)
            elif dry_run:
                written.add("invoice", None, PLANNED)
            else:
                invoice = await self.client.action("orders", order, "createinvoice", "Invoice")
                invoiced = str(invoice["DocumentNumber"])
                written.add("invoice", invoiced, CREATED)
            written.erp_reference = None if invoiced == "0" else invoiced
        return written
