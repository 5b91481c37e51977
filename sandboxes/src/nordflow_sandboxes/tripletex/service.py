"""Tripletex's records in one company and the use cases on them (callers hold the state's lock):
customers, projects, products, orders, the invoices made from orders, VAT types; each record
with the `version` PUTs are checked against, and its JSON shape."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from nordflow_schemas.money import money

from nordflow_sandboxes.kit.faults import Fault
from nordflow_sandboxes.kit.state import RequestRecord
from nordflow_sandboxes.kit.values import ZERO, json_number
from nordflow_sandboxes.tripletex.errors import (
    BAD_REQUEST,
    REVISION,
    TripletexError,
    invalid,
    not_found,
)

Body = Mapping[str, Any]
JsonObject = dict[str, Any]

# Tripletex's VAT types for Norwegian sales, by their number (`/ledger/vatType?number=`):
# 3 output VAT high rate, 31 middle (food), 33 low, 5 none within the VAT act, 6 outside it.
VAT_TYPES: tuple[tuple[int, str, str, Decimal], ...] = (
    (3, "3", "Utgående mva, høy sats", Decimal(25)),
    (31, "31", "Utgående mva, middels sats", Decimal(15)),
    (33, "33", "Utgående mva, lav sats", Decimal(12)),
    (5, "5", "Ingen utgående mva (innenfor mva-loven)", ZERO),
    (6, "6", "Ingen utgående mva (utenfor mva-loven)", ZERO),
)
VAT_BY_ID = {vat_id: (number, name, rate) for vat_id, number, name, rate in VAT_TYPES}
FIRST_CUSTOMER_NUMBER = 10000
DEFAULT_DUE_DAYS = 14


@dataclass
class Record:
    """A stored object: its id, version and fields as Tripletex shows them."""

    id: int
    version: int
    values: dict[str, Any]
    changed: datetime


@dataclass
class OrderLine:
    """One order line: product, text, count, net unit price and VAT type."""

    id: int
    product_id: int | None
    description: str
    count: Decimal
    unit_price: Decimal
    vat_type_id: int

    @property
    def net(self) -> Decimal:
        """Count x unit price, to the øre."""
        return money(self.count * self.unit_price)

    @property
    def vat(self) -> Decimal:
        """The line's VAT at its type's rate."""
        return money(self.net * VAT_BY_ID[self.vat_type_id][2] / 100)


@dataclass
class Order:
    """An order: customer, project, dates, lines; closed once invoiced."""

    record: Record
    customer_id: int
    project_id: int | None
    order_date: date
    delivery_date: date
    lines: list[OrderLine]
    is_closed: bool = False


@dataclass
class Invoice:
    """An invoice made from one order (`PUT /order/{id}/:invoice`)."""

    record: Record
    invoice_number: int
    invoice_date: date
    due_date: date
    customer_id: int
    order_id: int
    amount: Decimal
    amount_excluding_vat: Decimal
    sent_to_customer: bool


@dataclass
class Company:
    """One Tripletex company: its registers, its employee (the token's owner), faults, log."""

    company_id: int
    name: str
    employee_id: int
    created: datetime
    customers: dict[int, Record] = field(default_factory=dict)
    projects: dict[int, Record] = field(default_factory=dict)
    products: dict[int, Record] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    invoices: dict[int, Invoice] = field(default_factory=dict)
    next_id: int = 1001
    faults: list[Fault] = field(default_factory=list)
    requests: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=2000))

    @property
    def payments(self) -> dict[int, Any]:
        """Tripletex payments are not modelled (the ledger stats show none)."""
        return {}

    def take_id(self) -> int:
        """The next internal id of any object."""
        self.next_id += 1
        return self.next_id


# ------------------------------------------------------------------------------- values


def _text(body: Body, name: str, limit: int = 255, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise invalid(name, "Feltet må fylles ut.")
        return None
    if not isinstance(value, str):
        raise invalid(name, "Verdien må være en tekst.")
    if len(value) > limit:
        raise invalid(name, f"Verdien kan ikke være lengre enn {limit} tegn.")
    return value


def _decimal(body: Body, name: str) -> Decimal | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise invalid(name, "Verdien må være et tall.")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise invalid(name, "Verdien må være et tall.") from None
    if not number.is_finite():
        raise invalid(name, "Verdien må være et tall.")
    return number


def _date(body: Body, name: str, *, required: bool = False) -> date | None:
    value = body.get(name)
    if value in (None, ""):
        if required:
            raise invalid(name, "Feltet må fylles ut.")
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise invalid(name, "Ugyldig dato (yyyy-MM-dd).") from None


def _ref(body: Body, name: str, *, required: bool = False) -> int | None:
    """An object reference `{"id": n}`."""
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(name, "Feltet må fylles ut.")
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), int):
        raise invalid(f"{name}.id", "Objektet må refereres med id.")
    return int(value["id"])


def _check_fields(body: Body, known: frozenset[str], where: str = "") -> None:
    for name in body:
        if name not in known:
            raise invalid(f"{where}{name}", "Feltet eksisterer ikke i objektet.")


def _check_version(record: Record, body: Body, what: str) -> None:
    """A PUT carrying `version` must carry the record's current one (optimistic locking)."""
    version = body.get("version")
    if version is not None and version != record.version:
        raise TripletexError(
            409,
            REVISION,
            f"RevisionException: {what} {record.id} was changed (version "
            f"{record.version}, not {version})",
        )


def _touch(record: Record, now: datetime) -> None:
    record.version += 1
    record.changed = now


def page(items: list[Any], query: Mapping[str, str]) -> tuple[list[Any], int, int]:
    """`from` (0-based) and `count` (default 1000): the slice, its start and the total."""
    try:
        start = int(query.get("from", "0"))
        count = int(query.get("count", "1000"))
    except ValueError:
        raise TripletexError(400, BAD_REQUEST, "from and count must be integers") from None
    if start < 0 or count < 0:
        raise TripletexError(400, BAD_REQUEST, "from and count must not be negative")
    return items[start : start + count], start, len(items)


def _ids(raw: str | None) -> set[int] | None:
    """A "list of IDs" parameter (comma-separated)."""
    if not raw:
        return None
    try:
        return {int(part) for part in raw.split(",") if part.strip()}
    except ValueError:
        raise TripletexError(400, BAD_REQUEST, f"not a list of ids: {raw!r}") from None


def _required_query_date(query: Mapping[str, str], name: str) -> date:
    raw = query.get(name)
    if not raw:
        raise invalid(name, "Feltet må fylles ut.")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid(name, "Ugyldig dato (yyyy-MM-dd).") from None


# ---------------------------------------------------------------------------- customers

CUSTOMER_FIELDS = frozenset(
    {
        "id",
        "version",
        "url",
        "name",
        "organizationNumber",
        "customerNumber",
        "email",
        "invoiceEmail",
        "phoneNumber",
        "phoneNumberMobile",
        "isPrivateIndividual",
        "isCustomer",
        "postalAddress",
        "physicalAddress",
        "invoicesDueIn",
        "language",
        "description",
    }
)
ADDRESS_FIELDS = frozenset({"addressLine1", "addressLine2", "postalCode", "city", "country"})


def _customer_values(body: Body, values: dict[str, Any]) -> None:
    for name in (
        "name",
        "organizationNumber",
        "email",
        "invoiceEmail",
        "phoneNumber",
        "phoneNumberMobile",
        "language",
        "description",
    ):
        if name in body:
            values[name] = _text(body, name) or ""
    if "isPrivateIndividual" in body:
        values["isPrivateIndividual"] = bool(body["isPrivateIndividual"])
    if "invoicesDueIn" in body:
        days = body["invoicesDueIn"]
        if not isinstance(days, int) or days < 0:
            raise invalid("invoicesDueIn", "Verdien må være et heltall.")
        values["invoicesDueIn"] = days
    for name in ("postalAddress", "physicalAddress"):
        if body.get(name) is not None:
            address = body[name]
            if not isinstance(address, dict):
                raise invalid(name, "Forventet et objekt.")
            _check_fields(address, ADDRESS_FIELDS | {"id", "version", "url"}, f"{name}.")
            values[name] = {k: address.get(k) for k in ADDRESS_FIELDS if k in address}


def create_customer(company: Company, body: Body, now: datetime) -> Record:
    """`POST /customer`: a name is required; `customerNumber` is assigned when absent."""
    _check_fields(body, CUSTOMER_FIELDS)
    _text(body, "name", required=True)
    number = body.get("customerNumber")
    taken = {r.values["customerNumber"] for r in company.customers.values()}
    if number is None or number == 0:
        number = max(taken, default=FIRST_CUSTOMER_NUMBER - 1) + 1
    elif not isinstance(number, int) or number < 1:
        raise invalid("customerNumber", "Verdien må være et positivt heltall.")
    elif number in taken:
        raise invalid("customerNumber", f"Kundenummeret {number} er i bruk.")
    values: dict[str, Any] = {
        "customerNumber": number,
        "isCustomer": True,
        "isPrivateIndividual": False,
        "invoicesDueIn": DEFAULT_DUE_DAYS,
    }
    _customer_values(body, values)
    record = Record(company.take_id(), 0, values, now)
    company.customers[record.id] = record
    return record


def update_customer(company: Company, customer_id: int, body: Body, now: datetime) -> Record:
    """`PUT /customer/{id}`: the fields given change (a PUT with optional fields)."""
    record = get(company.customers, customer_id, "customer")
    _check_fields(body, CUSTOMER_FIELDS)
    _check_version(record, body, "customer")
    _customer_values(body, record.values)
    _touch(record, now)
    return record


def search_customers(company: Company, query: Mapping[str, str]) -> list[Record]:
    """`GET /customer`: `id`, `customerAccountNumber` (lists), `organizationNumber`, `email`,
    `invoiceEmail` (equal)."""
    items = sorted(company.customers.values(), key=lambda r: r.id)
    if (ids := _ids(query.get("id"))) is not None:
        items = [r for r in items if r.id in ids]
    if (numbers := _ids(query.get("customerAccountNumber"))) is not None:
        items = [r for r in items if r.values["customerNumber"] in numbers]
    for name in ("organizationNumber", "email", "invoiceEmail"):
        if query.get(name):
            items = [r for r in items if r.values.get(name) == query[name]]
    return items


def customer_json(record: Record, base: str) -> JsonObject:
    """The Customer object."""
    v = record.values
    empty = {"addressLine1": "", "addressLine2": "", "postalCode": "", "city": ""}
    return {
        "id": record.id,
        "version": record.version,
        "url": f"{base}/v2/customer/{record.id}",
        "name": v.get("name", ""),
        "organizationNumber": v.get("organizationNumber", ""),
        "customerNumber": v["customerNumber"],
        "isCustomer": True,
        "isPrivateIndividual": v.get("isPrivateIndividual", False),
        "email": v.get("email", ""),
        "invoiceEmail": v.get("invoiceEmail", ""),
        "phoneNumber": v.get("phoneNumber", ""),
        "phoneNumberMobile": v.get("phoneNumberMobile", ""),
        "language": v.get("language", "NO"),
        "invoicesDueIn": v.get("invoicesDueIn", DEFAULT_DUE_DAYS),
        "postalAddress": {**empty, **(v.get("postalAddress") or {})},
        "physicalAddress": {**empty, **(v.get("physicalAddress") or {})},
    }


def get(registry: Mapping[int, Record], record_id: int, what: str) -> Record:
    """A record by id, or a 404."""
    record = registry.get(record_id)
    if record is None:
        raise not_found(f"{what} {record_id}")
    return record


# ----------------------------------------------------------------------------- projects

PROJECT_FIELDS = frozenset(
    {
        "id",
        "version",
        "url",
        "name",
        "number",
        "description",
        "projectManager",
        "startDate",
        "endDate",
        "customer",
        "isClosed",
        "isInternal",
        "isFixedPrice",
        "reference",
        "invoiceComment",
    }
)


def create_project(company: Company, body: Body, now: datetime, today: date) -> Record:
    """`POST /project`: name, projectManager (an employee) and startDate; a customer linked
    by id; `number` is assigned when absent and must be unused."""
    _check_fields(body, PROJECT_FIELDS)
    _text(body, "name", required=True)
    manager = _ref(body, "projectManager", required=True)
    if manager != company.employee_id:
        raise invalid("projectManager.id", f"Fant ingen ansatt med id {manager}.")
    customer = _ref(body, "customer")
    if customer is not None:
        get(company.customers, customer, "customer")
    numbers = {r.values["number"] for r in company.projects.values()}
    number = _text(body, "number", 100) or str(
        max((int(n) for n in numbers if n.isdigit()), default=0) + 1
    )
    if number in numbers:
        raise invalid("number", f"Prosjektnummeret {number} er i bruk.")
    values: dict[str, Any] = {
        "name": _text(body, "name"),
        "number": number,
        "description": _text(body, "description", 10000) or "",
        "projectManager": manager,
        "startDate": _date(body, "startDate") or today,
        "endDate": _date(body, "endDate"),
        "customer": customer,
        "isClosed": bool(body.get("isClosed", False)),
        "isInternal": bool(body.get("isInternal", False)),
        "isFixedPrice": bool(body.get("isFixedPrice", False)),
        "reference": _text(body, "reference") or "",
    }
    record = Record(company.take_id(), 0, values, now)
    company.projects[record.id] = record
    return record


def update_project(company: Company, project_id: int, body: Body, now: datetime) -> Record:
    """`PUT /project/{id}`: name, description, customer, dates, closing."""
    record = get(company.projects, project_id, "project")
    _check_fields(body, PROJECT_FIELDS)
    _check_version(record, body, "project")
    if "customer" in body:
        customer = _ref(body, "customer")
        if customer is not None:
            get(company.customers, customer, "customer")
        record.values["customer"] = customer
    for name in ("name", "description", "reference"):
        if name in body:
            record.values[name] = _text(body, name, 10000) or ""
    for name in ("startDate", "endDate"):
        if name in body:
            record.values[name] = _date(body, name)
    if "isClosed" in body:
        record.values["isClosed"] = bool(body["isClosed"])
    _touch(record, now)
    return record


def search_projects(company: Company, query: Mapping[str, str]) -> list[Record]:
    """`GET /project`: `id` (list), `number` (equal), `name` (containing), `customerId`
    (equal), `isClosed`."""
    items = sorted(company.projects.values(), key=lambda r: r.id)
    if (ids := _ids(query.get("id"))) is not None:
        items = [r for r in items if r.id in ids]
    if query.get("number"):
        items = [r for r in items if r.values["number"] == query["number"]]
    if query.get("name"):
        items = [r for r in items if query["name"].lower() in str(r.values["name"]).lower()]
    if query.get("customerId"):
        items = [r for r in items if str(r.values["customer"]) == query["customerId"]]
    if query.get("isClosed"):
        closed = query["isClosed"].lower() == "true"
        items = [r for r in items if r.values["isClosed"] == closed]
    return items


def project_json(record: Record, base: str) -> JsonObject:
    """The Project object."""
    v = record.values

    def day(value: date | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": record.id,
        "version": record.version,
        "url": f"{base}/v2/project/{record.id}",
        "name": v["name"],
        "number": v["number"],
        "displayName": f"{v['number']} {v['name']}",
        "description": v["description"],
        "projectManager": {"id": v["projectManager"]},
        "startDate": day(v["startDate"]),
        "endDate": day(v["endDate"]),
        "customer": {"id": v["customer"]} if v["customer"] else None,
        "isClosed": v["isClosed"],
        "isInternal": v["isInternal"],
        "isFixedPrice": v["isFixedPrice"],
        "reference": v["reference"],
    }


# ----------------------------------------------------------------------------- products

PRODUCT_FIELDS = frozenset(
    {
        "id",
        "version",
        "url",
        "name",
        "number",
        "description",
        "priceExcludingVatCurrency",
        "priceIncludingVatCurrency",
        "costExcludingVatCurrency",
        "vatType",
        "isInactive",
    }
)


def create_product(company: Company, body: Body, now: datetime) -> Record:
    """`POST /product`: a name; `number` must be unused; the VAT type must exist."""
    _check_fields(body, PRODUCT_FIELDS)
    _text(body, "name", required=True)
    number = _text(body, "number", 100) or ""
    if number and any(r.values["number"] == number for r in company.products.values()):
        raise invalid("number", f"Produktnummeret {number} er i bruk.")
    vat_type = _ref(body, "vatType") or 3
    if vat_type not in VAT_BY_ID:
        raise invalid("vatType.id", f"Fant ingen mva-type med id {vat_type}.")
    values = {
        "name": _text(body, "name"),
        "number": number,
        "description": _text(body, "description", 10000) or "",
        "price": _decimal(body, "priceExcludingVatCurrency") or ZERO,
        "vatType": vat_type,
        "isInactive": bool(body.get("isInactive", False)),
    }
    record = Record(company.take_id(), 0, values, now)
    company.products[record.id] = record
    return record


def search_products(company: Company, query: Mapping[str, str]) -> list[Record]:
    """`GET /product`: `id` (list), `number` (list, equal), `name` (containing)."""
    items = sorted(company.products.values(), key=lambda r: r.id)
    if (ids := _ids(query.get("id"))) is not None:
        items = [r for r in items if r.id in ids]
    if query.get("number"):
        wanted = {n.strip() for n in query["number"].split(",")}
        items = [r for r in items if r.values["number"] in wanted]
    if query.get("name"):
        items = [r for r in items if query["name"].lower() in str(r.values["name"]).lower()]
    return items


def product_json(record: Record, base: str) -> JsonObject:
    """The Product object."""
    v = record.values
    rate = VAT_BY_ID[v["vatType"]][2]
    return {
        "id": record.id,
        "version": record.version,
        "url": f"{base}/v2/product/{record.id}",
        "name": v["name"],
        "number": v["number"],
        "description": v["description"],
        "priceExcludingVatCurrency": json_number(v["price"]),
        "priceIncludingVatCurrency": json_number(money(v["price"] * (100 + rate) / 100)),
        "vatType": {"id": v["vatType"]},
        "isInactive": v["isInactive"],
    }


# ------------------------------------------------------------------------------- orders

ORDER_FIELDS = frozenset(
    {
        "id",
        "version",
        "url",
        "customer",
        "project",
        "orderDate",
        "deliveryDate",
        "reference",
        "invoiceComment",
        "receiverEmail",
        "number",
        "orderLines",
        "invoicesDueIn",
        "isPrioritizeAmountsIncludingVat",
        "currency",
        "ourContactEmployee",
    }
)
LINE_FIELDS = frozenset(
    {
        "id",
        "version",
        "url",
        "product",
        "description",
        "count",
        "unitPriceExcludingVatCurrency",
        "vatType",
        "order",
        "discount",
    }
)


def _order_line(company: Company, raw: Any, index: int) -> OrderLine:
    where = f"orderLines[{index}]."
    if not isinstance(raw, dict):
        raise invalid(f"orderLines[{index}]", "Forventet et objekt.")
    _check_fields(raw, LINE_FIELDS, where)
    product = _ref(raw, "product")
    product_record = get(company.products, product, "product") if product is not None else None
    vat_type = _ref(raw, "vatType")
    if vat_type is None:
        vat_type = product_record.values["vatType"] if product_record else 3
    if vat_type not in VAT_BY_ID:
        raise invalid(f"{where}vatType.id", f"Fant ingen mva-type med id {vat_type}.")
    price = _decimal(raw, "unitPriceExcludingVatCurrency")
    if price is None:
        price = product_record.values["price"] if product_record else ZERO
    description = _text(raw, "description", 1000)
    if description is None:
        description = str(product_record.values["name"]) if product_record else ""
    count = _decimal(raw, "count")
    return OrderLine(
        id=company.take_id(),
        product_id=product,
        description=description,
        count=Decimal(1) if count is None else count,
        unit_price=price,
        vat_type_id=vat_type,
    )


def create_order(company: Company, body: Body, now: datetime) -> Order:
    """`POST /order`: customer, orderDate and deliveryDate are required; lines inline."""
    _check_fields(body, ORDER_FIELDS)
    customer = _ref(body, "customer", required=True)
    assert customer is not None
    get(company.customers, customer, "customer")
    project = _ref(body, "project")
    if project is not None:
        get(company.projects, project, "project")
    order_date = _date(body, "orderDate", required=True)
    delivery_date = _date(body, "deliveryDate", required=True)
    assert order_date is not None
    assert delivery_date is not None
    if body.get("isPrioritizeAmountsIncludingVat"):
        raise invalid(
            "isPrioritizeAmountsIncludingVat",
            "The sandbox takes orders with unit prices excluding VAT only.",
        )
    raw_lines = body.get("orderLines") or []
    if not isinstance(raw_lines, list):
        raise invalid("orderLines", "Forventet en liste.")
    lines = [_order_line(company, raw, i) for i, raw in enumerate(raw_lines)]
    values = {
        "number": _text(body, "number", 100) or "",
        "reference": _text(body, "reference") or "",
        "invoiceComment": _text(body, "invoiceComment", 10000) or "",
        "receiverEmail": _text(body, "receiverEmail") or "",
        "invoicesDueIn": body.get("invoicesDueIn"),
    }
    order = Order(
        Record(company.take_id(), 0, values, now),
        customer,
        project,
        order_date,
        delivery_date,
        lines,
    )
    if not values["number"]:
        values["number"] = str(order.record.id)
    company.orders[order.record.id] = order
    return order


def search_orders(company: Company, query: Mapping[str, str]) -> list[Order]:
    """`GET /order`: `orderDateFrom` (including) and `orderDateTo` (excluding) are required;
    `id`, `customerId` (lists), `number` (equal), `isClosed`, `projectId`."""
    start = _required_query_date(query, "orderDateFrom")
    end = _required_query_date(query, "orderDateTo")
    items = [o for o in company.orders.values() if start <= o.order_date < end]
    items.sort(key=lambda o: o.record.id)
    if (ids := _ids(query.get("id"))) is not None:
        items = [o for o in items if o.record.id in ids]
    if (customers := _ids(query.get("customerId"))) is not None:
        items = [o for o in items if o.customer_id in customers]
    if (projects := _ids(query.get("projectId"))) is not None:
        items = [o for o in items if o.project_id in projects]
    if query.get("number"):
        items = [o for o in items if o.record.values["number"] == query["number"]]
    if query.get("isClosed"):
        closed = query["isClosed"].lower() == "true"
        items = [o for o in items if o.is_closed == closed]
    return items


def order_json(order: Order, base: str, *, lines: bool) -> JsonObject:
    """The Order object; its lines expanded (``fields=*,orderLines(*)``) or as id references."""
    v = order.record.values
    return {
        "id": order.record.id,
        "version": order.record.version,
        "url": f"{base}/v2/order/{order.record.id}",
        "customer": {"id": order.customer_id},
        "project": {"id": order.project_id} if order.project_id else None,
        "number": v["number"],
        "reference": v["reference"],
        "invoiceComment": v["invoiceComment"],
        "receiverEmail": v["receiverEmail"],
        "orderDate": order.order_date.isoformat(),
        "deliveryDate": order.delivery_date.isoformat(),
        "isClosed": order.is_closed,
        "isPrioritizeAmountsIncludingVat": False,
        "orderLines": [
            _line_json(line, order, base) if lines else {"id": line.id} for line in order.lines
        ],
    }


def _line_json(line: OrderLine, order: Order, base: str) -> JsonObject:
    return {
        "id": line.id,
        "version": 0,
        "url": f"{base}/v2/order/orderline/{line.id}",
        "order": {"id": order.record.id},
        "product": {"id": line.product_id} if line.product_id else None,
        "description": line.description,
        "count": json_number(line.count),
        "unitPriceExcludingVatCurrency": json_number(line.unit_price),
        "vatType": {"id": line.vat_type_id},
        "amountExcludingVatCurrency": json_number(line.net),
        "amountIncludingVatCurrency": json_number(line.net + line.vat),
    }


def invoice_order(
    company: Company, order_id: int, invoice_date: date, send: bool, now: datetime
) -> Invoice:
    """`PUT /order/{id}/:invoice`: the order's invoice; the order is then closed."""
    order = company.orders.get(order_id)
    if order is None:
        raise not_found(f"order {order_id}")
    if order.is_closed:
        raise invalid("id", f"Ordren {order_id} er lukket og kan ikke faktureres.")
    if not order.lines:
        raise invalid("orderLines", "Ordren har ingen ordrelinjer.")
    customer = get(company.customers, order.customer_id, "customer")
    days = order.record.values.get("invoicesDueIn")
    if days is None:
        days = customer.values.get("invoicesDueIn", DEFAULT_DUE_DAYS)
    net = sum((line.net for line in order.lines), ZERO)
    vat = sum((line.vat for line in order.lines), ZERO)
    invoice = Invoice(
        record=Record(company.take_id(), 0, {}, now),
        invoice_number=len(company.invoices) + 1,
        invoice_date=invoice_date,
        due_date=invoice_date + timedelta(days=int(days)),
        customer_id=order.customer_id,
        order_id=order.record.id,
        amount=net + vat,
        amount_excluding_vat=net,
        sent_to_customer=send,
    )
    company.invoices[invoice.record.id] = invoice
    order.is_closed = True
    _touch(order.record, now)
    return invoice


def search_invoices(company: Company, query: Mapping[str, str]) -> list[Invoice]:
    """`GET /invoice`: `invoiceDateFrom` (including) and `invoiceDateTo` (excluding) are
    required; `id`, `customerId` (lists), `invoiceNumber` (equal)."""
    start = _required_query_date(query, "invoiceDateFrom")
    end = _required_query_date(query, "invoiceDateTo")
    items = [i for i in company.invoices.values() if start <= i.invoice_date < end]
    items.sort(key=lambda i: i.record.id)
    if (ids := _ids(query.get("id"))) is not None:
        items = [i for i in items if i.record.id in ids]
    if (customers := _ids(query.get("customerId"))) is not None:
        items = [i for i in items if i.customer_id in customers]
    if query.get("invoiceNumber"):
        items = [i for i in items if str(i.invoice_number) == query["invoiceNumber"]]
    return items


def invoice_json(invoice: Invoice, base: str) -> JsonObject:
    """The Invoice object (its one order referenced in `orders`)."""
    return {
        "id": invoice.record.id,
        "version": invoice.record.version,
        "url": f"{base}/v2/invoice/{invoice.record.id}",
        "invoiceNumber": invoice.invoice_number,
        "invoiceDate": invoice.invoice_date.isoformat(),
        "invoiceDueDate": invoice.due_date.isoformat(),
        "customer": {"id": invoice.customer_id},
        "orders": [{"id": invoice.order_id}],
        "amount": json_number(invoice.amount),
        "amountCurrency": json_number(invoice.amount),
        "amountExcludingVat": json_number(invoice.amount_excluding_vat),
        "amountExcludingVatCurrency": json_number(invoice.amount_excluding_vat),
        "isCredited": False,
        "kid": "",
    }


def vat_types(query: Mapping[str, str]) -> list[tuple[int, str, str, Decimal]]:
    """`GET /ledger/vatType`: `id` (list), `number` (equal)."""
    items = list(VAT_TYPES)
    if (ids := _ids(query.get("id"))) is not None:
        items = [v for v in items if v[0] in ids]
    if query.get("number"):
        items = [v for v in items if v[1] == query["number"]]
    return items


def vat_type_json(item: tuple[int, str, str, Decimal], base: str) -> JsonObject:
    """The VatType object."""
    vat_id, number, name, rate = item
    return {
        "id": vat_id,
        "version": 0,
        "url": f"{base}/v2/ledger/vatType/{vat_id}",
        "name": name,
        "number": number,
        "percentage": json_number(rate),
    }


Finder = Callable[[Company, Mapping[str, str]], list[Any]]
