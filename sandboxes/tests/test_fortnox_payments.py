"""Invoice payments: balance, sign and size rules, write-offs, bookkeeping and deletion."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from nordflow_sandboxes.fortnox import FortnoxState, create_app

if TYPE_CHECKING:
    from conftest import FakeClock, FortnoxApi


async def booked_invoice(api: FortnoxApi, **fields: object) -> str:
    customer = await api.customer()
    number = str((await api.invoice(customer["CustomerNumber"], **fields))["DocumentNumber"])
    assert (await api.put(f"/3/invoices/{number}/bookkeep")).status_code == 200
    return number


async def balance_of(api: FortnoxApi, number: str) -> object:
    return (await api.get(f"/3/invoices/{number}")).json()["Invoice"]["Balance"]


async def test_payments_reduce_balance_and_set_final_pay_date(api: FortnoxApi) -> None:
    number = await booked_invoice(api)
    first = await api.payment(
        number, 100, PaymentDate="2025-03-10", ModeOfPayment="BG", ModeOfPaymentAccount=1930
    )
    assert first.status_code == 201
    payment = first.json()["InvoicePayment"]
    assert (
        payment["Number"],
        payment["InvoiceNumber"],
        payment["Amount"],
        payment["AmountCurrency"],
    ) == (
        "1",
        int(number),
        100,
        100,
    )
    assert (payment["Currency"], payment["InvoiceTotal"], payment["ModeOfPaymentAccount"]) == (
        "SEK",
        "125",
        1930,
    )
    assert payment["Booked"] is False
    assert await balance_of(api, number) == 25
    invoice = (await api.get(f"/3/invoices/{number}")).json()["Invoice"]
    assert invoice["FinalPayDate"] is None
    assert (await api.payment(number, "25.00", PaymentDate="2025-03-12")).status_code == 201
    invoice = (await api.get(f"/3/invoices/{number}")).json()["Invoice"]
    assert (invoice["Balance"], invoice["FinalPayDate"]) == (0, "2025-03-12")


async def test_overpayment_is_rejected(api: FortnoxApi) -> None:
    number = await booked_invoice(api)
    response = await api.payment(number, 125.01)
    assert response.status_code == 400
    assert "exceeds the open balance" in response.json()["ErrorInformation"]["message"]
    assert await balance_of(api, number) == 125
    assert (await api.payment(number, 125)).status_code == 201
    again = await api.payment(number, 1)
    assert again.status_code == 400
    assert "fully paid" in again.json()["ErrorInformation"]["message"]


async def test_wrong_sign_zero_and_missing_invoice_are_rejected(api: FortnoxApi) -> None:
    number = await booked_invoice(api)
    assert (await api.payment(number, -10)).status_code == 400
    assert (await api.payment(number, 0)).status_code == 400
    missing = await api.payment(999, 10)
    assert missing.status_code == 400
    assert "999" in missing.json()["ErrorInformation"]["message"]
    no_amount = await api.post(
        "/3/invoicepayments", {"InvoicePayment": {"InvoiceNumber": int(number)}}
    )
    assert no_amount.status_code == 400


async def test_payment_date_cannot_precede_invoice_date(api: FortnoxApi) -> None:
    number = await booked_invoice(api, InvoiceDate="2025-03-01")
    response = await api.payment(number, 10, PaymentDate="2025-02-28")
    assert response.status_code == 400
    assert "PaymentDate" in response.json()["ErrorInformation"]["message"]


async def test_write_offs_settle_the_rest(api: FortnoxApi) -> None:
    number = await booked_invoice(api)
    response = await api.payment(
        number,
        120,
        WriteOffs=[{"Amount": 5, "AccountNumber": 6064, "Description": "Factoring fee"}],
    )
    assert response.status_code == 201
    assert response.json()["InvoicePayment"]["WriteOffs"][0]["AccountNumber"] == 6064
    assert await balance_of(api, number) == 0
    listed = (await api.get("/3/invoicepayments")).json()["InvoicePayments"][0]
    assert listed["WriteOffExist"] is True


async def test_delete_restores_balance_and_booked_payments_stay(api: FortnoxApi) -> None:
    number = await booked_invoice(api)
    payment_number = (await api.payment(number, 125)).json()["InvoicePayment"]["Number"]
    deleted = await api.delete(f"/3/invoicepayments/{payment_number}")
    assert deleted.status_code == 204
    invoice = (await api.get(f"/3/invoices/{number}")).json()["Invoice"]
    assert (invoice["Balance"], invoice["FinalPayDate"]) == (125, None)
    assert (await api.get(f"/3/invoicepayments/{payment_number}")).status_code == 404

    second = (await api.payment(number, 50)).json()["InvoicePayment"]["Number"]
    booked = await api.put(f"/3/invoicepayments/{second}/bookkeep")
    assert booked.status_code == 200
    assert (
        booked.json()["InvoicePayment"]["Booked"],
        booked.json()["InvoicePayment"]["VoucherSeries"],
    ) == (True, "C")
    assert (await api.put(f"/3/invoicepayments/{second}/bookkeep")).status_code == 400
    assert (await api.delete(f"/3/invoicepayments/{second}")).status_code == 400
    assert await balance_of(api, number) == 75


async def test_payment_on_unbooked_invoice_cannot_be_booked(api: FortnoxApi) -> None:
    customer = await api.customer()
    number = (await api.invoice(customer["CustomerNumber"]))["DocumentNumber"]
    payment_number = (await api.payment(number, 125)).json()["InvoicePayment"]["Number"]
    response = await api.put(f"/3/invoicepayments/{payment_number}/bookkeep")
    assert response.status_code == 400
    assert "must be booked" in response.json()["ErrorInformation"]["message"]


async def test_update_unbooked_payment(api: FortnoxApi) -> None:
    number = await booked_invoice(api)
    payment_number = (await api.payment(number, 25)).json()["InvoicePayment"]["Number"]
    updated = await api.put(
        f"/3/invoicepayments/{payment_number}", {"InvoicePayment": {"Amount": 100}}
    )
    assert updated.status_code == 200
    assert await balance_of(api, number) == 25
    too_much = await api.put(
        f"/3/invoicepayments/{payment_number}", {"InvoicePayment": {"Amount": 200}}
    )
    assert too_much.status_code == 400
    assert await balance_of(api, number) == 25


async def test_payment_list_filter_and_paging(api: FortnoxApi) -> None:
    first = await booked_invoice(api)
    second = await booked_invoice(api)
    await api.payment(first, 10)
    await api.payment(second, 20)
    await api.payment(first, 30)
    listing = (await api.get("/3/invoicepayments", invoicenumber=first)).json()
    assert [p["Amount"] for p in listing["InvoicePayments"]] == [10, 30]
    assert listing["MetaInformation"]["@TotalResources"] == 2
    paged = (await api.get("/3/invoicepayments", limit="2", page="2")).json()
    assert paged["MetaInformation"] == {"@CurrentPage": 2, "@TotalPages": 2, "@TotalResources": 3}


async def test_foreign_currency_payment(api: FortnoxApi) -> None:
    customer = await api.customer(Currency="EUR")
    number = (
        await api.invoice(
            customer["CustomerNumber"],
            CurrencyRate=11,
            InvoiceRows=[{"DeliveredQuantity": 1, "Price": 80}],
        )
    )["DocumentNumber"]
    response = await api.post(
        "/3/invoicepayments",
        {"InvoicePayment": {"InvoiceNumber": int(number), "AmountCurrency": 100}},
    )
    assert response.status_code == 201
    body = response.json()["InvoicePayment"]
    assert (body["Currency"], body["AmountCurrency"], body["Amount"]) == ("EUR", 100, 1100)
    assert await balance_of(api, number) == 0


async def test_strict_mode_requires_booked_invoice(clock: FakeClock) -> None:
    state = FortnoxState(clock=clock, payments_require_booked_invoice=True)
    _company, token = state.create_company("Strict AB")
    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox.test", headers=headers
    ) as http:
        await http.post("/3/customers", json={"Customer": {"Name": "K"}})
        await http.post(
            "/3/invoices",
            json={
                "Invoice": {
                    "CustomerNumber": "1",
                    "InvoiceRows": [{"DeliveredQuantity": 1, "Price": 8}],
                }
            },
        )
        rejected = await http.post(
            "/3/invoicepayments", json={"InvoicePayment": {"InvoiceNumber": 1, "Amount": 10}}
        )
        assert rejected.status_code == 400
        await http.put("/3/invoices/1/bookkeep")
        accepted = await http.post(
            "/3/invoicepayments", json={"InvoicePayment": {"InvoiceNumber": 1, "Amount": 10}}
        )
        assert accepted.status_code == 201
