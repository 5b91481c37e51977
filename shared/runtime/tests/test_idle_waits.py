"""An idle job loop stops when it is cancelled, even in the moment it is woken.

On Python 3.11 ``asyncio.wait_for`` returns the awaited result when a cancellation comes as
it completes, so a loop waiting for a wake-up with it ran on after its stop was asked (a
test of the job leases hung in CI that way). The loops wait with ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nordflow_runtime import jobs


async def _never(_run: Any, _job: Any) -> dict[str, Any]:
    raise AssertionError("no job is due")


async def test_an_idle_job_loop_stops_when_cancelled_as_it_is_woken() -> None:
    worker = jobs.JobWorker(None, "svc", "send", _never, idle_seconds=30)  # type: ignore[arg-type]

    async def nothing_due() -> bool:
        return False

    worker.run_one = nothing_due  # type: ignore[method-assign]
    task = asyncio.create_task(worker._loop())
    await asyncio.sleep(0.05)  # the loop now waits for a wake-up
    worker.notify()
    task.cancel()  # in the same turn of the event loop as the wake-up
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done, "the loop ran on after it was cancelled"
    assert task.cancelled()
