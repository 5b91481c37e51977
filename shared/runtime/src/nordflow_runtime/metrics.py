"""Prometheus metrics shared by every service (served on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "nordflow_events_consumed_total",
    "Records consumed, by topic and outcome (processed, duplicate, dead_lettered)",
    ["topic", "outcome"],
)
EVENTS_PUBLISHED = Counter(
    "nordflow_events_published_total", "Records published from the outbox", ["topic"]
)
OUTBOX_PENDING = Gauge("nordflow_outbox_pending", "Outbox rows not yet published")
BATCH_SECONDS = Histogram(
    "nordflow_consumer_batch_seconds", "Time to process one consumed batch in one transaction"
)
BATCH_FAILURES = Counter(
    "nordflow_consumer_batch_failures_total", "Batches rolled back (retried, then record by record)"
)
STUCK = Gauge(
    "nordflow_stuck",
    "1 while a loop (consumer, relay) keeps failing: readiness is red meanwhile",
    ["loop"],
)
OUTBOX_SET_ASIDE = Gauge(
    "nordflow_outbox_set_aside",
    "Outbox rows Kafka refused for good (too large, unknown topic): kept, replayable",
)
JOBS = Counter(
    "nordflow_jobs_total",
    "Durable job attempts by kind and outcome (done, retry, failed)",
    ["kind", "outcome"],
)
