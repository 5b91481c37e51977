"""What operators see of the running services: probes, metrics, logs and the DLQ command."""

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from nordflow_local.stack import SERVICES
from nordflow_schemas.topics import TOPICS, consumer_group

pytestmark = [pytest.mark.e2e]


@pytest.mark.parametrize("service", SERVICES)
def test_probes_and_metrics(nordflow_stack, service):
    url = nordflow_stack.env()[service.upper().replace("-", "_") + "_URL"]
    assert httpx.get(f"{url}/healthz").json()["service"] == service
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200
    # Every service consumes (operator commands at least) and relays its outbox; a topic the
    # topic map has it read in a group of its own has a consumer of its own.
    own_groups = {consumer_group(service, t.name) for t in TOPICS if service in t.consumers} - {
        service
    }
    assert ready.json()["checks"] == {
        "database": "ok",
        "kafka": "ok",
        "relay": "ok",
        "consumer": "ok",
        **{f"consumer:{group}": "ok" for group in own_groups},
    }
    metrics = httpx.get(f"{url}/metrics").text
    assert "nordflow_outbox_pending" in metrics
    assert "nordflow_events_published_total" in metrics


def test_logs_are_json_and_never_hold_secrets(nordflow_stack):
    env = nordflow_stack.env()
    secrets = [env["ENCRYPTION_KEY"], env["SANDBOX_FORTNOX_TOKEN"]]
    for service in SERVICES:
        lines = [
            line
            for line in nordflow_stack.log_path(service).read_text().splitlines()
            if line.startswith("{")
        ]
        assert lines, f"{service} wrote no JSON log lines"
        for line in lines:
            record = json.loads(line)
            assert record["service"] == service
            assert not any(s in line for s in secrets), f"secret in {service} log"


def test_dlq_list_command_runs_against_the_broker(nordflow_stack):
    env = {**nordflow_stack.env(), "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mapper"), "dlq", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "dead letter(s) for mapper" in result.stdout


def test_jobs_commands_list_and_refuse_to_retry_what_did_not_fail(nordflow_stack):
    env = {**nordflow_stack.env(), "PATH": str(Path(sys.executable).parent)}
    command = str(Path(sys.executable).parent / "distribution-router")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [command, "jobs", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    listed = run("list", "--kind", "send-invoice", "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    assert "job(s)" in listed.stdout
    refused = run("retry", "--id", "999999999")
    assert refused.returncode == 1
    assert "999999999" in refused.stderr


def test_a_missing_setting_is_named(nordflow_stack):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ledger-closer"), "run"],
        env={"PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "ENCRYPTION_KEY"):
        assert f"setting {name}" in result.stderr
