"""Invoices: computed amounts, öre rounding, OCR, defaults, and the bookkeep/cancel/credit rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nordflow_sandboxes.kit.values import luhn_valid, ocr_for_document

if TYPE_CHECKING:
    from conftest import FakeClock, FortnoxApi


def row(quantity: Any, price: Any, vat: int = 25, **extra: Any) -> dict[str, Any]:
    return {
        "Description": "Rad",
        "DeliveredQuantity": quantity,
        "Price": price,
        "VAT": vat,
        **extra,
    }


async def test_totals_vat_per_rate_and_ore_rounding(api: FortnoxApi) -> None:
    customer = await api.customer()
    invoice = await api.invoice(
        customer["CustomerNumber"],
        InvoiceRows=[
            row(3, 333.33, 25),
            row("1", "99.90", 6),
            row(2, 50, 12, Discount=10, DiscountType="PERCENT"),
        ],
    )
    assert [r["Total"] for r in invoice["InvoiceRows"]] == [999.99, 99.9, 90]
    assert invoice["Net"] == 1189.89
    assert invoice["TotalVAT"] == 266.79  # 250.00 + 5.99 + 10.80
    assert invoice["Total"] == 1457
    assert invoice["RoundOff"] == 0.32
    assert invoice["Balance"] == 1457
    assert invoice["TotalToPay"] == 1457
    assert invoice["InvoiceRows"][1]["DeliveredQuantity"] == "1.00"
    assert [r["AccountNumber"] for r in invoice["InvoiceRows"]] == [3001, 3003, 3002]


async def test_rounding_is_half_away_from_zero_to_whole_kronor(api: FortnoxApi) -> None:
    customer = await api.customer()
    up = await api.invoice(customer["CustomerNumber"], InvoiceRows=[row(1, 10)])
    assert (up["Total"], up["RoundOff"]) == (13, 0.5)
    down = await api.invoice(
        customer["CustomerNumber"], InvoiceRows=[row(4, 25, Discount=15, DiscountType="AMOUNT")]
    )
    assert down["InvoiceRows"][0]["Total"] == 85
    assert (down["TotalVAT"], down["Total"], down["RoundOff"]) == (21.25, 106, -0.25)


async def test_foreign_currency_is_not_rounded_to_whole_units(api: FortnoxApi) -> None:
    customer = await api.customer(Currency="EUR")
    invoice = await api.invoice(
        customer["CustomerNumber"], CurrencyRate=11.5, InvoiceRows=[row(1, 10.10)]
    )
    assert invoice["Currency"] == "EUR"
    assert invoice["CurrencyRate"] == 11.5
    assert (invoice["TotalVAT"], invoice["Total"], invoice["RoundOff"]) == (2.53, 12.63, 0)


async def test_vat_included_prices(api: FortnoxApi) -> None:
    customer = await api.customer()
    invoice = await api.invoice(
        customer["CustomerNumber"], VATIncluded=True, InvoiceRows=[row(1, 125)]
    )
    assert (invoice["Net"], invoice["TotalVAT"], invoice["Total"]) == (100, 25, 125)
    assert invoice["InvoiceRows"][0]["PriceExcludingVAT"] == 100


async def test_ocr_has_length_digit_and_luhn_check(api: FortnoxApi) -> None:
    customer = await api.customer()
    first = await api.invoice(customer["CustomerNumber"])
    assert first["DocumentNumber"] == "1"
    assert first["OCR"] == "133"  # Fortnox's published example for invoice 1
    for number in (1, 9, 12, 123, 98765, 10_000_001):
        ocr = ocr_for_document(number)
        assert ocr.startswith(str(number))
        assert luhn_valid(ocr)
        assert int(ocr[-2]) == len(ocr) % 10


async def test_defaults_and_copied_customer_data(api: FortnoxApi) -> None:
    customer = await api.customer(
        Name="Norrsken AB",
        Address1="Hamngatan 2",
        ZipCode="11147",
        City="Stockholm",
        OrganisationNumber="556677-8899",
        EmailInvoice="ap@norrsken.se",
        YourReference="Eva",
    )
    invoice = await api.invoice(customer["CustomerNumber"])
    assert invoice["InvoiceDate"] == "2025-03-10"
    assert invoice["DueDate"] == "2025-04-09"
    assert invoice["TermsOfPayment"] == "30"
    assert invoice["InvoiceType"] == "INVOICE"
    assert invoice["Credit"] == "false"
    assert invoice["CreditInvoiceReference"] == "0"
    assert (invoice["CustomerName"], invoice["Address1"], invoice["City"]) == (
        "Norrsken AB",
        "Hamngatan 2",
        "Stockholm",
    )
    assert invoice["OrganisationNumber"] == "556677-8899"
    assert invoice["YourReference"] == "Eva"
    assert invoice["EmailInformation"]["EmailAddressTo"] == "ap@norrsken.se"
    assert invoice["Booked"] is False
    assert invoice["Cancelled"] is False


async def test_customer_terms_and_explicit_dates(api: FortnoxApi) -> None:
    customer = await api.customer(TermsOfPayment="10")
    by_terms = await api.invoice(customer["CustomerNumber"], InvoiceDate="2025-02-01")
    assert by_terms["DueDate"] == "2025-02-11"
    explicit = await api.invoice(
        customer["CustomerNumber"], InvoiceDate="2025-02-01", DueDate="2025-02-05"
    )
    assert explicit["DueDate"] == "2025-02-05"
    bad = await api.post(
        "/3/invoices",
        {
            "Invoice": {
                "CustomerNumber": customer["CustomerNumber"],
                "InvoiceDate": "2025-02-01",
                "DueDate": "2025-01-01",
            }
        },
    )
    assert bad.status_code == 400


async def test_invoice_date_defaults_to_stockholm_today(api: FortnoxApi, clock: FakeClock) -> None:
    clock.current = datetime(2025, 3, 10, 23, 30, tzinfo=UTC)  # 00:30 on the 11th in Sweden
    customer = await api.customer()
    invoice = await api.invoice(customer["CustomerNumber"])
    assert invoice["InvoiceDate"] == "2025-03-11"


async def test_get_returns_what_post_returned(api: FortnoxApi) -> None:
    customer = await api.customer()
    created = await api.invoice(
        customer["CustomerNumber"], ExternalInvoiceReference1="nf:abc", YourOrderNumber="PO-1"
    )
    fetched = (await api.get(f"/3/invoices/{created['DocumentNumber']}")).json()["Invoice"]
    assert fetched == created
    assert fetched["@url"] == "http://sandbox.test/3/invoices/1"


async def test_explicit_document_number(api: FortnoxApi) -> None:
    customer = await api.customer()
    chosen = await api.invoice(customer["CustomerNumber"], DocumentNumber="500")
    assert chosen["DocumentNumber"] == "500"
    assert (await api.invoice(customer["CustomerNumber"]))["DocumentNumber"] == "501"
    taken = await api.post(
        "/3/invoices",
        {"Invoice": {"CustomerNumber": customer["CustomerNumber"], "DocumentNumber": 500}},
    )
    assert taken.status_code == 400


async def test_update_unbooked_invoice_replaces_rows(api: FortnoxApi) -> None:
    customer = await api.customer()
    invoice = await api.invoice(customer["CustomerNumber"])
    response = await api.put(
        f"/3/invoices/{invoice['DocumentNumber']}",
        {"Invoice": {"YourReference": "Kalle", "InvoiceRows": [row(2, 200), row(1, 100)]}},
    )
    assert response.status_code == 200
    updated = response.json()["Invoice"]
    assert updated["YourReference"] == "Kalle"
    assert len(updated["InvoiceRows"]) == 2
    assert (updated["Net"], updated["Total"], updated["Balance"]) == (500, 625, 625)


async def test_booked_invoice_cannot_be_updated_or_cancelled(api: FortnoxApi) -> None:
    customer = await api.customer()
    number = (await api.invoice(customer["CustomerNumber"]))["DocumentNumber"]
    booked = await api.put(f"/3/invoices/{number}/bookkeep")
    assert booked.status_code == 200
    body = booked.json()["Invoice"]
    assert (body["Booked"], body["VoucherSeries"], body["VoucherNumber"]) == (True, "B", 1)
    assert (await api.put(f"/3/invoices/{number}/bookkeep")).status_code == 400
    assert (
        await api.put(f"/3/invoices/{number}", {"Invoice": {"Remarks": "x"}})
    ).status_code == 400
    cancel = await api.put(f"/3/invoices/{number}/cancel")
    assert cancel.status_code == 400
    assert "booked" in cancel.json()["ErrorInformation"]["message"]


async def test_cancel_unbooked_invoice(api: FortnoxApi) -> None:
    customer = await api.customer()
    number = (await api.invoice(customer["CustomerNumber"]))["DocumentNumber"]
    cancelled = (await api.put(f"/3/invoices/{number}/cancel")).json()["Invoice"]
    assert (cancelled["Cancelled"], cancelled["Balance"], cancelled["Total"]) == (True, 0, 125)
    assert (await api.put(f"/3/invoices/{number}/cancel")).status_code == 400
    assert (await api.put(f"/3/invoices/{number}/bookkeep")).status_code == 400
    assert (
        await api.put(f"/3/invoices/{number}", {"Invoice": {"Remarks": "x"}})
    ).status_code == 400
    assert (await api.payment(number, 125)).status_code == 400


async def test_invoice_with_payment_cannot_be_cancelled(api: FortnoxApi) -> None:
    customer = await api.customer()
    number = (await api.invoice(customer["CustomerNumber"]))["DocumentNumber"]
    assert (await api.payment(number, 25)).status_code == 201
    assert (await api.put(f"/3/invoices/{number}/cancel")).status_code == 400


async def test_credit_creates_negative_invoice_linked_both_ways(api: FortnoxApi) -> None:
    customer = await api.customer()
    original = await api.invoice(
        customer["CustomerNumber"], InvoiceRows=[row(2, 100), row(1, 10, 6)]
    )
    number = original["DocumentNumber"]
    await api.put(f"/3/invoices/{number}/bookkeep")
    response = await api.put(f"/3/invoices/{number}/credit")
    assert response.status_code == 200
    credited = response.json()["Invoice"]
    assert credited["DocumentNumber"] == number
    credit_number = credited["CreditInvoiceReference"]
    assert credit_number == "2"
    credit = (await api.get(f"/3/invoices/{credit_number}")).json()["Invoice"]
    assert credit["Credit"] == "true"
    assert credit["CreditInvoiceReference"] == number
    assert [r["DeliveredQuantity"] for r in credit["InvoiceRows"]] == ["-2.00", "-1.00"]
    assert credit["Total"] == -original["Total"]
    assert credit["Balance"] == -original["Total"]
    assert credit["Booked"] is False
    assert (await api.put(f"/3/invoices/{number}/credit")).status_code == 400
    assert (await api.put(f"/3/invoices/{credit_number}/credit")).status_code == 400


async def test_credit_invoice_takes_a_refund_not_a_payment(api: FortnoxApi) -> None:
    customer = await api.customer()
    number = (await api.invoice(customer["CustomerNumber"]))["DocumentNumber"]
    await api.put(f"/3/invoices/{number}/bookkeep")
    credit_number = (await api.put(f"/3/invoices/{number}/credit")).json()["Invoice"][
        "CreditInvoiceReference"
    ]
    assert (await api.payment(credit_number, 125)).status_code == 400
    refund = await api.payment(credit_number, -125)
    assert refund.status_code == 201
    closed = (await api.get(f"/3/invoices/{credit_number}")).json()["Invoice"]
    assert (closed["Balance"], closed["FinalPayDate"]) == (0, "2025-03-10")


async def test_cancelled_invoice_cannot_be_credited(api: FortnoxApi) -> None:
    customer = await api.customer()
    number = (await api.invoice(customer["CustomerNumber"]))["DocumentNumber"]
    await api.put(f"/3/invoices/{number}/cancel")
    response = await api.put(f"/3/invoices/{number}/credit")
    assert response.status_code == 400
    assert "cancelled" in response.json()["ErrorInformation"]["message"]


async def test_post_credit_invoice_with_reference(api: FortnoxApi) -> None:
    customer = await api.customer()
    number = (await api.invoice(customer["CustomerNumber"]))["DocumentNumber"]
    credit = await api.invoice(
        customer["CustomerNumber"], CreditInvoiceReference=number, InvoiceRows=[row(-1, 100)]
    )
    assert (credit["Credit"], credit["CreditInvoiceReference"], credit["Total"]) == (
        "true",
        number,
        -125,
    )
    original = (await api.get(f"/3/invoices/{number}")).json()["Invoice"]
    assert original["CreditInvoiceReference"] == credit["DocumentNumber"]


async def test_externalprint_marks_sent(api: FortnoxApi) -> None:
    customer = await api.customer()
    number = (await api.invoice(customer["CustomerNumber"]))["DocumentNumber"]
    printed = (await api.put(f"/3/invoices/{number}/externalprint")).json()["Invoice"]
    assert printed["Sent"] is True
    assert (await api.put(f"/3/invoices/{number}/teleport")).status_code == 404


async def test_refused_update_leaves_invoice_unchanged(api: FortnoxApi) -> None:
    customer = await api.customer()
    invoice = await api.invoice(customer["CustomerNumber"])
    number = invoice["DocumentNumber"]
    refused = await api.put(
        f"/3/invoices/{number}",
        {"Invoice": {"YourReference": "Changed", "InvoiceRows": [row(1, 1, 7)]}},
    )
    assert refused.status_code == 400
    assert (await api.get(f"/3/invoices/{number}")).json()["Invoice"] == invoice


async def test_update_cannot_drop_total_below_payments(api: FortnoxApi) -> None:
    customer = await api.customer()
    number = (await api.invoice(customer["CustomerNumber"]))["DocumentNumber"]
    assert (await api.payment(number, 100)).status_code == 201
    refused = await api.put(f"/3/invoices/{number}", {"Invoice": {"InvoiceRows": [row(1, 10)]}})
    assert refused.status_code == 400
    assert (await api.get(f"/3/invoices/{number}")).json()["Invoice"]["Balance"] == 25
