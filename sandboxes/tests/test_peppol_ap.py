"""PEPPOL access point sandbox: BIS 3.0 checks, SMP lookup, status, auth and named errors."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from nordflow_sandboxes.peppol_ap import PeppolApState, create_app
from nordflow_sandboxes.peppol_ap.testing import (
    BIS3_CREDIT_NOTE,
    BIS3_INVOICE,
    BIS3_PROCESS,
    sample_invoice_xml,
)
from nordflow_sandboxes.smp import SmpState
from nordflow_sandboxes.smp import create_app as create_smp_app

if TYPE_CHECKING:
    from conftest import FakeClock

SENDER = "0007:5567321707"


@dataclass
class Ap:
    """An in-process access point whose SMP is a real in-process SMP sandbox."""

    http: httpx.AsyncClient
    state: PeppolApState
    smp: SmpState
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def register(self, participant: str, *document_types: str) -> None:
        self.smp.register(
            f"iso6523-actorid-upis::{participant}", list(document_types or (BIS3_INVOICE,))
        )

    async def send(self, xml: bytes, *, key: str | None = None, **params: str) -> httpx.Response:
        headers = {**self.headers, "Content-Type": "application/xml"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.http.post(
            "/api/v1/documents", content=xml, params=params, headers=headers
        )

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, f"/sandbox{path}", headers=self.headers, **kwargs)


def receiver_id() -> str:
    return f"0007:{secrets.randbelow(10**10):010d}"


@pytest.fixture
async def ap(clock: FakeClock) -> AsyncIterator[Ap]:
    smp = SmpState()
    state = PeppolApState(
        smp_url="http://smp.test",
        smp_transport=httpx.ASGITransport(app=create_smp_app(smp)),
        delivery_delay=timedelta(minutes=1),
        clock=clock,
    )
    _account, token = state.create_account("Säljare AB", organisation_number="556732-1707")
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://ap.test") as http:
        yield Ap(http, state, smp, token)


def fields(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.headers["content-type"].startswith("application/problem+json")
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


async def test_missing_or_unknown_token_is_401(ap: Ap) -> None:
    missing = await ap.http.get("/api/v1/documents")
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_token"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    unknown = await ap.http.get("/api/v1/documents", headers={"Authorization": "Bearer nope"})
    assert (unknown.status_code, unknown.json()["code"]) == (401, "invalid_token")


async def test_send_to_registered_receiver_is_accepted_then_delivered(
    ap: Ap, clock: FakeClock
) -> None:
    receiver = receiver_id()
    ap.register(receiver)
    xml = sample_invoice_xml(invoice_id="F-1001", sender=SENDER, receiver=receiver)
    response = await ap.send(xml, client_reference="nf-inv-1")
    assert response.status_code == 201, response.text
    sent = response.json()
    assert sent["status"] == "accepted"
    assert response.headers["Location"] == f"/api/v1/documents/{sent['id']}"
    assert (sent["sender"], sent["receiver"]) == (SENDER, receiver)  # read from EndpointID
    assert (sent["document_type"], sent["process"]) == (BIS3_INVOICE, BIS3_PROCESS)
    assert (sent["document_id"], sent["document_kind"]) == ("F-1001", "Invoice")
    assert sent["delivered_at"] is None

    clock.advance(minutes=1)
    status = (await ap.http.get(f"/api/v1/documents/{sent['id']}", headers=ap.headers)).json()
    assert status["status"] == "delivered"
    assert status["delivered_at"] is not None


async def test_explicit_envelope_parameters_are_checked_against_the_document(ap: Ap) -> None:
    receiver = receiver_id()
    ap.register(receiver, BIS3_INVOICE, BIS3_CREDIT_NOTE)
    xml = sample_invoice_xml(credit_note=True, receiver="0007:1111111111")
    ok = await ap.send(
        xml,
        sender=f"iso6523-actorid-upis::{SENDER}",
        receiver=receiver,  # the envelope wins over the document's EndpointID
        document_type=BIS3_CREDIT_NOTE.removeprefix("busdox-docid-qns::"),
        process=BIS3_PROCESS,
    )
    assert ok.status_code == 201, ok.text
    assert (ok.json()["receiver"], ok.json()["document_kind"]) == (receiver, "CreditNote")

    wrong = await ap.send(
        xml, receiver=receiver, document_type=BIS3_INVOICE, process="urn:other:process"
    )
    assert wrong.status_code == 422
    assert fields(wrong) == [
        ("document_type", "document_type_mismatch"),
        ("process", "process_mismatch"),
    ]


async def test_unregistered_receiver_is_refused_naming_the_receiver(ap: Ap) -> None:
    response = await ap.send(sample_invoice_xml(receiver=receiver_id()), client_reference="x")
    assert response.status_code == 422
    assert response.json()["code"] == "receiver_not_registered"
    assert fields(response) == [("receiver", "receiver_not_registered")]
    listed = await ap.http.get(
        "/api/v1/documents", params={"client_reference": "x"}, headers=ap.headers
    )
    assert listed.json() == {"documents": []}


async def test_receiver_without_the_document_type_is_refused(ap: Ap) -> None:
    receiver = receiver_id()
    ap.register(receiver, BIS3_INVOICE)
    response = await ap.send(sample_invoice_xml(receiver=receiver, credit_note=True))
    assert response.status_code == 422
    assert fields(response) == [("receiver", "document_type_not_supported")]
    assert BIS3_CREDIT_NOTE in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        (b"", [("body", "empty")]),
        (b"<Invoice><unclosed></Invoice>", [("body", "xml_malformed")]),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
            [("body", "xml_refused")],
        ),
        (b"<Order xmlns='urn:x'/>", [("body", "not_ubl_invoice")]),
        (
            sample_invoice_xml(customization_id="urn:cen.eu:en16931:2017", profile_id=""),
            [("CustomizationID", "not_bis3"), ("ProfileID", "missing")],
        ),
        (sample_invoice_xml(invoice_id=""), [("ID", "missing")]),
        (sample_invoice_xml(receiver="SE:5566778899"), [("receiver", "invalid_participant_id")]),
    ],
)
async def test_invalid_documents_are_refused_naming_the_field(
    ap: Ap, xml: bytes, expected: list[tuple[str, str]]
) -> None:
    response = await ap.send(xml)
    assert response.status_code == 422, response.text
    assert fields(response) == expected


async def test_non_xml_content_type_is_415(ap: Ap) -> None:
    response = await ap.http.post(
        "/api/v1/documents",
        content=sample_invoice_xml(),
        headers={**ap.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 415
    assert fields(response) == [("Content-Type", "unsupported")]


async def test_unreachable_smp_is_502_and_leaves_nothing_behind(clock: FakeClock) -> None:
    unreachable = httpx.MockTransport(lambda request: httpx.Response(503))
    state = PeppolApState(smp_url="http://smp.test", smp_transport=unreachable, clock=clock)
    _account, token = state.create_account("Säljare AB")
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://ap.test") as http:
        response = await http.post(
            "/api/v1/documents",
            content=sample_invoice_xml(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
        )
        assert (response.status_code, response.json()["code"]) == (502, "smp_unavailable")
        deliveries = await http.get(
            "/sandbox/deliveries", headers={"Authorization": f"Bearer {token}"}
        )
        assert deliveries.json() == {"deliveries": []}


async def test_injected_delivery_failure_ends_the_transmission_failed(
    ap: Ap, clock: FakeClock
) -> None:
    receiver = receiver_id()
    ap.register(receiver)
    added = await ap.admin(
        "POST", "/delivery-failures", json={"receiver": receiver, "reason": "AS4 receipt missing"}
    )
    assert added.status_code == 201
    failed = (await ap.send(sample_invoice_xml(receiver=receiver))).json()
    fine = (await ap.send(sample_invoice_xml(receiver=receiver, invoice_id="INV-2"))).json()
    clock.advance(minutes=2)
    failed = (await ap.http.get(f"/api/v1/documents/{failed['id']}", headers=ap.headers)).json()
    fine = (await ap.http.get(f"/api/v1/documents/{fine['id']}", headers=ap.headers)).json()
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "delivery_failed", "message": "AS4 receipt missing"}
    assert fine["status"] == "delivered"


async def test_unknown_document_is_404_problem(ap: Ap) -> None:
    response = await ap.http.get("/api/v1/documents/tx_missing", headers=ap.headers)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
