"""The shared command tree: help lists every command, usage errors and bad settings exit 2."""

from __future__ import annotations

import pytest
import typer
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.cli import new_group, run_cli, service_cli
from nordflow_runtime.settings import ServiceSettings


def tree() -> typer.Typer:
    def create_app() -> ServiceApp[None]:
        return ServiceApp("toy", ServiceSettings(), None)  # settings from the environment

    cli = service_cli("toy", create_app, tenant_api=True)
    extra = new_group("Toy things.")
    cli.add_typer(extra, name="things")

    @extra.command("count")
    def count(n: int = typer.Option(..., min=1)) -> None:
        """Count to n; fail on 13."""
        if n == 13:
            raise typer.Exit(1)
        if n == 666:
            raise SystemExit("toy: 666 is not a count")
        print(n)

    return cli


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tree(), "toy", ["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "migrate", "dlq", "jobs", "tokens", "things"):
        assert command in out


def test_usage_errors_exit_2_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tree(), "toy", ["things", "count"]) == 2
    assert "--n" in capsys.readouterr().err
    assert run_cli(tree(), "toy", ["things", "count", "--n", "0"]) == 2
    assert run_cli(tree(), "toy", ["no-such-command"]) == 2
    assert run_cli(tree(), "toy", ["jobs", "retry"]) == 2


def test_a_commands_own_exit_code_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tree(), "toy", ["things", "count", "--n", "3"]) == 0
    assert capsys.readouterr().out == "3\n"
    assert run_cli(tree(), "toy", ["things", "count", "--n", "13"]) == 1
    assert run_cli(tree(), "toy", ["things", "count", "--n", "666"]) == 1
    assert capsys.readouterr().err == "toy: 666 is not a count\n"


def test_a_missing_setting_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert run_cli(tree(), "toy", ["migrate"]) == 2
    err = capsys.readouterr().err
    assert "toy: setting KAFKA_BOOTSTRAP_SERVERS" in err
    assert "toy: setting DATABASE_URL" in err
