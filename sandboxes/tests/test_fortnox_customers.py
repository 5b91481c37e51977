"""Customer register: numbering, fields, update and listing."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import FortnoxApi


async def test_customer_numbers_are_assigned_in_sequence(api: FortnoxApi) -> None:
    first = await api.customer()
    second = await api.customer()
    assert (first["CustomerNumber"], second["CustomerNumber"]) == ("1", "2")
    explicit = await api.customer(CustomerNumber="K-77")
    assert explicit["CustomerNumber"] == "K-77"
    assert (await api.customer())["CustomerNumber"] == "3"


async def test_customer_fields_round_trip_with_defaults(api: FortnoxApi) -> None:
    created = await api.customer(
        Name="Fjällbolaget AB",
        OrganisationNumber="556036-0793",
        Type="COMPANY",
        VATType="EUREVERSEDVAT",
        VATNumber="SE556036079301",
        Email="info@fjall.se",
        EmailInvoice="faktura@fjall.se",
        GLN="7300009012345",
        CountryCode="se",
        Address1="Storgatan 1",
        ZipCode="90325",
        City="Umeå",
        DefaultDeliveryTypes={"Invoice": "EMAIL"},
    )
    fetched = (await api.get(f"/3/customers/{created['CustomerNumber']}")).json()["Customer"]
    assert fetched == created
    assert fetched["@url"].endswith(f"/3/customers/{created['CustomerNumber']}")
    assert fetched["CountryCode"] == "SE"
    assert fetched["Currency"] == "SEK"
    assert fetched["Active"] is True
    assert fetched["DefaultDeliveryTypes"] == {"Invoice": "EMAIL", "Offer": None, "Order": None}
    assert fetched["VATType"] == "EUREVERSEDVAT"


async def test_update_changes_only_sent_fields(api: FortnoxApi) -> None:
    created = await api.customer(Name="Old name", City="Luleå")
    number = created["CustomerNumber"]
    response = await api.put(f"/3/customers/{number}", {"Customer": {"Name": "New name"}})
    assert response.status_code == 200
    updated = response.json()["Customer"]
    assert (updated["Name"], updated["City"]) == ("New name", "Luleå")


async def test_update_of_missing_customer_is_404(api: FortnoxApi) -> None:
    response = await api.put("/3/customers/404", {"Customer": {"Name": "x"}})
    assert response.status_code == 404


async def test_bad_enum_and_gln_are_rejected(api: FortnoxApi) -> None:
    bad_type = await api.post("/3/customers", {"Customer": {"Name": "x", "Type": "PERSON"}})
    assert bad_type.status_code == 400
    bad_gln = await api.post("/3/customers", {"Customer": {"Name": "x", "GLN": "123"}})
    assert bad_gln.status_code == 400


async def test_customer_list_shape_search_and_paging(api: FortnoxApi) -> None:
    for index in range(5):
        await api.customer(Name=f"Kund {index}", OrganisationNumber=f"55600000{index}")
    await api.customer(Name="Annan firma")
    page = (await api.get("/3/customers", limit=2, page=2)).json()
    assert page["MetaInformation"] == {"@CurrentPage": 2, "@TotalPages": 3, "@TotalResources": 6}
    assert [c["CustomerNumber"] for c in page["Customers"]] == ["3", "4"]
    assert set(page["Customers"][0]) == {
        "@url",
        "Address1",
        "Address2",
        "City",
        "CustomerNumber",
        "Email",
        "Name",
        "OrganisationNumber",
        "Phone",
        "ZipCode",
    }
    found = (await api.get("/3/customers", name="kund")).json()["Customers"]
    assert len(found) == 5
    by_org = (await api.get("/3/customers", organisationnumber="556000003")).json()["Customers"]
    assert [c["Name"] for c in by_org] == ["Kund 3"]
