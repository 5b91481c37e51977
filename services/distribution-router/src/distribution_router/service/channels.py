"""The tenant's channel choices: overrides, suggestions of cheaper channels, deliveries."""

from __future__ import annotations

from nordflow_schemas.events import Channel, ChannelSuggestionDecided, SuggestionDecision

from ..domain.deliveries import DeliveryView, Override, Suggestion
from .ports import DeliveryRepository, OverrideRepository, Repositories, SuggestionRepository


class SuggestionNotFoundError(LookupError):
    """The tenant has no such suggestion."""


class SuggestionDecidedError(Exception):
    """The suggestion was accepted or dismissed before."""


class OverrideNotFoundError(LookupError):
    """The tenant has no such override."""


async def overrides(
    repo: OverrideRepository, tenant_id: str
) -> tuple[Override | None, list[Override]]:
    """The tenant's default channel and every customer's own channel."""
    found = await repo.list(tenant_id)
    default = [o for o in found if o.customer_key is None]
    return (default[0] if default else None), [o for o in found if o.customer_key is not None]


async def set_override(
    repo: OverrideRepository, tenant_id: str, customer_key: str | None, channel: Channel
) -> Override:
    """Set the default channel (no customer key) or one customer's channel."""
    return await repo.save(tenant_id, customer_key or None, channel)


async def delete_override(
    repo: OverrideRepository, tenant_id: str, customer_key: str | None
) -> None:
    """Remove one customer's channel, or the default; OverrideNotFoundError if none is set."""
    if not await repo.delete(tenant_id, customer_key or None):
        raise OverrideNotFoundError("no such override")


async def suggestions(repo: SuggestionRepository, tenant_id: str, state: str) -> list[Suggestion]:
    """The tenant's suggestions in a state (``all``: every one), newest first."""
    return await repo.list(tenant_id, state)


async def decide_suggestion(
    repos: Repositories,
    tenant_id: str,
    suggestion_id: int,
    decision: str,
    decided_by: str | None = None,
) -> Suggestion:
    """Accept (the channel becomes the customer's override) or dismiss an open suggestion,
    and announce it (``channel.suggestion_decided``, keyed like its ``channel.suggested``).

    Call it in a transaction: the suggestion stays locked until it ends, and the event is
    published only if it commits.
    """
    found = await repos.suggestions.lock(tenant_id, suggestion_id)
    if found is None:
        raise SuggestionNotFoundError("no such suggestion")
    if found.state != "open":
        raise SuggestionDecidedError(f"the suggestion is {found.state}")
    if decision == "accepted":
        await repos.overrides.save(tenant_id, found.customer_key, found.suggested_channel)
    decided = await repos.suggestions.decide(suggestion_id, decision)
    await repos.outbox.add(
        ChannelSuggestionDecided(
            tenant_id=tenant_id,
            invoice_id=decided.invoice_id,
            suggestion_id=decided.suggestion_id,
            decision=SuggestionDecision(decision),
            current_channel=decided.current_channel,
            suggested_channel=decided.suggested_channel,
            decided_by=decided_by,
            decided_at=decided.decided_at or decided.suggested_at,
        )
    )
    return decided


async def deliveries(
    repo: DeliveryRepository,
    tenant_id: str,
    *,
    invoice_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[DeliveryView]:
    """The tenant's deliveries with attempts, fallbacks and errors, newest first."""
    return await repo.views(tenant_id, invoice_id, status, limit)
