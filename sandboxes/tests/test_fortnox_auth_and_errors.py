"""Authentication, company isolation and Fortnox-shaped errors for bad input."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from nordflow_sandboxes.fortnox import FortnoxState

if TYPE_CHECKING:
    from conftest import FortnoxApi


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"ErrorInformation"}
    info = dict(body["ErrorInformation"])
    assert info["error"] == 1
    assert isinstance(info["message"], str)
    assert isinstance(info["code"], int)
    return info


async def test_missing_token_is_401_with_error_information(client: httpx.AsyncClient) -> None:
    response = await client.get("/3/invoices")
    assert response.status_code == 401
    assert error_of(response)["code"] == 2000311


async def test_unknown_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/3/invoices", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert error_of(response)["code"] == 2000310


async def test_each_token_sees_only_its_own_company(
    client: httpx.AsyncClient, state: FortnoxState, api: FortnoxApi
) -> None:
    await api.customer(CustomerNumber="42", Name="Only in A")
    _other, other_token = state.create_company("Other AB")
    other = {"Authorization": f"Bearer {other_token}"}

    assert (await client.get("/3/customers/42", headers=other)).status_code == 404
    listing = (await client.get("/3/customers", headers=other)).json()
    assert listing["Customers"] == []
    assert listing["MetaInformation"]["@TotalResources"] == 0
    assert (await api.get("/3/customers/42")).json()["Customer"]["Name"] == "Only in A"


async def test_admin_creates_company_with_chosen_token(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/sandbox/companies", json={"name": "Launcher AB", "token": "known-token-1"}
    )
    assert created.status_code == 201
    assert created.json()["token"] == "known-token-1"
    assert created.json()["company_id"].startswith("cmp_")
    duplicate = await client.post(
        "/sandbox/companies", json={"name": "Again", "token": "known-token-1"}
    )
    assert duplicate.status_code == 409
    listing = await client.get("/3/invoices", headers={"Authorization": "Bearer known-token-1"})
    assert listing.status_code == 200


async def test_bad_json_is_400_naming_the_problem(api: FortnoxApi) -> None:
    response = await api.client.post(
        "/3/customers", content=b'{"Customer": {"Name": ', headers=api.headers
    )
    assert response.status_code == 400
    info = error_of(response)
    assert info["code"] == 2002115
    assert "JSON" in str(info["message"])


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", 2001392),
        (b'{"Name": "no wrapper"}', 2001392),
        (b'{"Customer": ["not", "an", "object"]}', 2001392),
        (b"[]", 2001392),
    ],
)
async def test_missing_or_wrong_wrapper_is_400(api: FortnoxApi, body: bytes, code: int) -> None:
    response = await api.client.post("/3/customers", content=body, headers=api.headers)
    assert response.status_code == 400
    info = error_of(response)
    assert info["code"] == code
    assert "Customer" in str(info["message"])


async def test_unknown_field_name_is_rejected(api: FortnoxApi) -> None:
    response = await api.post("/3/customers", {"Customer": {"Name": "X", "Nmae": "typo"}})
    assert response.status_code == 400
    info = error_of(response)
    assert info["code"] == 2001399
    assert "Nmae" in str(info["message"])


async def test_read_only_fields_are_accepted_and_ignored(api: FortnoxApi) -> None:
    customer = await api.customer()
    invoice = await api.invoice(customer["CustomerNumber"], Total=1, Balance=1, Booked=True)
    assert invoice["Total"] == 125
    assert invoice["Booked"] is False


async def test_non_numeric_value_is_400_naming_field(api: FortnoxApi) -> None:
    customer = await api.customer()
    response = await api.post(
        "/3/invoices",
        {
            "Invoice": {
                "CustomerNumber": customer["CustomerNumber"],
                "InvoiceRows": [{"Price": "abc"}],
            }
        },
    )
    assert response.status_code == 400
    info = error_of(response)
    assert info["code"] == 2000108
    assert "Price" in str(info["message"])


async def test_customer_without_name_is_400(api: FortnoxApi) -> None:
    response = await api.post("/3/customers", {"Customer": {"City": "Umeå"}})
    assert response.status_code == 400
    assert "Name" in str(error_of(response)["message"])


async def test_customer_number_in_use(api: FortnoxApi) -> None:
    await api.customer(CustomerNumber="100")
    response = await api.post(
        "/3/customers", {"Customer": {"Name": "Dup", "CustomerNumber": "100"}}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == 2000637


async def test_invalid_identifier_in_path(api: FortnoxApi) -> None:
    response = await api.get("/3/invoices/abc")
    assert response.status_code == 400
    assert error_of(response)["code"] == 2000729


async def test_unknown_resource_is_404_with_error_information(api: FortnoxApi) -> None:
    response = await api.get("/3/offers")
    assert response.status_code == 404
    error_of(response)


@pytest.mark.parametrize(
    "params",
    [
        {"filter": "paid"},
        {"limit": "501"},
        {"limit": "0"},
        {"page": "x"},
        {"lastmodified": "10/03/2025"},
        {"sortby": "balance"},
    ],
)
async def test_invalid_list_parameters_are_400(api: FortnoxApi, params: dict[str, str]) -> None:
    response = await api.get("/3/invoices", **params)
    assert response.status_code == 400
    assert error_of(response)["code"] == 2000588


async def test_invoice_for_missing_customer_is_400_with_clear_message(api: FortnoxApi) -> None:
    response = await api.post(
        "/3/invoices", {"Invoice": {"CustomerNumber": "9999", "InvoiceRows": []}}
    )
    assert response.status_code == 400
    message = str(error_of(response)["message"])
    assert "9999" in message
    assert "does not exist" in message


async def test_invalid_vat_rate_is_rejected(api: FortnoxApi) -> None:
    customer = await api.customer()
    response = await api.post(
        "/3/invoices",
        {"Invoice": {"CustomerNumber": customer["CustomerNumber"], "InvoiceRows": [{"VAT": 7}]}},
    )
    assert response.status_code == 400
    assert "VAT" in str(error_of(response)["message"])


async def test_too_long_external_reference_is_rejected(api: FortnoxApi) -> None:
    customer = await api.customer()
    response = await api.post(
        "/3/invoices",
        {
            "Invoice": {
                "CustomerNumber": customer["CustomerNumber"],
                "ExternalInvoiceReference1": "x" * 81,
            }
        },
    )
    assert response.status_code == 400
    assert "ExternalInvoiceReference1" in str(error_of(response)["message"])
