"""connection.updated on the real PostgreSQL: each change of a connection through the API,
each poll against the Fortnox sandbox and its removal is published once with a growing
revision, keyed by tenant and connection."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from erp_poller.adapters.repository import PgUnitOfWork
from erp_poller.testing import given_profile, steps_on
from nordflow_runtime import tenants
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import ConnectionUpdated

pytestmark = pytest.mark.integration

HOUR = dt.timedelta(hours=1)


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def token_for(pool: Any, tenant: str) -> dict[str, str]:
    token = await tenants.create_token(pool, tenant, "test")
    return {"Authorization": f"Bearer {token}"}


def connection_body(connection_id: str, sandbox: Any, token: str, mode: str) -> dict[str, Any]:
    return {
        "connection_id": connection_id,
        "system": "fortnox",
        "base_url": sandbox.base_url,
        "token": token,
        "mode": mode,
        "cutoff_at": "2000-01-01T00:00:00+00:00",
    }


async def updates(harness: ServiceHarness[Any], tenant: str) -> list[Envelope[ConnectionUpdated]]:
    """Every connection.updated of the tenant in the outbox, in order."""
    emitted = await harness.emitted()
    return [
        env
        for env in emitted.events
        if isinstance(env.body, ConnectionUpdated) and env.body.tenant_id == tenant
    ]


async def test_every_change_and_poll_is_published_with_a_growing_revision(
    harness, pool, box, sandbox
):
    tenant = new_tenant()
    cid = f"{tenant}-fx"
    headers = await token_for(pool, tenant)
    await given_profile(PgUnitOfWork(pool), tenant)
    company = sandbox.create_company()
    steps = steps_on(pool, box, poll_interval=HOUR)
    async with harness.http() as api:
        path = f"/api/v1/connections/{cid}"
        put = await api.put(path, json=connection_body(cid, sandbox, company.token, "test"),
                            headers=headers)  # fmt: skip
        assert put.status_code == 200, put.text
        patched = await api.patch(path, json={"mode": "automatic"}, headers=headers)
        assert patched.status_code == 200, patched.text

        assert await steps.poll_one()  # a success
        assert not await steps.poll_one()  # not due for an hour: nothing more
        shown = (await api.get(path, headers=headers)).json()
        assert shown["last_success_at"] == shown["last_poll_at"] is not None

        # Re-added with a token the source refuses: the next poll fails.
        wrong = connection_body(cid, sandbox, "not-the-token", "automatic")
        replaced = await api.put(path, json=wrong, headers=headers)
        assert replaced.status_code == 200, replaced.text
        assert await steps.poll_one()

        removed = await api.delete(path, headers=headers)
        assert removed.status_code == 204, removed.text
        assert (await api.get(path, headers=headers)).status_code == 404
        assert (await api.get("/api/v1/connections", headers=headers)).json() == []
        assert (await api.delete(path, headers=headers)).status_code == 404
        assert not await steps.poll_one()  # a removed connection is never polled

    published = await updates(harness, tenant)
    assert [e.key for e in published] == [f"{tenant}:{cid}"] * 6
    assert {e.subject for e in published} == {cid}
    bodies = [e.body for e in published]
    assert [b.revision for b in bodies] == [1, 2, 3, 4, 5, 6]
    added, automatic, succeeded, readded, failed, gone = bodies
    assert (added.mode, automatic.mode) == ("test", "automatic")
    assert added.last_poll_at is None
    assert succeeded.last_poll_at is not None
    assert succeeded.last_success_at == succeeded.last_poll_at
    assert succeeded.last_error is None
    assert succeeded.next_poll_at is not None
    assert succeeded.next_poll_at - succeeded.last_poll_at > HOUR - dt.timedelta(minutes=1)
    assert readded.last_success_at == succeeded.last_success_at
    # Our own short reason, with the partner's status only (never the token or its body).
    assert failed.last_error == "PartnerError: the partner answered HTTP 401"
    assert failed.last_success_at == succeeded.last_success_at
    assert failed.last_poll_at is not None
    assert failed.last_poll_at > succeeded.last_poll_at
    assert (gone.removed, gone.next_poll_at) == (True, None)
    assert gone.last_error == failed.last_error


async def test_a_removed_connection_added_again_goes_on_from_its_revision(harness, pool, sandbox):
    tenant = new_tenant()
    cid = f"{tenant}-fx"
    headers = await token_for(pool, tenant)
    company = sandbox.create_company()
    body = connection_body(cid, sandbox, company.token, "manual")
    async with harness.http() as api:
        path = f"/api/v1/connections/{cid}"
        assert (await api.put(path, json=body, headers=headers)).status_code == 200
        sync = await api.post(f"{path}/sync", json={"limit": 5}, headers=headers)
        assert sync.status_code == 202
        assert (await api.delete(path, headers=headers)).status_code == 204
        ended = await api.get(f"{path}/sync/{sync.json()['request_id']}", headers=headers)
        assert ended.json()["error"] == "the connection was removed"
        assert ended.json()["finished_at"] is not None
        other = await token_for(pool, new_tenant())
        assert (await api.put(path, json=body, headers=other)).status_code == 409  # still ours
        assert (await api.put(path, json=body, headers=headers)).status_code == 200
    bodies = [e.body for e in await updates(harness, tenant)]
    assert [(b.revision, b.removed) for b in bodies] == [(1, False), (2, True), (3, False)]


async def test_a_connection_booked_into_is_not_removed(harness, pool):
    tenant = new_tenant()
    headers = await token_for(pool, tenant)
    async with harness.http() as api:
        target = {"connection_id": "tx", "system": "tripletex", "mode": "manual",
                  "base_url": "https://tripletex.no/v2", "credentials": {}}  # fmt: skip
        assert (await api.put("/api/v1/connections/tx", json=target, headers=headers)).is_success
        booking = {"connection_id": "wn", "system": "winner", "base_url": "https://push.invalid",
                   "credentials": {"signing_secret": "s"}, "flow": {"book_into": "tx"}}  # fmt: skip
        assert (await api.put("/api/v1/connections/wn", json=booking, headers=headers)).is_success
        refused = await api.delete("/api/v1/connections/tx", headers=headers)
        assert refused.status_code == 409
        assert "booked into by wn" in refused.json()["detail"]
