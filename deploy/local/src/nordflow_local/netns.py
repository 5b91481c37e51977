"""Test hosts in Linux network namespaces on one host-only bridge (root only, `ip` from
iproute2): each host its own namespace and veth pair, addresses link-local, nothing routed
off the machine; a host can be cut off (its link down) and reconnected."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Link-local: never routed beyond the bridge, so no traffic can leave the machine.
SUBNET = "169.254.77"
BRIDGE = "nfk-br0"


class NetnsError(RuntimeError):
    """A namespace or link could not be set up."""


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise NetnsError(f"{' '.join(command)}: {result.stderr.strip()}")


def _quiet_ip(*args: str) -> None:
    subprocess.run(["ip", *args], capture_output=True, timeout=30, check=False)


@dataclass(frozen=True)
class Host:
    """One test host: its namespace, its address, the veth end inside it."""

    name: str
    address: str
    inner: str  # the veth end in the namespace
    outer: str  # the veth end on the bridge

    def exec_prefix(self) -> list[str]:
        """Prefix a command with this to run it inside the host's namespace."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        """Take the host off the network (its link down): its peers see it vanish."""
        _ip("link", "set", self.inner, "down", netns=self.name)

    def reconnect(self) -> None:
        """Bring its link up again."""
        _ip("link", "set", self.inner, "up", netns=self.name)


def host_name(index: int) -> str:
    """The namespace of host ``index`` (1-based)."""
    return f"nfk-b{index}"


def teardown(count: int) -> None:
    """Delete the namespaces, veth pairs and bridge (also what a killed run left behind)."""
    for i in range(1, count + 1):
        _quiet_ip("netns", "del", host_name(i))
        _quiet_ip("link", "del", f"{host_name(i)}h")
    _quiet_ip("link", "del", BRIDGE)


@contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    """``count`` hosts at `169.254.77.11`, `.12`, …, reachable from this host (`.1` on the
    bridge); always torn down at the end."""
    teardown(count)
    try:
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        made = []
        for i in range(1, count + 1):
            name = host_name(i)
            host = Host(name, f"{SUBNET}.{10 + i}", f"{name}n", f"{name}h")
            _ip("netns", "add", name)
            _ip("link", "add", host.outer, "type", "veth", "peer", "name", host.inner)
            _ip("link", "set", host.inner, "netns", name)
            _ip("link", "set", host.outer, "master", BRIDGE)
            _ip("link", "set", host.outer, "up")
            _ip("addr", "add", f"{host.address}/24", "dev", host.inner, netns=name)
            _ip("link", "set", host.inner, "up", netns=name)
            _ip("link", "set", "lo", "up", netns=name)
            made.append(host)
        yield made
    finally:
        teardown(count)
