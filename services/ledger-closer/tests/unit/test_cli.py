"""The command line without a database: the command tree, the flags nordflow-local uses, and
what `connections add` refuses before it connects."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from ledger_closer.entrypoints.cli import main

ADD = [
    "connections",
    "add",
    "--tenant",
    "t-cli",
    "--connection-id",
    "fx-1",
    "--base-url",
    "http://fortnox.invalid",
    "--token-env",
    "LEDGER_TOKEN",
]


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://unused.invalid/nordflow")
    monkeypatch.setenv("ENCRYPTION_KEY", Fernet.generate_key().decode())


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "migrate", "dlq", "jobs", "connections"):
        assert command in out


def test_connections_add_takes_the_flags_it_always_took(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connections", "add", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in (
        "--tenant",
        "--connection-id",
        "--system",
        "--base-url",
        "--token-env",
        "--mode-of-payment",
        "--factoring-account",
        "--bank-account",
    ):
        assert flag in out


def test_a_missing_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEDGER_TOKEN", "demo-token")
    assert main(ADD) == 2
    assert "ledger-closer: setting DATABASE_URL" in capsys.readouterr().err


@pytest.mark.usefixtures("settings")
@pytest.mark.parametrize(
    "args", [[*ADD, "--system", "visma"], ADD[:-2]], ids=["unknown-system", "no-token-env"]
)
def test_an_unknown_system_or_a_missing_flag_is_a_usage_error(args: list[str]) -> None:
    assert main(args) == 2


@pytest.mark.usefixtures("settings")
def test_an_empty_token_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEDGER_TOKEN", "")
    assert main(ADD) == 1
    assert "LEDGER_TOKEN (the token) is empty" in capsys.readouterr().err


@pytest.mark.usefixtures("settings")
def test_bad_credentials_are_named_never_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "LEDGER_TOKEN", json.dumps({"client_id": "nordflow", "client_secret": "closer-secret"})
    )
    assert main(ADD) == 1
    err = capsys.readouterr().err
    assert err == (
        "ledger-closer: LEDGER_TOKEN: fortnox credentials.refresh_token: "
        "required (a non-empty string)\n"
    )
    assert "closer-secret" not in err
