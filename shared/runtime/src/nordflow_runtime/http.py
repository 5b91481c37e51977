"""The HTTP side of every service: /healthz, /readyz, /metrics, plus its own API routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Annotated, Any

import asyncpg
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadinessCheck = Callable[[], Awaitable[None]]


def request_pool(request: Request) -> asyncpg.Pool:
    """A FastAPI dependency: the service's database pool (set by ``ServiceApp.run``)."""
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def request_deps(request: Request) -> Any:
    """A FastAPI dependency: the service's dependencies object (set by ``ServiceApp.run``).

    A service declares its own typed alias, e.g. ``Deps = Annotated[MyDeps,
    Depends(request_deps)]``.
    """
    return request.app.state.deps


Pool = Annotated[asyncpg.Pool, Depends(request_pool)]


def build_http_app(
    service: str, checks: dict[str, ReadinessCheck], routers: Sequence[APIRouter] = ()
) -> FastAPI:
    """A FastAPI app with the probes and metrics, and the service's routers."""
    app = FastAPI(title=service, version="0.1.0")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=3.0)
                results[name] = "ok"
            except Exception as exc:  # a probe reports, it never raises
                results[name] = f"unavailable: {type(exc).__name__}"
        ready = all(v == "ok" for v in results.values())
        return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the service's own event loop; the service owns signal handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave SIGTERM/SIGINT to the service runner."""
        yield


def http_server(app: FastAPI, host: str, port: int) -> EmbeddedServer:
    """A server to run as a task; set ``should_exit`` to stop it."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    return EmbeddedServer(config)
