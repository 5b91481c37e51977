"""Credit notes and foreign-currency invoices exactly as the Visma sandboxes serialise them.

The documents are built in the sandboxes' own state (no HTTP) and mapped and validated as the
service does, so a change in either the sandbox shapes or the mappers shows here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from mapper.domain.validation import validate_invoice
from mapper.sources.visma_eaccounting import map_visma_eaccounting
from mapper.sources.visma_net import map_visma_net
from mapper.testing import NORWEGIAN_SELLER, SWEDISH_SELLER, fetched
from nordflow_sandboxes.visma_eaccounting import VismaEAccountingState
from nordflow_sandboxes.visma_eaccounting import serialize as ea_out
from nordflow_sandboxes.visma_eaccounting import service as ea
from nordflow_sandboxes.visma_net import VismaNetState
from nordflow_sandboxes.visma_net import serialize as vn_out
from nordflow_sandboxes.visma_net import service as vn
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import DocumentKind, ErpDocumentFetched
from nordflow_schemas.invoice import DocumentType, Invoice

NOW = dt.datetime(2025, 3, 10, 9, tzinfo=dt.UTC)


def event(
    system: SourceSystem,
    payload: dict[str, Any],
    related: dict[str, Any],
    credit: bool,
) -> ErpDocumentFetched:
    return fetched(
        system,
        payload,
        kind=DocumentKind.CREDIT_NOTE if credit else DocumentKind.INVOICE,
        profile=NORWEGIAN_SELLER if system is SourceSystem.VISMA_NET else SWEDISH_SELLER,
        related=related,
        document_id=str(payload.get("Id") or payload.get("referenceNumber")),
    )


def valid(result: Invoice | list[Any]) -> Invoice:
    assert isinstance(result, Invoice), result
    issues = validate_invoice(result)
    assert issues == [], issues
    return result


# ------------------------------------------------------------------------ eAccounting


class EAccounting:
    """One sandbox company with a Swedish customer; documents as `GET customerinvoices/{id}`."""

    def __init__(self, customer_currency: str = "SEK") -> None:
        self.state = VismaEAccountingState(clock=lambda: NOW)
        self.company, _client, _refresh = self.state.create_company("Demo AB")
        article = next(a for a in self.company.articles.values() if a.vat_rate == Decimal("0.25"))
        self.article = article.id
        self.customer = ea.create_customer(
            self.company,
            {
                "Name": "Kund AB",
                "InvoiceCity": "Uppsala",
                "InvoicePostalCode": "75320",
                "InvoiceAddress1": "Kundvägen 2",
                "CorporateIdentityNumber": "556677-8899",
                "EmailAddress": "faktura@kund.se",
                "CurrencyCode": customer_currency,
            },
            NOW,
        )

    def invoice(self, **fields: Any) -> dict[str, Any]:
        body = {
            "CustomerId": self.customer.id,
            "Rows": [{"ArticleId": self.article, "Quantity": 2, "UnitPrice": 100}],
            **fields,
        }
        record = ea.create_invoice(self.company, body, NOW, NOW.date())
        return ea_out.invoice(record, self.company, NOW.date())

    def credit(self, invoice_id: str) -> dict[str, Any]:
        record = ea.credit_invoice(self.company, invoice_id, NOW, NOW.date())
        return ea_out.invoice(record, self.company, NOW.date())

    def related(self, **more: Any) -> dict[str, Any]:
        customer = ea_out.customer(self.customer, self.company)
        return {"customer": customer, **more}


def test_an_eaccounting_credit_invoice_with_its_original_maps_to_a_valid_credit_note() -> None:
    sandbox = EAccounting()
    original = sandbox.invoice()
    credit = sandbox.credit(original["Id"])

    result = valid(
        map_visma_eaccounting(
            event(
                SourceSystem.VISMA_EACCOUNTING,
                credit,
                sandbox.related(credited_invoice=original),
                credit=True,
            )
        )
    )

    assert result.document_type is DocumentType.CREDIT_NOTE
    assert result.preceding_invoice is not None
    assert result.preceding_invoice.number == str(original["InvoiceNumber"])
    assert result.preceding_invoice.issue_date == NOW.date()
    assert result.totals.payable == Decimal(250)


def test_an_eaccounting_eur_invoice_maps_with_its_vat_in_sek() -> None:
    sandbox = EAccounting(customer_currency="EUR")
    document = sandbox.invoice(CurrencyRate=Decimal("11.4563"))

    result = valid(
        map_visma_eaccounting(
            event(SourceSystem.VISMA_EACCOUNTING, document, sandbox.related(), credit=False)
        )
    )

    assert (result.currency, result.totals.tax_total) == ("EUR", Decimal(50))
    assert (result.vat_accounting_currency, result.exchange_rate) == ("SEK", Decimal("11.4563"))
    assert result.vat_total_accounting_currency == Decimal("572.82")  # 50 x 11.4563


def test_an_eaccounting_eur_credit_invoice_maps_to_a_valid_credit_note() -> None:
    sandbox = EAccounting(customer_currency="EUR")
    original = sandbox.invoice(CurrencyRate=Decimal("11.4563"))
    credit = sandbox.credit(original["Id"])

    result = valid(
        map_visma_eaccounting(
            event(
                SourceSystem.VISMA_EACCOUNTING,
                credit,
                sandbox.related(credited_invoice=original),
                credit=True,
            )
        )
    )

    assert result.vat_total_accounting_currency == Decimal("572.82")
    assert result.preceding_invoice is not None


# -------------------------------------------------------------------------- Visma.net


class VismaNet:
    """One sandbox company with a Norwegian customer; documents as `GET customerinvoice/{n}`."""

    def __init__(self) -> None:
        self.state = VismaNetState(clock=lambda: NOW)
        self.company, _token = self.state.create_company("Demo AS")
        self.customer = vn.create_customer(
            self.company,
            {
                "name": {"value": "Kunde AS"},
                "corporateId": {"value": "923609016"},
                "mainAddress": {
                    "value": {
                        "addressLine1": {"value": "Kundeveien 2"},
                        "postalCode": {"value": "5003"},
                        "city": {"value": "Bergen"},
                        "countryId": {"value": "NO"},
                    }
                },
            },
            self.state,
        )
        self.card = vn_out.customer(self.customer, self.state.api_timezone)

    def _line(self) -> dict[str, Any]:
        return {
            "operation": "Insert",
            "description": {"value": "Konsulent"},
            "quantity": {"value": 2},
            "unitPriceInCurrency": {"value": 500},
            "vatCodeId": {"value": "3"},
        }

    def invoice(self, **fields: Any) -> str:
        body = {
            "customerNumber": {"value": self.customer.number},
            "documentDate": {"value": "2025-03-01"},
            "invoiceLines": [self._line()],
            **{name: {"value": value} for name, value in fields.items()},
        }
        number = vn.create_invoice(self.company, body, self.state).reference_number
        vn.release_invoice(self.company, number, None, self.state)
        return number

    def credit_note(self, credited: str, amount: Decimal, **fields: Any) -> str:
        body = {
            "customerNumber": {"value": self.customer.number},
            "documentDate": {"value": "2025-03-05"},
            "lines": [self._line()],
            "applicationLines": [
                {
                    "operation": "Insert",
                    "documentType": {"value": "Invoice"},
                    "refNbr": {"value": credited},
                    "amountPaid": {"value": str(amount)},
                }
            ],
            **{name: {"value": value} for name, value in fields.items()},
        }
        number = vn.create_credit_note(self.company, body, self.state).reference_number
        vn.release_invoice(self.company, number, None, self.state)
        return number

    def document(self, number: str) -> dict[str, Any]:
        record = vn.get_invoice(self.company, number)
        return vn_out.invoice(record, self.company, self.state.api_timezone)

    def related(self) -> dict[str, Any]:
        return {"customer": self.card}


def test_a_visma_net_credit_note_maps_to_a_valid_credit_note_of_its_invoice() -> None:
    sandbox = VismaNet()
    original = sandbox.invoice()
    credit = sandbox.credit_note(original, Decimal(1250), origInvoiceDate="2025-03-01")

    result = valid(
        map_visma_net(
            event(SourceSystem.VISMA_NET, sandbox.document(credit), sandbox.related(), True)
        )
    )

    assert result.document_type is DocumentType.CREDIT_NOTE
    assert result.preceding_invoice is not None
    assert (result.preceding_invoice.number, result.preceding_invoice.issue_date) == (
        original,
        dt.date(2025, 3, 1),
    )
    assert result.totals.payable == Decimal(1250)


def test_a_visma_net_eur_invoice_maps_with_its_vat_in_nok() -> None:
    sandbox = VismaNet()
    number = sandbox.invoice(currencyId="EUR", exchangeRate="11.5")

    result = valid(
        map_visma_net(
            event(SourceSystem.VISMA_NET, sandbox.document(number), sandbox.related(), False)
        )
    )

    assert (result.currency, result.totals.tax_total) == ("EUR", Decimal(250))
    assert (result.vat_accounting_currency, result.exchange_rate) == ("NOK", Decimal("11.5"))
    assert result.vat_total_accounting_currency == Decimal(2875)
