"""The Sirvoy sandbox's in-memory store: accounts by token, faults, logs and the webhook sender."""

from __future__ import annotations

import dataclasses
import itertools
import json
import secrets
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx

from nordflow_sandboxes.kit.state import SandboxState, TokenInUseError
from nordflow_sandboxes.kit.values import STOCKHOLM, utc_now
from nordflow_sandboxes.sirvoy import serialize as out
from nordflow_sandboxes.sirvoy.domain import (
    Account,
    Booking,
    DeliveryRecord,
    WebhookSettings,
)
from nordflow_sandboxes.sirvoy.webhooks import WebhookDispatcher

# Sirvoy's newer help page allows up to ten booking event webhooks per account (Sirvoy Pro).
MAX_WEBHOOK_URLS = 10


class SirvoyState(SandboxState[Account]):
    """Everything the Sirvoy sandbox knows, guarded by one re-entrant lock.

    Each API token opens one account (one property), so tests that create their own
    account with a random token never see each other's data.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utc_now,
        webhook_defaults: WebhookSettings | None = None,
        request_log_size: int = 500,
        delivery_log_size: int = 1000,
        webhook_timeout: float = 5.0,
        webhook_transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(clock=clock, request_log_size=request_log_size)
        self._webhook_defaults = webhook_defaults or WebhookSettings()
        self._delivery_log_size = delivery_log_size
        self._accounts: dict[str, Account] = {}
        self._tokens: dict[str, str] = {}
        self._property_ids = itertools.count(1)
        self.webhooks = WebhookDispatcher(
            self.record_delivery, clock, timeout=webhook_timeout, transport=webhook_transport
        )

    def today(self) -> date:
        """Today's date in Sweden (the sandbox's properties are Swedish)."""
        return self.now().astimezone(STOCKHOLM).date()

    # ----------------------------------------------------------------------- accounts

    def create_account(
        self,
        name: str,
        token: str | None = None,
        webhook_secret: str | None = None,
        webhook_urls: list[str] | None = None,
    ) -> tuple[Account, str]:
        """Create an empty account reachable with `token` (both secrets generated when None)."""
        with self.lock:
            token = token or secrets.token_urlsafe(24)
            if token in self._tokens:
                raise TokenInUseError("that token already belongs to an account")
            account = Account(
                account_id=f"acc_{secrets.token_hex(8)}",
                property_id=next(self._property_ids),
                name=name,
                webhook_secret=webhook_secret or secrets.token_urlsafe(32),
                created=self.now(),
                webhook=dataclasses.replace(self._webhook_defaults),
                webhook_urls=list(webhook_urls or [])[:MAX_WEBHOOK_URLS],
            )
            account.requests = self.request_log()
            account.deliveries = deque(maxlen=self._delivery_log_size)
            self._accounts[account.account_id] = account
            self._tokens[token] = account.account_id
            return account, token

    def account_for_token(self, token: str) -> Account | None:
        """The account an API token opens, if any."""
        with self.lock:
            account_id = self._tokens.get(token)
            return self._accounts.get(account_id) if account_id else None

    def accounts(self) -> list[Account]:
        """All accounts, oldest first."""
        with self.lock:
            return list(self._accounts.values())

    def tenants(self) -> list[Account]:
        """All accounts, oldest first."""
        return self.accounts()

    # ----------------------------------------------------------------------- webhooks

    def publish(self, account: Account, booking: Booking, event: str) -> str | None:
        """Send the booking as a callback to the account's URLs; the delivery id, if any."""
        with self.lock:
            if not account.webhook_urls:
                return None
            payload = out.booking_event(account, booking, event, self.now())
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            return self.webhooks.submit(account, event, booking.booking_id, body)

    def record_delivery(self, account: Account, record: DeliveryRecord) -> None:
        """Append to the account's delivery log (oldest entries fall off)."""
        with self.lock:
            account.deliveries.append(record)

    def recent_deliveries(self, account: Account, limit: int) -> list[DeliveryRecord]:
        """The last `limit` delivery attempts, oldest first."""
        with self.lock:
            records = list(account.deliveries)
        return records[-limit:] if limit > 0 else []

    def close(self) -> None:
        """Stop the webhook sender thread."""
        self.webhooks.stop()

    # ------------------------------------------------------------------------- stats

    def stats(self, account: Account) -> dict[str, Any]:
        """Counts of the account's records."""
        with self.lock:
            return {
                "account_id": account.account_id,
                "property_id": account.property_id,
                "name": account.name,
                "bookings": len(account.bookings),
                "invoices": len(account.invoices),
                "payments": len(account.payments),
                "requests": len(account.requests),
                "faults_pending": self.faults_pending(account),
                "webhook_urls": len(account.webhook_urls),
                "webhooks_pending": self.webhooks.pending(account),
            }
