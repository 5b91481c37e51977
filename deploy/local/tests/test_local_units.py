"""Unit tests of nordflow_local: configuration, paths, records and the process supervisor."""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest
from nordflow_local import kafka, processes, pytest_plugin
from nordflow_local.paths import find_repo_root
from nordflow_local.pytest_plugin import with_database
from nordflow_local.stack import SERVICES, SandboxSpec, Stack, StackError


def test_pom_pins_the_kafka_version_the_code_names() -> None:
    pom = kafka.kafka_pom().read_text(encoding="utf-8")
    assert f"<kafka.version>{kafka.KAFKA_VERSION}</kafka.version>" in pom
    assert "<artifactId>slf4j-api</artifactId>" in pom


def test_repo_root_is_the_uv_workspace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = find_repo_root()
    assert "[tool.uv.workspace]" in (root / "pyproject.toml").read_text(encoding="utf-8")
    monkeypatch.setenv("NORDFLOW_HOME", str(tmp_path))
    assert find_repo_root() == tmp_path


def test_cluster_ids_look_like_kafka_storage_random_uuid() -> None:
    for _ in range(50):
        cluster_id = kafka._cluster_id()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
        assert not cluster_id.startswith("-")


def test_server_properties_are_single_node_kraft_without_auto_create(tmp_path: Path) -> None:
    text = kafka._server_properties(tmp_path, 9092, 9093)
    settings = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert settings["process.roles"] == "broker,controller"
    assert settings["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert settings["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert settings["auto.create.topics.enable"] == "false"
    assert settings["log.dirs"] == str(tmp_path / "kraft")


def test_with_database_keeps_credentials_host_and_query() -> None:
    url = "postgresql://u:p@db.example:5433/nordflow?sslmode=require"
    assert with_database(url, "nf_1") == "postgresql://u:p@db.example:5433/nf_1?sslmode=require"


def test_env_of_a_stack_that_is_not_up_says_so(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="not up"):
        Stack(tmp_path).env()


def test_unknown_service_names_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known: erp-poller"):
        Stack(tmp_path, progress=None).stop_service("no-such-service")
    assert "ledger-closer" in SERVICES


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    # A parent that ignores SIGTERM, with a child: both must go, via SIGKILL after the timeout.
    script = "trap '' TERM; sleep 300 & sleep 300"
    record = processes.spawn(tmp_path, "stubborn", ["sh", "-c", script], kind="service")
    time.sleep(0.3)
    members = processes.group_members(record.pgid)
    assert len(members) >= 2
    assert processes.status(tmp_path)[0].alive

    assert processes.stop(tmp_path, "stubborn", timeout=0.5)
    assert not processes.is_alive(record)
    assert processes.group_members(record.pgid) == []
    assert processes.records(tmp_path) == []


def test_stop_all_stops_every_recorded_process(tmp_path: Path) -> None:
    started = [
        processes.spawn(tmp_path, f"p{i}", ["sleep", "300"], kind=kind)
        for i, kind in enumerate(["service", "sandbox", "kafka"])
    ]
    assert sorted(processes.stop_all(tmp_path, timeout=5)) == ["p0", "p1", "p2"]
    assert not any(processes.is_alive(r) for r in started)
    assert list((tmp_path / "pids").iterdir()) == []


def test_a_process_that_dies_while_starting_fails_with_its_log_tail(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"]
    record = processes.spawn(tmp_path, "crasher", command, kind="service")
    with pytest.raises(processes.StartupError, match=r"(?s)exited with code 3.*boom: bad config"):
        processes.wait_until(lambda: False, record=record, what="ready", timeout=10)
    processes.stop_all(tmp_path)


def test_a_process_that_never_gets_ready_times_out_with_its_log_tail(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-c",
        "print('still warming up', flush=True); import time; time.sleep(60)",
    ]
    record = processes.spawn(tmp_path, "slow", command, kind="service")
    with pytest.raises(processes.StartupError, match=r"(?s)not ready after 1 s.*still warming up"):
        processes.wait_until(lambda: False, record=record, what="ready", timeout=1)
    processes.stop(tmp_path, "slow", sig=signal.SIGKILL)
    assert not processes.is_alive(record)


def test_a_reused_pid_is_not_taken_for_the_recorded_process(tmp_path: Path) -> None:
    record = processes.spawn(tmp_path, "p", ["sleep", "300"], kind="service")
    impostor = processes.ProcessRecord(
        **{**record.__dict__, "start_ticks": (record.start_ticks or 0) + 1}
    )
    assert processes.is_alive(record)
    assert not processes.is_alive(impostor)
    processes.stop_all(tmp_path)


def test_a_killed_session_s_processes_are_stopped_by_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    abandoned, live = tmp_path / "nordflow-test-dead", tmp_path / "nordflow-test-live"
    for state_dir, owner in ((abandoned, 2**22 + 7), (live, os.getpid())):
        state_dir.mkdir()
        ticks = processes.start_ticks(owner) or 0
        (state_dir / "owner").write_text(f"{owner} {ticks}\n")
    leftover = processes.spawn(abandoned, "kafka", ["sleep", "300"], kind="kafka")
    running = processes.spawn(live, "kafka", ["sleep", "300"], kind="kafka")

    pytest_plugin._reap_abandoned_sessions()

    assert not processes.is_alive(leftover)
    assert not abandoned.exists()
    assert processes.is_alive(running)
    processes.stop_all(live)


def test_sandbox_templates_fill_in_ports_tokens_and_other_sandboxes() -> None:
    spec = SandboxSpec(
        "mail",
        extra_ports=("smtp",),
        flags=("--smtp-port={port_smtp}", "--smp-url={url_smp}"),
        service_env=(("distribution-router", "SMTP_PORT", "{port_smtp}"),),
    )
    state = {
        "ports": {"sandbox-mail": 9001, "sandbox-mail:smtp": 9002, "sandbox-smp": 9003},
        "tokens": {"mail": "secret"},
    }
    assert [spec.render(f, state) for f in spec.flags] == [
        "--smtp-port=9002",
        "--smp-url=http://127.0.0.1:9003",
    ]
    assert spec.render("{url} {token} {host}", state) == "http://127.0.0.1:9001 secret 127.0.0.1"
    with pytest.raises(KeyError):
        spec.render("{port_imap}", state)  # a typo in a template fails loudly


def test_replicas_are_named_after_their_service() -> None:
    from nordflow_local.stack import replica_name, service_of

    assert replica_name("mapper", 1) == "mapper"
    assert replica_name("erp-poller", 2) == "erp-poller.2"
    assert service_of("erp-poller.2") == "erp-poller"
    assert service_of("mapper") == "mapper"
    assert service_of("sandbox-smtp") == "sandbox-smtp"
    assert service_of("nothing.2") == "nothing.2"
    with pytest.raises(ValueError, match="start at 1"):
        replica_name("mapper", 0)
    with pytest.raises(ValueError, match="unknown service"):
        Stack(Path("/nonexistent")).scale_service("nothing", 2)


def test_a_replica_gets_its_service_s_environment_and_keys(tmp_path: Path) -> None:
    state = {
        "kafka_bootstrap": "127.0.0.1:9092",
        "database_url": "postgresql://127.0.0.1/x",
        "encryption_key": "enc",
        "personal_data_key": "pdk",
        "ports": {},
    }
    stack = Stack(tmp_path)
    first, _ = stack._service_env(state, "mapper", 8001)
    second, _ = stack._service_env(state, "mapper.2", 8002)

    assert second["PERSONAL_DATA_KEY"] == first["PERSONAL_DATA_KEY"] == "pdk"
    assert second["OTEL_SERVICE_NAME"] == "mapper"
    assert second["HTTP_PORT"] == "8002"
