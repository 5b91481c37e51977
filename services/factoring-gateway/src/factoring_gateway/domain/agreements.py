"""A tenant's agreements with its providers: terms, fees, the factor's account, file format,
transfer method and daily window, and the rules that make an agreement valid."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from nordflow_references import ReferenceKind, ReferencePolicy
from nordflow_schemas.events import AgreementKind, PayeeAccount
from nordflow_schemas.money import money
from nordflow_schemas.tenant import AccountScheme, Locale

AGREEMENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
DEFAULT_WINDOW = (dt.time(15, 30), dt.time(16, 30))
DEFAULT_CURRENCIES = frozenset({"SEK", "NOK", "EUR"})
ADVANCE_RANGE = (Decimal(70), Decimal(90))


class TransferMethod(StrEnum):
    """How files reach the provider."""

    SFTP = "sftp"
    HTTPS = "https"


@dataclass(frozen=True)
class Transfer:
    """Where and how files are handed over; the secret (password, private key or API token)
    is kept sealed apart from these plain settings and never leaves the service."""

    method: TransferMethod
    host: str | None = None
    port: int = 22
    username: str | None = None
    host_key: str | None = None  # the factor's SSH public key line ("ssh-ed25519 AAAA…")
    upload_dir: str = "inbox"
    receipt_dir: str = "outbox"
    settlement_dir: str = "settlements"
    base_url: str | None = None  # HTTPS: the factor API's root, e.g. https://factor/api/v1


@dataclass(frozen=True)
class Fees:
    """The provider's fee per invoice: a fixed amount and/or a percentage of the amount."""

    per_invoice: Decimal = Decimal(0)
    percent: Decimal = Decimal(0)

    def of(self, amount: Decimal) -> Decimal:
        """The fee on one invoice's amount, rounded to öre/øre/cents."""
        return money(self.per_invoice + amount * self.percent / 100)


@dataclass(frozen=True)
class Agreement:
    """One agreement of a tenant with a provider (a tenant may have several)."""

    agreement_id: str
    tenant_id: str
    provider: str
    kind: AgreementKind
    client_number: str  # the tenant's number at the provider (files, KID layouts)
    file_format: str
    transfer: Transfer
    payee: PayeeAccount | None = None
    assignment_text: Mapping[str, str] = field(default_factory=dict)  # locale -> text
    reference: ReferencePolicy = field(default_factory=ReferencePolicy)
    recourse: bool | None = None  # factoring: whether the company keeps the credit risk
    advance_percent: Decimal | None = None  # financing: 70-90 % paid at transfer
    fees: Fees = field(default_factory=Fees)
    company_name: str | None = None  # as the provider knows the tenant (file headers)
    window_start: dt.time = DEFAULT_WINDOW[0]
    window_end: dt.time = DEFAULT_WINDOW[1]
    enabled: bool = True
    max_age_days: int = 30
    include_credit_notes: bool = True
    payment_methods: frozenset[str] | None = None
    currencies: frozenset[str] = DEFAULT_CURRENCIES

    def __post_init__(self) -> None:
        object.__setattr__(self, "assignment_text", MappingProxyType(dict(self.assignment_text)))

    @property
    def pays_advance(self) -> bool:
        """Whether the provider pays anything at transfer (not so for invoice service)."""
        return self.kind is not AgreementKind.INVOICE_SERVICE

    def assignment_for(self, locale: str | None) -> str | None:
        """The assignment text in the tenant's locale, else English, else the first one."""
        texts = self.assignment_text
        if not texts:
            return None
        for candidate in (locale, Locale.EN.value):
            if candidate and candidate in texts:
                return texts[candidate]
        return next(iter(texts.values()))

    def advance_of(self, amount: Decimal, fee: Decimal) -> Decimal | None:
        """What the provider pays at transfer: the amount less the fee (factoring), the
        agreed share (financing), nothing (invoice service)."""
        if self.kind is AgreementKind.FACTORING:
            return money(amount - fee)
        if self.kind is AgreementKind.FINANCING and self.advance_percent is not None:
            return money(amount * self.advance_percent / 100)
        return None


@dataclass(frozen=True)
class FieldProblem:
    """One reason an agreement is refused, naming its field."""

    field: str
    message: str


class InvalidAgreementError(ValueError):
    """An agreement that cannot be stored; every problem names its field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


def check_agreement(
    agreement: Agreement,
    known_formats: frozenset[str],
    *,
    has_secret: bool,
) -> None:
    """Raise InvalidAgreementError naming every field that is wrong.

    ``has_secret`` tells whether the transfer's password, key or token is (or stays) set.
    """
    problems: list[FieldProblem] = []

    def bad(name: str, message: str) -> None:
        problems.append(FieldProblem(name, message))

    a = agreement
    if not AGREEMENT_ID.match(a.agreement_id):
        bad("agreement_id", "lower-case letters, digits and '-', 1-64 characters")
    if not a.provider.strip():
        bad("provider", "the provider's name is required")
    if not a.client_number.isdigit() or len(a.client_number) > 15:
        bad("client_number", "the client number the provider gave: 1-15 digits")
    if a.file_format not in known_formats:
        bad("file_format", f"one of {', '.join(sorted(known_formats))}")
    if a.kind in (AgreementKind.FACTORING, AgreementKind.FINANCING):
        if a.payee is None:
            bad("payee", f"{a.kind.value} needs the provider's account the buyer pays into")
        if not a.assignment_text:
            bad("assignment_text", f"{a.kind.value} needs the notice of assignment")
    if a.payee is not None:
        _check_payee(a.payee, bad)
    for locale, text in a.assignment_text.items():
        if locale not in {loc.value for loc in Locale}:
            bad(f"assignment_text.{locale}", "the locale must be sv, nb or en")
        elif not text.strip() or len(text) > 500:
            bad(f"assignment_text.{locale}", "1-500 characters")
    if a.kind is AgreementKind.FACTORING:
        if a.recourse is None:
            bad("recourse", "factoring is with recourse (true) or without (false)")
    elif a.recourse is not None:
        bad("recourse", "only factoring has recourse or not")
    if a.kind is AgreementKind.FINANCING:
        low, high = ADVANCE_RANGE
        if a.advance_percent is None or not low <= a.advance_percent <= high:
            bad("advance_percent", f"financing advances {low}-{high} % of the amount")
    elif a.advance_percent is not None:
        bad("advance_percent", "only financing has an advance percentage")
    if a.fees.per_invoice < 0 or a.fees.per_invoice != money(a.fees.per_invoice):
        bad("fees.per_invoice", "a non-negative amount with at most two decimals")
    if not Decimal(0) <= a.fees.percent < Decimal(100):
        bad("fees.percent", "a percentage from 0 up to 100")
    if a.kind is AgreementKind.FACTORING and a.reference.kind is ReferenceKind.NONE:
        bad(
            "reference",
            "factoring needs the factor's KID/OCR rules (kind se_ocr, no_kid or factor_layout)",
        )
    if not a.window_start < a.window_end:
        bad("window_end", "the window ends after it starts, on the same day")
    if not 1 <= a.max_age_days <= 365:
        bad("max_age_days", "1-365 days")
    if not a.currencies:
        bad("currencies", "at least one currency")
    for code in sorted(a.currencies):
        if not re.fullmatch(r"[A-Z]{3}", code):
            bad("currencies", f"{code!r} is not an ISO 4217 code")
    if a.payment_methods is not None and not a.payment_methods:
        bad("payment_methods", "leave it out for any payment method, or name at least one")
    _check_transfer(a.transfer, has_secret, bad)
    if problems:
        raise InvalidAgreementError(problems)


def _check_payee(payee: PayeeAccount, bad: Callable[[str, str], None]) -> None:
    schemes = {s.value for s in AccountScheme}
    if payee.scheme not in schemes:
        bad("payee.scheme", f"one of {', '.join(sorted(schemes))}")
    if not re.fullmatch(r"[A-Za-z0-9 -]{1,34}", payee.account_id):
        bad("payee.account_id", "1-34 letters, digits, spaces or '-'")


def _check_transfer(t: Transfer, has_secret: bool, bad: Callable[[str, str], None]) -> None:
    if t.method is TransferMethod.SFTP:
        if not t.host:
            bad("transfer.host", "the factor's SFTP host")
        if not 1 <= t.port <= 65535:
            bad("transfer.port", "1-65535")
        if not t.username:
            bad("transfer.username", "the SFTP login")
        if not t.host_key or not t.host_key.startswith(("ssh-", "ecdsa-")):
            bad("transfer.host_key", "the factor's SSH host key, e.g. 'ssh-ed25519 AAAA…'")
        for name in ("upload_dir", "receipt_dir", "settlement_dir"):
            value = getattr(t, name)
            if not value or ".." in value.split("/"):
                bad(f"transfer.{name}", "a directory on the factor's server")
        if not has_secret:
            bad("transfer.password", "a password or a private key is required for SFTP")
    else:
        if not t.base_url or not t.base_url.startswith("https://"):
            bad("transfer.base_url", "the factor API's https:// root")
        if not has_secret:
            bad("transfer.token", "the factor API's token is required for HTTPS")
