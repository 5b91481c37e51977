"""Letters, how a letter request is validated, and the print house's in-memory store."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from nordflow_sandboxes.kit.server import FieldErrors, PartnerState
from nordflow_sandboxes.kit.values import utc_now
from nordflow_sandboxes.print_post.pdf import (
    MAX_PDF_BYTES,
    count_pages,
    is_complete,
    is_encrypted,
    is_pdf,
)
from nordflow_sandboxes.print_post.pricing import MAX_SHEETS, Postage, Quote, quote, sheets_for

LetterStatus = Literal["received", "printed", "posted", "cancelled", "returned"]

# Postal codes of the Nordic countries the print house posts to with local postage.
POSTAL_CODES: dict[str, re.Pattern[str]] = {
    "SE": re.compile(r"^[1-9][0-9]{2} ?[0-9]{2}$"),
    "NO": re.compile(r"^[0-9]{4}$"),
    "DK": re.compile(r"^[0-9]{4}$"),
    "FI": re.compile(r"^[0-9]{5}$"),
    "IS": re.compile(r"^[0-9]{3}$"),
}
METADATA_FIELDS = {"recipient", "postage", "colour", "duplex", "client_reference"}
ADDRESS_FIELDS = {"name", "address_line1", "address_line2", "postal_code", "city", "country"}
# Address lines longer than this do not fit the envelope window.
ADDRESS_LIMITS = {"name": 60, "address_line1": 60, "address_line2": 60, "city": 40}
_REFUSED = "The letter was refused: see errors"


@dataclass
class Letter:
    """One PDF accepted for printing, enveloping and posting."""

    id: str
    client_reference: str | None
    idempotency_key: str | None
    recipient: dict[str, str]
    postage: Postage
    colour: bool
    duplex: bool
    quote: Quote
    pdf: bytes
    content_sha256: str
    received_at: datetime
    print_at: datetime
    post_at: datetime
    cancelled_at: datetime | None = None
    returned_at: datetime | None = None
    return_reason: str | None = None

    def status_at(self, now: datetime) -> LetterStatus:
        """received (cancellable) → printed at `print_at` → posted at `post_at`."""
        if self.cancelled_at is not None:
            return "cancelled"
        if self.returned_at is not None:
            return "returned"
        if now < self.print_at:
            return "received"
        return "printed" if now < self.post_at else "posted"

    def content(self) -> tuple[bytes, str]:
        """The PDF exactly as received."""
        return self.pdf, "application/pdf"

    def view(self, now: datetime) -> dict[str, Any]:
        """The letter as `GET /api/v1/letters/{id}` shows it."""
        status = self.status_at(now)
        printed = self.cancelled_at is None and now >= self.print_at
        posted = self.cancelled_at is None and now >= self.post_at
        return {
            "id": self.id,
            "status": status,
            "client_reference": self.client_reference,
            "recipient": dict(self.recipient),
            "postage": self.postage,
            "colour": self.colour,
            "duplex": self.duplex,
            "pages": self.quote.pages,
            "sheets": self.quote.sheets,
            "weight_grams": self.quote.weight_grams,
            "price": self.quote.as_json(),
            "content_sha256": self.content_sha256,
            "received_at": self.received_at.isoformat(),
            "cancellable_until": self.print_at.isoformat(),
            "printed_at": self.print_at.isoformat() if printed else None,
            "posted_at": self.post_at.isoformat() if posted else None,
            "cancelled_at": _iso(self.cancelled_at),
            "returned_at": _iso(self.returned_at),
            "return_reason": self.return_reason,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class LetterOrder:
    """A validated letter request."""

    pdf: bytes
    recipient: dict[str, str]
    postage: Postage
    colour: bool
    duplex: bool
    client_reference: str | None
    quote: Quote


def _text(data: dict[str, Any], key: str, path: str, errors: FieldErrors, *, required: bool) -> str:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.add(path, "missing", f"{path} is required")
        return ""
    if not isinstance(value, str):
        errors.add(path, "not_a_string", f"{path} must be a string")
        return ""
    value = " ".join(value.split())
    limit = ADDRESS_LIMITS.get(key)
    if limit is not None and len(value) > limit:
        errors.add(path, "too_long", f"{path} has {len(value)} characters; at most {limit} fit")
    return value


def _recipient(raw: Any, errors: FieldErrors) -> dict[str, str]:
    if not isinstance(raw, dict):
        errors.add("recipient", "missing", "recipient must be an object with the postal address")
        return {}
    for unknown in sorted(set(raw) - ADDRESS_FIELDS):
        errors.add(f"recipient.{unknown}", "unknown_field", f"recipient.{unknown} is not known")
    address = {
        key: _text(raw, key, f"recipient.{key}", errors, required=key != "address_line2")
        for key in ("name", "address_line1", "address_line2", "postal_code", "city")
    }
    country = _text(raw, "country", "recipient.country", errors, required=False) or "SE"
    country = country.upper()
    pattern = POSTAL_CODES.get(country)
    if pattern is None:
        errors.add(
            "recipient.country",
            "country_not_supported",
            f"letters go to {', '.join(POSTAL_CODES)} only, not {country!r}",
        )
    elif address["postal_code"] and not pattern.match(address["postal_code"]):
        errors.add(
            "recipient.postal_code",
            "invalid_postal_code",
            f"{address['postal_code']!r} is not a postal code of {country}",
        )
    elif country == "SE" and address["postal_code"]:
        digits = address["postal_code"].replace(" ", "")
        address["postal_code"] = f"{digits[:3]} {digits[3:]}"
    address["country"] = country
    if not address["address_line2"]:
        del address["address_line2"]
    return address


def _flag(data: dict[str, Any], key: str, default: bool, errors: FieldErrors) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        errors.add(key, "not_a_boolean", f"{key} must be true or false")
        return default
    return value


def validate_order(pdf: bytes | None, metadata: Any, errors: FieldErrors) -> LetterOrder:
    """Check the PDF and the metadata: 422 naming every refused field, else the order."""
    pages = 0
    if pdf is None:
        errors.add("file", "missing", "send the letter as a multipart part named 'file'")
    elif len(pdf) > MAX_PDF_BYTES:
        errors.add("file", "too_large", f"at most {MAX_PDF_BYTES} bytes")
    elif not is_pdf(pdf):
        errors.add("file", "not_a_pdf", "the file does not start with %PDF-")
    elif not is_complete(pdf):
        errors.add("file", "pdf_truncated", "the PDF does not end with %%EOF")
    elif is_encrypted(pdf):
        errors.add("file", "pdf_encrypted", "encrypted PDFs cannot be printed")
    else:
        pages = count_pages(pdf)
        if pages == 0:
            errors.add("file", "no_pages", "the PDF has no pages")
    if not isinstance(metadata, dict):
        if not errors.has("metadata"):
            errors.add("metadata", "missing", "send a JSON object in a part named 'metadata'")
        errors.raise_if_any(_REFUSED)
    for unknown in sorted(set(metadata) - METADATA_FIELDS):
        errors.add(unknown, "unknown_field", f"{unknown} is not a letter field")
    recipient = _recipient(metadata.get("recipient"), errors)
    postage = metadata.get("postage")
    if postage not in ("A", "B"):
        errors.add("postage", "invalid_postage", "postage must be 'A' (priority) or 'B' (economy)")
    colour = _flag(metadata, "colour", False, errors)
    duplex = _flag(metadata, "duplex", True, errors)
    reference = _text(metadata, "client_reference", "client_reference", errors, required=False)
    if len(reference) > 200:
        errors.add("client_reference", "too_long", "at most 200 characters")
    if pages and sheets_for(pages, duplex) > MAX_SHEETS:
        errors.add(
            "file",
            "too_many_pages",
            f"{pages} pages need {sheets_for(pages, duplex)} sheets; at most {MAX_SHEETS} fit",
        )
    errors.raise_if_any(_REFUSED)
    chosen = cast(Postage, postage)
    return LetterOrder(
        pdf=cast(bytes, pdf),  # not None: a missing file was refused above
        recipient=recipient,
        postage=chosen,
        colour=colour,
        duplex=duplex,
        client_reference=reference or None,
        quote=quote(pages, postage=chosen, colour=colour, duplex=duplex),
    )


class PrintPostState(PartnerState[Letter]):
    """Accounts and their letters; when letters are printed and posted.

    A letter can be cancelled for `cancellation_window` after it is received; it is then
    printed, and posted `posting_delay` later.
    """

    def __init__(
        self,
        *,
        cancellation_window: timedelta = timedelta(minutes=5),
        posting_delay: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = utc_now,
        idempotency_ttl: timedelta = timedelta(hours=24),
    ) -> None:
        super().__init__(clock=clock, idempotency_ttl=idempotency_ttl)
        self.cancellation_window = cancellation_window
        self.posting_delay = posting_delay
