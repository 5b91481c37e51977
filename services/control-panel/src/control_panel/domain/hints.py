"""What a rule id means in plain words: the kind of problem, so a page can say what to fix."""

from __future__ import annotations

from enum import StrEnum


class Problem(StrEnum):
    """Kinds of problems; each has a plain-words explanation and hint in every language."""

    REQUIRED = "required"
    DATE = "date"
    AMOUNT = "amount"
    VAT = "vat"
    CURRENCY = "currency"
    IDENTITY = "identity"
    REFERENCE = "reference"
    ADDRESS = "address"
    REACH = "reach"
    UNCERTAIN = "uncertain"
    CREDIT = "credit"
    OFFICIAL = "official"
    JOB = "job"
    DEAD_LETTER = "dead_letter"
    OTHER = "other"


# Most specific prefix first.
_PREFIXES: tuple[tuple[str, Problem], ...] = (
    ("NF-REQUIRED", Problem.REQUIRED),
    ("NF-SOURCE", Problem.REQUIRED),
    ("NF-DUE-DATE", Problem.DATE),
    ("NF-DATE", Problem.DATE),
    ("NF-VAT", Problem.VAT),
    ("NF-SIE-VAT", Problem.VAT),
    ("NF-CURRENCY", Problem.CURRENCY),
    ("NF-ORGNR", Problem.IDENTITY),
    ("NF-VATNR", Problem.IDENTITY),
    ("NF-PERSONNR", Problem.IDENTITY),
    ("NF-SIE-CUSTOMER", Problem.IDENTITY),
    ("NF-OCR", Problem.REFERENCE),
    ("NF-KID", Problem.REFERENCE),
    ("NF-POSTAL-ADDRESS", Problem.ADDRESS),
    ("NF-DELIVERY-UNCERTAIN", Problem.UNCERTAIN),
    ("NF-EADDRESS", Problem.REACH),
    ("NF-NO-CHANNEL", Problem.REACH),
    ("NF-SEND-REFUSED", Problem.REACH),
    ("NF-CREDIT", Problem.CREDIT),
    ("NF-NUMBER", Problem.AMOUNT),
    ("NF-RANGE", Problem.AMOUNT),
    ("NF-TOTAL", Problem.AMOUNT),
    ("NF-ROW", Problem.AMOUNT),
    ("NF-LINE", Problem.AMOUNT),
    ("NF-PAYMENT-LINE", Problem.AMOUNT),
    ("BR-", Problem.OFFICIAL),
    ("PEPPOL-", Problem.OFFICIAL),
    ("JOB", Problem.JOB),
    ("DLQ", Problem.DEAD_LETTER),
)


def problem_of(rule: str) -> Problem:
    """The kind of problem a rule id names."""
    upper = rule.upper()
    for prefix, problem in _PREFIXES:
        if upper.startswith(prefix):
            return problem
    return Problem.OTHER
