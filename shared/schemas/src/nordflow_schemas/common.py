"""Value types shared by every event: money, identifiers, codes and the frozen base model."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)

NAMESPACE = uuid.UUID("6f1c2a52-8f0e-4f7e-9a55-2f8f1c9b7d10")


# Money is always Decimal and travels as a JSON string, so no consumer ever parses it as float.
# pydantic refuses a Decimal that is not finite (NaN, Infinity: "Input should be a finite
# number", naming the field).
Amount = Annotated[
    Decimal,
    PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json"),
    Field(json_schema_extra={"format": "decimal", "pattern": r"^-?\d+(\.\d+)?$"}),
]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
TenantId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$", description="Tenant")
]
Timestamp = AwareDatetime

# -- bounded, clean input ------------------------------------------------------------------
# Text that crosses a boundary (an API body, a source document mapped into an event) is
# checked once here: no C0/C1 control characters (a NUL breaks PostgreSQL's text and jsonb;
# ESC sequences and line breaks forge log lines, CSV rows and e-mail headers), and a length.
# Fields that legitimately carry line breaks (a note, payment terms) allow TAB, LF and CR.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Bidirectional embeddings, overrides and isolates: "invoice\u202efdp.exe" shows as
# "invoiceexe.pdf". Refused in file names (and cleaned from text shown as a name).
_BIDI = re.compile(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]")

MIN_DATE = dt.date(1970, 1, 1)
MAX_DATE = dt.date(2099, 12, 31)
"""The sane range of every date and instant Nordflow accepts (an invoice dated in year 9999
would be sent, then overflow its archive retention date)."""
MAX_ID = 2**63 - 1
"""The largest numeric id (PostgreSQL bigint); a larger path or query value is a 422."""


def _single_line(value: str) -> str:
    if match := _CONTROL.search(value):
        raise ValueError(f"must not contain control characters (found U+{ord(match[0]):04X})")
    return value


def _multi_line(value: str) -> str:
    if match := _CONTROL_BUT_LINES.search(value):
        raise ValueError(f"must not contain control characters (found U+{ord(match[0]):04X})")
    return value


def _no_bidi(value: str) -> str:
    if match := _BIDI.search(value):
        raise ValueError(
            f"must not contain bidirectional control characters (found U+{ord(match[0]):04X})"
        )
    return value


def check_file_name(value: str) -> str:
    """``value`` if it is a file name that shows as what it is: no control characters and no
    bidirectional overrides ("invoice\u202efdp.exe" shows as "invoiceexe.pdf"); ValueError
    naming the first offending character otherwise."""
    return _no_bidi(_single_line(value))


def check_text(value: str, *, multiline: bool = False) -> str:
    """``value`` if it has no control characters (TAB, LF, CR allowed when ``multiline``);
    ValueError naming the first one otherwise. For code that reads text outside a model."""
    return _multi_line(value) if multiline else _single_line(value)


def clean_text(value: str, max_length: int, *, multiline: bool = False) -> str:
    """Control characters replaced by a space and cut to ``max_length``: for text we write
    ourselves that quotes someone else's (a rule's message naming a source value, a partner's
    reason), which is shown, never refused."""
    pattern = _CONTROL_BUT_LINES if multiline else _CONTROL
    cleaned = _BIDI.sub("", pattern.sub(" ", value))
    return cleaned if len(cleaned) <= max_length else cleaned[: max_length - 1] + "…"


SingleLine = AfterValidator(_single_line)
"""A marker for ``Annotated[str, SingleLine, Field(max_length=…)]``: no control characters."""
MultiLine = AfterValidator(_multi_line)
"""A marker for text that may have line breaks: no control characters but TAB, LF and CR."""


def _clean_message(value: Any) -> Any:
    return clean_text(value, 2000, multiline=True) if isinstance(value, str) else value


def _clean_label(value: Any) -> Any:
    return clean_text(value, 200) if isinstance(value, str) else value


Name = Annotated[str, Field(min_length=1, max_length=200), SingleLine]
"""A name or short label (a party, a city, a token's name)."""
Code = Annotated[str, Field(min_length=1, max_length=200), SingleLine]
"""An identifier or code from a source or a user (a document id, a number, a unit code)."""
ShortText = Annotated[str, Field(max_length=500), SingleLine]
"""One line of text (an address line, a reference, an e-mail address)."""
LongText = Annotated[str, Field(max_length=4000), MultiLine]
"""Free text that may have line breaks (a note, payment terms, a description)."""
Message = Annotated[str, BeforeValidator(_clean_message), Field(max_length=2000)]
"""A message or reason we write (it may quote a source or a partner): control characters
replaced and cut to 2000 characters (``clean_text``), never refused."""
Label = Annotated[str, BeforeValidator(_clean_label), Field(max_length=200)]
"""A short label taken from a partner or a source as it is (a payer's name on a settlement):
cleaned and cut to 200 characters, never refused."""
SourceId = Annotated[str, BeforeValidator(_clean_label), Field(min_length=1, max_length=200)]
"""A source system's own id of a document: cleaned like a label, never refused (one bad id
in an ERP must not stop a connection's polling)."""
FileName = Annotated[str, Field(min_length=1, max_length=255), SingleLine, AfterValidator(_no_bidi)]
"""An attachment's file name: no control or bidirectional-override characters."""


def _sane_date(value: dt.date) -> dt.date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"must be between {MIN_DATE} and {MAX_DATE}")
    return value


def _sane_instant(value: dt.datetime) -> dt.datetime:
    _sane_date(value.astimezone(dt.UTC).date())
    return value


SaneDate = Annotated[dt.date, AfterValidator(_sane_date)]
"""A calendar date between 1970-01-01 and 2099-12-31."""
SaneTimestamp = Annotated[AwareDatetime, AfterValidator(_sane_instant)]
"""An aware instant between 1970-01-01 and 2099-12-31 (UTC)."""
BigId = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A numeric id as PostgreSQL's bigint holds it."""


class Frozen(BaseModel):
    """Base for every schema model: immutable, strict about its own fields, tolerant of new ones.

    Consumers ignore unknown fields (``extra="ignore"``) so a producer may add optional fields
    without a new event version.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class SourceSystem(StrEnum):
    """The systems documents are picked up from."""

    FORTNOX = "fortnox"
    VISMA_EACCOUNTING = "visma-eaccounting"
    VISMA_NET = "visma-net"
    SIRVOY = "sirvoy"
    WINNER = "winner"
    ON_PREMISE = "on-premise"
    TRIPLETEX = "tripletex"  # an accounting system documents are booked into (not read yet)


class ConnectionMode(StrEnum):
    """How a tenant's connection flows: test writes nothing downstream, manual on request."""

    TEST = "test"
    MANUAL = "manual"
    AUTOMATIC = "automatic"


class SourceRef(Frozen):
    """Where a document came from, enough to find it again in the source system."""

    system: SourceSystem
    connection_id: Code
    document_id: SourceId = Field(description="The source system's own id")
    document_number: Label | None = Field(default=None, description="The number users see")


def canonical_invoice_id(tenant_id: str, system: str, connection_id: str, document_id: str) -> str:
    """Derive the tenant-scoped canonical id of a source document, stable across re-fetches."""
    name = f"{tenant_id}|{system}|{connection_id}|{document_id}"
    return f"inv_{uuid.uuid5(NAMESPACE, name).hex}"
