"""What the access point checks in a sent document: well-formed UBL 2.1 with the BIS 3.0 ids."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal

from nordflow_sandboxes.kit.server import FieldErrors

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
BIS3_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
BIS3_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
PARTICIPANT_SCHEME = "iso6523-actorid-upis"
DOC_SCHEME = "busdox-docid-qns"
PROCESS_SCHEME = "cenbii-procid-ubl"
UBL_VERSION = "2.1"
BIS3_INVOICE = f"{DOC_SCHEME}::{INVOICE_NS}::Invoice##{BIS3_CUSTOMIZATION}::{UBL_VERSION}"
BIS3_CREDIT_NOTE = (
    f"{DOC_SCHEME}::{CREDIT_NOTE_NS}::CreditNote##{BIS3_CUSTOMIZATION}::{UBL_VERSION}"
)
BIS3_PROCESS = f"{PROCESS_SCHEME}::{BIS3_PROFILE}"

_ROOTS: dict[str, Literal["Invoice", "CreditNote"]] = {
    f"{{{INVOICE_NS}}}Invoice": "Invoice",
    f"{{{CREDIT_NOTE_NS}}}CreditNote": "CreditNote",
}
_NAMESPACES = {"Invoice": INVOICE_NS, "CreditNote": CREDIT_NOTE_NS}
# ISO 6523 ICD (four digits), a colon, then the identifier: `0007:5567321707`.
_PARTICIPANT = re.compile(r"^(?P<icd>[0-9]{4}):(?P<value>[^\s:]\S{0,134})$")


class UnsafeXmlError(ValueError):
    """XML the sandbox refuses to parse (not UTF-8, or with a DOCTYPE)."""


def parse_xml(data: bytes) -> ET.Element:
    """Parse UTF-8 XML that has no DOCTYPE (so no entity expansion can happen).

    Raises UnsafeXmlError for those, and ET.ParseError when the XML is not well-formed.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeXmlError(f"not UTF-8 (byte {exc.start})") from exc
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise UnsafeXmlError("DOCTYPE and ENTITY declarations are not allowed")
    return ET.fromstring(data)  # noqa: S314 - DOCTYPE-free UTF-8, checked above


def normalize_participant(raw: str) -> str | None:
    """`0007:5567321707` from that or `iso6523-actorid-upis::0007:5567321707`; None if invalid."""
    value = raw.strip()
    prefix = f"{PARTICIPANT_SCHEME}::"
    if value.lower().startswith(prefix):
        value = value[len(prefix) :]
    return value if _PARTICIPANT.match(value) else None


def with_scheme(raw: str, scheme: str) -> str:
    """An identifier with its scheme prefix (`busdox-docid-qns::…`), added when missing."""
    value = raw.strip()
    prefix = f"{scheme}::"
    return value if value.lower().startswith(prefix) else f"{prefix}{value}"


@dataclass(frozen=True)
class UblDocument:
    """The facts the access point reads from a UBL invoice or credit note."""

    kind: Literal["Invoice", "CreditNote"]
    document_id: str
    customization_id: str
    profile_id: str
    supplier_endpoint: str | None
    customer_endpoint: str | None

    @property
    def document_type(self) -> str:
        """The PEPPOL document type identifier, with its scheme."""
        namespace = _NAMESPACES[self.kind]
        return f"{DOC_SCHEME}::{namespace}::{self.kind}##{self.customization_id}::{UBL_VERSION}"

    @property
    def process(self) -> str:
        """The PEPPOL process identifier, with its scheme."""
        return f"{PROCESS_SCHEME}::{self.profile_id}"


def _text(root: ET.Element, path: str) -> str | None:
    element = root.find(path, {"cbc": CBC, "cac": CAC})
    if element is None or element.text is None or not element.text.strip():
        return None
    return element.text.strip()


def _endpoint(root: ET.Element, party: str) -> str | None:
    element = root.find(f"cac:{party}/cac:Party/cbc:EndpointID", {"cbc": CBC, "cac": CAC})
    if element is None or not (element.text or "").strip():
        return None
    scheme = element.get("schemeID", "").strip()
    return f"{scheme}:{(element.text or '').strip()}"


def read_ubl(data: bytes, errors: FieldErrors) -> UblDocument | None:
    """Check the document; every problem found goes into `errors` (None when unusable)."""
    if not data.strip():
        errors.add("body", "empty", "send the UBL XML document as the request body")
        return None
    try:
        root = parse_xml(data)
    except UnsafeXmlError as exc:
        errors.add("body", "xml_refused", f"the XML is refused: {exc}")
        return None
    except ET.ParseError as exc:
        errors.add("body", "xml_malformed", f"the XML is not well-formed: {exc}")
        return None
    kind = _ROOTS.get(root.tag)
    if kind is None:
        errors.add(
            "body",
            "not_ubl_invoice",
            f"the root element {root.tag} is neither a UBL 2.1 Invoice nor a CreditNote",
        )
        return None
    customization = _text(root, "cbc:CustomizationID")
    if customization is None:
        errors.add("CustomizationID", "missing", "cbc:CustomizationID is required")
    elif customization != BIS3_CUSTOMIZATION:
        errors.add(
            "CustomizationID",
            "not_bis3",
            f"cbc:CustomizationID must be {BIS3_CUSTOMIZATION!r}, got {customization!r}",
        )
    profile = _text(root, "cbc:ProfileID")
    if profile is None:
        errors.add("ProfileID", "missing", "cbc:ProfileID is required")
    elif profile != BIS3_PROFILE:
        errors.add(
            "ProfileID",
            "not_bis3",
            f"cbc:ProfileID must be {BIS3_PROFILE!r}, got {profile!r}",
        )
    document_id = _text(root, "cbc:ID")
    if document_id is None:
        errors.add("ID", "missing", "cbc:ID (the invoice number) is required")
    if _text(root, "cbc:IssueDate") is None:
        errors.add("IssueDate", "missing", "cbc:IssueDate is required")
    return UblDocument(
        kind=kind,
        document_id=document_id or "",
        customization_id=customization or "",
        profile_id=profile or "",
        supplier_endpoint=_endpoint(root, "AccountingSupplierParty"),
        customer_endpoint=_endpoint(root, "AccountingCustomerParty"),
    )
