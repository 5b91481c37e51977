"""Write connections: where ledger-closer writes for a connection, how, and on which accounts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class WriteSystem(StrEnum):
    """Accounting systems ledger-closer can write into."""

    FORTNOX = "fortnox"
    VISMA_EACCOUNTING = "visma-eaccounting"
    VISMA_NET = "visma-net"
    TRIPLETEX = "tripletex"


class AccountRole(StrEnum):
    """Which of the connection's accounts an entry's money goes to."""

    FACTORING = "factoring"  # a closing: the factor owes (or paid) the invoice
    BANK = "bank"  # a reported payment: the money came into the bank


@dataclass(frozen=True)
class AccountMapping:
    """The tenant's accounts in that accounting system.

    ``receivable`` is where invoices are booked (SE BAS 1510, NO NS 4102 1500); a closing moves
    them to ``factoring`` (SE 1512, NO 1510); ``bank`` takes payments (1930, 1920); ``fee``
    takes a factor's fee (SE 6064, NO 7770); ``liability`` holds a financing advance until
    the buyer has paid (SE 2840, NO 2380).
    """

    receivable: int
    factoring: int
    bank: int
    fee: int
    liability: int

    def for_role(self, role: AccountRole) -> int:
        """The account an entry of ``role`` puts its money on."""
        return self.factoring if role is AccountRole.FACTORING else self.bank


DEFAULT_ACCOUNTS = {
    "SE": AccountMapping(receivable=1510, factoring=1512, bank=1930, fee=6064, liability=2840),
    "NO": AccountMapping(receivable=1500, factoring=1510, bank=1920, fee=7770, liability=2380),
}


def default_accounts(country: str) -> AccountMapping:
    """The chart's accounts for a country (Sweden's BAS unless Norway)."""
    return DEFAULT_ACCOUNTS.get(country.upper(), DEFAULT_ACCOUNTS["SE"])


@dataclass(frozen=True)
class WriteConnection:
    """Where and how ledger-closer writes for one erp-poller connection id.

    ``token_sealed`` is the sealed credentials (see ``credentials``); ``updated_at`` is when
    the connection was last saved (None before it is saved).
    """

    connection_id: str
    tenant_id: str
    system: str
    base_url: str
    token_sealed: bytes
    mode_of_payment: str = "FACT"
    accounts: AccountMapping = field(default_factory=lambda: DEFAULT_ACCOUNTS["SE"])
    updated_at: dt.datetime | None = None

    def account_for(self, role: AccountRole) -> int:
        """The account an entry of ``role`` is booked against."""
        return self.accounts.for_role(role)

    @property
    def factoring_account(self) -> int:
        """Where a closing moves the receivable."""
        return self.accounts.factoring

    @property
    def bank_account(self) -> int:
        """Where a reported payment is booked."""
        return self.accounts.bank
