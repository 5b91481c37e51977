"""The scheduler's loops: sync requests and due polls in one, backfills in another, each step
a use case of `erp_poller.service.polling`; and the start-up steps: the sellers connections
carried before profiles existed become profiles, connections never published are published."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..adapters.source_cache import SourceCache
from ..deps import Deps
from ..service import connections, polling, profiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Steps:
    """One piece of work each: True if there was some."""

    deps: Deps

    @property
    def sources(self) -> SourceCache:
        """The sources the steps use."""
        return self.deps.sources

    async def poll_one(self) -> bool:
        """Poll one due connection."""
        d = self.deps
        return await polling.poll_next(d.uow, d.sources, d.schedule, d.clock)

    async def sync_one(self) -> bool:
        """Run the oldest pending sync request."""
        return await polling.sync_next(self.deps.uow, self.deps.sources, self.deps.clock)

    async def backfill_one(self) -> bool:
        """Run (or resume) the oldest due backfill."""
        return await polling.backfill_next(self.deps.uow, self.deps.sources, self.deps.clock)


async def _schedule(deps: Deps, *steps: Callable[[], Awaitable[bool]]) -> None:
    """Run the first step that has work, again at once; when none has, wait for a tick or a
    wake-up (a new connection, sync or backfill request)."""
    while True:
        busy = False
        try:
            for step in steps:
                if await step():
                    busy = True
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler tick failed")
        if not busy:
            with contextlib.suppress(TimeoutError):
                # not wait_for: on Python 3.11 it can swallow a cancellation
                async with asyncio.timeout(deps.tick_seconds):
                    await deps.wakeup.wait()
            deps.wakeup.clear()


async def polls(deps: Deps) -> None:
    """Sync requests first, then due polls."""
    steps = Steps(deps)
    await _schedule(deps, steps.sync_one, steps.poll_one)


async def backfills(deps: Deps) -> None:
    """Backfills (long: apart, so polls of other connections go on meanwhile)."""
    await _schedule(deps, Steps(deps).backfill_one)


async def adopt_legacy_sellers(deps: Deps) -> None:
    """Profiles for tenants whose connections carried a seller before profiles existed."""
    adopted = await profiles.adopt_legacy_sellers(deps.uow, deps.clock)
    if adopted:
        log.info("%d tenant profile(s) created from their connections' sellers", adopted)


async def announce_connections(deps: Deps) -> None:
    """Publish on connection.updated the connections added before it existed."""
    announced = await connections.announce_unpublished(deps.uow, deps.clock)
    if announced:
        log.info("%d connection(s) published on connection.updated", announced)
