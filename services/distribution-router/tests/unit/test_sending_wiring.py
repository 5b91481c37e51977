"""sending and app wiring: attempt keys, unit prices from settings, the B2C registry."""

from __future__ import annotations

from decimal import Decimal

from distribution_router.adapters.channels.base import Outgoing, Receipt
from distribution_router.config import Settings
from distribution_router.deps import consumer_registry, unit_prices
from distribution_router.domain import DEFAULT_UNIT_PRICES
from distribution_router.domain.sending import idempotency_key
from nordflow_schemas.events import Channel
from pydantic import SecretStr


class Plain:
    channel = Channel.EMAIL
    can_lookup = False

    async def send(self, outgoing: Outgoing) -> Receipt:
        raise AssertionError("not called")

    async def lookup(self, idempotency_key: str) -> Receipt | None:
        return None

    async def aclose(self) -> None:
        return None


class Bank(Plain):
    channel = Channel.B2C_BANK

    async def registered(self, personal_number: str) -> bool:
        return personal_number == "198503172384"


def test_an_attempt_key_names_invoice_channel_and_attempt() -> None:
    assert idempotency_key("inv_1", Channel.PAPER, 2) == "inv_1:paper:2"
    assert idempotency_key("inv_1", Channel.PAPER, 1) != idempotency_key("inv_1", Channel.EMAIL, 1)


def test_unit_prices_default_per_channel_and_settings_replace_them() -> None:
    base = {"kafka_bootstrap_servers": "k:9092", "database_url": SecretStr("postgresql://x")}
    assert unit_prices(Settings(**base)) == DEFAULT_UNIT_PRICES
    prices = unit_prices(Settings(**base, unit_price_paper=Decimal("7.25")))
    assert prices[Channel.PAPER] == Decimal("7.25")
    assert prices[Channel.PEPPOL] == DEFAULT_UNIT_PRICES[Channel.PEPPOL]


async def test_the_bank_adapter_is_the_consumer_registry() -> None:
    assert consumer_registry({}) is None
    assert consumer_registry({Channel.EMAIL: Plain()}) is None
    registry = consumer_registry({Channel.B2C_BANK: Bank()})
    assert registry is not None
    assert await registry.registered("198503172384")
    assert not await registry.registered("197001011234")
