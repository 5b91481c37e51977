"""Unit tests of the client-side limiter and the retry loop, with fake send functions.

Nothing sleeps for long: windows and back-off are tiny by parameter, or the module's
``asyncio``/``random`` references are replaced to record the delays it asks for.
"""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Iterable

import httpx
import pytest
from nordflow_connectors import resilience
from nordflow_connectors.resilience import (
    RETRYABLE_STATUS,
    PartnerError,
    SlidingWindowLimiter,
    retry_after_seconds,
    send_with_retries,
)

Outcome = int | httpx.Response | Exception


def response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("GET", "http://x/3/y"))


class FakeSend:
    """Answers the scripted outcomes in order and records when it was called."""

    def __init__(self, outcomes: Iterable[Outcome]) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[float] = []

    async def __call__(self) -> httpx.Response:
        self.calls.append(time.monotonic())
        outcome = self.outcomes[len(self.calls) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return response(outcome) if isinstance(outcome, int) else outcome


@pytest.fixture
def recorded_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make the retry loop's sleeps instant (jitter factor 1.0) and record their lengths."""
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr(resilience, "asyncio", types.SimpleNamespace(sleep=sleep))
    monkeypatch.setattr(resilience, "random", types.SimpleNamespace(uniform=lambda _a, b: b))
    return delays


def timeout() -> httpx.TimeoutException:
    return httpx.ReadTimeout("timed out", request=httpx.Request("GET", "http://x/3/y"))


# --------------------------------------------------------------------------- PartnerError


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (400, True),
        (401, True),
        (403, True),
        (404, True),
        (409, True),
        (422, True),
        (408, False),
        (429, False),
        (500, False),
        (503, False),
        (302, False),
    ],
)
def test_partner_error_is_permanent_only_for_4xx_other_than_408_and_429(
    status: int, permanent: bool
) -> None:
    error = PartnerError(status, "nope")
    assert error.permanent is permanent
    assert error.status == status
    assert error.message == "nope"
    assert str(error) == f"HTTP {status}: nope"


# ------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0.25", 0.25),
        ("0", 0.0),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_seconds_reads_numbers_only(header: str | None, seconds: float | None) -> None:
    headers = {} if header is None else {"Retry-After": header}
    assert retry_after_seconds(response(429, headers)) == seconds


# ------------------------------------------------------------------- send_with_retries


@pytest.mark.parametrize("status", [200, 201, 204, 400, 401, 404, 409, 501])
async def test_a_non_retryable_answer_is_returned_at_once(status: int) -> None:
    send = FakeSend([status])
    result = await send_with_retries(send, initial=0.001)
    assert result.status_code == status
    assert len(send.calls) == 1


@pytest.mark.parametrize("status", sorted(RETRYABLE_STATUS))
async def test_retryable_statuses_are_sent_again_until_an_answer(status: int) -> None:
    send = FakeSend([status, status, 200])
    result = await send_with_retries(send, initial=0.001, cap=0.002)
    assert result.status_code == 200
    assert len(send.calls) == 3


async def test_after_the_last_attempt_the_last_retryable_answer_is_returned() -> None:
    send = FakeSend([503, 502, 500, 200])
    result = await send_with_retries(send, attempts=3, initial=0.001, cap=0.002)
    assert result.status_code == 500
    assert len(send.calls) == 3


@pytest.mark.parametrize(
    "error",
    [
        timeout(),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
    ids=["read-timeout", "connect-timeout", "connect-error", "protocol-error"],
)
async def test_timeouts_and_transport_errors_are_retried(error: Exception) -> None:
    send = FakeSend([error, error, 200])
    result = await send_with_retries(send, initial=0.001, cap=0.002)
    assert result.status_code == 200
    assert len(send.calls) == 3


async def test_a_timeout_on_the_last_attempt_is_raised() -> None:
    send = FakeSend([503, timeout(), timeout()])
    with pytest.raises(httpx.TimeoutException):
        await send_with_retries(send, attempts=3, initial=0.001, cap=0.002)
    assert len(send.calls) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_only_rejected_returns_a_5xx_without_sending_again(status: int) -> None:
    send = FakeSend([status, 200])
    result = await send_with_retries(send, only_rejected=True, initial=0.001)
    assert result.status_code == status
    assert len(send.calls) == 1


@pytest.mark.parametrize(
    "error", [timeout(), httpx.ConnectError("refused")], ids=["timeout", "connect-error"]
)
async def test_only_rejected_raises_a_transport_failure_without_sending_again(
    error: Exception,
) -> None:
    send = FakeSend([error, 200])
    with pytest.raises(type(error)):
        await send_with_retries(send, only_rejected=True, initial=0.001)
    assert len(send.calls) == 1


async def test_only_rejected_still_retries_a_429() -> None:
    send = FakeSend([429, 429, 201])
    result = await send_with_retries(send, only_rejected=True, initial=0.001, cap=0.002)
    assert result.status_code == 201
    assert len(send.calls) == 3


async def test_backoff_doubles_from_initial_up_to_the_cap(recorded_sleeps: list[float]) -> None:
    send = FakeSend([503] * 6 + [200])
    result = await send_with_retries(send, attempts=7, initial=0.5, cap=3.0)
    assert result.status_code == 200
    assert recorded_sleeps == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


async def test_no_sleep_after_the_last_attempt(recorded_sleeps: list[float]) -> None:
    send = FakeSend([503, 503, 503])
    await send_with_retries(send, attempts=3, initial=0.5)
    assert len(recorded_sleeps) == 2


async def test_jitter_draws_between_half_and_all_of_the_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delays: list[float] = []
    bounds: list[tuple[float, float]] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    def uniform(a: float, b: float) -> float:
        bounds.append((a, b))
        return a

    monkeypatch.setattr(resilience, "asyncio", types.SimpleNamespace(sleep=sleep))
    monkeypatch.setattr(resilience, "random", types.SimpleNamespace(uniform=uniform))
    await send_with_retries(FakeSend([503, 503, 200]), initial=1.0)
    assert bounds == [(0.5, 1.0), (0.5, 1.0)]
    assert delays == [0.5, 1.0]


async def test_retry_after_lengthens_the_wait(recorded_sleeps: list[float]) -> None:
    send = FakeSend([response(429, {"Retry-After": "7"}), 200])
    result = await send_with_retries(send, initial=0.5)
    assert result.status_code == 200
    assert recorded_sleeps == [7.0]


async def test_retry_after_shorter_than_the_backoff_does_not_shorten_it(
    recorded_sleeps: list[float],
) -> None:
    send = FakeSend([response(503, {"Retry-After": "0"}), 200])
    await send_with_retries(send, initial=2.0)
    assert recorded_sleeps == [2.0]


async def test_an_unparsable_retry_after_falls_back_to_the_backoff(
    recorded_sleeps: list[float],
) -> None:
    send = FakeSend([response(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), 200])
    await send_with_retries(send, initial=0.25)
    assert recorded_sleeps == [0.25]


async def test_retry_after_is_honoured_in_real_time() -> None:
    send = FakeSend([response(429, {"Retry-After": "0.15"}), 200])
    result = await send_with_retries(send, initial=0.001, cap=0.002)
    assert result.status_code == 200
    assert send.calls[1] - send.calls[0] >= 0.14


async def test_real_waits_between_attempts_follow_the_backoff() -> None:
    send = FakeSend([503, 503, 503, 200])
    await send_with_retries(send, initial=0.02, cap=0.04)
    gaps = [b - a for a, b in zip(send.calls, send.calls[1:], strict=False)]
    # jitter draws 50-100 % of 0.02, 0.04, 0.04 (capped)
    assert gaps[0] >= 0.0095
    assert gaps[1] >= 0.0195
    assert gaps[2] >= 0.0195
    assert all(gap < 1.0 for gap in gaps)


# --------------------------------------------------------------------- the limiter


async def stamped(limiter: SlidingWindowLimiter, count: int) -> list[float]:
    """Acquire ``count`` times concurrently; the moments each acquire returned, sorted."""

    async def one() -> float:
        await limiter.acquire()
        return time.monotonic()

    return sorted(await asyncio.gather(*(one() for _ in range(count))))


async def test_limiter_lets_the_first_calls_through_at_once() -> None:
    limiter = SlidingWindowLimiter(5, 10.0)
    started = time.monotonic()
    await stamped(limiter, 5)
    assert time.monotonic() - started < 0.5


async def test_limiter_never_allows_more_than_limit_calls_in_a_window() -> None:
    limit, window = 3, 0.15
    limiter = SlidingWindowLimiter(limit, window)
    started = time.monotonic()
    moments = await stamped(limiter, 3 * limit + 1)
    # any limit+1 consecutive calls span at least the window
    for first, later in zip(moments, moments[limit:], strict=False):
        assert later - first >= window - 0.001
    # the 10th call needed three full windows, not more than a little extra
    assert moments[-1] - started >= 3 * window
    assert moments[-1] - started < 3 * window + 1.0


async def test_limiter_forgets_calls_older_than_the_window() -> None:
    limiter = SlidingWindowLimiter(2, 0.1)
    await stamped(limiter, 2)
    await asyncio.sleep(0.12)
    started = time.monotonic()
    await stamped(limiter, 2)
    assert time.monotonic() - started < 0.05


async def test_a_cancelled_waiter_does_not_block_the_limiter() -> None:
    limiter = SlidingWindowLimiter(1, 0.1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.wait_for(limiter.acquire(), timeout=1.0)


async def test_send_with_retries_and_the_limiter_compose() -> None:
    """Every attempt, the retried ones too, passes through the limiter (like the client)."""
    limiter = SlidingWindowLimiter(2, 0.1)
    fake = FakeSend([503, 503, 503, 200])

    async def send() -> httpx.Response:
        await limiter.acquire()
        return await fake()

    result = await send_with_retries(send, initial=0.001, cap=0.002)
    assert result.status_code == 200
    assert fake.calls[3] - fake.calls[1] >= 0.1
