"""Holds: hold policies, files attached to held invoices, and releasing them early."""

import datetime as dt
import email.message
import email.parser
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from nordflow_runtime.http import PathId, Pool
from nordflow_runtime.tenants import Tenant
from nordflow_schemas.events import HoldReason
from pydantic import BaseModel, ConfigDict, Field

from ...domain import holds as rules
from ...service import holds as service
from .common import AppDeps, token_name

router = APIRouter(prefix="/api/v1", tags=["holds"])

# A multipart body carries the file plus its part headers and boundaries.
MULTIPART_OVERHEAD = 64 * 1024
ATTACHMENT_BODY_LIMIT = rules.MAX_ATTACHMENT_BYTES + MULTIPART_OVERHEAD
"""The largest body under /api/v1/holds/ (the runtime's edge refuses more with 413)."""

_REJECTED_STATUS = {
    "too_large": status.HTTP_413_CONTENT_TOO_LARGE,
    "type": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "content": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "filename": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "count": status.HTTP_409_CONFLICT,
}


# -- models -----------------------------------------------------------------------------------


class HoldPolicyIn(BaseModel):
    """Hold new invoices for ``duration`` (ISO 8601 like ``P2D``/``PT36H``, or seconds)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    duration: dt.timedelta = Field(
        description="How long a new invoice is held, 1 minute to 90 days",
        ge=dt.timedelta(minutes=1),
        le=rules.MAX_HOLD,
    )


class HoldPolicyOut(BaseModel):
    """A hold policy: the tenant's default (``customer_key`` null) or one customer's."""

    customer_key: str | None
    enabled: bool
    duration: dt.timedelta
    duration_seconds: int
    updated_at: dt.datetime

    @classmethod
    def of(cls, policy: rules.HoldPolicy) -> "HoldPolicyOut":
        """The API's view."""
        return cls(
            customer_key=policy.customer_key,
            enabled=policy.enabled,
            duration=policy.duration,
            duration_seconds=int(policy.duration.total_seconds()),
            updated_at=policy.updated_at,
        )


class HoldOut(BaseModel):
    """A held invoice."""

    invoice_id: str
    number: str | None = Field(description="The invoice's number")
    customer_key: str
    reason: HoldReason | None = Field(description="The policy that held it")
    held_at: dt.datetime
    held_until: dt.datetime
    released_at: dt.datetime | None
    released_by: str | None
    open: bool = Field(description="Whether files can still be attached")
    attachment_count: int

    @classmethod
    def of(cls, hold: rules.Hold, now: dt.datetime) -> "HoldOut":
        """The API's view at ``now``."""
        return cls(
            invoice_id=hold.invoice_id,
            number=hold.number,
            customer_key=hold.customer_key,
            reason=hold.reason,
            held_at=hold.held_at,
            held_until=hold.held_until,
            released_at=hold.released_at,
            released_by=hold.released_by,
            open=hold.is_open(now),
            attachment_count=hold.attachment_count,
        )


class AttachmentOut(BaseModel):
    """A file attached to a held invoice."""

    attachment_id: int
    invoice_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    added_at: dt.datetime

    @classmethod
    def of(cls, info: rules.AttachmentInfo) -> "AttachmentOut":
        """The API's view."""
        return cls(**vars(info))


def hold_problem(exc: rules.HoldError) -> HTTPException:
    """The HTTP status of a hold use case's error."""
    if isinstance(exc, rules.HoldNotFoundError):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, rules.AttachmentRejectedError):
        return HTTPException(_REJECTED_STATUS[exc.problem], str(exc))
    return HTTPException(status.HTTP_409_CONFLICT, str(exc))


# -- uploads ----------------------------------------------------------------------------------


def _headers(text: str) -> email.message.Message:
    return email.parser.HeaderParser().parsestr(text)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"attachment is larger than the limit of {rules.MAX_ATTACHMENT_BYTES} bytes",
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
    if rules.media_type(content_type) == "multipart/form-data":
        body = await _read_body(request, rules.MAX_ATTACHMENT_BYTES + MULTIPART_OVERHEAD)
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
    return filename, content_type, await _read_body(request, rules.MAX_ATTACHMENT_BYTES)


# -- hold policies ----------------------------------------------------------------------------


async def _put_policy(
    deps: AppDeps, pool: Pool, tenant_id: str, customer_key: str | None, body: HoldPolicyIn
) -> HoldPolicyOut:
    async with pool.acquire() as conn:
        try:
            policy = await service.set_policy(
                deps.repositories(conn).holds,
                tenant_id=tenant_id,
                customer_key=customer_key,
                enabled=body.enabled,
                duration=body.duration,
            )
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return HoldPolicyOut.of(policy)


def _no_policy(customer_key: str | None) -> HTTPException:
    what = "the tenant" if customer_key is None else f"customer {customer_key!r}"
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no hold policy set for {what}")


async def _get_policy(
    deps: AppDeps, pool: Pool, tenant_id: str, customer_key: str | None
) -> HoldPolicyOut:
    async with pool.acquire() as conn:
        policy = await service.get_policy(
            deps.repositories(conn).holds, tenant_id=tenant_id, customer_key=customer_key
        )
    if policy is None:
        raise _no_policy(customer_key)
    return HoldPolicyOut.of(policy)


async def _delete_policy(
    deps: AppDeps, pool: Pool, tenant_id: str, customer_key: str | None
) -> Response:
    async with pool.acquire() as conn:
        deleted = await service.delete_policy(
            deps.repositories(conn).holds, tenant_id=tenant_id, customer_key=customer_key
        )
    if not deleted:
        raise _no_policy(customer_key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/hold-policies")
async def put_tenant_policy(
    body: HoldPolicyIn, tenant_id: Tenant, deps: AppDeps, pool: Pool
) -> HoldPolicyOut:
    """Set the tenant's default hold for new invoices."""
    return await _put_policy(deps, pool, tenant_id, None, body)


@router.get("/hold-policies")
async def get_tenant_policy(tenant_id: Tenant, deps: AppDeps, pool: Pool) -> HoldPolicyOut:
    """The tenant's default hold."""
    return await _get_policy(deps, pool, tenant_id, None)


@router.delete("/hold-policies", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tenant_policy(tenant_id: Tenant, deps: AppDeps, pool: Pool) -> Response:
    """Remove the tenant's default (new invoices are not held unless a customer's is)."""
    return await _delete_policy(deps, pool, tenant_id, None)


@router.get("/hold-policies/customers")
async def list_customer_policies(
    tenant_id: Tenant, deps: AppDeps, pool: Pool
) -> list[HoldPolicyOut]:
    """Every customer policy of the tenant."""
    async with pool.acquire() as conn:
        policies = await service.customer_policies(
            deps.repositories(conn).holds, tenant_id=tenant_id
        )
    return [HoldPolicyOut.of(p) for p in policies]


@router.put("/hold-policies/customers/{customer_key:path}")
async def put_customer_policy(
    customer_key: str, body: HoldPolicyIn, tenant_id: Tenant, deps: AppDeps, pool: Pool
) -> HoldPolicyOut:
    """Set one customer's hold; it wins over the tenant's default (``enabled: false`` too).

    The customer key is the ERP's customer number, else the buyer's registration number,
    else its name.
    """
    return await _put_policy(deps, pool, tenant_id, customer_key, body)


@router.get("/hold-policies/customers/{customer_key:path}")
async def get_customer_policy(
    customer_key: str, tenant_id: Tenant, deps: AppDeps, pool: Pool
) -> HoldPolicyOut:
    """One customer's hold."""
    return await _get_policy(deps, pool, tenant_id, customer_key)


@router.delete(
    "/hold-policies/customers/{customer_key:path}", status_code=status.HTTP_204_NO_CONTENT
)
async def delete_customer_policy(
    customer_key: str, tenant_id: Tenant, deps: AppDeps, pool: Pool
) -> Response:
    """Remove one customer's hold (it then follows the tenant's default)."""
    return await _delete_policy(deps, pool, tenant_id, customer_key)


# -- holds ------------------------------------------------------------------------------------


@router.get("/holds")
async def list_holds(
    tenant_id: Tenant,
    deps: AppDeps,
    pool: Pool,
    after: Annotated[str | None, Query(description="Invoice id to continue after")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[HoldOut]:
    """The tenant's invoices held right now, by invoice id."""
    async with pool.acquire() as conn:
        found = await service.open_holds(
            deps.repositories(conn).holds, tenant_id=tenant_id, after=after, limit=limit
        )
    now = deps.clock()
    return [HoldOut.of(h, now) for h in found]


@router.get("/holds/{invoice_id}")
async def get_hold(invoice_id: str, tenant_id: Tenant, deps: AppDeps, pool: Pool) -> HoldOut:
    """One held invoice (also after it left its hold)."""
    async with pool.acquire() as conn:
        try:
            hold = await service.get_hold(
                deps.repositories(conn).holds, tenant_id=tenant_id, invoice_id=invoice_id
            )
        except rules.HoldError as exc:
            raise hold_problem(exc) from exc
    return HoldOut.of(hold, deps.clock())


@router.post(
    "/holds/{invoice_id}/attachments",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "description": "The file: multipart/form-data, or the raw bytes with their "
            "Content-Type and ?filename=",
            "content": {
                **{kind: {} for kind in rules.ALLOWED_TYPES},
                "multipart/form-data": {},
            },
        }
    },
)
async def add_attachment(
    request: Request,
    invoice_id: str,
    tenant_id: Tenant,
    deps: AppDeps,
    pool: Pool,
    filename: Annotated[str | None, Query(description="The file's name (raw body)")] = None,
) -> AttachmentOut:
    """Attach a file to a held invoice (PDF, PNG, JPEG, CSV, XLSX, ODS; at most 10 MiB)."""
    name, content_type, content = await _upload(request, filename)
    async with pool.acquire() as conn, conn.transaction():
        try:
            info = await service.add_attachment(
                deps.repositories(conn),
                tenant_id=tenant_id,
                invoice_id=invoice_id,
                filename=name,
                content_type=content_type,
                content=content,
            )
        except rules.HoldError as exc:
            raise hold_problem(exc) from exc
    deps.committed()  # wake the outbox relay (delivery.hold_updated)
    return AttachmentOut.of(info)


@router.get("/holds/{invoice_id}/attachments")
async def list_attachments(
    invoice_id: str, tenant_id: Tenant, deps: AppDeps, pool: Pool
) -> list[AttachmentOut]:
    """The files attached to a held invoice, in the order added."""
    async with pool.acquire() as conn:
        try:
            infos = await service.list_attachments(
                deps.repositories(conn).holds, tenant_id=tenant_id, invoice_id=invoice_id
            )
        except rules.HoldError as exc:
            raise hold_problem(exc) from exc
    return [AttachmentOut.of(i) for i in infos]


@router.delete(
    "/holds/{invoice_id}/attachments/{attachment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def remove_attachment(
    invoice_id: str, attachment_id: PathId, tenant_id: Tenant, deps: AppDeps, pool: Pool
) -> Response:
    """Take a file off a held invoice while it is still held."""
    async with pool.acquire() as conn, conn.transaction():
        try:
            removed = await service.remove_attachment(
                deps.repositories(conn),
                tenant_id=tenant_id,
                invoice_id=invoice_id,
                attachment_id=attachment_id,
            )
        except rules.HoldError as exc:
            raise hold_problem(exc) from exc
    if not removed:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"invoice {invoice_id!r} has no attachment {attachment_id}",
        )
    deps.committed()  # wake the outbox relay (delivery.hold_updated)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/holds/{invoice_id}/release")
async def release(
    request: Request, invoice_id: str, tenant_id: Tenant, deps: AppDeps, pool: Pool
) -> HoldOut:
    """Send a held invoice now: its pending send job becomes due immediately."""
    async with pool.acquire() as conn, conn.transaction():
        repos = deps.repositories(conn)
        try:
            hold = await service.release_hold(
                repos,
                tenant_id=tenant_id,
                invoice_id=invoice_id,
                released_by=await token_name(request, repos),
            )
        except rules.HoldError as exc:
            raise hold_problem(exc) from exc
    deps.committed()  # wake the send job's worker and the outbox relay
    return HoldOut.of(hold, deps.clock())
