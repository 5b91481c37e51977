"""Sample customers and invoices in a Fortnox sandbox company (demo and e2e tests)."""

from __future__ import annotations

import random
from typing import Any

import httpx
from nordflow_connectors.resilience import SlidingWindowLimiter, send_with_retries

# One recipient per distribution channel: PEPPOL (GLN), e-mail, internet bank, paper.
CUSTOMERS: tuple[dict[str, Any], ...] = (
    {
        "Name": "Byggbolaget Norr AB",
        "OrganisationNumber": "556677-8899",
        "Type": "COMPANY",
        "GLN": "7300010000001",
        "City": "Umeå",
        "ZipCode": "90326",
        "Address1": "Storgatan 10",
    },
    {
        "Name": "Kafé Solsidan AB",
        "OrganisationNumber": "559012-3450",
        "Type": "COMPANY",
        "EmailInvoice": "ekonomi@solsidan.example",
        "City": "Malmö",
        "ZipCode": "21122",
        "Address1": "Hamngatan 3",
    },
    {
        "Name": "Anna Andersson",
        "Type": "PRIVATE",
        # Registered for e-invoices in her internet bank (see `register_b2c_consumers`).
        "OrganisationNumber": "19811218-9876",
        "City": "Göteborg",
        "ZipCode": "41101",
        "Address1": "Linnégatan 7",
    },
    # No e-mail, no PEPPOL registration: its invoices are printed and posted.
    {
        "Name": "Lantbruket i Ås AB",
        "OrganisationNumber": "556123-4567",
        "Type": "COMPANY",
        "City": "Ås",
        "ZipCode": "83005",
        "Address1": "Gårdsvägen 4",
    },
)
# A customer whose organisation number fails its check digit: its invoices are rejected.
BAD_CUSTOMER = {
    "Name": "Felregistrerad AB",
    "OrganisationNumber": "556036-0794",
    "Type": "COMPANY",
    "City": "Lund",
    "ZipCode": "22100",
    "Address1": "Gatan 1",
}
ARTICLES = (
    ("Konsulttimme", 950, 25),
    ("Byggmaterial", 1240, 25),
    ("Livsmedel", 89, 12),
    ("Facklitteratur", 349, 6),
)


class SandboxWriter:
    """Creates records in one sandbox company, within its 25-per-5-seconds limit."""

    def __init__(self, fortnox_url: str, token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=f"{fortnox_url}/3/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
        )
        self.limiter = SlidingWindowLimiter(20, 5.0)

    async def aclose(self) -> None:
        """Close the client."""
        await self.http.aclose()

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request, throttled and retried on 429/5xx."""

        async def send() -> httpx.Response:
            slot = await self.limiter.acquire()
            try:
                return await self.http.request(method, path, json=body)
            finally:
                self.limiter.done(slot)

        response = await send_with_retries(send, attempts=8)
        response.raise_for_status()
        return response.json()

    async def customer(self, fields: dict[str, Any]) -> str:
        """Create a customer; its number."""
        body = await self.call("POST", "customers", {"Customer": fields})
        return str(body["Customer"]["CustomerNumber"])

    async def invoice(
        self,
        customer_number: str,
        rng: random.Random,
        rows: int = 2,
        your_reference: str | None = "Inköp",
    ) -> str:
        """Create an invoice with random rows; its document number."""
        picked = rng.sample(ARTICLES, k=min(rows, len(ARTICLES)))
        body = await self.call(
            "POST",
            "invoices",
            {
                "Invoice": {
                    "CustomerNumber": customer_number,
                    "YourReference": your_reference or "",
                    "InvoiceRows": [
                        {
                            "Description": name,
                            "DeliveredQuantity": rng.randint(1, 9),
                            "Price": price,
                            "VAT": vat,
                        }
                        for name, price, vat in picked
                    ],
                }
            },
        )
        return str(body["Invoice"]["DocumentNumber"])


BIS3_INVOICE = (
    "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
)


async def register_peppol_recipients(smp_url: str) -> None:
    """Register the sample customers that have a GLN as PEPPOL participants in the SMP."""
    for customer in CUSTOMERS:
        if customer.get("GLN"):
            await register_peppol_participant(smp_url, f"0088:{customer['GLN']}")


# Consumers registered for e-invoices in their internet bank (the B2C bank sandbox).
B2C_CONSUMERS = ("19811218-9876",)
# The GLN of the Visma eAccounting sample customer (nordflow_local.sources).
EXTRA_PEPPOL_GLNS = ("7359999123454",)


async def register_peppol_participant(smp_url: str, participant: str) -> None:
    """Register a participant in the SMP for PEPPOL BIS invoices (e.g. `0088:7300010000001`)."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.put(
            f"{smp_url}/admin/participants/iso6523-actorid-upis::{participant}",
            json={"document_types": [BIS3_INVOICE]},
        )
        response.raise_for_status()


async def register_b2c_consumers(bank_url: str) -> None:
    """Register the sample consumers for e-invoices from every issuer in the bank sandbox."""
    async with httpx.AsyncClient(timeout=10) as http:
        for number in B2C_CONSUMERS:
            digits = number.replace("-", "")
            response = await http.put(
                f"{bank_url}/sandbox/consumers/{digits}", json={"accepts_all_issuers": True}
            )
            response.raise_for_status()


async def create_invoices(
    fortnox_url: str,
    token: str,
    count: int,
    *,
    bad: int = 0,
    seed: int = 7,
    smp_url: str | None = None,
    bank_url: str | None = None,
) -> list[str]:
    """``count`` valid invoices spread over the sample customers, plus ``bad`` invalid ones.

    With ``smp_url`` the customers with a GLN are registered in that SMP first, so their
    invoices go out as PEPPOL e-invoices; with ``bank_url`` the consumer is registered for
    e-invoices in that bank, so hers go to her internet bank.
    """
    if smp_url:
        await register_peppol_recipients(smp_url)
    if bank_url:
        await register_b2c_consumers(bank_url)
    rng = random.Random(seed)  # noqa: S311 - sample data, not crypto
    writer = SandboxWriter(fortnox_url, token)
    try:
        customers = [await writer.customer(c) for c in CUSTOMERS]
        numbers = [await writer.invoice(customers[i % len(customers)], rng) for i in range(count)]
        if bad:
            bad_customer = await writer.customer(BAD_CUSTOMER)
            numbers += [await writer.invoice(bad_customer, rng) for _ in range(bad)]
    finally:
        await writer.aclose()
    return numbers
