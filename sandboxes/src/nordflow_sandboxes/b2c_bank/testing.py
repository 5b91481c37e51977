"""Test helpers: run the bank e-invoice sandbox in-process, valid ids, references and bodies."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

from nordflow_sandboxes.b2c_bank.app import create_app
from nordflow_sandboxes.b2c_bank.einvoices import B2cBankState
from nordflow_sandboxes.b2c_bank.references import luhn_check_digit, norwegian_national_id
from nordflow_sandboxes.kit.testing import (
    FaultSpec,
    PartnerSandboxAdmin,
    Runner,
    RunningPartnerSandbox,
    SandboxAccount,
    auth,
)

__all__ = [
    "B2cBankSandboxAdmin",
    "FaultSpec",
    "RunningB2cBankSandbox",
    "SandboxAccount",
    "ocr_reference",
    "random_norwegian_identity_number",
    "random_swedish_personal_number",
    "running_b2c_bank_sandbox",
    "sample_einvoice",
]

RunningB2cBankSandbox = RunningPartnerSandbox[B2cBankState]
# Bankgiro 5555-5551: seven digits and a Luhn digit, like a real one.
SAMPLE_BANKGIRO = "5555-5551"


def ocr_reference(base: str | None = None) -> str:
    """`base` (random digits when None) with a Luhn check digit: `12345` → `123455`."""
    digits = base if base is not None else f"{secrets.randbelow(10**9):09d}"
    return digits + luhn_check_digit(digits)


def random_swedish_personal_number(birth: date | None = None) -> str:
    """A random valid Swedish personal number `YYYYMMDD-NNNN` (date and Luhn digit)."""
    born = birth or date(1950, 1, 1) + timedelta(days=secrets.randbelow(20_000))
    serial = f"{secrets.randbelow(1000):03d}"
    short = f"{born:%y%m%d}{serial}"
    return f"{born:%Y%m%d}-{serial}{luhn_check_digit(short)}"


def random_norwegian_identity_number() -> str:
    """A random valid 11-digit Norwegian national identity number (both check digits)."""
    while True:
        born = date(1950, 1, 1) + timedelta(days=secrets.randbelow(20_000))
        stem = f"{born:%d%m%y}{secrets.randbelow(500):03d}"
        for k1 in "0123456789":
            for k2 in "0123456789":
                if norwegian_national_id(stem + k1 + k2):
                    return stem + k1 + k2


def sample_einvoice(consumer_reference: str, **overrides: Any) -> dict[str, Any]:
    """A valid `POST /api/v1/einvoices` body in SEK, due in 30 days."""
    return {
        "consumer_reference": consumer_reference,
        "payee_account": {"type": "bankgiro", "number": SAMPLE_BANKGIRO},
        "payment_reference": ocr_reference(),
        "amount": "1250.00",
        "currency": "SEK",
        "due_date": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
        "invoice_number": "1001",
        "issuer_name": "Säljare AB",
        **overrides,
    }


class B2cBankSandboxAdmin(PartnerSandboxAdmin):
    """The shared admin client plus the consumer registry and payments."""

    def register_consumer(self, personal_number: str, **fields: Any) -> dict[str, Any]:
        """Register (or replace) a consumer; answers the registration with its reference."""
        response = self.client.put(f"/sandbox/consumers/{personal_number}", json=fields)
        response.raise_for_status()
        return dict(response.json())

    def unregister_consumer(self, personal_number: str) -> None:
        """Remove a consumer's registration."""
        self.client.delete(f"/sandbox/consumers/{personal_number}").raise_for_status()

    def pay(self, token: str, einvoice_id: str) -> dict[str, Any]:
        """The consumer pays the e-invoice."""
        response = self.client.post(f"/sandbox/einvoices/{einvoice_id}/pay", headers=auth(token))
        response.raise_for_status()
        return dict(response.json())


# `with running_b2c_bank_sandbox() as bank:` serves the sandbox on a free port.
running_b2c_bank_sandbox = Runner(
    B2cBankState, create_app, RunningPartnerSandbox[B2cBankState]
).running
