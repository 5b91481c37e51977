"""The archive: search and download sent documents; the tenant's fiscal year."""

import base64
import datetime as dt
import mimetypes
import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from nordflow_runtime.http import MAX_ID, PathId, Pool
from nordflow_runtime.tenants import Tenant
from pydantic import BaseModel, ConfigDict, Field

from ...domain.archive import ArchivedDocument
from ...service import archive
from .common import AppDeps

router = APIRouter(prefix="/api/v1", tags=["documents"])


class DocumentOut(BaseModel):
    """An archived document (its bytes are at ``content_url``, a path on this API: links are
    never built from the request's ``Host`` header, which the client chooses)."""

    sequence: int = Field(description="The tenant's archive number, 1, 2, 3 … without gaps")
    invoice_id: str
    number: str = Field(description="The invoice number the recipient sees")
    source_document_number: str | None
    channel: str
    document_format: str
    content_type: str
    size: int
    sha256: str = Field(description="Hex SHA-256 of the stored bytes")
    sent_at: dt.datetime
    issue_date: dt.date
    retain_until: dt.date = Field(description="Kept at least through this day")
    archived_at: dt.datetime
    content_url: str = Field(description="The path of the stored bytes on this API")

    @classmethod
    def of(cls, request: Request, doc: ArchivedDocument) -> "DocumentOut":
        """The API's view, with the path of its bytes."""
        return cls(
            **vars(doc),
            content_url=request.app.url_path_for("document_content", sequence=str(doc.sequence)),
        )


class DocumentPage(BaseModel):
    """One page of documents; ask again with ``after=next_after`` while it is set."""

    items: list[DocumentOut]
    next_after: int | None


class ArchiveSettings(BaseModel):
    """The tenant's fiscal year, for the retention rule of documents archived from now on."""

    model_config = ConfigDict(extra="forbid")

    fiscal_year_start_month: int = Field(
        ge=1, le=12, description="The fiscal year starts on the 1st of this month (1 = January)"
    )


def _download_name(document: ArchivedDocument) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{document.number}-{document.channel}")
    return stem + (mimetypes.guess_extension(document.content_type) or ".bin")


@router.get("/documents")
async def list_documents(
    request: Request,
    tenant_id: Tenant,
    deps: AppDeps,
    pool: Pool,
    invoice_id: str | None = None,
    source_document_number: str | None = None,
    number: str | None = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Sequence to continue after")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DocumentPage:
    """The tenant's archived documents by sequence, filtered by any of the fields given."""
    async with pool.acquire() as conn:
        docs = await archive.find_documents(
            deps.repositories(conn).archive,
            tenant_id=tenant_id,
            invoice_id=invoice_id,
            source_document_number=source_document_number,
            number=number,
            after=after,
            limit=limit,
        )
    return DocumentPage(
        items=[DocumentOut.of(request, d) for d in docs],
        next_after=docs[-1].sequence if len(docs) == limit else None,
    )


@router.get("/documents/{sequence}")
async def get_document(
    request: Request, sequence: PathId, tenant_id: Tenant, deps: AppDeps, pool: Pool
) -> DocumentOut:
    """One archived document's entry."""
    async with pool.acquire() as conn:
        doc = await archive.get_document(
            deps.repositories(conn).archive, tenant_id=tenant_id, sequence=sequence
        )
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no archived document {sequence}")
    return DocumentOut.of(request, doc)


@router.get(
    "/documents/{sequence}/content",
    name="document_content",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def document_content(
    sequence: PathId, tenant_id: Tenant, deps: AppDeps, pool: Pool
) -> Response:
    """The stored bytes as sent; `Repr-Digest` and `X-Content-SHA256` carry the checksum."""
    async with pool.acquire() as conn:
        found = await archive.document_content(
            deps.repositories(conn).archive, tenant_id=tenant_id, sequence=sequence
        )
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no archived document {sequence}")
    doc, content = found
    digest = base64.b64encode(bytes.fromhex(doc.sha256)).decode()
    return Response(
        content,
        media_type=doc.content_type,
        headers={
            "Repr-Digest": f"sha-256=:{digest}:",
            "X-Content-SHA256": doc.sha256,
            "ETag": f'"{doc.sha256}"',
            "Content-Disposition": f'inline; filename="{_download_name(doc)}"',
        },
    )


@router.get("/archive-settings")
async def get_archive_settings(tenant_id: Tenant, deps: AppDeps, pool: Pool) -> ArchiveSettings:
    """The tenant's fiscal year (calendar year unless set)."""
    async with pool.acquire() as conn:
        month = await archive.fiscal_year_start_month(deps.repositories(conn).archive, tenant_id)
    return ArchiveSettings(fiscal_year_start_month=month)


@router.put("/archive-settings")
async def put_archive_settings(
    body: ArchiveSettings, tenant_id: Tenant, deps: AppDeps, pool: Pool
) -> ArchiveSettings:
    """Set the fiscal year; documents already archived keep their ``retain_until``."""
    async with pool.acquire() as conn:
        await archive.set_fiscal_year_start_month(
            deps.repositories(conn).archive, tenant_id, body.fiscal_year_start_month
        )
    return body
