"""The one guard on outbound calls to addresses a tenant supplies (partner base URLs, OAuth
token URLs, a factor's API or SFTP host): only public addresses are connected to.

The check is made on the address actually connected to, after DNS: a name is resolved once,
every address it resolves to is checked (a name that also answers with a private address is
refused: DNS rebinding), and the connection is opened to the checked address — TLS still
verifies the certificate against the name (SNI). Refused: loopback, private, link-local,
shared (CGNAT), multicast, reserved and unspecified addresses, those hidden in IPv6 forms
(IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4, Teredo), and names that only
mean something inside a cluster (``localhost``, ``*.svc``, ``*.cluster.local``, ``*.internal``,
``*.local``, a name without a dot). Because the guard sits where connections are opened, a
redirect (when a client follows one) is checked like the first request.

A process that talks to local sandboxes (tests, the local stack) allows internal addresses
with ``ALLOW_INTERNAL_URLS`` (``allow_internal``); nothing else changes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = ipaddress.ip_network("64:ff9b::/96")
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".svc", ".cluster.local", ".lan")


class ForbiddenDestinationError(httpx.RequestError):
    """A call to an address that is not public was refused before any connection; the
    message names the host as given, never what it resolved to."""

    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"refused to connect to {host!r}: {why}")
        self.host = host
        self.why = why


_allow_internal = False


def allow_internal(allowed: bool) -> None:
    """Set this process's policy (``ALLOW_INTERNAL_URLS``): True lets clients reach loopback
    and private addresses (local sandboxes). Clients built afterwards with the default
    transport follow it."""
    global _allow_internal  # noqa: PLW0603 - the process's one switch, set from settings
    _allow_internal = allowed


def internal_allowed() -> bool:
    """Whether this process lets clients reach internal addresses."""
    return _allow_internal


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, NAT64, 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why an address may not be connected to, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None:
            return "a Teredo address"
        inner = embedded_ipv4(address)
        if inner is not None:
            return address_problem(inner)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified or address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return "a private or internal address"
    return None


def name_problem(host: str) -> str | None:
    """Why a host name is internal by its form alone (before DNS), or None."""
    name = host.rstrip(".").lower()
    if not name:
        return "no host"
    try:
        literal = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        return address_problem(literal)
    if name == "localhost" or name.endswith(INTERNAL_SUFFIXES):
        return "a cluster-internal name"
    if "." not in name:
        return "a name without a domain (it resolves inside the cluster)"
    return None


def url_problem(url: str) -> str | None:
    """Why a URL's host is internal by its form (for a 422 on the field that holds it)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return "not a URL"
    return name_problem(host)


async def resolve_public(host: str, port: int, *, allow: bool | None = None) -> list[str]:
    """The addresses to connect to for ``host``: every one it resolves to, checked.

    Raises `ForbiddenDestinationError` when the name, or any address it resolves to, is not
    public (unless internal addresses are allowed, ``allow`` or the process's policy).
    """
    allowed = internal_allowed() if allow is None else allow
    if not allowed and (why := name_problem(host)) is not None:
        raise ForbiddenDestinationError(host, why)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {host!r}: {exc.strerror}") from None
    addresses = _unique(str(info[4][0]) for info in infos)
    if not allowed:
        for text in addresses:
            why = address_problem(ipaddress.ip_address(text.split("%")[0]))
            if why is not None:
                raise ForbiddenDestinationError(host, f"it resolves to {why}")
    return addresses


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with every TCP connection checked by ``resolve_public`` and
    opened to a checked address."""

    def __init__(self, allow: bool | None = None) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow = allow

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve, check, then connect to the first checked address that answers."""
        addresses = await resolve_public(host, port, allow=self._allow)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host!r}")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        """Never: partners are reached over TCP."""
        raise ForbiddenDestinationError(path, "a unix socket")

    async def sleep(self, seconds: float) -> None:
        """As the inner backend sleeps."""
        await self._inner.sleep(seconds)


def guarded_transport(
    *, allow: bool | None = None, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections pass the guard (``allow``: None follows the
    process's policy, True or False decides for this transport)."""
    transport = httpx.AsyncHTTPTransport(verify=verify, trust_env=False)
    # httpx builds its httpcore pool without a backend option; the pool's backend is the one
    # place every connection (first request, keep-alive renewal, redirect) is opened.
    transport._pool._network_backend = GuardedBackend(allow)
    return transport


def client(**options: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on a guarded transport that never follows redirects by itself
    (``transport`` and ``verify`` may be given; a given transport is used as it is)."""
    transport = options.pop("transport", None)
    verify = options.pop("verify", True)
    options.setdefault("follow_redirects", False)
    return httpx.AsyncClient(
        transport=transport or guarded_transport(verify=verify), trust_env=False, **options
    )
