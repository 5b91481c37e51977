"""The letter paper sends: the invoice PDF, then every attachment that can be printed.

A print-and-post provider takes ONE PDF per letter, so the attachments must be inside it:
a PDF attachment's pages follow the invoice (copied with pypdf), a PNG or JPEG image gets an
A4 page of its own, scaled to fit. What cannot be printed (CSV and spreadsheets, a
password-protected or damaged PDF, pages beyond what one envelope holds) is named on the
invoice's attachment list as not printed, with the reason, so the reader knows to ask for it;
it never fails the send. The same invoice and files give the same bytes, so a letter rendered
again after a lookup archives exactly what was posted.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Final, Protocol

from fpdf import FPDF
from fpdf.image_parsing import preload_image
from nordflow_schemas.invoice import Invoice
from pypdf import PdfReader, PdfWriter

from .pdf import CREATOR, Enclosure, NotPrinted, creation_time, render_pdf, safe_text

# At most 48 sheets fit the provider's heaviest letter: 40 attachment pages plus an invoice of
# up to 8 pages fit even printed on one side. Attachments beyond that are not printed.
MAX_ATTACHMENT_PAGES: Final = 40
PDF: Final = "application/pdf"
IMAGES: Final = frozenset({"image/png", "image/jpeg"})
# Page layout of an image attachment, in millimetres on A4.
_MARGIN: Final = 12.0
_CAPTION: Final = 8.0
_MUTED: Final = (105, 105, 105)
# "<_io.BytesIO object at 0x7f…>" in a library's message says nothing and differs per run.
_OBJECT_REPR: Final = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


class File(Protocol):
    """An attachment as the caller has it (distribution-router's `channels.base.Attachment`)."""

    @property
    def filename(self) -> str:
        """The name the sender gave it."""
        ...

    @property
    def content_type(self) -> str:
        """Its MIME type."""
        ...

    @property
    def content(self) -> bytes:
        """The bytes."""
        ...


@dataclass(frozen=True)
class Placed:
    """How one attachment went into the letter: printed (``pages`` after the invoice), or not.

    ``reason`` is for the delivery record (English, for the tenant and operators); the
    invoice itself names the reason in its own language (``not_printed``).
    """

    filename: str
    content_type: str
    size: int
    pages: int = 0
    not_printed: NotPrinted | None = None
    reason: str | None = None

    @property
    def printed(self) -> bool:
        """Whether its pages are in the letter."""
        return self.not_printed is None

    def enclosure(self) -> Enclosure:
        """The line on the invoice's attachment list."""
        return Enclosure(self.filename, self.size, self.pages, self.not_printed)


@dataclass(frozen=True)
class Letter:
    """The one PDF posted, and what became of each attachment, in the order added."""

    content: bytes
    pages: int
    placed: tuple[Placed, ...]


@dataclass(frozen=True)
class _Pages:
    pdf: bytes
    count: int


@dataclass(frozen=True)
class _Refused:
    why: NotPrinted
    reason: str


def media_type(content_type: str) -> str:
    """``image/PNG; name=x`` → ``image/png``."""
    return content_type.split(";", 1)[0].strip().lower()


def build_letter(
    invoice: Invoice,
    attachments: Sequence[File] = (),
    *,
    max_attachment_pages: int = MAX_ATTACHMENT_PAGES,
) -> Letter:
    """The invoice PDF followed by the printable attachments' pages, as one PDF.

    Attachments are taken in order while their pages fit ``max_attachment_pages``; the
    invoice lists every attachment as printed (with its page count) or not printed (why).
    """
    created = creation_time(invoice)
    placed: list[Placed] = []
    parts: list[bytes] = []
    budget = max_attachment_pages
    for item in attachments:
        kind = media_type(item.content_type)
        outcome: _Pages | _Refused
        if kind == PDF:
            outcome = _pdf_pages(item.content, budget, max_attachment_pages)
        elif kind in IMAGES:
            outcome = _image_page(item.filename, item.content, created)
        else:
            outcome = _Refused("file_type", f"a {kind or 'file'} file cannot be printed")
        if isinstance(outcome, _Pages) and outcome.count > budget:
            outcome = _too_many(outcome.count, max_attachment_pages)
        if isinstance(outcome, _Refused):
            placed.append(
                Placed(
                    item.filename,
                    kind,
                    len(item.content),
                    not_printed=outcome.why,
                    reason=outcome.reason,
                )
            )
            continue
        budget -= outcome.count
        parts.append(outcome.pdf)
        placed.append(Placed(item.filename, kind, len(item.content), pages=outcome.count))
    invoice_pdf = render_pdf(invoice, enclosures=[p.enclosure() for p in placed])
    if not parts:
        return Letter(invoice_pdf, _page_count(invoice_pdf), tuple(placed))
    content = _merge(invoice_pdf, parts)
    return Letter(content, _page_count(content), tuple(placed))


def _too_many(pages: int, limit: int) -> _Refused:
    return _Refused(
        "too_many_pages",
        f"its {pages} pages do not fit: one letter takes at most {limit} attachment pages",
    )


def _pdf_pages(content: bytes, budget: int, limit: int) -> _Pages | _Refused:
    """The attachment's pages, rewritten by pypdf (so a merge cannot fail later), or why not."""
    try:
        reader = PdfReader(BytesIO(content), strict=False)
        if reader.is_encrypted:
            return _Refused("encrypted", "the PDF is password-protected (encrypted)")
        count = len(reader.pages)
        if count == 0:
            return _Refused("damaged", "the PDF has no pages")
        if count > budget:
            return _too_many(count, limit)  # found without copying every page
        writer = PdfWriter()
        writer.append(reader, import_outline=False)
        out = BytesIO()
        writer.write(out)
    # A damaged PDF surfaces as any of many exception types inside pypdf; none may stop the
    # letter, so every one makes the file "not printed" with the reason.
    except Exception as exc:
        return _Refused("damaged", f"the PDF cannot be read: {_describe(exc)}")
    return _Pages(out.getvalue(), count)


def _image_page(filename: str, content: bytes, created: dt.datetime) -> _Pages | _Refused:
    """One A4 page with the image scaled to fit under a caption naming the file.

    A wider-than-tall image gets a landscape page, so it is not shrunk needlessly.
    """
    try:
        document = FPDF(unit="mm", format="A4")
        document.set_creation_date(created)
        document.set_creator(CREATOR)
        document.set_auto_page_break(auto=False)
        _, _, info = preload_image(document.image_cache, BytesIO(content))
        landscape = info.width > info.height
        document.add_page(orientation="L" if landscape else "P")
        document.set_font("helvetica", "", 8)
        document.set_text_color(*_MUTED)
        document.set_xy(_MARGIN, _MARGIN)
        width = document.w - 2 * _MARGIN
        document.cell(width, 4, safe_text(filename))
        top = _MARGIN + _CAPTION
        document.image(
            BytesIO(content),
            x=_MARGIN,
            y=top,
            w=width,
            h=document.h - top - _MARGIN,
            keep_aspect_ratio=True,
        )
        pdf = bytes(document.output())
    # Pillow and fpdf2 raise different exception types for a truncated or corrupt image.
    except Exception as exc:
        return _Refused("damaged", f"the image cannot be read: {_describe(exc)}")
    return _Pages(pdf, 1)


def _merge(invoice_pdf: bytes, parts: Sequence[bytes]) -> bytes:
    """The invoice's pages, then each part's, keeping the invoice's title and author."""
    invoice = PdfReader(BytesIO(invoice_pdf))
    writer = PdfWriter()
    writer.append(invoice)
    for part in parts:
        writer.append(PdfReader(BytesIO(part)), import_outline=False)
    if invoice.metadata:
        writer.add_metadata(dict(invoice.metadata))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _page_count(pdf: bytes) -> int:
    return len(PdfReader(BytesIO(pdf)).pages)


def _describe(exc: Exception) -> str:
    text = " ".join(_OBJECT_REPR.sub("the file", str(exc)).split()) or type(exc).__name__
    return text[:200]
