"""Fortnox's registers beyond the customer ledger: articles, projects, orders (and the invoice an
order becomes) and vouchers, with their JSON shapes and routes (callers of the use cases hold
the state's lock)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from nordflow_schemas.money import money

from nordflow_sandboxes.fortnox import fields as f
from nordflow_sandboxes.fortnox import service
from nordflow_sandboxes.fortnox.domain import (
    Article,
    Company,
    Invoice,
    InvoiceRow,
    Order,
    Project,
    Registers,
    VoucherRecord,
    VoucherRow,
)
from nordflow_sandboxes.fortnox.errors import (
    INVALID_IDENTIFIER,
    SANDBOX_NOT_FOUND,
    FortnoxError,
    bad_request,
    not_found,
    rule_violation,
)
from nordflow_sandboxes.fortnox.serialize import invoice as invoice_json
from nordflow_sandboxes.fortnox.serialize import meta
from nordflow_sandboxes.fortnox.state import FortnoxState
from nordflow_sandboxes.kit.values import ZERO, json_number

JsonObject = dict[str, Any]
ARTICLE_TYPES = frozenset({"STOCK", "SERVICE"})
PROJECT_STATUSES = frozenset({"NOTSTARTED", "ONGOING", "COMPLETED"})

ARTICLE_TEXT = {"Description": 200, "Unit": 50, "EAN": 30, "Note": 10000, "SalesAccount": 4}
PROJECT_TEXT = {"Description": 50, "ProjectLeader": 50, "ContactPerson": 50, "Comments": 512}
ORDER_TEXT = {
    "ExternalInvoiceReference1": 80,
    "ExternalInvoiceReference2": 80,
    "YourReference": 50,
    "OurReference": 50,
    "YourOrderNumber": 30,
    "Remarks": 1024,
    "Project": 50,
}
ORDER_ROW_FIELDS = frozenset(
    {
        "AccountNumber",
        "ArticleNumber",
        "DeliveredQuantity",
        "Description",
        "Discount",
        "DiscountType",
        "OrderedQuantity",
        "Price",
        "Unit",
        "VAT",
    }
)
ORDER_READ_ONLY = frozenset(
    {"@url", "Cancelled", "InvoiceReference", "Net", "Sent", "Total", "TotalVAT", "OrderType"}
)
VOUCHER_ROW_FIELDS = frozenset(
    {"Account", "Credit", "Debit", "Description", "TransactionInformation"}
)
VOUCHER_READ_ONLY = frozenset({"@url", "VoucherNumber", "Year", "ApprovalState"})


def registers(company: Company) -> Registers:
    """The company's articles, projects, orders and vouchers."""
    return company.registers


def _texts(body: Mapping[str, Any], spec: Mapping[str, int], where: str) -> dict[str, str]:
    return {
        name: f.as_text(f"{where}.{name}", body[name], length)
        for name, length in spec.items()
        if name in body and body[name] is not None
    }


def _number(raw: Any, what: str) -> str:
    text = f.as_text(what, raw, 50).strip()
    if not text or not all(c.isalnum() or c in "._-" for c in text):
        raise bad_request(INVALID_IDENTIFIER, f"A valid identifier was not provided. ({what})")
    return text


# -------------------------------------------------------------------------------- articles


def save_article(
    company: Company, body: Mapping[str, Any], now: datetime, number: str | None = None
) -> Article:
    """Create an article (``number`` None) or update one; ``Description`` is required."""
    f.check_field_names(
        body,
        {*ARTICLE_TEXT, "ArticleNumber", "Type", "VAT", "Active", "SalesPrice"},
        {"@url"},
        "Article",
    )
    regs = registers(company)
    if number is None:
        raw = body.get("ArticleNumber")
        number = _number(raw, "Article.ArticleNumber") if raw not in (None, "") else None
        if number is None:
            numeric = [int(n) for n in regs.articles if n.isdigit()]
            number = str(max(numeric, default=0) + 1)
        if number in regs.articles:
            raise rule_violation(f"Artikelnummer {number} används redan")
        if not body.get("Description"):
            raise f.invalid_value("Article.Description", "Description is required")
        article = Article(number, {"Type": "STOCK", "Active": True, "VAT": Decimal(25)}, now)
        regs.articles[number] = article
    else:
        article = get_article(company, number)
    values: dict[str, Any] = dict(_texts(body, ARTICLE_TEXT, "Article"))
    if body.get("Type") is not None:
        values["Type"] = f.as_enum("Article.Type", body["Type"], ARTICLE_TYPES)
    if body.get("VAT") is not None:
        values["VAT"] = f.as_decimal("Article.VAT", body["VAT"])
    if body.get("Active") is not None:
        values["Active"] = f.as_bool("Article.Active", body["Active"])
    if body.get("SalesPrice") is not None:
        values["SalesPrice"] = f.as_decimal("Article.SalesPrice", body["SalesPrice"])
    article.values.update(values)
    article.last_modified = now
    return article


def get_article(company: Company, number: str) -> Article:
    """One article, or a 404."""
    article = registers(company).articles.get(number)
    if article is None:
        raise not_found(f"Kunde inte hitta artikel: {number}")
    return article


def article_json(article: Article, base: str) -> JsonObject:
    """The Article resource."""
    v = article.values
    return {
        "@url": f"{base}/3/articles/{article.number}",
        "ArticleNumber": article.number,
        "Description": v.get("Description", ""),
        "Type": v.get("Type", "STOCK"),
        "VAT": json_number(v.get("VAT", Decimal(25))),
        "Unit": v.get("Unit", ""),
        "EAN": v.get("EAN", ""),
        "Note": v.get("Note", ""),
        "SalesAccount": v.get("SalesAccount") or None,
        "SalesPrice": json_number(v.get("SalesPrice", ZERO)),
        "Active": v.get("Active", True),
    }


# -------------------------------------------------------------------------------- projects


def save_project(
    company: Company, body: Mapping[str, Any], now: datetime, number: str | None = None
) -> Project:
    """Create a project (``number`` None) or update one; ``Description`` is required."""
    f.check_field_names(
        body,
        {*PROJECT_TEXT, "ProjectNumber", "Status", "StartDate", "EndDate"},
        {"@url"},
        "Project",
    )
    regs = registers(company)
    if number is None:
        raw = body.get("ProjectNumber")
        number = _number(raw, "Project.ProjectNumber") if raw not in (None, "") else None
        if number is None:
            numeric = [int(n) for n in regs.projects if n.isdigit()]
            number = str(max(numeric, default=0) + 1)
        if number in regs.projects:
            raise rule_violation(f"Projektnummer {number} används redan")
        if not body.get("Description"):
            raise f.invalid_value("Project.Description", "Description is required")
        project = Project(number, {"Status": "NOTSTARTED"}, now)
        regs.projects[number] = project
    else:
        project = get_project(company, number)
    values: dict[str, Any] = dict(_texts(body, PROJECT_TEXT, "Project"))
    if body.get("Status") is not None:
        values["Status"] = f.as_enum("Project.Status", body["Status"], PROJECT_STATUSES)
    for name in ("StartDate", "EndDate"):
        if body.get(name) not in (None, ""):
            values[name] = f.as_date(f"Project.{name}", body[name])
    project.values.update(values)
    project.last_modified = now
    return project


def get_project(company: Company, number: str) -> Project:
    """One project, or a 404."""
    project = registers(company).projects.get(number)
    if project is None:
        raise not_found(f"Kunde inte hitta projekt: {number}")
    return project


def project_json(project: Project, base: str) -> JsonObject:
    """The Project resource."""
    v = project.values

    def day(name: str) -> str | None:
        value = v.get(name)
        return value.isoformat() if isinstance(value, date) else None

    return {
        "@url": f"{base}/3/projects/{project.number}",
        "ProjectNumber": project.number,
        "Description": v.get("Description", ""),
        "Status": v.get("Status", "NOTSTARTED"),
        "StartDate": day("StartDate"),
        "EndDate": day("EndDate"),
        "ProjectLeader": v.get("ProjectLeader", ""),
        "ContactPerson": v.get("ContactPerson", ""),
        "Comments": v.get("Comments", ""),
    }


# ---------------------------------------------------------------------------------- orders


def _order_rows(
    company: Company, raw: Any, vat_type: str
) -> tuple[list[InvoiceRow], list[Decimal]]:
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        raise f.invalid_value("Order.OrderRows", "expected a list of rows")
    rows: list[InvoiceRow] = []
    ordered: list[Decimal] = []
    for index, item in enumerate(raw):
        where = f"Order.OrderRows[{index}]"
        if not isinstance(item, dict):
            raise f.invalid_value(where, "each row must be an object")
        f.check_field_names(item, ORDER_ROW_FIELDS, {"Total", "RowId"}, where)
        article = item.get("ArticleNumber")
        if article not in (None, "") and str(article) not in registers(company).articles:
            raise f.invalid_value(f"{where}.ArticleNumber", f"no article {article!r}")
        quantity = item.get("OrderedQuantity")
        ordered_quantity = ZERO if quantity in (None, "") else f.as_decimal(where, quantity)
        as_invoice_row = {k: v for k, v in item.items() if k != "OrderedQuantity"}
        if as_invoice_row.get("DeliveredQuantity") in (None, ""):
            as_invoice_row["DeliveredQuantity"] = str(ordered_quantity)
        rows.append(service.decode_row(index + 1, as_invoice_row, vat_type, where))
        ordered.append(ordered_quantity)
    return rows, ordered


def create_order(company: Company, body: Mapping[str, Any], now: datetime, today: date) -> Order:
    """Create an order for an existing customer; a named project must exist."""
    f.check_field_names(
        body,
        {
            *ORDER_TEXT,
            "CustomerNumber",
            "OrderDate",
            "DeliveryDate",
            "Currency",
            "OrderRows",
            "VATIncluded",
            "DocumentNumber",
        },
        ORDER_READ_ONLY,
        "Order",
    )
    raw_customer = body.get("CustomerNumber")
    if raw_customer in (None, ""):
        raise f.invalid_value("Order.CustomerNumber", "CustomerNumber is required")
    customer = service.existing_customer(company, f.as_text("Order.CustomerNumber", raw_customer))
    values = _texts(body, ORDER_TEXT, "Order")
    if values.get("Project") and values["Project"] not in registers(company).projects:
        raise f.invalid_value("Order.Project", f"no project {values['Project']!r}")
    regs = registers(company)
    number = regs.next_order_number
    regs.next_order_number += 1
    rows, ordered = _order_rows(company, body.get("OrderRows"), customer.get_text("VATType"))
    order_date = f.as_date("Order.OrderDate", body["OrderDate"]) if body.get("OrderDate") else today
    delivery = body.get("DeliveryDate")
    order = Order(
        document_number=number,
        customer_number=customer.number,
        order_date=order_date,
        delivery_date=f.as_date("Order.DeliveryDate", delivery) if delivery else None,
        currency=str(body.get("Currency") or customer.get_text("Currency") or "SEK").upper(),
        vat_included=bool(body.get("VATIncluded", False)),
        rows=rows,
        ordered=ordered,
        values={"CustomerName": customer.name, **values},
        last_modified=now,
    )
    _recompute(order)
    regs.orders[number] = order
    return order


def _recompute(order: Order) -> None:
    probe = Invoice(
        document_number=0,
        customer_number=order.customer_number,
        invoice_date=order.order_date,
        due_date=order.order_date,
        terms_of_payment="0",
        invoice_type="INVOICE",
        currency=order.currency,
        currency_rate=Decimal(1),
        currency_unit=1,
        vat_included=order.vat_included,
        freight=ZERO,
        administration_fee=ZERO,
        rows=[
            InvoiceRow(**{**r.__dict__, "delivered_quantity": q})
            for r, q in zip(order.rows, order.ordered, strict=True)
        ],
        values={},
        ocr="",
        created=order.last_modified,
        last_modified=order.last_modified,
    )
    probe.recompute()
    order.net, order.total_vat, order.total = probe.net, probe.total_vat, probe.total


def get_order(company: Company, number: int) -> Order:
    """One order, or a 404."""
    order = registers(company).orders.get(number)
    if order is None:
        raise not_found(f"Kunde inte hitta order: {number}")
    return order


def list_orders(company: Company, query: Mapping[str, str]) -> list[Order]:
    """Orders, filtered like invoices by containment on the search parameters."""
    items = sorted(registers(company).orders.values(), key=lambda o: o.document_number)
    searches: dict[str, Callable[[Order], str]] = {
        "customernumber": lambda o: o.customer_number,
        "documentnumber": lambda o: str(o.document_number),
        "externalinvoicereference1": lambda o: o.values.get("ExternalInvoiceReference1", ""),
        "externalinvoicereference2": lambda o: o.values.get("ExternalInvoiceReference2", ""),
        "project": lambda o: o.values.get("Project", ""),
        "yourordernumber": lambda o: o.values.get("YourOrderNumber", ""),
    }
    for param, getter in searches.items():
        needle = query.get(param)
        if needle:
            items = [o for o in items if needle.lower() in str(getter(o)).lower()]
    flt = query.get("filter")
    if flt == "invoicecreated":
        items = [o for o in items if o.invoice_reference]
    elif flt == "invoicenotcreated":
        items = [o for o in items if not o.invoice_reference and not o.cancelled]
    elif flt == "cancelled":
        items = [o for o in items if o.cancelled]
    return items


def create_invoice_of(company: Company, number: int, now: datetime, today: date) -> Invoice:
    """`PUT /3/orders/{n}/createinvoice`: the invoice of the order's delivered rows."""
    order = get_order(company, number)
    if order.cancelled:
        raise rule_violation(f"Order {number} is cancelled")
    if order.invoice_reference:
        raise rule_violation(f"Order {number} is already invoiced ({order.invoice_reference})")
    rows = [
        {
            "ArticleNumber": r.article_number,
            "Description": r.description,
            "DeliveredQuantity": str(r.delivered_quantity),
            "Price": str(r.price),
            "VAT": r.vat,
            "AccountNumber": r.account_number,
            "Unit": r.unit,
        }
        for r in order.rows
    ]
    body: dict[str, Any] = {
        "CustomerNumber": order.customer_number,
        "InvoiceDate": today.isoformat(),
        "Currency": order.currency,
        "VATIncluded": order.vat_included,
        "InvoiceRows": rows,
        **{k: v for k, v in order.values.items() if k in ORDER_TEXT and k != "Remarks"},
    }
    invoice = service.create_invoice(company, body, now, today)
    invoice.values["OrderReference"] = str(order.document_number)
    order.invoice_reference = invoice.document_number
    order.last_modified = now
    return invoice


def cancel_order(company: Company, number: int, now: datetime) -> Order:
    """`PUT /3/orders/{n}/cancel`: only an order not yet invoiced."""
    order = get_order(company, number)
    if order.invoice_reference:
        raise rule_violation(f"Order {number} is invoiced and cannot be cancelled")
    order.cancelled = True
    order.last_modified = now
    return order


def order_json(order: Order, base: str) -> JsonObject:
    """The Order resource, its rows included."""
    return {
        "@url": f"{base}/3/orders/{order.document_number}",
        "DocumentNumber": str(order.document_number),
        "CustomerNumber": order.customer_number,
        "CustomerName": order.values.get("CustomerName", ""),
        "OrderDate": order.order_date.isoformat(),
        "DeliveryDate": order.delivery_date.isoformat() if order.delivery_date else None,
        "Currency": order.currency,
        "VATIncluded": order.vat_included,
        **{name: order.values.get(name, "") for name in ORDER_TEXT},
        "OrderRows": [
            {
                "ArticleNumber": r.article_number,
                "Description": r.description,
                "OrderedQuantity": f"{q:.2f}",
                "DeliveredQuantity": f"{r.delivered_quantity:.2f}",
                "Price": json_number(r.price),
                "VAT": r.vat,
                "Unit": r.unit,
                "AccountNumber": r.account_number,
                "Total": json_number(r.total),
            }
            for r, q in zip(order.rows, order.ordered, strict=True)
        ],
        "Net": json_number(order.net),
        "TotalVAT": json_number(order.total_vat),
        "Total": json_number(order.total),
        "InvoiceReference": str(order.invoice_reference),
        "Cancelled": order.cancelled,
        "Sent": False,
        "OrderType": "Order",
    }


def order_list_item(order: Order, base: str) -> JsonObject:
    """An order as lists show it."""
    full = order_json(order, base)
    keys = (
        "@url",
        "DocumentNumber",
        "CustomerNumber",
        "CustomerName",
        "OrderDate",
        "DeliveryDate",
        "Currency",
        "ExternalInvoiceReference1",
        "ExternalInvoiceReference2",
        "Project",
        "Total",
        "Cancelled",
        "Sent",
        "YourOrderNumber",
    )
    return {k: full[k] for k in keys}


# -------------------------------------------------------------------------------- vouchers


def create_voucher(company: Company, body: Mapping[str, Any], today: date) -> VoucherRecord:
    """A balanced manual voucher (debits equal credits), numbered in its series."""
    f.check_field_names(
        body,
        {
            "VoucherSeries",
            "TransactionDate",
            "Description",
            "Comments",
            "ReferenceNumber",
            "ReferenceType",
            "VoucherRows",
        },
        VOUCHER_READ_ONLY,
        "Voucher",
    )
    series = f.as_text("Voucher.VoucherSeries", body.get("VoucherSeries") or "A", 2).upper()
    raw_rows = body.get("VoucherRows")
    if not isinstance(raw_rows, list) or len(raw_rows) < 2:
        raise f.invalid_value("Voucher.VoucherRows", "a voucher needs at least two rows")
    rows: list[VoucherRow] = []
    for index, raw in enumerate(raw_rows):
        where = f"Voucher.VoucherRows[{index}]"
        if not isinstance(raw, dict):
            raise f.invalid_value(where, "each row must be an object")
        f.check_field_names(raw, VOUCHER_ROW_FIELDS, set(), where)
        debit = money(f.as_decimal(f"{where}.Debit", raw.get("Debit") or 0))
        credit = money(f.as_decimal(f"{where}.Credit", raw.get("Credit") or 0))
        if debit < 0 or credit < 0 or (debit == 0) == (credit == 0):
            raise f.invalid_value(where, "give a positive Debit or a positive Credit")
        rows.append(
            VoucherRow(
                account=f.as_account(f"{where}.Account", raw.get("Account")),
                debit=debit,
                credit=credit,
                description=f.as_text(f"{where}.Description", raw.get("Description"), 200),
            )
        )
    debit_sum, credit_sum = sum(r.debit for r in rows), sum(r.credit for r in rows)
    if debit_sum != credit_sum:
        raise rule_violation(
            f"Verifikationen balanserar inte: debet {debit_sum}, kredit {credit_sum}"
        )
    date_raw = body.get("TransactionDate")
    voucher = company.take_voucher(series)
    record = VoucherRecord(
        series=series,
        number=voucher.number,
        year=voucher.year,
        transaction_date=f.as_date("Voucher.TransactionDate", date_raw) if date_raw else today,
        description=f.as_text("Voucher.Description", body.get("Description"), 200),
        reference_number=f.as_text("Voucher.ReferenceNumber", body.get("ReferenceNumber"), 100),
        reference_type=f.as_text("Voucher.ReferenceType", body.get("ReferenceType"), 50),
        rows=rows,
    )
    registers(company).vouchers.append(record)
    return record


def voucher_json(record: VoucherRecord, base: str, *, rows: bool = True) -> JsonObject:
    """The Voucher resource (lists leave the rows out)."""
    body: JsonObject = {
        "@url": f"{base}/3/vouchers/{record.series}/{record.number}?financialyear={record.year}",
        "VoucherSeries": record.series,
        "VoucherNumber": record.number,
        "Year": record.year,
        "TransactionDate": record.transaction_date.isoformat(),
        "Description": record.description,
        "ReferenceNumber": record.reference_number,
        "ReferenceType": record.reference_type,
        "ApprovalState": 0,
    }
    if rows:
        body["VoucherRows"] = [
            {
                "Account": r.account,
                "Debit": json_number(r.debit),
                "Credit": json_number(r.credit),
                "Description": r.description,
            }
            for r in record.rows
        ]
    return body


# ---------------------------------------------------------------------------------- routes


def registers_router(state: FortnoxState) -> APIRouter:
    """`/3/articles`, `/3/projects`, `/3/orders`, `/3/vouchers` as Fortnox serves them."""
    router = APIRouter(prefix="/3")

    def ok(body: JsonObject, status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status)

    def company_of(request: Request) -> Company:
        return request.state.tenant  # type: ignore[no-any-return]

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def query(request: Request) -> dict[str, str]:
        return {k.lower(): v for k, v in request.query_params.items()}

    def listed(key: str, items: list[Any], request: Request, view: Any) -> JSONResponse:
        page = service.paginate(items, query(request))
        return ok(
            {key: [view(i, base(request)) for i in page.items], "MetaInformation": meta(page)}
        )

    @router.get("/articles")
    async def list_articles(request: Request) -> JSONResponse:
        with state.lock:
            items = sorted(registers(company_of(request)).articles.values(), key=lambda a: a.number)
            wanted = query(request).get("articlenumber")
            if wanted:
                items = [a for a in items if wanted.lower() in a.number.lower()]
            return listed("Articles", items, request, article_json)

    @router.get("/articles/{number}")
    async def read_article(request: Request, number: str) -> JSONResponse:
        with state.lock:
            return ok(
                {"Article": article_json(get_article(company_of(request), number), base(request))}
            )

    @router.post("/articles")
    async def post_article(request: Request) -> JSONResponse:
        body = f.decode_wrapped(await request.body(), "Article")
        with state.lock:
            article = save_article(company_of(request), body, state.now())
            return ok({"Article": article_json(article, base(request))}, 201)

    @router.put("/articles/{number}")
    async def put_article(request: Request, number: str) -> JSONResponse:
        body = f.decode_wrapped(await request.body(), "Article")
        with state.lock:
            article = save_article(company_of(request), body, state.now(), number)
            return ok({"Article": article_json(article, base(request))})

    @router.get("/projects")
    async def list_projects(request: Request) -> JSONResponse:
        with state.lock:
            items = sorted(registers(company_of(request)).projects.values(), key=lambda p: p.number)
            return listed("Projects", items, request, project_json)

    @router.get("/projects/{number}")
    async def read_project(request: Request, number: str) -> JSONResponse:
        with state.lock:
            return ok(
                {"Project": project_json(get_project(company_of(request), number), base(request))}
            )

    @router.post("/projects")
    async def post_project(request: Request) -> JSONResponse:
        body = f.decode_wrapped(await request.body(), "Project")
        with state.lock:
            project = save_project(company_of(request), body, state.now())
            return ok({"Project": project_json(project, base(request))}, 201)

    @router.put("/projects/{number}")
    async def put_project(request: Request, number: str) -> JSONResponse:
        body = f.decode_wrapped(await request.body(), "Project")
        with state.lock:
            project = save_project(company_of(request), body, state.now(), number)
            return ok({"Project": project_json(project, base(request))})

    @router.get("/orders")
    async def read_orders(request: Request) -> JSONResponse:
        with state.lock:
            items = list_orders(company_of(request), query(request))
            return listed("Orders", items, request, order_list_item)

    @router.get("/orders/{number}")
    async def read_order(request: Request, number: str) -> JSONResponse:
        document = service.parse_number(number, "DocumentNumber")
        with state.lock:
            return ok(
                {"Order": order_json(get_order(company_of(request), document), base(request))}
            )

    @router.post("/orders")
    async def post_order(request: Request) -> JSONResponse:
        body = f.decode_wrapped(await request.body(), "Order")
        with state.lock:
            order = create_order(company_of(request), body, state.now(), state.today())
            return ok({"Order": order_json(order, base(request))}, 201)

    @router.put("/orders/{number}/{action}")
    async def order_action(request: Request, number: str, action: str) -> JSONResponse:
        document = service.parse_number(number, "DocumentNumber")
        company = company_of(request)
        with state.lock:
            if action == "createinvoice":
                invoice = create_invoice_of(company, document, state.now(), state.today())
                return ok({"Invoice": invoice_json(invoice, base(request))})
            if action == "cancel":
                order = cancel_order(company, document, state.now())
                return ok({"Order": order_json(order, base(request))})
        raise FortnoxError(404, SANDBOX_NOT_FOUND, f"Unknown order action {action!r}")

    @router.get("/vouchers")
    async def list_vouchers(request: Request) -> JSONResponse:
        with state.lock:
            items = list(registers(company_of(request)).vouchers)
            return listed("Vouchers", items, request, lambda v, b: voucher_json(v, b, rows=False))

    @router.get("/vouchers/sublist/{series}")
    async def list_series(request: Request, series: str) -> JSONResponse:
        with state.lock:
            items = [v for v in registers(company_of(request)).vouchers if v.series == series]
            return listed("Vouchers", items, request, lambda v, b: voucher_json(v, b, rows=False))

    @router.get("/vouchers/{series}/{number}")
    async def read_voucher(request: Request, series: str, number: str) -> JSONResponse:
        wanted = service.parse_number(number, "VoucherNumber")
        with state.lock:
            for record in registers(company_of(request)).vouchers:
                if record.series == series and record.number == wanted:
                    return ok({"Voucher": voucher_json(record, base(request))})
        raise not_found(f"Kunde inte hitta verifikation {series}{number}")

    @router.post("/vouchers")
    async def post_voucher(request: Request) -> JSONResponse:
        body = f.decode_wrapped(await request.body(), "Voucher")
        with state.lock:
            record = create_voucher(company_of(request), body, state.today())
            return ok({"Voucher": voucher_json(record, base(request))}, 201)

    return router
