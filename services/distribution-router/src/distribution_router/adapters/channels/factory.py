"""Builds the delivery adapters the settings configure: one `Sender` per configured channel."""

from __future__ import annotations

import ssl

from nordflow_schemas.events import Channel

from ...config import Settings
from ..email_sender import EmailSender
from .b2c_bank import B2cBankSender
from .base import Sender
from .email import EmailChannelSender
from .peppol_ap import PeppolAccessPointSender
from .print_post import PrintOptions, PrintPostSender


def build_senders(settings: Settings) -> dict[Channel, Sender]:
    """The senders of every channel whose settings are given; nothing connects yet.

    A channel left out (no URL, no SMTP host) has no sender: the send job reports such an
    invoice as undeliverable by that channel. Close them all with `aclose` at shutdown.
    """
    senders: dict[Channel, Sender] = {}
    timeout = settings.delivery_timeout_seconds
    if settings.peppol_ap_url and settings.peppol_ap_token is not None:
        senders[Channel.PEPPOL] = PeppolAccessPointSender(
            settings.peppol_ap_url, settings.peppol_ap_token, timeout=timeout
        )
    if settings.b2c_bank_url and settings.b2c_bank_token is not None:
        senders[Channel.B2C_BANK] = B2cBankSender(
            settings.b2c_bank_url, settings.b2c_bank_token, timeout=timeout
        )
    if settings.smtp_host and settings.smtp_from_address:
        senders[Channel.EMAIL] = EmailChannelSender(
            EmailSender(
                settings.smtp_host,
                settings.smtp_port,
                settings.smtp_username,
                settings.smtp_password,
                settings.smtp_starttls,
                settings.smtp_from_address,
                timeout=settings.smtp_timeout_seconds,
                ssl_context=(
                    ssl.create_default_context(cafile=settings.smtp_ca_file)
                    if settings.smtp_ca_file
                    else None
                ),
            )
        )
    if settings.print_post_url and settings.print_post_token is not None:
        senders[Channel.PAPER] = PrintPostSender(
            settings.print_post_url,
            settings.print_post_token,
            defaults=PrintOptions(
                postage=settings.print_post_postage,
                colour=settings.print_post_colour,
                duplex=settings.print_post_duplex,
            ),
            timeout=timeout,
        )
    return senders
