"""Files as tenants attach them: PDFs with text, images, spreadsheets, broken and locked PDFs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from io import BytesIO

from fpdf import FPDF
from PIL import Image
from pypdf import PdfWriter


@dataclass(frozen=True)
class AttachedFile:
    """A file as a sender attached it: one :class:`nordflow_documents.printable.File`."""

    filename: str
    content_type: str
    content: bytes


def text_pdf(*pages: str) -> bytes:
    """An A4 PDF with one line of text per page (extractable with pypdf)."""
    document = FPDF(unit="mm", format="A4")
    document.set_creation_date(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    document.set_font("helvetica", "", 14)
    for text in pages:
        document.add_page()
        document.cell(0, 10, text)
    return bytes(document.output())


def image(kind: str = "PNG", size: tuple[int, int] = (120, 160)) -> bytes:
    """A small solid-colour PNG or JPEG."""
    out = BytesIO()
    Image.new("RGB", size, (30, 90, 160)).save(out, kind)
    return out.getvalue()


def encrypted_pdf() -> bytes:
    """A password-protected one-page PDF."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.encrypt("hemligt")
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


CSV = b"artikel;antal\nA-1;2\n"
# The ZIP magic is all distribution-router's holds check for XLSX and ODS; a letter refuses
# them by type alone.
XLSX = b"PK\x03\x04" + b"\x00" * 40
ODS = b"PK\x03\x04" + b"\x01" * 40
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODS_TYPE = "application/vnd.oasis.opendocument.spreadsheet"
