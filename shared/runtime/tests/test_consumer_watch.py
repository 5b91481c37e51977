"""Consumer lag and the other runtime gauges, on fakes: no broker and no database."""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition
from nordflow_runtime import jobs
from nordflow_runtime.consumer import BatchProcessor, EventConsumer
from nordflow_runtime.kafka import PartitionProgress
from nordflow_schemas.envelope import encode, envelope
from nordflow_schemas.testing import new_tenant, tenant_profile, tenant_updated
from nordflow_schemas.topics import INVOICE_CREATED, TENANT_UPDATED
from prometheus_client import REGISTRY


def lag(topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "nordflow_consumer_lag", {"topic": topic, "partition": str(partition)}
    )


class Assigned:
    """The consumer as EventConsumer.observe needs it (it reads no broker)."""

    def assignment(self) -> set[TopicPartition]:
        return set()


def watcher() -> EventConsumer:
    return EventConsumer(
        service="toy",
        pool=None,  # type: ignore[arg-type] - observe() touches no database
        consumer=Assigned(),  # type: ignore[arg-type]
        handlers={},
    )


def test_lag_per_assigned_partition_and_no_series_once_it_is_gone() -> None:
    ec = watcher()
    t = f"toy.lagged-{new_tenant()}"
    p0, p1, p2 = (TopicPartition(t, n) for n in range(3))
    ec.observe({}, {p0: PartitionProgress(10, 15), p1: PartitionProgress(7, 7)})
    assert (lag(t, 0), lag(t, 1)) == (5, 0)
    # p0 moved to another member, p2 came: its end is not known before its first fetch.
    ec.observe({}, {p1: PartitionProgress(7, 9), p2: PartitionProgress(0, None)})
    assert (lag(t, 0), lag(t, 1), lag(t, 2)) == (None, 2, None)
    ec.observe({}, {})
    assert lag(t, 1) is None


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
