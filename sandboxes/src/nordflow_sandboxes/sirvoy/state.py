"""The Sirvoy sandbox's in-memory store: accounts by token, faults, logs and the webhook sender."""

from __future__ import annotations

import dataclasses
import itertools
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx

from nordflow_sandboxes.kit.values import STOCKHOLM, utc_now
from nordflow_sandboxes.sirvoy import serialize as out
from nordflow_sandboxes.sirvoy.domain import (
    Account,
    Booking,
    DeliveryRecord,
    Fault,
    RequestRecord,
    WebhookSettings,
)
from nordflow_sandboxes.sirvoy.webhooks import WebhookDispatcher

# Sirvoy's newer help page allows up to ten booking event webhooks per account (Sirvoy Pro).
MAX_WEBHOOK_URLS = 10


class TokenInUseError(ValueError):
    """An account was requested with a token another account already has."""


class SirvoyState:
    """Everything the Sirvoy sandbox knows, guarded by one re-entrant lock.

    Each API token opens one account (one property), so tests that create their own
    account with a random token never see each other's data. Callers hold `lock` around
    every read or change of an account; no code awaits while holding it.
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
        self.lock = threading.RLock()
        self._clock = clock
        self._webhook_defaults = webhook_defaults or WebhookSettings()
        self._request_log_size = request_log_size
        self._delivery_log_size = delivery_log_size
        self._accounts: dict[str, Account] = {}
        self._tokens: dict[str, str] = {}
        self._property_ids = itertools.count(1)
        self.webhooks = WebhookDispatcher(
            self.record_delivery, clock, timeout=webhook_timeout, transport=webhook_transport
        )

    # --------------------------------------------------------------------------- time

    def now(self) -> datetime:
        """The current instant (aware); injectable so tests can move time."""
        return self._clock()

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
            account.requests = deque(maxlen=self._request_log_size)
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

    # ------------------------------------------------------------------------- faults

    def add_fault(self, account: Account, fault: Fault) -> None:
        """Queue a fault; faults are consumed in the order they were added."""
        with self.lock:
            account.faults.append(fault)

    def take_fault(self, account: Account, method: str, path: str) -> Fault | None:
        """The first fault matching this request, with one use consumed."""
        with self.lock:
            for fault in account.faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    taken = dataclasses.replace(fault)
                    account.faults = [x for x in account.faults if x.remaining > 0]
                    return taken
            return None

    def clear_faults(self, account: Account) -> None:
        """Drop every queued fault of the account."""
        with self.lock:
            account.faults.clear()

    # ---------------------------------------------------------------- logs and stats

    def record_request(self, account: Account, record: RequestRecord) -> None:
        """Append to the account's request log (oldest entries fall off)."""
        with self.lock:
            account.requests.append(record)

    def recent_requests(self, account: Account, limit: int) -> list[RequestRecord]:
        """The last `limit` requests, oldest first."""
        with self.lock:
            records = list(account.requests)
        return records[-limit:] if limit > 0 else []

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
                "faults_pending": sum(f.remaining for f in account.faults),
                "webhook_urls": len(account.webhook_urls),
                "webhooks_pending": self.webhooks.pending(account),
            }
