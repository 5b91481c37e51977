"""Consumer lag, stall readiness and the other runtime gauges, on fakes and an injected clock:
no broker and no database."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from nordflow_runtime import jobs
from nordflow_runtime.consumer import BatchProcessor, EventConsumer
from nordflow_runtime.health import Health
from nordflow_runtime.kafka import PartitionProgress
from nordflow_schemas.envelope import encode, envelope
from nordflow_schemas.testing import new_tenant, tenant_profile, tenant_updated
from nordflow_schemas.topics import INVOICE_CREATED, TENANT_UPDATED
from prometheus_client import REGISTRY


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stuck(loop: str) -> float | None:
    return REGISTRY.get_sample_value("nordflow_stuck", {"loop": loop})


def lag(topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "nordflow_consumer_lag", {"topic": topic, "partition": str(partition)}
    )


def test_a_consumer_that_gets_nothing_while_records_wait_turns_red_then_green() -> None:
    clock = Clock()
    health = Health("consumer", stuck_after=3, stall_seconds=120, clock=clock)
    health.polled(records=0, behind=True)
    clock.now += 119
    health.polled(records=0, behind=True)
    health.check()  # not yet
    assert stuck("consumer") == 0
    clock.now += 1
    health.polled(records=0, behind=True)
    assert health.stuck
    assert stuck("consumer") == 1
    with pytest.raises(RuntimeError, match="consumer stalled: nothing consumed for 120 s"):
        health.check()
    health.polled(records=5, behind=True)  # it consumes again
    health.check()
    assert stuck("consumer") == 0


def test_an_idle_consumer_is_never_stalled() -> None:
    clock = Clock()
    health = Health("consumer", stuck_after=3, stall_seconds=120, clock=clock)
    for _ in range(10):
        health.polled(records=0, behind=False)
        clock.now += 60
    health.check()
    # Records wait for a while, then the lag is gone without a record (another member took
    # the partition): the wait starts again from zero.
    health.polled(records=0, behind=True)
    clock.now += 100
    health.polled(records=0, behind=False)
    health.polled(records=0, behind=True)
    clock.now += 100
    health.check()


def test_the_relay_has_no_stall_and_failures_still_count() -> None:
    clock = Clock()
    health = Health("relay", stuck_after=2, clock=clock)
    health.polled(records=0, behind=True)
    clock.now += 10_000
    health.check()
    health.failed(ConnectionError("broker away"))
    health.failed(ConnectionError("broker away"))
    with pytest.raises(RuntimeError, match="relay stuck: 2 failures in a row"):
        health.check()


class Assigned:
    """The consumer as EventConsumer.observe needs it (it reads no broker)."""

    def assignment(self) -> set[TopicPartition]:
        return set()


def watcher(clock: Clock, stall_seconds: float = 120) -> EventConsumer:
    return EventConsumer(
        service="toy",
        pool=None,  # type: ignore[arg-type] - observe() touches no database
        consumer=Assigned(),  # type: ignore[arg-type]
        handlers={},
        stall_seconds=stall_seconds,
        clock=clock,
    )


def test_lag_per_assigned_partition_and_no_series_once_it_is_gone() -> None:
    clock = Clock()
    ec = watcher(clock)
    t = f"toy.lagged-{new_tenant()}"
    p0, p1, p2 = (TopicPartition(t, n) for n in range(3))
    ec.observe({}, {p0: PartitionProgress(10, 15), p1: PartitionProgress(7, 7)})
    assert (lag(t, 0), lag(t, 1)) == (5, 0)
    # p0 moved to another member, p2 came: its end is not known before its first fetch.
    ec.observe({}, {p1: PartitionProgress(7, 9), p2: PartitionProgress(0, None)})
    assert (lag(t, 0), lag(t, 1), lag(t, 2)) == (None, 2, None)
    ec.observe({}, {})
    assert lag(t, 1) is None


def test_polls_that_return_nothing_while_a_partition_lags_turn_readiness_red() -> None:
    clock = Clock()
    ec = watcher(clock, stall_seconds=60)
    t = f"toy.stalled-{new_tenant()}"
    tp = TopicPartition(t, 0)
    for _ in range(7):
        ec.observe({}, {tp: PartitionProgress(3, 8)})
        clock.now += 10
    with pytest.raises(RuntimeError, match="consumer stalled"):
        ec.health.check()
    record: Any = object()
    ec.observe({tp: [record]}, {tp: PartitionProgress(4, 8)})
    ec.health.check()


def test_a_partition_without_a_position_counts_as_waiting() -> None:
    """Finding 1: the partition waiting for its start offset (a ListOffsets sent to a broker
    that no longer leads it) holds up the others, whose ends the consumer then never learns."""
    clock = Clock()
    ec = watcher(clock, stall_seconds=60)
    t = f"toy.unplaced-{new_tenant()}"
    where = {
        TopicPartition(t, 0): PartitionProgress(None, None),
        TopicPartition(t, 1): PartitionProgress(12, None),
    }
    ec.observe({}, where)
    clock.now += 61
    ec.observe({}, where)
    with pytest.raises(RuntimeError, match="consumer stalled"):
        ec.health.check()


def test_partition_progress_lag() -> None:
    assert PartitionProgress(3, 10).lag == 7
    assert PartitionProgress(10, 10).lag == 0
    assert PartitionProgress(None, 10).lag is None
    assert PartitionProgress(3, None).lag is None


def record(topic: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> ConsumerRecord:
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=1,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=len(value or b""),
        headers=tuple(headers),
    )


def test_each_dead_letter_has_one_of_a_few_reason_classes() -> None:
    async def ignore(ctx: object, env: object) -> None:
        return None

    processor = BatchProcessor(
        service="toy",
        pool=None,  # type: ignore[arg-type] - _decoded touches no database
        handlers={TENANT_UPDATED.name: ignore},
    )
    body = tenant_updated("t-1", tenant_profile())
    _, value, headers = encode(envelope(body, source="/test"))
    assert processor._decoded(record(TENANT_UPDATED.name, b"{", []))[2] == "decode"
    assert processor._decoded(record(INVOICE_CREATED.name, value, headers))[2] == "wrong_topic"
    env, problem, _ = processor._decoded(record(TENANT_UPDATED.name, value, headers))
    assert env is not None
    assert problem == ""
    bare = BatchProcessor(service="toy", pool=None, handlers={})  # type: ignore[arg-type]
    assert bare._decoded(record(TENANT_UPDATED.name, value, headers))[2] == "no_handler"


def test_the_job_backlog_gauges_cover_every_kind_and_drop_to_zero() -> None:
    kind = f"toy-{new_tenant()}"
    idle = f"toy-idle-{new_tenant()}"
    reported = jobs.set_backlog_gauges([idle], {kind: jobs.Backlog(4, 90.5)})
    assert reported == {kind, idle}
    value = REGISTRY.get_sample_value
    assert value("nordflow_jobs_pending", {"kind": kind}) == 4
    assert value("nordflow_jobs_oldest_due_seconds", {"kind": kind}) == 90.5
    assert value("nordflow_jobs_pending", {"kind": idle}) == 0
    jobs.set_backlog_gauges(reported, {})
    assert value("nordflow_jobs_pending", {"kind": kind}) == 0
    assert value("nordflow_jobs_oldest_due_seconds", {"kind": kind}) == 0
