"""What the delivery sandboxes received, by invoice (demo and e2e: proof of exactly once).

Each send carries the key `<invoice id>:<channel>:<attempt>`: the partners store it as the
client reference, and e-mail carries it in the Message-ID (`<key, %-escaped @domain>`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx


@dataclass(frozen=True)
class Received:
    """One document a partner sandbox holds."""

    channel: str
    reference: str  # the partner's id (transmission, letter, e-invoice, Message-ID)
    key: str


def invoice_of(key: str) -> str:
    """The invoice id in a send's idempotency key."""
    return key.rsplit(":", 2)[0]


async def _listing(http: httpx.AsyncClient, url: str, token: str | None, field: str) -> list[Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.get(url, headers=headers)
    response.raise_for_status()
    items: list[Any] = response.json()[field]
    return items


async def received(env: Mapping[str, str]) -> dict[str, list[Received]]:
    """Everything the running stack's delivery sandboxes received, by invoice id."""
    out: dict[str, list[Received]] = defaultdict(list)
    partners = (
        ("peppol", "PEPPOL_AP", "/api/v1/documents", "documents"),
        ("paper", "PRINT_POST", "/api/v1/letters", "letters"),
        ("b2c_bank", "B2C_BANK", "/api/v1/einvoices", "einvoices"),
    )
    async with httpx.AsyncClient(timeout=15) as http:
        for channel, name, path, field in partners:
            base = env.get(f"SANDBOX_{name}_URL")
            if not base:
                continue
            for item in await _listing(http, base + path, env[f"SANDBOX_{name}_TOKEN"], field):
                key = item.get("client_reference") or ""
                out[invoice_of(key)].append(Received(channel, str(item["id"]), key))
        if base := env.get("SANDBOX_SMTP_URL"):
            for message in await _listing(http, f"{base}/sandbox/messages", None, "messages"):
                message_id = message.get("message_id") or ""
                if message.get("kind", "message") != "message" or "@" not in message_id:
                    continue  # bounces the sandbox generated
                key = unquote(message_id.strip("<>").rpartition("@")[0])
                out[invoice_of(key)].append(Received("email", message_id, key))
    return dict(out)
