"""The three file formats: golden files (byte for byte) and the published layouts' positions,
CUSIN-style XML against its XSD, PEPPOL copies against the official rules."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from factoring_gateway.domain.batches import InvoiceState, OfferedInvoice, line_for
from factoring_gateway.domain.formats import (
    DueDateChange,
    FileHeader,
    FormatRegistry,
    OutFile,
    UnknownFormatError,
    default_formats,
)
from factoring_gateway.domain.formats.cusin import CusinFormat, validate
from factoring_gateway.domain.formats.fixed_width import (
    CUSTOMER_RECORD,
    INVOICE_RECORD,
    FixedWidthFormat,
)
from factoring_gateway.testing import PAYEE, agreement, sample_invoice
from nordflow_documents.validation import shared_validator
from nordflow_schemas.invoice import DocumentType

GOLDEN = Path(__file__).parent / "golden"
TENANT = "t-golden"
HEADER = FileHeader(
    client_number="1234",
    company_name="Nordflow Norge AS",
    serial=7,
    created_at=dt.datetime(2025, 3, 10, 15, 30, tzinfo=ZoneInfo("Europe/Oslo")),
    payee=PAYEE,
)


def sample_lines():  # type: ignore[no-untyped-def]
    """Two invoices of two customers and a credit note of the first (fee 1.5 % + 10)."""
    first = sample_invoice(TENANT, "5067")
    second = sample_invoice(
        TENANT, "5068", customer_number="100018", amount_lines=(("3", "1200.50"),)
    )
    credit = sample_invoice(
        TENANT,
        "5069",
        document_type=DocumentType.CREDIT_NOTE,
        credited=first,
        amount_lines=(("2", "950.00"),),
    )
    from decimal import Decimal

    from factoring_gateway.domain.agreements import Fees

    terms = agreement(TENANT, fees=Fees(Decimal("10.00"), Decimal("1.5")))
    offered = [
        OfferedInvoice(
            i, InvoiceState.PENDING, "eligible", payment_reference=i.payment.payment_reference
        )
        for i in (first, second, credit)
    ]
    return [line_for(terms, o) for o in offered]


def golden(name: str, content: bytes) -> None:
    """Compare with the golden file (UPDATE_GOLDEN=1 writes it instead)."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    assert path.read_bytes() == content, f"{name} differs from its golden file"


def fields(record: str, columns) -> dict[str, str]:  # type: ignore[no-untyped-def]
    out, at = {}, 0
    for column in columns:
        out[column.name.split()[0]] = record[at : at + column.width]
        at += column.width
    return out


def test_the_registry_holds_the_three_formats_once() -> None:
    registry = default_formats()
    assert registry.ids == {"sgfinans-fixed-width", "cusin-xml", "peppol-bis3-zip"}
    with pytest.raises(UnknownFormatError, match="known: "):
        registry.get("edifact")
    with pytest.raises(ValueError, match="already registered"):
        FormatRegistry([FixedWidthFormat(), FixedWidthFormat()])


def test_fixed_width_golden_files_and_published_positions() -> None:
    customers, invoices = FixedWidthFormat().render(HEADER, sample_lines())
    assert (customers.name, invoices.name) == ("K1234_00007.SGF", "F1234_00007.SGF")
    golden("fixed-width/K1234_00007.SGF", customers.content)
    golden("fixed-width/F1234_00007.SGF", invoices.content)

    records = invoices.content.decode("iso-8859-1").split("\r\n")
    assert records[-1] == ""
    assert len(records) == 4
    assert all(len(r) == 128 for r in records[:-1])
    first, _, credit = (fields(r, INVOICE_RECORD) for r in records[:-1])
    assert first == {
        "F1": "1",
        "F2": "1234",
        "F3": "000100017",
        "F4": "00005067",
        "F5": "250310",
        "F6": "250409",
        "F7": "00001187500",  # 11 875.00 NOK in øre
        "F8": "00000",
        "F9": " " * 10,
        "F10": "ORD-5067".ljust(15),
        "F11": " " * 25,
        "F12": " " * 4,
        "F13": " " * 7,
        "F14": "NOK",
        "F15": "00001187500",
        "F16": "   ",
    }
    assert (credit["F1"], credit["F4"], credit["F7"], credit["F8"]) == (
        "9",
        "00005069",
        "00000237500",
        "05067",  # the credited invoice
    )
    kunder = customers.content.decode("iso-8859-1").split("\r\n")[:-1]
    assert len(kunder) == 2
    assert all(len(r) == 254 for r in kunder)
    k = fields(kunder[0], CUSTOMER_RECORD)
    assert (k["K1"], k["K2"], k["K3"], k["K4"], k["K5"]) == (
        "K",
        "9409",
        "1234",
        "000100017",
        "00974760673",
    )
    assert (k["K6"].rstrip(), k["K9"], k["K10"].rstrip(), k["K14"], k["K15"], k["K19"]) == (
        "Kjøper AS",
        "5003",
        "Bergen",
        "NO",
        "578",
        "NOK",
    )


def test_fixed_width_checks_what_its_fields_cannot_hold() -> None:
    fmt = FixedWidthFormat()
    assert fmt.check(sample_invoice(TENANT, "5067")) is None
    assert "F4" in (fmt.check(sample_invoice(TENANT, "A-17", reference="12345")) or "")
    assert "F3/K4" in (fmt.check(sample_invoice(TENANT, "17", customer_number="C-9")) or "")
    swedish = sample_invoice(TENANT, "17").model_copy(
        update={
            "buyer": sample_invoice(TENANT, "17").buyer.model_copy(
                update={
                    "address": sample_invoice(TENANT, "17").buyer.address.model_copy(
                        update={"postal_code": "411 01"}
                    )
                }
            )
        }
    )
    assert "K9" in (fmt.check(swedish) or "")
    original = sample_invoice(TENANT, "123456")
    credit = sample_invoice(TENANT, "7", document_type=DocumentType.CREDIT_NOTE, credited=original)
    assert "F8" in (fmt.check(credit) or "")


def test_cusin_golden_file_name_and_schema() -> None:
    [out] = CusinFormat().render(HEADER, sample_lines())
    assert out.name == "CUSIN_1234_20250310153000_7.xml"
    golden("cusin/CUSIN_1234_20250310153000_7.xml", out.content)
    assert validate(out.content) == []
    text = out.content.decode()
    assert text.count("<CUSINInfo>") == 2  # one block per customer
    assert "<CreditedBillNo>5067</CreditedBillNo>" in text
    assert "<Amount>1187500</Amount>" in text


def test_the_cusin_schema_refuses_what_the_description_forbids() -> None:
    [out] = CusinFormat().render(HEADER, sample_lines())
    text = out.content.decode()
    assert validate(text.replace('CompanyNo="1234"', 'CompanyNo="12AB"').encode())
    assert validate(
        text.replace("<BillNo>5067</BillNo>", "<BillNo>" + "9" * 16 + "</BillNo>").encode()
    )
    assert validate(text.replace("<Amount>1187500</Amount>", "<Amount>-5</Amount>").encode())
    assert validate(b"<CUSIN") == [validate(b"<CUSIN")[0]]


def test_cusin_holds_at_most_50000_invoices_a_file() -> None:
    assert CusinFormat().max_invoices == 50_000


def test_peppol_zip_golden_manifest_and_official_rules() -> None:
    [out] = default_formats().get("peppol-bis3-zip").render(HEADER, sample_lines())
    assert out.name == "PEPPOL_1234_000007.zip"
    golden("peppol/PEPPOL_1234_000007.zip", out.content)
    archive = zipfile.ZipFile(io.BytesIO(out.content))
    assert archive.namelist() == [
        "manifest.json",
        "00001-5067.xml",
        "00002-5068.xml",
        "00003-5069.xml",
    ]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["serial"] == 7
    assert manifest["kind"] == "invoices"
    assert [i["amount_minor"] for i in manifest["invoices"]] == [1187500, 450188, 237500]
    assert manifest["invoices"][2]["credited_number"] == "5067"
    first = archive.read("00001-5067.xml")
    assert b"5050" in first
    assert b"50674" in first
    report = shared_validator().validate(first)
    assert report.ok, report.summary()
    assert shared_validator().validate(archive.read("00003-5069.xml")).ok


def test_the_same_batch_gives_the_same_bytes() -> None:
    for format_id in default_formats():
        fmt = default_formats().get(format_id)
        first: list[OutFile] = fmt.render(HEADER, sample_lines())
        assert first == fmt.render(HEADER, sample_lines())


def test_change_files_carry_the_moved_due_dates() -> None:
    invoice = sample_invoice(TENANT, "5067")
    change = DueDateChange(invoice, dt.date(2025, 4, 9), dt.date(2025, 4, 30), "50674")
    [fixed] = FixedWidthFormat().render_changes(HEADER, [change])
    assert fixed.name == "E1234_00007.SGF"
    golden("fixed-width/E1234_00007.SGF", fixed.content)
    parts = ("E", "1234", "000100017", "00005067", "250409", "250430", "00001187500")
    assert fixed.content.decode() == "".join(parts) + "\r\n"
    [cusin] = CusinFormat().render_changes(HEADER, [change])
    assert validate(cusin.content) == []
    assert b"<NewDueDate>2025-04-30</NewDueDate>" in cusin.content
    [zipped] = default_formats().get("peppol-bis3-zip").render_changes(HEADER, [change])
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(zipped.content)).read("manifest.json"))
    assert manifest["kind"] == "due_date_changes"
    assert manifest["changes"][0]["new_due_date"] == "2025-04-30"
