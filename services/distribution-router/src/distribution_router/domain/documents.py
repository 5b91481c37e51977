"""What is sent: a rendered document, how its attachments travelled, the paper options."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from nordflow_schemas.events import ValidationIssue

Postage = Literal["A", "B"]
# How an attachment went with the invoice: inside the UBL or the bank's PDF, beside the PDF in
# the e-mail, printed after the invoice in the letter, or named on the invoice as not printed.
Handling = Literal["embedded", "attached", "printed", "not_printed"]


@dataclass(frozen=True)
class TravelledAttachment:
    """How one hold attachment went with the invoice on one channel (kept on the delivery)."""

    filename: str
    content_type: str
    size: int
    handling: Handling
    pages: int | None = None  # printed: its pages in the letter
    reason: str | None = None  # not printed: why

    def as_json(self) -> dict[str, Any]:
        """One entry of ``deliveries.attachments``."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "handling": self.handling,
            "pages": self.pages,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Rendered:
    """A document ready to send over one channel; ``errors`` are fatal rule violations.

    ``attachments`` says how each hold attachment travels with it on this channel.
    """

    content: bytes
    content_type: str
    filename: str
    errors: tuple[ValidationIssue, ...] = ()
    attachments: tuple[TravelledAttachment, ...] = ()

    @property
    def sha256(self) -> str:
        """The checksum recorded for what was (or would be) sent."""
        return hashlib.sha256(self.content).hexdigest()

    @property
    def not_printed(self) -> tuple[TravelledAttachment, ...]:
        """The attachments a letter could not carry (named on its invoice)."""
        return tuple(a for a in self.attachments if a.handling == "not_printed")


@dataclass(frozen=True)
class PaperDefaults:
    """The service's paper settings (PRINT_POST_POSTAGE, _COLOUR, _DUPLEX)."""

    postage: Postage
    colour: bool
    duplex: bool


@dataclass(frozen=True)
class PaperOptions:
    """A tenant's choices for printed letters; None = the service's default (PRINT_POST_*)."""

    postage: Postage | None = None
    colour: bool | None = None
    duplex: bool | None = None
    updated_at: dt.datetime | None = None

    def channel_options(self) -> dict[str, str]:
        """As ``Outgoing.options`` for the print adapter: only what the tenant set."""
        options: dict[str, str] = {}
        if self.postage is not None:
            options["postage"] = self.postage
        if self.colour is not None:
            options["colour"] = "true" if self.colour else "false"
        if self.duplex is not None:
            options["duplex"] = "true" if self.duplex else "false"
        return options

    def effective(self, defaults: PaperDefaults) -> PaperDefaults:
        """What letters use: the tenant's values, else the service's defaults."""
        return PaperDefaults(
            postage=self.postage or defaults.postage,
            colour=defaults.colour if self.colour is None else self.colour,
            duplex=defaults.duplex if self.duplex is None else self.duplex,
        )
