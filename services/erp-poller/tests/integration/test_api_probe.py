"""Every route of the tenant API answers bad input with a 4xx, never a 5xx (a
schemathesis-style probe of the service's own OpenAPI); pushes included."""

from __future__ import annotations

import pytest
from nordflow_runtime import tenants
from nordflow_runtime.testing import probe_for_server_errors
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration


async def test_no_bad_input_reaches_a_server_error(harness) -> None:
    token = await tenants.create_token(harness.pool, new_tenant(), "probe")
    async with harness.http() as http:
        problems = await probe_for_server_errors(
            http, harness.app.http_app(), headers={"Authorization": f"Bearer {token}"}
        )
    assert problems == [], "\n".join(problems[:20])
