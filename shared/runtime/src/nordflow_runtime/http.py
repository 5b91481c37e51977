"""The HTTP side of every service: /healthz, /readyz, /metrics, plus its own API routes.

Every request passes the same edge (``build_http_app``): a body larger than the service's
limit is refused with 413 before it is read in full, a JSON body nested deeper than
``MAX_JSON_DEPTH`` with 400, both naming ``body``; a control character in the path or a
query parameter with 400/422 naming it, a NUL anywhere in a JSON body with 422; a request
that fails validation answers 422 with every bad field's ``loc`` and ``msg`` (never the
value sent back).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import parse_qsl

import asyncpg
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ReadinessCheck = Callable[[], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
"""A request body's default limit (a service raises it for some paths: erp-poller's pushes)."""
MAX_JSON_DEPTH = 32
"""How deeply a JSON body may nest objects and arrays."""

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_DEPTH_STEP = {ord("{"): 1, ord("["): 1, ord("}"): -1, ord("]"): -1}


def json_depth(body: bytes) -> int:
    """How deeply a JSON text nests objects and arrays (strings skipped), without parsing it."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, delete=_NOT_BRACKETS)
    return max(itertools.accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


_NOT_BRACKETS = bytes(b for b in range(256) if b not in _DEPTH_STEP)


def loads_bounded(body: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses a text nested deeper than ``max_depth`` (ValueError)."""
    raw = body.encode() if isinstance(body, str) else body
    if json_depth(raw) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(raw)


def _problem(loc: list[str], msg: str, kind: str) -> dict[str, Any]:
    return {"detail": [{"loc": loc, "msg": msg, "type": kind}]}


class RequestLimits:
    """ASGI middleware: the body's size (413) and a JSON body's nesting (400), per path prefix.

    The size is checked against ``Content-Length`` before anything is read and again while
    the body streams in, so a client that lies about it or sends chunks is stopped too.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int = MAX_BODY_BYTES,
        limits: Mapping[str, int] | None = None,
        max_depth: int = MAX_JSON_DEPTH,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Longest prefix first, so /api/v1/ingest/ wins over /api/v1/.
        self.limits = sorted((limits or {}).items(), key=lambda kv: -len(kv[0]))
        self.max_depth = max_depth

    def limit_for(self, path: str) -> int:
        """The body limit of a path."""
        return next((n for prefix, n in self.limits if path.startswith(prefix)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (refusal := _parameter_problem(scope)) is not None:
            status, loc, msg = refusal
            await self._refuse(send, status, msg, kind="value_error", loc=loc)
            return
        if scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(send, 413, f"the body exceeds {limit} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, 413, f"the body exceeds {limit} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        looks_json = content_type.endswith((b"/json", b"+json")) or body.lstrip()[:1] in (
            b"{",
            b"[",
        )
        if looks_json and _JSON_NUL.search(body):
            # PostgreSQL cannot store a NUL in text or jsonb: refused here for every field.
            await self._refuse(
                send, 422, "must not contain NUL characters (\\u0000)", kind="value_error"
            )
            return
        if looks_json and json_depth(body) > self.max_depth:
            await self._refuse(
                send, 400, f"JSON nested deeper than {self.max_depth} levels", kind="json_depth"
            )
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(
        send: Send,
        status: int,
        msg: str,
        *,
        kind: str = "body_too_large",
        loc: list[str] | None = None,
    ) -> None:
        content = json.dumps(_problem(loc or ["body"], msg, kind)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_JSON_NUL = re.compile(rb"\\u0000", re.IGNORECASE)
MAX_PARAMETER_LENGTH = 2000


def _parameter_problem(scope: Scope) -> tuple[int, list[str], str] | None:
    """A control character in the path or a query parameter (or an overlong one): the status,
    where, and why. Refused before any route sees it, for every service."""
    if _CONTROL.search(scope.get("path", "")):
        return 400, ["path"], "must not contain control characters"
    raw = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(raw, keep_blank_values=True):
        if _CONTROL.search(name) or _CONTROL.search(value):
            return 422, ["query", name], "must not contain control characters"
        if len(value) > MAX_PARAMETER_LENGTH:
            return 422, ["query", name], f"at most {MAX_PARAMETER_LENGTH} characters"
    return None


async def validation_failed(_: Request, exc: Exception) -> JSONResponse:
    """422 naming every bad field (``loc``, ``msg``, ``type``); the value sent is not echoed
    (it may be a secret given in the wrong field)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


def protect(
    app: FastAPI, *, max_bytes: int = MAX_BODY_BYTES, limits: Mapping[str, int] | None = None
) -> FastAPI:
    """Put the edge every service shares in front of an app: body and JSON limits, and the
    422 shape of validation errors."""
    app.add_middleware(RequestLimits, max_bytes=max_bytes, limits=limits)
    app.add_exception_handler(RequestValidationError, validation_failed)
    return app


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

MAX_ID = 2**63 - 1
PathId = Annotated[int, Path(ge=0, le=MAX_ID, description="A numeric id")]
"""A numeric id in a path, as PostgreSQL's bigint holds it (a larger one is a 422)."""
QueryOffset = Annotated[int, Query(ge=0, le=MAX_ID, description="Where to continue")]
"""An offset or cursor in a query string, within bigint."""


def build_http_app(
    service: str,
    checks: dict[str, ReadinessCheck],
    routers: Sequence[APIRouter] = (),
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """A FastAPI app with the probes and metrics, and the service's routers, behind the
    shared edge (``protect``): ``max_body_bytes`` for every path but the prefixes in
    ``body_limits``."""
    app = protect(
        FastAPI(title=service, version="0.1.0"), max_bytes=max_body_bytes, limits=body_limits
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                async with asyncio.timeout(3.0):
                    await check()
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
