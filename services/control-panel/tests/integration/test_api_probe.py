"""Every route of the dashboard API answers bad input with a 4xx, never a 5xx (a
schemathesis-style probe of the service's own OpenAPI), for a tenant and an operator."""

from __future__ import annotations

import pytest
from control_panel.adapters.tokens import PgTokenRepository
from control_panel.service.tokens import create_token
from nordflow_runtime.testing import probe_for_server_errors
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("operator", [False, True])
async def test_no_bad_input_reaches_a_server_error(harness, operator: bool) -> None:
    tokens = PgTokenRepository(harness.pool)
    token = await create_token(
        tokens, None if operator else new_tenant(), operator=operator, name="probe"
    )
    async with harness.http() as http:
        problems = await probe_for_server_errors(
            http, harness.app.http_app(), headers={"Authorization": f"Bearer {token}"}
        )
    assert problems == [], "\n".join(problems[:20])
