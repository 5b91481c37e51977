"""nordflow-agent's file handling: stable files only, idempotent batch ids, retries, filing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from nordflow_agent import agent
from nordflow_signing import BATCH_HEADER, verify_signature

SECRET = "agent-secret-0123456789"


def config(folder: Path, **overrides: object) -> agent.AgentConfig:
    values: dict[str, object] = {
        "folder": folder,
        "url": "http://nordflow.test/",
        "connection": "c1",
        "secret": SECRET,
        "max_attempts": 3,
    }
    values.update(overrides)
    return agent.AgentConfig(**values)  # type: ignore[arg-type]


def test_only_files_unchanged_between_two_looks_are_ready(tmp_path: Path) -> None:
    seen: dict[Path, tuple[int, int]] = {}
    done = tmp_path / "a.json"
    done.write_text("{}")
    growing = tmp_path / "b.se"
    growing.write_text("#SIETYP 4\n")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "sent").mkdir()
    (tmp_path / "sent" / "old.json").write_text("{}")
    assert agent.stable_files(tmp_path, seen) == []  # first look: nothing is known yet
    with growing.open("a") as handle:
        handle.write("#VER A 1 20250101\n")
    assert agent.stable_files(tmp_path, seen) == [done]
    assert agent.stable_files(tmp_path, seen) == [done, growing]


def test_the_batch_id_is_the_files_hash_unless_a_json_batch_names_one(tmp_path: Path) -> None:
    body = b"#SIETYP 4\n"
    assert agent.batch_id_of(tmp_path / "x.SE", body) == hashlib.sha256(body).hexdigest()
    named = json.dumps({"batch_id": "b-7", "documents": []}).encode()
    assert agent.batch_id_of(tmp_path / "x.json", named) == "b-7"
    assert agent.batch_id_of(tmp_path / "x.json", b"[1]") == hashlib.sha256(b"[1]").hexdigest()


def test_5xx_and_connection_errors_are_retried_then_the_file_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "batch.si"
    path.write_bytes(b"#SIETYP 4\n")
    answers = iter(["connect", 503, 200])
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        answer = next(answers)
        if answer == "connect":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(int(answer), json={"counts": {"emitted": 1}})

    sleeps: list[float] = []
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        outcome = agent.push_file(config(tmp_path), client, path, sleep=sleeps.append)
    assert outcome == "sent"
    assert (tmp_path / "sent" / "batch.si").exists()
    assert not path.exists()
    assert len(sleeps) == 2
    assert sleeps[1] > sleeps[0] * 0.5  # backing off, with jitter
    last = requests[-1]
    assert str(last.url) == "http://nordflow.test/api/v1/ingest/batches/c1"
    assert last.headers["content-type"] == "text/plain"
    assert last.headers[BATCH_HEADER] == hashlib.sha256(b"#SIETYP 4\n").hexdigest()
    verify_signature(SECRET, last.headers, last.content)  # signed with the secret


def test_a_4xx_files_the_batch_under_failed_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{}")
    (tmp_path / "failed").mkdir()
    (tmp_path / "failed" / "bad.json").write_text("an earlier one")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": [{"loc": ["body", "documents"]}]})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        assert agent.push_file(config(tmp_path), client, path) == "failed"
    moved = tmp_path / "failed" / "bad.1.json"
    assert moved.read_text() == "{}"
    reason = (tmp_path / "failed" / "bad.1.json.error.txt").read_text()
    assert "HTTP 422" in reason
    assert "documents" in reason


def test_exhausted_retries_leave_the_file_and_401_stops_the_agent(tmp_path: Path) -> None:
    path = tmp_path / "later.json"
    path.write_text("{}")
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(502))) as client:
        assert agent.push_file(config(tmp_path), client, path, sleep=lambda _: None) == "retry"
    assert path.exists()
    refused = httpx.MockTransport(lambda r: httpx.Response(401, json={"detail": "bad signature"}))
    with httpx.Client(transport=refused) as client, pytest.raises(agent.ConfigurationError):
        agent.push_file(config(tmp_path), client, path)
    assert path.exists()


def test_the_secret_comes_only_from_the_environment(tmp_path: Path) -> None:
    argv = ["watch", "--folder", str(tmp_path), "--url", "http://x", "--connection", "c1", "--once"]
    assert agent.run(argv, environ={}) == 2
    with pytest.raises(SystemExit):
        agent.parse_args([*argv, "--secret", "s"])


def test_a_file_left_for_a_retry_ends_the_round_so_exports_keep_their_order(
    tmp_path: Path,
) -> None:
    older, newer = tmp_path / "2025-03-10.json", tmp_path / "2025-03-11.json"
    older.write_text('{"batch_id": "b-1", "documents": []}')
    newer.write_text('{"batch_id": "b-2", "documents": []}')
    pushed: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        pushed.append(request.headers[BATCH_HEADER])
        return httpx.Response(503)

    seen: dict[Path, tuple[int, int]] = {}
    agent.stable_files(tmp_path, seen)  # the first look
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        left = agent.run_once(config(tmp_path, backoff=0.0), client, seen)
    assert left == 2
    assert set(pushed) == {"b-1"}  # the newer export waits for the older one
    assert older.exists()
    assert newer.exists()


def test_customers_json_is_put_to_the_register_before_the_rounds_batches(tmp_path: Path) -> None:
    batch = tmp_path / "2025-03-10.se"
    batch.write_bytes(b"#SIETYP 4\n")
    register = tmp_path / "Customers.json"  # any case: Windows exports vary
    register.write_text('{"customers": [{"customer_number": "K17"}]}')
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method == "PUT":
            return httpx.Response(200, json={"created": 1, "updated": 0, "unchanged": 0})
        return httpx.Response(200, json={"counts": {"emitted": 1}})

    seen: dict[Path, tuple[int, int]] = {}
    agent.stable_files(tmp_path, seen)  # the first look
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        assert agent.run_once(config(tmp_path), client, seen) == 0
    assert [(r.method, r.url.path) for r in requests] == [
        ("PUT", "/api/v1/ingest/customers/c1"),
        ("POST", "/api/v1/ingest/batches/c1"),
    ]
    put = requests[0]
    assert put.headers["content-type"] == "application/json"
    assert BATCH_HEADER not in put.headers  # an upsert: no batch id to be idempotent by
    verify_signature(SECRET, put.headers, put.content)
    assert sorted(p.name for p in (tmp_path / "sent").iterdir()) == [
        "2025-03-10.se",
        "Customers.json",
    ]


def test_a_register_being_written_or_to_be_retried_holds_the_batches_back(
    tmp_path: Path,
) -> None:
    batch = tmp_path / "2025-03-10.se"
    batch.write_bytes(b"#SIETYP 4\n")
    methods: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        methods.append(request.method)
        return httpx.Response(503 if request.method == "PUT" else 200)

    seen: dict[Path, tuple[int, int]] = {}
    agent.stable_files(tmp_path, seen)  # the first look: only the batch is there
    register = tmp_path / "customers.json"
    register.write_text('{"customers": []}')  # appears (still being written) before the second
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        assert agent.run_once(config(tmp_path, backoff=0.0), client, seen) == 1
        assert methods == []  # the batch waits for the register
        assert agent.run_once(config(tmp_path, backoff=0.0), client, seen) == 2
    assert methods == ["PUT"] * 3  # retried, then the round ends: the batch still waits
    assert batch.exists()
    assert register.exists()


def test_a_refused_register_is_filed_under_failed_and_the_batches_go_on(tmp_path: Path) -> None:
    (tmp_path / "customers.json").write_text('{"customers": [{"type": "x"}]}')
    (tmp_path / "2025-03-10.json").write_text('{"batch_id": "b-1", "documents": []}')

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(
                422, json={"detail": [{"loc": ["body", "customers", 0, "customer_number"]}]}
            )
        return httpx.Response(200, json={"counts": {}})

    seen: dict[Path, tuple[int, int]] = {}
    agent.stable_files(tmp_path, seen)
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        assert agent.run_once(config(tmp_path), client, seen) == 0
    reason = (tmp_path / "failed" / "customers.json.error.txt").read_text()
    assert "HTTP 422 from http://nordflow.test/api/v1/ingest/customers/c1" in reason
    assert "customer_number" in reason
    assert "batch id" not in reason
    assert (tmp_path / "sent" / "2025-03-10.json").exists()
