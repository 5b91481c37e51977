"""The validator: structural checks, SVRL parsing, optional XSD, threads and asyncio."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nordflow_documents import validation
from nordflow_documents.peppol import PeppolBisRenderer
from nordflow_documents.testing.invoices import line, make_invoice
from nordflow_documents.validation import (
    PeppolValidator,
    RuleViolation,
    ValidationReport,
    parse_svrl,
    readable_location,
    shared_validator,
)
from nordflow_schemas.invoice import DocumentType

CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"


def test_a_document_that_is_not_xml_fails_well_formedness(validator: PeppolValidator) -> None:
    report = validator.validate(b"<Invoice><unclosed></Invoice>")

    (violation,) = report.violations
    assert violation.rule_id == validation.XML_WELL_FORMED
    assert violation.fatal
    assert not report.ok


def test_a_document_of_another_kind_fails_the_root_check(validator: PeppolValidator) -> None:
    report = validator.validate(
        b"<Order xmlns='urn:oasis:names:specification:ubl:schema:xsd:Order-2'/>"
    )

    assert [v.rule_id for v in report.violations] == [validation.XML_ROOT]
    assert "Order" in report.fatal[0].message


def test_a_document_type_declaration_is_refused_before_any_rule_runs(
    validator: PeppolValidator,
) -> None:
    document = (
        b'<?xml version="1.0"?>\n<!DOCTYPE Invoice [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        b"<Invoice xmlns='" + INVOICE.encode() + b"'>&x;</Invoice>"
    )

    report = validator.validate(document)

    assert [v.rule_id for v in report.violations] == [validation.XML_DOCTYPE]


def test_an_empty_invoice_breaks_cen_and_peppol_rules_in_that_order(
    validator: PeppolValidator,
) -> None:
    report = validator.validate(f"<Invoice xmlns='{INVOICE}'/>".encode())

    ids = [v.rule_id for v in report.fatal]
    assert {"BR-01", "BR-02", "PEPPOL-EN16931-R001"} <= set(ids)
    sources = [v.source for v in report.violations]
    assert sources == sorted(sources)  # every CEN finding before the first PEPPOL one
    assert sources[0] == "CEN-EN16931-UBL"
    assert sources[-1] == "PEPPOL-EN16931-UBL"


def test_warnings_do_not_make_a_document_invalid() -> None:
    warning = RuleViolation("NO-R-002", "warning", "Foretaksregisteret", "/Invoice[1]")
    fatal = RuleViolation("BR-CO-15", "fatal", "totals", "/Invoice[1]")

    assert ValidationReport((warning,)).ok
    assert ValidationReport((warning,)).warnings == (warning,)
    report = ValidationReport((warning, fatal))
    assert not report.ok
    assert report.fatal == (fatal,)
    assert report.fatal_rule_ids == {"BR-CO-15"}
    assert report.summary() == "BR-CO-15 at /Invoice[1]: totals"


def test_svrl_failed_asserts_become_violations() -> None:
    svrl = b"""<svrl:schematron-output xmlns:svrl="http://purl.oclc.org/dsdl/svrl">
      <svrl:fired-rule context="cac:LegalMonetaryTotal"/>
      <svrl:failed-assert id="BR-CO-16" flag="fatal" test="..."
          location="/Q{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice[1]/Q{urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2}LegalMonetaryTotal[1]">
        <svrl:text>[BR-CO-16]-Amount due for payment
            (BT-115) = Invoice total amount with VAT (BT-112) -Paid amount (BT-113).</svrl:text>
      </svrl:failed-assert>
      <svrl:failed-assert id="SE-R-009" flag="warning" location="/x[1]">
        <svrl:text>Bankgiro 7-8 characters</svrl:text>
      </svrl:failed-assert>
    </svrl:schematron-output>"""

    violations = parse_svrl(svrl, source="CEN")

    assert violations == [
        RuleViolation(
            "BR-CO-16",
            "fatal",
            "[BR-CO-16]-Amount due for payment (BT-115) = Invoice total amount with VAT "
            "(BT-112) -Paid amount (BT-113).",
            "/Invoice[1]/cac:LegalMonetaryTotal[1]",
            "CEN",
        ),
        RuleViolation("SE-R-009", "warning", "Bankgiro 7-8 characters", "/x[1]", "CEN"),
    ]


def test_locations_keep_unknown_namespaces_in_clark_notation() -> None:
    location = f"/Q{{{INVOICE}}}Invoice[1]/Q{{{CAC}}}TaxTotal[1]/Q{{urn:x}}Ext[1]"

    assert readable_location(location) == "/Invoice[1]/cac:TaxTotal[1]/{urn:x}Ext[1]"


def _write_schema(directory: Path, root_name: str, content: str) -> None:
    namespace = f"urn:oasis:names:specification:ubl:schema:xsd:{root_name}-2"
    (directory / f"UBL-{root_name}-2.1.xsd").write_text(
        f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
            targetNamespace="{namespace}" elementFormDefault="qualified">
          <xs:element name="{root_name}"><xs:complexType>{content}</xs:complexType></xs:element>
        </xs:schema>"""
    )


def test_ubl_schemas_are_checked_when_given(tmp_path: Path) -> None:
    maindoc = tmp_path / "maindoc"
    maindoc.mkdir()
    anything = '<xs:sequence><xs:any namespace="##other" processContents="skip" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>'  # noqa: E501
    _write_schema(maindoc, "Invoice", '<xs:sequence><xs:element name="Nothing"/></xs:sequence>')
    _write_schema(maindoc, "CreditNote", anything)
    schema_only = PeppolValidator(stylesheets=(), xsd_dir=tmp_path)
    renderer = PeppolBisRenderer()

    invoice_report = schema_only.validate(renderer.render(make_invoice()))
    credit_note = make_invoice(document_type=DocumentType.CREDIT_NOTE)
    credit_note_report = schema_only.validate(renderer.render(credit_note))

    assert invoice_report.fatal_rule_ids == {validation.UBL_XSD}
    assert invoice_report.fatal[0].location.startswith("line ")
    assert credit_note_report.violations == ()


def test_the_shared_validator_is_compiled_once() -> None:
    assert shared_validator() is shared_validator()


def test_validates_from_many_threads_at_once(validator: PeppolValidator) -> None:
    renderer = PeppolBisRenderer()
    good = renderer.render(make_invoice())
    bad = renderer.render(make_invoice([line("1", "Konsulttimme", "1", "100", "20")]))

    def check(n: int) -> bool:
        report = validator.validate(good if n % 2 else bad)
        return report.ok == bool(n % 2)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(check, range(36)))

    assert all(results)


async def test_validate_async_runs_off_the_event_loop(validator: PeppolValidator) -> None:
    document = PeppolBisRenderer().render(make_invoice())

    reports = await asyncio.gather(*(validator.validate_async(document) for _ in range(4)))

    assert all(report.ok for report in reports)
