"""PEPPOL BIS Billing 3.0 copies of the batch's invoices, zipped with a JSON manifest.

Each invoice is rendered by the shared document renderer (``nordflow_documents``) as the
buyer receives it under the assignment: its payment means name the factor's account and
the invoice's KID/OCR. ``manifest.json`` lists the files with the figures a factor books
(amounts in minor units). The zip is deterministic: the same batch gives the same bytes.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from nordflow_documents.registry import DocumentRenderer
from nordflow_schemas.invoice import Invoice
from nordflow_schemas.money import to_minor_units

from .base import BatchLine, DueDateChange, FileHeader, OutFile, customer_key

FORMAT_ID = "peppol-bis3-zip"
MEDIA_TYPE = "application/zip"
MANIFEST = "manifest.json"
UBL_FORMAT = "peppol-bis-billing-3"


def _safe(number: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in number)


class PeppolZipFormat:
    """``peppol-bis3-zip``: ``PEPPOL_<client>_<serial>.zip`` with one UBL file per invoice."""

    format_id = FORMAT_ID
    max_invoices = 10_000

    def __init__(self, renderer: DocumentRenderer) -> None:
        self.renderer = renderer

    def check(self, invoice: Invoice) -> str | None:
        """Every canonical invoice renders as UBL; nothing more to check here."""
        return None

    def render(self, header: FileHeader, lines: list[BatchLine]) -> list[OutFile]:
        """The zip: ``<n>-<number>.xml`` per invoice and the manifest."""
        entries: list[tuple[str, bytes]] = []
        listed: list[dict[str, Any]] = []
        for n, line in enumerate(lines, start=1):
            invoice = _as_assigned(line, header)
            name = f"{n:05d}-{_safe(invoice.number)}.xml"
            entries.append((name, self.renderer.render(invoice)))
            listed.append(
                {
                    "file": name,
                    "number": invoice.number,
                    "document_type": invoice.document_type.value,
                    "customer_number": customer_key(invoice.buyer),
                    "issue_date": invoice.issue_date.isoformat(),
                    "due_date": (invoice.due_date or invoice.issue_date).isoformat(),
                    "currency": invoice.currency,
                    "amount_minor": to_minor_units(line.amount),
                    "payment_reference": line.payment_reference,
                    "credited_number": (
                        invoice.preceding_invoice.number if invoice.preceding_invoice else None
                    ),
                }
            )
        manifest = _manifest(header, "invoices", {"invoices": listed})
        return [_zip(header, [(MANIFEST, manifest), *entries])]

    def render_changes(self, header: FileHeader, changes: list[DueDateChange]) -> list[OutFile]:
        """A zip holding only the manifest, of kind ``due_date_changes``."""
        listed = [
            {
                "number": c.invoice.number,
                "customer_number": customer_key(c.invoice.buyer),
                "old_due_date": c.old_due_date.isoformat(),
                "new_due_date": c.new_due_date.isoformat(),
                "payment_reference": c.payment_reference,
            }
            for c in changes
        ]
        manifest = _manifest(header, "due_date_changes", {"changes": listed})
        return [_zip(header, [(MANIFEST, manifest)])]


def _as_assigned(line: BatchLine, header: FileHeader) -> Invoice:
    """The invoice as the buyer gets it: the factor's account and the KID to pay with."""
    payment = line.invoice.payment
    changes: dict[str, Any] = {"payment_reference": line.payment_reference}
    if header.payee is not None:
        changes |= {"account_id": header.payee.account_id, "account_scheme": header.payee.scheme}
    return line.invoice.model_copy(update={"payment": payment.model_copy(update=changes)})


def _manifest(header: FileHeader, kind: str, body: dict[str, Any]) -> bytes:
    document = {
        "format": FORMAT_ID,
        "kind": kind,
        "client_number": header.client_number,
        "company_name": header.company_name,
        "serial": header.serial,
        "created_at": header.created_at.isoformat(),
        **body,
    }
    return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"


def _zip(header: FileHeader, entries: list[tuple[str, bytes]]) -> OutFile:
    buffer = io.BytesIO()
    stamp = header.created_at.timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    name = f"PEPPOL_{header.client_number}_{header.serial:06d}.zip"
    return OutFile(name, MEDIA_TYPE, buffer.getvalue())
