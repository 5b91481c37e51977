"""build_senders and the delivery settings: what is built from which variables, secrets hidden."""

from __future__ import annotations

import pytest
from distribution_router.adapters.channels.b2c_bank import B2cBankSender
from distribution_router.adapters.channels.base import Sender
from distribution_router.adapters.channels.email import EmailChannelSender
from distribution_router.adapters.channels.factory import build_senders
from distribution_router.adapters.channels.peppol_ap import PeppolAccessPointSender
from distribution_router.adapters.channels.print_post import PrintOptions, PrintPostSender
from distribution_router.config import Settings
from nordflow_schemas.events import Channel
from pydantic import ValidationError

SECRETS = {
    "PEPPOL_AP_TOKEN": "ap-secret-0a1b2c",
    "PRINT_POST_TOKEN": "print-secret-3d4e5f",
    "B2C_BANK_TOKEN": "bank-secret-6a7b8c",
    "SMTP_PASSWORD": "smtp-secret-9d0e1f",
}
EVERYTHING = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "DATABASE_URL": "postgresql://nordflow@127.0.0.1/nordflow",
    "PEPPOL_AP_URL": "https://ap.example/api/v1",
    "PRINT_POST_URL": "https://print.example/api/v1",
    "PRINT_POST_POSTAGE": "A",
    "PRINT_POST_COLOUR": "true",
    "B2C_BANK_URL": "https://bank.example/api/v1",
    "SMTP_HOST": "smtp.example",
    "SMTP_PORT": "2525",
    "SMTP_USERNAME": "nordflow",
    "SMTP_STARTTLS": "false",
    "SMTP_FROM_ADDRESS": "faktura@saljare.example",
    **SECRETS,
}


def settings_from(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name in EVERYTHING:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


async def close_all(senders: dict[Channel, Sender]) -> None:
    for sender in senders.values():
        await sender.aclose()


async def test_nothing_configured_builds_no_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(
        monkeypatch,
        {k: v for k, v in EVERYTHING.items() if k in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")},
    )
    assert build_senders(settings) == {}


async def test_every_configured_channel_gets_its_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, EVERYTHING)
    senders = build_senders(settings)
    try:
        assert isinstance(senders[Channel.PEPPOL], PeppolAccessPointSender)
        assert isinstance(senders[Channel.B2C_BANK], B2cBankSender)
        assert isinstance(senders[Channel.EMAIL], EmailChannelSender)
        paper = senders[Channel.PAPER]
        assert isinstance(paper, PrintPostSender)
        assert paper.defaults == PrintOptions(postage="A", colour=True, duplex=True)
        for channel, sender in senders.items():
            assert sender.channel is channel
            assert sender.can_lookup is (channel is not Channel.EMAIL)
        email = senders[Channel.EMAIL]
        assert isinstance(email, EmailChannelSender)
        assert email.message_id_domain == "saljare.example"
        shown = " ".join(repr(s) for s in senders.values()) + repr(settings)
        for secret in SECRETS.values():
            assert secret not in shown
    finally:
        await close_all(senders)


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("PEPPOL_AP_TOKEN", "PEPPOL_AP_TOKEN is required when PEPPOL_AP_URL is set"),
        ("PRINT_POST_TOKEN", "PRINT_POST_TOKEN is required when PRINT_POST_URL is set"),
        ("B2C_BANK_TOKEN", "B2C_BANK_TOKEN is required when B2C_BANK_URL is set"),
        ("SMTP_FROM_ADDRESS", "SMTP_FROM_ADDRESS is required when SMTP_HOST is set"),
        ("SMTP_PASSWORD", "set both SMTP_USERNAME and SMTP_PASSWORD, or neither"),
    ],
)
def test_a_half_configured_channel_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, missing: str, named: str
) -> None:
    env = {k: v for k, v in EVERYTHING.items() if k != missing}
    with pytest.raises(ValidationError, match=named) as caught:
        settings_from(monkeypatch, env)
    for secret in SECRETS.values():
        assert secret not in str(caught.value)


def test_an_unknown_default_postage_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="print_post_postage"):
        settings_from(monkeypatch, {**EVERYTHING, "PRINT_POST_POSTAGE": "C"})
