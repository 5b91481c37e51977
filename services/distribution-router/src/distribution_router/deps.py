"""The one dependencies object distribution-router's entrypoints hand to its use cases.

Built once at start-up (`build_deps`, after the pool): the partner senders of the configured
channels, the renderers and the compiled validator, the PEPPOL participant lookup, the B2C
bank adapter as the consumer registry, the unit prices and the paper defaults from the
settings, and the repositories' factory. `aclose` closes the clients at shutdown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import cast

import asyncpg
from nordflow_documents.registry import RendererRegistry, default_registry
from nordflow_documents.validation import shared_validator
from nordflow_runtime.app import Resources
from nordflow_runtime.personal_data import PersonalData
from nordflow_runtime.processes import ProcessPool
from nordflow_schemas.events import Channel

from .adapters.channels.bounded import BoundedSender
from .adapters.channels.factory import build_senders
from .adapters.repositories import pg_repositories
from .adapters.smp import ParticipantLookup
from .config import Settings
from .domain.costs import DEFAULT_UNIT_PRICES
from .domain.costs import unit_prices as priced
from .domain.documents import PaperDefaults
from .service.ports import (
    CapabilityLookup,
    ConsumerRegistry,
    DocumentValidator,
    Partners,
    Repositories,
    Sender,
)


def utc_now() -> dt.datetime:
    """The current time, aware."""
    return dt.datetime.now(dt.UTC)


def unit_prices(settings: Settings) -> dict[Channel, Decimal]:
    """What one send costs per channel when the partner does not say (SEK).

    ``UNIT_PRICE_PEPPOL``, ``UNIT_PRICE_B2C_BANK``, ``UNIT_PRICE_EMAIL``, ``UNIT_PRICE_PAPER``
    replace the defaults when set.
    """
    return priced({c: getattr(settings, f"unit_price_{c.value}", None) for c in Channel})


def consumer_registry(senders: Mapping[Channel, Sender]) -> ConsumerRegistry | None:
    """The B2C bank adapter doubles as the registry of consumers who take bank e-invoices."""
    b2c = senders.get(Channel.B2C_BANK)
    if b2c is None or not hasattr(b2c, "registered"):
        return None
    return cast(ConsumerRegistry, b2c)


def paper_defaults(settings: Settings) -> PaperDefaults:
    """The service's paper settings (PRINT_POST_POSTAGE, _COLOUR, _DUPLEX)."""
    return PaperDefaults(
        postage=settings.print_post_postage,
        colour=settings.print_post_colour,
        duplex=settings.print_post_duplex,
    )


@dataclass
class Deps:
    """Partners, settings-derived values, the repositories' factory and the clock."""

    repositories: Callable[[asyncpg.Connection], Repositories]
    renderers: RendererRegistry
    validator: DocumentValidator
    senders: Mapping[Channel, Sender] = field(default_factory=dict)
    lookup: CapabilityLookup | None = None
    registry: ConsumerRegistry | None = None
    unit_prices: Mapping[Channel, Decimal] = field(default_factory=lambda: DEFAULT_UNIT_PRICES)
    suggestion_snooze: dt.timedelta = dt.timedelta(days=90)
    paper_defaults: PaperDefaults | None = None
    committed: Callable[[], None] = lambda: None  # wake the job workers after a commit
    clock: Callable[[], dt.datetime] = utc_now
    personal: PersonalData | None = None  # opens consumers' sealed personal numbers
    processes: ProcessPool | None = None

    @property
    def partners(self) -> Partners:
        """What routing and sending use of these dependencies."""
        return Partners(
            renderers=self.renderers,
            validator=self.validator,
            lookup=self.lookup,
            registry=self.registry,
            senders=self.senders,
            unit_prices=self.unit_prices,
            suggestion_snooze=self.suggestion_snooze,
            processes=self.processes,
        )

    async def aclose(self) -> None:
        """Close the participant lookup's and the senders' connections."""
        closing = getattr(self.lookup, "aclose", None)
        if closing is not None:
            await closing()
        for sender in self.senders.values():
            await sender.aclose()
        if self.processes is not None:
            await self.processes.aclose()


async def build_deps(resources: Resources) -> Deps:
    """The production dependencies (built once at start-up; nothing connects yet)."""
    settings = cast(Settings, resources.settings)
    senders = {
        channel: BoundedSender(sender, settings.send_per_channel)
        for channel, sender in build_senders(settings).items()
    }
    return Deps(
        repositories=partial(pg_repositories, pool=resources.pool),
        renderers=default_registry(),
        validator=shared_validator(),  # compile the rule files before the first invoice
        senders=senders,
        lookup=ParticipantLookup(
            smp_url=settings.smp_url,
            sml_zone=settings.sml_zone,
            ttl=settings.participant_cache_seconds,
        ),
        registry=consumer_registry(senders),
        unit_prices=unit_prices(settings),
        suggestion_snooze=dt.timedelta(days=settings.suggestion_snooze_days),
        paper_defaults=paper_defaults(settings),
        committed=resources.committed,
        personal=PersonalData(settings.personal_data_key) if settings.personal_data_key else None,
        processes=renderer_processes(settings.render_processes),
    )


def renderer_processes(count: int) -> ProcessPool | None:
    """Processes that render and validate documents; None: in the service's own process."""
    if count == 0:
        return None
    return ProcessPool(count, name="renderer")
