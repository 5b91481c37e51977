"""ProcessPool with real worker processes: results, errors, a worker that dies, cancellation,
the bound, and closing. The calls are standard-library functions, so that the spawned
workers can import them."""

from __future__ import annotations

import asyncio
import operator
import os
import signal
import threading
import time
from decimal import Decimal

import pytest
from nordflow_runtime.processes import ProcessPool, WorkerExitedError
from nordflow_runtime.testing import process_exited


async def test_a_call_runs_in_a_worker_process_and_returns_its_result() -> None:
    pool = ProcessPool(1)
    try:
        assert await pool.call(os.getpid) != os.getpid()
        assert await pool.call(operator.mul, Decimal("1.10"), 3) == Decimal("3.30")
        assert pool.processes == 1
    finally:
        await pool.aclose()


async def test_calls_at_once_run_in_at_most_size_processes() -> None:
    pool = ProcessPool(2)
    try:
        pids = await asyncio.gather(*(pool.call(os.getpid) for _ in range(8)))
        assert len(set(pids)) == 2
        assert pool.processes == 2
    finally:
        await pool.aclose()


async def test_the_calls_exception_is_raised_with_the_workers_traceback_and_the_worker_stays() -> (
    None
):
    pool = ProcessPool(1)
    try:
        pid = await pool.call(os.getpid)
        with pytest.raises(ZeroDivisionError) as raised:
            await pool.call(operator.truediv, 1, 0)
        assert any("in the worker process" in note for note in raised.value.__notes__)
        with pytest.raises(RuntimeError, match="the result cannot be pickled"):
            await pool.call(threading.Lock)
        assert await pool.call(os.getpid) == pid
    finally:
        await pool.aclose()


async def test_a_worker_killed_during_a_call_fails_that_call_and_the_next_starts_another() -> None:
    pool = ProcessPool(1)
    try:
        pid = await pool.call(os.getpid)
        call = asyncio.create_task(pool.call(time.sleep, 30))
        await asyncio.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerExitedError, match="killed by SIGKILL"):
            await call
        replacement = await pool.call(os.getpid)
        assert replacement != pid
        assert pool.processes == 1
    finally:
        await pool.aclose()


async def test_a_worker_that_died_while_idle_is_replaced_before_a_call_is_sent_to_it() -> None:
    pool = ProcessPool(1)
    try:
        pid = await pool.call(os.getpid)
        os.kill(pid, signal.SIGKILL)
        assert await process_exited(pid)
        assert await pool.call(operator.add, 2, 3) == 5
        assert await pool.call(os.getpid) != pid
    finally:
        await pool.aclose()


async def test_a_cancelled_call_takes_its_worker_with_it() -> None:
    pool = ProcessPool(1)
    try:
        pid = await pool.call(os.getpid)
        call = asyncio.create_task(pool.call(time.sleep, 30))
        await asyncio.sleep(0.2)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await process_exited(pid)
        # No late answer of the cancelled call reaches the next caller.
        assert await pool.call(operator.add, 2, 3) == 5
    finally:
        await pool.aclose()


async def test_closing_stops_every_worker_and_fails_a_call_still_running() -> None:
    pool = ProcessPool(2)
    pids = set(await asyncio.gather(pool.call(os.getpid), pool.call(os.getpid)))
    busy = asyncio.create_task(pool.call(time.sleep, 30))
    await asyncio.sleep(0.2)
    assert pool.processes == 2
    await pool.aclose()
    with pytest.raises(WorkerExitedError):
        await busy
    assert len(pids) == 2
    assert all([await process_exited(pid) for pid in pids])
    assert pool.processes == 0
    with pytest.raises(RuntimeError, match="closed"):
        await pool.call(os.getpid)


def _only_in_this_process() -> int:
    return 1


async def test_a_call_the_worker_cannot_read_fails_and_the_worker_stays() -> None:
    # pytest imports this module by path: a spawned worker cannot import it by its name.
    pool = ProcessPool(1)
    try:
        pid = await pool.call(os.getpid)
        with pytest.raises(ModuleNotFoundError):
            await pool.call(_only_in_this_process)
        assert await pool.call(os.getpid) == pid
    finally:
        await pool.aclose()


def test_a_pool_needs_a_process() -> None:
    with pytest.raises(ValueError, match="at least one process"):
        ProcessPool(0)
