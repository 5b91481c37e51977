"""domain.holds.check_attachment: which files can travel with a held invoice."""

from __future__ import annotations

import re

import pytest
from distribution_router.domain.holds import (
    MAX_ATTACHMENT_BYTES,
    AttachmentRejectedError,
    check_attachment,
)
from hypothesis import given
from hypothesis import strategies as st

PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
XLSX = b"PK\x03\x04\x14\x00\x06\x00"


@pytest.mark.parametrize(
    ("filename", "content_type", "content", "kind"),
    [
        ("spec.pdf", "application/pdf", PDF, "application/pdf"),
        ("photo.png", "image/PNG", PNG, "image/png"),
        ("bild.jpg", "image/jpeg", b"\xff\xd8\xff\xe0JFIF", "image/jpeg"),
        ("rows.csv", "text/csv; charset=utf-8", "a;b\nå;ö\n".encode(), "text/csv"),
        (
            "tid.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            XLSX,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    ],
)
def test_allowed_files_pass_with_their_media_type(filename, content_type, content, kind):
    assert check_attachment(filename, content_type, content) == kind


@pytest.mark.parametrize(
    ("filename", "content_type", "content", "problem", "message"),
    [
        ("x.exe", "application/x-msdownload", b"MZ", "type", "not allowed"),
        ("x", "", PDF, "type", "'(none)' is not allowed"),
        ("fake.pdf", "application/pdf", b"<html>", "content", "not application/pdf"),
        ("rows.csv", "text/csv", b"\xff\xfe\x00a", "content", "not UTF-8"),
        ("empty.pdf", "application/pdf", b"", "content", "empty"),
        ("", "application/pdf", PDF, "filename", "1 to 200"),
        ("../etc/passwd.pdf", "application/pdf", PDF, "filename", "must not contain"),
        ("a\nb.pdf", "application/pdf", PDF, "filename", "control characters"),
        ("a\x85b.pdf", "application/pdf", PDF, "filename", "control characters"),
        ("faktura\u202efdp.exe", "application/pdf", PDF, "filename", "bidirectional"),
        ("faktura\u2067.pdf", "application/pdf", PDF, "filename", "U+2067"),
        (
            "big.pdf",
            "application/pdf",
            PDF + b"0" * MAX_ATTACHMENT_BYTES,
            "too_large",
            f"limit is {MAX_ATTACHMENT_BYTES} bytes",
        ),
    ],
)
def test_refused_files_name_the_problem(filename, content_type, content, problem, message):
    with pytest.raises(AttachmentRejectedError, match=re.escape(message)) as caught:
        check_attachment(filename, content_type, content)
    assert caught.value.problem == problem


BIDI = [
    "\u200e",
    "\u200f",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u061c",
]


@given(
    before=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
    bidi=st.sampled_from(BIDI),
    after=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
)
def test_no_file_name_with_a_bidirectional_control_is_attached(
    before: str, bidi: str, after: str
) -> None:
    with pytest.raises(AttachmentRejectedError) as caught:
        check_attachment(f"{before}{bidi}{after}.pdf", "application/pdf", PDF)
    assert caught.value.problem == "filename"
