"""The command line without a database: the command tree, and what `agreements set` refuses
before it connects (every bad field named, secrets only from the environment)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from factoring_gateway.entrypoints.cli import main

AGREEMENT = {
    "provider": "Nordic Factor AB",
    "kind": "factoring",
    "recourse": True,
    "client_number": "1234",
    "file_format": "cusin-xml",
    "transfer": {
        "method": "sftp",
        "host": "factor.invalid",
        "username": "client",
        "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA",
    },
    "payee": {"name": "Nordic Factor AB", "scheme": "SE:BANKGIRO", "account_id": "540-2961"},
    "assignment_text": {"sv": "Fordran har överlåtits."},
    "reference": {"kind": "se_ocr"},
}


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://unused.invalid/nordflow")
    monkeypatch.setenv("ENCRYPTION_KEY", Fernet.generate_key().decode())


def set_from(tmp_path: Path, body: dict[str, object], *extra: str) -> int:
    path = tmp_path / "agreement.json"
    path.write_text(json.dumps(body))
    command = ["agreements", "set", "--tenant", "t-cli", "--agreement", "nordic"]
    return main([*command, "--file", str(path), *extra])


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "migrate", "dlq", "jobs", "tokens", "agreements", "transfers"):
        assert command in out
    assert main(["transfers", "--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "list", "resubmit"):
        assert command in out


def test_every_bad_field_is_named_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = AGREEMENT | {"client_number": "12ab", "file_format": "edifact", "payee": None}
    assert set_from(tmp_path, bad) == 2
    err = capsys.readouterr().err
    assert "agreement client_number:" in err
    assert "agreement file_format: one of cusin-xml, peppol-bis3-zip, sgfinans-fixed-width" in err
    assert "agreement payee:" in err


def test_unknown_fields_and_a_missing_secret_variable_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert set_from(tmp_path, AGREEMENT | {"colour": "red"}) == 2
    assert "agreement colour: Extra inputs are not permitted" in capsys.readouterr().err
    assert set_from(tmp_path, AGREEMENT, "--password-env", "NOT_SET_ANYWHERE") == 2
    assert "NOT_SET_ANYWHERE is not set" in capsys.readouterr().err


def test_a_secret_in_the_file_is_taken_but_the_reference_rules_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = AGREEMENT | {"reference": {"kind": "factor_layout", "factor_layout": "unknown"}}
    assert set_from(tmp_path, bad) == 2
    assert "agreement reference: factor_layout 'unknown' is not one of" in capsys.readouterr().err
