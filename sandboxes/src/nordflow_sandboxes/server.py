"""Serving a sandbox app with uvicorn: in the foreground for the CLI, or in a test thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one, so there is no race for it.

    Made with its protocol named (`IPPROTO_TCP`): asyncio turns Nagle's algorithm off
    (`TCP_NODELAY`) only on connections of such a socket. Without it an answer written in
    two parts waited for the client's delayed acknowledgement, ~40 ms, on every request of
    a kept-alive connection after its first.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """The http base URL a bound socket serves."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _server(app: ASGIApp, log_level: str, access_log: bool) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level=log_level, access_log=access_log, lifespan="on")
    return uvicorn.Server(config)


def serve_forever(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    on_ready: Callable[[str], None],
    log_level: str = "warning",
    access_log: bool = False,
) -> None:
    """Serve until interrupted; `on_ready(base_url)` runs once the server accepts requests."""
    sock = bind_socket(host, port)
    server = _server(app, log_level, access_log)

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        # uvicorn exposes readiness only as a flag, so poll it.
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if server.started:
            on_ready(url_of(sock))
        await task

    try:
        asyncio.run(run())
    finally:
        sock.close()


class BackgroundServer:
    """A uvicorn server on a loopback port in a daemon thread (for tests)."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = bind_socket(host, port)
        self._server = _server(app, "warning", access_log=False)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self.base_url = url_of(self._sock)

    def start(self, timeout: float = 10.0) -> str:
        """Start serving and wait until requests are accepted; returns the base URL."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.01)
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish and wait for its thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.close()
