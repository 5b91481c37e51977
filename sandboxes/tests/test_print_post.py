"""Print-and-post sandbox: letters, prices, the print window, named errors and idempotency."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from nordflow_sandboxes.print_post import PrintPostState, create_app
from nordflow_sandboxes.print_post.pdf import count_pages
from nordflow_sandboxes.print_post.testing import (
    FaultSpec,
    PrintPostSandboxAdmin,
    letter_files,
    minimal_pdf,
    running_print_post_sandbox,
    sample_recipient,
)

if TYPE_CHECKING:
    from conftest import FakeClock


@pytest.fixture
def post_state(clock: FakeClock) -> PrintPostState:
    return PrintPostState(clock=clock)


@pytest.fixture
def token(post_state: PrintPostState) -> str:
    return post_state.create_account("Säljare AB")[1]


@pytest.fixture
async def http(post_state: PrintPostState, token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(post_state))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://post.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


def metadata(**overrides: Any) -> dict[str, Any]:
    return {
        "recipient": sample_recipient(),
        "postage": "B",
        "colour": False,
        "duplex": True,
        "client_reference": "nf-inv-1",
        **overrides,
    }


async def send(
    http: httpx.AsyncClient,
    pdf: bytes | None = None,
    meta: dict[str, Any] | None = None,
    key: str | None = None,
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    files = letter_files(minimal_pdf(3) if pdf is None else pdf, meta or metadata())
    return await http.post("/api/v1/letters", files=files, headers=headers)


def fields(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


async def test_missing_token_is_401() -> None:
    transport = httpx.ASGITransport(app=create_app(PrintPostState()))
    async with httpx.AsyncClient(transport=transport, base_url="http://post.test") as http:
        response = await http.get("/api/v1/letters")
    assert (response.status_code, response.json()["code"]) == (401, "missing_token")


async def test_letter_is_priced_from_pages_postage_colour_and_duplex(
    http: httpx.AsyncClient,
) -> None:
    response = await send(http)
    assert response.status_code == 201, response.text
    letter = response.json()
    assert letter["status"] == "received"
    assert (letter["pages"], letter["sheets"], letter["weight_grams"]) == (3, 2, 16)
    assert letter["price"] == {
        "currency": "SEK",
        "printing": "1.20",
        "paper_and_envelope": "2.00",
        "postage": "13.50",
        "total": "16.70",
        "vat_included": False,
    }
    assert letter["recipient"]["postal_code"] == "111 22"
    colour = await send(http, meta=metadata(postage="A", colour=True, duplex=False))
    assert colour.json()["price"]["total"] == "23.90"  # 5.70 + 0.60 + 1.60 + 16.00


async def test_price_quote_without_sending(http: httpx.AsyncClient) -> None:
    quote = await http.get("/api/v1/prices", params={"pages": 3})
    assert quote.json()["total"] == "16.70"
    heavy = await http.get("/api/v1/prices", params={"pages": 20, "duplex": "false"})
    assert (heavy.json()["weight_grams"], heavy.json()["postage"]) == (106, "54.00")
    assert fields(await http.get("/api/v1/prices", params={"pages": 0})) == [
        ("pages", "greater_than_equal")
    ]
    assert fields(await http.get("/api/v1/prices", params={"pages": 100, "duplex": "false"})) == [
        ("pages", "too_many_pages")
    ]


async def test_status_moves_from_received_to_printed_to_posted(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    letter_id = (await send(http)).json()["id"]

    async def status() -> str:
        return str((await http.get(f"/api/v1/letters/{letter_id}")).json()["status"])

    assert await status() == "received"
    clock.advance(minutes=5)
    assert await status() == "printed"
    clock.advance(hours=1)
    assert await status() == "posted"


async def test_cancel_inside_the_print_window_only(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    early = (await send(http)).json()["id"]
    cancelled = await http.post(f"/api/v1/letters/{early}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    again = await http.post(f"/api/v1/letters/{early}/cancel")
    assert again.json() == cancelled.json()

    late = (await send(http)).json()["id"]
    clock.advance(minutes=5)
    refused = await http.post(f"/api/v1/letters/{late}/cancel")
    assert (refused.status_code, refused.json()["code"]) == (409, "print_window_closed")
    clock.advance(hours=2)
    assert (await http.get(f"/api/v1/letters/{early}")).json()["posted_at"] is None


async def test_posted_letter_can_be_returned_by_admin(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    letter_id = (await send(http)).json()["id"]
    too_early = await http.post(f"/sandbox/letters/{letter_id}/return", json={})
    assert too_early.status_code == 409
    clock.advance(hours=2)
    returned = await http.post(f"/sandbox/letters/{letter_id}/return", json={"reason": "moved"})
    assert (returned.json()["status"], returned.json()["return_reason"]) == ("returned", "moved")


@pytest.mark.parametrize(
    ("pdf", "meta", "expected"),
    [
        (b"GIF89a...", None, [("file", "not_a_pdf")]),
        (minimal_pdf(1)[:-20], None, [("file", "pdf_truncated")]),
        (
            minimal_pdf(100),
            metadata(duplex=False),
            [("file", "too_many_pages")],
        ),
        (
            None,
            metadata(recipient=sample_recipient(postal_code="1234", name=" ")),
            [("recipient.name", "missing"), ("recipient.postal_code", "invalid_postal_code")],
        ),
        (
            None,
            metadata(recipient=sample_recipient(country="DE", street="x")),
            [("recipient.street", "unknown_field"), ("recipient.country", "country_not_supported")],
        ),
        (
            None,
            metadata(postage="C", colour="yes", priority=True),
            [
                ("priority", "unknown_field"),
                ("postage", "invalid_postage"),
                ("colour", "not_a_boolean"),
            ],
        ),
        (
            None,
            metadata(recipient=sample_recipient(address_line1="x" * 61, city="")),
            [("recipient.address_line1", "too_long"), ("recipient.city", "missing")],
        ),
    ],
)
async def test_invalid_letters_are_refused_naming_the_field(
    http: httpx.AsyncClient,
    pdf: bytes | None,
    meta: dict[str, Any] | None,
    expected: list[tuple[str, str]],
) -> None:
    assert fields(await send(http, pdf, meta)) == expected


async def test_missing_parts_and_bad_json_are_named(http: httpx.AsyncClient) -> None:
    no_file = await http.post(
        "/api/v1/letters", files={"metadata": (None, b"{not json", "application/json")}
    )
    assert fields(no_file) == [("metadata", "invalid_json"), ("file", "missing")]
    not_multipart = await http.post("/api/v1/letters", content=minimal_pdf(1))
    assert not_multipart.status_code == 415


def test_pages_inside_compressed_object_streams_are_counted() -> None:
    objects = zlib.compress(b"<< /Type /Page >> << /Type /Page >> << /Type /Pages /Count 2 >>")
    pdf = b"%PDF-1.5\n1 0 obj\n<< /Type /ObjStm >>\nstream\n" + objects + b"\nendstream\n%%EOF"
    assert count_pages(pdf) == 2
    assert count_pages(minimal_pdf(7)) == 7


async def test_same_key_returns_the_first_letter_despite_a_new_boundary(
    http: httpx.AsyncClient,
) -> None:
    pdf = minimal_pdf(2)
    first = await send(http, pdf, key="letter-1")
    again = await send(http, pdf, key="letter-1")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    reused = await send(http, pdf, metadata(postage="A"), key="letter-1")
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    assert len((await http.get("/sandbox/deliveries")).json()["deliveries"]) == 1


async def test_after_commit_fault_then_lookup_by_client_reference(http: httpx.AsyncClient) -> None:
    pdf = minimal_pdf(1)
    fault = {"status": 502, "after_commit": True, "path_prefix": "/api/v1/letters"}
    assert (await http.post("/sandbox/faults", json=fault)).status_code == 201
    lost = await send(http, pdf, metadata(client_reference="nf-lost"), key="letter-2")
    assert lost.status_code == 502

    found = await http.get("/api/v1/letters", params={"client_reference": "nf-lost"})
    [letter] = found.json()["letters"]
    replay = await send(http, pdf, metadata(client_reference="nf-lost"), key="letter-2")
    assert replay.json()["id"] == letter["id"]
    [delivery] = (await http.get("/sandbox/deliveries")).json()["deliveries"]
    assert delivery["content_sha256"] == hashlib.sha256(pdf).hexdigest()
    content = await http.get(f"/sandbox/deliveries/{letter['id']}/content")
    assert content.content == pdf


def test_runner_timeout_then_lookup() -> None:
    with running_print_post_sandbox() as post, PrintPostSandboxAdmin(post.base_url) as admin:
        account = admin.create_account()
        admin.inject_fault(
            account.token, FaultSpec(status=None, delay_seconds=0.6, after_commit=True)
        )
        pdf = minimal_pdf(2)
        with httpx.Client(base_url=post.api_url, headers=account.headers) as client:
            with pytest.raises(httpx.ReadTimeout):
                client.post(
                    "/letters",
                    files=letter_files(pdf, metadata(client_reference="nf-slow")),
                    timeout=0.2,
                )
            found = client.get("/letters", params={"client_reference": "nf-slow"}).json()
        [letter] = found["letters"]
        assert admin.delivery_content(account.token, letter["id"]) == pdf
        assert [d["id"] for d in admin.deliveries(account.token)] == [letter["id"]]
