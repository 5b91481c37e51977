"""The outbox relay's back-off after a failure: capped, and cut short by a commit (which
proves the database answers again), so an outage of minutes costs no long sleep after it."""

from __future__ import annotations

import asyncio
from typing import Any

from nordflow_runtime.outbox import OutboxRelay


class FailingRelay(OutboxRelay):
    """A relay whose batches fail until ``back`` is set; it records each try."""

    def __init__(self) -> None:
        super().__init__(pool=None, producer=None, schema="test", retry_max=60.0)  # type: ignore[arg-type]
        self.back = False
        self.tries = 0
        self.tried = asyncio.Event()

    async def publish_batch(self) -> int:
        self.tries += 1
        self.tried.set()
        if not self.back:
            raise ConnectionError("the database is away")
        return 0

    async def count(self) -> None:
        return None


async def test_a_commit_wakes_the_relay_out_of_its_back_off() -> None:
    relay = FailingRelay()
    relay.health.failures = 20  # long down: the next wait would be the cap, a minute
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.wait_for(relay.tried.wait(), 5)
        relay.tried.clear()
        assert relay.tries == 1
        relay.back = True
        relay.notify()  # a transaction committed: the database answers again
        await asyncio.wait_for(relay.tried.wait(), 5)  # far less than the minute
        assert relay.tries == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_the_back_off_is_capped_at_five_seconds_by_default() -> None:
    relay: Any = OutboxRelay(pool=None, producer=None, schema="test")  # type: ignore[arg-type]
    assert relay.retry_max == 5.0
