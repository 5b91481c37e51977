"""Winner: an accepted quote becomes one order per part of the project's payment calendar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple

from nordflow_schemas.events import DocumentKind
from nordflow_schemas.money import money
from pydantic import Field, field_validator, model_validator

from .documents import Document
from .pushed import AddressIn, In, Money, Rate, Text


class WinnerCustomer(In):
    """Winner's customer card (upserted in the accounting system by its number)."""

    customer_number: Text
    name: Text
    type: Literal["private", "company"] = "private"
    organisation_number: str | None = Field(default=None, max_length=20)
    vat_number: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    address: AddressIn = AddressIn()


class WinnerProject(In):
    """The kitchen project, number and name as in Winner, linked to the customer."""

    number: Text
    name: Text


class WinnerLine(In):
    """One quote line; ``amount`` is the line total (VAT excluded unless the quote says so)."""

    description: Text
    amount: Money
    vat_rate: Rate = Decimal(25)
    product_group: str | None = Field(default=None, max_length=100)
    article_number: str | None = Field(default=None, max_length=50)


class WinnerPart(In):
    """One instalment of the project's payment calendar: it becomes one order."""

    part: int = Field(ge=1, le=99)
    percent: Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False, max_digits=8)]
    label: str | None = Field(default=None, max_length=100)
    due_date: dt.date | None = None


class WinnerOrderPush(In):
    """An accepted Winner quote, to be invoiced as one order per payment-calendar part."""

    quote_number: str = Field(pattern=r"^[A-Za-z0-9._/-]{1,50}$")
    order_date: dt.date
    currency: str = Field(default="SEK", pattern=r"^[A-Z]{3}$")
    customer: WinnerCustomer
    project: WinnerProject
    line_mode: Literal["total", "product_groups"] = Field(
        description="One total line (fixed product number) or one line per product group"
    )
    total_article_number: str | None = Field(default=None, max_length=50)
    prices_include_vat: bool = False
    lines: list[WinnerLine] = Field(min_length=1, max_length=500)
    payment_calendar: list[WinnerPart] = Field(default_factory=list, max_length=20)
    payment_terms_days: int = Field(default=30, ge=0, le=365)
    reference: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    credited_order_id: str | None = Field(
        default=None, max_length=60, description="Set on a credit order: the order it credits"
    )

    @field_validator("payment_calendar")
    @classmethod
    def _calendar(cls, parts: list[WinnerPart]) -> list[WinnerPart]:
        if parts and sum(p.percent for p in parts) != 100:
            raise ValueError("the parts' percent must add up to 100")
        if len({p.part for p in parts}) != len(parts):
            raise ValueError("part numbers must be unique")
        return sorted(parts, key=lambda p: p.part)

    @model_validator(mode="after")
    def _mode(self) -> WinnerOrderPush:
        if self.line_mode == "total" and not self.total_article_number:
            raise ValueError("total_article_number is required when line_mode is 'total'")
        if self.line_mode == "product_groups":
            missing = [i for i, line in enumerate(self.lines) if not line.product_group]
            if missing:
                raise ValueError(f"lines {missing} need a product_group (line_mode product_groups)")
        return self


class _OrderLine(NamedTuple):
    article_number: str | None
    product_group: str | None
    description: str
    amount: Decimal
    vat_rate: Decimal


def _split(amount: Decimal, percents: Sequence[Decimal]) -> list[Decimal]:
    """Shares of ``amount`` by percent, to the öre; the last takes the remainder (exact sum)."""
    shares = [money(amount * p / 100) for p in percents[:-1]]
    return [*shares, amount - sum(shares, Decimal(0))]


def winner_documents(push: WinnerOrderPush) -> list[Document]:
    """One order per payment-calendar part (``<quote>-<part>``), its lines split by percent:
    one total line per VAT rate (``line_mode`` total: the fixed product number, "Enligt
    offert <quote>"), or one line per product group and VAT rate, summed (product_groups)."""
    parts = push.payment_calendar or [WinnerPart(part=1, percent=Decimal(100))]
    if push.line_mode == "total":
        by_rate: dict[Decimal, Decimal] = {}
        for line in push.lines:
            by_rate[line.vat_rate] = by_rate.get(line.vat_rate, Decimal(0)) + line.amount
        base = [
            _OrderLine(
                push.total_article_number,
                None,
                f"Enligt offert {push.quote_number}",
                amount,
                rate,
            )
            for rate, amount in by_rate.items()
        ]
    else:
        # One line per product group (and VAT rate), its lines summed: the group is the
        # product the accounting system books it on (created there when missing).
        by_group: dict[tuple[str, Decimal], Decimal] = {}
        for line in push.lines:
            assert line.product_group is not None  # checked by WinnerOrderPush
            key = (line.product_group, line.vat_rate)
            by_group[key] = by_group.get(key, Decimal(0)) + line.amount
        base = [
            _OrderLine(group, group, group, amount, rate)
            for (group, rate), amount in by_group.items()
        ]
    shares = [_split(line.amount, [p.percent for p in parts]) for line in base]
    documents: list[Document] = []
    for index, part in enumerate(parts):
        # A credit order is a document of its own, never a new version of the order it
        # credits (which may carry the same quote number).
        credit = "C" if push.credited_order_id else ""
        order_id = f"{push.quote_number}-{credit}{part.part}"
        lines: list[dict[str, Any]] = []
        for order_line, split in zip(base, shares, strict=True):
            amount = split[index]
            if amount == 0:
                continue
            label = f" ({part.label})" if part.label and push.line_mode == "total" else ""
            lines.append(
                {
                    "line_id": str(len(lines) + 1),
                    "article_number": order_line.article_number,
                    "product_group": order_line.product_group,
                    "description": f"{order_line.description}{label}",
                    "quantity": "1",
                    "unit_price": format(amount, "f"),
                    "amount": format(amount, "f"),
                    "vat_rate": format(order_line.vat_rate, "f"),
                }
            )
        due = part.due_date or push.order_date + dt.timedelta(days=push.payment_terms_days)
        payload = {
            "order_id": order_id,
            "quote_number": push.quote_number,
            "part": part.part,
            "parts": len(parts),
            "part_label": part.label,
            "percent": format(part.percent, "f"),
            "order_date": push.order_date.isoformat(),
            "due_date": due.isoformat(),
            "currency": push.currency,
            "prices_include_vat": push.prices_include_vat,
            "customer": push.customer.model_dump(mode="json"),
            "project": push.project.model_dump(mode="json"),
            "lines": lines,
            "reference": push.reference,
            "note": push.note,
            "credited_order_id": push.credited_order_id,
        }
        documents.append(
            Document(
                document_id=order_id,
                document_number=order_id,
                kind=DocumentKind.ORDER,
                payload=payload,
                related={},
            )
        )
    return documents
