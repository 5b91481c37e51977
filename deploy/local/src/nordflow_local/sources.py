"""Sample documents in the Visma eAccounting, Visma.net and Sirvoy sandboxes, and Winner
orders pushed to erp-poller (demo and tests); what the Fortnox and Tripletex sandboxes hold.

Only HTTP, through each sandbox's documented admin routes (``/sandbox/...``) and its partner
API, so deploy/local needs no sandbox package at runtime. Every customer and tenant profile
here maps cleanly (organisation numbers with valid check digits, full addresses, the
country's VAT rates) except the deliberate bad customers: their organisation number fails its
check digit, so the mapper rejects their invoices naming ``buyer.company_id``.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from nordflow_connectors import egress
from nordflow_connectors.oauth import InMemoryTokenStore, OAuthError, OAuthSession, Tokens
from nordflow_connectors.resilience import SlidingWindowLimiter, send_with_retries
from nordflow_schemas.invoice import Address, Party
from nordflow_schemas.money import CENT
from nordflow_schemas.tenant import AccountScheme, BankAccount, Locale, TenantProfile
from nordflow_signing import signature_headers
from pydantic import SecretStr

VISMA_EACCOUNTING = "visma-eaccounting"
VISMA_NET = "visma-net"
SIRVOY = "sirvoy"
WINNER = "winner"
TIMEOUT = 15.0
# eAccounting allows 600 requests a minute per client and endpoint; the erp-poller polls with
# the same client, so the sample writer keeps to half of it.
VISMA_EACCOUNTING_WRITER_LIMIT = (300, 60.0)

# The tenants' profiles (`erp-poller tenants profile set`): sellers that pass the mapper's
# checks; the Norwegian tenant in Oslo's time zone, in Norwegian and kroner.
PROFILES: dict[str, TenantProfile] = {
    VISMA_EACCOUNTING: TenantProfile(
        legal_name="Demo Bygg AB",
        country="SE",
        time_zone="Europe/Stockholm",
        locale=Locale.SV,
        accounting_currency="SEK",
        seller=Party(
            name="Demo Bygg AB",
            company_id="556036-0793",
            vat_id="SE556036079301",
            address=Address(
                lines=("Storgatan 1",), postal_code="11122", city="Stockholm", country_code="SE"
            ),
            email="faktura@demobygg.example",
        ),
        bank_accounts=(BankAccount(scheme=AccountScheme.BANKGIRO, account_id="5050-1055"),),
    ),
    VISMA_NET: TenantProfile(
        legal_name="Demo Fjord AS",
        country="NO",
        time_zone="Europe/Oslo",
        locale=Locale.NB,
        accounting_currency="NOK",
        seller=Party(
            name="Demo Fjord AS",
            company_id="974760673",
            vat_id="NO974760673MVA",
            address=Address(
                lines=("Storgata 1",), postal_code="0155", city="Oslo", country_code="NO"
            ),
            email="faktura@demofjord.example",
        ),
    ),
    SIRVOY: TenantProfile(
        legal_name="Hotell Demo AB",
        country="SE",
        time_zone="Europe/Stockholm",
        locale=Locale.SV,
        accounting_currency="SEK",
        seller=Party(
            name="Hotell Demo AB",
            company_id="556551-2349",
            vat_id="SE556551234901",
            address=Address(
                lines=("Strandvägen 1",), postal_code="11456", city="Stockholm", country_code="SE"
            ),
            email="reception@hotelldemo.example",
        ),
        bank_accounts=(BankAccount(scheme=AccountScheme.BANKGIRO, account_id="5050-1055"),),
    ),
    WINNER: TenantProfile(
        legal_name="Kjøkkenstudio Demo AS",
        country="NO",
        time_zone="Europe/Oslo",
        locale=Locale.NB,
        accounting_currency="NOK",
        seller=Party(
            name="Kjøkkenstudio Demo AS",
            company_id="998877660",
            vat_id="NO998877660MVA",
            address=Address(
                lines=("Kirkegata 5",), postal_code="0153", city="Oslo", country_code="NO"
            ),
            email="ordre@kjokkenstudio.example",
        ),
    ),
}


class SourceSampleError(RuntimeError):
    """A sandbox refused (or never answered) a sample-data request.

    The message names the sandbox, what was attempted and the HTTP status, plus the sandbox's
    own error text (which never echoes a credential); never a token or secret of ours.
    """

    def __init__(self, sandbox: str, what: str, status: int | None, detail: str) -> None:
        answered = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{sandbox} sandbox: {what} failed ({answered}): {detail}")
        self.sandbox = sandbox
        self.status = status


def _detail(response: httpx.Response) -> str:
    return " ".join(response.text.split())[:300] or response.reason_phrase


async def _send(
    sandbox: str,
    what: str,
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    create: bool,
) -> httpx.Response:
    """One request, retried on 429 (and on 5xx/timeouts unless it creates something).

    The partner APIs have no idempotency keys: a create that failed after being sent may
    have been stored, so only a 429 (refused before doing anything) is sent again.
    """
    try:
        response = await send_with_retries(send, attempts=8, only_rejected=create)
    except httpx.HTTPError as exc:
        raise SourceSampleError(sandbox, what, None, type(exc).__name__) from exc
    if response.status_code >= 400:
        raise SourceSampleError(sandbox, what, response.status_code, _detail(response))
    return response


def _number(value: Decimal) -> int | float:
    """A money amount as a JSON number (the float of a 2-decimal value prints exactly)."""
    if value != value.quantize(CENT):
        raise ValueError(f"more than 2 decimals: {value}")
    return int(value) if value == value.to_integral_value() else float(value)


def _mod10(digits: str) -> str:
    """``digits`` plus its Luhn (MOD10) check digit: a Norwegian KID or Swedish OCR."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return f"{digits}{(10 - total % 10) % 10}"


# --------------------------------------------------------------- Visma eAccounting

# A company with an org. no. and an e-mail, a private person, and a company reached by GLN
# (`EdiGlnNumber`, an e-invoice address), so each distribution channel gets one.
VISMA_EACCOUNTING_CUSTOMERS: tuple[dict[str, Any], ...] = (
    {
        "Name": "Fjällbygg Norr AB",
        "CorporateIdentityNumber": "556123-4567",
        "VatNumber": "SE556123456701",
        "EmailAddress": "faktura@fjallbygg.example",
        "InvoiceAddress1": "Skolgatan 12",
        "InvoicePostalCode": "90326",
        "InvoiceCity": "Umeå",
        "InvoiceCountryCode": "SE",
        "IsPrivatePerson": False,
    },
    {
        "Name": "Lena Holm",
        "EmailAddress": "lena.holm@example.se",
        "InvoiceAddress1": "Vasagatan 5",
        "InvoicePostalCode": "41124",
        "InvoiceCity": "Göteborg",
        "InvoiceCountryCode": "SE",
        "IsPrivatePerson": True,
    },
    {
        "Name": "Sjöfartsgrossisten AB",
        "CorporateIdentityNumber": "556789-0123",
        "VatNumber": "SE556789012301",
        "EdiGlnNumber": "7359999123454",
        "InvoiceAddress1": "Hamngatan 3",
        "InvoicePostalCode": "21122",
        "InvoiceCity": "Malmö",
        "InvoiceCountryCode": "SE",
        "IsPrivatePerson": False,
    },
)
# Its organisation number fails the Luhn check digit (…0793 would be valid).
VISMA_EACCOUNTING_BAD_CUSTOMER: dict[str, Any] = {
    "Name": "Felnummer Handel AB",
    "CorporateIdentityNumber": "556036-0794",
    "EmailAddress": "ekonomi@felnummer.example",
    "InvoiceAddress1": "Gatan 1",
    "InvoicePostalCode": "22100",
    "InvoiceCity": "Lund",
    "InvoiceCountryCode": "SE",
    "IsPrivatePerson": False,
}
# (text, unit price excl. VAT) per Swedish VAT rate; the seeded article of that rate carries it.
VISMA_EACCOUNTING_ROWS: dict[int, tuple[tuple[str, Decimal], ...]] = {
    25: (("Konsulttimme", Decimal("950.00")), ("Byggmaterial", Decimal("1240.50"))),
    12: (("Livsmedel", Decimal("89.90")), ("Hotellnatt", Decimal("1150.00"))),
    6: (("Facklitteratur", Decimal("349.00")), ("Tidskrift", Decimal("79.50"))),
}


async def visma_eaccounting_company(
    url: str, name: str, *, organisation_number: str = ""
) -> dict[str, Any]:
    """Create a company in the sandbox; the facts an erp-poller connection needs.

    Keys: ``company_id``, ``name``, ``client_id``, ``client_secret``, ``refresh_token`` (the
    first grant: the poller's, it rotates on every use), ``token_url``, ``api_base_url``
    (the root the connector adds ``/v2/`` to), ``bank_account_id``, ``terms_of_payment_id``
    and ``articles`` (article id by VAT percent). Contains secrets: never log it.
    """
    root = url.rstrip("/")
    body = {"name": name, "organisation_number": organisation_number}
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await _send(
            VISMA_EACCOUNTING,
            "creating a company (POST /sandbox/companies)",
            lambda: http.post(f"{root}/sandbox/companies", json=body),
            create=True,
        )
    facts: dict[str, Any] = response.json()
    return {**facts, "token_url": f"{root}/connect/token", "api_base_url": root}


async def _visma_eaccounting_grant(root: str, company_id: str) -> str:
    """A second refresh token for the company's client (`POST …/refresh-tokens`)."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await _send(
            VISMA_EACCOUNTING,
            f"issuing a refresh token for company {company_id}",
            lambda: http.post(f"{root}/sandbox/companies/{company_id}/refresh-tokens"),
            create=True,
        )
    return str(response.json()["refresh_token"])


class _VismaEAccountingWriter:
    """Creates records through `/v2` with its own OAuth grant, within its share of the limit.

    Its own grant matters: refresh tokens rotate, so redeeming the poller's would leave the
    poller holding a dead one.
    """

    def __init__(self, root: str, company: dict[str, Any], refresh_token: str) -> None:
        expired = Tokens(
            access_token=SecretStr(""),
            refresh_token=SecretStr(refresh_token),
            expires_at=datetime.fromtimestamp(0, UTC),
        )
        self.oauth = OAuthSession(
            f"{root}/connect/token",
            str(company["client_id"]),
            SecretStr(str(company["client_secret"])),
            InMemoryTokenStore(expired),
            timeout=TIMEOUT,
            transport=egress.guarded_transport(allow=True),  # the local sandbox
        )
        self.http = httpx.AsyncClient(base_url=f"{root}/v2/", timeout=TIMEOUT)
        self.limiter = SlidingWindowLimiter(*VISMA_EACCOUNTING_WRITER_LIMIT)

    async def aclose(self) -> None:
        """Close both HTTP clients."""
        await self.http.aclose()
        await self.oauth.aclose()

    async def create(self, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        """POST a new record; its JSON."""

        async def attempt(token: SecretStr) -> httpx.Response:
            slot = await self.limiter.acquire()
            try:
                return await self.http.post(
                    path,
                    json=body,
                    headers={"Authorization": f"Bearer {token.get_secret_value()}"},
                )
            finally:
                self.limiter.done(slot)

        async def send() -> httpx.Response:
            return await self.oauth.authorized(attempt)

        try:
            response = await _send(VISMA_EACCOUNTING, what, send, create=True)
        except OAuthError as exc:  # its message names the error, never a token
            raise SourceSampleError(VISMA_EACCOUNTING, what, exc.status, str(exc)) from exc
        result: dict[str, Any] = response.json()
        return result


def _visma_eaccounting_invoice(
    customer_id: str, articles: dict[str, Any], rng: random.Random
) -> dict[str, Any]:
    """A customer invoice with one row at each of 25, 12 and 6 % VAT."""
    rows = []
    for rate, choices in VISMA_EACCOUNTING_ROWS.items():
        text, price = rng.choice(choices)
        rows.append(
            {
                "ArticleId": str(articles[str(rate)]),
                "Text": text,
                "Quantity": rng.randint(1, 9),
                "UnitPrice": _number(price),
            }
        )
    return {"CustomerId": customer_id, "YourReference": "Nordflow demo", "Rows": rows}


async def create_visma_eaccounting_invoices(
    url: str, company: dict[str, Any], count: int, *, bad: int = 0, seed: int = 7
) -> list[str]:
    """``count`` valid invoices over the sample customers, then ``bad`` rejected ones; their ids.

    ``company`` is what :func:`visma_eaccounting_company` returned. The writer asks the
    sandbox for its own refresh token, so the one in ``company`` (the poller's) stays valid.
    """
    root = url.rstrip("/")
    rng = random.Random(seed)  # noqa: S311 - sample data, not crypto
    company_id = str(company["company_id"])
    articles = dict(company["articles"])
    writer = _VismaEAccountingWriter(
        root, company, await _visma_eaccounting_grant(root, company_id)
    )
    try:

        async def customer(fields: dict[str, Any]) -> str:
            created = await writer.create(
                "customers", fields, f"creating customer {fields['Name']!r} (POST /v2/customers)"
            )
            return str(created["Id"])

        async def invoice(customer_id: str) -> str:
            created = await writer.create(
                "customerinvoices",
                _visma_eaccounting_invoice(customer_id, articles, rng),
                "creating an invoice (POST /v2/customerinvoices)",
            )
            return str(created["Id"])

        customers = [await customer(c) for c in VISMA_EACCOUNTING_CUSTOMERS]
        ids = [await invoice(customers[i % len(customers)]) for i in range(count)]
        if bad:
            bad_customer = await customer(VISMA_EACCOUNTING_BAD_CUSTOMER)
            ids += [await invoice(bad_customer) for _ in range(bad)]
    finally:
        await writer.aclose()
    return ids


# ----------------------------------------------------------------------- Visma.net


def _wrapped(**fields: Any) -> dict[str, Any]:
    """Visma.net's update-DTO form: every field as ``{"value": …}``."""
    return {name: {"value": value} for name, value in fields.items()}


def _visma_net_customer(
    name: str,
    address: tuple[str, str, str],
    email: str,
    corporate_id: str | None = None,
) -> dict[str, Any]:
    street, postal_code, city = address
    fields: dict[str, Any] = {
        "name": name,
        "currencyId": "NOK",
        "mainAddress": _wrapped(
            addressLine1=street, postalCode=postal_code, city=city, countryId="NO"
        ),
        "mainContact": _wrapped(email=email),
        "sendInvoicesByEmail": True,
    }
    if corporate_id:
        fields |= {"corporateId": corporate_id, "vatRegistrationId": f"NO{corporate_id}MVA"}
    return _wrapped(**fields)


# Norwegian companies with valid MOD11 organisation numbers, and one private person.
VISMA_NET_CUSTOMERS: tuple[dict[str, Any], ...] = (
    _visma_net_customer(
        "Fjordbygg AS", ("Kaigaten 4", "5015", "Bergen"), "faktura@fjordbygg.example", "923456783"
    ),
    _visma_net_customer(
        "Nordlys Kafé AS",
        ("Storgata 20", "9008", "Tromsø"),
        "regnskap@nordlys.example",
        "934567897",
    ),
    _visma_net_customer("Ola Nordmann", ("Parkveien 7", "0350", "Oslo"), "ola@example.no"),
)
# Its organisation number fails the MOD11 check digit (…783 would be valid).
VISMA_NET_BAD_CUSTOMER = _visma_net_customer(
    "Feilnummer AS", ("Gata 1", "7010", "Trondheim"), "post@feilnummer.example", "923456784"
)
# (description, unit price excl. VAT) per sandbox VAT code: 3 = 25 %, 31 = 15 %, 33 = 12 %.
VISMA_NET_LINES: dict[str, tuple[tuple[str, Decimal], ...]] = {
    "3": (("Konsulenttime", Decimal("1150.00")), ("Byggevarer", Decimal("2480.50"))),
    "31": (("Servering", Decimal("245.50")), ("Matvarer", Decimal("99.90"))),
    "33": (("Persontransport", Decimal("320.00")), ("Hotellovernatting", Decimal("1290.00"))),
}


class _VismaNetWriter:
    """Creates records through `/v1` with the company's bearer token and `ipp-company-id`."""

    def __init__(self, root: str, token: str, company_id: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=f"{root}/v1/",
            timeout=TIMEOUT,
            headers={
                "Authorization": f"Bearer {token}",
                "ipp-company-id": company_id,
                "Accept": "application/json",
            },
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()

    async def create(self, path: str, body: dict[str, Any], what: str) -> str:
        """POST a new record; its number, from the 201's Location header."""
        response = await _send(
            VISMA_NET, what, lambda: self.http.post(path, json=body), create=True
        )
        location = str(response.headers.get("Location") or "")
        if not location:
            raise SourceSampleError(VISMA_NET, what, response.status_code, "no Location header")
        return location.rstrip("/").rsplit("/", 1)[-1]

    async def action(self, path: str, what: str) -> None:
        """POST an action (e.g. release)."""
        await _send(VISMA_NET, what, lambda: self.http.post(path, json={}), create=True)


async def visma_net_company_id(url: str, token: str) -> str:
    """The company a token opens, when it opens exactly one (`GET /sandbox/stats`)."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await _send(
            VISMA_NET,
            "finding the token's company (GET /sandbox/stats)",
            lambda: http.get(
                f"{url.rstrip('/')}/sandbox/stats", headers={"Authorization": f"Bearer {token}"}
            ),
            create=False,
        )
    return str(response.json()["company_id"])


def _visma_net_invoice(
    customer_number: str, rng: random.Random, kid: str | None = None
) -> dict[str, Any]:
    """An invoice with one line at each of 25, 15 and 12 % VAT."""
    lines = []
    for vat_code, choices in VISMA_NET_LINES.items():
        description, price = rng.choice(choices)
        lines.append(
            {
                "operation": "Insert",
                **_wrapped(
                    description=description,
                    quantity=rng.randint(1, 9),
                    unitPriceInCurrency=_number(price),
                    vatCodeId=vat_code,
                    uom="STK",
                ),
            }
        )
    header: dict[str, Any] = {"customerNumber": customer_number, "invoiceText": "Nordflow demo"}
    if kid:
        header["paymentReference"] = kid
    return {**_wrapped(**header), "invoiceLines": lines}


async def create_visma_net_invoices(
    url: str,
    token: str,
    company_id: str | None,
    count: int,
    *,
    bad: int = 0,
    seed: int = 7,
) -> list[str]:
    """``count`` released invoices over the sample customers, then ``bad`` rejected ones.

    Returns their reference numbers. Without ``company_id`` the token's only company is used.
    Every invoice carries a KID (the sandbox makes one); the first gets one of ours, laid out
    as customer number + running number + MOD10, as a factor's KID layout would prescribe.
    """
    root = url.rstrip("/")
    rng = random.Random(seed)  # noqa: S311 - sample data, not crypto
    company_id = company_id or await visma_net_company_id(root, token)
    writer = _VismaNetWriter(root, token, company_id)
    try:

        async def customer(body: dict[str, Any]) -> str:
            name = body["name"]["value"]
            return await writer.create(
                "customer", body, f"creating customer {name!r} (POST /v1/customer)"
            )

        async def invoice(customer_number: str, kid: str | None = None) -> str:
            number = await writer.create(
                "customerinvoice",
                _visma_net_invoice(customer_number, rng, kid),
                "creating an invoice (POST /v1/customerinvoice)",
            )
            await writer.action(
                f"customerinvoice/{number}/action/release",
                f"releasing invoice {number} (POST /v1/customerinvoice/{number}/action/release)",
            )
            return number

        customers = [await customer(c) for c in VISMA_NET_CUSTOMERS]
        numbers = []
        for i in range(count):
            owner = customers[i % len(customers)]
            digits = "".join(ch for ch in owner if ch.isdigit())
            kid = _mod10(f"{digits:0>6}{i + 1:06d}") if i == 0 else None
            numbers.append(await invoice(owner, kid))
        if bad:
            bad_customer = await customer(VISMA_NET_BAD_CUSTOMER)
            numbers += [await invoice(bad_customer) for _ in range(bad)]
    finally:
        await writer.aclose()
    return numbers


# -------------------------------------------------------------------------- Sirvoy

# Private guests, and a company guest invoiced to its business with a valid org. no.
SIRVOY_GUESTS: tuple[dict[str, Any], ...] = (
    {
        "firstName": "Anna",
        "lastName": "Berg",
        "address": "Linnégatan 7",
        "postcode": "41304",
        "city": "Göteborg",
        "country": "SE",
        "phone": "+46701112233",
        "email": "anna.berg@example.se",
    },
    {
        "firstName": "Karin",
        "lastName": "Lund",
        "businessName": "Konferensbolaget Väst AB",
        "address": "Kungsportsavenyen 10",
        "postcode": "41136",
        "city": "Göteborg",
        "country": "SE",
        "phone": "+46709998877",
        "email": "karin.lund@konferensvast.example",
    },
    {
        "firstName": "Johan",
        "lastName": "Ek",
        "address": "Drottninggatan 2",
        "postcode": "11151",
        "city": "Stockholm",
        "country": "SE",
        "phone": "+46705554433",
        "email": "johan.ek@example.se",
    },
)
SIRVOY_ORGANISATION_NUMBERS = {"Konferensbolaget Väst AB": "559234-5671"}
# Row prices include VAT: rooms and food 12 %, parking 25 %.
SIRVOY_ROOM_PRICES = (Decimal(1195), Decimal(1450), Decimal("995.50"))
SIRVOY_BREAKFAST = ("Frukost", Decimal(139), 12)
SIRVOY_PARKING = ("Parkering", Decimal(150), 25)


def _sirvoy_recipient(guest: dict[str, Any]) -> dict[str, Any] | None:
    """A company guest's invoice goes to the business; others to the guest (the default)."""
    business = guest.get("businessName")
    if not business:
        return None
    return {
        "name": f"{guest['firstName']} {guest['lastName']}",
        "businessName": business,
        "organisationNumber": SIRVOY_ORGANISATION_NUMBERS[business],
        "address": guest["address"],
        "postcode": guest["postcode"],
        "city": guest["city"],
        "country": guest["country"],
        "email": guest["email"],
    }


def _sirvoy_rows(room_price: Decimal, nights: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = [
        {
            "description": f"Dubbelrum, {nights} nätter",
            "quantity": nights,
            "unit_price": str(room_price),
            "vat_rate": 12,
        }
    ]
    extras = [SIRVOY_BREAKFAST, SIRVOY_PARKING]
    for description, price, rate in rng.sample(extras, k=rng.randint(1, len(extras))):
        rows.append(
            {
                "description": description,
                "quantity": nights * (2 if description == "Frukost" else 1),
                "unit_price": str(price),
                "vat_rate": rate,
                "account_code": "3004" if rate == 25 else "3002",
            }
        )
    return rows


class _SirvoyAdmin:
    """The account's admin routes (`/sandbox/...`, bearer token)."""

    def __init__(self, root: str, token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=f"{root}/sandbox/",
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()

    async def post(self, path: str, body: dict[str, Any] | None, what: str) -> dict[str, Any]:
        """POST to an admin route; the record's JSON."""
        response = await _send(SIRVOY, what, lambda: self.http.post(path, json=body), create=True)
        result: dict[str, Any] = response.json()
        return result


async def register_sirvoy_webhook(url: str, token: str, webhook_url: str) -> None:
    """Register the booking event webhook (erp-poller's ingest URL) for the token's account."""
    admin = _SirvoyAdmin(url.rstrip("/"), token)
    try:
        await admin.post(
            "webhooks", {"url": webhook_url}, "registering a webhook (POST /sandbox/webhooks)"
        )
    finally:
        await admin.aclose()


async def create_sirvoy_invoices(url: str, token: str, count: int, *, seed: int = 7) -> list[str]:
    """``count`` bookings with an invoice each, a credit invoice of the first, a payment on
    the last (when there are two or more); the invoice ids, the credit invoice's last.

    Guests cycle through private persons and a company guest (invoiced to its business).
    """
    rng = random.Random(seed)  # noqa: S311 - sample data, not crypto
    admin = _SirvoyAdmin(url.rstrip("/"), token)
    try:
        invoice_ids: list[str] = []
        for i in range(count):
            guest = SIRVOY_GUESTS[i % len(SIRVOY_GUESTS)]
            nights = rng.randint(1, 3)
            room_price = SIRVOY_ROOM_PRICES[i % len(SIRVOY_ROOM_PRICES)]
            booking = await admin.post(
                "bookings",
                {
                    "guest": guest,
                    "nights": nights,
                    "rooms": [{"room_name": str(101 + i), "price": str(room_price)}],
                },
                "creating a booking (POST /sandbox/bookings)",
            )
            booking_id = booking["bookingId"]
            invoice = await admin.post(
                f"bookings/{booking_id}/invoices",
                {
                    "type": "invoice",
                    "rows": _sirvoy_rows(room_price, nights, rng),
                    "recipient": _sirvoy_recipient(guest),
                },
                f"invoicing booking {booking_id} (POST /sandbox/bookings/{booking_id}/invoices)",
            )
            invoice_ids.append(str(invoice["invoiceId"]))
        if count >= 2:
            last = invoice_ids[-1]
            await admin.post(
                "payments",
                {"invoice_id": int(last), "method": "bankTransfer"},
                f"paying invoice {last} (POST /sandbox/payments)",
            )
        if count >= 1:
            first = invoice_ids[0]
            credit = await admin.post(
                f"invoices/{first}/credit",
                None,
                f"crediting invoice {first} (POST /sandbox/invoices/{first}/credit)",
            )
            invoice_ids.append(str(credit["invoiceId"]))
    finally:
        await admin.aclose()
    return invoice_ids


async def create_sirvoy_cash_receipt(url: str, token: str) -> str:
    """A booking paid at checkout by card through Stripe: a cash receipt, already paid (a
    flow that books skips it, visibly); its invoice id."""
    admin = _SirvoyAdmin(url.rstrip("/"), token)
    try:
        guest = SIRVOY_GUESTS[0]
        room_price = SIRVOY_ROOM_PRICES[0]
        booking = await admin.post(
            "bookings",
            {
                "guest": guest,
                "nights": 1,
                "rooms": [{"room_name": "201", "price": str(room_price)}],
            },
            "creating a booking (POST /sandbox/bookings)",
        )
        booking_id = booking["bookingId"]
        receipt = await admin.post(
            f"bookings/{booking_id}/invoices",
            {
                "type": "cashReceipt",
                "stripe_payment": True,
                "rows": _sirvoy_rows(room_price, 1, random.Random(1)),  # noqa: S311 - sample
            },
            f"a Stripe-paid cash receipt (POST /sandbox/bookings/{booking_id}/invoices)",
        )
    finally:
        await admin.aclose()
    return str(receipt["invoiceId"])


# -------------------------------------------------------------------------- Winner


def winner_order(quote_number: str, today: date) -> dict[str, Any]:
    """An accepted kitchen quote (NOK, a line per product group) whose payment calendar asks
    20 % in advance, due today, and 80 % on delivery six weeks later."""
    return {
        "quote_number": quote_number,
        "order_date": today.isoformat(),
        "currency": "NOK",
        "customer": {
            "customer_number": "K-1042",
            "name": "Kari Nordmann",
            "type": "private",
            "email": "kari.nordmann@example.no",
            "address": {"lines": ["Storgata 12"], "postal_code": "0155", "city": "Oslo"},
        },
        "project": {"number": f"P-{quote_number}", "name": "Kjøkken Nordmann, Storgata 12"},
        "line_mode": "product_groups",
        "lines": [
            {"product_group": "Skap", "description": "Overskap og underskap", "amount": "64000"},
            {"product_group": "Benkeplater", "description": "Benkeplate eik", "amount": "18500"},
            {"product_group": "Skap", "description": "Høyskap", "amount": "21500"},
            {"product_group": "Montering", "description": "Montering", "amount": "16000"},
        ],
        "payment_calendar": [
            {"part": 1, "label": "Forskudd", "percent": "20", "due_date": today.isoformat()},
            {
                "part": 2,
                "label": "Ved levering",
                "percent": "80",
                "due_date": (today + timedelta(days=42)).isoformat(),
            },
        ],
    }


async def push_winner_order(
    erp_poller_url: str, connection_id: str, secret: str, order: dict[str, Any]
) -> list[str]:
    """Push an accepted quote, signed, as Winner does; the order ids it becomes (one per part
    of its payment calendar, ``<quote>-<part>``)."""
    body = json.dumps(order).encode()
    headers = {"Content-Type": "application/json", **signature_headers(secret, body)}
    url = f"{erp_poller_url.rstrip('/')}/api/v1/ingest/winner/{connection_id}"
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        await _send(
            "erp-poller",
            f"pushing Winner quote {order['quote_number']} (POST {url})",
            lambda: http.post(url, content=body, headers=headers),
            create=False,
        )
    return [f"{order['quote_number']}-{part['part']}" for part in order["payment_calendar"]]


# ------------------------------------------------------------- what the books hold


async def fortnox_books(url: str, token: str) -> dict[str, list[dict[str, Any]]]:
    """A Fortnox sandbox company's customers, invoices and invoice payments (API `/3/`)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    out: dict[str, list[dict[str, Any]]] = {}
    root = f"{url.rstrip('/')}/3/"
    async with httpx.AsyncClient(base_url=root, headers=headers, timeout=TIMEOUT) as http:
        for path, key in (
            ("customers", "Customers"),
            ("invoices", "Invoices"),
            ("invoicepayments", "InvoicePayments"),
        ):
            response = await _send(
                "fortnox", f"GET /3/{path}", functools.partial(http.get, path), create=False
            )
            out[path] = list(response.json()[key])
    return out


async def tripletex_books(url: str, employee_token: str) -> dict[str, list[dict[str, Any]]]:
    """A Tripletex sandbox company's customers, projects, products, orders and invoices (the
    sandbox's admin route `GET /sandbox/records`)."""
    headers = {"Authorization": f"Bearer {employee_token}"}
    async with httpx.AsyncClient(timeout=TIMEOUT, headers=headers) as http:
        response = await _send(
            "tripletex",
            "GET /sandbox/records",
            lambda: http.get(f"{url.rstrip('/')}/sandbox/records"),
            create=False,
        )
    records: dict[str, list[dict[str, Any]]] = response.json()
    return records
