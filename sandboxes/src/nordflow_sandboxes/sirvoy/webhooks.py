"""Booking event webhook delivery: signing, retries with back-off, duplicates and drops.

Documented by Sirvoy (help centre, "Use booking event webhooks"): a POST with the booking as
JSON body to each registered URL whenever a booking is created, modified, cancelled or
restored; anything but 200 is retried up to 10 times with exponential back-off, then the
callback is discarded; callbacks may arrive out of order.

ASSUMPTION (confirm with Sirvoy): Sirvoy documents no signature (it relies on HTTPS and a
published list of source IPs). The sandbox signs each attempt the conventional way:
`X-Sirvoy-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>`.
Each attempt is signed afresh (new `t`); the body of every attempt and copy is identical.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from nordflow_sandboxes.sirvoy.domain import Account, DeliveryOutcome, DeliveryRecord

logger = logging.getLogger("nordflow_sandboxes.sirvoy.webhooks")

SIGNATURE_HEADER = "X-Sirvoy-Signature"
MAX_BACKOFF_SECONDS = 3600.0


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The (assumed) signature header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    account: Account = field(compare=False)
    delivery_id: str = field(compare=False)
    url: str = field(compare=False)
    secret: str = field(compare=False)
    body: bytes = field(compare=False)
    event: str = field(compare=False)
    booking_id: int = field(compare=False)
    copy: int = field(compare=False)
    max_attempts: int = field(compare=False)
    backoff_seconds: float = field(compare=False)
    attempt: int = field(default=1, compare=False)


Recorder = Callable[[Account, DeliveryRecord], None]


class WebhookDispatcher:
    """Sends queued callbacks from one background thread, in due order.

    `submit` is called with the state lock held; the worker never takes that lock while it
    holds its own (it records attempts through `record`, which takes the state lock).
    """

    def __init__(
        self,
        record: Recorder,
        clock: Callable[[], datetime],
        *,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._record = record
        self._clock = clock
        self._timeout = timeout
        self._transport = transport
        self._cond = threading.Condition()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def submit(self, account: Account, event: str, booking_id: int, body: bytes) -> str:
        """Queue one callback per registered URL (plus duplicates); returns its delivery id."""
        delivery_id = f"dlv_{secrets.token_hex(8)}"
        settings = account.webhook
        for url in account.webhook_urls:
            if settings.drop:
                self._record(
                    account,
                    self._entry(delivery_id, url, event, booking_id, 0, 0, "dropped"),
                )
                continue
            for copy in range(1 + settings.duplicates):
                self._push(
                    _Job(
                        due=time.monotonic(),
                        seq=next(self._seq),
                        account=account,
                        delivery_id=delivery_id,
                        url=url,
                        secret=account.webhook_secret,
                        body=body,
                        event=event,
                        booking_id=booking_id,
                        copy=copy,
                        max_attempts=settings.max_attempts,
                        backoff_seconds=settings.backoff_seconds,
                    )
                )
        return delivery_id

    def pending(self, account: Account | None = None) -> int:
        """Attempts queued or under way (for one account, or all)."""
        with self._cond:
            queued = sum(1 for job in self._heap if account is None or job.account is account)
            return queued + (self._in_flight if account is None else 0)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight; False on timeout (retries still due)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker; queued attempts are kept and sent if `submit` restarts it."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            self._stopping = False
            self._thread = None

    # ---------------------------------------------------------------------------- worker

    def _push(self, job: _Job) -> None:
        with self._cond:
            heapq.heappush(self._heap, job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="sirvoy-webhooks", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _next_job(self) -> _Job | None:
        with self._cond:
            while not self._stopping:
                if self._heap:
                    wait = self._heap[0].due - time.monotonic()
                    if wait <= 0:
                        self._in_flight += 1
                        return heapq.heappop(self._heap)
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout, transport=self._transport) as client:
            while (job := self._next_job()) is not None:
                try:
                    self._attempt(client, job)
                except Exception:  # the worker must survive anything a receiver does
                    logger.exception("webhook delivery to %s failed unexpectedly", job.url)
                finally:
                    with self._cond:
                        self._in_flight -= 1
                        self._cond.notify_all()

    def _attempt(self, client: httpx.Client, job: _Job) -> None:
        timestamp = int(self._clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(job.secret, timestamp, job.body),
        }
        status: int | None = None
        error: str | None = None
        try:
            status = client.post(job.url, content=job.body, headers=headers).status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        # Sirvoy documents "200 OK" as the answer it waits for; any other 2xx is taken too.
        if status is not None and 200 <= status < 300:
            outcome: DeliveryOutcome = "delivered"
        elif job.attempt >= job.max_attempts:
            outcome = "gave_up"
        else:
            outcome = "failed"
        self._record(
            job.account,
            self._entry(
                job.delivery_id,
                job.url,
                job.event,
                job.booking_id,
                job.copy,
                job.attempt,
                outcome,
                status,
                error,
            ),
        )
        if outcome == "failed":
            delay = min(MAX_BACKOFF_SECONDS, job.backoff_seconds * 2 ** (job.attempt - 1))
            job.attempt += 1
            job.due = time.monotonic() + delay
            job.seq = next(self._seq)
            self._push(job)

    def _entry(
        self,
        delivery_id: str,
        url: str,
        event: str,
        booking_id: int,
        copy: int,
        attempt: int,
        outcome: DeliveryOutcome,
        status: int | None = None,
        error: str | None = None,
    ) -> DeliveryRecord:
        return DeliveryRecord(
            at=self._clock(),
            delivery_id=delivery_id,
            url=url,
            event=event,
            booking_id=booking_id,
            copy=copy,
            attempt=attempt,
            outcome=outcome,
            status=status,
            error=error,
        )
