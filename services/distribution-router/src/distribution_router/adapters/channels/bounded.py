"""A sender that lets at most N sends (and look-ups) reach its partner at once."""

from __future__ import annotations

import asyncio

from nordflow_schemas.events import Channel

from .base import Outgoing, Receipt, Sender


class BoundedSender:
    """Wraps a channel's sender so concurrent send jobs never put more than ``limit`` calls
    on one partner at a time (its own limits stay the partner's; this keeps us polite)."""

    def __init__(self, sender: Sender, limit: int) -> None:
        self.inner = sender
        self.channel: Channel = sender.channel
        self.can_lookup = sender.can_lookup
        self._slots = asyncio.Semaphore(limit)

    async def send(self, outgoing: Outgoing) -> Receipt:
        """Send once, waiting for a slot."""
        async with self._slots:
            return await self.inner.send(outgoing)

    async def lookup(self, idempotency_key: str) -> Receipt | None:
        """Look an earlier send up, waiting for a slot."""
        async with self._slots:
            return await self.inner.lookup(idempotency_key)

    async def aclose(self) -> None:
        """Close the wrapped sender."""
        await self.inner.aclose()

    def __getattr__(self, name: str) -> object:
        # The B2C bank adapter doubles as the consumers' registry (`registered`).
        return getattr(self.inner, name)
