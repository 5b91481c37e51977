"""Test helpers: run the print-and-post sandbox in-process, build PDFs and letter uploads."""

from __future__ import annotations

import json
from typing import Any

from nordflow_sandboxes.kit.testing import (
    FaultSpec,
    PartnerSandboxAdmin,
    Runner,
    RunningPartnerSandbox,
    SandboxAccount,
    auth,
)
from nordflow_sandboxes.print_post.app import create_app
from nordflow_sandboxes.print_post.letters import PrintPostState

__all__ = [
    "FaultSpec",
    "PrintPostSandboxAdmin",
    "RunningPrintPostSandbox",
    "SandboxAccount",
    "letter_files",
    "minimal_pdf",
    "running_print_post_sandbox",
    "sample_recipient",
]

RunningPrintPostSandbox = RunningPartnerSandbox[PrintPostState]


def minimal_pdf(pages: int = 1, text: str = "Faktura") -> bytes:
    """A small valid PDF with `pages` A4 pages (correct xref), for upload tests."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    for i in range(pages):
        content = f"BT /F1 12 Tf 72 770 Td ({text} {i + 1}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            f"/Contents {4 + 2 * i} 0 R >>".encode()
        )
        objects.append(
            b"<< /Length "
            + str(len(content)).encode()
            + b" >>\nstream\n"
            + content
            + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def sample_recipient(**overrides: str) -> dict[str, str]:
    """A Swedish postal address as the letter metadata takes it."""
    return {
        "name": "Anna Andersson",
        "address_line1": "Storgatan 1",
        "postal_code": "111 22",
        "city": "Stockholm",
        "country": "SE",
        **overrides,
    }


def letter_files(pdf: bytes, metadata: dict[str, Any]) -> dict[str, tuple[str | None, bytes, str]]:
    """The `files=` argument of an httpx POST /api/v1/letters (multipart: file + metadata)."""
    return {
        "file": ("letter.pdf", pdf, "application/pdf"),
        "metadata": (None, json.dumps(metadata).encode(), "application/json"),
    }


class PrintPostSandboxAdmin(PartnerSandboxAdmin):
    """The shared admin client plus returned letters."""

    def return_letter(self, token: str, letter_id: str, reason: str = "addressee unknown") -> None:
        """The postal service brings a posted letter back."""
        response = self.client.post(
            f"/sandbox/letters/{letter_id}/return", json={"reason": reason}, headers=auth(token)
        )
        response.raise_for_status()


# `with running_print_post_sandbox() as post:` serves the sandbox on a free port.
running_print_post_sandbox = Runner(
    PrintPostState, create_app, RunningPartnerSandbox[PrintPostState]
).running
