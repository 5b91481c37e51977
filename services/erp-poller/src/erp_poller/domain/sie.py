"""A SIE 4i reader: the vouchers, accounts and company of a pre-system's export.

SIE 4 (SIE-Gruppen, "SIE filformat ver 4B") is line based: every line starts with a label
(`#VER`, `#TRANS`, ...), fields are separated by spaces or tabs, a field holding spaces is
quoted ("..."), a quote inside a quoted field is written `\\"`, and an object list is written
in braces (`{1 "100" 6 "P1"}` = dimension/object pairs). A voucher is a `#VER` line followed
by `{`, its `#TRANS` lines and `}`. The character set is IBM PC 8-bit (CP437, `#FORMAT PC8`).

Readers must ignore labels they do not know; `#RTRANS`/`#BTRANS` (added/removed rows of an
edited voucher) are ignored as the format asks, because every `#RTRANS` is followed by the
same row as a `#TRANS` for readers like this one. Every error names its line number; any
input yields a `SieFile` or a `SieError`, never another exception.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

ENCODING = "cp437"
_AMOUNT = re.compile(r"^-?\d{1,15}(\.\d{1,6})?$")
_DATE = re.compile(r"^\d{8}$")
_ACCOUNT = re.compile(r"^\d{1,10}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
IGNORED = frozenset({"#RTRANS", "#BTRANS"})

Token = str | tuple[str, ...]


class SieError(ValueError):
    """The file is not a SIE 4i file this reader accepts; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.reason = message


@dataclass(frozen=True)
class Transaction:
    """One `#TRANS` row: debit positive, credit negative."""

    account: str
    objects: tuple[tuple[str, str], ...]
    amount: Decimal
    date: dt.date | None
    text: str | None
    quantity: Decimal | None
    line: int


@dataclass(frozen=True)
class Voucher:
    """One `#VER` with its rows; ``number`` may be empty in 4i (the importer numbers it)."""

    series: str
    number: str
    date: dt.date
    text: str
    registered_on: dt.date | None
    signature: str | None
    transactions: tuple[Transaction, ...]
    line: int

    @property
    def voucher_id(self) -> str:
        """Series and number, e.g. ``A-12`` (a hyphen, so series A1 no 2 is not A12)."""
        return f"{self.series}-{self.number}" if self.series else self.number


@dataclass(frozen=True)
class SieFile:
    """What a SIE 4i file says: identity, chart of accounts, objects and vouchers."""

    sie_type: str
    program: str | None
    organisation_number: str | None
    company_name: str | None
    currency: str
    accounts: dict[str, str] = field(default_factory=dict)
    dimensions: dict[str, str] = field(default_factory=dict)
    objects: dict[tuple[str, str], str] = field(default_factory=dict)
    vouchers: tuple[Voucher, ...] = ()
    # `#RAR 0 <start> <end>`: the current fiscal year, whose voucher numbers these are.
    fiscal_year: tuple[dt.date, dt.date] | None = None

    def document_id(self, voucher: Voucher) -> str:
        """A voucher's id across files and years: voucher numbers start again each fiscal
        year, so the fiscal year's start (from `#RAR 0`, else the voucher date's calendar
        year) comes first, e.g. ``20250101-F-12``."""
        start = self.fiscal_year[0] if self.fiscal_year else dt.date(voucher.date.year, 1, 1)
        return f"{start:%Y%m%d}-{voucher.voucher_id}"

    def voucher_json(self, voucher: Voucher) -> dict[str, Any]:
        """A voucher as a JSON object, with account and object names from the file."""
        return {
            "series": voucher.series,
            "number": voucher.number,
            "date": voucher.date.isoformat(),
            "text": voucher.text,
            "registered_on": voucher.registered_on.isoformat() if voucher.registered_on else None,
            "signature": voucher.signature,
            "currency": self.currency,
            "transactions": [
                {
                    "account": t.account,
                    "account_name": self.accounts.get(t.account),
                    "objects": [
                        {"dimension": dim, "object": obj, "name": self.objects.get((dim, obj))}
                        for dim, obj in t.objects
                    ],
                    "amount": format(t.amount, "f"),
                    "date": t.date.isoformat() if t.date else None,
                    "text": t.text,
                    "quantity": format(t.quantity, "f") if t.quantity is not None else None,
                }
                for t in voucher.transactions
            ],
            "company": {
                "organisation_number": self.organisation_number,
                "name": self.company_name,
            },
        }


def tokenize(text: str, line: int) -> list[Token]:
    """Split one line into fields; an object list becomes a tuple of its fields."""
    tokens: list[Token] = []
    group: list[str] | None = None
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
            continue
        if c == "{":
            if group is not None:
                raise SieError(line, "an object list cannot contain another '{'")
            group = []
            i += 1
            continue
        if c == "}":
            if group is None:
                raise SieError(line, "'}' without an object list to close")
            tokens.append(tuple(group))
            group = None
            i += 1
            continue
        if c == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise SieError(line, "a quoted field is not closed")
                if text[i] == "\\" and i + 1 < n and text[i + 1] == '"':
                    chars.append('"')
                    i += 2
                    continue
                if text[i] == '"':
                    i += 1
                    break
                chars.append(text[i])
                i += 1
            value = "".join(chars)
        else:
            start = i
            while i < n and text[i] not in ' \t"{}':
                i += 1
            value = text[start:i]
        (tokens if group is None else group).append(value)
    if group is not None:
        raise SieError(line, "an object list is not closed with '}'")
    return tokens


def _text(tokens: list[Token], index: int, line: int, name: str) -> str | None:
    if index >= len(tokens):
        return None
    value = tokens[index]
    if isinstance(value, tuple):
        raise SieError(line, f"{name} must be a field, not an object list")
    return value


def _required(tokens: list[Token], index: int, line: int, name: str) -> str:
    value = _text(tokens, index, line, name)
    if value is None:
        raise SieError(line, f"{tokens[0]} needs {name}")
    return value


def _date(value: str | None, line: int, name: str, *, required: bool = False) -> dt.date | None:
    if value is None or value == "":
        if required:
            raise SieError(line, f"{name} is required (YYYYMMDD)")
        return None
    if not _DATE.match(value):
        raise SieError(line, f"{name} must be a date YYYYMMDD, got {value[:20]!r}")
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise SieError(line, f"{name} is not a calendar date: {value!r}") from None


def _amount(value: str, line: int, name: str) -> Decimal:
    if not _AMOUNT.match(value):
        raise SieError(line, f"{name} must be an amount like -1250.00, got {value[:30]!r}")
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise SieError(line, f"{name} is not a number: {value[:30]!r}") from None


def _objects(value: tuple[str, ...], line: int) -> tuple[tuple[str, str], ...]:
    if len(value) % 2:
        raise SieError(line, "an object list holds dimension/object pairs; one is incomplete")
    return tuple((value[i], value[i + 1]) for i in range(0, len(value), 2))


def _transaction(tokens: list[Token], line: int) -> Transaction:
    account = _required(tokens, 1, line, "an account")
    if not _ACCOUNT.match(account):
        raise SieError(line, f"account must be a number, got {account[:20]!r}")
    rest = tokens[2:]
    objects: tuple[tuple[str, str], ...] = ()
    # Old writers leave the object list out; the list is the only tuple a row may hold.
    if rest and isinstance(rest[0], tuple):
        objects = _objects(rest[0], line)
        rest = rest[1:]
    fields = [tokens[0], *rest]
    amount = _amount(_required(fields, 1, line, "an amount"), line, "amount")
    quantity_text = _text(fields, 4, line, "quantity")
    return Transaction(
        account=account,
        objects=objects,
        amount=amount,
        date=_date(_text(fields, 2, line, "transaction date"), line, "transaction date"),
        text=_text(fields, 3, line, "transaction text") or None,
        quantity=_amount(quantity_text, line, "quantity") if quantity_text else None,
        line=line,
    )


@dataclass
class _Open:
    """The voucher being read."""

    series: str
    number: str
    date: dt.date
    text: str
    registered_on: dt.date | None
    signature: str | None
    line: int
    opened: bool = False
    transactions: list[Transaction] = field(default_factory=list)

    def close(self) -> Voucher:
        total = sum((t.amount for t in self.transactions), Decimal(0))
        if total != 0:
            raise SieError(
                self.line, f"voucher {self.series} {self.number} does not balance: sum is {total}"
            )
        if not self.transactions:
            raise SieError(self.line, f"voucher {self.series} {self.number} has no #TRANS rows")
        return Voucher(
            self.series,
            self.number,
            self.date,
            self.text,
            self.registered_on,
            self.signature,
            tuple(self.transactions),
            self.line,
        )


def decode(data: bytes) -> str:
    """SIE 4 text is CP437 (`#FORMAT PC8`); every byte has a character, so this never fails."""
    return data.decode(ENCODING)


def parse(data: bytes | str) -> SieFile:
    """Read a SIE 4i file (bytes are CP437); raises `SieError` naming the line."""
    text = decode(data) if isinstance(data, bytes) else data
    sie_type: str | None = None
    program: str | None = None
    orgnr: str | None = None
    name: str | None = None
    currency = "SEK"
    accounts: dict[str, str] = {}
    dimensions: dict[str, str] = {}
    objects: dict[tuple[str, str], str] = {}
    fiscal_year: tuple[dt.date, dt.date] | None = None
    vouchers: list[Voucher] = []
    seen_ids: dict[str, int] = {}
    current: _Open | None = None
    lineno = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        if _CONTROL.search(stripped):
            raise SieError(lineno, "control characters are not allowed in SIE files")
        if stripped == "{":
            if current is None or current.opened:
                raise SieError(lineno, "'{' must directly follow a #VER line")
            current.opened = True
            continue
        if stripped == "}":
            if current is None or not current.opened:
                raise SieError(lineno, "'}' without an open #VER")
            voucher = current.close()
            if voucher.number:
                key = voucher.voucher_id
                if key in seen_ids:
                    raise SieError(
                        lineno, f"voucher {key} appears twice (first at line {seen_ids[key]})"
                    )
                seen_ids[key] = voucher.line
            vouchers.append(voucher)
            current = None
            continue
        if not stripped.startswith("#"):
            raise SieError(lineno, "each line must start with a #label")
        tokens = tokenize(stripped, lineno)
        label = str(tokens[0]).upper()
        if current is not None and not current.opened:
            raise SieError(current.line, "a #VER must be followed by a line with '{'")
        if label == "#TRANS":
            if current is None:
                raise SieError(lineno, "#TRANS outside a #VER { ... } block")
            current.transactions.append(_transaction(tokens, lineno))
            continue
        if label in IGNORED:
            if current is None:
                raise SieError(lineno, f"{label} outside a #VER {{ ... }} block")
            continue
        if current is not None:
            raise SieError(lineno, f"{label} inside a #VER block; close it with '}}' first")
        if label == "#VER":
            current = _Open(
                series=_required(tokens, 1, lineno, "a series"),
                number=_required(tokens, 2, lineno, "a number"),
                date=_date(_text(tokens, 3, lineno, "date"), lineno, "date", required=True)
                or dt.date.min,
                text=_text(tokens, 4, lineno, "text") or "",
                registered_on=_date(_text(tokens, 5, lineno, "regdate"), lineno, "regdate"),
                signature=_text(tokens, 6, lineno, "sign") or None,
                line=lineno,
            )
        elif label == "#SIETYP":
            sie_type = _required(tokens, 1, lineno, "a type")
            if sie_type != "4":
                raise SieError(lineno, f"#SIETYP must be 4 for SIE 4i, got {sie_type[:10]!r}")
        elif label == "#FORMAT":
            fmt = _required(tokens, 1, lineno, "a format")
            if fmt.upper() != "PC8":
                raise SieError(lineno, f"#FORMAT must be PC8 (CP437), got {fmt[:10]!r}")
        elif label == "#PROGRAM":
            program = _text(tokens, 1, lineno, "a program name")
        elif label == "#ORGNR":
            orgnr = _required(tokens, 1, lineno, "an organisation number")
        elif label == "#FNAMN":
            name = _required(tokens, 1, lineno, "a company name")
        elif label == "#VALUTA":
            currency = _required(tokens, 1, lineno, "a currency").upper()
            if not re.fullmatch(r"[A-Z]{3}", currency):
                raise SieError(lineno, f"#VALUTA must be an ISO 4217 code, got {currency[:10]!r}")
        elif label == "#KONTO":
            number = _required(tokens, 1, lineno, "an account number")
            if not _ACCOUNT.match(number):
                raise SieError(lineno, f"account must be a number, got {number[:20]!r}")
            accounts[number] = _text(tokens, 2, lineno, "an account name") or ""
        elif label == "#RAR":
            if _required(tokens, 1, lineno, "a year index") == "0":
                start = _date(_text(tokens, 2, lineno, "start"), lineno, "start", required=True)
                end = _date(_text(tokens, 3, lineno, "end"), lineno, "end", required=True)
                if start is not None and end is not None:
                    if end < start:
                        raise SieError(lineno, "#RAR 0 ends before it starts")
                    fiscal_year = (start, end)
        elif label == "#DIM":
            dimensions[_required(tokens, 1, lineno, "a dimension")] = (
                _text(tokens, 2, lineno, "a name") or ""
            )
        elif label == "#OBJEKT":
            dim = _required(tokens, 1, lineno, "a dimension")
            obj = _required(tokens, 2, lineno, "an object id")
            objects[(dim, obj)] = _text(tokens, 3, lineno, "an object name") or ""
        # Any other label (#FLAGGA, #GEN, #KPTYP, #KSUMMA, ...) carries nothing needed here.
    if current is not None:
        raise SieError(current.line, "the file ends inside a #VER block (missing '}')")
    if sie_type is None:
        raise SieError(max(lineno, 1), "no #SIETYP line: not a SIE 4 file")
    return SieFile(
        sie_type=sie_type,
        program=program,
        organisation_number=orgnr,
        company_name=name,
        currency=currency,
        accounts=accounts,
        dimensions=dimensions,
        objects=objects,
        vouchers=tuple(vouchers),
        fiscal_year=fiscal_year,
    )


CUSTOMER_DIMENSION = "8"  # SIE's reserved dimension "kund" (customer)


def customer_object(voucher: Voucher) -> str | None:
    """The voucher's customer: its first dimension-8 object, in row order (as the mapper
    reads it), or None when no row names one."""
    return next(
        (
            obj
            for t in voucher.transactions
            for dim, obj in t.objects
            if dim == CUSTOMER_DIMENSION and obj
        ),
        None,
    )


# Swedish BAS / Norwegian NS 4102 account classes that make a voucher a customer invoice.
RECEIVABLE_ACCOUNTS = range(1500, 1520)  # BAS 1510-1519 kundfordringar, NS 1500 kundefordringer
REVENUE_ACCOUNTS = range(3000, 4000)  # class 3: sales and operating income
OUTPUT_VAT_ACCOUNTS = (range(2610, 2640), range(2700, 2710))  # BAS 2610-2639, NS 2700-2709


def account_in(account: str, *ranges: range) -> bool:
    """Whether a (numeric) account number lies in any of the ranges."""
    return account.isdigit() and any(int(account) in r for r in ranges)


def invoice_kind(voucher: Voucher) -> tuple[str | None, str]:
    """("invoice" | "credit_note", "") for a customer invoice voucher, else (None, why not).

    A customer invoice debits a receivable account and credits revenue (and output VAT); a
    credit note does the opposite. A payment (bank debit, receivable credit) has no revenue.
    """
    receivable = sum(
        (t.amount for t in voucher.transactions if account_in(t.account, RECEIVABLE_ACCOUNTS)),
        Decimal(0),
    )
    has_receivable = any(account_in(t.account, RECEIVABLE_ACCOUNTS) for t in voucher.transactions)
    revenue = sum(
        (t.amount for t in voucher.transactions if account_in(t.account, REVENUE_ACCOUNTS)),
        Decimal(0),
    )
    if not has_receivable:
        return None, "no receivable account (1500-1519): not a customer invoice"
    if revenue == 0:
        return None, "no revenue account (3000-3999): a payment or transfer, not an invoice"
    if receivable > 0 and revenue < 0:
        return "invoice", ""
    if receivable < 0 and revenue > 0:
        return "credit_note", ""
    return None, "receivable and revenue are on the same side: not an invoice or credit note"
