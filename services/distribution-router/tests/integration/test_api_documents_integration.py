"""The archive and hold API (/api/v1) on the real PostgreSQL, called through ASGI."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid

import asyncpg
import httpx
import pytest
from distribution_router import testing
from distribution_router.adapters.repositories import PgArchiveRepository, PgHoldRepository
from distribution_router.service import archive, holds
from distribution_router.testing import bearer
from nordflow_schemas.events import Channel

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\nterms and conditions\n%%EOF\n"


async def auth(pool: asyncpg.Pool, tenant: str, name: str = "panel") -> dict[str, str]:
    return await bearer(pool, tenant, name)


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def held_invoice(conn: asyncpg.Connection, tenant: str, hours: float = 2) -> str:
    """A held invoice with its pending send job, as the send job schedules them."""
    return await testing.held_invoice(
        conn, tenant, dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    )


async def archived(conn: asyncpg.Connection, tenant: str, **changes: object) -> int:
    fields: dict[str, object] = {
        "invoice_id": f"inv_{uuid.uuid4().hex}",
        "source_document_number": "1001",
        "number": "1001",
        "channel": Channel.EMAIL,
        "document_format": "pdf",
        "content": PDF,
        "content_type": "application/pdf",
        "sent_at": dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC),
        "issue_date": dt.date(2025, 3, 10),
    } | changes
    return await archive.archive_document(PgArchiveRepository(conn), tenant_id=tenant, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/documents"),
        ("GET", "/api/v1/documents/1/content"),
        ("GET", "/api/v1/hold-policies"),
        ("PUT", "/api/v1/hold-policies/customers/17"),
        ("GET", "/api/v1/holds"),
        ("POST", "/api/v1/holds/inv_x/attachments"),
        ("POST", "/api/v1/holds/inv_x/release"),
    ],
)
async def test_every_route_needs_a_valid_token(client, method, path):
    assert (await client.request(method, path)).status_code == 401
    bad = {"Authorization": "Bearer nf_not-a-token"}
    response = await client.request(method, path, headers=bad)
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown, revoked or expired API token"


async def test_search_download_and_checksum(client, pool, conn):
    tenant = new_tenant()
    headers = await auth(pool, tenant)
    invoice = f"inv_{uuid.uuid4().hex}"
    xml = b"<Invoice>1001</Invoice>"
    first = await archived(conn, tenant, invoice_id=invoice, source_document_number="55")
    second = await archived(
        conn,
        tenant,
        invoice_id=invoice,
        source_document_number="55",
        channel=Channel.PEPPOL,
        document_format="peppol-bis3",
        content=xml,
        content_type="application/xml",
    )
    third = await archived(conn, tenant, source_document_number="56")

    found = (await client.get(f"/api/v1/documents?invoice_id={invoice}", headers=headers)).json()
    assert [d["sequence"] for d in found["items"]] == [first, second]
    assert found["next_after"] is None
    entry = found["items"][1]
    assert entry["channel"] == "peppol"
    assert entry["sha256"] == hashlib.sha256(xml).hexdigest()
    assert entry["retain_until"] == "2032-12-31"
    assert entry["content_url"] == f"/api/v1/documents/{second}/content"
    # A forged Host header changes no link.
    forged = await client.get(
        f"/api/v1/documents/{second}", headers={**headers, "Host": "evil.example"}
    )
    assert forged.json()["content_url"] == f"/api/v1/documents/{second}/content"

    by_source = await client.get(
        "/api/v1/documents", params={"source_document_number": "56"}, headers=headers
    )
    assert [d["sequence"] for d in by_source.json()["items"]] == [third]

    page = (await client.get("/api/v1/documents?limit=2", headers=headers)).json()
    assert [d["sequence"] for d in page["items"]] == [first, second]
    rest = await client.get(
        f"/api/v1/documents?limit=2&after={page['next_after']}", headers=headers
    )
    assert [d["sequence"] for d in rest.json()["items"]] == [third]

    download = await client.get(entry["content_url"], headers=headers)
    assert download.status_code == 200
    assert download.content == xml
    assert download.headers["content-type"].startswith("application/xml")
    assert download.headers["x-content-sha256"] == hashlib.sha256(download.content).hexdigest()
    digest = base64.b64encode(hashlib.sha256(download.content).digest()).decode()
    assert download.headers["repr-digest"] == f"sha-256=:{digest}:"

    meta = await client.get(f"/api/v1/documents/{first}", headers=headers)
    assert meta.json()["document_format"] == "pdf"


async def test_a_tenant_sees_only_its_own_documents(client, pool, conn):
    owner, other = new_tenant(), new_tenant()
    sequence = await archived(conn, owner)
    headers = await auth(pool, other)
    assert (await client.get("/api/v1/documents", headers=headers)).json()["items"] == []
    response = await client.get(f"/api/v1/documents/{sequence}/content", headers=headers)
    assert response.status_code == 404
    assert (await client.get(f"/api/v1/documents/{sequence}", headers=headers)).status_code == 404


async def test_archive_settings_set_the_fiscal_year(client, pool):
    headers = await auth(pool, new_tenant())
    got = await client.get("/api/v1/archive-settings", headers=headers)
    assert got.json() == {"fiscal_year_start_month": 1}
    put = await client.put(
        "/api/v1/archive-settings", json={"fiscal_year_start_month": 7}, headers=headers
    )
    assert put.status_code == 200
    assert (await client.get("/api/v1/archive-settings", headers=headers)).json() == {
        "fiscal_year_start_month": 7
    }
    bad = await client.put(
        "/api/v1/archive-settings", json={"fiscal_year_start_month": 13}, headers=headers
    )
    assert bad.status_code == 422


async def test_hold_policies_for_the_tenant_and_a_customer(client, pool, conn):
    tenant = new_tenant()
    headers = await auth(pool, tenant)
    assert (await client.get("/api/v1/hold-policies", headers=headers)).status_code == 404
    put = await client.put("/api/v1/hold-policies", json={"duration": "P2D"}, headers=headers)
    assert put.status_code == 200
    assert put.json()["duration_seconds"] == 2 * 86400
    assert put.json()["customer_key"] is None
    customer = await client.put(
        "/api/v1/hold-policies/customers/Kund AB/Väst",
        json={"enabled": False, "duration": 3600},
        headers=headers,
    )
    assert customer.json()["customer_key"] == "Kund AB/Väst"
    listed = await client.get("/api/v1/hold-policies/customers", headers=headers)
    assert [p["customer_key"] for p in listed.json()] == ["Kund AB/Väst"]
    now = dt.datetime.now(dt.UTC)
    assert (
        await holds.hold_until(
            PgHoldRepository(conn), tenant_id=tenant, customer_key="Kund AB/Väst", now=now
        )
        is None
    )
    assert await holds.hold_until(
        PgHoldRepository(conn), tenant_id=tenant, customer_key="1", now=now
    ) == now + dt.timedelta(days=2)
    too_long = await client.put("/api/v1/hold-policies", json={"duration": "P91D"}, headers=headers)
    assert too_long.status_code == 422
    assert "duration" in str(too_long.json()["detail"])
    assert (await client.delete("/api/v1/hold-policies", headers=headers)).status_code == 204
    assert (await client.delete("/api/v1/hold-policies", headers=headers)).status_code == 404
    gone = await client.delete("/api/v1/hold-policies/customers/Kund AB/Väst", headers=headers)
    assert gone.status_code == 204
    # Another tenant does not see them.
    other = await auth(pool, new_tenant())
    assert (await client.get("/api/v1/hold-policies/customers", headers=other)).json() == []


async def test_attach_during_the_hold_then_release_then_409(client, pool, conn):
    tenant = new_tenant()
    headers = await auth(pool, tenant, name="control panel")
    invoice = await held_invoice(conn, tenant)

    listed = (await client.get("/api/v1/holds", headers=headers)).json()
    assert [h["invoice_id"] for h in listed] == [invoice]
    assert listed[0]["open"] is True

    raw = await client.post(
        f"/api/v1/holds/{invoice}/attachments",
        params={"filename": "villkor.pdf"},
        content=PDF,
        headers=headers | {"Content-Type": "application/pdf"},
    )
    assert raw.status_code == 201, raw.text
    assert raw.json()["sha256"] == hashlib.sha256(PDF).hexdigest()
    png = b"\x89PNG\r\n\x1a\n\x00\r\n\r\n--binary"
    multipart = await client.post(
        f"/api/v1/holds/{invoice}/attachments",
        files={"file": ("ritning.png", png, "image/png")},
        headers=headers,
    )
    assert multipart.status_code == 201, multipart.text
    assert multipart.json()["size"] == len(png)

    files = (await client.get(f"/api/v1/holds/{invoice}/attachments", headers=headers)).json()
    assert [(f["filename"], f["content_type"]) for f in files] == [
        ("villkor.pdf", "application/pdf"),
        ("ritning.png", "image/png"),
    ]
    async with conn.transaction():
        sent = await holds.attachments(PgHoldRepository(conn), invoice)
    assert [a.content for a in sent] == [PDF, png]

    released = await client.post(f"/api/v1/holds/{invoice}/release", headers=headers)
    assert released.status_code == 200
    assert released.json()["released_by"] == "api token 'control panel'"
    assert released.json()["open"] is False
    job = await conn.fetchrow(
        "SELECT due_at, now() AS now, state FROM jobs WHERE kind = $1 AND job_key = $2",
        holds.SEND_JOB_KIND,
        invoice,
    )
    assert job["state"] == "pending"
    assert job["due_at"] <= job["now"]
    assert (await client.get("/api/v1/holds", headers=headers)).json() == []

    late = await client.post(
        f"/api/v1/holds/{invoice}/attachments?filename=late.pdf",
        content=PDF,
        headers=headers | {"Content-Type": "application/pdf"},
    )
    assert late.status_code == 409
    assert "released" in late.json()["detail"]
    again = await client.post(f"/api/v1/holds/{invoice}/release", headers=headers)
    assert again.status_code == 409
    # The files stay visible after the hold.
    assert (
        len((await client.get(f"/api/v1/holds/{invoice}/attachments", headers=headers)).json()) == 2
    )


async def test_refused_uploads_name_the_problem(client, pool, conn):
    tenant = new_tenant()
    headers = await auth(pool, tenant)
    invoice = await held_invoice(conn, tenant)
    url = f"/api/v1/holds/{invoice}/attachments"

    async def post(content: bytes, content_type: str, **params: str) -> httpx.Response:
        return await client.post(
            url, params=params, content=content, headers=headers | {"Content-Type": content_type}
        )

    too_big = await post(
        b"%PDF-" + b"0" * holds.MAX_ATTACHMENT_BYTES, "application/pdf", filename="a.pdf"
    )
    assert too_big.status_code == 413
    assert str(holds.MAX_ATTACHMENT_BYTES) in too_big.json()["detail"]
    wrong_type = await post(b"MZ", "application/x-msdownload", filename="a.exe")
    assert wrong_type.status_code == 415
    assert "application/x-msdownload" in wrong_type.json()["detail"]
    not_a_pdf = await post(b"<html>", "application/pdf", filename="a.pdf")
    assert not_a_pdf.status_code == 422
    assert "not application/pdf" in not_a_pdf.json()["detail"]
    no_name = await post(PDF, "application/pdf")
    assert no_name.status_code == 400
    assert "filename" in no_name.json()["detail"]
    named_by_header = await client.post(
        url,
        content=PDF,
        headers=headers
        | {
            "Content-Type": "application/pdf",
            "Content-Disposition": 'attachment; filename="b.pdf"',
        },
    )
    assert named_by_header.status_code == 201
    assert named_by_header.json()["filename"] == "b.pdf"
    # Removing a file while held.
    attachment = named_by_header.json()["attachment_id"]
    assert (await client.delete(f"{url}/{attachment}", headers=headers)).status_code == 204
    assert (await client.delete(f"{url}/{attachment}", headers=headers)).status_code == 404
    assert (await client.get(url, headers=headers)).json() == []


async def test_another_tenants_hold_is_not_found(client, pool, conn):
    owner = new_tenant()
    invoice = await held_invoice(conn, owner)
    other = await auth(pool, new_tenant())
    upload = await client.post(
        f"/api/v1/holds/{invoice}/attachments?filename=a.pdf",
        content=PDF,
        headers=other | {"Content-Type": "application/pdf"},
    )
    assert upload.status_code == 404
    assert (
        await client.get(f"/api/v1/holds/{invoice}/attachments", headers=other)
    ).status_code == 404
    assert (await client.post(f"/api/v1/holds/{invoice}/release", headers=other)).status_code == 404
    assert (await client.get(f"/api/v1/holds/{invoice}", headers=other)).status_code == 404
    assert (await client.get("/api/v1/holds", headers=other)).json() == []
    owner_auth = await auth(pool, owner)
    assert (await client.get(f"/api/v1/holds/{invoice}", headers=owner_auth)).json()["open"] is True
