"""EmailSender.build_message against the message the email package built before (the
reference below): parsed back, both say the same; on the wire, CRLF, short lines, 7-bit."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy, utils
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from typing import Any

import pytest
from distribution_router.adapters.email_sender import EmailAttachment, EmailSender

WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
FROM = "faktura@saljare.example"
PDF = b"%PDF-1.7\n" + hashlib.sha256(b"pdf").digest() * 900 + b"\n%%EOF\n"  # ~29 KB
XML = (
    b"<?xml version='1.0' encoding='UTF-8'?><Invoice>"
    + b"<Note>\xc3\xa5</Note>" * 40
    + b"</Invoice>"
)
CSV = "rad;belopp;text\n1;100,00;Blåbär\n2;-5,50;Rabatt\n".encode()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
BODY_SV = (
    "Hej!\n\nBifogat finns faktura 1042 från Säljare AB som PDF.\nFörfallodag: 2025-04-03.\n\n"
    "Vänliga hälsningar\nSäljare AB\n"
)


def reference_message(
    from_address: str,
    *,
    to: str,
    subject: str,
    body_text: str,
    pdf: bytes,
    pdf_name: str,
    attachments: Sequence[EmailAttachment],
    message_id: str,
) -> bytes:
    """What EmailSender.build_message and send_invoice wrote with the email package."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = utils.format_datetime(WHEN)
    message["Message-ID"] = message_id
    message.set_content(body_text, charset="utf-8", cte="quoted-printable")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=pdf_name)
    for extra in attachments:
        maintype, _, subtype = extra.content_type.partition("/")
        message.add_attachment(
            extra.content, maintype=maintype, subtype=subtype, filename=extra.filename
        )
    smtputf8 = not (from_address + to).isascii()
    return message.as_bytes(policy=policy.SMTPUTF8 if smtputf8 else policy.SMTP)


@dataclass(frozen=True)
class Case:
    id: str
    subject: str
    to: str = "ekonomi@kund.example"
    from_address: str = FROM
    body_text: str = BODY_SV
    pdf_name: str = "faktura-1042.pdf"
    attachments: tuple[EmailAttachment, ...] = ()
    message_id: str = "<t-1%3Ainv-1042%3Aemail@saljare.example>"

    @property
    def smtputf8(self) -> bool:
        return not (self.from_address + self.to).isascii()

    def arguments(self) -> dict[str, Any]:
        return {
            "to": self.to,
            "subject": self.subject,
            "body_text": self.body_text,
            "pdf": PDF,
            "pdf_name": self.pdf_name,
            "attachments": self.attachments,
            "message_id": self.message_id,
        }


CASES = [
    Case(
        "ascii",
        "Invoice 1042 from Demo Ltd",
        body_text="Hello,\n\nPlease find attached invoice 1042.\n",
        attachments=(EmailAttachment("1042.xml", XML, "application/xml"),),
    ),
    Case(
        "swedish",
        "Faktura 1042 från Säljare AB",
        attachments=(
            EmailAttachment("specifikation.csv", CSV, "text/csv"),
            EmailAttachment("Följesedel åäö.pdf", PDF[:5000], "application/pdf"),
        ),
    ),
    Case(
        "norwegian",
        "Faktura 1042 fra Blåbær og Ærfugl Østlandet AS",
        body_text="Hei!\n\nVedlagt er faktura 1042 fra Blåbær og Ærfugl Østlandet AS som PDF.\n",
        attachments=(EmailAttachment("Bilag æøå ÆØÅ.xlsx", CSV * 50, XLSX),),
    ),
    Case(
        "long ascii subject",
        "Invoice 1042 from A Company With A Remarkably Long Registered Name And Trading As "
        "Something Else Entirely Ltd",
    ),
    Case(
        "long swedish subject",
        "Kreditfaktura 1042 från Ångström & Östlund Fastighetsförvaltning i Göteborg och "
        "Mölndal Aktiebolag (publ), avdelning Västra Götaland",
    ),
    Case(
        "several attachments with awkward names",
        "Faktura 7 från Demo AB",
        attachments=(
            EmailAttachment('Avtal "ramavtal" \\ 2025.pdf', PDF[:300], "application/pdf"),
            EmailAttachment(
                "Förteckning över levererade artiklar och tjänster under februari månad 2025 "
                "\u2013 bilaga till faktura 1042.pdf",
                PDF[:7000],
                "application/pdf",
            ),
            EmailAttachment(
                "a-rather-long-ascii-file-name-for-the-specification-of-invoice-1042-part-2.csv",
                CSV,
                "text/csv",
            ),
            EmailAttachment("empty.txt", b"", "text/plain"),
            EmailAttachment("bild.png", bytes(range(256)) * 3, "image/png"),
            EmailAttachment("data.csv", CSV, "text/csv; charset=utf-8"),
            EmailAttachment("brev.docx", CSV, DOCX),
            EmailAttachment("x.bin", CSV, "application/x." + "long-" * 30 + "type"),
            EmailAttachment("y.bin", CSV, "Application/Octet-Stream"),
        ),
    ),
    Case(
        "odd subjects and body",
        "  =?utf-8?q?Faktura?= 1042\tfrån  Demo AB ",
        body_text=(
            "Rad med = och =3D och tab\tslut \nRad med blanksteg sist   \n.\n..\nFrom here\n"
            "crlf\r\ncr\rlång rad " + "ååå " * 40 + "\n" + "x" * 200 + "\n\n"
        ),
    ),
    Case("empty subject and body", "", body_text=""),
    Case("a display name", "Faktura 9", to='"Kund AB, Ekonomi" <ekonomi@kund.example>'),
    Case(
        "a long message id",
        "Faktura 9",
        message_id="<tenant-with-a-long-id%3Ainvoice-0123456789abcdef0123456789abcdef"
        "%3Aemail@mail.saljare.example>",
    ),
    Case("non-ascii local part (SMTPUTF8)", "Faktura 1042 från Säljare AB", to="åsa.öberg@kund.se"),
    Case(
        "non-ascii display name in From (SMTPUTF8)",
        "Faktura 1042 från Säljare AB och ett långt namn som måste vikas på två rader",
        from_address="Säljare Åkesson AB <faktura@saljare.example>",
        attachments=(EmailAttachment("Följesedel.pdf", PDF[:100], "application/pdf"),),
    ),
]


def sender_for(case: Case) -> EmailSender:
    return EmailSender("127.0.0.1", 25, None, None, False, case.from_address, clock=lambda: WHEN)


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def described(raw: bytes) -> dict[str, Any]:
    """What a reader of the message sees: headers decoded, parts, their types, names, content."""
    message = parse(raw)
    content_type = message["Content-Type"]
    return {
        "headers": [
            (name, str(value)) for name, value in message.items() if name != "Content-Type"
        ],
        "content_type": (content_type.content_type, sorted(content_type.params)),
        "defects": [type(d) for d in message.defects],
        "preamble": message.preamble,
        "epilogue": message.epilogue,
        "parts": [described_part(part) for part in message.iter_parts()],
    }


def described_part(part: MIMEPart) -> dict[str, Any]:
    assert not part.is_multipart()
    return {
        "headers": [(name, str(value)) for name, value in part.items()],
        "content_type": part.get_content_type(),
        "params": dict(part["Content-Type"].params),
        "transfer_encoding": part.get("Content-Transfer-Encoding"),
        "disposition": part.get_content_disposition(),
        "filename": part.get_filename(),
        "content": part.get_content(),
        "payload": part.get_payload(decode=True),
        "defects": [type(d) for d in part.defects]
        + [type(d) for _, v in part.items() for d in v.defects],
    }


def sections(raw: bytes) -> list[tuple[bytes, bytes]]:
    """(header fields, content) of the message and of each part, as written, boundary left out."""
    boundary = parse(raw).get_boundary()
    assert boundary is not None
    chunks = raw.replace(boundary.encode(), b"BOUNDARY").split(b"--BOUNDARY")
    return [(head, content) for head, _, content in (c.partition(b"\r\n\r\n") for c in chunks)]


def header_blocks(raw: bytes) -> list[bytes]:
    return [head for head, _ in sections(raw)]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_message_is_the_one_the_email_package_built(case: Case) -> None:
    new = sender_for(case).build_message(**case.arguments())
    old = reference_message(case.from_address, **case.arguments())

    assert described(new) == described(old)
    # Every header field (the message's and each part's) is written byte for byte as the
    # email package wrote it; only the boundary and the quoted-printable line breaks may differ.
    assert header_blocks(new) == header_blocks(old)
    assert [part.get_filename() for part in parse(new).iter_parts()][1:] == [
        case.pdf_name,
        *(a.filename for a in case.attachments),
    ]

    # On the wire: CRLF line ends only, no line longer than the email package's (≤ 78
    # where it could fold), none over SMTP's 998, and 7-bit unless SMTPUTF8 is needed.
    assert new.endswith(b"\r\n")
    lines = new.split(b"\r\n")[:-1]
    assert not any(b"\r" in line or b"\n" in line for line in lines)
    longest_before = max(len(line) for line in old.split(b"\r\n"))
    assert max(len(line) for line in lines) <= max(78, longest_before)
    assert all(len(line) <= 998 for line in lines)
    assert new.isascii() is not case.smtputf8
    assert all(content.isascii() for _, content in sections(new))  # only headers carry UTF-8


def test_the_parts_and_their_order() -> None:
    case = CASES[1]
    raw = sender_for(case).build_message(**case.arguments())
    message = parse(raw)
    assert message.get_content_type() == "multipart/mixed"
    text, pdf, csv, delivery_note = message.iter_parts()
    assert (text.get_content_type(), text["Content-Transfer-Encoding"]) == (
        "text/plain",
        "quoted-printable",
    )
    assert text.get_content() == BODY_SV.replace("\n", "\r\n")
    assert (pdf.get_filename(), pdf.get_content_type(), pdf.get_content()) == (
        "faktura-1042.pdf",
        "application/pdf",
        PDF,
    )
    assert (csv.get_filename(), csv.get_payload(decode=True)) == ("specifikation.csv", CSV)
    assert delivery_note.get_filename() == "Följesedel åäö.pdf"
    assert b"filename*=utf-8''F%C3%B6ljesedel%20%C3%A5%C3%A4%C3%B6.pdf\r\n" in raw  # RFC 2231
    assert b"Subject: Faktura 1042 =?utf-8?q?fr=C3=A5n_S=C3=A4ljare?= AB\r\n" in raw  # RFC 2047


def test_an_empty_filename_is_an_empty_quoted_string() -> None:
    # The email package wrote a parameter without a value (`filename`, a defect when parsed);
    # both are read as the empty name.
    new = sender_for(CASES[0]).build_message(**{**CASES[0].arguments(), "pdf_name": ""})
    assert b'Content-Disposition: attachment; filename=""\r\n' in new
    [_, pdf, _] = parse(new).iter_parts()
    assert pdf.get_filename() == ""
    assert not pdf["Content-Disposition"].defects


def test_each_message_gets_its_own_boundary() -> None:
    sender = sender_for(CASES[0])
    boundaries = {parse(sender.build_message(**CASES[0].arguments())).get_boundary() for _ in "abc"}
    assert len(boundaries) == 3
    assert all(re.fullmatch(r"={15}\d{19}==", str(b)) for b in boundaries)
