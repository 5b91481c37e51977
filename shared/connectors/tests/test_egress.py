"""The outbound guard: only public addresses, checked after DNS, on every client."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nordflow_connectors import egress
from nordflow_connectors.client_credentials import ClientCredentialsSession
from nordflow_connectors.fortnox import FortnoxClient
from nordflow_connectors.oauth import InMemoryTokenStore, OAuthSession, Tokens
from nordflow_sandboxes.fortnox.testing import RunningFortnoxSandbox, SandboxCompany
from pydantic import SecretStr

INTERNAL_V4 = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared (CGNAT)
    "0.0.0.0",  # noqa: S104 - an address under test
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
]


@pytest.mark.parametrize("address", INTERNAL_V4)
def test_internal_ipv4_addresses_and_their_ipv6_forms_are_refused(address: str) -> None:
    v4 = ipaddress.IPv4Address(address)
    assert egress.address_problem(v4) is not None
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4))
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80))
    for form in (mapped, nat64, sixtofour):
        assert egress.address_problem(form) is not None, form


@pytest.mark.parametrize(
    "address", ["::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001::1"]
)
def test_internal_ipv6_addresses_are_refused(address: str) -> None:
    assert egress.address_problem(ipaddress.IPv6Address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2a00:1450:4001:80b::200e"])
def test_public_addresses_pass(address: str) -> None:
    assert egress.address_problem(ipaddress.ip_address(address)) is None
    assert egress.address_problem(ipaddress.IPv6Address("::ffff:8.8.8.8")) is None


private_v4 = st.one_of(
    st.integers(0x0A000000, 0x0AFFFFFF),
    st.integers(0x7F000000, 0x7FFFFFFF),
    st.integers(0xAC100000, 0xAC1FFFFF),
    st.integers(0xC0A80000, 0xC0A8FFFF),
    st.integers(0xA9FE0000, 0xA9FEFFFF),
).map(ipaddress.IPv4Address)


@given(private_v4, st.sampled_from(["plain", "mapped", "nat64"]))
def test_any_private_ipv4_is_refused_in_every_form(v4: ipaddress.IPv4Address, form: str) -> None:
    address: egress.IPAddress = v4
    if form == "mapped":
        address = ipaddress.IPv6Address(f"::ffff:{v4}")
    elif form == "nat64":
        address = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4))
    assert egress.address_problem(address) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080",
        "http://api.localhost",
        "https://fortnox.default.svc/3",
        "https://fortnox.default.svc.cluster.local",
        "http://metadata.google.internal",
        "http://printer.local",
        "http://fortnox",
        "http://127.0.0.1",
        "http://[::1]:80",
        "http://[::ffff:10.0.0.1]",
        "http://[64:ff9b::a9fe:a9fe]",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_internal_names_are_refused_by_their_form(url: str) -> None:
    assert egress.url_problem(url) is not None


def test_public_names_pass_by_their_form() -> None:
    assert egress.url_problem("https://api.fortnox.se/3") is None
    assert egress.url_problem("https://connect.visma.com/connect/token") is None


@pytest.fixture
def resolves(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names this test's DNS answers for (others resolve as usual)."""
    answers: dict[str, list[str]] = {}
    real = asyncio.AbstractEventLoop.getaddrinfo

    async def getaddrinfo(self: Any, host: Any, port: Any, **kwargs: Any) -> Any:
        if host in answers:
            family = {4: socket.AF_INET, 6: socket.AF_INET6}
            return [
                (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]
            ]
        return await real(self, host, port, **kwargs)

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)
    return answers


async def test_a_public_name_that_resolves_to_an_internal_address_is_refused(
    resolves: dict[str, list[str]],
) -> None:
    resolves["partner.example.com"] = ["127.0.0.1"]
    resolves["rebind.example.com"] = ["8.8.8.8", "10.0.0.7"]  # one good, one internal
    resolves["mapped.example.com"] = ["::ffff:169.254.169.254"]
    for name in resolves:
        with pytest.raises(egress.ForbiddenDestinationError) as refused:
            await egress.resolve_public(name, 443, allow=False)
        assert "10.0.0.7" not in str(refused.value)  # what it resolved to is not told
        assert name in str(refused.value)


async def test_the_connection_goes_to_the_checked_address(
    resolves: dict[str, list[str]], sandbox: RunningFortnoxSandbox, company: SandboxCompany
) -> None:
    """The name is resolved once by the guard and the socket opened to that address."""
    port = httpx.URL(sandbox.base_url).port
    resolves["fortnox.example.com"] = ["127.0.0.1"]
    client = FortnoxClient(
        f"http://fortnox.example.com:{port}",
        SecretStr(company.token),
        transport=egress.guarded_transport(allow=True),
    )
    assert await client.payments_for_invoice("1") == []
    await client.aclose()
    refusing = FortnoxClient(
        f"http://fortnox.example.com:{port}",
        SecretStr(company.token),
        transport=egress.guarded_transport(allow=False),
    )
    with pytest.raises(egress.ForbiddenDestinationError):
        await refusing.payments_for_invoice("1")
    await refusing.aclose()


async def test_partner_clients_refuse_internal_base_urls_by_default(
    sandbox: RunningFortnoxSandbox, company: SandboxCompany
) -> None:
    """Production's policy (nothing allowed): the loopback sandbox is out of reach, at once
    and without a retry."""
    egress.allow_internal(False)
    try:
        client = FortnoxClient(sandbox.base_url, SecretStr(company.token))
        with pytest.raises(egress.ForbiddenDestinationError, match="loopback"):
            await client.payments_for_invoice("1")
        await client.aclose()
    finally:
        egress.allow_internal(True)


async def test_token_clients_refuse_internal_token_urls() -> None:
    expired = Tokens(SecretStr(""), SecretStr("refresh"), egress_epoch())
    session = OAuthSession(
        "http://169.254.169.254/token",
        "client",
        SecretStr("secret"),
        InMemoryTokenStore(expired),
        transport=egress.guarded_transport(allow=False),
    )
    with pytest.raises(egress.ForbiddenDestinationError):
        await session.access_token()
    await session.aclose()
    credentials = ClientCredentialsSession(
        "http://[::ffff:127.0.0.1]:9/token",
        "client",
        SecretStr("secret"),
        scope="read",
        transport=egress.guarded_transport(allow=False),
    )
    with pytest.raises(egress.ForbiddenDestinationError):
        await credentials.access_token()
    await credentials.aclose()


def egress_epoch() -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
async def redirecting() -> AsyncIterator[str]:
    """A server on loopback whose every answer redirects to the cloud metadata address."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.1 stands in for a partner's public address in this test."""
    real = egress.address_problem

    def problem(address: egress.IPAddress) -> str | None:
        return None if str(address) == "127.0.0.1" else real(address)

    monkeypatch.setattr(egress, "address_problem", problem)
    monkeypatch.setattr(egress, "name_problem", lambda host: None)


@pytest.mark.usefixtures("loopback_is_public")
async def test_redirects_are_not_followed_and_never_to_internal_addresses(
    redirecting: str,
) -> None:
    transport = egress.guarded_transport(allow=False)
    async with egress.client(transport=transport) as http:
        answer = await http.get(f"{redirecting}/3/invoices")
        assert answer.status_code == 302  # handed back, not followed
        with pytest.raises(egress.ForbiddenDestinationError):
            await http.get(f"{redirecting}/3/invoices", follow_redirects=True)
