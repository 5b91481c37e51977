"""Prometheus metrics shared by every service (served on /metrics).

Labels stay bounded: topics, partitions, loops, job kinds and reason classes are fixed by
the code and the topic map; no tenant, invoice or event id is ever a label.
"""

from __future__ import annotations

from typing import Literal, get_args

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "nordflow_events_consumed_total",
    "Records consumed, by topic and outcome (processed, duplicate, dead_lettered)",
    ["topic", "outcome"],
)
EVENTS_PUBLISHED = Counter(
    "nordflow_events_published_total", "Records published from the outbox", ["topic"]
)
OUTBOX_PENDING = Gauge(
    "nordflow_outbox_pending",
    "Outbox rows not yet published (counted after each relay batch, and after each failed one)",
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "nordflow_outbox_publish_failures_total",
    "Relay batches that failed (the broker or the database away); each is tried again",
)
BATCH_SECONDS = Histogram(
    "nordflow_consumer_batch_seconds", "Time to process one consumed batch in one transaction"
)
BATCH_FAILURES = Counter(
    "nordflow_consumer_batch_failures_total", "Batches rolled back (retried, then record by record)"
)
CONSUMER_LAG = Gauge(
    "nordflow_consumer_lag",
    "Records of an assigned partition after the consumer's position (high watermark minus "
    "position after each poll); no series while either is unknown",
    ["topic", "partition"],
)
LAST_COMMIT = Gauge(
    "nordflow_consumer_last_commit_timestamp_seconds",
    "Unix time of the consumer's last successful offset commit (0: none since start)",
)
STUCK = Gauge(
    "nordflow_stuck",
    "1 while a loop (consumer, relay) keeps failing, or the consumer gets nothing while "
    "records wait: readiness is red meanwhile",
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
JOBS_PENDING = Gauge(
    "nordflow_jobs_pending",
    "Pending jobs that are due (the backlog), by kind; timers not yet due are not counted",
    ["kind"],
)
JOBS_OLDEST_DUE = Gauge(
    "nordflow_jobs_oldest_due_seconds",
    "How long the oldest due pending job of a kind has been due (0 when none is)",
    ["kind"],
)

DeadLetterReason = Literal["decode", "wrong_topic", "no_handler", "refused", "gave_up"]
"""Why a record was dead-lettered: not a Nordflow event (undecodable, schema-invalid), an
event of another topic, a topic the service has no handler for, a handler's
``PermanentError``, or a record that kept failing while the database answered."""
DEAD_LETTER_REASONS: tuple[DeadLetterReason, ...] = get_args(DeadLetterReason)
DEAD_LETTERS = Counter(
    "nordflow_dead_letters_total",
    "Records dead-lettered, by reason (decode, wrong_topic, no_handler, refused, gave_up)",
    ["reason"],
)
for _reason in DEAD_LETTER_REASONS:
    DEAD_LETTERS.labels(_reason)  # every series from the start, so increase() sees the first
