"""B2C bank e-invoice sandbox: consumer registry, e-invoices, named errors and idempotency."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from nordflow_sandboxes.b2c_bank import B2cBankState, create_app
from nordflow_sandboxes.b2c_bank.references import kid_mod11_ok, norwegian_account_ok
from nordflow_sandboxes.b2c_bank.testing import (
    B2cBankSandboxAdmin,
    FaultSpec,
    random_norwegian_identity_number,
    random_swedish_personal_number,
    running_b2c_bank_sandbox,
    sample_einvoice,
)

if TYPE_CHECKING:
    from conftest import FakeClock

ISSUER_ORG = "556677-8899"


@pytest.fixture
def bank_state(clock: FakeClock) -> B2cBankState:
    return B2cBankState(presentation_delay=timedelta(hours=1), clock=clock)


@pytest.fixture
async def http(bank_state: B2cBankState) -> AsyncIterator[httpx.AsyncClient]:
    _account, token = bank_state.create_account("Säljare AB", organisation_number=ISSUER_ORG)
    transport = httpx.ASGITransport(app=create_app(bank_state))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://bank.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


async def register(http: httpx.AsyncClient, personal_number: str, **fields: Any) -> dict[str, Any]:
    response = await http.put(f"/sandbox/consumers/{personal_number}", json=fields)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def send(
    http: httpx.AsyncClient, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return await http.post("/api/v1/einvoices", json=body, headers=headers)


def fields(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


def due(clock: FakeClock, days: int = 30) -> str:
    return (clock.current.date() + timedelta(days=days)).isoformat()


async def test_missing_token_is_401() -> None:
    transport = httpx.ASGITransport(app=create_app(B2cBankState()))
    async with httpx.AsyncClient(transport=transport, base_url="http://bank.test") as http:
        response = await http.get("/api/v1/recipients", params={"email": "a@b.se"})
    assert (response.status_code, response.json()["code"]) == (401, "missing_token")


async def test_registry_finds_consumers_by_personal_number_email_or_phone(
    http: httpx.AsyncClient,
) -> None:
    number = random_swedish_personal_number()
    created = await register(http, number, email="Anna@Example.se", phone="+46 70-123 45 67")
    again = await register(http, number, email="anna@example.se", phone="+46701234567")
    assert again["efaktura_reference"] == created["efaktura_reference"]  # kept on update

    for params in (
        {"personal_number": number},
        {"personal_number": number.replace("-", "")},
        {"email": "ANNA@example.se"},
        {"phone": "0046 70 123 45 67"},
    ):
        found = (await http.get("/api/v1/recipients", params=params)).json()
        assert found == {
            "registered": True,
            "efaktura_reference": created["efaktura_reference"],
            "country": "SE",
            "accepts_all_issuers": True,
            "accepts_issuer": True,
        }, params
    missing = await http.get(
        "/api/v1/recipients", params={"personal_number": random_swedish_personal_number()}
    )
    assert missing.json()["registered"] is False


async def test_registry_lookup_errors_name_the_parameter(http: httpx.AsyncClient) -> None:
    bad = await http.get("/api/v1/recipients", params={"personal_number": "19800101-0000"})
    assert fields(bad) == [("personal_number", "invalid_personal_number")]
    both = await http.get("/api/v1/recipients", params={"email": "a@b.se", "phone": "+4670123"})
    assert fields(both) == [("personal_number", "exactly_one_identifier")]
    assert fields(await http.get("/api/v1/recipients", params={"phone": "070-123"})) == [
        ("phone", "invalid_phone")
    ]


async def test_consent_per_issuer(http: httpx.AsyncClient, clock: FakeClock) -> None:
    blocked = await register(
        http, random_swedish_personal_number(), email="b@x.se", blocked_issuers=[ISSUER_ORG]
    )
    chosen = await register(
        http,
        random_norwegian_identity_number(),
        email="c@x.no",
        accepts_all_issuers=False,
        accepted_issuers=["5566778899"],
    )
    assert (await http.get("/api/v1/recipients", params={"email": "b@x.se"})).json()[
        "accepts_issuer"
    ] is False
    found = (await http.get("/api/v1/recipients", params={"email": "c@x.no"})).json()
    assert (found["country"], found["accepts_all_issuers"], found["accepts_issuer"]) == (
        "NO",
        False,
        True,
    )
    refused = await send(http, sample_einvoice(blocked["efaktura_reference"], due_date=due(clock)))
    assert fields(refused) == [("consumer_reference", "issuer_not_accepted")]
    assert chosen["country"] == "NO"


async def test_einvoice_is_accepted_presented_then_paid(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    consumer = await register(http, random_swedish_personal_number())
    body = sample_einvoice(
        consumer["efaktura_reference"],
        amount=json.loads("1250.5"),
        due_date=due(clock),
        client_reference="nf-inv-7",
        pdf=base64.b64encode(b"%PDF-1.4 ...").decode(),
    )
    response = await send(http, body)
    assert response.status_code == 201, response.text
    einvoice = response.json()
    assert (einvoice["status"], einvoice["amount"], einvoice["has_pdf"]) == (
        "accepted",
        "1250.50",
        True,
    )
    assert einvoice["payment_reference"] == body["payment_reference"]
    clock.advance(hours=1)
    shown = (await http.get(f"/api/v1/einvoices/{einvoice['id']}")).json()
    assert shown["status"] == "presented"
    paid = await http.post(f"/sandbox/einvoices/{einvoice['id']}/pay")
    assert paid.json()["status"] == "paid"
    assert (await http.post(f"/sandbox/einvoices/{einvoice['id']}/pay")).status_code == 409


async def test_every_refused_field_is_named(http: httpx.AsyncClient, clock: FakeClock) -> None:
    body = sample_einvoice(
        "123456789",
        amount="12.345",
        due_date=(clock.current.date() - timedelta(days=1)).isoformat(),
        payee_account={"type": "bankgiro", "number": "5555-5555"},
        pdf="not base64!",
        colour=True,
    )
    body["payment_reference"] = "123450"  # 12345 takes the Luhn digit 5
    assert fields(await send(http, body)) == [
        ("colour", "unknown_field"),
        ("payee_account.number", "invalid_check_digit"),
        ("payment_reference", "invalid_check_digit"),
        ("amount", "too_many_decimals"),
        ("due_date", "in_the_past"),
        ("pdf", "invalid_base64"),
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"amount": "0"}, [("amount", "must_be_positive")]),
        ({"amount": -5}, [("amount", "must_be_positive")]),
        ({"amount": True}, [("amount", "not_a_number")]),
        ({"amount": "12,50"}, [("amount", "not_a_number")]),
        ({"due_date": "10/04/2025"}, [("due_date", "invalid_date")]),
        ({"payment_reference": "12A45"}, [("payment_reference", "invalid_format")]),
        ({"currency": "EUR"}, [("currency", "unsupported")]),
        (
            {"currency": "NOK"},
            [("payee_account.type", "not_for_currency")],
        ),
        (
            {"payee_account": {"type": "iban", "number": "x"}},
            [("payee_account.type", "unsupported")],
        ),
        ({"consumer_reference": None}, [("consumer_reference", "missing")]),
        ({"pdf": base64.b64encode(b"GIF89a").decode()}, [("pdf", "not_a_pdf")]),
    ],
)
async def test_single_field_errors(
    http: httpx.AsyncClient,
    clock: FakeClock,
    overrides: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    body = {**sample_einvoice("123456789", due_date=due(clock)), **overrides}
    assert fields(await send(http, body)) == expected


async def test_unknown_consumer_and_currency_mismatch(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    unknown = await send(http, sample_einvoice("999999999", due_date=due(clock)))
    assert fields(unknown) == [("consumer_reference", "not_registered")]
    norwegian = await register(http, random_norwegian_identity_number())
    mismatch = await send(
        http, sample_einvoice(norwegian["efaktura_reference"], due_date=due(clock))
    )
    assert fields(mismatch) == [("currency", "currency_mismatch")]


def valid_norwegian_account() -> str:
    stem = "1503123456"
    return next(stem + d for d in "0123456789" if norwegian_account_ok(stem + d))


async def test_norwegian_einvoice_takes_a_mod11_kid(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    consumer = await register(http, random_norwegian_identity_number())
    assert kid_mod11_ok("12343")
    body = sample_einvoice(
        consumer["efaktura_reference"],
        currency="NOK",
        payment_reference="12343",
        payee_account={"type": "bank_account", "number": valid_norwegian_account()},
        due_date=due(clock),
    )
    assert (await send(http, body)).status_code == 201


async def test_content_type_and_json_errors(http: httpx.AsyncClient) -> None:
    wrong = await http.post(
        "/api/v1/einvoices", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert wrong.status_code == 415
    broken = await http.post(
        "/api/v1/einvoices", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert fields(broken) == [("body", "invalid_json")]


async def test_same_key_replays_and_after_commit_fault_is_found_by_reference(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    consumer = await register(http, random_swedish_personal_number())
    body = sample_einvoice(
        consumer["efaktura_reference"], due_date=due(clock), client_reference="nf-lost"
    )
    fault = {"status": 504, "after_commit": True, "path_prefix": "/api/v1/einvoices"}
    assert (await http.post("/sandbox/faults", json=fault)).status_code == 201
    assert (await send(http, body, key="ein-1")).status_code == 504

    [found] = (await http.get("/api/v1/einvoices", params={"client_reference": "nf-lost"})).json()[
        "einvoices"
    ]
    replay = await send(http, body, key="ein-1")
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == found["id"]
    reused = await send(http, {**body, "amount": "1.00"}, key="ein-1")
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")

    [delivery] = (await http.get("/sandbox/deliveries")).json()["deliveries"]
    content = (await http.get(f"/sandbox/deliveries/{found['id']}/content")).content
    assert delivery["content_sha256"] == hashlib.sha256(content).hexdigest()
    assert json.loads(content)["payment_reference"] == body["payment_reference"]


def test_runner_registers_consumers_and_survives_a_timeout() -> None:
    with running_b2c_bank_sandbox() as bank, B2cBankSandboxAdmin(bank.base_url) as admin:
        account = admin.create_account(organisation_number=ISSUER_ORG)
        consumer = admin.register_consumer(random_swedish_personal_number(), email="d@x.se")
        admin.inject_fault(
            account.token, FaultSpec(status=None, delay_seconds=0.6, after_commit=True)
        )
        body = sample_einvoice(consumer["efaktura_reference"], client_reference="nf-slow")
        with httpx.Client(base_url=bank.api_url, headers=account.headers) as client:
            with pytest.raises(httpx.ReadTimeout):
                client.post("/einvoices", json=body, timeout=0.2)
            [einvoice] = client.get("/einvoices", params={"client_reference": "nf-slow"}).json()[
                "einvoices"
            ]
        assert admin.pay(account.token, einvoice["id"])["status"] == "paid"
        assert len(admin.deliveries(account.token)) == 1
