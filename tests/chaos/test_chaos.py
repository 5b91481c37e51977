"""The short chaos run (`make test`): invoices of several tenants through every flow while
services are SIGKILLed, the broker is killed and PostgreSQL stops at once; afterwards every
invariant holds. `CHAOS_SEED=N` replays a run; `make chaos` is the long one."""

import os
import random

import pytest
from nordflow_local.chaos import run as chaos_run
from nordflow_local.chaos.workload import SHORT

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


@pytest.mark.timeout(480)
async def test_faults_never_lose_or_double(nordflow_stack):
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(10**6))
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    outcome = await chaos_run.run(nordflow_stack, SHORT, seed, say=say)
    assert outcome.ok, "\n".join(lines)
