"""Worker processes for a service's CPU work, on sockets its event loop reads itself.

`ProcessPool.call(fn, *args)` runs ``fn(*args)`` in one of up to ``size`` worker processes
and returns its result (or raises its exception) in the caller's task. Each worker runs
one call at a time. The call and its answer travel over a socket pair as one pickled,
length-prefixed frame each way, sent and read by the event loop itself:
`concurrent.futures.ProcessPoolExecutor` passes each call through a manager thread, a
queue's feeder thread and a wake-up of the loop, which cost the caller's process ~0.4 ms
of CPU per call (docs/performance.md, change 19).

A worker that dies (killed, out of memory, a crash in native code) fails only the call it
was running, with `WorkerExitedError`; the next call starts another worker. (A
`ProcessPoolExecutor` whose worker died is broken for good: every later call fails until
the service restarts.)
A call cancelled while it runs (the job's lease lost, shutdown) takes its worker with it,
so that no late answer can reach the next caller.

Workers are spawned, not forked (a service's process runs threads and sockets a fork would
copy half-way), when a call finds none idle; they ignore SIGINT (the service stops them)
and exit when the service's end of their socket closes, also when the service dies.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import signal
import socket
import struct
import traceback
from collections.abc import Callable
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, Final, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_LENGTH: Final = struct.Struct("!Q")
_STOP_SECONDS: Final = 5.0


class WorkerExitedError(RuntimeError):
    """The worker process running the call exited before it answered."""


class _Worker:
    """One worker process and the service's end of its socket."""

    def __init__(self, context: BaseContext, name: str) -> None:
        ours, theirs = socket.socketpair()
        self.process: BaseProcess = context.Process(  # type: ignore[attr-defined]
            target=_serve, args=(theirs,), name=name, daemon=True
        )
        try:
            self.process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self.socket = ours

    def stop(self) -> None:
        """Close our end (the worker exits when it sees it) and kill it if it runs a call."""
        self.socket.close()
        if self.process.is_alive():
            self.process.kill()


class ProcessPool:
    """Up to ``size`` worker processes, each running one call at a time (module docstring)."""

    def __init__(
        self, size: int, *, name: str = "worker", context: BaseContext | None = None
    ) -> None:
        if size < 1:
            raise ValueError(f"a process pool needs at least one process, not {size}")
        self.size = size
        self._name = name
        self._context = context or multiprocessing.get_context("spawn")
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._started = 0
        self._closed = False

    @property
    def processes(self) -> int:
        """Worker processes alive now (started on demand, up to ``size``)."""
        return len(self._workers)

    async def call(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(*args)`` in a worker process: its result, or its exception raised here."""
        frame = _frame(pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL))
        async with self._slots:
            if self._closed:
                raise RuntimeError("the process pool is closed")
            worker = self._take()
            answered = False
            try:
                answer = await self._exchange(worker, frame)
                answered = True
            finally:
                if answered and not self._closed:
                    self._idle.append(worker)
                else:
                    self._discard(worker)
        ok, value = pickle.loads(answer)  # noqa: S301 - our worker's, over our socket pair
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    async def aclose(self) -> None:
        """Stop every worker: idle ones exit on their own, busy ones are killed."""
        self._closed = True
        idle, workers = self._idle, list(self._workers)
        self._idle = []
        self._workers.clear()
        for worker in workers:
            if worker in idle:
                worker.socket.close()
            else:  # its call fails (WorkerExitedError) and closes the socket itself
                worker.process.kill()
        await asyncio.to_thread(_join_all, workers)

    def _take(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.process.is_alive():
                return worker
            self._discard(worker, reason=f"exited while idle ({_exit(worker.process)})")
        self._started += 1
        worker = _Worker(self._context, f"{self._name}-{self._started}")
        self._workers.add(worker)
        return worker

    async def _exchange(self, worker: _Worker, frame: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(worker.socket, frame)
            header = await _receive(loop, worker.socket, _LENGTH.size)
            return await _receive(loop, worker.socket, _LENGTH.unpack(header)[0])
        except (EOFError, OSError) as exc:
            await asyncio.to_thread(worker.process.join, 1.0)
            error = WorkerExitedError(
                f"the {worker.process.name} process exited during the call"
                f" ({_exit(worker.process)}); the next call starts another"
            )
            log.warning("%s", error)
            raise error from exc

    def _discard(self, worker: _Worker, reason: str = "") -> None:
        self._workers.discard(worker)
        worker.stop()
        if reason:
            log.warning("worker process %s %s", worker.process.name, reason)


def _frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


async def _receive(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes; EOFError when the worker's end closes first."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = await loop.sock_recv_into(sock, view[got:])
        if n == 0:
            raise EOFError("the worker's socket closed")
        got += n
    return bytes(buffer)


def _exit(process: BaseProcess) -> str:
    code = process.exitcode
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _join_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.process.join(_STOP_SECONDS)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(_STOP_SECONDS)


# ------------------------------------------------------------------------ the worker's side


def _serve(sock: socket.socket) -> None:
    """A worker's loop: read a call, run it, answer; return when the service's end closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with sock:
        while True:
            try:
                header = _read(sock, _LENGTH.size)
                call = _read(sock, _LENGTH.unpack(header)[0])
            except EOFError:
                return
            try:
                fn, args = pickle.loads(call)  # noqa: S301 - the service's, over our socket pair
                answer = (True, fn(*args))
            except Exception as exc:  # the caller gets it, with this process's traceback
                answer = (False, _portable(exc))
            try:
                payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                unpicklable = RuntimeError(f"the result cannot be pickled: {exc}")
                payload = pickle.dumps((False, unpicklable))
            try:
                sock.sendall(_frame(payload))
            except OSError:
                return


def _read(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError
        got += n
    return bytes(buffer)


def _portable(exc: Exception) -> Exception:
    """The exception, with the worker's traceback as a note, if it survives pickling."""
    exc.add_note("in the worker process:\n" + "".join(traceback.format_exception(exc)).rstrip())
    try:
        pickle.loads(pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL))  # noqa: S301 - our own
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc
