"""OAuthSession against the eAccounting sandbox's token endpoint, in-process (ASGI, no sockets).

The sandbox and the session share one movable clock, so expiry is tested without waiting.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nordflow_connectors.oauth import (
    InMemoryTokenStore,
    OAuthError,
    OAuthSession,
    Tokens,
    TokenStore,
    TokenStoreError,
)
from nordflow_sandboxes.visma_eaccounting import VismaEAccountingState, create_app
from nordflow_sandboxes.visma_eaccounting.testing import SandboxCompany
from pydantic import SecretStr

TOKEN_URL = "http://visma.test/connect/token"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class MovableClock:
    """A wall clock the tests move by hand (read by the sandbox and the session alike)."""

    current: datetime = field(default_factory=lambda: datetime(2025, 3, 10, 11, 15, 30, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class Sandbox:
    """An in-process sandbox, its state and an ASGI transport to it."""

    state: VismaEAccountingState
    clock: MovableClock
    transport: httpx.ASGITransport

    def company(self) -> SandboxCompany:
        company, client, refresh = self.state.create_company("OAuth AB")
        return SandboxCompany(
            company_id=company.company_id,
            name=company.name,
            client_id=client.client_id,
            client_secret=client.client_secret,
            refresh_token=refresh,
            bank_account_id="",
            terms_of_payment_id="",
        )

    def redeemed(self, company: SandboxCompany) -> int:
        found = self.state.company(company.company_id)
        assert found is not None
        return int(self.state.stats(found)["refresh_tokens_redeemed"])

    def token_posts(self, company: SandboxCompany) -> int:
        found = self.state.company(company.company_id)
        assert found is not None
        return sum(1 for r in self.state.recent_requests(found, 100) if r.path == "/connect/token")

    async def redeem(self, company: SandboxCompany, refresh_token: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=self.transport) as http:
            return await http.post(
                TOKEN_URL,
                data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                auth=(company.client_id, company.client_secret),
            )

    async def api_get(self, token: SecretStr) -> httpx.Response:
        async with httpx.AsyncClient(transport=self.transport) as http:
            return await http.get(
                "http://visma.test/v2/customers",
                headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            )


@pytest.fixture
def sandbox() -> Sandbox:
    clock = MovableClock()
    state = VismaEAccountingState(clock=clock)
    return Sandbox(state, clock, httpx.ASGITransport(app=create_app(state)))


def initial_store(company: SandboxCompany) -> InMemoryTokenStore:
    """What the service stores after the user authorized: a refresh token, no access token."""
    return InMemoryTokenStore(
        Tokens(
            access_token=SecretStr("none-yet"),
            refresh_token=SecretStr(company.refresh_token),
            expires_at=EPOCH,
        )
    )


@pytest.fixture
async def sessions(sandbox: Sandbox) -> AsyncIterator[list[OAuthSession]]:
    """Sessions made by `new_session` are closed after the test."""
    made: list[OAuthSession] = []
    yield made
    for session in made:
        await session.aclose()


def new_session(
    sandbox: Sandbox,
    company: SandboxCompany,
    store: TokenStore,
    sessions: list[OAuthSession],
    **kw: Any,
) -> OAuthSession:
    session = OAuthSession(
        TOKEN_URL,
        company.client_id,
        SecretStr(company.client_secret),
        store,
        clock=sandbox.clock,
        transport=sandbox.transport,
        **kw,
    )
    sessions.append(session)
    return session


def describe(error: BaseException) -> str:
    """Everything an operator could see of an exception: message, repr and traceback."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


# ------------------------------------------------------------------------------ refresh


async def test_first_use_refreshes_saves_and_the_old_refresh_token_is_spent(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    store = initial_store(company)
    session = new_session(sandbox, company, store, sessions)
    token = await session.access_token()
    assert (await sandbox.api_get(token)).status_code == 200
    [saved] = store.saved
    assert saved.access_token.get_secret_value() == token.get_secret_value()
    assert saved.refresh_token.get_secret_value() != company.refresh_token
    assert saved.expires_at == sandbox.clock() + timedelta(hours=1)
    assert saved.scope == "ea:api ea:sales offline_access"
    spent = await sandbox.redeem(company, company.refresh_token)
    assert spent.json()["error"] == "invalid_grant"


async def test_the_access_token_is_reused_until_the_margin_before_expiry(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    session = new_session(sandbox, company, initial_store(company), sessions, refresh_margin=60)
    first = await session.access_token()
    sandbox.clock.advance(minutes=58, seconds=59)
    assert (await session.access_token()).get_secret_value() == first.get_secret_value()
    assert session.refreshes == 1
    sandbox.clock.advance(seconds=2)  # 59 s before expiry: inside the margin
    second = await session.access_token()
    assert second.get_secret_value() != first.get_secret_value()
    assert session.refreshes == 2
    assert sandbox.redeemed(company) == 2
    assert (await sandbox.api_get(second)).status_code == 200


async def test_an_expired_access_token_is_refreshed_before_it_is_used(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    session = new_session(sandbox, company, initial_store(company), sessions, refresh_margin=0)
    first = await session.access_token()
    sandbox.clock.advance(hours=1)
    assert (await sandbox.api_get(first)).status_code == 401
    second = await session.access_token()
    assert (await sandbox.api_get(second)).status_code == 200


async def test_concurrent_callers_cause_exactly_one_refresh(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    session = new_session(sandbox, company, initial_store(company), sessions)
    tokens = await asyncio.gather(*(session.access_token() for _ in range(25)))
    assert len({t.get_secret_value() for t in tokens}) == 1
    assert session.refreshes == 1
    assert sandbox.redeemed(company) == 1


# ------------------------------------------------------------------------ persistence


async def test_rotated_tokens_are_saved_before_the_new_access_token_is_used(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    events: list[tuple[str, str]] = []

    class RecordingStore(InMemoryTokenStore):
        async def save(self, tokens: Tokens) -> None:
            events.append(("save", tokens.access_token.get_secret_value()))
            await super().save(tokens)

    store = RecordingStore(initial_store(company).tokens)
    session = new_session(sandbox, company, store, sessions)

    async def send(token: SecretStr) -> httpx.Response:
        events.append(("use", token.get_secret_value()))
        return await sandbox.api_get(token)

    answer = await session.authorized(send)
    assert answer.status_code == 200
    [(first, saved_token), (second, used_token)] = events
    assert (first, second) == ("save", "use")
    assert saved_token == used_token


async def test_a_failed_save_keeps_the_rotated_tokens_and_saves_them_before_use(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()

    class FlakyStore(InMemoryTokenStore):
        failures = 1

        async def save(self, tokens: Tokens) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("database is down")
            await super().save(tokens)

    store = FlakyStore(initial_store(company).tokens)
    session = new_session(sandbox, company, store, sessions)
    used: list[str] = []

    async def send(token: SecretStr) -> httpx.Response:
        used.append(token.get_secret_value())
        return await sandbox.api_get(token)

    with pytest.raises(TokenStoreError) as raised:
        await session.authorized(send)
    assert used == []  # never used while unsaved
    assert isinstance(raised.value.__cause__, ConnectionError)
    assert store.saved == []

    answer = await session.authorized(send)  # saves first, then uses; no second refresh
    assert answer.status_code == 200
    [saved] = store.saved
    assert used == [saved.access_token.get_secret_value()]
    assert sandbox.redeemed(company) == 1
    assert session.refreshes == 1


async def test_tokens_written_by_another_process_are_adopted_instead_of_a_spent_refresh(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    store = initial_store(company)
    mine = new_session(sandbox, company, store, sessions)
    theirs = new_session(sandbox, company, store, sessions)
    stale = await mine.access_token()
    sandbox.clock.advance(hours=1)
    fresh = await theirs.access_token()  # rotates and saves to the shared store
    # mine still holds the spent refresh token; it reads the store before refreshing
    adopted = await mine.access_token()
    assert adopted.get_secret_value() == fresh.get_secret_value() != stale.get_secret_value()
    assert sandbox.redeemed(company) == 2


async def test_tokens_round_trip_through_their_sealable_form() -> None:
    tokens = Tokens(SecretStr("a"), SecretStr("r"), datetime(2025, 1, 1, tzinfo=UTC), "ea:api")
    assert Tokens.load_secrets(tokens.dump_secrets()) == tokens
    assert "'a'" not in repr(tokens)
    assert "'r'" not in repr(tokens)
    with pytest.raises(ValueError, match="timezone-aware"):
        Tokens(SecretStr("a"), SecretStr("r"), datetime(2025, 1, 1))


# ------------------------------------------------------------------------- 401 retry


async def test_a_401_refreshes_and_resends_once(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    session = new_session(sandbox, company, initial_store(company), sessions)
    await session.access_token()
    found = sandbox.state.company(company.company_id)
    assert found is not None
    sandbox.state.expire_access_tokens(found)  # revoked early: the clock says it is valid
    statuses: list[int] = []

    async def send(token: SecretStr) -> httpx.Response:
        answer = await sandbox.api_get(token)
        statuses.append(answer.status_code)
        return answer

    assert (await session.authorized(send)).status_code == 200
    assert statuses == [401, 200]
    assert session.refreshes == 2


async def test_a_second_401_is_returned_not_retried_again(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    session = new_session(sandbox, company, initial_store(company), sessions)
    calls = 0

    async def send(_token: SecretStr) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(401)

    assert (await session.authorized(send)).status_code == 401
    assert calls == 2
    assert session.refreshes == 2  # the first use, and one after the 401


async def test_concurrent_401s_cause_one_refresh(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    session = new_session(sandbox, company, initial_store(company), sessions)
    await session.access_token()
    found = sandbox.state.company(company.company_id)
    assert found is not None
    sandbox.state.expire_access_tokens(found)

    answers = await asyncio.gather(*(session.authorized(sandbox.api_get) for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10
    assert session.refreshes == 2
    assert sandbox.redeemed(company) == 2


# ----------------------------------------------------------------------------- errors


async def test_a_spent_refresh_token_requires_reauthorization(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    await sandbox.redeem(company, company.refresh_token)  # someone else used it
    session = new_session(sandbox, company, initial_store(company), sessions)
    with pytest.raises(OAuthError) as raised:
        await session.access_token()
    error = raised.value
    assert (error.status, error.error) == (400, "invalid_grant")
    assert error.permanent
    assert error.reauthorization_required
    assert company.refresh_token not in describe(error)


async def test_no_stored_tokens_means_not_authorized(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    session = new_session(sandbox, company, InMemoryTokenStore(), sessions)
    with pytest.raises(OAuthError) as raised:
        await session.access_token()
    assert raised.value.reauthorization_required


async def test_a_token_endpoint_5xx_is_not_retried_and_the_refresh_token_survives(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    from nordflow_sandboxes.visma_eaccounting.domain import Fault

    company = sandbox.company()
    found = sandbox.state.company(company.company_id)
    assert found is not None
    sandbox.state.add_fault(found, Fault(503, 1, "/connect/token", None, 0.0, False))
    session = new_session(sandbox, company, initial_store(company), sessions)
    with pytest.raises(OAuthError) as raised:
        await session.access_token()
    assert raised.value.status == 503
    assert not raised.value.permanent
    assert sandbox.token_posts(company) == 1  # a refresh may have rotated: never resent blind
    assert (await sandbox.api_get(await session.access_token())).status_code == 200


async def test_a_token_endpoint_429_is_retried(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    from nordflow_sandboxes.visma_eaccounting.domain import Fault

    company = sandbox.company()
    found = sandbox.state.company(company.company_id)
    assert found is not None
    sandbox.state.add_fault(found, Fault(429, 1, "/connect/token", None, 0.0, False))
    session = new_session(sandbox, company, initial_store(company), sessions)
    assert (await sandbox.api_get(await session.access_token())).status_code == 200
    assert sandbox.token_posts(company) == 2


async def test_client_secret_in_the_form_works_too(
    sandbox: Sandbox, sessions: list[OAuthSession]
) -> None:
    company = sandbox.company()
    session = new_session(sandbox, company, initial_store(company), sessions, client_auth="post")
    assert (await sandbox.api_get(await session.access_token())).status_code == 200


async def test_secrets_never_appear_in_exceptions_or_logs(
    sandbox: Sandbox, sessions: list[OAuthSession], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    company = sandbox.company()
    store = initial_store(company)
    errors: list[BaseException] = []
    session = new_session(sandbox, company, store, sessions)
    await session.authorized(sandbox.api_get)  # a successful refresh, logged
    assert store.tokens is not None
    secrets = [
        company.client_secret,
        company.refresh_token,
        store.tokens.refresh_token.get_secret_value(),
        store.tokens.access_token.get_secret_value(),
    ]

    wrong_secret = OAuthSession(
        TOKEN_URL,
        company.client_id,
        SecretStr(company.client_secret[:-1] + "x"),
        InMemoryTokenStore(dataclasses.replace(store.tokens, expires_at=EPOCH)),
        transport=sandbox.transport,
    )
    sessions.append(wrong_secret)
    spent = new_session(sandbox, company, initial_store(company), sessions)

    class BrokenStore(InMemoryTokenStore):
        async def save(self, tokens: Tokens) -> None:
            raise RuntimeError("disk full")

    broken = new_session(sandbox, company, BrokenStore(store.tokens), sessions)
    sandbox.clock.advance(hours=2)
    for failing in (wrong_secret, spent, broken):
        try:
            await failing.access_token()
        except (OAuthError, TokenStoreError) as exc:
            errors.append(exc)
    assert [type(e) for e in errors] == [OAuthError, OAuthError, TokenStoreError]
    assert isinstance(errors[0], OAuthError)
    assert errors[0].error == "invalid_client"
    text = "\n".join(describe(e) for e in errors) + caplog.text + repr(store.tokens)
    assert "refreshed OAuth tokens" in caplog.text
    for secret in secrets:
        assert secret not in text
