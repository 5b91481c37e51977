"""The tenant API for the archive and holds: search and download sent documents, set hold
policies, attach files to held invoices and release them early (token-authenticated).

No `from __future__ import annotations` here: FastAPI must see the real types of the
routes' parameters, including the local `Tenant` dependency alias.
"""

import base64
import datetime as dt
import email.message
import email.parser
import mimetypes
import re
from collections.abc import Callable
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from nordflow_runtime.tenants import bearer_tenant, token_hash
from pydantic import BaseModel, ConfigDict, Field

from . import archive, holds

PoolProvider = Callable[[], asyncpg.Pool]

# A multipart body carries the file plus its part headers and boundaries.
MULTIPART_OVERHEAD = 64 * 1024

_REJECTED_STATUS = {
    "too_large": status.HTTP_413_CONTENT_TOO_LARGE,
    "type": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "content": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "filename": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "count": status.HTTP_409_CONFLICT,
}


# -- models -----------------------------------------------------------------------------------


class DocumentOut(BaseModel):
    """An archived document (its bytes are at ``content_url``)."""

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
    content_url: str


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


class HoldPolicyIn(BaseModel):
    """Hold new invoices for ``duration`` (ISO 8601 like ``P2D``/``PT36H``, or seconds)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    duration: dt.timedelta = Field(
        description="How long a new invoice is held, 1 minute to 90 days",
        ge=dt.timedelta(minutes=1),
        le=holds.MAX_HOLD,
    )


class HoldPolicyOut(BaseModel):
    """A hold policy: the tenant's default (``customer_key`` null) or one customer's."""

    customer_key: str | None
    enabled: bool
    duration: dt.timedelta
    duration_seconds: int
    updated_at: dt.datetime


class HoldOut(BaseModel):
    """A held invoice."""

    invoice_id: str
    customer_key: str
    held_at: dt.datetime
    held_until: dt.datetime
    released_at: dt.datetime | None
    released_by: str | None
    open: bool = Field(description="Whether files can still be attached")
    attachment_count: int


class AttachmentOut(BaseModel):
    """A file attached to a held invoice."""

    attachment_id: int
    invoice_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    added_at: dt.datetime


def _policy_out(policy: holds.HoldPolicy) -> HoldPolicyOut:
    return HoldPolicyOut(
        customer_key=policy.customer_key,
        enabled=policy.enabled,
        duration=policy.duration,
        duration_seconds=int(policy.duration.total_seconds()),
        updated_at=policy.updated_at,
    )


def _hold_out(hold: holds.Hold) -> HoldOut:
    return HoldOut(
        invoice_id=hold.invoice_id,
        customer_key=hold.customer_key,
        held_at=hold.held_at,
        held_until=hold.held_until,
        released_at=hold.released_at,
        released_by=hold.released_by,
        open=hold.is_open(dt.datetime.now(dt.UTC)),
        attachment_count=hold.attachment_count,
    )


def _attachment_out(info: holds.AttachmentInfo) -> AttachmentOut:
    return AttachmentOut(
        attachment_id=info.attachment_id,
        invoice_id=info.invoice_id,
        filename=info.filename,
        content_type=info.content_type,
        size=info.size,
        sha256=info.sha256,
        added_at=info.added_at,
    )


# -- uploads ----------------------------------------------------------------------------------


def _headers(text: str) -> email.message.Message:
    return email.parser.HeaderParser().parsestr(text)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"attachment is larger than the limit of {holds.MAX_ATTACHMENT_BYTES} bytes",
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _multipart_file(body: bytes, content_type: str) -> tuple[str, str, bytes]:
    """The first file part of a multipart/form-data body: filename, content type, bytes."""
    boundary = _headers(f"Content-Type: {content_type}\n\n").get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "multipart body without a boundary")
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        head, sep, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = _headers(head.decode("utf-8", "replace") + "\n\n")
        filename = headers.get_filename()
        if filename is not None:
            part_type = headers.get("content-type", "application/octet-stream")
            return filename, str(part_type), data.removesuffix(b"\r\n")
    raise HTTPException(
        status.HTTP_400_BAD_REQUEST, "multipart body has no file part (a part with a filename)"
    )


async def _upload(request: Request, filename: str | None) -> tuple[str, str, bytes]:
    """Filename, content type and bytes of an upload: multipart/form-data (``-F file=@x``),
    or the raw file as the body with its Content-Type and a ``filename`` query parameter or
    a ``Content-Disposition: attachment; filename=…`` header.
    """
    content_type = request.headers.get("content-type", "")
    if holds.media_type(content_type) == "multipart/form-data":
        body = await _read_body(request, holds.MAX_ATTACHMENT_BYTES + MULTIPART_OVERHEAD)
        return _multipart_file(body, content_type)
    if filename is None:
        disposition = request.headers.get("content-disposition")
        if disposition is not None:
            filename = _headers(f"Content-Disposition: {disposition}\n\n").get_filename()
    if filename is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "filename missing: give ?filename=…, a Content-Disposition header, or multipart",
        )
    if not content_type:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Content-Type missing: the file's type"
        )
    return filename, content_type, await _read_body(request, holds.MAX_ATTACHMENT_BYTES)


def _download_name(document: archive.ArchivedDocument) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{document.number}-{document.channel}")
    return stem + (mimetypes.guess_extension(document.content_type) or ".bin")


# -- routes -----------------------------------------------------------------------------------


def build_documents_api(
    pool_provider: PoolProvider, *, on_release: Callable[[], None] = lambda: None
) -> APIRouter:
    """The /api/v1 archive and hold routes; ``pool_provider`` is asked at request time.

    ``on_release`` is called after a release committed (e.g. wake the send job's worker).
    """
    router = APIRouter(prefix="/api/v1", tags=["documents", "holds"])
    Tenant = Annotated[str, Depends(bearer_tenant(pool_provider))]  # noqa: N806 - a type alias

    def pool() -> asyncpg.Pool:
        return pool_provider()

    def document_out(request: Request, doc: archive.ArchivedDocument) -> DocumentOut:
        return DocumentOut(
            sequence=doc.sequence,
            invoice_id=doc.invoice_id,
            number=doc.number,
            source_document_number=doc.source_document_number,
            channel=doc.channel,
            document_format=doc.document_format,
            content_type=doc.content_type,
            size=doc.size,
            sha256=doc.sha256,
            sent_at=doc.sent_at,
            issue_date=doc.issue_date,
            retain_until=doc.retain_until,
            archived_at=doc.archived_at,
            content_url=str(request.url_for("document_content", sequence=str(doc.sequence))),
        )

    # -- archive ------------------------------------------------------------------------------

    @router.get("/documents")
    async def list_documents(
        request: Request,
        tenant_id: Tenant,
        invoice_id: str | None = None,
        source_document_number: str | None = None,
        number: str | None = None,
        after: Annotated[int, Query(ge=0, description="Sequence to continue after")] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> DocumentPage:
        """The tenant's archived documents by sequence, filtered by any of the fields given."""
        async with pool().acquire() as conn:
            docs = await archive.find_documents(
                conn,
                tenant_id=tenant_id,
                invoice_id=invoice_id,
                source_document_number=source_document_number,
                number=number,
                after=after,
                limit=limit,
            )
        return DocumentPage(
            items=[document_out(request, d) for d in docs],
            next_after=docs[-1].sequence if len(docs) == limit else None,
        )

    @router.get("/documents/{sequence}")
    async def get_document(request: Request, sequence: int, tenant_id: Tenant) -> DocumentOut:
        """One archived document's entry."""
        async with pool().acquire() as conn:
            doc = await archive.get_document(conn, tenant_id=tenant_id, sequence=sequence)
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no archived document {sequence}")
        return document_out(request, doc)

    @router.get(
        "/documents/{sequence}/content",
        name="document_content",
        response_class=Response,
        responses={200: {"content": {"application/octet-stream": {}}}},
    )
    async def document_content(sequence: int, tenant_id: Tenant) -> Response:
        """The stored bytes as sent; `Repr-Digest` and `X-Content-SHA256` carry the checksum."""
        async with pool().acquire() as conn:
            found = await archive.document_content(conn, tenant_id=tenant_id, sequence=sequence)
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
    async def get_archive_settings(tenant_id: Tenant) -> ArchiveSettings:
        """The tenant's fiscal year (calendar year unless set)."""
        async with pool().acquire() as conn:
            month = await archive.fiscal_year_start_month(conn, tenant_id)
        return ArchiveSettings(fiscal_year_start_month=month)

    @router.put("/archive-settings")
    async def put_archive_settings(body: ArchiveSettings, tenant_id: Tenant) -> ArchiveSettings:
        """Set the fiscal year; documents already archived keep their ``retain_until``."""
        async with pool().acquire() as conn:
            await archive.set_fiscal_year_start_month(conn, tenant_id, body.fiscal_year_start_month)
        return body

    # -- hold policies ------------------------------------------------------------------------

    async def put_policy(
        tenant_id: str, customer_key: str | None, body: HoldPolicyIn
    ) -> HoldPolicyOut:
        async with pool().acquire() as conn:
            try:
                policy = await holds.set_policy(
                    conn,
                    tenant_id=tenant_id,
                    customer_key=customer_key,
                    enabled=body.enabled,
                    duration=body.duration,
                )
            except ValueError as exc:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        return _policy_out(policy)

    async def get_policy(tenant_id: str, customer_key: str | None) -> HoldPolicyOut:
        async with pool().acquire() as conn:
            policy = await holds.get_policy(conn, tenant_id=tenant_id, customer_key=customer_key)
        if policy is None:
            what = "the tenant" if customer_key is None else f"customer {customer_key!r}"
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no hold policy set for {what}")
        return _policy_out(policy)

    async def delete_policy(tenant_id: str, customer_key: str | None) -> Response:
        async with pool().acquire() as conn:
            deleted = await holds.delete_policy(
                conn, tenant_id=tenant_id, customer_key=customer_key
            )
        if not deleted:
            what = "the tenant" if customer_key is None else f"customer {customer_key!r}"
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no hold policy set for {what}")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.put("/hold-policies")
    async def put_tenant_policy(body: HoldPolicyIn, tenant_id: Tenant) -> HoldPolicyOut:
        """Set the tenant's default hold for new invoices."""
        return await put_policy(tenant_id, None, body)

    @router.get("/hold-policies")
    async def get_tenant_policy(tenant_id: Tenant) -> HoldPolicyOut:
        """The tenant's default hold."""
        return await get_policy(tenant_id, None)

    @router.delete("/hold-policies", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_tenant_policy(tenant_id: Tenant) -> Response:
        """Remove the tenant's default (new invoices are not held unless a customer's is)."""
        return await delete_policy(tenant_id, None)

    @router.get("/hold-policies/customers")
    async def list_customer_policies(tenant_id: Tenant) -> list[HoldPolicyOut]:
        """Every customer policy of the tenant."""
        async with pool().acquire() as conn:
            policies = await holds.customer_policies(conn, tenant_id=tenant_id)
        return [_policy_out(p) for p in policies]

    @router.put("/hold-policies/customers/{customer_key:path}")
    async def put_customer_policy(
        customer_key: str, body: HoldPolicyIn, tenant_id: Tenant
    ) -> HoldPolicyOut:
        """Set one customer's hold; it wins over the tenant's default (``enabled: false`` too).

        The customer key is the ERP's customer number, else the buyer's registration number,
        else its name.
        """
        return await put_policy(tenant_id, customer_key, body)

    @router.get("/hold-policies/customers/{customer_key:path}")
    async def get_customer_policy(customer_key: str, tenant_id: Tenant) -> HoldPolicyOut:
        """One customer's hold."""
        return await get_policy(tenant_id, customer_key)

    @router.delete(
        "/hold-policies/customers/{customer_key:path}", status_code=status.HTTP_204_NO_CONTENT
    )
    async def delete_customer_policy(customer_key: str, tenant_id: Tenant) -> Response:
        """Remove one customer's hold (it then follows the tenant's default)."""
        return await delete_policy(tenant_id, customer_key)

    # -- holds --------------------------------------------------------------------------------

    def hold_problem(exc: holds.HoldError) -> HTTPException:
        if isinstance(exc, holds.HoldNotFoundError):
            return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
        if isinstance(exc, holds.AttachmentRejectedError):
            return HTTPException(_REJECTED_STATUS[exc.problem], str(exc))
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))

    @router.get("/holds")
    async def list_holds(
        tenant_id: Tenant,
        after: Annotated[str | None, Query(description="Invoice id to continue after")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[HoldOut]:
        """The tenant's invoices held right now, by invoice id."""
        async with pool().acquire() as conn:
            found = await holds.open_holds(conn, tenant_id=tenant_id, after=after, limit=limit)
        return [_hold_out(h) for h in found]

    @router.get("/holds/{invoice_id}")
    async def get_hold(invoice_id: str, tenant_id: Tenant) -> HoldOut:
        """One held invoice (also after it left its hold)."""
        async with pool().acquire() as conn:
            try:
                hold = await holds.get_hold(conn, tenant_id=tenant_id, invoice_id=invoice_id)
            except holds.HoldError as exc:
                raise hold_problem(exc) from exc
        return _hold_out(hold)

    @router.post(
        "/holds/{invoice_id}/attachments",
        status_code=status.HTTP_201_CREATED,
        openapi_extra={
            "requestBody": {
                "description": "The file: multipart/form-data, or the raw bytes with their "
                "Content-Type and ?filename=",
                "content": {
                    **{kind: {} for kind in holds.ALLOWED_TYPES},
                    "multipart/form-data": {},
                },
            }
        },
    )
    async def add_attachment(
        request: Request,
        invoice_id: str,
        tenant_id: Tenant,
        filename: Annotated[str | None, Query(description="The file's name (raw body)")] = None,
    ) -> AttachmentOut:
        """Attach a file to a held invoice (PDF, PNG, JPEG, CSV, XLSX, ODS; at most 10 MiB)."""
        name, content_type, content = await _upload(request, filename)
        async with pool().acquire() as conn, conn.transaction():
            try:
                info = await holds.add_attachment(
                    conn,
                    tenant_id=tenant_id,
                    invoice_id=invoice_id,
                    filename=name,
                    content_type=content_type,
                    content=content,
                )
            except holds.HoldError as exc:
                raise hold_problem(exc) from exc
        return _attachment_out(info)

    @router.get("/holds/{invoice_id}/attachments")
    async def list_attachments(invoice_id: str, tenant_id: Tenant) -> list[AttachmentOut]:
        """The files attached to a held invoice, in the order added."""
        async with pool().acquire() as conn:
            try:
                infos = await holds.list_attachments(
                    conn, tenant_id=tenant_id, invoice_id=invoice_id
                )
            except holds.HoldError as exc:
                raise hold_problem(exc) from exc
        return [_attachment_out(i) for i in infos]

    @router.delete(
        "/holds/{invoice_id}/attachments/{attachment_id}",
        status_code=status.HTTP_204_NO_CONTENT,
    )
    async def remove_attachment(invoice_id: str, attachment_id: int, tenant_id: Tenant) -> Response:
        """Take a file off a held invoice while it is still held."""
        async with pool().acquire() as conn, conn.transaction():
            try:
                removed = await holds.remove_attachment(
                    conn, tenant_id=tenant_id, invoice_id=invoice_id, attachment_id=attachment_id
                )
            except holds.HoldError as exc:
                raise hold_problem(exc) from exc
        if not removed:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"invoice {invoice_id!r} has no attachment {attachment_id}",
            )
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post("/holds/{invoice_id}/release")
    async def release(request: Request, invoice_id: str, tenant_id: Tenant) -> HoldOut:
        """Send a held invoice now: its pending send job becomes due immediately."""
        header = request.headers.get("authorization", "")
        token = header.partition(" ")[2].strip()
        async with pool().acquire() as conn, conn.transaction():
            name = await conn.fetchval(
                "SELECT name FROM api_tokens WHERE token_hash = $1", token_hash(token)
            )
            try:
                hold = await holds.release_hold(
                    conn,
                    tenant_id=tenant_id,
                    invoice_id=invoice_id,
                    released_by=f"api token {name!r}",
                )
            except holds.HoldError as exc:
                raise hold_problem(exc) from exc
        on_release()
        return _hold_out(hold)

    return router
