"""An HTTP request through httpx searches no module: httpcore asks `sniffio` which async
library runs on every lock and event it makes, and without it installed each of those was
a failed import, a search of the whole import path (about 1.5 ms of CPU per request)."""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

import httpx

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Searches(importlib.abc.MetaPathFinder):
    """Notes every module the import system searches for; finds none itself."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        self.names.append(fullname)
        return None


async def test_requests_on_a_kept_alive_connection_import_nothing() -> None:
    closed = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer every request of the kept-alive connection with 200 ok."""
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass  # the client closed it
        finally:
            writer.close()
            closed.set()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    searches = Searches()
    try:
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).text == "ok"  # the first: modules load once
            sys.meta_path.insert(0, searches)
            try:
                for _ in range(5):
                    assert (await client.get(url)).text == "ok"
            finally:
                sys.meta_path.remove(searches)
        await asyncio.wait_for(closed.wait(), 10)
    finally:
        server.close()
        await server.wait_closed()
    assert searches.names == []
