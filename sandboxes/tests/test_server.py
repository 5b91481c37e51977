"""The sandboxes' listening sockets: connections are served with Nagle's algorithm off."""

from __future__ import annotations

import asyncio
import socket

from nordflow_sandboxes.server import bind_socket


async def test_a_connection_to_a_sandbox_socket_has_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only on connections of a socket made with IPPROTO_TCP; with
    Nagle on, each request of a kept-alive connection but the first waited ~40 ms for the
    client's delayed acknowledgement before the rest of its answer came."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[int] = loop.create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    listening = bind_socket("127.0.0.1", 0)
    assert listening.proto == socket.IPPROTO_TCP
    server = await loop.create_server(Probe, sock=listening)
    try:
        port = listening.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(accepted, 5) == 1
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
