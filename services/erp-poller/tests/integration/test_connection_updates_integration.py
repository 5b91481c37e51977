"""connection.updated and the sync_connection action on the real PostgreSQL (and Kafka): each
change of a connection through the API, each poll against the Fortnox sandbox and its removal
is published once with a growing revision, keyed by tenant and connection; "sync now" polls
the command's tenant's own connection, once however often the command arrives."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from erp_poller.adapters.repository import PgConnectionRepository, PgUnitOfWork
from erp_poller.testing import given_profile, steps_on
from nordflow_runtime import tenants
from nordflow_runtime.consumer import EventConsumer
from nordflow_runtime.kafka import create_consumer, create_producer
from nordflow_runtime.outbox import OutboxRelay
from nordflow_runtime.testing import Emitted, ServiceHarness
from nordflow_schemas.envelope import Envelope, decode, encode, envelope
from nordflow_schemas.events import (
    ActionOutcome,
    ConnectionUpdated,
    OperatorAction,
    OperatorActionCompleted,
    OperatorActionRequested,
)
from nordflow_schemas.topics import CONNECTION_UPDATED, ERP_POLLER

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


async def delivered(harness: ServiceHarness[Any], env: Envelope[Any]) -> Emitted:
    """What delivering the command wrote to the outbox (and nothing the API or polls wrote
    before it)."""
    before = len((await harness.emitted()).events)
    await harness.deliver(env)
    return Emitted((await harness.emitted()).events[before:])


def sync_command(tenant: str, connection_id: str) -> Envelope[OperatorActionRequested]:
    return envelope(
        OperatorActionRequested(
            tenant_id=tenant,
            action_id=uuid.uuid4().hex,
            service=ERP_POLLER,
            action=OperatorAction.SYNC_CONNECTION,
            target_id=connection_id,
            requested_by="operator:ops",
            requested_at=dt.datetime.now(dt.UTC),
        ),
        source="/control-panel",
    )


async def next_poll(pool: Any, connection_id: str) -> dt.datetime:
    found: dt.datetime = await pool.fetchval(
        "SELECT next_poll_at FROM connections WHERE connection_id = $1", connection_id
    )
    return found


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


async def test_sync_now_polls_the_tenants_own_connection_once(harness, pool, box, sandbox):
    tenant, stranger = new_tenant(), new_tenant()
    cid = f"{tenant}-fx"
    headers = await token_for(pool, tenant)
    await given_profile(PgUnitOfWork(pool), tenant)
    company = sandbox.create_company()
    steps = steps_on(pool, box, poll_interval=HOUR)
    async with harness.http() as api:
        body = connection_body(cid, sandbox, company.token, "automatic")
        assert (await api.put(f"/api/v1/connections/{cid}", json=body, headers=headers)).is_success
        manual = connection_body(f"{cid}-m", sandbox, company.token, "manual")
        assert (await api.put(f"/api/v1/connections/{cid}-m", json=manual,
                              headers=headers)).is_success  # fmt: skip
    assert await steps.poll_one()
    assert not await steps.poll_one()  # due in an hour
    harness.deps.wakeup.clear()

    command = sync_command(tenant, cid)
    out = await delivered(harness, command)
    [done] = out.of(OperatorActionCompleted)
    assert (done.outcome, done.action_id, done.target_id) == (
        ActionOutcome.DONE,
        command.body.action_id,
        cid,
    )
    assert [u.revision for u in out.of(ConnectionUpdated)] == [3]  # due now, published
    assert harness.deps.wakeup.is_set()  # the scheduler is told at once
    again = await delivered(harness, command)  # redelivered: the inbox drops it
    assert again.events == []
    assert await steps.poll_one()  # the one poll it asked for
    assert not await steps.poll_one()
    polled = (await harness.emitted()).of(ConnectionUpdated)[-1]
    assert (polled.connection_id, polled.revision, polled.last_error) == (cid, 4, None)

    # Another tenant's command naming this connection: not theirs, nothing happens.
    due = await next_poll(pool, cid)
    theirs = await delivered(harness, sync_command(stranger, cid))
    [refused] = theirs.of(OperatorActionCompleted)
    assert (refused.outcome, refused.tenant_id) == (ActionOutcome.NOT_FOUND, stranger)
    assert theirs.of(ConnectionUpdated) == []
    assert await next_poll(pool, cid) == due
    assert not await steps.poll_one()

    # Manual mode flows only what a sync request names.
    out = await delivered(harness, sync_command(tenant, f"{cid}-m"))
    [manual_refused] = out.of(OperatorActionCompleted)
    assert manual_refused.outcome is ActionOutcome.REFUSED
    assert "manual mode" in manual_refused.message
    unknown = await delivered(harness, sync_command(tenant, "no-such-connection"))
    assert unknown.of(OperatorActionCompleted)[0].outcome is ActionOutcome.NOT_FOUND


async def test_sync_now_while_a_poll_holds_the_connection_is_refused_not_hung(
    harness, pool, sandbox
):
    tenant = new_tenant()
    cid = f"{tenant}-fx"
    headers = await token_for(pool, tenant)
    company = sandbox.create_company()
    async with harness.http() as api:
        body = connection_body(cid, sandbox, company.token, "automatic")
        assert (await api.put(f"/api/v1/connections/{cid}", json=body, headers=headers)).is_success
    async with pool.acquire() as conn, conn.transaction():
        assert await PgConnectionRepository(conn).claim_due() is not None  # a poll runs
        out = await delivered(harness, sync_command(tenant, cid))
    [refused] = out.of(OperatorActionCompleted)
    assert refused.outcome is ActionOutcome.REFUSED
    assert "being polled" in refused.message
    assert out.of(ConnectionUpdated) == []


# ------------------------------------------------------------------------------ real Kafka


async def _consume_until(
    bootstrap: str, topic: str, done: Any, timeout: float = 60
) -> list[Envelope[Any]]:
    """Read a topic from its beginning (no group) until ``done(records)``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen: list[Envelope[Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done(seen):
            assert asyncio.get_running_loop().time() < deadline, seen
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    headers = list(record.headers)
                    env = decode(record.value, headers)
                    seen.append(env)
                    assert record.key == env.key.encode()
    finally:
        await consumer.stop()
    return seen


async def test_through_kafka_a_repeated_command_syncs_once_and_the_state_is_keyed(
    harness, pool, box, sandbox, kafka_bootstrap
):
    """The command arrives twice on the real topic (a resent record, same ce_id), a marker
    after it on the same partition; erp-poller's consumer group carries it out once, and the
    relay publishes the states on the compacted topic keyed by tenant and connection."""
    tenant, stranger = new_tenant(), new_tenant()
    cid = f"{tenant}-fx"
    headers = await token_for(pool, tenant)
    await given_profile(PgUnitOfWork(pool), tenant)
    company = sandbox.create_company()
    steps = steps_on(pool, box, poll_interval=HOUR)
    async with harness.http() as api:
        body = connection_body(cid, sandbox, company.token, "automatic")
        assert (await api.put(f"/api/v1/connections/{cid}", json=body, headers=headers)).is_success
    assert await steps.poll_one()

    command = sync_command(tenant, cid)
    marker = sync_command(stranger, cid)  # same key: same partition, after the copies
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for env in (command, command, marker):
            key, value, record_headers = encode(env)
            await producer.send_and_wait(env.topic, value=value, key=key, headers=record_headers)
    finally:
        await producer.stop()

    consumer = create_consumer(
        kafka_bootstrap, f"erp-poller-test-{uuid.uuid4().hex[:8]}", harness.app.topics
    )
    await consumer.start()
    task = asyncio.create_task(
        EventConsumer(
            service=harness.app.name,
            pool=pool,
            consumer=consumer,
            handlers=harness.app.handlers,
            deps=harness.deps,
        ).run()
    )
    completed = "SELECT count(*) FROM outbox WHERE topic = 'operator.action_completed' AND key = $1"
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while not await pool.fetchval(
            f"{completed} AND tenant_id = $2", f"{ERP_POLLER}:{cid}".encode(), stranger
        ):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
    outcomes = [
        e.body
        for e in (await harness.emitted()).events
        if isinstance(e.body, OperatorActionCompleted) and e.body.target_id == cid
    ]
    assert sorted((o.tenant_id, o.outcome) for o in outcomes) == sorted(
        [(tenant, ActionOutcome.DONE), (stranger, ActionOutcome.NOT_FOUND)]
    )
    assert await steps.poll_one()  # polled once more: one sync
    assert not await steps.poll_one()

    producer = create_producer(kafka_bootstrap, ERP_POLLER)
    await producer.start()
    try:
        relay = OutboxRelay(pool, producer, harness.schema)
        while await relay.publish_batch():
            pass
    finally:
        await producer.stop()

    def mine(seen: list[Envelope[Any]]) -> list[ConnectionUpdated]:
        return [e.body for e in seen if e.body.tenant_id == tenant]

    seen = await _consume_until(kafka_bootstrap, CONNECTION_UPDATED.name,
                                lambda s: len(mine(s)) >= 4)  # fmt: skip
    assert [(u.revision, u.connection_id) for u in mine(seen)] == [(r, cid) for r in (1, 2, 3, 4)]
    assert mine(seen)[-1].last_success_at is not None
