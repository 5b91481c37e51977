"""The Visma sandboxes' credit notes (linked to their original) and foreign-currency amounts."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from nordflow_sandboxes.visma_eaccounting.testing import (
    RunningVismaEAccountingSandbox,
    running_visma_eaccounting_sandbox,
)
from nordflow_sandboxes.visma_net import VismaNetState
from nordflow_sandboxes.visma_net.testing import (
    LineSpec,
    RunningVismaNetSandbox,
    SandboxCompany,
    VismaNetSandboxAdmin,
    credit_note_body,
    running_visma_net_sandbox,
)

# ------------------------------------------------------------------------ eAccounting


@pytest.fixture(scope="module")
def ea() -> Iterator[RunningVismaEAccountingSandbox]:
    with running_visma_eaccounting_sandbox() as running:
        yield running


def test_eaccounting_credit_action_credits_the_invoice_in_full(
    ea: RunningVismaEAccountingSandbox,
) -> None:
    company = ea.create_company()
    customer = ea.seed_customer(company.company_id)
    invoice = ea.seed_invoice(company.company_id, customer["Id"])

    with ea.admin() as admin:
        credit = admin.credit_invoice(company.company_id, invoice["Id"])

    assert credit["IsCreditInvoice"] is True
    assert credit["ReferringInvoiceId"] == invoice["Id"]
    assert credit["InvoiceNumber"] == invoice["InvoiceNumber"] + 1
    assert credit["TotalAmountInvoiceCurrency"] == -invoice["TotalAmountInvoiceCurrency"]
    assert [r["Quantity"] for r in credit["Rows"]] == [-r["Quantity"] for r in invoice["Rows"]]
    assert invoice["ReferringInvoiceId"] is None


def test_eaccounting_credit_action_keeps_currency_and_rate(
    ea: RunningVismaEAccountingSandbox,
) -> None:
    company = ea.create_company()
    customer = ea.seed_customer(company.company_id, CurrencyCode="EUR")
    invoice = ea.seed_invoice(company.company_id, customer["Id"], CurrencyRate=Decimal("11.5"))

    credit = ea.seed_credit_invoice(company.company_id, invoice["Id"])

    assert (credit["CurrencyCode"], credit["CurrencyRate"]) == ("EUR", 11.5)
    assert (credit["TotalVatAmountInvoiceCurrency"], credit["TotalVatAmount"]) == (-25, -287.5)


def test_eaccounting_refuses_to_credit_a_credit_invoice_or_an_unknown_one(
    ea: RunningVismaEAccountingSandbox,
) -> None:
    company = ea.create_company()
    customer = ea.seed_customer(company.company_id)
    invoice = ea.seed_invoice(company.company_id, customer["Id"])
    credit = ea.seed_credit_invoice(company.company_id, invoice["Id"])
    base = f"{ea.base_url}/sandbox/companies/{company.company_id}/customerinvoices"

    again = httpx.post(f"{base}/{credit['Id']}/credit", json={})
    unknown = httpx.post(f"{base}/00000000-0000-4000-8000-000000000000/credit", json={})

    assert again.status_code == 400
    assert "cannot be credited" in again.text
    assert unknown.status_code == 404


# -------------------------------------------------------------------------- Visma.net


@pytest.fixture(scope="module")
def vn() -> Iterator[RunningVismaNetSandbox]:
    with running_visma_net_sandbox(VismaNetState(rate_limit=100_000)) as running:
        yield running


@pytest.fixture
def vn_admin(vn: RunningVismaNetSandbox) -> Iterator[VismaNetSandboxAdmin]:
    with vn.admin() as admin:
        yield admin


def get(vn: RunningVismaNetSandbox, company: SandboxCompany, path: str) -> httpx.Response:
    return httpx.get(f"{vn.api_url}/{path}", headers=company.headers)


def test_visma_net_credit_note_applies_to_its_invoice_on_release(
    vn: RunningVismaNetSandbox, vn_admin: VismaNetSandboxAdmin
) -> None:
    company = vn.create_company()
    customer = vn_admin.seed_customer(company)
    invoice = vn_admin.seed_invoice(company, customer, documentDate="2025-03-01")
    note = vn_admin.seed_credit_note(
        company, customer, [(invoice, Decimal(100))], release=False, origInvoiceDate="2025-03-01"
    )

    held = get(vn, company, f"customerinvoice/{invoice}").json()
    assert (held["balance"], held["status"]) == (125, "Open")

    httpx.post(
        f"{vn.api_url}/customerCreditNote/{note}/action/release", json={}, headers=company.headers
    ).raise_for_status()

    credited = get(vn, company, f"customerinvoice/{invoice}").json()
    document = get(vn, company, f"customerCreditNote/{note}").json()
    assert (credited["balance"], credited["status"]) == (25, "Open")
    assert document["documentType"] == "CreditNote"
    assert document["origInvoiceDate"].startswith("2025-03-01")
    assert [(a["docType"], a["refNbr"], a["amountPaid"]) for a in document["applications"]] == [
        ("Invoice", invoice, 100)
    ]
    assert (document["balance"], document["status"]) == (25, "Open")
    assert "lines" in document
    assert "invoiceLines" not in document


def test_visma_net_lists_credit_notes_by_document_type(
    vn: RunningVismaNetSandbox, vn_admin: VismaNetSandboxAdmin
) -> None:
    company = vn.create_company()
    customer = vn_admin.seed_customer(company)
    invoice = vn_admin.seed_invoice(company, customer)
    note = vn_admin.seed_credit_note(company, customer, [(invoice, Decimal(125))])

    notes = get(vn, company, "customerinvoice?documentType=CreditNote").json()
    invoices = get(vn, company, "customerinvoice?documentType=Invoice").json()

    assert [n["referenceNumber"] for n in notes] == [note]
    assert [i["referenceNumber"] for i in invoices] == [invoice]
    assert get(vn, company, f"customerCreditNote/{invoice}").status_code == 404


@pytest.mark.parametrize(
    ("credited", "message"),
    [
        ([("999999", Decimal(10))], "does not exist"),
        ([("INVOICE", Decimal(200))], "more than the credit note's amount"),
    ],
)
def test_visma_net_refuses_credit_notes_it_cannot_apply(
    vn: RunningVismaNetSandbox,
    vn_admin: VismaNetSandboxAdmin,
    credited: list[tuple[str, Decimal]],
    message: str,
) -> None:
    company = vn.create_company()
    customer = vn_admin.seed_customer(company)
    invoice = vn_admin.seed_invoice(company, customer)
    lines = [(invoice if ref == "INVOICE" else ref, amount) for ref, amount in credited]

    response = httpx.post(
        f"{vn.api_url}/customerCreditNote",
        json=credit_note_body(customer, lines),
        headers=company.headers,
    )

    assert response.status_code == 400
    assert message in response.text
    assert get(vn, company, "customerinvoice?documentType=CreditNote").json() == []


def test_visma_net_refuses_crediting_another_customers_invoice(
    vn: RunningVismaNetSandbox, vn_admin: VismaNetSandboxAdmin
) -> None:
    company = vn.create_company()
    owner = vn_admin.seed_customer(company)
    other = vn_admin.seed_customer(company)
    invoice = vn_admin.seed_invoice(company, owner)

    response = httpx.post(
        f"{vn.api_url}/customerCreditNote",
        json=credit_note_body(other, [(invoice, Decimal(10))]),
        headers=company.headers,
    )

    assert response.status_code == 400
    assert f"belongs to customer {owner}" in response.text


def test_visma_net_base_amounts_follow_the_exchange_rate(
    vn: RunningVismaNetSandbox, vn_admin: VismaNetSandboxAdmin
) -> None:
    company = vn.create_company()
    customer = vn_admin.seed_customer(company)
    number = vn_admin.seed_invoice(
        company,
        customer,
        (LineSpec(quantity=Decimal(3), unit_price=Decimal("33.33")),),
        currencyId="EUR",
        exchangeRate=Decimal("11.4563"),
    )

    document = get(vn, company, f"customerinvoice/{number}").json()

    assert document["exchangeRate"] == 11.4563
    assert (document["detailTotalInCurrency"], document["detailTotal"]) == (99.99, 1145.52)
    assert (document["vatTotalInCurrency"], document["vatTotal"]) == (25, 286.41)
    assert document["invoiceLines"][0]["amount"] == 1145.52


def test_visma_net_refuses_a_rate_that_is_not_positive(
    vn: RunningVismaNetSandbox, vn_admin: VismaNetSandboxAdmin
) -> None:
    company = vn.create_company()
    customer = vn_admin.seed_customer(company)
    with pytest.raises(AssertionError, match="exchangeRate"):
        vn_admin.seed_invoice(company, customer, exchangeRate=Decimal(0))


def test_visma_net_refund_pays_out_an_open_credit_note_on_release(
    vn: RunningVismaNetSandbox, vn_admin: VismaNetSandboxAdmin
) -> None:
    company = vn.create_company()
    customer = vn_admin.seed_customer(company)
    invoice = vn_admin.seed_invoice(company, customer, documentDate="2025-03-01")
    note = vn_admin.seed_credit_note(company, customer, [(invoice, Decimal(100))])

    def refund(document_type: str) -> httpx.Response:
        line = {
            "operation": "Insert",
            "documentType": {"value": document_type},
            "refNbr": {"value": note},
            "amountPaid": {"value": 25},
        }
        body = {
            "type": {"value": "Refund"},
            "customer": {"value": customer},
            "paymentRef": {"value": "NF-REFUND"},
            "cashAccount": {"value": "1510"},
            "paymentLines": [line],
        }
        return httpx.post(f"{vn.api_url}/customerPayment", json=body, headers=company.headers)

    assert refund("Invoice").status_code == 400  # a refund pays out credit notes only
    created = refund("CreditNote")
    assert created.status_code == 201, created.text
    ref = created.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    httpx.post(
        f"{vn.api_url}/customerPayment/{ref}/action/release",
        json={"type": {"value": "Refund"}},
        headers=company.headers,
    ).raise_for_status()
    document = get(vn, company, f"customerCreditNote/{note}").json()
    assert (document["balance"], document["status"]) == (0, "Closed")
    payment = get(vn, company, f"customerPayment/{ref}").json()
    assert (payment["type"], payment["status"]) == ("Refund", "Closed")
