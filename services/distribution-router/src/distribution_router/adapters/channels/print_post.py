"""Paper channel: a print-and-post provider prints the PDF, envelopes, franks and posts it.

`POST {base}/letters` as multipart (`file`: the PDF, `metadata`: JSON with the recipient's
postal address, postage `A` (priority) or `B` (economy), `colour`, `duplex` and our
`client_reference`) with an `Idempotency-Key`; the answer is the letter with its price, which
becomes `Receipt.cost`. `GET {base}/letters?client_reference=` finds an earlier send.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

import httpx
from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import Invoice
from pydantic import SecretStr

from .base import Outgoing, PermanentSendError, Receipt, TransientSendError
from .partner_http import (
    IDEMPOTENCY_HEADER,
    PartnerHttp,
    client_reference,
    created_record,
    found_id,
    read_problem,
)

PARTNER: Final = "print-and-post provider"
Postage = Literal["A", "B"]
# The words tenants use for the two classes, and the provider's letters for them.
POSTAGE_NAMES: Final[dict[str, Postage]] = {
    "a": "A",
    "priority": "A",
    "first": "A",
    "b": "B",
    "economy": "B",
    "second": "B",
}
_TRUE: Final = frozenset({"true", "yes", "1", "on"})
_FALSE: Final = frozenset({"false", "no", "0", "off"})
# The provider's address field → the canonical invoice's field, for error messages.
_INVOICE_FIELDS: Final = {
    "recipient.name": "buyer.name",
    "recipient.address_line1": "buyer.address.lines[0]",
    "recipient.address_line2": "buyer.address.lines[1:]",
    "recipient.postal_code": "buyer.address.postal_code",
    "recipient.city": "buyer.address.city",
    "recipient.country": "buyer.address.country_code",
}


@dataclass(frozen=True)
class PrintOptions:
    """How a letter is printed and posted."""

    postage: Postage = "B"
    colour: bool = False
    duplex: bool = True


def _flag(options: Mapping[str, str], names: tuple[str, ...], default: bool) -> bool:
    for name in names:
        if name in options:
            value = options[name].strip().lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            raise PermanentSendError(
                f"options.{name}: {options[name]!r} is not true or false", fallback=False
            )
    return default


def print_options(options: Mapping[str, str], defaults: PrintOptions) -> PrintOptions:
    """The tenant's channel options over the defaults; an unknown value names the option.

    `postage`: `A`/`priority` or `B`/`economy`; `colour` (or `color`) and `duplex`: true/false.
    """
    postage = defaults.postage
    if "postage" in options:
        found = POSTAGE_NAMES.get(options["postage"].strip().lower())
        if found is None:
            raise PermanentSendError(
                f"options.postage: {options['postage']!r} is not A (priority) or B (economy)",
                fallback=False,
            )
        postage = found
    return PrintOptions(
        postage=postage,
        colour=_flag(options, ("colour", "color"), defaults.colour),
        duplex=_flag(options, ("duplex",), defaults.duplex),
    )


def postal_recipient(invoice: Invoice, recipient: str) -> dict[str, str]:
    """The letter's address block from the buyer (BG-8), named by `recipient` if it is a name.

    The router's placeholder `post: <city>` is not a name; the buyer's name is used then.
    Missing parts are refused here, naming the invoice field, before anything is sent.
    """
    buyer = invoice.buyer
    address = buyer.address
    name = recipient.strip()
    if not name or name.lower().startswith("post:"):
        name = buyer.name
    lines = [" ".join(line.split()) for line in address.lines if line.strip()]
    missing = [
        field
        for field, value in (
            ("buyer.address.lines", lines),
            ("buyer.address.postal_code", (address.postal_code or "").strip()),
            ("buyer.address.city", (address.city or "").strip()),
        )
        if not value
    ]
    if missing:
        raise PermanentSendError(
            f"the letter cannot be posted: {', '.join(missing)} missing", fallback=False
        )
    block = {
        "name": " ".join(name.split()),
        "address_line1": lines[0],
        "postal_code": (address.postal_code or "").strip(),
        "city": " ".join((address.city or "").split()),
        "country": address.country_code,
    }
    if len(lines) > 1:
        block["address_line2"] = ", ".join(lines[1:])
    return block


def _cost(record: Mapping[str, Any]) -> Decimal | None:
    price = record.get("price")
    if not isinstance(price, Mapping):
        return None
    try:
        total = Decimal(str(price.get("total")))
    except InvalidOperation:
        return None
    return total if total.is_finite() else None


class PrintPostSender:
    """`Sender` for `Channel.PAPER` over a print-and-post provider's letter API.

    An address the provider cannot post to (missing or invalid parts, a country it does not
    post to) or a PDF it cannot print → `PermanentSendError(fallback=False)`: paper is the
    last channel, so the data must be fixed. 429/5xx/timeouts → `TransientSendError`.
    """

    channel: Channel = Channel.PAPER
    can_lookup: bool = True

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        defaults: PrintOptions = PrintOptions(),
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.defaults = defaults
        self._http = PartnerHttp(PARTNER, base_url, token, timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"PrintPostSender(base_url={self._http.base_url!r}, defaults={self.defaults!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def send(self, outgoing: Outgoing) -> Receipt:
        """Post the PDF once; the provider dedupes on the idempotency key."""
        if outgoing.content_type.split(";")[0].strip().lower() != "application/pdf":
            raise PermanentSendError(
                f"a letter is printed from a PDF, not {outgoing.content_type!r}", fallback=False
            )
        options = print_options(outgoing.options, self.defaults)
        reference = client_reference(outgoing.idempotency_key)
        metadata = {
            "recipient": postal_recipient(outgoing.invoice, outgoing.recipient),
            "postage": options.postage,
            "colour": options.colour,
            "duplex": options.duplex,
            "client_reference": reference,
        }
        response = await self._http.request(
            "POST",
            "letters",
            creates=True,
            files={
                "file": (outgoing.filename, outgoing.document, "application/pdf"),
                "metadata": (None, json.dumps(metadata).encode(), "application/json"),
            },
            headers={IDEMPOTENCY_HEADER: reference},
        )
        if response.status_code in (200, 201):
            record = created_record(PARTNER, response)
            return Receipt(channel=self.channel, reference=str(record["id"]), cost=_cost(record))
        problem = read_problem(response)
        transient = self._http.transient_refusal(response, problem, creates=True)
        if transient is not None:
            raise transient
        if "idempotency_key_reused" in problem.codes():
            earlier = await self.lookup(outgoing.idempotency_key)
            if earlier is not None:
                return earlier
            raise TransientSendError(f"{PARTNER}: {problem.describe()}; no earlier send found")
        refused = [
            f"{_INVOICE_FIELDS.get(e.field, e.field)}: {e.message}" for e in problem.errors
        ] or [problem.describe()]
        what = (
            "the address cannot be posted"
            if any(e.field.startswith("recipient") for e in problem.errors)
            else "the letter was refused"
        )
        raise PermanentSendError(
            f"{PARTNER}: {what} (HTTP {response.status_code}): "
            + self._http.redact("; ".join(refused)),
            fallback=False,
        )

    async def lookup(self, idempotency_key: str) -> Receipt | None:
        """The letter sent under this key (whatever became of it since), or None."""
        record = await self._http.find_by_reference(
            "letters", "letters", client_reference(idempotency_key)
        )
        if record is None:
            return None
        return Receipt(
            channel=self.channel, reference=found_id(PARTNER, record), cost=_cost(record)
        )
