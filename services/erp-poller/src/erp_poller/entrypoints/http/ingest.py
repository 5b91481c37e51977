"""Pushes: Sirvoy booking webhooks, Winner orders, on-premise agents' batches and customer
registers (see INGESTION.md). Each reads the body (at most ``MAX_BODY_BYTES``) and hands it
to a use case of `erp_poller.service.ingest`.

No `from __future__ import annotations` here: FastAPI reads the routes' real annotations.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from nordflow_runtime.http import request_deps
from nordflow_runtime.logs import log_context
from nordflow_schemas.common import SourceSystem
from nordflow_signing import BATCH_HEADER

from ...deps import Deps
from ...domain.connections import Connection, NotFoundError
from ...domain.pushed import InvalidPushError
from ...service import ingest

MAX_BODY_BYTES = 10 * 1024 * 1024

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])
AppDeps = Annotated[Deps, Depends(request_deps)]


async def _body(request: Request) -> bytes:
    """The raw body, refused with 413 beyond `MAX_BODY_BYTES` (before reading it, if declared)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"body exceeds {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@contextmanager
def _answers() -> Iterator[None]:
    """The use cases' refusals as HTTP answers."""
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ingest.PushRefusedError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    except InvalidPushError as exc:
        raise HTTPException(422, exc.detail) from None
    except ingest.BatchConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except ingest.UnsupportedMediaError as exc:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, str(exc)) from None


@asynccontextmanager
async def _push(
    deps: Deps,
    connection_id: str,
    system: SourceSystem,
    request: Request,
    *,
    signed: bool = True,
) -> AsyncIterator[tuple[Connection, bytes]]:
    """The connection a push names and the push's body, its signature checked (Sirvoy's
    webhooks are checked their own way); refusals become HTTP answers."""
    body = await _body(request)
    with _answers():
        try:
            connection = await ingest.push_connection(deps.uow, connection_id, system)
        except NotFoundError:
            # 401 as for a known connection's unsigned push, never a 404.
            ingest.refuse_unknown_push(system, request.headers, body)
        with log_context(connection.tenant_id, None):
            if signed:
                ingest.check_signature(deps.box, connection, request.headers, body)
            yield connection, body


@router.post("/sirvoy/{connection_id}")
async def sirvoy_webhook(connection_id: str, request: Request, deps: AppDeps) -> JSONResponse:
    """A Sirvoy booking event webhook; its invoices and payments become documents."""
    async with _push(deps, connection_id, SourceSystem.SIRVOY, request, signed=False) as (
        connection,
        body,
    ):
        answer = await ingest.ingest_sirvoy(
            deps.uow, deps.box, connection, request.headers, body, deps.clock()
        )
    return JSONResponse(answer)


@router.post("/winner/{connection_id}")
async def winner_push(connection_id: str, request: Request, deps: AppDeps) -> JSONResponse:
    """An accepted Winner quote: one order document per payment-calendar part."""
    async with _push(deps, connection_id, SourceSystem.WINNER, request) as (connection, body):
        answer = await ingest.ingest_winner(deps.uow, connection, body, deps.clock())
    return JSONResponse(answer)


@router.post("/batches/{connection_id}")
async def batch_push(connection_id: str, request: Request, deps: AppDeps) -> JSONResponse:
    """An on-premise agent's batch (JSON or SIE 4i): all or nothing, idempotent by id."""
    async with _push(deps, connection_id, SourceSystem.ON_PREMISE, request) as (
        connection,
        body,
    ):
        answer = await ingest.ingest_batch(
            deps.uow,
            connection,
            media_type=request.headers.get("content-type", "").split(";")[0].strip().lower(),
            batch_header=request.headers.get(BATCH_HEADER),
            body=body,
            now=deps.clock(),
        )
    return JSONResponse(answer.body, status_code=200 if answer.accepted else 422)


@router.put("/customers/{connection_id}")
async def customer_register_push(
    connection_id: str, request: Request, deps: AppDeps
) -> JSONResponse:
    """An on-premise agent's customer register (or part of it), upserted by number; SIE
    batches pushed afterwards carry each voucher's registered customer."""
    async with _push(deps, connection_id, SourceSystem.ON_PREMISE, request) as (
        connection,
        body,
    ):
        answer = await ingest.push_customer_register(deps.uow, connection, body)
    return JSONResponse(answer)
