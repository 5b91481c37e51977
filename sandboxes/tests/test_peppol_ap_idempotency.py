"""PEPPOL access point sandbox: Idempotency-Key replays, faults, lookup by client reference."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from nordflow_sandboxes.kit.server import ApiError
from nordflow_sandboxes.peppol_ap import PeppolApState, create_app
from nordflow_sandboxes.peppol_ap.testing import (
    FaultSpec,
    running_peppol_network,
    sample_invoice_xml,
)
from nordflow_sandboxes.smp import SmpState
from nordflow_sandboxes.smp import create_app as create_smp_app

if TYPE_CHECKING:
    from conftest import FakeClock

RECEIVER = "0192:987654321"


@pytest.fixture
def smp() -> SmpState:
    state = SmpState()
    state.register(
        f"iso6523-actorid-upis::{RECEIVER}",
        [
            "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice"
            "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
        ],
    )
    return state


@pytest.fixture
def ap_state(smp: SmpState, clock: FakeClock) -> PeppolApState:
    return PeppolApState(
        smp_url="http://smp.test",
        smp_transport=httpx.ASGITransport(app=create_smp_app(smp)),
        clock=clock,
    )


@pytest.fixture
def token(ap_state: PeppolApState) -> str:
    return ap_state.create_account("Säljare AB")[1]


@pytest.fixture
async def http(ap_state: PeppolApState, token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(ap_state))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://ap.test", headers=headers
    ) as client:
        yield client


async def send(
    http: httpx.AsyncClient, xml: bytes, key: str | None, reference: str = "nf-1"
) -> httpx.Response:
    headers = {"Content-Type": "application/xml"}
    if key:
        headers["Idempotency-Key"] = key
    return await http.post(
        "/api/v1/documents",
        content=xml,
        params={"receiver": RECEIVER, "client_reference": reference},
        headers=headers,
    )


async def fault(http: httpx.AsyncClient, **spec: object) -> None:
    response = await http.post("/sandbox/faults", json=spec)
    assert response.status_code == 201, response.text


async def deliveries(http: httpx.AsyncClient) -> list[dict[str, object]]:
    return list((await http.get("/sandbox/deliveries")).json()["deliveries"])


async def test_retry_with_the_same_key_returns_the_first_answer(http: httpx.AsyncClient) -> None:
    xml = sample_invoice_xml(receiver=RECEIVER)
    first = await send(http, xml, "key-1")
    again = await send(http, xml, "key-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert "Idempotent-Replayed" not in first.headers
    assert len(await deliveries(http)) == 1


async def test_same_key_for_a_different_document_is_422(http: httpx.AsyncClient) -> None:
    assert (await send(http, sample_invoice_xml(receiver=RECEIVER), "key-2")).status_code == 201
    other = await send(http, sample_invoice_xml(receiver=RECEIVER, invoice_id="INV-2"), "key-2")
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_refused_send_keeps_no_answer_so_the_key_can_be_retried(
    http: httpx.AsyncClient, smp: SmpState
) -> None:
    stranger = "0007:1234567897"
    xml = sample_invoice_xml(receiver=stranger)
    headers = {"Content-Type": "application/xml", "Idempotency-Key": "key-3"}
    refused = await http.post("/api/v1/documents", content=xml, headers=headers)
    assert refused.status_code == 422
    smp.register(
        f"iso6523-actorid-upis::{stranger}",
        [
            "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice"
            "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
        ],
    )
    accepted = await http.post("/api/v1/documents", content=xml, headers=headers)
    assert accepted.status_code == 201
    assert "Idempotent-Replayed" not in accepted.headers


async def test_after_commit_fault_then_lookup_by_client_reference_and_replay(
    http: httpx.AsyncClient,
) -> None:
    xml = sample_invoice_xml(receiver=RECEIVER)
    await fault(http, status=503, path_prefix="/api/v1/documents", method="POST", after_commit=True)
    lost = await send(http, xml, "key-4", reference="nf-lost")
    assert lost.status_code == 503  # ...but the document was accepted

    found = await http.get("/api/v1/documents", params={"client_reference": "nf-lost"})
    [document] = found.json()["documents"]
    assert document["status"] == "delivered"

    replay = await send(http, xml, "key-4", reference="nf-lost")
    assert replay.status_code == 201
    assert replay.json()["id"] == document["id"]

    [delivery] = await deliveries(http)
    assert delivery["id"] == document["id"]
    assert delivery["content_sha256"] == hashlib.sha256(xml).hexdigest()
    assert delivery["idempotency_key"] == "key-4"
    log = (await http.get("/sandbox/requests")).json()["requests"]
    posts = [(r["status"], r["fault"], r["replayed"]) for r in log if r["method"] == "POST"]
    assert posts == [(503, True, False), (201, False, True)]


async def test_fault_before_commit_stores_nothing(http: httpx.AsyncClient) -> None:
    xml = sample_invoice_xml(receiver=RECEIVER)
    await fault(http, status=500, path_prefix="/api/v1/documents")
    assert (await send(http, xml, "key-5")).status_code == 500
    assert await deliveries(http) == []
    retried = await send(http, xml, "key-5")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert len(await deliveries(http)) == 1


async def test_key_in_flight_is_409_and_keys_expire(
    ap_state: PeppolApState, token: str, clock: FakeClock
) -> None:
    account = ap_state.account_for_token(token)
    assert account is not None
    assert ap_state.begin_idempotent(account, "k", "fp") is None
    with pytest.raises(ApiError) as conflict:
        ap_state.begin_idempotent(account, "k", "fp")
    assert conflict.value.status == 409
    ap_state.release_idempotent(account, "k")
    assert ap_state.begin_idempotent(account, "k", "fp") is None


async def test_expired_key_sends_again(http: httpx.AsyncClient, clock: FakeClock) -> None:
    xml = sample_invoice_xml(receiver=RECEIVER)
    first = await send(http, xml, "key-6")
    clock.advance(hours=24)
    second = await send(http, xml, "key-6")
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    assert len(await deliveries(http)) == 2


async def test_malformed_key_is_400(http: httpx.AsyncClient) -> None:
    response = await send(http, sample_invoice_xml(receiver=RECEIVER), "has spaces in it")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_runner_with_real_smp_timeout_then_lookup() -> None:
    """Over real sockets: the client times out, the send happened, the lookup finds it once."""
    with running_peppol_network() as net, net.admin() as admin:
        receiver = f"0007:{secrets.randbelow(10**10):010d}"
        net.register(receiver)
        account = admin.create_account()
        stranger = sample_invoice_xml(receiver="0007:0000000000")
        with httpx.Client(base_url=net.ap.api_url, headers=account.headers) as client:
            xml_headers = {"Content-Type": "application/xml"}
            refused = client.post("/documents", content=stranger, headers=xml_headers)
            assert refused.json()["errors"][0]["code"] == "receiver_not_registered"

            admin.inject_fault(
                account.token,
                FaultSpec(status=None, delay_seconds=0.6, after_commit=True, method="POST"),
            )
            xml = sample_invoice_xml(receiver=receiver)
            with pytest.raises(httpx.ReadTimeout):
                client.post(
                    "/documents",
                    content=xml,
                    params={"client_reference": "nf-timeout"},
                    headers=xml_headers,
                    timeout=0.2,
                )
            found = client.get("/documents", params={"client_reference": "nf-timeout"}).json()
            assert [d["receiver"] for d in found["documents"]] == [receiver]

        [delivery] = admin.deliveries(account.token)
        assert admin.delivery_content(account.token, str(delivery["id"])) == xml
        assert admin.stats(account.token)["records"] == 1


def test_peppol_ap_state_defaults() -> None:
    state = PeppolApState()
    assert state.smp_url == "http://127.0.0.1:8182"
    assert state.delivery_delay == timedelta(0)
