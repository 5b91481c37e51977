"""The chaos run's look at the services' tables, on the real PostgreSQL server."""

from __future__ import annotations

import asyncpg
import pytest
from nordflow_local.chaos.observe import OVERDUE_SECONDS, read_tables
from nordflow_runtime import db
from nordflow_schemas.topics import SERVICES

pytestmark = pytest.mark.integration


async def test_only_the_runs_jobs_long_past_their_time_are_due(fresh_database_url: str) -> None:
    """A job is 'pending' while its worker runs it, and other tenants' jobs (an earlier test's
    agreements on the same stack) are not the run's: neither is stuck."""
    for service in SERVICES:
        schema = db.schema_name(service)
        pool = await db.create_pool(fresh_database_url, schema, min_size=1, max_size=1)
        try:
            await db.migrate(pool, schema, db.load_migrations("nordflow_runtime", "runtime"))
        finally:
            await pool.close()
    late = OVERDUE_SECONDS + 30
    jobs = [
        ("pending", "ours", 5),  # being run, or claimed in a moment
        ("pending", "ours", late),  # stuck
        ("running", "ours", late),  # its lease ran out long ago, and no one took it over
        ("pending", "ours", -60),  # a timer
        ("pending", "another", late),  # not the run's tenant
        ("done", "ours", late),
    ]
    conn = await asyncpg.connect(fresh_database_url)
    try:
        for n, (state, tenant, ago) in enumerate(jobs):
            await conn.execute(
                "INSERT INTO factoring_gateway.jobs (kind, job_key, tenant_id, payload, due_at, "
                "state) VALUES ('factoring-settlements', $1, $2, '{}', "
                "now() - make_interval(secs => $3), $4)",
                f"job-{n}",
                tenant,
                ago,
                state,
            )
    finally:
        await conn.close()
    tables = await read_tables(fresh_database_url, {}, ["ours"])
    assert tables.jobs_due == {"factoring-gateway/factoring-settlements": 2}
