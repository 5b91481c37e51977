"""Tripletex as ledger-closer writes into it: a Winner order's customer card (created or
updated), its project (created if missing, linked to the customer), products for its lines
(created when missing) and the order naming both; the order invoiced when its part is due.
Every create is looked up first: the customer by its number (or organisation number or
e-mail), the project and products by their numbers, the order by our reference."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nordflow_connectors.tripletex import TripletexClient
from nordflow_schemas.events import BookingAction

from ...domain import Booking, CustomerCard, ErpEntry, UnpostableError, Written
from ...domain.booking import ADOPTED, CREATED, FOUND, PLANNED, UPDATED
from .refusals import refusals

# Tripletex's VAT type numbers for Norwegian sales by rate: 3 high, 31 middle, 33 low,
# 5 none (within the VAT act).
VAT_TYPE_NUMBERS = {Decimal(25): "3", Decimal(15): "31", Decimal(12): "33", Decimal(0): "5"}


def _customer_body(card: CustomerCard) -> dict[str, Any]:
    body: dict[str, Any] = {"name": card.name, "isPrivateIndividual": card.private}
    if card.organisation_number:
        body["organizationNumber"] = card.organisation_number
    if card.email:
        body["email"] = card.email
        body["invoiceEmail"] = card.email
    if card.address or card.postal_code or card.city:
        body["postalAddress"] = {
            "addressLine1": card.address or "",
            "postalCode": card.postal_code or "",
            "city": card.city or "",
        }
    return body


@dataclass
class TripletexWriter:
    """``Booker`` on one Tripletex company (orders only; payments and closings are not
    written into Tripletex)."""

    client: TripletexClient
    vat_types: dict[Decimal, int] = field(default_factory=dict)
    fee_booked: bool = False

    async def aclose(self) -> None:
        """Close the client."""
        await self.client.aclose()

    # ------------------------------------------------------------ not written into Tripletex

    async def find_entry(self, entry: ErpEntry, known: set[str], state: str | None) -> str | None:
        """Payments and closings are not written into Tripletex."""
        raise UnpostableError("payments and closings are not written into tripletex")

    async def prepare_entry(self, entry: ErpEntry) -> str | None:
        """Not written into Tripletex."""
        raise UnpostableError("payments and closings are not written into tripletex")

    async def create_entry(self, entry: ErpEntry) -> str:
        """Not written into Tripletex."""
        raise UnpostableError("payments and closings are not written into tripletex")

    async def settle_entry(self, entry: ErpEntry, reference: str) -> None:
        """Not written into Tripletex."""

    async def sent(self, document_id: str, document_number: str) -> bool | None:
        """Not known."""
        return None

    # ---------------------------------------------------------------------------- orders

    async def _vat_type(self, rate: Decimal) -> int:
        if rate not in self.vat_types:
            number = VAT_TYPE_NUMBERS.get(rate)
            found = await self.client.vat_type(number) if number else None
            if found is None:
                raise UnpostableError(f"tripletex has no sales VAT type of {rate} %")
            self.vat_types[rate] = int(found["id"])
        return self.vat_types[rate]

    async def book(self, booking: Booking, original: str | None, *, dry_run: bool) -> Written:
        """The customer card, project, products and the order (Winner's orders only)."""
        if booking.action is not BookingAction.ORDER:
            raise UnpostableError(
                f"tripletex takes orders (Winner); a {booking.action.value} is not booked there"
            )
        written = Written([])
        with refusals():
            customer = await self._customer(booking.customer, dry_run, written)
            project = await self._project(booking, customer, dry_run, written)
            products = await self._products(booking, dry_run, written)
            await self._order(booking, customer, project, products, dry_run, written)
        return written

    async def _customer(self, card: CustomerCard, dry_run: bool, written: Written) -> int | None:
        body = _customer_body(card)
        numeric = card.number is not None and card.number.isdigit()
        if numeric:
            found = await self.client.customers(customerAccountNumber=str(card.number))
        elif card.organisation_number:
            found = await self.client.customers(organizationNumber=card.organisation_number)
        elif card.email:
            found = await self.client.customers(email=card.email)
        else:
            found = []
        if found:
            record = found[0]
            if not dry_run:
                await self.client.update(
                    "customer", record["id"], {**body, "version": record["version"]}
                )
            written.add("customer", record["customerNumber"], PLANNED if dry_run else UPDATED)
            return int(record["id"])
        if dry_run:
            written.add("customer", card.number, PLANNED)
            return None
        if numeric:
            body["customerNumber"] = int(str(card.number))
        created = await self.client.create("customer", body)
        written.add("customer", created["customerNumber"], CREATED)
        return int(created["id"])

    async def _project(
        self, booking: Booking, customer: int | None, dry_run: bool, written: Written
    ) -> int | None:
        if not booking.project_number:
            return None
        found = await self.client.projects(number=booking.project_number)
        if found:
            project = found[0]
            if project.get("customer") is None and customer is not None and not dry_run:
                await self.client.update(
                    "project",
                    project["id"],
                    {"version": project["version"], "customer": {"id": customer}},
                )
            written.add("project", booking.project_number, FOUND)
            return int(project["id"])
        if dry_run:
            written.add("project", booking.project_number, PLANNED)
            return None
        manager = (await self.client.who_am_i())["employeeId"]
        body: dict[str, Any] = {
            "name": booking.project_name or booking.project_number,
            "number": booking.project_number,
            "projectManager": {"id": manager},
            "startDate": booking.issue_date.isoformat(),
        }
        if customer is not None:
            body["customer"] = {"id": customer}
        created = await self.client.create("project", body)
        written.add("project", booking.project_number, CREATED)
        return int(created["id"])

    async def _products(
        self, booking: Booking, dry_run: bool, written: Written
    ) -> dict[str, int | None]:
        products: dict[str, int | None] = {}
        for line in booking.lines:
            number = line.article_number
            if not number or number in products:
                continue
            found = await self.client.products(number=number)
            if found:
                products[number] = int(found[0]["id"])
                written.add("product", number, FOUND)
            elif dry_run:
                products[number] = None
                written.add("product", number, PLANNED)
            else:
                created = await self.client.create(
                    "product",
                    {
                        "name": line.description[:255],
                        "number": number,
                        "vatType": {"id": await self._vat_type(line.vat_rate)},
                    },
                )
                products[number] = int(created["id"])
                written.add("product", number, CREATED)
        return products

    async def _order(
        self,
        booking: Booking,
        customer: int | None,
        project: int | None,
        products: dict[str, int | None],
        dry_run: bool,
        written: Written,
    ) -> None:
        day = booking.issue_date
        if customer is not None:
            for order in await self.client.orders(
                day, day + dt.timedelta(days=1), customerId=str(customer)
            ):
                if order.get("reference") == booking.reference:
                    written.erp_reference = str(order["id"])
                    written.add("order", written.erp_reference, ADOPTED)
                    return
        if dry_run:
            written.add("order", None, PLANNED)
            return
        lines = []
        for line in booking.lines:
            item: dict[str, Any] = {
                "description": line.description[:1000],
                "count": float(line.quantity),
                "unitPriceExcludingVatCurrency": float(line.unit_price),
                "vatType": {"id": await self._vat_type(line.vat_rate)},
            }
            product = products.get(line.article_number or "")
            if product is not None:
                item["product"] = {"id": product}
            lines.append(item)
        quote = f"Tilbud {booking.quote_number}, " if booking.quote_number else ""
        body: dict[str, Any] = {
            "customer": {"id": customer},
            "orderDate": day.isoformat(),
            "deliveryDate": (booking.due_date or day).isoformat(),
            "reference": booking.reference,
            "invoiceComment": f"{quote}ordre {booking.number}",
            "orderLines": lines,
        }
        if project is not None:
            body["project"] = {"id": project}
        created = await self.client.create("order", body)
        written.erp_reference = str(created["id"])
        written.add("order", written.erp_reference, CREATED)

    async def invoice_order(
        self, order: str, booking: Booking, invoice_date: dt.date, *, dry_run: bool
    ) -> Written:
        """``PUT /order/{id}/:invoice`` (not sent to the customer by Tripletex), unless the
        order was invoiced already: then the invoice naming it is adopted."""
        written = Written([])
        with refusals():
            current = await self.client.order(int(order))
            if current.get("isClosed"):
                customer = str(current["customer"]["id"])
                for invoice in await self.client.invoices(
                    invoice_date, invoice_date + dt.timedelta(days=1), customerId=customer
                ):
                    if {"id": int(order)} in (invoice.get("orders") or []):
                        written.erp_reference = str(invoice["invoiceNumber"])
                        written.add("invoice", written.erp_reference, ADOPTED)
                        return written
                written.add("invoice", None, FOUND)  # closed, invoiced on another day
                return written
            if dry_run:
                written.add("invoice", None, PLANNED)
                return written
            invoice = await self.client.invoice_order(int(order), invoice_date)
            written.erp_reference = str(invoice["invoiceNumber"])
            written.add("invoice", written.erp_reference, CREATED)
        return written
