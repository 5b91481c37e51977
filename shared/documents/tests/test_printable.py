"""documents.printable: one letter PDF = the invoice, then every attachment that can be printed."""

from __future__ import annotations

from io import BytesIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nordflow_documents.pdf import render_pdf
from nordflow_documents.printable import build_letter
from nordflow_documents.testing.files import (
    CSV,
    ODS,
    ODS_TYPE,
    XLSX,
    XLSX_TYPE,
    AttachedFile,
    encrypted_pdf,
    image,
    text_pdf,
)
from nordflow_documents.testing.invoices import make_invoice, norwegian_buyer
from pypdf import PdfReader


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(BytesIO(pdf)).pages]


def test_pdf_and_image_attachments_are_printed_after_the_invoice() -> None:
    invoice = make_invoice()
    letter = build_letter(
        invoice,
        [
            AttachedFile(
                "villkor.pdf", "application/pdf", text_pdf("Villkor sida 1", "Villkor sida 2")
            ),
            AttachedFile("foto.png", "image/png", image("PNG")),
            AttachedFile("kvitto.jpg", "image/jpeg", image("JPEG")),
        ],
    )

    text = pages_text(letter.content)
    assert letter.pages == len(text) == 5
    assert invoice.number in text[0]
    assert "villkor.pdf" in text[0]
    assert "utskriven efter fakturan, 2 s." in text[0]
    assert "Villkor sida 1" in text[1]
    assert "Villkor sida 2" in text[2]
    assert "foto.png" in text[3]
    assert "kvitto.jpg" in text[4]
    assert [(p.filename, p.pages, p.printed) for p in letter.placed] == [
        ("villkor.pdf", 2, True),
        ("foto.png", 1, True),
        ("kvitto.jpg", 1, True),
    ]
    assert "Bilagor som inte skrivits ut" not in text[0]  # nothing was left out


def test_an_image_page_is_a4_and_wide_images_get_a_landscape_page() -> None:
    letter = build_letter(
        make_invoice(),
        [
            AttachedFile("hög.png", "image/png", image("PNG", (100, 300))),
            AttachedFile("bred.png", "image/png", image("PNG", (300, 100))),
        ],
    )
    reader = PdfReader(BytesIO(letter.content))
    portrait, landscape = reader.pages[1], reader.pages[2]
    assert (round(float(portrait.mediabox.width)), round(float(portrait.mediabox.height))) == (
        595,
        842,
    )
    assert (round(float(landscape.mediabox.width)), round(float(landscape.mediabox.height))) == (
        842,
        595,
    )
    assert len(portrait.images) == len(landscape.images) == 1


@pytest.mark.parametrize(
    ("filename", "content_type", "content"),
    [
        ("underlag.csv", "text/csv", CSV),
        ("underlag.xlsx", XLSX_TYPE, XLSX),
        ("underlag.ods", ODS_TYPE, ODS),
    ],
)
def test_a_file_that_cannot_be_printed_is_named_not_printed(
    filename: str, content_type: str, content: bytes
) -> None:
    letter = build_letter(make_invoice(), [AttachedFile(filename, content_type, content)])

    (text,) = pages_text(letter.content)
    assert f"{filename} ({len(content)} B): ej utskriven: filtypen kan inte skrivas ut" in text
    assert "Bilagor som inte skrivits ut kan fås från avsändaren." in text
    (placed,) = letter.placed
    assert (placed.printed, placed.not_printed) == (False, "file_type")
    assert placed.reason == f"a {content_type} file cannot be printed"


@pytest.mark.parametrize(
    ("content", "why", "reason", "listed"),
    [
        (encrypted_pdf(), "encrypted", "password-protected", "lösenordsskyddad PDF"),
        (b"%PDF-1.4\n1 0 obj <<", "damaged", "the PDF cannot be read", "filen kan inte läsas"),
        (text_pdf("Avskuren")[:300], "damaged", "the PDF cannot be read", "filen kan inte läsas"),
    ],
)
def test_a_locked_or_damaged_pdf_is_not_printed_and_says_why(
    content: bytes, why: str, reason: str, listed: str
) -> None:
    letter = build_letter(
        make_invoice(),
        [
            AttachedFile("trasig.pdf", "application/pdf", content),
            AttachedFile("foto.png", "image/png", image()),
        ],
    )
    text = pages_text(letter.content)
    assert len(text) == 2  # the invoice and the image: the PDF is left out, the letter goes
    assert f"trasig.pdf ({len(content)} B): ej utskriven: {listed}" in text[0]
    broken, photo = letter.placed
    assert (broken.not_printed, photo.printed) == (why, True)
    assert broken.reason is not None
    assert reason in broken.reason
    assert "0x" not in broken.reason  # no object addresses from library messages


def test_a_damaged_image_is_not_printed() -> None:
    letter = build_letter(
        make_invoice(), [AttachedFile("bild.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"x" * 20)]
    )
    (placed,) = letter.placed
    assert placed.not_printed == "damaged"
    assert placed.reason is not None
    assert placed.reason.startswith("the image cannot be read")
    assert letter.pages == 1


def test_attachments_beyond_what_one_letter_holds_are_not_printed() -> None:
    letter = build_letter(
        make_invoice(),
        [
            AttachedFile("a.pdf", "application/pdf", text_pdf("A1", "A2")),
            AttachedFile("b.pdf", "application/pdf", text_pdf("B1", "B2")),
            AttachedFile("c.png", "image/png", image()),
        ],
        max_attachment_pages=3,
    )
    assert [(p.filename, p.pages, p.not_printed) for p in letter.placed] == [
        ("a.pdf", 2, None),
        ("b.pdf", 0, "too_many_pages"),
        ("c.png", 1, None),  # still fits after b.pdf was left out
    ]
    assert letter.pages == 4
    assert "b.pdf (" in pages_text(letter.content)[0]
    assert "för många sidor för ett brev" in pages_text(letter.content)[0]


def test_without_attachments_the_letter_is_the_invoice_pdf() -> None:
    invoice = make_invoice()
    letter = build_letter(invoice)
    assert letter.content == render_pdf(invoice)
    assert (letter.pages, letter.placed) == (1, ())


def test_the_same_invoice_and_files_give_the_same_letter() -> None:
    invoice = make_invoice()
    files = [
        AttachedFile("villkor.pdf", "application/pdf", text_pdf("Villkor")),
        AttachedFile("foto.jpg", "image/jpeg", image("JPEG")),
        AttachedFile("data.csv", "text/csv", CSV),
    ]
    assert build_letter(invoice, files).content == build_letter(invoice, files).content


def test_the_attachment_list_is_in_the_invoices_language() -> None:
    invoice = make_invoice(buyer=norwegian_buyer())
    letter = build_letter(
        invoice,
        [
            AttachedFile("vedlegg.pdf", "application/pdf", text_pdf("X")),
            AttachedFile("d.csv", "text/csv", CSV),
        ],
    )
    text = pages_text(letter.content)[0]
    assert "skrevet ut etter fakturaen, 1 s." in text
    assert "ikke skrevet ut: filtypen kan ikke skrives ut" in text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=2000),
    noise=st.binary(max_size=64),
    position=st.integers(min_value=0, max_value=2000),
)
def test_whatever_a_pdf_attachment_holds_the_letter_is_built(
    cut: int, noise: bytes, position: int
) -> None:
    """A truncated or garbled PDF never stops the letter: printed, or named not printed."""
    valid = text_pdf("Bilaga 1", "Bilaga 2")
    at = position % len(valid)
    damaged = (valid[:at] + noise + valid[at + len(noise) :])[: len(valid) - cut]
    letter = build_letter(make_invoice(), [AttachedFile("x.pdf", "application/pdf", damaged)])

    (placed,) = letter.placed
    reader = PdfReader(BytesIO(letter.content))
    assert len(reader.pages) == letter.pages == 1 + placed.pages
    assert placed.printed or placed.reason
