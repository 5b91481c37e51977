"""Articles, projects, orders (and the invoice an order becomes) and vouchers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import FortnoxApi


async def test_articles_and_projects_are_created_read_and_updated(api: FortnoxApi) -> None:
    created = await api.post(
        "/3/articles", {"Article": {"ArticleNumber": "SKAP", "Description": "Skåp", "VAT": 25}}
    )
    assert created.status_code == 201, created.text
    assert created.json()["Article"]["ArticleNumber"] == "SKAP"
    again = await api.post(
        "/3/articles", {"Article": {"ArticleNumber": "SKAP", "Description": "x"}}
    )
    assert again.status_code == 400
    assert (await api.get("/3/articles/NOPE")).status_code == 404
    listed = (await api.get("/3/articles", articlenumber="SKA")).json()
    assert [a["ArticleNumber"] for a in listed["Articles"]] == ["SKAP"]

    project = await api.post(
        "/3/projects", {"Project": {"ProjectNumber": "P-17", "Description": "Kök Andersson"}}
    )
    assert project.status_code == 201, project.text
    assert project.json()["Project"]["Status"] == "NOTSTARTED"
    ongoing = await api.put("/3/projects/P-17", {"Project": {"Status": "ONGOING"}})
    assert ongoing.json()["Project"]["Status"] == "ONGOING"
    nameless = await api.post("/3/projects", {"Project": {"ProjectNumber": "P-18"}})
    assert nameless.status_code == 400
    assert "Description" in nameless.json()["ErrorInformation"]["message"]


async def test_an_order_names_customer_and_project_and_becomes_one_invoice(
    api: FortnoxApi,
) -> None:
    customer = await api.customer()
    await api.post("/3/articles", {"Article": {"ArticleNumber": "KOK", "Description": "Kök"}})
    await api.post("/3/projects", {"Project": {"ProjectNumber": "P-1", "Description": "Kök"}})
    body = {
        "CustomerNumber": customer["CustomerNumber"],
        "Project": "P-1",
        "ExternalInvoiceReference1": "nf-order-1",
        "OrderRows": [
            {
                "ArticleNumber": "KOK",
                "Description": "Enligt offert Q1",
                "OrderedQuantity": 1,
                "Price": 8000,
                "VAT": 25,
            }
        ],
    }
    created = await api.post("/3/orders", {"Order": body})
    assert created.status_code == 201, created.text
    order = created.json()["Order"]
    assert (order["Total"], order["InvoiceReference"], order["Project"]) == (10000, "0", "P-1")
    found = (await api.get("/3/orders", externalinvoicereference1="nf-order-1")).json()
    assert [o["DocumentNumber"] for o in found["Orders"]] == [order["DocumentNumber"]]

    missing = await api.post("/3/orders", {"Order": {**body, "Project": "P-404"}})
    assert missing.status_code == 400

    invoiced = await api.put(f"/3/orders/{order['DocumentNumber']}/createinvoice")
    assert invoiced.status_code == 200, invoiced.text
    invoice = invoiced.json()["Invoice"]
    assert (invoice["Total"], invoice["Project"]) == (10000, "P-1")
    assert invoice["ExternalInvoiceReference1"] == "nf-order-1"
    reread = (await api.get(f"/3/orders/{order['DocumentNumber']}")).json()["Order"]
    assert reread["InvoiceReference"] == invoice["DocumentNumber"]
    twice = await api.put(f"/3/orders/{order['DocumentNumber']}/createinvoice")
    assert twice.status_code == 400


async def test_a_voucher_must_balance_and_is_numbered_in_its_series(api: FortnoxApi) -> None:
    rows = [{"Account": 1930, "Debit": 800}, {"Account": 2840, "Credit": 800}]
    body = {
        "VoucherSeries": "A",
        "TransactionDate": "2025-03-10",
        "Description": "Förskott",
        "ReferenceNumber": "nf-advance-1",
        "VoucherRows": rows,
    }
    created = await api.post("/3/vouchers", {"Voucher": body})
    assert created.status_code == 201, created.text
    voucher = created.json()["Voucher"]
    assert (voucher["VoucherSeries"], voucher["VoucherNumber"]) == ("A", 1)
    listed = (await api.get("/3/vouchers/sublist/A")).json()["Vouchers"]
    assert [v["ReferenceNumber"] for v in listed] == ["nf-advance-1"]
    unbalanced = await api.post(
        "/3/vouchers",
        {
            "Voucher": {
                **body,
                "VoucherRows": [{"Account": 1930, "Debit": 800}, {"Account": 2840, "Credit": 700}],
            }
        },
    )
    assert unbalanced.status_code == 400
