"""Every route of the tenant API answers bad input with a 4xx, never a 5xx (a
schemathesis-style probe of the service's own OpenAPI)."""

from __future__ import annotations

import pytest
from distribution_router.testing import bearer, start_harness
from nordflow_runtime.testing import probe_for_server_errors
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration


async def test_no_bad_input_reaches_a_server_error(database_url: str) -> None:
    harness = await start_harness(database_url)
    try:
        headers = await bearer(harness.pool, new_tenant())
        async with harness.http() as http:
            problems = await probe_for_server_errors(http, harness.app.http_app(), headers=headers)
    finally:
        await harness.close()
    assert problems == [], "\n".join(problems[:20])
