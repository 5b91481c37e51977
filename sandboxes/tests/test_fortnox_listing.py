"""Invoice lists: paging with MetaInformation, lastmodified in Stockholm time, filters, searches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import FakeClock, FortnoxApi


async def numbers(api: FortnoxApi, **params: str) -> list[str]:
    response = await api.get("/3/invoices", **params)
    assert response.status_code == 200, response.text
    return [item["DocumentNumber"] for item in response.json()["Invoices"]]


async def test_paging_and_meta_information(api: FortnoxApi) -> None:
    customer = await api.customer()
    for _ in range(7):
        await api.invoice(customer["CustomerNumber"])
    first = (await api.get("/3/invoices", limit="3")).json()
    assert first["MetaInformation"] == {"@CurrentPage": 1, "@TotalPages": 3, "@TotalResources": 7}
    assert [i["DocumentNumber"] for i in first["Invoices"]] == ["1", "2", "3"]
    last = (await api.get("/3/invoices", limit="3", page="3")).json()
    assert [i["DocumentNumber"] for i in last["Invoices"]] == ["7"]
    beyond = (await api.get("/3/invoices", limit="3", page="4")).json()
    assert beyond["Invoices"] == []
    assert beyond["MetaInformation"]["@CurrentPage"] == 4
    everything = (await api.get("/3/invoices")).json()
    assert everything["MetaInformation"] == {
        "@CurrentPage": 1,
        "@TotalPages": 1,
        "@TotalResources": 7,
    }


async def test_empty_list_meta(api: FortnoxApi) -> None:
    body = (await api.get("/3/invoices")).json()
    assert body == {
        "Invoices": [],
        "MetaInformation": {"@CurrentPage": 1, "@TotalPages": 0, "@TotalResources": 0},
    }


async def test_list_item_shape(api: FortnoxApi) -> None:
    customer = await api.customer(Name="Listkund AB")
    await api.invoice(customer["CustomerNumber"], ExternalInvoiceReference1="nf-7")
    item = (await api.get("/3/invoices")).json()["Invoices"][0]
    assert set(item) == {
        "@url",
        "Balance",
        "Booked",
        "Cancelled",
        "CostCenter",
        "Currency",
        "CurrencyRate",
        "CurrencyUnit",
        "CustomerName",
        "CustomerNumber",
        "DocumentNumber",
        "DueDate",
        "ExternalInvoiceReference1",
        "ExternalInvoiceReference2",
        "FinalPayDate",
        "InvoiceDate",
        "InvoiceType",
        "NoxFinans",
        "OCR",
        "Project",
        "Sent",
        "TermsOfPayment",
        "Total",
        "VoucherNumber",
        "VoucherSeries",
        "VoucherYear",
        "WayOfDelivery",
    }
    assert (item["CustomerName"], item["ExternalInvoiceReference1"], item["Total"]) == (
        "Listkund AB",
        "nf-7",
        125,
    )


async def test_sorted_by_document_number_and_sortorder(api: FortnoxApi) -> None:
    customer = await api.customer()
    await api.invoice(customer["CustomerNumber"], DocumentNumber="20")
    await api.invoice(customer["CustomerNumber"], DocumentNumber="3")
    await api.invoice(customer["CustomerNumber"], DocumentNumber="11")
    assert await numbers(api) == ["3", "11", "20"]
    assert await numbers(api, sortorder="descending") == ["20", "11", "3"]


async def test_lastmodified_is_stockholm_local_and_minute_grained(
    api: FortnoxApi, clock: FakeClock
) -> None:
    customer = await api.customer()
    await api.invoice(customer["CustomerNumber"])  # 12:15:30 Stockholm
    clock.advance(minutes=2)
    await api.invoice(customer["CustomerNumber"])  # 12:17:30 Stockholm
    assert await numbers(api, lastmodified="2025-03-10 12:15") == ["1", "2"]
    assert await numbers(api, lastmodified="2025-03-10 12:16") == ["2"]
    assert await numbers(api, lastmodified="2025-03-10 12:17") == ["2"]
    assert await numbers(api, lastmodified="2025-03-10 12:18") == []
    # The same wall-clock digits read as UTC would be an hour later: Fortnox is local time.
    assert await numbers(api, lastmodified="2025-03-10 11:17") == ["1", "2"]
    assert await numbers(api, lastmodified="2025-03-10") == ["1", "2"]


async def test_lastmodified_in_summer_time(api: FortnoxApi, clock: FakeClock) -> None:
    clock.current = datetime(2025, 7, 1, 10, 0, 30, tzinfo=UTC)  # 12:00:30 CEST
    customer = await api.customer()
    await api.invoice(customer["CustomerNumber"])
    assert await numbers(api, lastmodified="2025-07-01 12:00") == ["1"]
    assert await numbers(api, lastmodified="2025-07-01 12:01") == []


async def test_payment_touches_the_invoice_lastmodified(api: FortnoxApi, clock: FakeClock) -> None:
    customer = await api.customer()
    await api.invoice(customer["CustomerNumber"])
    await api.invoice(customer["CustomerNumber"])
    clock.advance(minutes=10)
    assert (await api.payment(2, 50)).status_code == 201
    assert await numbers(api, lastmodified="2025-03-10 12:25") == ["2"]
    listed = (await api.get("/3/invoices", lastmodified="2025-03-10 12:25")).json()["Invoices"][0]
    assert listed["Balance"] == 75


async def test_filters(api: FortnoxApi) -> None:
    customer = await api.customer()
    number = customer["CustomerNumber"]
    await api.invoice(number)  # 1: unbooked
    await api.invoice(number)  # 2: booked, not yet due
    await api.invoice(number, InvoiceDate="2025-01-01", DueDate="2025-01-31")  # 3: overdue
    await api.invoice(number)  # 4: fully paid
    await api.invoice(number)  # 5: cancelled
    for booked in ("2", "3", "4"):
        assert (await api.put(f"/3/invoices/{booked}/bookkeep")).status_code == 200
    assert (await api.payment(4, 125)).status_code == 201
    assert (await api.put("/3/invoices/5/cancel")).status_code == 200

    assert await numbers(api, filter="unbooked") == ["1"]
    assert await numbers(api, filter="unpaid") == ["2", "3"]
    assert await numbers(api, filter="unpaidoverdue") == ["3"]
    assert await numbers(api, filter="fullypaid") == ["4"]
    assert await numbers(api, filter="cancelled") == ["5"]


async def test_filter_combines_with_lastmodified(api: FortnoxApi, clock: FakeClock) -> None:
    customer = await api.customer()
    await api.invoice(customer["CustomerNumber"])
    clock.advance(hours=1)
    await api.invoice(customer["CustomerNumber"])
    assert await numbers(api, filter="unbooked", lastmodified="2025-03-10 13:00") == ["2"]


async def test_external_reference_search_matches_by_containment(api: FortnoxApi) -> None:
    customer = await api.customer()
    for reference in ("nf-1", "nf-10", "other"):
        await api.invoice(customer["CustomerNumber"], ExternalInvoiceReference1=reference)
    # Fortnox searches are ILIKE '%value%': callers must compare exactly themselves.
    assert await numbers(api, externalinvoicereference1="nf-1") == ["1", "2"]
    assert await numbers(api, externalinvoicereference1="NF-10") == ["2"]
    assert await numbers(api, externalinvoicereference1="missing") == []


async def test_customer_and_date_searches(api: FortnoxApi) -> None:
    first = await api.customer(Name="Alfa AB")
    second = await api.customer(Name="Beta AB")
    await api.invoice(first["CustomerNumber"], InvoiceDate="2025-01-15")
    await api.invoice(second["CustomerNumber"], InvoiceDate="2025-02-15")
    assert await numbers(api, customername="beta") == ["2"]
    assert await numbers(api, fromdate="2025-02-01") == ["2"]
    assert await numbers(api, todate="2025-01-31") == ["1"]


async def test_unknown_parameters_are_ignored_like_fortnox(api: FortnoxApi) -> None:
    customer = await api.customer()
    await api.invoice(customer["CustomerNumber"])
    assert await numbers(api, nosuchfilter="x") == ["1"]
