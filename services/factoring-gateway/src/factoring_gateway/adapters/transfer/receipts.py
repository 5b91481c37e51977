"""The provider's receipt and error-log files (XML), as the factor sandbox writes them after
the CUSIN receipt's activity parameters: ``<name>.receipt.xml`` when a file is processed,
``<name>.errorlog.xml`` when it is refused (FORMATS.md, "Receipts")."""

from __future__ import annotations

from typing import Any

from lxml import etree

from ...domain.transfer import FactorAnswer, FileStatus

RECEIPT_SUFFIX = ".receipt.xml"
ERROR_SUFFIX = ".errorlog.xml"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def read_receipt(content: bytes) -> FactorAnswer:
    """A receipt: the file was received; its figures as the provider counted them."""
    root = etree.fromstring(content, _PARSER)
    details: dict[str, Any] = {child.tag: (child.text or "") for child in root}
    return FactorAnswer(FileStatus.RECEIVED, receipt=details)


def read_error_log(content: bytes) -> FactorAnswer:
    """An error log: the file was refused, with every error the provider gives."""
    root = etree.fromstring(content, _PARSER)
    errors = [
        f"{e.get('code')}: {e.text}" if e.get("code") else (e.text or "")
        for e in root.iter("Error")
    ]
    details = {child.tag: (child.text or "") for child in root if child.tag != "Error"}
    reason = "; ".join(errors) or "the provider refused the file"
    return FactorAnswer(FileStatus.REFUSED, reason=reason, receipt=details | {"errors": errors})
