"""Rate limiting (25 per 5 s per token), fault injection, the request log and stats."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from nordflow_sandboxes.fortnox import FortnoxState

if TYPE_CHECKING:
    from conftest import FakeMonotonic, FortnoxApi


async def test_26th_request_in_five_seconds_gets_429_with_retry_after(
    api: FortnoxApi, monotonic: FakeMonotonic
) -> None:
    for _ in range(10):
        assert (await api.get("/3/invoices")).status_code == 200
    monotonic.value += 2.5
    for _ in range(15):
        assert (await api.get("/3/invoices")).status_code == 200
    monotonic.value += 0.5
    limited = await api.get("/3/invoices")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"  # the first 10 leave the window at +5 s
    info = limited.json()["ErrorInformation"]
    assert (info["error"], info["code"]) == (1, 2999429)
    monotonic.value += 1.0
    assert (await api.get("/3/invoices")).status_code == 429
    monotonic.value += 1.0  # now 5 s after the first burst
    assert (await api.get("/3/invoices")).status_code == 200


async def test_rate_limit_is_per_token_and_skips_admin(
    client: httpx.AsyncClient, state: FortnoxState, api: FortnoxApi
) -> None:
    for _ in range(25):
        await api.get("/3/customers")
    assert (await api.get("/3/customers")).status_code == 429
    _other, other_token = state.create_company("Other AB")
    other = await client.get("/3/customers", headers={"Authorization": f"Bearer {other_token}"})
    assert other.status_code == 200
    for _ in range(40):
        assert (await client.get("/sandbox/stats", headers=api.headers)).status_code == 200


async def test_limit_and_window_are_configurable(monotonic: FakeMonotonic) -> None:
    from nordflow_sandboxes.fortnox import create_app

    state = FortnoxState(rate_limit=3, rate_window_seconds=1.0, monotonic=monotonic)
    _company, token = state.create_company("Tiny AB")
    transport = httpx.ASGITransport(app=create_app(state))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as http:
        statuses = [(await http.get("/3/invoices")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        monotonic.value += 1.0
        assert (await http.get("/3/invoices")).status_code == 200


async def test_company_created_without_rate_limit_is_never_refused(
    client: httpx.AsyncClient, api: FortnoxApi
) -> None:
    created = await client.post(
        "/sandbox/companies", json={"name": "Load AB", "rate_limited": False}
    )
    assert created.status_code == 201
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    statuses = {(await client.get("/3/invoices", headers=headers)).status_code for _ in range(60)}
    assert statuses == {200}
    for _ in range(25):  # the other companies keep Fortnox's limit
        await api.get("/3/customers")
    assert (await api.get("/3/customers")).status_code == 429


async def inject(api: FortnoxApi, **fault: object) -> httpx.Response:
    return await api.client.post("/sandbox/faults", json=fault, headers=api.headers)


async def test_fault_counts_down_and_matches_method_and_path(api: FortnoxApi) -> None:
    created = await inject(api, status=503, count=2, path_prefix="/3/invoices", method="get")
    assert created.status_code == 201
    assert created.json()["fault"]["method"] == "GET"
    await api.customer()  # POST /3/customers is not targeted
    first = await api.get("/3/invoices")
    assert first.status_code == 503
    assert first.json()["ErrorInformation"]["code"] == 2999500
    assert (await api.get("/3/invoices/1")).status_code == 503
    assert (await api.get("/3/invoices")).status_code == 200
    pending = (await api.client.get("/sandbox/faults", headers=api.headers)).json()
    assert pending == {"faults": []}


async def test_fault_before_commit_changes_nothing(api: FortnoxApi) -> None:
    customer = await api.customer()
    await inject(api, status=500, path_prefix="/3/invoices", method="POST")
    failed = await api.post(
        "/3/invoices", {"Invoice": {"CustomerNumber": customer["CustomerNumber"]}}
    )
    assert failed.status_code == 500
    assert failed.json()["ErrorInformation"]["code"] == 1000003
    stats = (await api.client.get("/sandbox/stats", headers=api.headers)).json()
    assert stats["invoices"] == 0


async def test_fault_after_commit_applies_the_change_then_fails(api: FortnoxApi) -> None:
    customer = await api.customer()
    number = (await api.invoice(customer["CustomerNumber"]))["DocumentNumber"]
    await inject(
        api, status=500, path_prefix="/3/invoicepayments", method="POST", after_commit=True
    )
    failed = await api.payment(number, 125)
    assert failed.status_code == 500
    # The payment exists although the client saw a 500: a blind retry is refused.
    payments = (await api.get("/3/invoicepayments", invoicenumber=number)).json()["InvoicePayments"]
    assert [p["Amount"] for p in payments] == [125]
    assert (await api.get(f"/3/invoices/{number}")).json()["Invoice"]["Balance"] == 0
    retry = await api.payment(number, 125)
    assert retry.status_code == 400


async def test_injected_429_has_retry_after(api: FortnoxApi) -> None:
    await inject(api, status=429, retry_after_seconds=7)
    response = await api.get("/3/customers")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


async def test_fault_validation_and_auth(api: FortnoxApi) -> None:
    assert (await inject(api, status=None)).status_code == 422
    assert (await inject(api, status=418)).status_code == 422
    assert (await inject(api, status=500, path_prefix="/sandbox")).status_code == 422
    anonymous = await api.client.post("/sandbox/faults", json={"status": 500})
    assert anonymous.status_code == 401
    assert (await inject(api, status=500, count=3)).status_code == 201
    assert (await api.client.delete("/sandbox/faults", headers=api.headers)).status_code == 204
    assert (await api.get("/3/customers")).status_code == 200


async def test_request_log_and_stats(api: FortnoxApi) -> None:
    customer = await api.customer()
    await api.invoice(customer["CustomerNumber"])
    await inject(api, status=503, path_prefix="/3/invoices/1", method="GET")
    await api.get("/3/invoices/1")
    await api.get("/3/invoices", limit="5")
    log = (
        await api.client.get("/sandbox/requests", params={"limit": 3}, headers=api.headers)
    ).json()
    assert [(r["method"], r["path"], r["status"], r["fault"]) for r in log["requests"]] == [
        ("POST", "/3/invoices", 201, False),
        ("GET", "/3/invoices/1", 503, True),
        ("GET", "/3/invoices", 200, False),
    ]
    assert log["requests"][-1]["query"] == "limit=5"
    stats = (await api.client.get("/sandbox/stats", headers=api.headers)).json()
    assert (stats["customers"], stats["invoices"], stats["payments"], stats["requests"]) == (
        1,
        1,
        0,
        4,
    )
    everyone = (await api.client.get("/sandbox/stats")).json()
    assert stats["company_id"] in {c["company_id"] for c in everyone["companies"]}


async def test_healthz_and_full_precision_timestamps(api: FortnoxApi) -> None:
    assert (await api.client.get("/sandbox/healthz")).json() == {"status": "ok"}
    customer = await api.customer()
    await api.invoice(customer["CustomerNumber"])
    stamps = (
        await api.client.get(
            "/sandbox/lastmodified", params={"resource": "invoices"}, headers=api.headers
        )
    ).json()
    assert stamps["items"] == [
        {
            "id": "1",
            "last_modified": "2025-03-10T11:15:30+00:00",
            "last_modified_stockholm": "2025-03-10T12:15:30+01:00",
        }
    ]
